"""`MeasurePhotomStep`: the PHOTOM reference from standard-star frames."""

import logging
from collections import defaultdict

import numpy as np

from ..lib.models import model_name
from ..lib.observation import exposure_kind
from ..lib.references import REFERENCE_SPEC, describe_reference
from ..photom.photom import RATE_UNIT, pixel_area
from ..stpipe import TMTStep
from .standards import (
    JY_PER_MJY,
    StandardPhotometryError,
    combine_conversions,
    measure_standard,
    read_standards_catalog,
    standard_flux,
)

__all__ = ["MeasurePhotomStep", "photom_reference"]

log = logging.getLogger(__name__)

WING_SIGMAS = 4.0
"""Significance of the flux beyond the aperture (curve of growth) that makes the step warn of a halo."""


class MeasurePhotomStep(TMTStep):
    """Measure standard stars on dark-subtracted, flat-fielded frames and make the PHOTOM reference.

    Each frame (EXP_TYPE ``<INSTRUME>_STANDARD``, DN/s) holds one standard star, named by
    TARGNAME in the ``standards_catalog`` (ECSV ``name, filter, flux_jy``). Its rate ``R``
    (DN/s, aperture photometry with a local background, `standards`) gives
    ``PHOTMJSR = F_nu / (R * PIXAR_SR)`` (MJy/sr per DN/s, ``F_nu`` in MJy) with the relative
    error of ``R``; frames of the same filter are averaged with inverse-variance weights. The
    product is a `TMTPhotomModel` (suffix ``photom``) with one row per filter.
    """

    class_alias = "measure_photom"
    frames_input = True
    input_role = "standard-star frame"

    spec = (
        """
    standards_catalog = string(default=None)  # ECSV catalog of the standards (name, filter, flux_jy)
    aperture_radius = float(min=1, default=3.0)  # Aperture radius (FWHM of the star)
    annulus_inner = float(min=1, default=4.0)  # Inner radius of the background annulus (FWHM)
    annulus_outer = float(min=1, default=6.0)  # Outer radius of the background annulus (FWHM)
    fit_box = integer(min=5, default=15)  # Side (pixels) of the Gaussian fit that locates the star
    """
        + REFERENCE_SPEC
    )

    def apply(self, frames):
        """Measure every frame and make the reference (see `TMTStep.apply`).

        Returns
        -------
        TMTPhotomModel

        Raises
        ------
        StandardPhotometryError
            No catalog, a star or filter missing from it, frames of different detectors or
            plate scales, a frame not in DN/s, or a star that cannot be measured.
        """
        if not self.standards_catalog:
            raise StandardPhotometryError("measure_photom needs a standards catalog (parameter standards_catalog)")
        if not self.annulus_outer > self.annulus_inner > self.aperture_radius:
            raise StandardPhotometryError(
                "measure_photom: the radii must grow: aperture_radius < annulus_inner < annulus_outer"
            )
        catalog = read_standards_catalog(self.standards_catalog)
        _check_same_detector(frames)
        area_sr, _ = pixel_area(frames[0].meta.instrument.plate_scale)
        measurements = defaultdict(list)
        for frame in frames:
            name = model_name(frame)
            if exposure_kind(frame) not in (None, "STANDARD"):
                log.warning("%s: EXP_TYPE %s is not a standard-star exposure", name, frame.meta.exposure.type)
            if (frame.meta.bunit_data or RATE_UNIT) != RATE_UNIT:
                raise StandardPhotometryError(f"{name} has BUNIT {frame.meta.bunit_data!r}, not {RATE_UNIT}")
            filter_name, star = frame.meta.instrument.filter, frame.meta.target.name
            if not star:
                raise StandardPhotometryError(f"{name} has no TARGNAME: the standard star is unknown")
            flux_mjy = standard_flux(catalog, star, filter_name, self.standards_catalog) / JY_PER_MJY
            result = measure_standard(
                frame.data,
                frame.err,
                frame.dq,
                aperture_radius=self.aperture_radius,
                annulus=(self.annulus_inner, self.annulus_outer),
                fit_box=self.fit_box,
                name=f"{name} ({star}, {filter_name})",
            )
            if result.wing_fraction > WING_SIGMAS * result.wing_fraction_error:
                log.warning(
                    "%s: %.2f %% (+- %.2f %%) of the star's flux lies between the aperture (%.1f px) and the "
                    "background annulus: the PSF has wings beyond its Gaussian core, which the aperture "
                    "correction misses; a larger aperture_radius (and annulus) would hold them",
                    name,
                    100 * result.wing_fraction,
                    100 * result.wing_fraction_error,
                    result.aperture_radius,
                )
            photmjsr = flux_mjy / (result.rate * area_sr)
            log.info(
                "%s: %s in %s at (%.2f, %.2f), FWHM %.2f px: %.6g +- %.2g DN/s (aperture correction %.5f, "
                "%d masked pixels) -> PHOTMJSR %.6g",
                name,
                star,
                filter_name,
                result.x,
                result.y,
                result.fwhm,
                result.rate,
                result.rate_error,
                result.aperture_correction,
                result.masked_pixels,
                photmjsr,
            )
            measurements[filter_name].append((photmjsr, photmjsr * result.rate_error / result.rate))
        rows = []
        for filter_name, values in measurements.items():
            mean, uncertainty = combine_conversions(*zip(*values, strict=True))
            rows.append((filter_name, mean, uncertainty, len(values)))
        description = (
            f"Photometric conversion DN/s -> MJy/sr from {len(frames)} standard-star exposure(s) in "
            f"{len(rows)} filter(s), {self.standards_catalog}"
        )
        return photom_reference(frames[0], rows, description, self.useafter, self.pedigree, self.author)


def _check_same_detector(frames):
    """Raise `StandardPhotometryError` unless all frames share instrument, detector and plate scale."""
    first = frames[0].meta.instrument
    if not first.plate_scale:
        raise StandardPhotometryError(f"{model_name(frames[0])} has no plate scale (PIXSCALE)")
    for frame in frames[1:]:
        meta = frame.meta.instrument
        if (meta.name, meta.detector, meta.plate_scale) != (first.name, first.detector, first.plate_scale):
            raise StandardPhotometryError(
                f"{model_name(frame)}: {meta.name} {meta.detector} at {meta.plate_scale} arcsec/px, but "
                f"{model_name(frames[0])} is {first.name} {first.detector} at {first.plate_scale}: "
                "one PHOTOM reference is for one detector"
            )


def photom_reference(frame, rows, description, useafter, pedigree, author):
    """Return a `TMTPhotomModel` with one row per filter and the frame's instrument metadata.

    Parameters
    ----------
    frame : IRISImageModel
        A standard-star frame (instrument, detector, telescope, plate scale are copied).
    rows : list of tuple
        ``(filter, photmjsr, relative uncertainty, nstars)``.
    description, useafter, pedigree, author : str
        DESCRIP, USEAFTER (``YYYY-MM-DDThh:mm:ss``), PEDIGREE and AUTHOR.

    Returns
    -------
    TMTPhotomModel
    """
    from ..datamodels import TMTPhotomModel

    table = np.array(
        sorted(rows),
        dtype=[("filter", "S12"), ("photmjsr", "f8"), ("uncertainty", "f8"), ("nstars", "i4")],
    )
    reference = TMTPhotomModel(phot_table=table)
    keys = ("name", "detector", "detector_serial", "plate_scale")
    describe_reference(reference, frame, "PHOTOM", description, useafter, pedigree, author, keys)
    meta = reference.meta
    meta.instrument.filter = "N/A"  # the rows select the filter
    meta.photometry.pixelarea_steradians, meta.photometry.pixelarea_arcsecsq = pixel_area(
        frame.meta.instrument.plate_scale
    )
    for key, value in frame.meta.cal_step.instance.items():
        setattr(meta.cal_step, key, value)  # the standards' calibration (dark_current, flat_field)
    return reference
