"""SUBARR_MAP -> subarray regions, without stpipe.

A full-frame readout may read some detector regions separately as subarrays (for example
on-detector guide windows read at a higher cadence). Its ``SUBARR_MAP`` extension (uint16)
is 0 outside them and ``k`` inside subarray ``k`` (1 to 10); each subarray is a rectangle.

The full frame's pixels inside a subarray do not hold the full-frame exposure's signal, so
they are flagged ``NON_SCIENCE | DO_NOT_USE`` ("not on the science portion of the detector"
for this exposure). `merge_subarrays` replaces them by the reduced subarray exposures.
"""

import numpy as np

from ..dqflags import pixel as FLAGS
from ..lib.masks import DO_NOT_USE
from ..lib.subarray import MAX_SUBARRAYS, SubarrayError

__all__ = ["SUBARRAY_PIXEL_FLAGS", "flag_subarray_pixels", "subarray_regions"]

SUBARRAY_PIXEL_FLAGS = FLAGS["NON_SCIENCE"] | DO_NOT_USE


def subarray_regions(subarr_map, origin=(1, 1), name="SUBARR_MAP"):
    """Return the rectangles of a subarray map.

    Parameters
    ----------
    subarr_map : numpy.ndarray
        2-D integer map: 0 outside every subarray, ``k`` inside subarray ``k``.
    origin : tuple of int
        ``(xstart, ystart)`` (1-based) of the map's first pixel on the detector.
    name : str
        What the map belongs to, for messages.

    Returns
    -------
    list of dict
        ``{id, xstart, ystart, xsize, ysize}`` per subarray, by increasing id; starts are
        1-based detector pixels.

    Raises
    ------
    SubarrayError
        An id outside 1..10, more than 10 subarrays, or a region that is not a filled
        rectangle.
    """
    ids = np.unique(subarr_map)
    ids = ids[ids != 0]
    if ids.size > MAX_SUBARRAYS or (ids.size and (ids.min() < 1 or ids.max() > MAX_SUBARRAYS)):
        raise SubarrayError(
            f"{name}: subarray ids must be 1..{MAX_SUBARRAYS} (at most {MAX_SUBARRAYS} subarrays), found {ids.tolist()}"
        )
    regions = []
    for subarray_id in ids.tolist():
        inside = subarr_map == subarray_id
        rows = np.flatnonzero(inside.any(axis=1))
        cols = np.flatnonzero(inside.any(axis=0))
        ysize, xsize = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        count = int(np.count_nonzero(inside))
        if count != xsize * ysize:
            raise SubarrayError(
                f"{name}: subarray {subarray_id} is not a rectangle: {count} pixels within its "
                f"{xsize}x{ysize} bounding box at x {cols[0]}, y {rows[0]} (0-based)"
            )
        regions.append(
            {
                "id": int(subarray_id),
                "xstart": int(origin[0] + cols[0]),
                "ystart": int(origin[1] + rows[0]),
                "xsize": int(xsize),
                "ysize": int(ysize),
            }
        )
    return regions


def flag_subarray_pixels(dq, subarr_map):
    """OR `SUBARRAY_PIXEL_FLAGS` into the DQ of every pixel inside a subarray, in place.

    Parameters
    ----------
    dq : numpy.ndarray
        uint32 DQ array.
    subarr_map : numpy.ndarray
        The subarray map, same shape.

    Returns
    -------
    int
        Number of pixels flagged.
    """
    inside = subarr_map != 0
    dq[inside] |= SUBARRAY_PIXEL_FLAGS
    return int(np.count_nonzero(inside))
