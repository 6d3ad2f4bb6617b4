"""Variance arrays of an image model and the total error derived from them.

``ERR`` is always ``sqrt(var_poisson + var_rnoise + var_flat)``: steps change the variance
components and recompute ``ERR`` from them, never the other way round.

- ``var_poisson``: signal-dependent (photon) noise.
- ``var_rnoise``: signal-independent detector noise: read noise, plus the uncertainty of the
  subtracted dark.
- ``var_flat``: the flat field's uncertainty.
"""

import numpy as np

from .blocks import row_blocks
from .models import model_name

__all__ = ["VARIANCE_ARRAYS", "ensure_error_arrays", "update_err"]

VARIANCE_ARRAYS = ("var_poisson", "var_rnoise", "var_flat")


def ensure_error_arrays(model):
    """Create missing ``dq`` and variance arrays of a model (zeros), in place.

    Parameters
    ----------
    model : IRISImageModel
        A frame, possibly read from a file without some of these extensions.

    Raises
    ------
    ValueError
        The model has a non-zero ERR but none of the variance arrays, so its error could
        not be propagated by components.
    """
    missing = [name for name in VARIANCE_ARRAYS if getattr(model, name, None) is None]
    if len(missing) == len(VARIANCE_ARRAYS) and model.err is not None and np.any(model.err):
        raise ValueError(
            f"{model_name(model)} has an ERR array but no VAR_POISSON, VAR_RNOISE or VAR_FLAT: "
            "its error cannot be propagated"
        )
    for name in (*missing, *(name for name in ("dq", "err") if getattr(model, name, None) is None)):
        setattr(model, name, model.get_default(name))


def update_err(model):
    """Set ``model.err = sqrt(var_poisson + var_rnoise + var_flat)`` (float32), in place.

    The sum is taken in float64 a block of rows at a time, into the model's own ERR array when
    it is a writable native float32 array of the frame's shape (every step recomputes ERR: this
    costs no whole-frame temporary).

    Parameters
    ----------
    model : IRISImageModel
        A frame with its three variance arrays.
    """
    shape = model.data.shape
    err = model.err
    reuse = isinstance(err, np.ndarray) and err.shape == shape and err.dtype == np.float32 and err.flags.writeable
    if not reuse:
        err = np.empty(shape, dtype=np.float32)
    variances = [getattr(model, name) for name in VARIANCE_ARRAYS]
    for rows in row_blocks(shape):
        total = variances[0][rows].astype(np.float64)
        for variance in variances[1:]:
            total += variance[rows]
        err[rows] = np.sqrt(total, out=total)
    if not reuse:
        model.err = err
