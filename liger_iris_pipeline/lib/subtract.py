"""Frame subtraction on models, without stpipe (the subtract_images and background steps).

``data -= other.data``; each variance component of ``other`` is added to the same component
of the science frame (the frames are independent); ``ERR`` is recomputed; DQ flags are OR-ed.
Where ``other`` is not finite the science value is kept and the pixel flagged ``DO_NOT_USE``.
"""

import numpy as np

from .masks import DO_NOT_USE
from .models import model_name
from .subarray import SubarrayError, subarray_bounds
from .variance import VARIANCE_ARRAYS, update_err

__all__ = ["subtract_image"]


def subtract_image(science, other):
    """Subtract ``other`` from ``science``, in place.

    Parameters
    ----------
    science : IRISImageModel
        The frame to subtract from.
    other : IRISImageModel
        The frame to subtract: same shape and same detector region.

    Returns
    -------
    int
        Number of pixels of ``science`` that were usable and are not any more: ``other`` is
        not finite or flagged DO_NOT_USE there (flagged, not subtracted where not finite).

    Raises
    ------
    SubarrayError
        The frames have different shapes or cover different detector regions.
    """
    if science.data.shape != other.data.shape:
        raise SubarrayError(
            f"cannot subtract {model_name(other)} ({other.data.shape[1]}x{other.data.shape[0]}) "
            f"from {model_name(science)} ({science.data.shape[1]}x{science.data.shape[0]}): shapes differ"
        )
    if subarray_bounds(science) != subarray_bounds(other):
        raise SubarrayError(
            f"cannot subtract {model_name(other)} (subarray {subarray_bounds(other)}) from "
            f"{model_name(science)} (subarray {subarray_bounds(science)}): different detector regions"
        )
    usable = np.isfinite(other.data)
    for name in VARIANCE_ARRAYS:
        usable &= np.isfinite(getattr(other, name))
    was_usable = (science.dq & DO_NOT_USE) == 0
    np.subtract(science.data, other.data, out=science.data, where=usable)
    for name in VARIANCE_ARRAYS:
        variance = getattr(science, name)
        np.add(variance, getattr(other, name), out=variance, where=usable)
    science.dq |= other.dq
    science.dq[~usable] |= DO_NOT_USE
    update_err(science)
    return int(np.count_nonzero(was_usable & ((science.dq & DO_NOT_USE) != 0)))
