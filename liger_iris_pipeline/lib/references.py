"""Reference files made by the calibration pipelines from frames: their metadata, and darks and flats."""

from .. import dqflags

__all__ = ["REFERENCE_SPEC", "describe_reference", "reference_from_frame"]

REFERENCE_SPEC = """
    useafter = string(default='2024-01-01T00:00:00')  # USEAFTER of the reference
    pedigree = string(default='GROUND')  # PEDIGREE of the reference
    author = string(default='liger_iris_pipeline')  # AUTHOR of the reference
"""
"""The parameters of every step and pipeline that makes a reference file (its USEAFTER, PEDIGREE, AUTHOR)."""


def reference_from_frame(frame, model_class, reftype, description, useafter, pedigree, author):
    """Return a reference model made from a combined frame, with the metadata CRDS needs.

    Parameters
    ----------
    frame : IRISImageModel
        The combined frame (data, err, dq).
    model_class : type
        `TMTDarkModel` or `TMTFlatModel`.
    reftype : str
        ``DARK`` or ``FLAT``.
    description, useafter, pedigree, author : str
        DESCRIP, USEAFTER (``YYYY-MM-DDThh:mm:ss``), PEDIGREE and AUTHOR.

    Returns
    -------
    TMTReferenceFileModel
    """
    reference = model_class(data=frame.data, err=frame.err, dq=frame.dq)
    reference.update(frame)
    reference.dq_def = dqflags.dq_def_table()
    reference.meta.reftype = reftype
    reference.meta.description = description
    reference.meta.useafter = useafter
    reference.meta.pedigree = pedigree
    reference.meta.author = author
    reference.meta.processing_level = 2
    reference.meta.obstype = "CAL"
    return reference


def describe_reference(reference, frame, reftype, description, useafter, pedigree, author, instrument_keys):
    """Give a reference measured on a frame the metadata CRDS needs and the frame's instrument.

    Parameters
    ----------
    reference : TMTReferenceFileModel
        The new reference (changed in place).
    frame : TMTDataModel
        The frame it was measured on.
    reftype : str
        REFTYPE, e.g. ``PHOTOM``.
    description, useafter, pedigree, author : str
        DESCRIP, USEAFTER (``YYYY-MM-DDThh:mm:ss``), PEDIGREE and AUTHOR.
    instrument_keys : sequence of str
        ``meta.instrument`` attributes copied from the frame when it has them.
    """
    meta = reference.meta
    meta.telescope = frame.meta.telescope
    for key in instrument_keys:
        value = getattr(frame.meta.instrument, key, None)
        if value is not None:
            setattr(meta.instrument, key, value)
    meta.reftype = reftype
    meta.description = description
    meta.useafter, meta.pedigree, meta.author = useafter, pedigree, author
    meta.processing_level = 2
    meta.obstype = "CAL"
    meta.filename = None
