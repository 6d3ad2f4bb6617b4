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

__all__ = ["check_same_region", "subtract_image", "subtract_rows"]


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
    check_same_region(science, other)
    variances = {name: getattr(other, name) for name in VARIANCE_ARRAYS}
    lost = subtract_rows(science, slice(None), other.data, variances, other.dq)
    update_err(science)
    return lost


def check_same_region(science, other):
    """Raise `SubarrayError` unless two frames have the same shape and detector region.

    Parameters
    ----------
    science, other : IRISImageModel
        The frame subtracted from and the frame subtracted.
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


def subtract_rows(science, rows, data, variances, dq):
    """Subtract rows of another frame from the same rows of ``science``, in place (not its ERR).

    The arithmetic of `subtract_image`, for a caller that has the other frame a block of rows
    at a time (the background step's combined members); it recomputes ERR at the end.

    Parameters
    ----------
    science : IRISImageModel
        The frame to subtract from.
    rows : slice
        Its rows that ``data``, ``variances`` and ``dq`` cover.
    data : numpy.ndarray
        The other frame's values on those rows.
    variances : dict
        Variance component name -> the other frame's component on those rows.
    dq : numpy.ndarray
        The other frame's DQ on those rows.

    Returns
    -------
    int
        As `subtract_image`, for these rows.
    """
    usable = np.isfinite(data)
    for variance in variances.values():
        usable &= np.isfinite(variance)
    science_dq = science.dq[rows]
    was_usable = (science_dq & DO_NOT_USE) == 0
    science_data = science.data[rows]
    np.subtract(science_data, data, out=science_data, where=usable)
    for name, variance in variances.items():
        target = getattr(science, name)[rows]
        np.add(target, variance, out=target, where=usable)
    science_dq |= dq
    science_dq[~usable] |= DO_NOT_USE
    return int(np.count_nonzero(was_usable & ((science_dq & DO_NOT_USE) != 0)))
