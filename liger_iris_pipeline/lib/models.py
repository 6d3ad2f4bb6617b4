"""Opening step inputs and reference files, with errors that name the model and the problem."""

import logging
import os

__all__ = ["file_label", "open_image", "open_reference"]

log = logging.getLogger(__name__)


def open_image(init, step_name, role="input", copy=True):
    """Return a frame to process: a copy of a model, or a model read from a path.

    The caller's model is never modified: steps work on the copy.

    Parameters
    ----------
    init : str, os.PathLike or IRISImageModel
        The frame.
    step_name : str
        Name of the calling step, for messages.
    role : str
        What the frame is to the step (``input``, ``background member`` ...), for messages.
    copy : bool
        Copy a model passed in; False for frames the step only reads.

    Returns
    -------
    IRISImageModel
        With ``dq`` and the variance arrays present.

    Raises
    ------
    TypeError
        ``init`` is not an `IRISImageModel` (or a file holding one).
    """
    from .. import datamodels
    from .masks import flag_nonfinite
    from .variance import ensure_error_arrays

    if isinstance(init, (str, os.PathLike)):
        model = datamodels.open(init)
        where = os.fspath(init)
    else:
        model = init.copy() if copy and isinstance(init, datamodels.IRISImageModel) else init
        where = file_label(init)
    if not isinstance(model, datamodels.IRISImageModel):
        hint = ": a Level 0 ramp, reduce it with detector1 first" if isinstance(model, datamodels.TMTRampModel) else ""
        raise TypeError(
            f"{where}: the {role} of {step_name} must be an IRISImageModel (Level 1 or 2 frame), "
            f"this is a {type(model).__name__}{hint}"
        )
    if model.data is None or model.data.ndim != 2:
        raise TypeError(f"{where}: the {role} of {step_name} has no 2-D SCI array")
    ensure_error_arrays(model)
    if model is not init:  # a frame of the step's own, not a model the caller lent it
        flagged = flag_nonfinite(model)
        if flagged:
            log.info("%s: %d pixels of %s are not finite: flagged DO_NOT_USE", step_name, flagged, where)
    return model


def file_label(model):
    """Return the name of a model for messages: its file name, else its class name.

    Parameters
    ----------
    model : stdatamodels.DataModel
        Any model.

    Returns
    -------
    str
    """
    return getattr(model.meta, "filename", None) or f"<{type(model).__name__}>"


def open_reference(reference, model_class, reference_type, step_name):
    """Return a reference file as its model class.

    Parameters
    ----------
    reference : str, os.PathLike or TMTReferenceFileModel
        What `stpipe.Step.get_reference_file` returned (a path, or an override model).
    model_class : type
        The expected class (`TMTDarkModel`, `TMTFlatModel`...).
    reference_type : str
        CRDS reference type, for messages.
    step_name : str
        Name of the calling step, for messages.

    Returns
    -------
    TMTReferenceFileModel
        With its default arrays (``err``, ``dq``) present.

    Raises
    ------
    TypeError
        The reference is another kind of model or file.
    """
    from .. import datamodels

    model = datamodels.open(reference) if isinstance(reference, (str, os.PathLike)) else reference
    if not isinstance(model, model_class):
        where = os.fspath(reference) if isinstance(reference, (str, os.PathLike)) else file_label(model)
        raise TypeError(
            f"{where}: the {reference_type} reference of {step_name} must be a {model_class.__name__}, "
            f"this is a {type(model).__name__}"
        )
    # A file without ERR or DQ contributes no error and no flags.
    for name in model_class.default_arrays:
        if getattr(model, name, None) is None:
            setattr(model, name, model.get_default(name))
    return model
