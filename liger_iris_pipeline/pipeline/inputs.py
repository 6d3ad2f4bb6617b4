"""What a pipeline was given: one file, several, a model, or a Level 2 association."""

import os
from pathlib import Path

from ..associations import Level2Product, load_asn

__all__ = ["input_products"]


def _product_name(item):
    from ..stpipe.core import _TMTMixin

    name = item.meta.filename if hasattr(item, "meta") else os.fspath(item)
    return _TMTMixin.remove_suffix(Path(name or "product").name.split(".")[0])[0]


def input_products(step_input):
    """Return the products a pipeline input stands for.

    Parameters
    ----------
    step_input : str, os.PathLike, TMTDataModel, Level2Product, or list of them
        A file or model (one product without background members), a list of them (one product
        each), a ``.json`` association (its products, with their background members), or
        products already made (the real-time service's science frame in memory and its skies).

    Returns
    -------
    list of Level2Product
        Members are paths or models.
    """
    if isinstance(step_input, (str, os.PathLike)) and os.fspath(step_input).endswith(".json"):
        return load_asn(step_input)
    items = step_input if isinstance(step_input, (list, tuple)) else [step_input]
    return [item if isinstance(item, Level2Product) else Level2Product(_product_name(item), item, []) for item in items]
