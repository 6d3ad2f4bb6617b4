"""Slicer IFS frames and references made from the simulator's truth, for spec2's tests.

The references are written from the truth (the traces and wavelength solutions the simulator used),
in ``docs/ifs_design.rst``'s convention, so that spec2's tests do not depend on the calibration
pipelines that fit them from lamp flats and arcs.
"""

import numpy as np

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.simulate import ifs
from liger_iris_pipeline.simulate.ifs.validation import line_centre  # noqa: F401 - the tests' line fit is the package's

FILTER = "KN3"
IFS_INSTRUMENT = {"detector": "IFU", "mode": "IFS"}


def ifs_detector(layout):
    """The IFS detector of a layout (its own serial)."""
    return sim.make_detector(layout.detector_shape, seed=ifs.IFS_DETECTOR_SEED)


def _reference_meta(model, like, reftype, layout, filter_name):
    model.update(like)
    model.meta.reftype = reftype
    model.meta.description = f"{reftype} of the simulated slicer (truth)"
    model.meta.instrument.ifs_mode = "SLICER"
    model.meta.instrument.spaxel_scale = float(layout.spaxel_scale)
    model.meta.instrument.filter = filter_name
    return model


def slicer_references(layout, detector, filter_name=FILTER):
    """Return ``(slicegeo, wavecal)`` models of the simulator's traces and wavelength solutions."""
    like = detector_reference(detector, "DARK", filter_name)
    n = layout.n_slices
    slices = np.zeros(n, dtype=[("SLICE", "i2"), ("BANK", "i2"), ("YSTART", "i4"), ("YSTOP", "i4"),
                                ("TRACE", "f8", (4,)), ("WIDTH", "f8")])  # fmt: skip
    slices["SLICE"] = np.arange(n)
    slices["BANK"] = np.arange(n) // layout.slices_per_bank
    slices["YSTART"], slices["YSTOP"] = np.array([layout.slice_rows(index) for index in range(n)]).T
    slices["TRACE"][:, :3] = layout.trace_coefficients()
    slices["WIDTH"] = layout.slice_width
    slicegeo = _reference_meta(dm.TMTSliceGeometryModel(), like, "SLICEGEO", layout, filter_name)
    slicegeo.slices = slices
    slicegeo.meta.slice_geometry.n_spaxels = layout.n_spaxels
    slicegeo.meta.slice_geometry.spaxel_pixels = float(layout.spaxel_pixels)
    solutions = np.zeros(n, dtype=[("SLICE", "i2"), ("COEFFS", "f8", (3, 3)), ("NLINES", "i4"), ("RMS_PIX", "f8"),
                                   ("RMS_KMS", "f8")])  # fmt: skip
    solutions["SLICE"] = np.arange(n)
    solutions["COEFFS"] = layout.wavelength_coefficients(filter_name)
    wavecal = _reference_meta(dm.TMTWavecalModel(), like, "WAVECAL", layout, filter_name)
    wavecal.solutions = solutions
    like.close()
    return slicegeo, wavecal


def detector_reference(detector, reftype, filter_name=FILTER):
    """Return a truth reference of the IFS detector (``DETECTOR = 'IFU'``)."""
    model = sim.references.reference_model(detector, reftype, filter=filter_name)
    for key, value in IFS_INSTRUMENT.items():
        setattr(model.meta.instrument, key, value)
    return model


def ifs_flat(layout, detector, filter_name=FILTER):
    """Return the IFS flat of ``docs/ifs_design.rst``: pixel flat times slice throughput in the slices, 1 outside."""
    flat = detector_reference(detector, "FLAT", filter_name)
    slice_map, _, _ = layout.pixel_maps(filter_name)
    inside = slice_map >= 0
    throughput = layout.slice_throughputs()
    flat.data = np.where(inside, flat.data * throughput[np.maximum(slice_map, 0)], 1.0).astype(np.float32)
    return flat


def spec2_overrides(layout, detector, filter_name=FILTER):
    """spec2's ``steps`` with the truth's dark, IFS flat, slice geometry and wavelength solution as ``override_*``."""
    slicegeo, wavecal = slicer_references(layout, detector, filter_name)
    return {
        "dark_current": {"override_dark": detector_reference(detector, "DARK", filter_name)},
        "flat_field": {"override_flat": ifs_flat(layout, detector, filter_name)},
        "assign_wcs": {"override_slicegeo": slicegeo, "override_wavecal": wavecal},
    }


def level1_frame(truth, ramp, detector, exposure_time=600.0, seed=None, rate=None):
    """Return a Level 1 `IRISIFSImageModel` of the truth's detector rate with the ramp's metadata.

    Parameters
    ----------
    truth : IFSTruth
        The exposure's truth.
    ramp : TMTRampModel
        Its simulated ramps (metadata only).
    detector : DetectorTruth
        For the read noise and gain.
    exposure_time : float
        Sets the Poisson and read-noise variances (s).
    seed : int, optional
        None: noiseless (the variances are still those of the exposure); else Gaussian noise of
        those variances.
    rate : numpy.ndarray, optional
        The rate to use instead of ``truth.detector_rate``.
    """
    rate = truth.detector_rate if rate is None else rate
    var_poisson = np.maximum(rate, 0.0) / (detector.gain * exposure_time)
    var_rnoise = np.full(rate.shape, 2.0 * (np.median(detector.read_noise) / exposure_time) ** 2)
    data = rate.astype(np.float64)
    if seed is not None:
        data = data + np.random.default_rng(seed).normal(0.0, np.sqrt(var_poisson + var_rnoise))
    frame = dm.IRISIFSImageModel(data.astype(np.float32))
    frame.update(ramp)
    frame.var_poisson = var_poisson.astype(np.float32)
    frame.var_rnoise = var_rnoise.astype(np.float32)
    frame.var_flat = np.zeros(rate.shape, np.float32)
    frame.err = np.sqrt(frame.var_poisson + frame.var_rnoise)
    frame.dq = np.zeros(rate.shape, np.uint32)
    frame.meta.processing_level = 1
    frame.meta.filename = ramp.meta.filename.replace("_uncal", "_rate") if ramp.meta.filename else "ifs_rate.fits"
    return frame


def simulate(scene, layout, detector, kind="SCIENCE", filter_name=FILTER, seed=1):
    """Return ``(ramp, truth)`` of a noiseless two-read exposure (the truth is what matters)."""
    return ifs.simulate_ifs_exposure(
        scene, detector, layout, kind=kind, filter=filter_name, nreads=2, seed=seed, noiseless=True,
        pointing=(150.1, 2.2, 30.0),
    )  # fmt: skip
