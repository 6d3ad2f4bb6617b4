"""Source catalog of a mosaic (photutils), without stpipe.

1. Background: ``Background2D`` (sigma-clipped median in boxes, median-filtered), subtracted.
2. Detection: the background-subtracted image convolved with a Gaussian of the PSF's FWHM,
   ``detect_sources`` above ``snr_threshold`` times the background RMS over ``npixels``
   connected pixels, then ``deblend_sources``.
3. Properties (``SourceCatalog``): windowed centroid (SExtractor's ``XWIN``), sky position
   from the mosaic's gwcs, FWHM, ellipticity, orientation, segment flux.
4. Aperture photometry (``CircularAperture`` at radii in units of the PSF FWHM) with errors
   from ERR, and a total flux: the middle aperture times its aperture correction, the median
   ratio ``flux(apcorr_radius) / flux(r)`` of bright isolated stars of the image (a Gaussian
   PSF's when there are fewer than ``MIN_APCORR_STARS`` of them).

With the mosaic's context image (CON), each source gets ``n_frames``, the number of inputs at its
centroid, and ``on_frame_edge``, whether the inputs change within its largest aperture: there
drizzle averages each input over the part of an output pixel it covers, which on a star's core
is not the pixel's mean, so such fluxes carry an error the ERR array does not (up to a few
percent for bright stars).

The PSF FWHM is measured on the image (median FWHM of bright compact sources after a first
detection) unless given.

Units: a mosaic in MJy/sr (``BUNIT``) gives fluxes in Jy (``sum * PIXAR_SR * 1e6``) and AB
magnitudes; any other unit gives fluxes in ``BUNIT * pixel`` (e.g. DN/s) and no magnitudes.
"""

import logging
import math
import warnings

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.stats import SigmaClip
from astropy.table import QTable
from photutils.aperture import CircularAperture, aperture_photometry
from photutils.background import Background2D, MedianBackground
from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel
from photutils.utils.exceptions import NoDetectionsWarning
from scipy.signal import fftconvolve

log = logging.getLogger(__name__)

__all__ = ["MIN_APCORR_STARS", "CatalogError", "frame_coverage", "make_catalog"]

MIN_APCORR_STARS = 3
AB_ZERO_POINT_JY = 3631.0


class CatalogError(ValueError):
    """The image cannot be catalogued (no valid pixels, bad parameters)."""


def _background(data, coverage, box_size, filter_size, sources=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns about boxes excluded for their masked pixels
        return Background2D(
            data,
            box_size,
            coverage_mask=coverage,
            mask=sources,
            filter_size=filter_size,
            sigma_clip=SigmaClip(sigma=3.0),
            bkg_estimator=MedianBackground(),
            exclude_percentile=75.0,  # boxes at the mosaic's edges or crowded with sources still count
            fill_value=0.0,
        )


def _detect(data, rms, mask, fwhm, snr_threshold, npixels, deblend):
    size = 2 * int(math.ceil(2.0 * fwhm)) + 1
    kernel = make_2dgaussian_kernel(fwhm, size=size)
    # FFT convolution: a direct one costs kernel-size times more on a full mosaic.
    convolved = fftconvolve(np.where(mask, 0.0, data), kernel.array / kernel.array.sum(), mode="same")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty field is logged by make_catalog
        segments = detect_sources(convolved, snr_threshold * rms, npixels, mask=mask)
    if segments is not None and deblend:
        segments = deblend_sources(convolved, segments, npixels, n_levels=32, contrast=0.001, progress_bar=False)
    return segments, convolved


def measure_fwhm(catalog, min_snr=50.0):
    """Return the median FWHM (pixels) of the bright, compact sources of a ``SourceCatalog``, or None."""
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.asarray(catalog.segment_flux / catalog.segment_flux_err)
    fwhm = np.asarray(catalog.fwhm.value if hasattr(catalog.fwhm, "value") else catalog.fwhm, dtype=float)
    ellipticity = np.asarray(catalog.ellipticity, dtype=float)
    good = np.isfinite(fwhm) & (snr > min_snr) & (ellipticity < 0.2)
    if np.count_nonzero(good) < 1:
        return None
    # The compact ones: stars, not galaxies.
    values = np.sort(fwhm[good])
    return float(np.median(values[: max(1, (len(values) + 1) // 2)]))


def make_catalog(
    data,
    err,
    wcs=None,
    mask=None,
    bunit="MJy/sr",
    pixel_area_sr=None,
    psf_fwhm=None,
    snr_threshold=3.0,
    npixels=5,
    deblend=True,
    bkg_boxsize=64,
    bkg_filter_size=3,
    aperture_radii=(1.0, 1.5, 2.5),
    apcorr_radius=4.0,
    context=None,
):
    """Detect and measure the sources of an image.

    Parameters
    ----------
    data, err : numpy.ndarray
        SCI and ERR (NaN where undefined).
    wcs : gwcs.WCS, optional
        Pixel -> sky; gives ``ra``, ``dec`` and ``sky_centroid``.
    mask : numpy.ndarray, optional
        True for pixels to ignore (besides non-finite ones).
    bunit : str
        Unit of ``data``.
    pixel_area_sr : float, optional
        Solid angle of a pixel (sr); needed for Jy when ``bunit`` is MJy/sr.
    psf_fwhm : float, optional
        PSF FWHM (pixels); measured on the image when None.
    snr_threshold : float
        Detection threshold (multiples of the background RMS, per convolved pixel).
    npixels : int
        Minimum number of connected pixels of a source.
    deblend : bool
        Deblend overlapping sources.
    bkg_boxsize : int
        Background box (pixels); made smaller than the image if need be.
    bkg_filter_size : int
        Median filter of the background boxes.
    aperture_radii : tuple of float
        Aperture radii in units of the PSF FWHM.
    apcorr_radius : float
        Radius (FWHM units) taken as the total flux for the aperture correction.
    context : numpy.ndarray, optional
        The mosaic's context image, (planes, ny, nx) or (ny, nx): gives ``n_frames`` and
        ``on_frame_edge``.

    Returns
    -------
    tuple
        ``(astropy.table.QTable, segmentation image (int32 array))``; an empty table and an
        all-zero image when nothing is detected. ``meta`` holds the FWHM, the aperture
        corrections and the background level.
    """
    data = np.asarray(data, dtype=np.float64)
    err = np.asarray(err, dtype=np.float64)
    invalid = ~np.isfinite(data) | ~np.isfinite(err)
    if mask is not None:
        invalid |= np.asarray(mask, bool)
    if invalid.all():
        raise CatalogError("the image has no valid pixel")
    if len(aperture_radii) < 1 or min(aperture_radii) <= 0 or apcorr_radius <= 0:
        raise CatalogError(f"invalid aperture radii {aperture_radii} / apcorr_radius {apcorr_radius}")
    ny, nx = data.shape
    box = int(max(4, min(bkg_boxsize, ny // 2, nx // 2)))
    background = _background(np.where(invalid, 0.0, data), invalid, box, bkg_filter_size)
    subtracted = np.where(invalid, 0.0, data - background.background)
    rms = background.background_rms
    error = np.where(invalid, 0.0, err)

    measured = psf_fwhm is None
    fwhm = 3.0 if measured else float(psf_fwhm)
    segments, convolved = _detect(subtracted, rms, invalid, fwhm, snr_threshold, npixels, False)
    if segments is not None:
        if measured:
            first = SourceCatalog(subtracted, segments, convolved_data=convolved, error=error, mask=invalid)
            fwhm = measure_fwhm(first) or fwhm
            log.info("PSF FWHM measured on the image: %.3f pixels", fwhm)
        # The sources' wings bias a clipped median up: estimate the background again without them.
        sources = segments.make_source_mask(size=2 * int(math.ceil(fwhm)) + 1)
        background = _background(np.where(invalid, 0.0, data), invalid, box, bkg_filter_size, sources)
        subtracted = np.where(invalid, 0.0, data - background.background)
        rms = background.background_rms
    segments, convolved = _detect(subtracted, rms, invalid, fwhm, snr_threshold, npixels, deblend)
    segmentation = np.zeros(data.shape, np.int32) if segments is None else segments.data.astype(np.int32)
    flux_unit, flux_scale = _flux_unit(bunit, pixel_area_sr)
    meta = {
        "psf_fwhm_pix": fwhm,
        "psf_fwhm_measured": measured,
        "snr_threshold": snr_threshold,
        "npixels": npixels,
        "background_median": float(np.median(background.background[~invalid])),
        "background_rms_median": float(np.median(rms[~invalid])),
        "bunit": bunit,
    }
    if segments is None:
        log.warning("No source detected above %.1f sigma", snr_threshold)
        table = QTable(meta=meta)
        return table, segmentation

    catalog = SourceCatalog(
        subtracted, segments, convolved_data=convolved, error=error, mask=invalid, background=background.background
    )
    x = np.asarray(catalog.x_centroid_win, dtype=float)
    y = np.asarray(catalog.y_centroid_win, dtype=float)
    bad_window = ~(np.isfinite(x) & np.isfinite(y))
    x[bad_window] = np.asarray(catalog.x_centroid, dtype=float)[bad_window]
    y[bad_window] = np.asarray(catalog.y_centroid, dtype=float)[bad_window]

    table = QTable(meta=meta)
    meta = table.meta
    table["label"] = np.asarray(catalog.label, dtype=np.int32)
    table["xcentroid"] = x * u.pix
    table["ycentroid"] = y * u.pix
    if wcs is not None:
        ra, dec = wcs(x, y, with_bounding_box=False)
        table["sky_centroid"] = SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")
        table["ra"] = np.asarray(ra) * u.deg
        table["dec"] = np.asarray(dec) * u.deg
    table["area"] = np.asarray(catalog.area.value, dtype=float) * u.pix**2
    table["fwhm"] = np.asarray(_value(catalog.fwhm), dtype=float) * u.pix
    table["ellipticity"] = np.asarray(catalog.ellipticity, dtype=float)
    table["orientation"] = np.asarray(_value(catalog.orientation), dtype=float) * u.deg
    table["background"] = np.asarray(catalog.background_centroid, dtype=float) * u.Unit(bunit, parse_strict="silent")
    table["segment_flux"] = np.asarray(catalog.segment_flux, dtype=float) * flux_scale * flux_unit
    table["segment_flux_err"] = np.asarray(catalog.segment_flux_err, dtype=float) * flux_scale * flux_unit

    positions = np.column_stack([x, y])
    radii = [r * fwhm for r in aperture_radii]
    fluxes, errors = [], []
    for k, radius in enumerate(radii):
        flux, flux_err = _aperture(subtracted, error, invalid, positions, radius)
        fluxes.append(flux)
        errors.append(flux_err)
        table[f"aper{k + 1}_radius"] = np.full(len(x), radius) * u.pix
        table[f"aper{k + 1}_flux"] = flux * flux_scale * flux_unit
        table[f"aper{k + 1}_flux_err"] = flux_err * flux_scale * flux_unit
    total_flux, total_err = _aperture(subtracted, error, invalid, positions, apcorr_radius * fwhm)
    isolated = _isolated(positions, (apcorr_radius + 2.0) * fwhm) & _inside(positions, apcorr_radius * fwhm, data.shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        bright = isolated & (total_flux / total_err > 100.0) & (np.asarray(catalog.ellipticity) < 0.2)
    corrections = []
    for k, aperture_radius in enumerate(aperture_radii):
        correction, stars = _aperture_correction(fluxes[k], total_flux, bright, aperture_radius, apcorr_radius)
        corrections.append(correction)
        meta[f"apcorr{k + 1}"] = correction
        meta[f"apcorr{k + 1}_nstars"] = stars
    middle = len(radii) // 2
    table["aper_total_flux"] = fluxes[middle] * corrections[middle] * flux_scale * flux_unit
    table["aper_total_flux_err"] = errors[middle] * corrections[middle] * flux_scale * flux_unit
    table["is_isolated"] = isolated
    if context is not None:
        table["n_frames"], table["on_frame_edge"] = frame_coverage(context, positions, max(radii))
    if flux_unit == u.Jy:
        with np.errstate(invalid="ignore", divide="ignore"):
            total = np.asarray(table["aper_total_flux"].value)
            table["aper_total_abmag"] = -2.5 * np.log10(total / AB_ZERO_POINT_JY) * u.ABmag
            table["aper_total_abmag_err"] = (
                2.5 / math.log(10) * np.asarray(table["aper_total_flux_err"].value) / total
            ) * u.mag
    meta["aperture_radii_fwhm"] = list(aperture_radii)
    meta["apcorr_radius_fwhm"] = apcorr_radius
    log.info("%d sources; PSF FWHM %.2f pixels; aperture corrections %s", len(table), fwhm, corrections)
    return table, segmentation


def frame_coverage(context, positions, radius):
    """Return, per position, the number of inputs at it and whether the inputs change within ``radius``.

    Parameters
    ----------
    context : numpy.ndarray
        Drizzle's context image: bit k of plane k // 32 set where input k contributes; (planes,
        ny, nx) or (ny, nx).
    positions : numpy.ndarray
        (n, 2) pixel ``x, y``.
    radius : float
        Pixels.

    Returns
    -------
    tuple of numpy.ndarray
        int ``n_frames`` and bool ``on_frame_edge``; a position off the image has 0 and True.
    """
    context = np.asarray(context)
    if context.ndim == 2:
        context = context[np.newaxis]
    _, ny, nx = context.shape
    reach = int(math.ceil(radius))
    offsets = np.arange(-reach, reach + 1)
    inside = np.hypot(*np.meshgrid(offsets, offsets)) <= radius
    n_frames = np.zeros(len(positions), int)
    on_edge = np.ones(len(positions), bool)
    for index, (x, y) in enumerate(positions):
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        column, row = int(round(x)), int(round(y))
        if not (0 <= column < nx and 0 <= row < ny):
            continue
        centre = context[:, row, column]
        n_frames[index] = int(np.bitwise_count(centre.astype(np.uint32)).sum())
        y0, x0 = row - reach, column - reach
        if y0 < 0 or x0 < 0 or row + reach >= ny or column + reach >= nx:
            continue  # the aperture leaves the mosaic
        box = context[:, y0 : row + reach + 1, x0 : column + reach + 1]
        on_edge[index] = bool(np.any(box[:, inside] != centre[:, np.newaxis]))
    return n_frames, on_edge


def _value(quantity):
    return getattr(quantity, "value", quantity)


def _flux_unit(bunit, pixel_area_sr):
    """Return ``(unit, factor)``: a sum of pixel values times factor is a flux in unit."""
    if bunit and bunit.replace(" ", "").lower() == "mjy/sr":
        if not pixel_area_sr:
            raise CatalogError("the image is in MJy/sr but its pixel area (PIXAR_SR) is unknown")
        return u.Jy, pixel_area_sr * 1.0e6
    unit = u.Unit(bunit, parse_strict="silent") if bunit else u.dimensionless_unscaled
    return unit * u.pix, 1.0


def _aperture(data, error, mask, positions, radius):
    aperture = CircularAperture(positions, r=radius)
    result = aperture_photometry(data, aperture, error=error, mask=mask)
    return np.asarray(result["aperture_sum"], dtype=float), np.asarray(result["aperture_sum_err"], dtype=float)


def _isolated(positions, distance):
    """True for sources with no other source within ``distance`` pixels."""
    if len(positions) < 2:
        return np.ones(len(positions), bool)
    from scipy.spatial import cKDTree

    tree = cKDTree(positions)
    pairs = tree.query_pairs(distance, output_type="ndarray")
    isolated = np.ones(len(positions), bool)
    isolated[pairs.ravel()] = False
    return isolated


def _inside(positions, radius, shape):
    ny, nx = shape
    x, y = positions[:, 0], positions[:, 1]
    return (x > radius) & (y > radius) & (x < nx - 1 - radius) & (y < ny - 1 - radius)


def _aperture_correction(flux, total, bright, radius_fwhm, total_fwhm):
    """Median ``total / flux`` of the bright isolated stars; a Gaussian PSF's ratio without enough of them."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = total[bright] / flux[bright]
    ratios = ratios[np.isfinite(ratios)]
    if len(ratios) >= MIN_APCORR_STARS:
        return float(np.median(ratios)), len(ratios)

    def enclosed(r):
        return 1.0 - 2.0 ** (-4.0 * r * r)  # a Gaussian's energy within r FWHM

    log.info("fewer than %d bright isolated stars: Gaussian aperture correction", MIN_APCORR_STARS)
    return enclosed(total_fwhm) / enclosed(radius_fwhm), 0
