"""OR a mask reference's flags into the pixel DQ of a ramp or a frame."""

import numpy as np

from ..lib.subarray import reference_slices

__all__ = ["apply_mask"]


def apply_mask(model, mask):
    """OR the mask reference's DQ into ``model``'s pixel DQ, in place.

    Parameters
    ----------
    model : TMTRampModel or IRISImageModel
        A Level 0 ramp (its ``pixeldq`` is updated) or a Level 1/2 frame (its ``dq``).
    mask : TMTMaskModel
        Full-frame or subarray mask covering ``model``'s region.

    Returns
    -------
    numpy.ndarray
        The updated uint32 DQ array.
    """
    rows, columns = reference_slices(model, mask)
    name = "pixeldq" if hasattr(model, "groupdq") else "dq"
    shape = model.data.shape[-2:]
    dq = getattr(model, name, None)
    if dq is None:
        dq = np.zeros(shape, np.uint32)
    # a new array: a shallow copy of the caller's model shares the old one
    dq = dq | mask.dq[rows, columns].astype(np.uint32, copy=False)
    setattr(model, name, dq)
    return dq
