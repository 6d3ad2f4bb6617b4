"""Flat fielding on models, without stpipe (JWST semantics).

- Bad flat pixels (non-finite, ``<= 0``, or flagged DO_NOT_USE in the flat) get
  ``NO_FLAT_FIELD | DO_NOT_USE`` and are divided by 1 (left as they are).
- A non-finite or negative flat error at an otherwise good pixel flags
  ``UNRELIABLE_FLAT | DO_NOT_USE`` and contributes no variance.
- ``data /= flat``; ``var_poisson /= flat**2``; ``var_rnoise /= flat**2``;
  ``var_flat = data**2 * flat_err**2 / flat**2`` with ``data`` already divided;
  ``ERR`` recomputed; the flat's DQ OR-ed in.
"""

import logging

import numpy as np

from ..dqflags import pixel as FLAGS
from ..lib.blocks import row_blocks
from ..lib.masks import DO_NOT_USE
from ..lib.subarray import reference_slices
from ..lib.variance import update_err

log = logging.getLogger(__name__)

__all__ = ["apply_flat"]

BAD_FLAT_FLAGS = FLAGS["NO_FLAT_FIELD"] | DO_NOT_USE
BAD_FLAT_ERROR_FLAGS = FLAGS["UNRELIABLE_FLAT"] | DO_NOT_USE


def apply_flat(science, flat):
    """Divide a frame by a flat-field reference, in place.

    Parameters
    ----------
    science : IRISImageModel
        Count-rate frame, full frame or subarray.
    flat : TMTFlatModel
        Full-frame flat, or a subarray containing the science frame's region.

    Returns
    -------
    int
        Number of pixels with a bad flat value (flagged, not divided).

    Raises
    ------
    liger_iris_pipeline.lib.subarray.SubarrayError
        The science frame is not inside the flat's region.
    """
    rows, cols = reference_slices(science, flat)
    var_flat = science.var_flat
    if not (
        isinstance(var_flat, np.ndarray)
        and var_flat.shape == science.data.shape
        and var_flat.dtype == np.float32
        and var_flat.flags.writeable
    ):
        var_flat = science.var_flat = np.empty(science.data.shape, dtype=np.float32)
    count = 0
    # A block of rows at a time: the flat's values, masks and squares are never whole-frame temporaries.
    for block in row_blocks(science.data.shape):
        flat_rows = slice(rows.start + block.start, rows.start + block.stop)
        count += _apply_flat_rows(science, block, var_flat, flat, (flat_rows, cols))
    update_err(science)
    if count:
        log.info("%d pixels have no valid flat value: flagged NO_FLAT_FIELD | DO_NOT_USE, not divided", count)
    return count


def _apply_flat_rows(science, block, var_flat, flat, region):
    """Flat-field rows ``block`` of the frame with the flat's ``region``; return the count of bad flat pixels."""
    value = flat.data[region].astype(np.float32)
    error = flat.err[region].astype(np.float32)
    flat_dq = flat.dq[region]
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(value) & (value > 0)) | ((flat_dq & DO_NOT_USE) != 0)
        bad_error = ~bad & ~(np.isfinite(error) & (error >= 0))
    value[bad] = 1.0
    error[bad | bad_error] = 0.0

    dq = science.dq[block]
    dq |= flat_dq
    dq[bad] |= BAD_FLAT_FLAGS
    dq[bad_error] |= BAD_FLAT_ERROR_FLAGS
    data = science.data[block]
    data /= value
    square = np.square(value)
    science.var_poisson[block] /= square
    science.var_rnoise[block] /= square
    np.square(data, out=var_flat[block])
    var_flat[block] *= np.square(error)
    var_flat[block] /= square
    return int(np.count_nonzero(bad))
