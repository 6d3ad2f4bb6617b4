"""Fit every integration of a Level 0 ramp in one C pass each, and combine the integrations.

The per-pixel work (nonlinearity, saturation, jumps, slope, variances, DQ) is done by
`liger_iris_pipeline.readout.RampFitter`; this module selects the reference arrays for the
ramp's region on the detector, loops over integrations and builds the Level 1 frame.
"""

import numpy as np

from ..lib.observation import is_ifs
from ..lib.subarray import reference_slices, subarray_bounds
from ..lib.variance import update_err

__all__ = ["READOUT_MODES", "fit_exposure", "reference_maps"]

READOUT_MODES = {"UTR": "utr", "CDS": "cds", "MCDS": "mcds"}
"""READPATT value -> iris_readout mode."""

# keyword of `readout.RampFitter` -> (reference type, attribute of the reference model)
_REFERENCE_ARRAYS = {
    "nonlin_coeffs": ("nonlin", "coeffs"),
    "saturation": ("saturation", "data"),
    "read_noise": ("readnoise", "data"),
    "gain": ("gain", "data"),
}


def reference_maps(ramp, references):
    """Return the per-pixel reference arrays for `readout.RampFitter` and the ramp's offset in them.

    References that share one geometry (the usual full-frame files) are passed whole with the
    ramp's offset, so nothing is copied; otherwise each is cut to the ramp's region.

    Parameters
    ----------
    ramp : TMTRampModel
        The ramp (full frame or subarray).
    references : dict
        Reference type (``nonlin``, ``saturation``, ``readnoise``, ``gain``) -> model; absent
        types are not applied.

    Returns
    -------
    maps : dict
        `readout.RampFitter` keyword -> array.
    offset : tuple of int
        ``(y, x)`` of the ramp's first pixel in the arrays.
    """
    used = {
        keyword: (references[reftype], attribute)
        for keyword, (reftype, attribute) in _REFERENCE_ARRAYS.items()
        if references.get(reftype) is not None
    }
    if not used:
        return {}, (0, 0)
    geometries = {subarray_bounds(model) for model, _ in used.values()}
    if len(geometries) == 1:
        rows, columns = reference_slices(ramp, next(iter(used.values()))[0])
        maps = {keyword: model.native_array(attribute) for keyword, (model, attribute) in used.items()}
        return maps, (rows.start, columns.start)
    maps = {}
    for keyword, (model, attribute) in used.items():
        rows, columns = reference_slices(ramp, model)
        maps[keyword] = np.ascontiguousarray(model.native_array(attribute)[..., rows, columns])
    return maps, (0, 0)


def fit_exposure(
    ramp, references, mode, fowler_n=1, jump_threshold=5.0, weighting="optimal", nthreads=0, jump_false_alarm=None
):
    """Fit a Level 0 ramp into a Level 1 frame.

    Parameters
    ----------
    ramp : TMTRampModel
        uint16 samples (nints, nreads, ny, nx) with ``read_times`` and, after DQ
        initialisation, ``pixeldq``.
    references : dict
        Reference type -> model (see `reference_maps`).
    mode : {'utr', 'cds', 'mcds'}
        Sampling mode.
    fowler_n : int
        Reads averaged at each end in ``mcds`` mode.
    jump_threshold : float
        Largest jump threshold, in sigma of the comparison of a two-point difference with the
        mean of the others; <= 0 disables jump detection.
    weighting : {'optimal', 'unweighted'}
        UTR weighting.
    nthreads : int
        Threads of the C pass (0: all).
    jump_false_alarm : float, optional
        False-alarm probability of the jump test per clean pixel (None: the library's, 4e-4).

    Returns
    -------
    IRISImageModel or IRISIFSImageModel
        Rate (DN/s), ERR, VAR_POISSON, VAR_RNOISE, VAR_FLAT (zero), DQ, with the ramp's
        metadata and SUBARR_MAP; integrations combined by inverse variance. An IFS ramp
        (`lib.observation.is_ifs`) gives an IFS frame: Level 0 -> 1 is the same for both detectors.
    """
    from .. import datamodels
    from ..readout import RampFitResult, RampFitter, combine_integrations

    samples = ramp.native_array("data")
    nints, nreads, ny, nx = samples.shape
    maps, offset = reference_maps(ramp, references)
    fits = [
        RampFitResult(
            *(np.empty((ny, nx), dtype) for dtype in (np.float32, np.float32, np.float32, np.uint32, np.uint16))
        )
        for _ in range(nints)
    ]
    # One C workspace and one conversion of the references for all the exposure's integrations.
    with RampFitter(
        samples.shape[1:],
        mode=mode,
        fowler_n=fowler_n,
        jump_threshold=jump_threshold,
        jump_false_alarm=jump_false_alarm,
        weighting=weighting,
        offset=offset,
        nthreads=nthreads,
        **maps,
    ) as fitter:
        for integration, out in enumerate(fits):
            fitter.fit(samples[integration], ramp.read_times, out=out)
    if nints == 1:
        rate, var_poisson, var_rnoise, dq = fits[0].rate, fits[0].var_poisson, fits[0].var_rnoise, fits[0].dq
    else:
        combined = combine_integrations(
            np.stack([fit.rate for fit in fits]),
            np.stack([fit.var_poisson for fit in fits]),
            np.stack([fit.var_rnoise for fit in fits]),
            np.stack([fit.dq for fit in fits]),
        )
        rate, var_poisson, var_rnoise, dq = combined.rate, combined.var_poisson, combined.var_rnoise, combined.dq
    if ramp.pixeldq is not None:
        dq |= ramp.pixeldq
    frame_class = datamodels.IRISIFSImageModel if is_ifs(ramp) else datamodels.IRISImageModel
    frame = frame_class(data=rate, var_poisson=var_poisson, var_rnoise=var_rnoise, dq=dq)
    frame.update(ramp)
    frame.var_flat = np.zeros((ny, nx), np.float32)
    update_err(frame)
    if ramp.subarr_map is not None:
        frame.subarr_map = ramp.subarr_map
    frame.meta.processing_level = 1
    frame.meta.bunit_data = frame.meta.bunit_err = "DN/s"
    return frame
