"""Aperture photometry of a standard star and the DN/s -> MJy/sr conversion it gives, without stpipe.

The star is located at the brightest pixel of the median-filtered frame (robust to single hot
pixels) and refined with a fit of a pixel-integrated circular Gaussian (photutils
``fit_2dgaussian``), which also measures the FWHM. Its rate is the sum in a circular aperture
of radius ``aperture_radius`` FWHM minus the local background, the sigma-clipped mean of an
annulus of ``annulus`` FWHM, both in photutils' exact overlap mode.

Aperture correction: the aperture holds the fraction of the flux that the fitted Gaussian
model (``CircularGaussianPRF``, pixel-integrated, the simulator's diffraction-limited core of
FWHM ``1.03 lambda / D``) puts inside it on the good pixels; the rate is divided by that
fraction. At the default 3 FWHM it is ``1 - 2**-36`` for an unmasked Gaussian, so the correction
only compensates DO_NOT_USE pixels in the aperture. A PSF with a halo reaching beyond the
aperture (the simulator's optional Moffat halo) needs a larger aperture: the Gaussian correction
does not see the halo. The curve of growth between the aperture and the background annulus
tells when the halo is narrower than the annulus (``wing_fraction``; the step warns when that ring
holds significantly more flux than the model); a halo broader than the annulus is a pedestal that
the local background removes, from the standard and, measured the same way, from science stars.
"""

import logging
import math
from dataclasses import dataclass

import numpy as np

from ..lib.masks import DO_NOT_USE

log = logging.getLogger(__name__)

__all__ = [
    "JY_PER_MJY",
    "StandardMeasurement",
    "StandardPhotometryError",
    "combine_conversions",
    "measure_standard",
    "read_standards_catalog",
    "standard_flux",
]

JY_PER_MJY = 1.0e6

DETECTION_THRESHOLD = 5.0
"""Minimum peak of the median-filtered frame above its background, in its standard deviations."""


class StandardPhotometryError(ValueError):
    """A standard-star frame or catalog that cannot give a conversion."""


@dataclass
class StandardMeasurement:
    """Aperture photometry of one standard star.

    Attributes
    ----------
    x, y : float
        0-based pixel position of the star in the frame.
    fwhm : float
        Fitted FWHM (pixels).
    rate, rate_error : float
        Total rate of the star (DN/s), corrected to the full PSF, and its 1-sigma error
        (pixel errors in the aperture and the error of the local background).
    background : float
        Local background (DN/s per pixel).
    aperture_radius : float
        Aperture radius (pixels).
    aperture_correction : float
        Fraction of the Gaussian model's flux the aperture holds on good pixels (the rate is the
        aperture sum divided by it).
    masked_pixels : int
        DO_NOT_USE or non-finite pixels inside the aperture.
    wing_fraction, wing_fraction_error : float
        Flux between the aperture and the background annulus beyond the Gaussian model's share
        there, as a fraction of ``rate``, and its error: the curve of growth check. Significantly
        positive, the PSF has wings (a halo) that the aperture correction misses.
    """

    x: float
    y: float
    fwhm: float
    rate: float
    rate_error: float
    background: float
    aperture_radius: float
    aperture_correction: float
    masked_pixels: int
    wing_fraction: float = 0.0
    wing_fraction_error: float = 0.0


def measure_standard(data, err, dq, aperture_radius=3.0, annulus=(4.0, 6.0), fit_box=15, name="frame"):
    """Measure the total rate of the one bright star of a frame.

    Parameters
    ----------
    data, err : numpy.ndarray
        Rate (DN/s) and its 1-sigma error, 2-D, sky not subtracted.
    dq : numpy.ndarray
        DQ flags; DO_NOT_USE pixels are left out.
    aperture_radius : float
        Aperture radius in FWHM.
    annulus : tuple of float
        Inner and outer radii of the background annulus in FWHM.
    fit_box : int
        Side (pixels, odd) of the box of the Gaussian fit.
    name : str
        The frame, for messages.

    Returns
    -------
    StandardMeasurement

    Raises
    ------
    StandardPhotometryError
        No star, or the aperture and annulus do not fit in the frame.
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.aperture import CircularAnnulus, CircularAperture, aperture_photometry
    from photutils.psf import CircularGaussianPRF, fit_2dgaussian
    from scipy.ndimage import median_filter

    data = np.asarray(data, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    bad = ((np.asarray(dq) & DO_NOT_USE) != 0) | ~np.isfinite(data) | ~np.isfinite(err)
    if bad.all():
        raise StandardPhotometryError(f"{name}: no good pixel")
    _, level, _ = sigma_clipped_stats(data[~bad], sigma=3.0)
    filled = np.where(bad, level, data)
    # The 3x3 median ignores single hot pixels and cosmic-ray residuals; a star's core survives it.
    smoothed = median_filter(filled, size=3)
    _, smooth_level, smooth_noise = sigma_clipped_stats(smoothed, sigma=3.0)
    peak = np.unravel_index(np.argmax(smoothed), data.shape)
    y0, x0 = float(peak[0]), float(peak[1])
    if not smoothed[peak] - smooth_level > DETECTION_THRESHOLD * max(smooth_noise, 1e-30):
        raise StandardPhotometryError(
            f"{name}: no star brighter than {DETECTION_THRESHOLD:g} sigma of the background (median-filtered)"
        )

    fit_box = int(fit_box) | 1
    fit = fit_2dgaussian(
        filled - level, xypos=[(x0, y0)], fwhm=3.0, fix_fwhm=False, fit_shape=fit_box, mask=bad, error=None
    )
    result = fit.results
    x, y, fwhm = float(result["x_fit"][0]), float(result["y_fit"][0]), abs(float(result["fwhm_fit"][0]))
    if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(fwhm) and 0.3 < fwhm < fit_box):
        raise StandardPhotometryError(f"{name}: the Gaussian fit of the star near ({x0:.0f}, {y0:.0f}) failed")

    radius = aperture_radius * fwhm
    inner, outer = annulus[0] * fwhm, annulus[1] * fwhm
    ny, nx = data.shape
    if not (outer < x < nx - 1 - outer and outer < y < ny - 1 - outer):
        raise StandardPhotometryError(
            f"{name}: the background annulus ({outer:.1f} px) around the star at ({x:.1f}, {y:.1f}) "
            f"does not fit in the {nx}x{ny} frame"
        )
    aperture = CircularAperture((x, y), r=radius)
    ring = CircularAnnulus((x, y), r_in=inner, r_out=outer)
    in_ring = (ring.to_mask(method="center").to_image(data.shape) > 0) & ~bad
    ring_mean, _, ring_std = sigma_clipped_stats(data[in_ring], sigma=3.0)
    background_error = ring_std / math.sqrt(np.count_nonzero(in_ring))

    photometry = aperture_photometry(data - ring_mean, aperture, error=err, mask=bad)
    good_area = float(aperture_photometry(np.ones_like(data), aperture, mask=bad)["aperture_sum"][0])
    yy, xx = np.mgrid[0:ny, 0:nx]
    model = CircularGaussianPRF(flux=1.0, x_0=x, y_0=y, fwhm=fwhm)(xx, yy)
    enclosed = float(aperture_photometry(model, aperture, mask=bad)["aperture_sum"][0])
    masked = int(np.count_nonzero((aperture.to_mask(method="center").to_image(data.shape) > 0) & bad))

    aperture_sum = float(photometry["aperture_sum"][0])
    variance = float(photometry["aperture_sum_err"][0]) ** 2 + (good_area * background_error) ** 2
    # Curve of growth beyond the aperture: the flux between the aperture and the annulus, less the
    # model's share there. Positive when the PSF has wings the Gaussian core does not (a halo).
    between = CircularAnnulus((x, y), r_in=radius, r_out=inner)
    outside = aperture_photometry(data - ring_mean, between, error=err, mask=bad)
    outside_area = float(aperture_photometry(np.ones_like(data), between, mask=bad)["aperture_sum"][0])
    outside_model = float(aperture_photometry(model, between, mask=bad)["aperture_sum"][0])
    rate = aperture_sum / enclosed
    wing = float(outside["aperture_sum"][0]) - outside_model * rate
    wing_error = math.hypot(float(outside["aperture_sum_err"][0]), outside_area * background_error)
    return StandardMeasurement(
        x=x,
        y=y,
        fwhm=fwhm,
        rate=rate,
        rate_error=math.sqrt(variance) / enclosed,
        background=float(ring_mean),
        aperture_radius=radius,
        aperture_correction=enclosed,
        masked_pixels=masked,
        wing_fraction=wing / rate,
        wing_fraction_error=wing_error / rate,
    )


def read_standards_catalog(path):
    """Read a standards catalog (ECSV: ``name, filter, flux_jy``).

    Parameters
    ----------
    path : str or os.PathLike
        The catalog.

    Returns
    -------
    astropy.table.Table

    Raises
    ------
    StandardPhotometryError
        Missing file, unreadable, or without the columns.
    """
    from astropy.table import Table

    try:
        table = Table.read(path, format="ascii.ecsv")
    except FileNotFoundError:
        raise StandardPhotometryError(f"{path}: standards catalog not found") from None
    except Exception as exc:  # noqa: BLE001 - astropy raises many kinds for a bad file
        raise StandardPhotometryError(f"{path}: not a readable ECSV standards catalog ({exc})") from None
    missing = [column for column in ("name", "filter", "flux_jy") if column not in table.colnames]
    if missing:
        raise StandardPhotometryError(f"{path}: the standards catalog has no column {', '.join(missing)}")
    return table


def standard_flux(catalog, star, filter_name, path="the standards catalog"):
    """Return a standard's flux density (Jy) in a filter.

    Parameters
    ----------
    catalog : astropy.table.Table
        From `read_standards_catalog`.
    star, filter_name : str
        TARGNAME and FILTER of the frame.
    path : str
        The catalog's file, for messages.

    Returns
    -------
    float

    Raises
    ------
    StandardPhotometryError
        The star or its filter is not in the catalog, or its flux is not positive.
    """
    names = np.array([str(value).strip() for value in catalog["name"]])
    filters = np.array([str(value).strip() for value in catalog["filter"]])
    rows = np.flatnonzero((names == str(star).strip()) & (filters == filter_name))
    if not rows.size:
        known = "the star is not in it" if str(star).strip() not in names else f"no row for filter {filter_name}"
        raise StandardPhotometryError(f"{path}: no flux of standard {star!r} in filter {filter_name} ({known})")
    flux = float(catalog["flux_jy"][rows[0]])
    if not (math.isfinite(flux) and flux > 0):
        raise StandardPhotometryError(f"{path}: standard {star!r} has flux {flux} Jy in filter {filter_name}")
    return flux


def combine_conversions(values, errors):
    """Return the inverse-variance weighted mean of several conversions and its relative uncertainty.

    Parameters
    ----------
    values, errors : sequence of float
        PHOTMJSR of each measurement and its 1-sigma error.

    Returns
    -------
    tuple of float
        ``(mean, relative uncertainty of the mean)``.
    """
    values, errors = np.asarray(values, dtype=np.float64), np.asarray(errors, dtype=np.float64)
    weights = 1.0 / errors**2
    mean = float(np.sum(weights * values) / np.sum(weights))
    return mean, float(1.0 / math.sqrt(np.sum(weights)) / mean)
