"""Good-pixel masks and DQ flagging."""

import numpy as np

from ..dqflags import pixel as FLAGS

__all__ = ["DO_NOT_USE", "good_pixels"]

DO_NOT_USE = FLAGS["DO_NOT_USE"]


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
