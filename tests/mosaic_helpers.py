"""Dithered Level 2 imager frames with a known sky, for the resample, outlier and catalog tests.

The frames are made here directly (not through Level 1), so that each test knows the truth
exactly: stars of known flux (Jy) and position, a field distortion (focal plane -> detector
polynomial) in each frame's gwcs, Gaussian noise of the recorded variances, and optionally
residual defects (hot pixels, cosmic rays, a trail) with their truth mask.

Conventions of ``docs/level3_design.rst``: SCI in MJy/sr relative to the nominal pixel area,
so a star's flux is ``sum(SCI) * PIXAR_SR`` on a frame whatever the distortion.
"""

import math
from dataclasses import dataclass

import numpy as np
from astropy import coordinates
from astropy import units as u
from astropy.modeling import fitting, models
from gwcs import coordinate_frames as cf
from gwcs import wcs as gwcs_wcs

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.assign_wcs.imaging import pc_matrix
from liger_iris_pipeline.simulate.scene import _add_gaussian as add_gaussian  # the simulator's pixel-integrated PSF

PLATE_SCALE = 0.004  # arcsec
PIXAR_SR = (PLATE_SCALE / 3600.0 * math.pi / 180.0) ** 2
CENTER = (150.0, 2.0)


@dataclass
class Truth:
    ra: np.ndarray
    dec: np.ndarray
    flux_jy: np.ndarray
    defect_masks: list
    star_images: list


def optics(shape, amplitude):
    """Focal plane -> detector distortion model: ``amplitude`` pixels at the corners, cubic, no linear terms."""
    ny, nx = shape
    cx, cy, radius = (nx - 1) / 2.0, (ny - 1) / 2.0, max(nx, ny) / 2.0
    a = amplitude / 2.0
    normalise = (models.Shift(-cx) | models.Scale(1.0 / radius)) & (models.Shift(-cy) | models.Scale(1.0 / radius))
    to_x = models.Polynomial2D(3, c0_0=cx, c1_0=radius, c3_0=0.6 * a, c1_2=0.4 * a, c1_1=0.3 * a)
    to_y = models.Polynomial2D(3, c0_0=cy, c0_1=radius, c0_3=0.5 * a, c2_1=0.5 * a, c2_0=-0.2 * a)
    return normalise | models.Mapping((0, 1, 0, 1)) | (to_x & to_y)


def frame_wcs(shape, crval, position_angle, distortion_amplitude):
    """Return ``(gwcs detector -> world, optics function)`` for a frame."""
    ny, nx = shape
    forward = optics(shape, distortion_amplitude)
    # Detector -> focal plane: a degree-5 polynomial fit of the inverse of the optics (fit error << 1e-3 px).
    grid_v, grid_u = np.mgrid[-2 : ny + 2 : 8j * 4, -2 : nx + 2 : 8j * 4]
    grid_x, grid_y = forward(grid_u, grid_v)
    fitter = fitting.LinearLSQFitter()
    cx, cy, radius = (nx - 1) / 2.0, (ny - 1) / 2.0, max(nx, ny) / 2.0
    normalise = (models.Shift(-cx) | models.Scale(1.0 / radius)) & (models.Shift(-cy) | models.Scale(1.0 / radius))
    xn, yn = (grid_x - cx) / radius, (grid_y - cy) / radius
    to_u = fitter(models.Polynomial2D(5), xn, yn, grid_u)
    to_v = fitter(models.Polynomial2D(5), xn, yn, grid_v)
    detector_to_focal = normalise | models.Mapping((0, 1, 0, 1)) | (to_u & to_v)
    detector_to_focal.inverse = forward
    scale = PLATE_SCALE / 3600.0
    matrix = scale * pc_matrix(position_angle)
    tan = (
        (models.Shift(-(nx - 1) / 2.0) & models.Shift(-(ny - 1) / 2.0))
        | models.AffineTransformation2D(matrix=matrix, translation=[0.0, 0.0])
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(crval[0], crval[1], 180.0)
    )
    transform = detector_to_focal | tan
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(reference_frame=coordinates.ICRS(), name="world", unit=(u.deg, u.deg))
    wcs = gwcs_wcs.WCS([(detector, transform), (world, None)])
    wcs.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))

    def sky_to_detector(ra, dec):
        uu, vv = tan.inverse(ra, dec)
        return forward(uu, vv)

    return wcs, sky_to_detector, tan


def make_frames(
    n_frames=4,
    shape=(128, 128),
    n_stars=25,
    seed=1,
    fwhm=3.0,
    sky=0.5,
    rnoise=0.02,
    gain=2000.0,
    flux_range=(2e-7, 2e-6),
    dither=6.0,
    distortion=2.0,
    position_angle=0.0,
    defects=False,
    margin=12,
    on_frame=None,
):
    """Return ``(frames, truth)``: dithered IRISImageModel frames in MJy/sr and their truth.

    Parameters
    ----------
    seed : int
        Of the random generator (stars, noise, dithers, defects).
    margin : int
        Pixels between the stars and the frame's edges.
    n_frames : int
        Number of exposures (random dithers of up to ``dither`` pixels).
    shape : tuple of int
        Frame ``(ny, nx)``.
    n_stars : int
        Stars on a grid with random offsets, well separated.
    fwhm : float
        Gaussian PSF FWHM (pixels).
    sky : float
        Sky (MJy/sr), not subtracted.
    rnoise : float
        Read-noise sigma (MJy/sr).
    gain : float
        Poisson variance = signal / gain (MJy/sr squared).
    flux_range : tuple of float
        Star fluxes (Jy), log-uniform.
    dither : float
        Dither amplitude (pixels).
    distortion : float
        Distortion at the frame corners (pixels).
    position_angle : float
        Of the frames' +y axis (deg).
    on_frame : callable, optional
        Called with each frame instead of keeping it (``frames`` and the truth images are then
        empty): full-frame data sets one frame at a time.
    defects : bool
        Add hot pixels, cosmic rays and a trail; their truth is ``truth.defect_masks``.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    side = int(math.ceil(math.sqrt(n_stars)))
    step_x, step_y = (nx - 2 * margin) / side, (ny - 2 * margin) / side
    centre_tan = models.Pix2Sky_TAN() | models.RotateNative2Celestial(CENTER[0], CENTER[1], 180.0)
    positions = []
    for k in range(n_stars):
        i, j = k % side, k // side
        positions.append(
            (
                margin + (i + 0.5) * step_x + rng.uniform(-0.2, 0.2) * step_x - (nx - 1) / 2,
                margin + (j + 0.5) * step_y + rng.uniform(-0.2, 0.2) * step_y - (ny - 1) / 2,
            )
        )
    positions = np.array(positions) * PLATE_SCALE / 3600.0
    ra, dec = centre_tan(-positions[:, 0], positions[:, 1])
    flux_jy = np.exp(rng.uniform(np.log(flux_range[0]), np.log(flux_range[1]), n_stars))
    sigma = fwhm / (2 * math.sqrt(2 * math.log(2)))
    frames, masks, star_images = [], [], []
    for index in range(n_frames):
        offset = rng.uniform(-dither, dither, 2) if index else np.zeros(2)
        crval_tan = models.Pix2Sky_TAN() | models.RotateNative2Celestial(CENTER[0], CENTER[1], 180.0)
        crval = crval_tan(-offset[0] * PLATE_SCALE / 3600.0, offset[1] * PLATE_SCALE / 3600.0)
        wcs, sky_to_detector, _ = frame_wcs(shape, crval, position_angle, distortion)
        truth_image = np.full(shape, sky, np.float64)
        x, y = sky_to_detector(ra, dec)
        for xs, ys, flux in zip(x, y, flux_jy, strict=True):
            add_gaussian(truth_image, xs, ys, sigma, flux * 1e-6 / PIXAR_SR)
        var_poisson = (truth_image / gain).astype(np.float32)
        var_rnoise = np.full(shape, rnoise**2, np.float32)
        var_flat = np.zeros(shape, np.float32)
        data = truth_image + rng.normal(size=shape) * np.sqrt(var_poisson + var_rnoise)
        dq = np.zeros(shape, np.uint32)
        mask = np.zeros(shape, bool)
        if defects:
            mask = _add_defects(data, rng, np.sqrt(var_poisson + var_rnoise))
        model = datamodels.IRISImageModel(data=data.astype(np.float32))
        model.err = np.sqrt(var_poisson + var_rnoise + var_flat).astype(np.float32)
        model.dq = dq
        model.var_poisson, model.var_rnoise, model.var_flat = var_poisson, var_rnoise, var_flat
        model.meta.wcs = wcs
        model.meta.bunit_data = "MJy/sr"
        model.meta.processing_level = 2
        model.meta.filename = f"frame{index}_cal.fits"
        model.meta.program.id = "00001"
        model.meta.observation.observation_id = "001"
        model.meta.observation.exposure_number = index + 1
        model.meta.instrument.name = "IRIS"
        model.meta.instrument.filter = "Kbb"
        model.meta.instrument.plate_scale = PLATE_SCALE
        model.meta.exposure.exposure_time = 100.0
        model.meta.photometry.pixelarea_steradians = PIXAR_SR
        model.meta.photometry.pixelarea_arcsecsq = PLATE_SCALE**2
        model.meta.wcsinfo.crval1, model.meta.wcsinfo.crval2 = float(crval[0]), float(crval[1])
        model.meta.wcsinfo.crpix1, model.meta.wcsinfo.crpix2 = (nx + 1) / 2.0, (ny + 1) / 2.0
        model.meta.wcsinfo.cdelt1 = model.meta.wcsinfo.cdelt2 = PLATE_SCALE / 3600.0
        pc = pc_matrix(position_angle)
        info = model.meta.wcsinfo
        info.pc1_1, info.pc1_2, info.pc2_1, info.pc2_2 = (float(value) for value in pc.ravel())
        info.ctype1, info.ctype2, info.cunit1, info.cunit2 = "RA---TAN", "DEC--TAN", "deg", "deg"
        info.radesys, info.position_angle = "ICRS", float(position_angle)
        if on_frame is not None:
            on_frame(model)
            continue
        frames.append(model)
        masks.append(mask)
        star_images.append((truth_image - sky).astype(np.float32))
    return frames, Truth(
        ra=np.asarray(ra), dec=np.asarray(dec), flux_jy=flux_jy, defect_masks=masks, star_images=star_images
    )


def _add_defects(data, rng, noise):
    """Hot pixels, cosmic rays (1-4 pixels) and one short trail, at 10 to 1000 times each pixel's noise
    (as the simulator's residual defects); returns their mask."""
    ny, nx = data.shape
    mask = np.zeros(data.shape, bool)

    def hit(y, x, sigmas):
        data[y, x] += noise[y, x] * sigmas
        mask[y, x] = True

    for _ in range(max(3, data.size // 4000)):  # hot pixels
        hit(rng.integers(2, ny - 2), rng.integers(2, nx - 2), 10 ** rng.uniform(1, 3))
    for _ in range(max(3, data.size // 3000)):  # cosmic rays
        y, x = rng.integers(2, ny - 3), rng.integers(2, nx - 3)
        for k in range(rng.integers(1, 5)):
            hit(y + k // 2, x + k % 2, 10 ** rng.uniform(1, 3))
    # a trail: a line across a quarter of the frame
    y0, x0 = rng.integers(ny // 4, 3 * ny // 4), rng.integers(0, nx // 2)
    length, angle = nx // 4, rng.uniform(0, math.pi)
    for t in np.linspace(0, length, 4 * length):
        xx, yy = int(round(x0 + t * math.cos(angle))), int(round(y0 + t * math.sin(angle)))
        if 0 <= xx < nx and 0 <= yy < ny and not mask[yy, xx]:
            hit(yy, xx, 30.0)
    return mask
