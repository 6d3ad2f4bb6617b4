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
    """Return True if every value is finite (one cheap reduction; a full mask only when it fails).

    A NaN or infinity makes the sum non-finite; a float32 sum that overflows only sends the
    caller to the exact, per-pixel check.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(np.add.reduce(array, axis=None)))


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
    checks = [(model.data, DO_NOT_USE)]
    for name in ("err", "var_poisson", "var_rnoise", "var_flat"):
        checks.append((getattr(model, name, None), DO_NOT_USE | UNRELIABLE_ERROR))
    suspects = [(array, flags) for array, flags in checks if array is not None and not _all_finite(array)]
    if not suspects:
        return 0
    before = model.dq & DO_NOT_USE
    for array, flags in suspects:
        model.dq[~np.isfinite(array)] |= flags
    return int(np.count_nonzero((model.dq & DO_NOT_USE) != before))
