"""Where a rectangle of detector pixels lies in an array: the simulator's own geometry.

The pipeline has its own version of this (``lib.subarray``); the simulator keeps a separate
one so that a mistake there cannot hide on both sides of a comparison with the truth.
"""

__all__ = ["region_slices"]


def region_slices(rectangle, shape):
    """Return the ``(rows, columns)`` slices of a detector rectangle in an array.

    Parameters
    ----------
    rectangle : tuple of int
        ``(xstart, ystart, xsize, ysize)``: the FITS convention of SUBSTRT1/2 (first pixel
        is 1) and SUBSIZE1/2, x along numpy columns.
    shape : tuple of int
        ``(ny, nx)`` of the array.

    Returns
    -------
    tuple of slice

    Raises
    ------
    ValueError
        The rectangle is empty or extends beyond the array.
    """
    xstart, ystart, xsize, ysize = map(int, rectangle)
    first_col, first_row = xstart - 1, ystart - 1
    end_col, end_row = first_col + xsize, first_row + ysize
    inside = 0 <= first_col < end_col <= shape[1] and 0 <= first_row < end_row <= shape[0]
    if not inside:
        raise ValueError(
            f"rectangle x={xstart}, y={ystart} (1-based), {xsize}x{ysize} pixels is not inside a "
            f"{shape[1]}x{shape[0]} array"
        )
    return slice(first_row, end_row), slice(first_col, end_col)
