"""`FitDistortionStep`: the distortion reference from a pinhole-grid frame."""

import logging

from ..lib.models import model_name
from ..lib.observation import exposure_kind
from ..lib.references import REFERENCE_SPEC, describe_reference
from ..lib.subarray import subarray_bounds
from ..stpipe import TMTStep
from .pinholes import DistortionFitError, find_pinholes, fit_distortion

__all__ = ["FitDistortionStep", "distortion_reference"]

log = logging.getLogger(__name__)


class FitDistortionStep(TMTStep):
    """Measure the pinhole centroids of a pinhole-grid frame and fit the distortion polynomials.

    The input is a Level 1 (or 2) frame of the pinhole mask (EXP_TYPE ``<INSTRUME>_PINHOLE``),
    full frame or subarray; the product is a `TMTDistortionModel` (suffix ``distortion``) whose
    polynomials act on 0-based full-frame pixels (see ``pinholes``).
    """

    class_alias = "fit_distortion"

    spec = (
        """
    degree = integer(min=2, max=7, default=3)  # Degree of the distortion polynomials
    pitch = float(min=0, default=None)  # Pinhole pitch in focal-plane pixels (None: fitted)
    fwhm = float(min=0.5, default=4.0)  # FWHM of the pinhole images (pixels), for detection
    threshold = float(min=1, default=20.0)  # Detection threshold (background standard deviations)
    nsigma = float(min=1, default=4.0)  # Clipping threshold on the fit residuals (robust sigmas)
    """
        + REFERENCE_SPEC
    )

    def apply(self, model):
        """Fit the distortion of the frame (see `TMTStep.apply`).

        Returns
        -------
        TMTDistortionModel

        Raises
        ------
        DistortionFitError
            Too few pinholes for the degree.
        """
        name = model_name(model)
        kind = exposure_kind(model)
        if kind not in (None, "PINHOLE"):
            log.warning("%s: EXP_TYPE %s is not a pinhole-grid exposure", name, model.meta.exposure.type)
        x, y, _ = find_pinholes(model.data, model.dq, model.err, fwhm=self.fwhm, threshold=self.threshold, name=name)
        xstart, ystart, _, _ = subarray_bounds(model)
        x, y = x + (xstart - 1), y + (ystart - 1)  # full-frame pixels
        ny, nx = detector_shape(model)
        center = ((nx - 1) / 2.0, (ny - 1) / 2.0)
        log.info("%s: %d pinholes found", name, len(x))
        fit = fit_distortion(
            x, y, center, max(nx, ny) / 2.0, pitch=self.pitch, degree=self.degree, nsigma=self.nsigma, name=name
        )
        return distortion_reference(model, fit, self.useafter, self.pedigree, self.author)


def detector_shape(model):
    """Return ``(ny, nx)`` of the full detector of a frame (DETYSIZE, DETXSIZE; the frame's own if absent).

    Parameters
    ----------
    model : IRISImageModel
        A frame with SUBSTRT1/2 and DETXSIZE/DETYSIZE (or a full frame without them).

    Returns
    -------
    tuple of int
    """
    sub = model.meta.subarray
    ny, nx = model.data.shape[-2:]
    if sub.detxsize is None or sub.detysize is None:
        if (sub.xstart or 1) != 1 or (sub.ystart or 1) != 1:
            raise DistortionFitError(
                f"{model_name(model)}: a subarray without the detector size (DETXSIZE, DETYSIZE): "
                "the full-frame centre is unknown"
            )
        return ny, nx
    return int(sub.detysize), int(sub.detxsize)


def distortion_reference(frame, fit, useafter, pedigree, author):
    """Return the `TMTDistortionModel` of a fit, with the frame's instrument metadata.

    Parameters
    ----------
    frame : IRISImageModel
        The pinhole frame (instrument, detector, telescope are copied).
    fit : DistortionFit
        From `fit_distortion`.
    useafter, pedigree, author : str
        USEAFTER (``YYYY-MM-DDThh:mm:ss``), PEDIGREE and AUTHOR.

    Returns
    -------
    TMTDistortionModel
    """
    from ..datamodels import TMTDistortionModel

    reference = TMTDistortionModel(
        coeffs_x=fit.coeffs_x,
        coeffs_y=fit.coeffs_y,
        inverse_coeffs_x=fit.inverse_coeffs_x,
        inverse_coeffs_y=fit.inverse_coeffs_y,
    )
    description = (
        f"Distortion: degree-{fit.degree} polynomials fitted to {fit.npoints} pinholes of "
        f"{frame.meta.filename or 'the pinhole frame'} (pitch {fit.pitch:.4f} px)"
    )
    keys = ("name", "detector", "detector_serial", "filter", "pupil", "plate_scale")
    describe_reference(reference, frame, "DISTORTION", description, useafter, pedigree, author, keys)
    meta = reference.meta
    for key, value in frame.meta.cal_step.instance.items():
        setattr(meta.cal_step, key, value)  # the frame's calibration (dark_current...) is the reference's
    meta.subarray.name = "FULL"  # the polynomials act on full-frame pixels, whatever the frame read out
    dist = meta.distortion
    dist.npoints, dist.degree = fit.npoints, fit.degree
    dist.rms_x, dist.rms_y = fit.rms
    dist.center_x, dist.center_y = fit.center
    dist.scale = fit.scale
    return reference
