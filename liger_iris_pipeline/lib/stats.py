"""Robust statistics: sigma clipping of samples and of stacks of frames, and a mode estimate.

Samples are clipped with astropy's `~astropy.stats.sigma_clip` (iterative rejection of values
more than ``nsigma`` standard deviations from the median); stacks of a few frames are clipped
against the frames' own errors (`clipped_stack_mask`).
"""

import numpy as np

__all__ = ["clipped_stack_mask", "mode_estimate", "sigma_clip_mask"]


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


def clipped_stack_mask(stack, errors, valid, nsigma=3.0, maxiters=5):
    """Return which values of a stack of frames survive per-pixel clipping against their errors.

    At each pixel, values further than ``nsigma`` times their own 1-sigma error from the median
    of the values kept so far are rejected, until nothing changes or ``maxiters``. The errors
    are known, so a single outlier among a handful of frames is rejected; a standard deviation
    estimated from those few values would be inflated by the outlier itself (with four frames
    no value can lie 3 sample standard deviations from the median).

    Parameters
    ----------
    stack : numpy.ndarray
        (n, ny, nx) values of n frames.
    errors : numpy.ndarray
        (n, ny, nx) 1-sigma errors of the values.
    valid : numpy.ndarray
        bool (n, ny, nx): values that may be used at all (good DQ, finite).
    nsigma : float
        Clipping threshold in units of each value's error.
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    numpy.ndarray
        bool (n, ny, nx): valid and not clipped.
    """
    import warnings

    kept = valid.copy()
    for _ in range(maxiters):
        with warnings.catch_warnings():
            # Pixels without any valid value have an all-NaN slice: their median is NaN, as wanted.
            warnings.simplefilter("ignore", RuntimeWarning)
            center = np.nanmedian(np.where(kept, stack, np.nan), axis=0)
        with np.errstate(invalid="ignore"):
            clipped = valid & (np.abs(stack - center) <= nsigma * errors)
        # A pixel whose values are all rejected keeps the previous set rather than none.
        clipped |= kept & ~clipped.any(axis=0)
        if np.array_equal(clipped, kept):
            break
        kept = clipped
    return kept


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
