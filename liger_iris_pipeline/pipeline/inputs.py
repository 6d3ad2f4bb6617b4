"""What a pipeline was given: one file, several, a model, or a Level 2 association."""

import os
from pathlib import Path

from ..associations import Level2Product, load_asn

__all__ = ["input_products", "name_after_first_product"]


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


def name_after_first_product(pipeline, products):
    """Return the file name of a combining pipeline's product: its first input's (``x_rate`` -> ``x.fits``).

    The pipeline's suffix (``flat``, ``slicegeo``...) is added when the product is saved.

    Parameters
    ----------
    pipeline : TMTPipeline
        A pipeline with ``names_products_by_model`` (set to name the saved product after the model).
    products : list of Level2Product
        `input_products` of its input.

    Returns
    -------
    str
    """
    pipeline.output_use_model = pipeline.names_products_by_model
    return f"{products[0].name}.fits"
