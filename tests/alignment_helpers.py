"""Dithered Level 2 frames with known pointing errors and sky levels, for tweakreg, skymatch and image3.

Each frame is rendered with its *true* WCS (the dithered pointing) and carries in its header
and gwcs the pointing the telescope reports: the true one plus a pointing error of tens of mas.
The truth is the unperturbed WCS, so a test measures how far a corrected WCS is from it.
"""

import numpy as np
from astropy.table import Table
from scipy.special import erf

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.assign_wcs.imaging import complete_wcsinfo, make_gwcs

PLATE_SCALE = 0.004  # arcsec per pixel
PSF_SIGMA = 3.9 / 2.355  # pixels (IRIS Kbb, diffraction limited)
CENTER = (150.0, 2.0)
_DITHERS = [(0, 0), (1, 0), (0, 1), (1, 1), (-1, 0), (0, -1), (-1, -1), (1, -1), (-1, 1)]


def render(shape, x, y, flux, sky, noise, rng):
    """An image of Gaussian stars (pixel-integrated) on a flat sky with Gaussian noise."""
    ny, nx = shape
    image = np.full(shape, sky, dtype=float)
    half = 8
    for xi, yi, fi in zip(x, y, flux, strict=True):
        ix, iy = int(round(xi)), int(round(yi))
        x0, x1, y0, y1 = max(ix - half, 0), min(ix + half + 1, nx), max(iy - half, 0), min(iy + half + 1, ny)
        if x0 >= x1 or y0 >= y1:
            continue
        edges_x = np.arange(x0, x1 + 1) - 0.5 - xi
        edges_y = np.arange(y0, y1 + 1) - 0.5 - yi
        px = np.diff(0.5 * erf(edges_x / (np.sqrt(2.0) * PSF_SIGMA)))
        py = np.diff(0.5 * erf(edges_y / (np.sqrt(2.0) * PSF_SIGMA)))
        image[y0:y1, x0:x1] += fi * np.outer(py, px)
    return image + rng.normal(0.0, noise, shape)


def distortion_model(shape, amplitude):
    """Detector -> focal-plane pixels: a cubic of ``amplitude`` pixels at the corners, with a fitted inverse."""
    from astropy.modeling import fitting, models

    ny, nx = shape
    cx, cy, radius = (nx - 1) / 2.0, (ny - 1) / 2.0, nx / 2.0
    a = amplitude / 2.0

    def normalised():
        return (models.Shift(-cx) | models.Scale(1.0 / radius)) & (models.Shift(-cy) | models.Scale(1.0 / radius))

    to_u = models.Polynomial2D(3, c0_0=cx, c1_0=radius, c3_0=0.6 * a, c1_2=0.4 * a, c1_1=0.3 * a)
    to_v = models.Polynomial2D(3, c0_0=cy, c0_1=radius, c0_3=0.5 * a, c2_1=0.5 * a, c2_0=-0.2 * a)
    forward = normalised() | models.Mapping((0, 1, 0, 1)) | (to_u & to_v)
    grid_y, grid_x = np.mgrid[-4 : ny + 4 : 40j, -4 : nx + 4 : 40j]
    grid_u, grid_v = forward(grid_x, grid_y)
    fitter = fitting.LinearLSQFitter()
    un, vn = (grid_u - cx) / radius, (grid_v - cy) / radius
    back_x = fitter(models.Polynomial2D(7), un, vn, grid_x)
    back_y = fitter(models.Polynomial2D(7), un, vn, grid_y)
    forward.inverse = normalised() | models.Mapping((0, 1, 0, 1)) | (back_x & back_y)
    return forward


def make_frames(n=4, shape=(256, 256), n_stars=80, pointing_error_mas=30.0, dither_arcsec=0.15, sky_levels=None,
                noise=1.0, seed=1, distortion_px=0.0):  # fmt: skip
    """Return ``(frames, true_wcs, stars)``: IRISImageModels, their true gwcs, and the star table (ra, dec).

    With ``distortion_px`` every frame has that field distortion at its corners (a ``focal`` frame
    in its gwcs) and a SIP header, as ``assign_wcs`` writes them.
    """
    from liger_iris_pipeline.assign_wcs.imaging import update_fits_wcsinfo

    distortion = distortion_model(shape, distortion_px) if distortion_px else None
    rng = np.random.default_rng(seed)
    ny, nx = shape
    half = nx * PLATE_SCALE / 3600.0 / 2.0 * 1.6
    ra = CENTER[0] + rng.uniform(-half, half, n_stars) / np.cos(np.radians(CENTER[1]))
    dec = CENTER[1] + rng.uniform(-half, half, n_stars)
    flux = rng.uniform(2000.0, 20000.0, n_stars)
    frames, truths = [], []
    for k in range(n):
        dx, dy = _DITHERS[k]
        # At PA 0 detector +x points West: a dither towards +x lowers RA.
        crval = (
            CENTER[0] - dx * dither_arcsec / 3600.0 / np.cos(np.radians(CENTER[1])),
            CENTER[1] + dy * dither_arcsec / 3600.0,
        )
        nominal = {"crpix1": (nx + 1) / 2.0, "crpix2": (ny + 1) / 2.0, "crval1": crval[0], "crval2": crval[1],
                   "position_angle": 0.0, "cdelt1": PLATE_SCALE / 3600.0, "cdelt2": PLATE_SCALE / 3600.0}  # fmt: skip
        true_wcs = make_gwcs(complete_wcsinfo(nominal), shape, distortion=distortion)
        x, y = true_wcs.invert(ra, dec, with_bounding_box=False)
        sky = 5.0 if sky_levels is None else sky_levels[k]
        data = render(shape, x, y, flux, sky, noise, rng)
        error_east, error_north = rng.normal(0.0, pointing_error_mas, 2)
        reported = dict(nominal)
        reported["crval1"] = crval[0] + error_east / 3.6e6 / np.cos(np.radians(crval[1]))
        reported["crval2"] = crval[1] + error_north / 3.6e6
        info = complete_wcsinfo(reported)
        model = datamodels.IRISImageModel(data.astype(np.float32))
        model.err[:] = noise
        model.var_rnoise[:] = noise**2
        model.meta.wcsinfo = info
        model.meta.wcs = make_gwcs(info, shape, distortion=distortion)
        model.meta.program.id = "SIM-0001"
        model.meta.observation.observation_id = "001"
        model.meta.observation.exposure_number = k + 1
        model.meta.processing_level = 2
        model.meta.instrument.name = "IRIS"
        model.meta.instrument.detector = "IMG1"
        model.meta.instrument.filter = "Kbb"
        model.meta.exposure.type = "IRIS_IMAGE"
        model.meta.target.name = "FIELD"
        model.meta.filename = f"frame{k}_cal.fits"
        model.meta.bunit_data = "MJy/sr"
        model.meta.exposure.exposure_time = 100.0
        model.meta.instrument.plate_scale = PLATE_SCALE
        model.meta.photometry.pixelarea_arcsecsq = PLATE_SCALE**2
        model.meta.photometry.pixelarea_steradians = (PLATE_SCALE / 206264.80624709636) ** 2
        if distortion is not None:
            update_fits_wcsinfo(model)
        frames.append(model)
        truths.append(true_wcs)
    return frames, truths, Table({"ra": ra, "dec": dec})


def wcs_error_mas(wcs, truth, shape, npoints=9):
    """Largest sky distance (mas) between two WCSs over a frame."""
    ny, nx = shape
    x, y = np.meshgrid(np.linspace(0, nx - 1, npoints), np.linspace(0, ny - 1, npoints))
    ra, dec = wcs(x, y, with_bounding_box=False)
    ra0, dec0 = truth(x, y, with_bounding_box=False)
    return float(np.max(np.hypot((ra - ra0) * np.cos(np.radians(dec0)), dec - dec0)) * 3.6e6)


def write_reference_catalog(stars, path, error_mas=0.0, seed=2):
    """Write the stars as an ECSV reference catalog (ra, dec in deg), with catalog errors of ``error_mas``."""
    rng = np.random.default_rng(seed)
    table = Table(stars, copy=True)
    table["dec"] = table["dec"] + rng.normal(0.0, error_mas, len(table)) / 3.6e6
    table["ra"] = table["ra"] + rng.normal(0.0, error_mas, len(table)) / 3.6e6 / np.cos(np.radians(table["dec"]))
    table["ra"].unit = "deg"
    table["dec"].unit = "deg"
    table.write(path, format="ascii.ecsv", overwrite=True)
    return str(path)
