"""Photometric calibration on models, without stpipe (JWST's MJy/sr convention).

- The PHOTOM reference has one row per filter: ``photmjsr`` (MJy/sr per DN/s) and its relative
  ``uncertainty``; the row of the frame's FILTER is used.
- ``SCI`` and ``ERR`` are multiplied by ``PHOTMJSR`` and the variance arrays by its square;
  ``BUNIT = 'MJy/sr'`` (the units of ERR and the variances follow from it when the frame is saved).
- ``PHOTMJSR``, ``PHOTUJA2`` (the same conversion in uJy/arcsec^2), ``PHOTUNC``, and the nominal
  pixel area ``PIXAR_SR``, ``PIXAR_A2`` (plate scale squared) are recorded, so that a point
  source's flux density is ``sum(SCI) * PIXAR_SR`` MJy.
- The uncertainty of the conversion is a systematic error of the whole frame: it is recorded in
  PHOTUNC, not added to the per-pixel variances (JWST does the same).
- DQ is untouched; NaNs stay NaN (and flagged).
"""

import logging
import math

import numpy as np

from ..lib.models import model_name
from ..lib.variance import VARIANCE_ARRAYS

log = logging.getLogger(__name__)

__all__ = [
    "CALIBRATED_UNIT",
    "PhotomError",
    "apply_photom",
    "conversion_for_filter",
    "pixel_area",
    "SR_PER_ARCSEC2",
    "UJY_ARCSEC2_PER_MJY_SR",
]

CALIBRATED_UNIT = "MJy/sr"
"""BUNIT of a calibrated frame."""

RATE_UNIT = "DN/s"
"""BUNIT of the frames photom calibrates."""

SR_PER_ARCSEC2 = (math.pi / 180.0 / 3600.0) ** 2
"""Solid angle of one square arcsecond (sr)."""

UJY_ARCSEC2_PER_MJY_SR = 1.0e12 * SR_PER_ARCSEC2
"""1 MJy/sr in uJy/arcsec^2 (23.5045): ``PHOTUJA2 = PHOTMJSR * UJY_ARCSEC2_PER_MJY_SR``."""

PIXEL_AREA_RTOL = 1.0e-6
"""Largest relative difference between the reference's PIXAR_SR and the frame's nominal pixel area."""


class PhotomError(ValueError):
    """A frame that cannot be calibrated with a PHOTOM reference."""


def pixel_area(plate_scale):
    """Return the nominal pixel area of a plate scale.

    Parameters
    ----------
    plate_scale : float
        arcsec/pixel.

    Returns
    -------
    tuple of float
        ``(sr, arcsec^2)``.
    """
    arcsec2 = float(plate_scale) ** 2
    return arcsec2 * SR_PER_ARCSEC2, arcsec2


def conversion_for_filter(photom, filter_name):
    """Return the PHOTOM row of a filter.

    Parameters
    ----------
    photom : TMTPhotomModel
        The reference.
    filter_name : str
        The frame's FILTER.

    Returns
    -------
    tuple of float
        ``(photmjsr, relative uncertainty)``.

    Raises
    ------
    PhotomError
        No row, several rows, or an unusable conversion for the filter.
    """
    name = model_name(photom)
    table = photom.phot_table
    filters = [str(value).strip() for value in table["filter"]] if table is not None else []
    rows = [index for index, value in enumerate(filters) if value == filter_name]
    if not rows:
        raise PhotomError(
            f"the photom reference {name} has no row for filter {filter_name!r} "
            f"(it has {', '.join(filters) or 'no rows'})"
        )
    if len(rows) > 1:
        raise PhotomError(f"the photom reference {name} has {len(rows)} rows for filter {filter_name!r}")
    photmjsr = float(table["photmjsr"][rows[0]])
    uncertainty = float(table["uncertainty"][rows[0]])
    if not (math.isfinite(photmjsr) and photmjsr > 0):
        raise PhotomError(f"the photom reference {name} has PHOTMJSR {photmjsr} for filter {filter_name!r}")
    return photmjsr, uncertainty


def apply_photom(science, photom):
    """Convert a count-rate frame to MJy/sr, in place.

    Parameters
    ----------
    science : IRISImageModel
        Flat-fielded frame in DN/s.
    photom : TMTPhotomModel
        PHOTOM reference with a row for the frame's filter.

    Returns
    -------
    float
        PHOTMJSR applied (MJy/sr per DN/s).

    Raises
    ------
    PhotomError
        The frame is not in DN/s (already calibrated), has no plate scale, its filter has no row,
        or the reference's pixel area is not the frame's.
    """
    name = model_name(science)
    unit = science.meta.bunit_data
    if unit == CALIBRATED_UNIT:
        raise PhotomError(f"{name} is already in {CALIBRATED_UNIT} (BUNIT): photom would calibrate it twice")
    if unit not in (None, RATE_UNIT):
        raise PhotomError(f"{name} has BUNIT {unit!r}; photom converts {RATE_UNIT} frames")
    plate_scale = science.meta.instrument.plate_scale
    if not plate_scale:
        raise PhotomError(f"{name} has no plate scale (PIXSCALE): its pixel area is unknown")
    area_sr, area_arcsec2 = pixel_area(plate_scale)
    reference_area = photom.meta.photometry.pixelarea_steradians
    if reference_area is not None and not math.isclose(reference_area, area_sr, rel_tol=PIXEL_AREA_RTOL):
        raise PhotomError(
            f"{name}: the photom reference {model_name(photom)} is for pixels of {reference_area:.6e} sr "
            f"(PIXAR_SR), the frame's plate scale {plate_scale} arcsec gives {area_sr:.6e} sr"
        )
    photmjsr, uncertainty = conversion_for_filter(photom, science.meta.instrument.filter)

    science.data *= np.float32(photmjsr)
    science.err *= np.float32(photmjsr)
    square = np.float32(photmjsr**2)
    for array_name in VARIANCE_ARRAYS:
        array = getattr(science, array_name, None)
        if array is not None:
            array *= square
    science.meta.bunit_data = science.meta.bunit_err = CALIBRATED_UNIT
    photometry = science.meta.photometry
    photometry.conversion_megajanskys = photmjsr
    photometry.conversion_microjanskys = photmjsr * UJY_ARCSEC2_PER_MJY_SR
    photometry.conversion_uncertainty = uncertainty
    photometry.pixelarea_steradians = area_sr
    photometry.pixelarea_arcsecsq = area_arcsec2
    log.info(
        "%s: filter %s, PHOTMJSR %.6g MJy/sr per DN/s (relative uncertainty %.2g), pixel area %.6g sr",
        name,
        science.meta.instrument.filter,
        photmjsr,
        uncertainty,
        area_sr,
    )
    return photmjsr
