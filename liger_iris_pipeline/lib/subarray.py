"""Subarray geometry: FITS 1-based ``(xstart, ystart, xsize, ysize)`` <-> numpy slices.

A subarray is described by the 1-based position of its first pixel on the detector
(``SUBSTRT1``, ``SUBSTRT2``) and its size (``SUBSIZE1``, ``SUBSIZE2``); axis 1 is x (numpy
columns), axis 2 is y (numpy rows).
"""

from .models import model_name

__all__ = ["MAX_SUBARRAYS", "SubarrayError", "reference_slices", "subarray_bounds", "subarray_slices"]


MAX_SUBARRAYS = 10
"""Subarrays one readout can hold: the ids 1-10 of a SUBARR_MAP (SUBARRAY1-SUBARRAY10)."""


class SubarrayError(ValueError):
    """A subarray does not fit where it is placed, or its metadata contradicts its arrays."""


def subarray_slices(subarray, shape):
    """Return the numpy slices of a subarray.

    Parameters
    ----------
    subarray : tuple of int
        ``(xstart, ystart, xsize, ysize)`` with FITS 1-based starts.
    shape : tuple of int
        ``(ny, nx)`` of the array the subarray is cut from.

    Returns
    -------
    tuple of slice
        ``(rows, columns)``.

    Raises
    ------
    SubarrayError
        The subarray is empty or does not fit in ``shape``.
    """
    xstart, ystart, xsize, ysize = (int(value) for value in subarray)
    ny, nx = shape
    if xstart < 1 or ystart < 1 or xsize < 1 or ysize < 1 or xstart - 1 + xsize > nx or ystart - 1 + ysize > ny:
        raise SubarrayError(f"subarray {tuple(subarray)} (xstart, ystart, xsize, ysize) does not fit in {nx}x{ny}")
    return slice(ystart - 1, ystart - 1 + ysize), slice(xstart - 1, xstart - 1 + xsize)


def subarray_bounds(model):
    """Return ``(xstart, ystart, xsize, ysize)`` of a model's arrays on the detector.

    Without subarray metadata (no SUBSTRT1/2) the arrays are taken to start at the
    detector's first pixel. Sizes default to the shape of the model's primary array and
    must agree with it when given.

    Parameters
    ----------
    model : stdatamodels.DataModel
        A model with a 2-D primary array and ``meta.subarray``.

    Returns
    -------
    tuple of int

    Raises
    ------
    SubarrayError
        SUBSIZE1/2 contradict the array shape.
    """
    ny, nx = getattr(model, model.get_primary_array_name()).shape[-2:]
    sub = model.meta.subarray
    xsize = nx if sub.xsize is None else int(sub.xsize)
    ysize = ny if sub.ysize is None else int(sub.ysize)
    if (ysize, xsize) != (ny, nx):
        raise SubarrayError(f"{model_name(model)}: SUBSIZE1 x SUBSIZE2 = {xsize}x{ysize} but the arrays are {nx}x{ny}")
    xstart = 1 if sub.xstart is None else int(sub.xstart)
    ystart = 1 if sub.ystart is None else int(sub.ystart)
    return xstart, ystart, xsize, ysize


def reference_slices(science, reference):
    """Return the slices of a reference file's arrays that cover a science frame.

    The science region starts at ``x0 = SUBSTRT1_sci - SUBSTRT1_ref``,
    ``y0 = SUBSTRT2_sci - SUBSTRT2_ref`` (0-based) in the reference arrays and has the
    science frame's size, so a full-frame reference serves any subarray, and a subarray
    reference serves a science frame inside it.

    Parameters
    ----------
    science : stdatamodels.DataModel
        The frame being calibrated.
    reference : stdatamodels.DataModel
        The reference file (full frame or subarray).

    Returns
    -------
    tuple of slice
        ``(rows, columns)`` into the reference's 2-D arrays.

    Raises
    ------
    SubarrayError
        The science region is not inside the reference's region.
    """
    sci_x, sci_y, xsize, ysize = subarray_bounds(science)
    ref_x, ref_y, ref_nx, ref_ny = subarray_bounds(reference)
    try:
        return subarray_slices((sci_x - ref_x + 1, sci_y - ref_y + 1, xsize, ysize), (ref_ny, ref_nx))
    except SubarrayError:
        raise SubarrayError(
            f"{model_name(science)} covers detector pixels x {sci_x}..{sci_x + xsize - 1}, "
            f"y {sci_y}..{sci_y + ysize - 1} (1-based), outside {model_name(reference)} "
            f"(x {ref_x}..{ref_x + ref_nx - 1}, y {ref_y}..{ref_y + ref_ny - 1})"
        ) from None
