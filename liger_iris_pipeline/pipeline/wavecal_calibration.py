"""Calibration pipeline: the wavecal reference of the slicer IFS, made from an arc frame."""

from ..lib.models import open_input
from ..stpipe import TMTPipeline
from ..wavecal import WavecalStep
from .inputs import input_products, name_after_first_product

__all__ = ["WavecalCalibrationPipeline", "simulated_arc_rate", "wavecal_reference_for_cache"]


class WavecalCalibrationPipeline(TMTPipeline):
    """Level 1 arc frame (``SLI-IDP``, after ``detector1``) + slice geometry -> wavecal reference.

    The arc lines are bright and narrow: the fit of each line has its own constant background, so
    the frame needs no dark subtraction or flat field. `WavecalStep` identifies the lines of each
    slice (``slicegeo`` reference) and fits its ``lambda(s, y)``.
    """

    class_alias = "wavecal_calibration"
    input_model = ("IRISIFSImageModel",)
    names_products_by_model = combines_inputs = True
    step_defs = {"wavecal": WavecalStep}

    def process(self, step_input):
        """Make the wavecal reference.

        Parameters
        ----------
        step_input : str, IRISIFSImageModel, or association (``.json``)
            The Level 1 arc frame (its first product's, for an association).

        Returns
        -------
        TMTWavecalModel
            Suffix ``wavecal``.
        """
        products = input_products(step_input)
        arc = open_input(products[0].science, self.input_model, self.name, "arc frame")
        wavecal = self.wavecal.run(arc)
        wavecal.meta.filename = name_after_first_product(self, products)
        return wavecal


BAND_MARGIN = 0.1
"""The band searched for arc lines: the filter's passband widened by this fraction of its width on each side."""


def simulated_arc_rate(detector, references, layout, filter_name, nreads=5, seed=0):
    """Return a simulated slicer arc frame (``SLI-IDP``) at Level 1.

    Parameters
    ----------
    detector : liger_iris_pipeline.simulate.DetectorTruth
        The IFS detector (``layout.detector_shape``).
    references : dict
        Its ``MASK``, ``NONLIN``, ``SATURATION``, ``READNOISE`` and ``GAIN`` references (models or files).
    layout : liger_iris_pipeline.simulate.ifs.SlicerLayout
        The slicer.
    filter_name : str
        Filter of the arc.
    nreads : int
        Reads of the ramp.
    seed : int
        Seed of the noise.

    Returns
    -------
    IRISIFSImageModel
        The ramps of the simulator's Ar, Kr, Xe and Ne lamps through `Detector1Pipeline` with ``references``.
    """
    from ..simulate import ifs
    from .detector1 import detector1_with_references

    scene = ifs.exposure_scene("ARC", layout, filter_name)
    ramp, _ = ifs.simulate_ifs_exposure(
        scene, detector, layout, kind="ARC", filter=filter_name, nreads=nreads, seed=seed
    )
    ramp.meta.filename = f"cache_arc_{filter_name}_uncal.fits"
    frame = detector1_with_references(references).run(ramp)
    frame.meta.filename = f"cache_arc_{filter_name}_rate.fits"  # for messages
    return frame


def wavecal_reference_for_cache(detector, references, layout, slicegeo, filter_name, useafter):
    """Return the wavecal reference of a simulated slicer in one filter, for ``tmt-crds-cache build``.

    A simulated arc (`simulated_arc_rate`) through `WavecalCalibrationPipeline` with the given slice
    geometry and the filter's band (the simulator's passband, `BAND_MARGIN` wider) as first guess.

    Parameters
    ----------
    detector : liger_iris_pipeline.simulate.DetectorTruth
        The IFS detector.
    references : dict
        Its Level 1 references (`simulated_arc_rate`).
    layout : liger_iris_pipeline.simulate.ifs.SlicerLayout
        The slicer.
    slicegeo : TMTSliceGeometryModel or str
        The slice geometry reference of the layout.
    filter_name : str
        Filter.
    useafter : str
        USEAFTER of the result.

    Returns
    -------
    TMTWavecalModel
    """
    from ..simulate.filters import FILTERS

    centre, width = FILTERS[filter_name]
    half = (0.5 + BAND_MARGIN) * width
    step = {
        "override_slicegeo": slicegeo,
        "wavelength_range": [centre - half, centre + half],
        "useafter": useafter,
        "pedigree": "SIMULATION",
        "author": "liger_iris_pipeline tmt-crds-cache",
    }
    frame = simulated_arc_rate(detector, references, layout, filter_name)
    return WavecalCalibrationPipeline(steps={"wavecal": step}).run(frame)
