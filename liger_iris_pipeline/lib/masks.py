"""Good-pixel masks and DQ flagging."""

import numpy as np

from ..dqflags import pixel as FLAGS

__all__ = ["DO_NOT_USE", "flag_nonfinite", "good_pixels"]

DO_NOT_USE = FLAGS["DO_NOT_USE"]
UNRELIABLE_ERROR = FLAGS["UNRELIABLE_ERROR"]


def good_pixels(dq, *arrays):
    """Return the mask of pixels without DO_NOT_USE whose values are all finite.

    Parameters
    ----------
    dq : numpy.ndarray
        uint32 DQ array.
    *arrays : numpy.ndarray
        Arrays of the same shape that must be finite (data, error...).

    Returns
    -------
    numpy.ndarray
        bool, True where the pixel can be used.
    """
    good = (dq & DO_NOT_USE) == 0
    for array in arrays:
        good &= np.isfinite(array)
    return good


def _all_finite(array):
    """Return True if every value is finite (one cheap reduction; a full mask only when it fails)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(array, axis=None, dtype=np.float64)))


def flag_nonfinite(model):
    """Flag the pixels of a frame whose science value or error is not finite, in place.

    NaN or infinite SCI -> DO_NOT_USE; NaN or infinite ERR or variance -> DO_NOT_USE |
    UNRELIABLE_ERROR. Values are left as they are: flagged, never silently zeroed.

    Parameters
    ----------
    model : IRISImageModel
        A frame with ``dq`` and its error arrays.

    Returns
    -------
    int
        Number of pixels newly flagged DO_NOT_USE.
    """
    before = model.dq & DO_NOT_USE
    if not _all_finite(model.data):
        model.dq[~np.isfinite(model.data)] |= DO_NOT_USE
    for name in ("err", "var_poisson", "var_rnoise", "var_flat"):
        array = getattr(model, name, None)
        if array is not None and not _all_finite(array):
            model.dq[~np.isfinite(array)] |= DO_NOT_USE | UNRELIABLE_ERROR
    return int(np.count_nonzero((model.dq & DO_NOT_USE) != before))
