"""What a pipeline was given: one file, several, a model, or a Level 2 association."""

import os
from pathlib import Path

from ..associations import Level2Product, load_asn
from ..lib.status import mark_skipped

__all__ = [
    "input_products",
    "name_after_first_product",
    "subtract_background_members",
    "subtract_dark_unless_cancelled",
]


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


def subtract_background_members(pipeline, model, product):
    """Subtract a Level 2 product's background members from its science frame (``image2``, ``spec2``).

    Parameters
    ----------
    pipeline : TMTPipeline
        With the step ``background`` and the parameter ``save_bsub`` (the subtracted frame is then
        saved with the suffix ``bsub``).
    model : TMTDataModel
        The science frame.
    product : Level2Product
        Its background members (none: the frame is returned as it is).

    Returns
    -------
    TMTDataModel
    """
    if not product.background:
        return model
    model = pipeline.background.run(model, product.background)
    if pipeline.save_bsub:
        model.meta.filename = f"{product.name}.fits"
        pipeline.save_model(model, suffix="bsub", force=True)
    return model


def subtract_dark_unless_cancelled(pipeline, model, product, subtraction):
    """Run the dark step, unless the background members' subtraction removed the dark rate already.

    The members are Level 1 frames of the same detector: its dark rate cancels in the difference,
    so subtracting the dark again would remove it twice.

    Parameters
    ----------
    pipeline : TMTPipeline
        With the step ``dark_current``.
    model : TMTDataModel
        The science frame (after `subtract_background_members`).
    product : Level2Product
        Its background members.
    subtraction : str
        What the background is called in the skip message (``"background"``, ``"sky"``).

    Returns
    -------
    TMTDataModel
    """
    if product.background and model.meta.cal_step.background == "COMPLETE":
        mark_skipped(model, pipeline.dark_current, f"the dark rate cancelled in the {subtraction} subtraction")
        return model
    return pipeline.dark_current.run(model)
