"""`AssignWcsStep`: the frame's gwcs from its pointing metadata and the distortion reference."""

import logging

from ..stpipe import TMTStep
from .imaging import assign_wcs

__all__ = ["AssignWcsStep"]

log = logging.getLogger(__name__)


class AssignWcsStep(TMTStep):
    """Store a gwcs built from ``meta.wcsinfo`` and the distortion in ``meta.wcs``; complete the FITS WCS keywords.

    With a ``distortion`` reference the gwcs goes detector -> focal (undistorted full-frame
    pixels) -> world and the header carries its SIP approximation (``RA---TAN-SIP``); without
    one (N/A from CRDS, or ``override_distortion='N/A'``) it is the pure TAN projection of the
    keywords. Either way astropy.wcs and DS9 reading the SCI header see the sky of the gwcs.
    """

    class_alias = "assign_wcs"
    reference_file_types = ["distortion"]
    optional_reference_types = ("distortion",)

    spec = """
    sip_degree = integer(min=1, max=9, default=None)  # Degree of the SIP approximation (None: lowest meeting sip_max_pix_error)
    sip_max_pix_error = float(min=0, default=0.001)  # Accuracy asked of the SIP approximation, forward and inverse (pixels)
    sip_npoints = integer(min=3, default=32)  # SIP fit grid points along each axis
    """  # noqa: E501

    def apply(self, model, distortion):
        """Assign the WCS to the step's copy of the frame (see `TMTStep.apply`).

        Raises
        ------
        WcsInfoError
            The pointing metadata is incomplete or inconsistent, or the distortion reference malformed.
        """
        if distortion is None:
            log.info("%s: no distortion reference: pure TAN WCS", self.name)
            model.meta.ref_file.distortion.name = "N/A"
        sip_error = assign_wcs(model, distortion, self.sip_degree, self.sip_max_pix_error, self.sip_npoints)
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
        if sip_error is not None:
            log.info(
                "SIP approximation in the header (%s): largest difference from the gwcs over the frame %.2e pixels",
                info.ctype1,
                sip_error,
            )
        return model
