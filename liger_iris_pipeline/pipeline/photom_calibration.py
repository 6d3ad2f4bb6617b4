"""Calibration pipeline: the photom reference, made from standard-star exposures."""

import os

from ..dark_current import DarkCurrentStep
from ..flat_field import FlatFieldStep
from ..lib.models import open_image
from ..measure_photom import MeasurePhotomStep
from ..stpipe import TMTPipeline
from .inputs import input_products, name_after_first_product

__all__ = ["PhotomCalibrationPipeline", "photom_reference_for_cache"]


class PhotomCalibrationPipeline(TMTPipeline):
    """Standard-star Level 1 frames -> photom reference: dark subtraction, flat field, photometry.

    The frames (one or more filters, one detector) are dark-subtracted and flat-fielded as
    science frames are in ``image2``, so that the conversion applies to ``image2``'s products;
    `MeasurePhotomStep` then measures each standard and writes one row per filter.
    """

    class_alias = "photom_calibration"
    names_products_by_model = combines_inputs = True
    spec = """
    standards_catalog = string(default=None)  # ECSV standards catalog (name, filter, flux_jy); overrides the step's
    """
    step_defs = {"dark_current": DarkCurrentStep, "flat_field": FlatFieldStep, "measure_photom": MeasurePhotomStep}

    def process(self, step_input):
        """Make the photom reference.

        Parameters
        ----------
        step_input : str, IRISImageModel, list, or association (``.json``)
            Standard-star Level 1 frames of one detector.

        Returns
        -------
        TMTPhotomModel
            Suffix ``photom``.
        """
        products = input_products(step_input)
        frames = [
            self.flat_field.run(self.dark_current.run(open_image(product.science, self.name))) for product in products
        ]
        if self.standards_catalog:
            self.measure_photom.standards_catalog = self.standards_catalog
        photom = self.measure_photom.run(frames)
        photom.meta.filename = name_after_first_product(self, products)
        return photom


STANDARD_SUBARRAY = 96
"""Side (pixels) of the subarray around the detector centre read out for each cache standard."""

STANDARD_RADII = {"aperture_radius": 2.0, "annulus_inner": 3.0, "annulus_outer": 5.0}
"""Aperture and annulus (FWHM) of the cache's standards: 2 FWHM hold all but 1e-5 of the simulated
Gaussian core (restored by the aperture correction) with half the sky noise of the default 3 FWHM."""

SMALL_FRAME_RADII = {"aperture_radius": 2.0, "annulus_inner": 2.2, "annulus_outer": 3.0}
"""`STANDARD_RADII` on detectors smaller than `STANDARD_SUBARRAY` (tests' 32 pixels: the widest PSF,
Liger at 2.3 micron, is 4.9 pixels)."""

STANDARD_NREADS = 20
"""Reads per integration of the cache's standard exposure in each filter: enough signal for the
faint narrow-band standards at Keck; one integration gives a conversion within ~0.4 % (IRIS broad
bands) to a few % (narrowest Liger filters)."""

STANDARD_INTEGRATIONS = 10
"""Integrations of a full-size cache's standard exposure in each filter: one integration's ~0.4 %
would dominate the error budget of every star brighter than S/N ~250 (the calibrated fluxes'
pulls); ten bring it to ~0.13 % for the cost of one pipeline run. Caches of detectors smaller
than `STANDARD_SUBARRAY` (the tests') take one."""


def photom_reference_for_cache(detector, references, useafter):
    """Return the photom reference of a simulated detector, for ``tmt-crds-cache build``.

    A standard-star exposure in every filter of the simulator (a small subarray at the detector
    centre, few reads) is reduced to Level 1 with the truth references, then dark-subtracted,
    flat-fielded with the cache's dark and flat and measured by `PhotomCalibrationPipeline`
    against the simulated standards catalog.

    Parameters
    ----------
    detector : liger_iris_pipeline.simulate.DetectorTruth
        The simulated detector (full frame).
    references : dict
        Upper-case reference type -> model: the truth ``MASK``, ``NONLIN``, ``SATURATION``,
        ``READNOISE``, ``GAIN``, and the ``DARK`` and ``FLAT`` the cache holds.
    useafter : str
        USEAFTER of the result.

    Returns
    -------
    TMTPhotomModel
        One row per filter; FILTER ``N/A``.
    """
    import gc

    # ~50 small frames through four step runs each: the fixed costs per run dominate. stpipe
    # collects garbage at the start of every run (~0.2 s with a cache build's references in
    # memory; frozen objects, those that exist now, are left out), and stdatamodels validates
    # every assignment against the schemas, which asdf re-parses each time (~0.4 s per frame).
    # The reference is validated when it is written.
    saved = os.environ.get("VALIDATE_ON_ASSIGNMENT")
    os.environ["VALIDATE_ON_ASSIGNMENT"] = "false"
    gc.freeze()
    try:
        photom = _photom_from_simulated_standards(detector, references, useafter)
    finally:
        gc.unfreeze()
        if saved is None:
            del os.environ["VALIDATE_ON_ASSIGNMENT"]
        else:
            os.environ["VALIDATE_ON_ASSIGNMENT"] = saved
    photom.validate()
    return photom


def _photom_from_simulated_standards(detector, references, useafter):
    import tempfile
    from pathlib import Path

    from .. import simulate
    from .detector1 import detector1_with_references

    ny, nx = detector.detector_shape
    side = min(STANDARD_SUBARRAY, nx, ny)
    subarray = ((nx - side) // 2 + 1, (ny - side) // 2 + 1, side, side)
    level1 = detector1_with_references(references)
    nints = STANDARD_INTEGRATIONS if side >= STANDARD_SUBARRAY else 1
    frames = []
    for index, filter_name in enumerate(simulate.filter_names()):
        ramp, _ = simulate.simulate_standard_exposure(
            detector,
            filter=filter_name,
            subarray=subarray,
            nreads=STANDARD_NREADS,
            nints=nints,
            seed=20_000 + index,
            cosmic_ray_rate=0.0,
        )
        frame = level1.run(ramp)
        frame.meta.filename = f"cache_standard_{filter_name}_rate.fits"  # for messages
        frames.append(frame)
    reference = {"useafter": useafter, "pedigree": "SIMULATION", "author": "liger_iris_pipeline tmt-crds-cache"}
    reference.update(SMALL_FRAME_RADII if side < STANDARD_SUBARRAY else STANDARD_RADII)
    with tempfile.TemporaryDirectory() as directory:
        catalog = simulate.write_standards_catalog(Path(directory) / "standards.ecsv")
        pipeline = PhotomCalibrationPipeline(
            standards_catalog=catalog,
            steps={
                "dark_current": {"override_dark": references["DARK"]},
                "flat_field": {"override_flat": references["FLAT"]},
                "measure_photom": reference,
            },
        )
        photom = pipeline.run(frames)
    photom.meta.description = (
        f"Photometric conversion DN/s -> MJy/sr: simulated standard stars, one exposure of {nints} "
        "integration(s) per filter, calibrated with the cache's dark and flat"
    )
    return photom
