"""Observation categories (OBSTYPE, OBSNAME) of processed products."""

__all__ = ["observation_category"]


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
        "IRIS_IMAGE": ("SCI", "SCI"),
        "IRIS_SKY": ("SCI", "SKY"),
        "IRIS_DARK": ("CAL", "DRK"),
        "IRIS_FLAT": ("CAL", "NFF"),
        "IRIS_TELLURIC": ("CAL", "TEL"),
    }
    obstype, kind = categories.get(model.meta.exposure.type, (None, None))
    detector = model.meta.instrument.detector or "IMG1"
    if obstype is None or model.meta.instrument.mode == "IFS" or not detector.startswith("IMG"):
        return None, None
    return obstype, f"{detector}-{kind}"
