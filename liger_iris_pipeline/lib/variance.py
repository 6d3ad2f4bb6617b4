"""Variance arrays of an image model and the total error derived from them.

``ERR`` is always ``sqrt(var_poisson + var_rnoise + var_flat)``: steps change the variance
components and recompute ``ERR`` from them, never the other way round.

- ``var_poisson``: signal-dependent (photon) noise.
- ``var_rnoise``: signal-independent detector noise: read noise, plus the uncertainty of the
  subtracted dark.
- ``var_flat``: the flat field's uncertainty.
"""

import numpy as np

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

    Parameters
    ----------
    model : IRISImageModel
        A frame with its three variance arrays.
    """
    total = np.zeros(model.data.shape, dtype=np.float64)
    for name in VARIANCE_ARRAYS:
        total += getattr(model, name)
    model.err = np.sqrt(total).astype(np.float32)
