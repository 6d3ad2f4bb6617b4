"""Robust statistics: sigma clipping of samples and a mode estimate.

Samples are clipped with astropy's `~astropy.stats.sigma_clip` (iterative rejection of values
more than ``nsigma`` standard deviations from the median); stacks of frames are clipped against
the frames' own errors by `liger_iris_pipeline.lib.combine.combine_frames`.
"""

import numpy as np

__all__ = ["mode_estimate", "sigma_clip_mask"]


def sigma_clip_mask(values, nsigma=3.0, maxiters=5):
    """Return which values of a sample survive sigma clipping.

    Parameters
    ----------
    values : numpy.ndarray
        Finite values (1-D).
    nsigma : float
        Clipping threshold in standard deviations.
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    numpy.ndarray
        bool, same shape as ``values``: True for the values kept.

    Raises
    ------
    ValueError
        ``values`` is empty.
    """
    from astropy.stats import sigma_clip

    if values.size == 0:
        raise ValueError("no good pixels to compute statistics from")
    return ~np.ma.getmaskarray(sigma_clip(values, sigma=nsigma, maxiters=maxiters, masked=True, copy=True))


def mode_estimate(values, nsigma=3.0, maxiters=5):
    """Return the mode of a continuous, nearly normal sample (SExtractor's estimator).

    ``2.5 * median - 1.5 * mean`` of the sigma-clipped sample (Bertin & Arnouts 1996): exact
    for a normal distribution and moved towards the peak by a skewed tail (sources on a sky,
    hot pixels on a flat). As in SExtractor, when the clipped sample is too skewed for it
    (``|mean - median| > 0.3 std``) the median is returned.

    Parameters
    ----------
    values : numpy.ndarray
        Finite values (1-D).
    nsigma : float
        Clipping threshold in standard deviations.
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        ``values`` is empty.
    """
    values = np.asarray(values, dtype=np.float64)
    kept = values[sigma_clip_mask(values, nsigma, maxiters)]
    mean, median, std = float(np.mean(kept)), float(np.median(kept)), float(np.std(kept))
    if abs(mean - median) > 0.3 * std:
        return median
    return 2.5 * median - 1.5 * mean
