"""Quality numbers of one frame, for the observer at the telescope and the night log.

`detected_sources` finds the sources of a Level 1 or 2 frame, a mosaic or an IFS cube's
white-light image (`liger_iris_pipeline.quicklook.render.white_light_image`) once: a
sigma-clipped sky level and noise (astropy), then photutils ``detect_sources`` above
``nsigma`` times the noise and ``SourceCatalog`` for centroids, fluxes and shapes. The same
table makes the DS9 region file (`liger_iris_pipeline.quicklook.regions`) and feeds
`measure_quality`, which adds the FWHM (photutils ``fit_fwhm``: a pixel-integrated circular
Gaussian fitted to each isolated, unsaturated star), the median ellipticity of those stars,
the DQ counts and the zero point. An IFS detector frame has no sources (its pixels are spectra):
its numbers are the sky and the DQ counts.

Both are meant to cost well under a second at full frame: the sky statistics use a regular
sample of the pixels, and only the brightest `MAX_FIT_STARS` stars are fitted.
"""

import math
import warnings

import numpy as np
from astropy.stats import sigma_clipped_stats
from astropy.table import Table

from ..dqflags import pixel as FLAGS
from ..source_catalog.source_catalog import AB_ZERO_POINT_JY, _inside, _isolated

__all__ = ["MAX_FIT_STARS", "QA_KEYS", "detected_sources", "dq_counts", "measure_quality", "pixel_scale_arcsec"]

QA_KEYS = (
    "sky_level",
    "sky_noise",
    "bunit",
    "n_stars",
    "fwhm_arcsec",
    "ellipticity",
    "n_saturated",
    "n_jump",
    "n_bad",
    "zero_point_ab",
    "filter",
    "exposure_type",
    "date_obs",
)
"""The keys of `measure_quality`, in the order of the night report's table."""

DQ_COUNTS = {"n_saturated": FLAGS["SATURATED"], "n_jump": FLAGS["JUMP_DET"], "n_bad": FLAGS["DO_NOT_USE"]}
"""QA key -> the DQ flag whose pixels it counts."""

MAX_FIT_STARS = 30
"""Stars fitted for the FWHM (the brightest isolated unsaturated ones): the median settles well before."""

SKY_SAMPLE = 1 << 20
"""Pixels sampled (a regular grid) for the sky statistics: a full frame's 16 M would take seconds."""

_SPOILED = FLAGS["DO_NOT_USE"] | FLAGS["SATURATED"]
"""A star with any of these flags near its core is not fitted."""


def _usable(model):
    """Return the image sources are found on: (data as float32, True where a pixel has data, DQ or None, ERR or None).

    A cube's is its white-light image, without DQ or ERR of its own.
    """
    from .. import datamodels

    if isinstance(model, datamodels.IRISCubeModel):
        from ..quicklook.render import white_light_image

        image, masked = white_light_image(model)
        return image, ~masked, None, None
    data = np.asarray(model.data, dtype=np.float32)
    valid = np.isfinite(data)
    dq = model.dq if model.hasattr("dq") else None
    if dq is not None:
        valid &= (dq & FLAGS["DO_NOT_USE"]) == 0
    if model.hasattr("wht"):  # a mosaic: no DQ, no data where nothing was drizzled
        valid &= model.wht > 0
    return data, valid, dq, (model.err if model.hasattr("err") else None)


def _celestial_wcs(model):
    """Return pixel -> sky of the image `_usable` gives: a cube's spatial axes, else the gwcs; None for IFS frames."""
    from .. import datamodels

    if isinstance(model, datamodels.IRISCubeModel | datamodels.IRISIFSImageModel):
        from ..quicklook.render import product_wcs

        return product_wcs(model)
    return getattr(model.meta, "wcs", None)


def _sky(data, valid):
    """Sigma-clipped median and standard deviation of the valid pixels, on a regular sample of them."""
    step = max(1, int(math.sqrt(data.size / SKY_SAMPLE)))
    sample = data[::step, ::step][valid[::step, ::step]]
    if sample.size == 0:
        return math.nan, math.nan
    _, median, std = sigma_clipped_stats(sample, sigma=3.0, maxiters=5)
    return float(median), float(std)


def _sky_coordinates(model, x, y):
    """Return (ra, dec) in degrees of pixel positions through the model's gwcs, NaN without one."""
    wcs = _celestial_wcs(model)
    if wcs is None or len(x) == 0:
        return np.full(len(x), np.nan), np.full(len(x), np.nan)
    ra, dec = wcs(np.asarray(x, float), np.asarray(y, float), with_bounding_box=False)
    return np.asarray(ra, float), np.asarray(dec, float)


def detected_sources(model, nsigma=5.0, npixels=5):
    """Detect the sources of a frame, mosaic or cube: the one detection behind the QA numbers and the region file.

    Parameters
    ----------
    model : IRISImageModel, IRISMosaicModel, IRISCubeModel or IRISIFSImageModel
        A Level 1, 2 or 3 image, or an IFS cube (its white-light image is searched, positions in
        its spaxels, sky positions from its spatial WCS). An IFS detector frame has none.
    nsigma : float
        Detection threshold above the sky, in units of the sky noise per pixel.
    npixels : int
        Minimum number of connected pixels above the threshold.

    Returns
    -------
    astropy.table.Table
        One row per source: ``x, y`` (0-based pixels), ``ra, dec`` (deg; NaN without a WCS),
        ``flux`` (sky-subtracted sum over the segment, in ``BUNIT`` x pixels), ``ellipticity``
        and ``peak``. ``meta``: ``sky_level``, ``sky_noise``, ``bunit``, ``threshold``.
    """
    from photutils.segmentation import SourceCatalog, detect_sources
    from photutils.utils.exceptions import NoDetectionsWarning

    from .. import datamodels

    data, valid, _, _ = _usable(model)
    sky, noise = _sky(data, valid)
    meta = {"sky_level": sky, "sky_noise": noise, "bunit": model.meta.bunit_data or "", "threshold": math.nan}
    columns = ("x", "y", "ra", "dec", "flux", "ellipticity", "peak")
    empty = Table(names=columns, dtype=[float] * len(columns), meta=meta)
    if not (math.isfinite(noise) and noise > 0) or isinstance(model, datamodels.IRISIFSImageModel):
        return empty
    image = np.where(valid, data - np.float32(sky), np.float32(0.0))
    meta["threshold"] = nsigma * noise
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty field is an empty table
        segments = detect_sources(image, nsigma * noise, npixels, mask=~valid)
    if segments is None:
        return empty
    catalog = SourceCatalog(image, segments, mask=~valid)
    x = np.asarray(catalog.x_centroid, dtype=float)
    y = np.asarray(catalog.y_centroid, dtype=float)
    ra, dec = _sky_coordinates(model, x, y)
    table = Table(meta=meta)
    table["x"], table["y"], table["ra"], table["dec"] = x, y, ra, dec
    table["flux"] = np.asarray(catalog.segment_flux, dtype=float)
    table["ellipticity"] = np.asarray(catalog.ellipticity, dtype=float)
    table["peak"] = np.asarray(catalog.max_value, dtype=float)
    return table


def pixel_scale_arcsec(model):
    """Return the pixel scale (arcsec) at the image centre: from the gwcs, else the header's CDELT or PIXSCALE.

    Parameters
    ----------
    model : IRISImageModel, IRISMosaicModel or IRISCubeModel
        The product (a cube: its spaxel scale).

    Returns
    -------
    float
        NaN when the product says nothing about it.
    """
    wcs = _celestial_wcs(model)
    if wcs is not None:
        from ..quicklook.render import sky_orientation

        ny, nx = model.data.shape[-2:]
        return sky_orientation(wcs, (nx - 1) / 2.0, (ny - 1) / 2.0)[2]
    cdelt = model.meta.wcsinfo.cdelt1
    if cdelt:
        return abs(float(cdelt)) * 3600.0
    scale = model.meta.instrument.plate_scale
    return float(scale) if scale else math.nan


def _fit_fwhm(sources, data, valid, dq, err):
    """Median FWHM (pixels) and ellipticity of the brightest isolated unsaturated stars; NaN without any."""
    from photutils.psf import fit_fwhm

    if len(sources) == 0:
        return math.nan, math.nan
    # A fit box of about 3 FWHM of the first guess, at least 7 pixels.
    positions = np.column_stack([sources["x"], sources["y"]])
    guess = _moment_fwhm(sources)
    half = max(3, int(math.ceil(1.5 * guess)))
    fit_shape = 2 * half + 1
    spoiled = ~valid if dq is None else (~valid | ((dq & _SPOILED) != 0))
    candidates = _isolated(positions, 1.5 * fit_shape) & _inside(positions, half + 1, data.shape)
    candidates &= np.isfinite(positions).all(axis=1)
    order = np.argsort(-np.asarray(sources["flux"]))
    chosen = []
    for index in order:
        if not candidates[index]:
            continue
        xi, yi = int(round(positions[index, 0])), int(round(positions[index, 1]))
        if spoiled[yi - half : yi + half + 1, xi - half : xi + half + 1].any():
            continue
        chosen.append(index)
        if len(chosen) == MAX_FIT_STARS:
            break
    if not chosen:
        return math.nan, math.nan
    sky = sources.meta["sky_level"]
    image = np.where(valid, data - np.float32(sky), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a star whose fit does not converge gives a NaN or an outlier: medians follow
        fwhm = fit_fwhm(
            image,
            xypos=positions[chosen],
            fwhm=guess,
            fit_shape=fit_shape,
            error=None if err is None else np.where(np.isfinite(err) & (err > 0), err, np.nan),
        )
    fwhm = np.asarray(fwhm, dtype=float)
    good = np.isfinite(fwhm) & (fwhm > 0)
    ellipticity = np.asarray(sources["ellipticity"])[chosen]
    if not good.any():
        return math.nan, math.nan
    return float(np.median(fwhm[good])), float(np.nanmedian(ellipticity[good]))


def _moment_fwhm(sources):
    """A first FWHM guess (pixels): from the bright sources' peak and flux, as a Gaussian's, else 3."""
    flux, peak = np.asarray(sources["flux"], float), np.asarray(sources["peak"], float)
    bright = (peak > 0) & (flux > 0)
    if not bright.any():
        return 3.0
    # A Gaussian holds flux = 2 pi sigma^2 peak.
    sigma = np.sqrt(flux[bright] / (2.0 * np.pi * peak[bright]))
    return float(np.clip(np.median(sigma) * 2.0 * math.sqrt(2.0 * math.log(2.0)), 1.0, 30.0))


def zero_point_ab(model):
    """Return the AB magnitude of a point source of 1 DN/s in total, or NaN without PHOTMJSR and PIXAR_SR.

    ``1 DN/s`` is ``PHOTMJSR * PIXAR_SR * 1e6`` Jy (``docs/level3_design.rst``, Units).
    """
    photmjsr = model.meta.photometry.conversion_megajanskys
    pixar_sr = model.meta.photometry.pixelarea_steradians
    if not photmjsr or not pixar_sr or photmjsr <= 0 or pixar_sr <= 0:
        return math.nan
    return float(-2.5 * math.log10(photmjsr * pixar_sr * 1.0e6 / AB_ZERO_POINT_JY))


def _date_obs(model):
    exposure = model.meta.exposure
    if exposure.start_time_iso:
        return str(exposure.start_time_iso)
    date, time = model.meta.observation.date, model.meta.observation.time
    return f"{date}T{time}" if date and time else (date or "")


def dq_counts(model):
    """Return the numbers of pixels flagged SATURATED, JUMP_DET and DO_NOT_USE (the `DQ_COUNTS` keys).

    Parameters
    ----------
    model : TMTDataModel
        A frame with a DQ array (a mosaic has none: zeros).

    Returns
    -------
    dict
    """
    dq = model.dq if model.hasattr("dq") else None
    return {key: 0 if dq is None else int(np.count_nonzero(dq & flag)) for key, flag in DQ_COUNTS.items()}


def measure_quality(model, sources=None, detector_frame=None):
    """Return the quality numbers of a Level 1 or 2 frame, a mosaic or an IFS cube.

    Parameters
    ----------
    model : IRISImageModel, IRISMosaicModel, IRISIFSImageModel or IRISCubeModel
        The product (``_rate``, ``_cal`` or ``_s3d``).
    sources : astropy.table.Table, optional
        `detected_sources` of the same model, when the caller has it already (for the region
        file): the frame is then not searched twice.
    detector_frame : IRISIFSImageModel, optional
        The detector frame a cube was built from (its ``_cal``): the DQ counts are of its pixels.
        Default: the model's own DQ.

    Returns
    -------
    dict
        The keys of `QA_KEYS`: ``sky_level``, ``sky_noise`` (sigma-clipped median and standard
        deviation of the pixels, in ``bunit``; of a cube, of its voxels), ``n_stars`` (sources
        detected; of a cube, in its white-light image), ``fwhm_arcsec`` and ``ellipticity``
        (medians over the fitted stars), ``n_saturated``, ``n_jump``, ``n_bad`` (pixels with
        SATURATED, JUMP_DET, DO_NOT_USE), ``zero_point_ab`` (AB magnitude of 1 DN/s),
        ``filter``, ``exposure_type``, ``date_obs``. Floats are NaN when not measurable (no
        star, no photometric calibration).
    """
    from .. import datamodels

    if sources is None:
        sources = detected_sources(model)
    data, valid, dq, err = _usable(model)
    fwhm_pix, ellipticity = _fit_fwhm(sources, data, valid, dq, err)
    sky_level, sky_noise = sources.meta["sky_level"], sources.meta["sky_noise"]
    if isinstance(model, datamodels.IRISCubeModel):
        from ..quicklook.render import good_voxels

        # The sky of a cube is that of its voxels (per spaxel and bin), not of the white-light mean.
        nx = model.data.shape[-1]
        sky_level, sky_noise = _sky(model.data.reshape(-1, nx), good_voxels(model).reshape(-1, nx))
    return {
        "sky_level": sky_level,
        "sky_noise": sky_noise,
        "bunit": sources.meta["bunit"],
        "n_stars": len(sources),
        "fwhm_arcsec": fwhm_pix * pixel_scale_arcsec(model),
        "ellipticity": ellipticity,
        **dq_counts(model if detector_frame is None else detector_frame),
        "zero_point_ab": zero_point_ab(model),
        "filter": model.meta.instrument.filter or "",
        "exposure_type": model.meta.exposure.type or "",
        "date_obs": _date_obs(model),
    }
