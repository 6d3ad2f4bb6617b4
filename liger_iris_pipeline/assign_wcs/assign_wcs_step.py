"""`AssignWcsStep`: the frame's gwcs from its pointing metadata."""

import logging

from ..stpipe import TMTStep
from .imaging import assign_wcs

__all__ = ["AssignWcsStep"]

log = logging.getLogger(__name__)


class AssignWcsStep(TMTStep):
    """Store a gwcs built from ``meta.wcsinfo`` in ``meta.wcs`` and complete the FITS WCS keywords.

    The gwcs and the keywords (CRPIX, CRVAL, CDELT, PC, CTYPE, CUNIT, RADESYS) describe the
    same TAN projection, so astropy.wcs and DS9 reading the header see the same sky as the gwcs.
    There is no distortion reference type yet: ``override_distortion`` accepts only ``N/A``.
    """

    class_alias = "assign_wcs"

    spec = """
    override_distortion = is_string_or_datamodel(default='N/A')  # Distortion reference: N/A only (no DISTORTION type)
    """

    def apply(self, model):
        """Assign the WCS to the step's copy of the frame (see `TMTStep.apply`).

        Raises
        ------
        ValueError
            A distortion reference was given, or the pointing metadata is incomplete or
            inconsistent.
        """
        if self.override_distortion not in (None, "", "N/A"):
            raise ValueError(
                f"{self.name}: no distortion model is implemented and CRDS has no DISTORTION reference type; "
                f"override_distortion must be N/A, got {self.override_distortion!r}"
            )
        assign_wcs(model)
        model.meta.ref_file.distortion.name = "N/A"
        info = model.meta.wcsinfo
        log.info(
            "WCS: CRPIX (%.3f, %.3f) -> CRVAL (%.8f, %.8f) deg, CDELT %.4g/%.4g arcsec, PA %s deg",
            info.crpix1,
            info.crpix2,
            info.crval1,
            info.crval2,
            info.cdelt1 * 3600.0,
            info.cdelt2 * 3600.0,
            info.position_angle,
        )
        return model
