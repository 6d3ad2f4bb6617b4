"""Level 1 frames built directly from the simulator's truth (no ramp fitting).

``data = truth.detector_rate + noise`` with known variances: ``var_poisson = rate / t`` (gain 1,
effective integration time ``t``) and ``var_rnoise = 12 R**2 / ((n**3 - n) dt**2)``, the
read-noise variance of an up-the-ramp fit of ``n`` reads ``dt`` apart; the noise is Gaussian
with exactly that variance, so pulls ``(result - truth) / err`` are standard normal.
"""

import numpy as np

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.lib.masks import DO_NOT_USE


def level1_from_truth(ramp, truth, seed=0, read_noise=9.0):
    """Return the Level 1 `IRISImageModel` of a simulated exposure.

    Parameters
    ----------
    ramp : TMTRampModel
        The simulated Level 0 exposure (its metadata and SUBARR_MAP are copied).
    truth : ExposureTruth
        Its truth.
    seed : int
        Seed of the noise.
    read_noise : float
        Single-read noise (DN).

    Returns
    -------
    IRISImageModel
    """
    exposure = ramp.meta.exposure
    nreads, read_time = exposure.nreads, exposure.read_time
    rate = truth.detector_rate.astype(np.float64)
    var_poisson = np.maximum(rate, 0.0) / exposure.integration_time
    var_rnoise = np.full(rate.shape, 12.0 * read_noise**2 / ((nreads**3 - nreads) * read_time**2))
    rng = np.random.default_rng(seed)
    data = rate + rng.standard_normal(rate.shape) * np.sqrt(var_poisson + var_rnoise)
    model = datamodels.IRISImageModel(data.astype(np.float32))
    model.update(ramp)
    model.meta.processing_level = 1
    model.var_poisson = var_poisson.astype(np.float32)
    model.var_rnoise = var_rnoise.astype(np.float32)
    model.err = np.sqrt(var_poisson + var_rnoise).astype(np.float32)
    model.dq = truth.mask.astype(np.uint32)
    if ramp.subarr_map is not None:
        model.subarr_map = ramp.subarr_map.copy()
    return model


def good(model):
    """Return the pixels without DO_NOT_USE and with finite data and error."""
    return ((model.dq & DO_NOT_USE) == 0) & np.isfinite(model.data) & np.isfinite(model.err)


RA, DEC = 150.1, 2.2


def detector(size=128, seed=1):
    """Return a small simulated detector."""
    from liger_iris_pipeline import simulate as sim

    return sim.make_detector((size, size), seed=seed)


def science_frame(det, seed=3, n_stars=15, pa=0.0, sky=None, **kwargs):
    """Return ``(level1, truth)`` of a noiseless-ramp science exposure with Gaussian Level 1 noise.

    Parameters
    ----------
    det : DetectorTruth
        The detector.
    seed : int
        Seed of the scene and the noise.
    n_stars : int
        Random stars in the field.
    pa : float
        Position angle (deg).
    sky : float, optional
        Sky rate (DN/s); the filter's sky if None.
    **kwargs
        Other `simulate_exposure` parameters (subarray, subarrays, subarray_id...).
    """
    from liger_iris_pipeline import simulate as sim

    size = det.detector_shape[1] * 0.004
    scene = sim.Scene.random(n_stars, seed=seed, ra=RA, dec=DEC, field=0.8 * size, n_extended=0, sky=sky)
    ramp, truth = sim.simulate_exposure(
        scene, det, nreads=5, pointing=(RA, DEC, pa), seed=seed, noiseless=True, **kwargs
    )
    return level1_from_truth(ramp, truth, seed=seed + 1000), truth


def assert_liger_frames_match_truth(calibrated, truths):
    """Assert that calibrated Liger frames agree with their truth (fluxes, positions, sky, errors, flags)."""
    import pytest

    from liger_iris_pipeline.simulate.validation import compare_with_truth

    pulls = []
    for frame, truth in zip(calibrated, truths, strict=True):
        assert (frame.meta.telescope, frame.meta.instrument.name) == ("KECK", "LIGER")
        assert (frame.meta.obstype, frame.meta.obsname) == ("SCI", "IMG1-SCI")
        assert frame.meta.cal_step.background == "COMPLETE" and frame.meta.cal_step.flat_field == "COMPLETE"
        assert abs(frame.meta.wcsinfo.cdelt1) == pytest.approx(0.01 / 3600)
        comparison = compare_with_truth(frame, truth)
        assert comparison.bad_pixels_flagged == 1.0
        assert abs(comparison.background_residual) < 4 * comparison.background_residual_error
        assert comparison.background_pull_std == pytest.approx(1.0, abs=0.1)
        assert comparison.position_offsets.size >= 2 and comparison.position_offsets.max() < 0.1
        pulls.extend(comparison.flux_pulls)
        np.testing.assert_allclose(frame.err**2, frame.var_poisson + frame.var_rnoise + frame.var_flat, rtol=1e-4)
    pulls = np.array(pulls)
    assert pulls.size >= 15 and np.all(np.abs(pulls) < 5)
    assert abs(pulls.mean()) < 0.7 and 0.5 < pulls.std() < 1.5
