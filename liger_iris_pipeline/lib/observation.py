"""Observation categories (OBSTYPE, OBSNAME) of processed products."""

__all__ = ["exposure_kind", "is_ifs", "observation_category"]


_IMAGER_CATEGORIES = {
    "IMAGE": ("SCI", "SCI"),
    "SKY": ("SCI", "SKY"),
    "DARK": ("CAL", "DRK"),
    "FLAT": ("CAL", "NFF"),
    "TELLURIC": ("CAL", "TEL"),
    "PINHOLE": ("CAL", "DMP"),
    "STANDARD": ("CAL", "STD"),
}
"""Exposure kind of an imager exposure -> (OBSTYPE, the kind in OBSNAME after the detector)."""

_IFS_CATEGORIES = {
    "IFS": ("SCI", "SCI"),
    "IFS_SKY": ("SCI", "SKY"),
    "IFS_FLAT": ("CAL", "NFF"),
    "IFS_DARK": ("CAL", "DRK"),
    "ARC": ("ENG", "IDP"),
    "TELLURIC": ("CAL", "TEL"),
    "IFS_SCAN": ("CAL", "SPX"),
}
"""Exposure kind of an IFS exposure -> (OBSTYPE, the kind in OBSNAME after the IFS mode)."""

_IFS_MODES = {"SLICER": "SLI", "LENSLET": "LEN"}
"""IFSMODE -> its OBSNAME prefix."""


def observation_category(model):
    """Return ``(OBSTYPE, OBSNAME)`` of a processed product from its exposure type, detector and IFS mode.

    The categories are those of the IRIS data reduction system's documentation (OBSNAME: the
    imager detector ``IMG1``-``IMG4`` or the IFS mode ``SLI`` / ``LEN``, then the kind).

    Parameters
    ----------
    model : TMTDataModel
        A processed frame, cube or spectrum.

    Returns
    -------
    tuple of str or None
        E.g. ``("SCI", "IMG2-SCI")`` for a science exposure of imager detector IMG2,
        ``("ENG", "SLI-IDP")`` for an arc of the slicer; ``(None, None)`` when the exposure type
        has no category for its instrument mode (lenslet scans exist only for the lenslet).
    """
    kind = exposure_kind(model)
    instrument = model.meta.instrument
    if is_ifs(model):
        obstype, name = _IFS_CATEGORIES.get(kind, (None, None))
        prefix = _IFS_MODES.get(instrument.ifs_mode)
        if obstype is None or prefix is None or (name == "SPX" and prefix != "LEN"):
            return None, None
        return obstype, f"{prefix}-{name}"
    obstype, name = _IMAGER_CATEGORIES.get(kind, (None, None))
    detector = instrument.detector or "IMG1"
    if obstype is None or not detector.startswith("IMG"):
        return None, None
    return obstype, f"{detector}-{name}"


def is_ifs(model):
    """Return whether a model is an exposure of the integral-field spectrograph, or a product of one.

    Parameters
    ----------
    model : TMTDataModel or dict
        A ramp, frame, cube or spectrum, or its flat ``meta.*`` values (`TMTDataModel.get_crds_parameters`,
        `datamodels.header_metadata`).

    Returns
    -------
    bool
        True for ``INSTMODE = 'IFS'`` or the IFS detector (``DETECTOR = 'IFU'``).
    """
    if isinstance(model, dict):
        mode, detector = model.get("meta.instrument.mode"), model.get("meta.instrument.detector")
    else:
        mode, detector = model.meta.instrument.mode, model.meta.instrument.detector
    return mode == "IFS" or detector == "IFU"


def exposure_kind(model):
    """Return the kind of an exposure, EXP_TYPE without its instrument (``IRIS_DARK`` -> ``DARK``).

    Parameters
    ----------
    model : TMTDataModel
        Any exposure or product of one.

    Returns
    -------
    str or None
        ``IMAGE``, ``SKY``, ``DARK``, ``FLAT``, ``IFS_SKY``...; None without EXP_TYPE.
    """
    exposure_type = model.meta.exposure.type
    instrument = model.meta.instrument.name
    if not exposure_type:
        return None
    if instrument and exposure_type.startswith(instrument + "_"):
        return exposure_type[len(instrument) + 1 :]
    return exposure_type.split("_", 1)[-1]
