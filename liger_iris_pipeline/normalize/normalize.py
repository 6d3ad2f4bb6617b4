"""Normalization on models, without stpipe.

The normalization value is the mean, median or mode of the good pixels (finite data and no
DO_NOT_USE flag); the mode is SExtractor's ``2.5 median - 1.5 mean`` of the 3-sigma-clipped
values (`liger_iris_pipeline.lib.stats.mode_estimate`). Data are divided by it and each variance component by its
square. The uncertainty of the value itself is not propagated: estimated from ``n`` good
pixels, its relative error is about ``1 / sqrt(n)`` of a single pixel's relative scatter
(1e-3 for a million pixels, 2.5e-4 for a full 4096 x 4096 frame), and it is an error common to
every pixel, not a per-pixel one.
"""

import numpy as np

from ..lib.masks import good_pixels
from ..lib.models import model_name
from ..lib.stats import mode_estimate
from ..lib.variance import VARIANCE_ARRAYS, update_err

__all__ = ["METHODS", "normalization_value", "normalize"]

METHODS = {
    "mean": lambda values: float(np.mean(values, dtype=np.float64)),
    "median": lambda values: float(np.median(values)),
    "mode": mode_estimate,
}
"""Method name -> function of the good pixels' values."""


def normalization_value(model, method="median"):
    """Return the mean, median or mode of a frame's good pixels.

    Parameters
    ----------
    model : IRISImageModel
        The frame.
    method : {'mean', 'median', 'mode'}
        The statistic.

    Returns
    -------
    value : float
    count : int
        Number of good pixels used.

    Raises
    ------
    ValueError
        Unknown method, or no good pixel.
    """
    if method not in METHODS:
        raise ValueError(f"unknown normalization method {method!r}; use one of {', '.join(METHODS)}")
    values = model.data[good_pixels(model.dq, model.data)]
    if values.size == 0:
        raise ValueError(f"{model_name(model)} has no good pixel (finite and without DO_NOT_USE) to normalize by")
    return METHODS[method](values), int(values.size)


def normalize(model, value):
    """Divide a frame by a value, in place (variances by its square).

    Parameters
    ----------
    model : IRISImageModel
        The frame.
    value : float
        Normalization value, finite and non-zero.

    Raises
    ------
    ValueError
        ``value`` is zero or not finite.
    """
    if not np.isfinite(value) or value == 0:
        raise ValueError(f"cannot normalize {model_name(model)} by {value}")
    model.data /= np.float32(value)
    for name in VARIANCE_ARRAYS:
        getattr(model, name)[...] /= np.float32(value * value)
    update_err(model)
