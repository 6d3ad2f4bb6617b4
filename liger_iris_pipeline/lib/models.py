"""Opening step inputs and reference files, with errors that name the model and the problem."""

import collections
import contextlib
import contextvars
import logging
import os
from pathlib import Path

import numpy as np

__all__ = [
    "check_model_kind",
    "file_label",
    "kept_references",
    "model_name",
    "open_image",
    "open_input",
    "open_reference",
]

log = logging.getLogger(__name__)

_KEPT_REFERENCES = contextvars.ContextVar("liger_iris_pipeline_kept_references", default=None)


@contextlib.contextmanager
def kept_references(cache):
    """Within the block, `open_reference` returns the model it opened before from the same, unchanged file.

    For a process that reduces frame after frame (the real-time service): each reference file is
    read and validated once. The kept models' arrays are made read-only, so a step that would
    change a reference in place fails instead of changing it for the next frames.

    Parameters
    ----------
    cache : dict
        ``(path, mtime, size) -> model``, owned by the caller (who closes the models).
    """
    token = _KEPT_REFERENCES.set(cache)
    try:
        yield cache
    finally:
        _KEPT_REFERENCES.reset(token)


def open_input(init, model_classes, step_name, role="input", copy=True):
    """Return a step's input as one of the model classes it accepts.

    A model passed in is never modified: the step gets a copy (a deep copy of a frame, cube or
    spectrum; a shallow copy of a ramp, whose large arrays steps only read or replace). A frame of the
    step's own gets ``dq`` and the variance arrays, and its non-finite pixels flagged.

    Parameters
    ----------
    init : str, os.PathLike or TMTDataModel
        The input.
    model_classes : tuple of str
        Names of the accepted `liger_iris_pipeline.datamodels` classes.
    step_name : str
        Name of the calling step, for messages.
    role : str
        What the input is to the step (``input``, ``background member`` ...), for messages.
    copy : bool
        Copy a model passed in; False for inputs the step only reads.

    Returns
    -------
    TMTDataModel

    Raises
    ------
    TypeError
        ``init`` is not one of the accepted classes (or a file holding one), or is an IFS frame
        given to an imager step (`check_model_kind`); the message starts with the file.
    """
    from .. import datamodels
    from .masks import flag_nonfinite
    from .observation import is_ifs
    from .variance import ensure_error_arrays

    accepted = tuple(getattr(datamodels, name) for name in model_classes)
    if isinstance(init, (str, os.PathLike)):
        model = datamodels.open(init)
        where = os.fspath(init)
    else:
        model, where = init, file_label(init)
    if not isinstance(model, accepted) or is_ifs(model):
        check_model_kind(type(model).__name__, is_ifs(model), model_classes, step_name, where, role)
    if isinstance(model, (datamodels.IRISImageModel, datamodels.IRISIFSImageModel)):
        if model is init and copy:
            model = init.copy()
        if model.data is None or model.data.ndim != 2:
            raise TypeError(f"{where}: the {role} of {step_name} has no 2-D SCI array")
        ensure_error_arrays(model)
        if model is not init:  # a frame of the step's own, not a model the caller lent it
            # FITS arrays are big-endian: swapped once, in place, every later operation is ~2x faster.
            for name in _FRAME_ARRAYS:
                model.native_array(name)
            flagged = flag_nonfinite(model)
            if flagged:
                log.info("%s: %d pixels of %s are not finite: flagged DO_NOT_USE", step_name, flagged, where)
    elif model is init and copy:
        # A ramp's large arrays are only read or replaced by the steps: a shallow copy keeps the
        # caller's model unchanged. Cubes and spectra are changed in place, so they are copied whole.
        model = type(init)(init) if isinstance(model, datamodels.TMTRampModel) else init.copy()
    return model


def check_model_kind(model_type, ifs, model_classes, step_name, where, role="input"):
    """Raise `TypeError` if a step does not take a model of this class and instrument mode.

    An `IRISImageModel` holding an IFS exposure (made by hand, or written before
    `IRISIFSImageModel` existed) is refused by the imager's steps like an `IRISIFSImageModel`.
    Pipelines call this with a file's header values before fetching references, steps with the
    opened model.

    Parameters
    ----------
    model_type : str
        The input's class name (DATAMODL).
    ifs : bool
        Whether the input is an IFS exposure (`lib.observation.is_ifs`).
    model_classes : tuple of str
        Names of the accepted `liger_iris_pipeline.datamodels` classes.
    step_name : str
        Name of the calling step or pipeline, for messages.
    where : str or os.PathLike
        The input's file (or label), first in the message.
    role : str
        What the input is to the step, for messages.

    Raises
    ------
    TypeError
        The message names the file, what the step takes and what the input is.
    """
    from .. import datamodels

    found = "IRISIFSImageModel" if ifs and model_type == "IRISImageModel" else model_type
    accepted = tuple(getattr(datamodels, name) for name in model_classes)
    model_class = datamodels.MODEL_CLASSES.get(found)
    if found in model_classes or (found == model_type and model_class and issubclass(model_class, accepted)):
        return
    first = model_classes[0]
    expected = " or ".join(model_classes) if len(model_classes) > 1 else first + _LEVELS[first]
    article = "an" if expected[0] in "AEIOU" else "a"
    what = found if found == model_type else f"{model_type} with INSTMODE = IFS"
    hint = _REDUCE_FIRST.get((found, first), "")
    where = os.fspath(where)
    raise TypeError(f"{where}: the {role} of {step_name} must be {article} {expected}, this is a {what}{hint}")


_FRAME_ARRAYS = ("data", "err", "dq", "var_poisson", "var_rnoise", "var_flat")

_LEVELS = collections.defaultdict(
    str,
    IRISImageModel=" (Level 1 or 2 frame)",
    IRISIFSImageModel=" (Level 1 or 2 IFS frame)",
    TMTRampModel=" (Level 0 ramp)",
)

_REDUCE_FIRST = {
    ("TMTRampModel", "IRISImageModel"): ": a Level 0 ramp, reduce it with detector1 first",
    ("TMTRampModel", "IRISIFSImageModel"): ": a Level 0 ramp, reduce it with detector1 first",
    ("IRISImageModel", "TMTRampModel"): ": a frame already reduced from its ramp",
    ("IRISIFSImageModel", "TMTRampModel"): ": a frame already reduced from its ramp",
    ("IRISIFSImageModel", "IRISImageModel"): ": an IFS frame, reduce it with spec2",
    ("IRISImageModel", "IRISIFSImageModel"): ": an imager frame, reduce it with image2",
}


def open_image(init, step_name, role="input", copy=True):
    """Return a frame (`IRISImageModel`) to process; see `open_input`.

    Parameters
    ----------
    init : str, os.PathLike or IRISImageModel
        The frame.
    step_name : str
        Name of the calling step, for messages.
    role : str
        What the frame is to the step, for messages.
    copy : bool
        Copy a model passed in; False for frames the step only reads.

    Returns
    -------
    IRISImageModel
    """
    return open_input(init, ("IRISImageModel",), step_name, role, copy)


def open_frame_rows(init, step_name, role):
    """Return a frame that a step only reads by blocks of rows: a `FrameFile` for a path, else as `open_input`.

    Parameters
    ----------
    init : str, os.PathLike or IRISImageModel
        The frame.
    step_name : str
        Name of the calling step, for messages.
    role : str
        What the frame is to the step, for messages.

    Returns
    -------
    FrameFile or IRISImageModel
        A model passed in is returned as it is (not copied). A file that is not a frame, or that
        lacks an error or variance extension (which `open_input` creates), is opened whole by
        `open_input`, which raises or fills in as for any input.
    """
    from ..datamodels import IRISImageModel
    from ..datamodels.frame_file import FrameFile
    from ..datamodels.open_model import declared_model_type
    from .observation import is_ifs
    from .variance import VARIANCE_ARRAYS

    if (
        isinstance(init, (str, os.PathLike))
        and os.path.exists(init)
        and declared_model_type(Path(init)) == "IRISImageModel"
    ):
        frame = FrameFile(init, IRISImageModel)
        if is_ifs(frame):
            frame.close()
            check_model_kind("IRISImageModel", True, ("IRISImageModel",), step_name, init, role)
        if all(getattr(frame, name) is not None for name in ("data", "err", "dq", *VARIANCE_ARRAYS)):
            if frame.data.ndim != 2:
                frame.close()
                raise TypeError(f"{os.fspath(init)}: the {role} of {step_name} has no 2-D SCI array")
            return frame
        frame.close()
    return open_input(init, ("IRISImageModel",), step_name, role, copy=False)


def file_label(model):
    """Return a model's file name for the start of a message, else ``<its class>``."""
    return getattr(model.meta, "filename", None) or f"<{type(model).__name__}>"


def model_name(model):
    """Return ``<class> <file name>`` (or the class alone) to describe a model in a message.

    The class is the model's DATAMODL, so that a `FrameFile` is named as the model it holds.
    """
    filename = getattr(model.meta, "filename", None)
    kind = getattr(model.meta, "model_type", None) or type(model).__name__
    return f"{kind} {filename}" if filename else kind


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

    kept = _KEPT_REFERENCES.get()
    if kept is not None and isinstance(reference, (str, os.PathLike)):
        stat = os.stat(reference)
        key = (os.path.realpath(reference), stat.st_mtime_ns, stat.st_size)
        if key not in kept:
            model = _open_reference(datamodels.open(reference), reference, model_class, reference_type, step_name)
            for value in model.instance.values():
                if isinstance(value, np.ndarray):
                    value.flags.writeable = False
            kept[key] = model
        return kept[key]
    model = datamodels.open(reference) if isinstance(reference, (str, os.PathLike)) else reference
    return _open_reference(model, reference, model_class, reference_type, step_name)


def _open_reference(model, reference, model_class, reference_type, step_name):
    """Check an opened reference's class and give it its default arrays (see `open_reference`)."""
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
