"""Reference files made by the calibration pipelines (master dark, flat) from combined frames."""

from .. import dqflags

__all__ = ["reference_from_frame"]


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
