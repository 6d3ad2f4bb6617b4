"""Merging subarray frames into a full frame, without stpipe.

Each input is placed by its subarray metadata (SUBSTRT1/2, SUBSIZE1/2 on a detector of
DETXSIZE x DETYSIZE), never by its position in the input list, so the result does not depend
on the input order:

- At most one input may be a full frame (the readout whose SUBARR_MAP lists the subarrays):
  it is the base, and the subarrays replace its pixels (data, ERR, DQ, variances).
- Without a full-frame input, pixels covered by no subarray are NaN in data, ERR and
  variances and flagged ``OUTSIDE_SUBARRAY | DO_NOT_USE``.
- Subarrays must not overlap one another (an error names both): a merged pixel has exactly
  one source.
- SUBARR_MAP and ``meta.subarray_map`` list the merged subarrays; a subarray's id is its
  SUBARRID (1-10) if set, else the smallest unused id in order of (SUBSTRT2, SUBSTRT1).
- The metadata come from the full-frame input, else from the subarray that comes first in
  (SUBSTRT2, SUBSTRT1) order; the subarray becomes FULL and the WCS reference pixel moves to
  full-frame pixels. A gwcs of that input is rebuilt for the full frame.
"""

import numpy as np

from ..assign_wcs.imaging import assign_wcs
from ..datamodels import IRISImageModel
from ..dqflags import pixel as FLAGS
from ..lib.masks import DO_NOT_USE
from ..lib.models import model_name
from ..lib.subarray import MAX_SUBARRAYS, SubarrayError, subarray_bounds, subarray_slices
from ..lib.variance import VARIANCE_ARRAYS

__all__ = ["OUTSIDE_FLAGS", "detector_shape", "merge_subarrays"]

OUTSIDE_FLAGS = FLAGS["OUTSIDE_SUBARRAY"] | DO_NOT_USE
_PASTED = ("data", "err", "dq", *VARIANCE_ARRAYS)


def detector_shape(models):
    """Return the ``(ny, nx)`` detector size the inputs agree on (DETYSIZE, DETXSIZE).

    Parameters
    ----------
    models : list of IRISImageModel
        The inputs.

    Returns
    -------
    tuple of int

    Raises
    ------
    SubarrayError
        An input lacks DETXSIZE/DETYSIZE, or the inputs disagree.
    """
    shapes = {}
    for model in models:
        sub = model.meta.subarray
        if sub.detxsize is None or sub.detysize is None:
            raise SubarrayError(f"{model_name(model)} has no detector size (DETXSIZE, DETYSIZE) to merge into")
        shapes.setdefault((int(sub.detysize), int(sub.detxsize)), model_name(model))
    if len(shapes) > 1:
        listed = "; ".join(f"{name}: {shape[1]}x{shape[0]}" for shape, name in shapes.items())
        raise SubarrayError(f"inputs are on detectors of different sizes ({listed})")
    return next(iter(shapes))


def _subarray_ids(subarrays):
    """Return the SUBARR_MAP id of each subarray (same order)."""
    given = [model.meta.subarray.id for model in subarrays]
    taken = [value for value in given if value]
    if len(set(taken)) != len(taken):
        raise SubarrayError(f"two inputs have the same SUBARRID: {taken}")
    free = iter(value for value in range(1, MAX_SUBARRAYS + 1) if value not in taken)
    return [value if value else next(free) for value in given]


def merge_subarrays(models):
    """Merge frames into a full frame by their subarray metadata.

    Parameters
    ----------
    models : list of IRISImageModel
        Subarray frames, and at most one full frame (not modified).

    Returns
    -------
    IRISImageModel
        The full frame.

    Raises
    ------
    SubarrayError
        Overlapping subarrays, several full frames, more than 10 subarrays, a subarray off the
        detector, or inconsistent detector sizes.
    """
    if not models:
        raise SubarrayError("no frame to merge")
    shape = detector_shape(models)
    full = [model for model in models if subarray_bounds(model) == (1, 1, shape[1], shape[0])]
    if len(full) > 1:
        raise SubarrayError(f"more than one full-frame input: {', '.join(model_name(model) for model in full)}")
    subarrays = sorted(
        (model for model in models if all(model is not base for base in full)),
        key=lambda model: subarray_bounds(model)[1::-1],
    )
    if len(subarrays) > MAX_SUBARRAYS:
        raise SubarrayError(f"at most {MAX_SUBARRAYS} subarrays can be merged, got {len(subarrays)}")

    owner = np.full(shape, -1, dtype=np.int16)
    regions = []
    for index, (model, subarray_id) in enumerate(zip(subarrays, _subarray_ids(subarrays), strict=True)):
        bounds = subarray_bounds(model)
        try:
            rows, cols = subarray_slices(bounds, shape)
        except SubarrayError as exc:
            raise SubarrayError(f"{model_name(model)}: {exc}") from None
        overlapped = owner[rows, cols][owner[rows, cols] >= 0]
        if overlapped.size:
            other = subarrays[int(overlapped[0])]
            raise SubarrayError(
                f"{model_name(model)} {bounds} overlaps {model_name(other)} {subarray_bounds(other)} "
                "(xstart, ystart, xsize, ysize): overlapping subarrays cannot be merged"
            )
        owner[rows, cols] = index
        regions.append((model, (rows, cols), subarray_id, bounds))

    source = full[0] if full else subarrays[0]
    if full:
        merged = full[0].copy()
    else:
        merged = IRISImageModel(np.full(shape, np.nan, dtype=np.float32))
        merged.update(source)
        for name in ("err", *VARIANCE_ARRAYS):
            getattr(merged, name)[...] = np.nan
        merged.dq[...] = OUTSIDE_FLAGS
        xstart, ystart = subarray_bounds(source)[:2]
        if merged.meta.wcsinfo.crpix1 is not None and merged.meta.wcsinfo.crpix2 is not None:
            merged.meta.wcsinfo.crpix1 += xstart - 1
            merged.meta.wcsinfo.crpix2 += ystart - 1

    merged.subarr_map = np.zeros(shape, dtype=np.uint16)
    for model, (rows, cols), subarray_id, _ in regions:
        for name in _PASTED:
            getattr(merged, name)[rows, cols] = getattr(model, name)
        merged.subarr_map[rows, cols] = subarray_id
    merged.meta.subarray_map = sorted(
        (
            {"id": subarray_id, "xstart": bounds[0], "ystart": bounds[1], "xsize": bounds[2], "ysize": bounds[3]}
            for _, _, subarray_id, bounds in regions
        ),
        key=lambda region: region["id"],
    )
    merged.meta.subarray = {
        "name": "FULL",
        "id": 0,
        "xstart": 1,
        "ystart": 1,
        "xsize": shape[1],
        "ysize": shape[0],
        "detxsize": shape[1],
        "detysize": shape[0],
    }
    if source.meta.wcs is not None:
        assign_wcs(merged)
    return merged
