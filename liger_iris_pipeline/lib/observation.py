"""Observation categories (OBSTYPE, OBSNAME) of processed products."""

__all__ = ["exposure_kind", "observation_category"]


def observation_category(model):
    """Return ``(OBSTYPE, OBSNAME)`` of a processed frame from its exposure type and detector.

    Parameters
    ----------
    model : IRISImageModel
        A processed frame.

    Returns
    -------
    tuple of str or None
        E.g. ``("SCI", "IMG2-SCI")`` for a science exposure of imager detector IMG2;
        ``(None, None)`` when the exposure type has no imager category.
    """
    categories = {
        "IMAGE": ("SCI", "SCI"),
        "SKY": ("SCI", "SKY"),
        "DARK": ("CAL", "DRK"),
        "FLAT": ("CAL", "NFF"),
        "TELLURIC": ("CAL", "TEL"),
        "PINHOLE": ("CAL", "DMP"),
        "STANDARD": ("CAL", "STD"),
    }
    obstype, kind = categories.get(exposure_kind(model), (None, None))
    detector = model.meta.instrument.detector or "IMG1"
    if obstype is None or model.meta.instrument.mode == "IFS" or not detector.startswith("IMG"):
        return None, None
    return obstype, f"{detector}-{kind}"


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
