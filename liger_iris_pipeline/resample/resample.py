"""Drizzle of imager frames onto a common sky grid, and blot back, without stpipe.

Units and flux conservation
---------------------------
A Level 2 SCI value is the flux of the pixel divided by the *nominal* pixel area (``PIXAR_SR``),
so a point source's flux is ``sum(SCI) * PIXAR_SR`` anywhere on the frame, distortion or not.
Drizzle computes a weighted mean of surface brightness over each output pixel: the flux it puts
on the output grid is ``value * (true area of the input pixel)``. With field distortion the true
area differs from the nominal one, so each input pixel is scaled by ``A_nominal / A_true =
1 / (r**2 * J)`` before drizzling, with ``J`` the Jacobian determinant of the pixel map (output
pixels per input pixel) and ``r`` the output / nominal input pixel scale; ``iscale = 1``. Then
``sum(SCI_out) * PIXAR_SR_out`` is the point-source flux (verified with drizzle in the tests).

Variances
---------
jwst's (stcal's) approach: each input's ``sqrt(VAR_*)`` is drizzled with the same kernel and
weights as SCI and squared, so an output pixel carries the *input* pixel variance (not the
smaller variance of a drizzled average): summed over an aperture larger than the kernel it
gives the variance of the aperture flux, correlations included. Frames combine as
``sum(w_i**2 var_i) / sum(w_i)**2`` with ``w_i`` what the frame added to the output weight (WHT)
there, the weight its SCI had, and the result is divided by ``r**2`` (a flux spread over
``1 / r**2`` more output pixels).

Weights
-------
``ivm``: ``1 / VAR_RNOISE`` with VAR_RNOISE the median of 32 x 32 pixel blocks
(`signal_independent_rnoise`): a ramp's read-noise variance grows with its signal, and weights
that depend on the signal bias a weighted mean of frames that sample a star at different pixel
phases (bright stars came out 0.5-2 % faint). ``exptime``: the exposure time.
"""

import hashlib
import logging
import math
import warnings
from dataclasses import dataclass

import numpy as np
from astropy.nddata.bitmask import bitfield_to_boolean_mask
from drizzle.resample import Drizzle, blot_image
from stcal.resample.utils import calc_pixmap

from ..assign_wcs.imaging import make_gwcs, pc_matrix
from ..dqflags import pixel as FLAGS
from ..lib.variance import VARIANCE_ARRAYS

log = logging.getLogger(__name__)

__all__ = [
    "VARIANCE_ARRAYS",
    "FrameSummary",
    "ResampleError",
    "Resampler",
    "blot",
    "check_frames",
    "exposure_time",
    "fill_value",
    "frame_footprint",
    "frame_summary",
    "library_pixel_area",
    "library_pixel_map",
    "make_output_wcs",
    "output_grid",
    "pixel_map",
    "resample_library",
    "signal_independent_rnoise",
    "sky_level",
    "wcs_fingerprint",
]

KERNELS = ("square", "point", "turbo", "gaussian", "lanczos2", "lanczos3")


class ResampleError(ValueError):
    """The inputs or parameters cannot make a mosaic."""


def sky_level(model):
    """Return the sky level skymatch measured but did not subtract from a frame (else 0).

    ``meta.background.level`` with ``meta.background.subtracted`` False (jwst's convention);
    a level the background step already subtracted (``subtracted`` unset) is not counted.

    Parameters
    ----------
    model : IRISImageModel
        A frame.

    Returns
    -------
    float
    """
    background = model.meta.background
    if background.subtracted is False and background.level is not None:
        return float(background.level)
    return 0.0


def frame_footprint(wcs, shape):
    """Return the sky corners of a frame (deg), from its pixel edges.

    Parameters
    ----------
    wcs : gwcs.WCS
        Detector -> world.
    shape : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    numpy.ndarray
        (4, 2) RA, Dec.
    """
    ny, nx = shape
    x = np.array([-0.5, nx - 0.5, nx - 0.5, -0.5])
    y = np.array([-0.5, -0.5, ny - 0.5, ny - 0.5])
    ra, dec = _without_bbox(wcs, x, y)
    return np.column_stack([ra, dec])


def _without_bbox(wcs, x, y):
    """Evaluate a gwcs at pixel edges, which lie on its bounding box's border."""
    return wcs(x, y, with_bounding_box=False)


def make_output_wcs(
    footprints,
    pixel_scale,
    rotation=0.0,
    output_shape=None,
    crval=None,
    crpix=None,
):
    """Build the mosaic's TAN WCS covering the frames' footprints.

    Parameters
    ----------
    footprints : list of numpy.ndarray
        (N, 2) sky corners (deg) of each frame (`frame_footprint`).
    pixel_scale : float
        Output pixel scale (arcsec).
    rotation : float
        Position angle of the output +y axis, North through East (deg); 0 is North up, East left.
    output_shape : tuple of int, optional
        ``(ny, nx)``; by default the footprints' bounding box.
    crval : tuple of float, optional
        ``(RA, Dec)`` of the reference pixel; by default the footprints' centre.
    crpix : tuple of float, optional
        1-based FITS reference pixel; by default the centre of the output.

    Returns
    -------
    tuple
        ``(gwcs.WCS, wcsinfo dict)``; the gwcs has ``array_shape`` and a bounding box.
    """
    if not pixel_scale or pixel_scale <= 0:
        raise ResampleError(f"the output pixel scale must be positive, got {pixel_scale}")
    corners = np.concatenate([np.asarray(f, dtype=np.float64) for f in footprints])
    if crval is None:
        # Centre of the corners as unit vectors: safe across RA = 0.
        ra, dec = np.radians(corners[:, 0]), np.radians(corners[:, 1])
        vector = np.array([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)]).mean(axis=1)
        crval = (
            math.degrees(math.atan2(vector[1], vector[0])) % 360.0,
            math.degrees(math.atan2(vector[2], math.hypot(vector[0], vector[1]))),
        )
    pc = pc_matrix(rotation)
    info = {
        "crpix1": 1.0,
        "crpix2": 1.0,
        "crval1": float(crval[0]),
        "crval2": float(crval[1]),
        "cdelt1": pixel_scale / 3600.0,
        "cdelt2": pixel_scale / 3600.0,
        "ctype1": "RA---TAN",
        "ctype2": "DEC--TAN",
        "cunit1": "deg",
        "cunit2": "deg",
        "radesys": "ICRS",
        "pc1_1": float(pc[0, 0]),
        "pc1_2": float(pc[0, 1]),
        "pc2_1": float(pc[1, 0]),
        "pc2_2": float(pc[1, 1]),
        "position_angle": float(rotation),
    }
    # Where the footprints fall with CRPIX = 1 (pixel 0 at CRVAL), to size and centre the grid.
    probe = make_gwcs(info, (1, 1))
    x, y = probe.invert(corners[:, 0], corners[:, 1], with_bounding_box=False)
    if output_shape is None:
        nx = int(math.ceil(x.max() - x.min())) + 1
        ny = int(math.ceil(y.max() - y.min())) + 1
    else:
        ny, nx = (int(n) for n in output_shape)
    if ny < 1 or nx < 1:
        raise ResampleError(f"invalid output shape {(ny, nx)}")
    if crpix is None:
        if output_shape is None:
            # The bounding box of the footprints maps onto pixels 0 .. n-1 (edges at -0.5 .. n-0.5).
            crpix = (1.0 - (x.min() + x.max()) / 2.0 + (nx - 1) / 2.0, 1.0 - (y.min() + y.max()) / 2.0 + (ny - 1) / 2.0)
        else:
            crpix = ((nx + 1) / 2.0, (ny + 1) / 2.0)
    info["crpix1"], info["crpix2"] = float(crpix[0]), float(crpix[1])
    wcs = make_gwcs(info, (ny, nx))
    wcs.array_shape = (ny, nx)
    return wcs, info


def pixel_map(input_wcs, output_wcs, shape, stepsize=1, block_rows=256):
    """Return drizzle's pixel map of an input frame on the output grid.

    With ``stepsize = 1`` every pixel's centre goes through both WCSs, ``block_rows`` rows at a
    time (the gwcs temporaries of a whole full frame would take gigabytes); with ``stepsize >
    1``, stcal's ``calc_pixmap`` evaluates a sparse grid and interpolates.

    Parameters
    ----------
    input_wcs : gwcs.WCS
        The frame's detector -> world.
    output_wcs : gwcs.WCS
        The output grid's.
    shape : tuple of int
        Input ``(ny, nx)``.
    stepsize : int
        Full WCS evaluation every ``stepsize`` pixels, interpolated in between (1: every pixel).
    block_rows : int
        Rows evaluated at once.

    Returns
    -------
    numpy.ndarray
        (ny, nx, 2) output ``x, y`` of each input pixel centre (NaN where undefined).
    """
    if stepsize > 1:
        return calc_pixmap(input_wcs, output_wcs, shape, stepsize=stepsize, order=1)
    ny, nx = shape
    pixmap = np.empty((ny, nx, 2), dtype=np.float64)
    columns = np.arange(nx, dtype=np.float64)
    for first in range(0, ny, block_rows):
        last = min(ny, first + block_rows)
        x, y = np.meshgrid(columns, np.arange(first, last, dtype=np.float64))
        ra, dec = input_wcs(x, y, with_bounding_box=False)
        pixmap[first:last, :, 0], pixmap[first:last, :, 1] = output_wcs.invert(ra, dec, with_bounding_box=False)
    return pixmap


def wcs_fingerprint(wcs, shape, points=5):
    """Return a digest of a WCS over an image: where it puts a ``points x points`` grid of its pixels.

    Two WCSs with the same digest map the image alike (to 1e-12 deg at the grid's pixels): a
    pixel map computed with one holds for the other (tweakreg's corrections, mas, change it).

    Parameters
    ----------
    wcs : gwcs.WCS
        Pixel -> world.
    shape : tuple of int
        The image's ``(ny, nx)``.
    points : int
        Grid points along each axis (corners included).

    Returns
    -------
    str
    """
    ny, nx = shape
    y, x = np.mgrid[0 : ny - 1 : points * 1j, 0 : nx - 1 : points * 1j]
    world = np.round(np.asarray(wcs(x, y, with_bounding_box=False), dtype=np.float64), 12)
    return hashlib.sha1(world.tobytes() + repr(tuple(shape)).encode()).hexdigest()


def library_pixel_map(library, index, model, output_wcs, stepsize=1):
    """Return a library frame's pixel map on a grid, computed once per frame WCS and grid (on-disk library).

    outlier_detection's single drizzle and blot and resample's drizzle map each frame onto the
    same grid: an on-disk library keeps the map in its temporary folder
    (`~liger_iris_pipeline.datamodels.library.ModelLibrary.scratch_array`), keyed by fingerprints
    of the frame's WCS and of the grid (`wcs_fingerprint`), so it is computed again only if
    either changes. In memory, returns None: the caller computes it (or keeps it itself).

    Parameters
    ----------
    library : ModelLibrary
        The frames.
    index : int
        The frame's index.
    model : IRISImageModel
        The frame (borrowed).
    output_wcs : gwcs.WCS
        The grid (``array_shape`` set).
    stepsize : int
        See `pixel_map`.

    Returns
    -------
    numpy.ndarray or None
    """
    if not library.on_disk:
        return None
    shape = model.data.shape
    key = _frame_on_grid_key(model, output_wcs, stepsize)
    return library.scratch_array(index, "pixmap", key, lambda: pixel_map(model.meta.wcs, output_wcs, shape, stepsize))


def library_pixel_area(library, index, model, output_wcs, stepsize=1, pixmap=None):
    """Return `area_ratio` of a library frame's pixel map, computed once per frame WCS and grid (on-disk library).

    Kept like the map itself (`library_pixel_map`): outlier_detection's single drizzle and blot
    and resample's drizzle each need it (a quarter of a second per full frame). In memory,
    returns None: the caller computes it.

    Parameters
    ----------
    library, index, model, output_wcs, stepsize :
        As for `library_pixel_map`.
    pixmap : numpy.ndarray, optional
        The frame's map, if in hand (else read from the library, or computed).

    Returns
    -------
    numpy.ndarray or None
        float32 (ny, nx).
    """
    if not library.on_disk:
        return None
    key = _frame_on_grid_key(model, output_wcs, stepsize)

    def compute():
        source = pixmap if pixmap is not None else library_pixel_map(library, index, model, output_wcs, stepsize)
        return area_ratio(source, stepsize)

    return library.scratch_array(index, "pixarea", key, compute)


def _frame_on_grid_key(model, output_wcs, stepsize):
    """What a frame's pixel map on a grid depends on: fingerprints of both WCSs and the step."""
    return "|".join(
        (
            wcs_fingerprint(model.meta.wcs, model.data.shape),
            wcs_fingerprint(output_wcs, output_wcs.array_shape),
            str(int(stepsize)),
        )
    )


def area_ratio(pixmap, step=1):
    """Return ``J``, the output-pixel area of each input pixel (Jacobian determinant of the map).

    Parameters
    ----------
    pixmap : numpy.ndarray
        (ny, nx, 2), from `pixel_map`.
    step : int
        Compute ``J`` every ``step`` pixels and interpolate bilinearly in between: the area of a
        smooth map is smooth, at ``1 / step**2`` of the cost of the gradients.

    Returns
    -------
    numpy.ndarray
        (ny, nx) float32; NaN where the map is undefined.
    """
    ny, nx = pixmap.shape[:2]
    rows = _sample_points(ny, step)
    columns = _sample_points(nx, step)
    x, y = pixmap[np.ix_(rows, columns)][..., 0], pixmap[np.ix_(rows, columns)][..., 1]
    dxdi = np.gradient(x, columns, axis=1)
    dxdj = np.gradient(x, rows, axis=0)
    dydi = np.gradient(y, columns, axis=1)
    dydj = np.gradient(y, rows, axis=0)
    area = np.abs(dxdi * dydj - dxdj * dydi)
    if len(rows) == ny and len(columns) == nx:
        return area.astype(np.float32)
    if not np.isfinite(area).all():
        # Undefined parts of the map: no interpolation across them.
        return area_ratio(pixmap, 1)
    # Bilinear, one axis at a time, in float32: a third of the cost of a linear RectBivariateSpline.
    area = _linear_along(area.astype(np.float32), columns, nx, axis=1)
    return _linear_along(area, rows, ny, axis=0)


def _linear_along(values, points, n, axis):
    """Interpolate ``values``, sampled at the increasing indices ``points`` along ``axis``, linearly at ``0 .. n-1``."""
    target = np.arange(n)
    left = np.clip(np.searchsorted(points, target, side="right") - 1, 0, len(points) - 2)
    weight = ((target - points[left]) / (points[left + 1] - points[left])).astype(np.float32)
    shape = [1, 1]
    shape[axis] = n
    weight = weight.reshape(shape)
    result = np.take(values, left + 1, axis=axis)
    result -= np.take(values, left, axis=axis)
    result *= weight
    result += np.take(values, left, axis=axis)
    return result


def _sample_points(n, step):
    """Every ``step``-th index of ``n``, the last one included (at least 2 points)."""
    step = max(1, min(int(step), (n - 1) // 2 or 1))
    points = np.arange(0, n, step)
    if points[-1] != n - 1:
        points = np.append(points, n - 1)
    return points


def signal_independent_rnoise(var_rnoise, dq, block=32, sample_step=4):
    """Return VAR_RNOISE smoothed to the median of blocks: the ``ivm`` weights' variance.

    A ramp's read-noise variance grows with its signal (the fit's weighting depends on the
    signal-to-noise ratio, and saturation shortens the ramp), so ``1 / VAR_RNOISE`` would weight
    a bright star's core down in the frames where it falls on a pixel centre and up where it falls
    between pixels, and the mosaic would lose up to a few percent of the star's flux. The median
    of each ``block x block`` region keeps what the weights are for (frames and detector regions
    of different read noise) without the stars.

    Parameters
    ----------
    var_rnoise : numpy.ndarray
        The frame's read-noise variance.
    dq : numpy.ndarray
        Its DQ flags (DO_NOT_USE pixels are left out of the medians).
    block : int
        Block side (pixels).
    sample_step : int
        The medians use every ``sample_step``-th row and column of a block.

    Returns
    -------
    numpy.ndarray
        float32, the shape of ``var_rnoise``; a block without a usable pixel takes the frame's median.
    """
    ny, nx = var_rnoise.shape
    rows, columns = np.arange(0, ny, sample_step), np.arange(0, nx, sample_step)
    sample = np.asarray(var_rnoise[np.ix_(rows, columns)], dtype=np.float32)
    usable = np.isfinite(sample) & (sample > 0) & ((dq[np.ix_(rows, columns)] & FLAGS["DO_NOT_USE"]) == 0)
    if not usable.any():
        return var_rnoise
    per_block = max(1, block // sample_step)
    by, bx = -(-len(rows) // per_block), -(-len(columns) // per_block)
    padded = np.full((by * per_block, bx * per_block), np.nan, np.float32)
    padded[: len(rows), : len(columns)] = np.where(usable, sample, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks: filled below
        medians = np.nanmedian(padded.reshape(by, per_block, bx, per_block), axis=(1, 3))
    medians[~np.isfinite(medians)] = np.median(sample[usable])
    step = per_block * sample_step
    # Each block's median written into its pixels in one pass (np.repeat twice made two full copies).
    smooth = np.empty((by * step, bx * step), np.float32)
    smooth.reshape(by, step, bx, step)[...] = medians[:, np.newaxis, :, np.newaxis]
    return smooth[:ny, :nx]


class Resampler:
    """Drizzle frames one at a time onto one output grid (memory: the output arrays).

    Parameters
    ----------
    output_wcs : gwcs.WCS
        The output grid (``array_shape`` set), from `make_output_wcs`.
    pixel_scale_ratio : float
        Output pixel scale / nominal input pixel scale.
    pixfrac : float
        Drizzle's drop size (fraction of an input pixel's side).
    kernel : str
        Drizzle kernel (``square`` conserves flux; see drizzle's documentation).
    weight_type : str
        ``ivm`` (inverse of VAR_RNOISE, per pixel) or ``exptime``.
    good_bits : int or str
        DQ bits that do not exclude a pixel (stcal's convention: ``~DO_NOT_USE`` excludes only
        DO_NOT_USE; 0 excludes every flagged pixel).
    fillval : float
        Output value where no input contributes.
    variances : bool
        Drizzle the variance arrays (and compute ERR).
    context : bool
        Keep the context (CON) image.
    pixmap_stepsize : int
        See `pixel_map`.
    """

    def __init__(
        self,
        output_wcs,
        pixel_scale_ratio=1.0,
        pixfrac=1.0,
        kernel="square",
        weight_type="ivm",
        good_bits="~DO_NOT_USE",
        fillval=np.nan,
        variances=True,
        context=True,
        pixmap_stepsize=1,
    ):
        if kernel not in KERNELS:
            raise ResampleError(f"unknown drizzle kernel {kernel!r}; one of {', '.join(KERNELS)}")
        if weight_type not in ("ivm", "exptime"):
            raise ResampleError(f"unknown weight_type {weight_type!r}; 'ivm' or 'exptime'")
        if not 0.0 < pixfrac <= 1.0:
            raise ResampleError(f"pixfrac must be in (0, 1], got {pixfrac}")
        self.output_wcs = output_wcs
        self.shape = tuple(output_wcs.array_shape)
        self.pixel_scale_ratio = float(pixel_scale_ratio)
        self.pixfrac = float(pixfrac)
        self.kernel = kernel
        self.weight_type = weight_type
        self.good_bits = good_bits
        self.fillval = fillval
        self.variances = variances
        self.pixmap_stepsize = pixmap_stepsize
        # The pixel areas are as smooth as the interpolated pixel map.
        self.area_step = pixmap_stepsize
        self.count = 0
        self.exposure_time = 0.0
        self._driz = Drizzle(kernel=kernel, fillval=fillval, out_shape=self.shape, disable_ctx=not context)
        if variances:
            self._var_sum = {name: np.zeros(self.shape, np.float32) for name in VARIANCE_ARRAYS}
            self._var_weight = np.zeros(self.shape, np.float32)
            # The drizzle of one frame's sqrt(variance), reused for every variance and frame: new
            # output-sized arrays for each would cost their page faults each time.
            self._single_img = np.zeros(self.shape, np.float32)
            self._single_wht = np.zeros(self.shape, np.float32)

    def weight_map(self, data, dq, var_rnoise, exptime):
        """Return the input pixels' drizzle weights: 0 for excluded or non-finite pixels.

        Parameters
        ----------
        data : numpy.ndarray
            SCI; non-finite pixels get no weight.
        dq : numpy.ndarray
            DQ; flagged pixels (but ``good_bits``) get no weight.
        var_rnoise : numpy.ndarray or None
            The ``ivm`` weights' variance (smoothed by `signal_independent_rnoise`).
        exptime : float
            The ``exptime`` weight.

        Returns
        -------
        numpy.ndarray
            float32.
        """
        # stcal's build_driz_weight (its values, bit for bit), without its full-frame temporaries:
        # a third of its time on a full frame, where each frame's weights are made twice.
        usable = bitfield_to_boolean_mask(dq, self.good_bits, good_mask_value=True, dtype=bool, flag_name_map=FLAGS)
        usable &= np.isfinite(data)
        if self.weight_type == "exptime":
            weight = np.full(data.shape, exptime, np.float32)
        elif var_rnoise is None:
            log.warning("'var_rnoise' array not available. Setting drizzle weight map to 1")
            weight = np.ones(data.shape, np.float32)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                weight = np.divide(1.0, signal_independent_rnoise(var_rnoise, dq), dtype=np.float32)
            usable &= np.isfinite(weight)
        weight[~usable] = 0.0
        return weight

    def add(self, data, wcs, dq=None, variances=None, exptime=1.0, pixmap=None, name="frame", sky=0.0, area=None):
        """Drizzle one frame onto the output.

        Parameters
        ----------
        data : numpy.ndarray
            SCI (flux per nominal pixel area).
        wcs : gwcs.WCS
            Its detector -> world transform.
        dq : numpy.ndarray, optional
            uint32 DQ; flagged pixels (but ``good_bits``) get no weight.
        variances : dict, optional
            ``var_rnoise``, ``var_poisson``, ``var_flat`` arrays; ``var_rnoise`` also sets
            the ``ivm`` weights (1 everywhere without it).
        exptime : float
            Exposure time (s), the ``exptime`` weight.
        pixmap : numpy.ndarray, optional
            A pixel map already computed for this frame and grid.
        name : str
            For messages.
        sky : float
            Sky level to subtract (`sky_level`).
        area : numpy.ndarray, optional
            `area_ratio` of ``pixmap``, if already known.

        Returns
        -------
        numpy.ndarray
            The pixel map used (to reuse for a blot).
        """
        variances = variances or {}
        if dq is None:
            dq = np.zeros(data.shape, np.uint32)
        if pixmap is None:
            pixmap = pixel_map(wcs, self.output_wcs, data.shape, self.pixmap_stepsize)
        if not np.any(_lands_on(pixmap, self.shape)):
            raise ResampleError(f"{name}: does not overlap the output grid")
        var_rnoise = variances.get("var_rnoise")
        weight = self.weight_map(data, dq, var_rnoise, exptime)
        # A pixel map with NaN (outside the output WCS's domain) would poison drizzle's polygons.
        undefined = ~np.isfinite(pixmap).all(axis=-1)
        if undefined.any():
            pixmap = pixmap.copy()
            pixmap[undefined] = -1.0e6
            weight[undefined] = 0.0
        scale = self._flux_scale(pixmap, area)
        scaled = np.subtract(data, sky, dtype=np.float32)
        scaled *= scale
        scaled[~(weight > 0)] = 0.0
        # Variance arrays all zero (no flat error known...) need no drizzle: they stay zero.
        drizzled = [name for name in VARIANCE_ARRAYS if self.variances and _nonzero(variances.get(name))]
        weight_before = None
        if self.variances and self.count and not drizzled:
            weight_before = self._driz.out_wht.copy()
        self._driz.add_image(
            scaled,
            exptime=exptime,
            pixmap=pixmap,
            weight_map=weight,
            pixfrac=self.pixfrac,
            pixel_scale_ratio=self.pixel_scale_ratio,
            in_units="cps",
        )
        if self.variances:
            if drizzled:
                self._add_variances(variances, drizzled, pixmap, weight, scale, exptime)
            else:
                # What this frame added to WHT: its weight in the variances' normalisation.
                self._var_weight += self._driz.out_wht if weight_before is None else self._driz.out_wht - weight_before
            del weight_before
        self.count += 1
        self.exposure_time += exptime
        return pixmap

    def _flux_scale(self, pixmap, area=None):
        """``A_nominal / A_true`` of each input pixel (see the module's docstring)."""
        if area is None:
            area = area_ratio(pixmap, self.area_step)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = 1.0 / (area * self.pixel_scale_ratio**2)
        scale[~np.isfinite(scale)] = 0.0
        return scale

    def _add_variances(self, variances, names, pixmap, weight, scale, exptime):
        """jwst's variance resampling: drizzle ``sqrt(var)``, square, combine with squared weights.

        Each frame's variances combine with the weight its SCI had at each output pixel: what the
        frame added to WHT, which is the output weight of the drizzle of one of its variances
        (same pixel map, weights, kernel and drop size).
        """
        square = None
        for name in names:
            # sqrt(max(var, 0)) * scale, in place in one working copy of the frame.
            error = np.nan_to_num(variances[name], nan=0.0)
            np.clip(error, 0.0, None, out=error)
            np.sqrt(error, out=error)
            error *= scale
            self._single_img.fill(0.0)
            self._single_wht.fill(0.0)
            single = Drizzle(
                kernel=self.kernel,
                fillval=np.nan,
                out_img=self._single_img,
                out_wht=self._single_wht,
                disable_ctx=True,
            )
            single.add_image(
                error.astype(np.float32, copy=False),
                exptime=exptime,
                pixmap=pixmap,
                weight_map=weight,
                pixfrac=self.pixfrac,
                pixel_scale_ratio=self.pixel_scale_ratio,
                in_units="cps",
            )
            del error
            if square is None:
                self._var_weight += single.out_wht
                square = np.square(single.out_wht)
            contribution = np.square(single.out_img)
            del single
            contribution *= square
            self._var_sum[name] += np.nan_to_num(contribution, nan=0.0, copy=False)
            del contribution

    def finish(self):
        """Return the output arrays.

        Returns
        -------
        dict
            ``data``, ``wht``, ``con`` (or None), and with variances ``var_rnoise``,
            ``var_poisson``, ``var_flat`` and ``err``; NaN where nothing landed.
        """
        if not self.count:
            raise ResampleError("no frame was drizzled")
        result = {"data": self._driz.out_img, "wht": self._driz.out_wht, "con": self._driz.out_ctx}
        empty = ~(result["wht"] > 0)
        result["data"][empty] = self.fillval
        if self.variances:
            with np.errstate(divide="ignore", invalid="ignore"):
                norm = 1.0 / (np.square(self._var_weight.astype(np.float64)) * self.pixel_scale_ratio**2)
            total = np.zeros(self.shape, np.float64)
            for name in VARIANCE_ARRAYS:
                with np.errstate(invalid="ignore"):
                    variance = (self._var_sum.pop(name) * norm).astype(np.float32)
                variance[empty | ~(self._var_weight > 0)] = np.nan
                result[name] = variance
                total += variance
            result["err"] = np.sqrt(total).astype(np.float32)
            del self._var_weight
        return result


def _nonzero(array):
    """Whether an optional array has a non-zero value."""
    return array is not None and bool(array.any())


def _lands_on(pixmap, shape):
    """Return whether each input pixel centre falls on the output grid (with a margin of one pixel)."""
    ny, nx = shape
    x, y = pixmap[..., 0], pixmap[..., 1]
    with np.errstate(invalid="ignore"):
        return (x > -1.5) & (x < nx + 0.5) & (y > -1.5) & (y < ny + 0.5)


def blot(
    image,
    image_wcs,
    target_wcs,
    target_shape,
    pixmap=None,
    pixel_scale_ratio=1.0,
    stepsize=1,
    fillval=0.0,
    interp="poly5",
    area=None,
):
    """Resample a mosaic back onto a frame's pixels (drizzle's ``blot_image``).

    The inverse of `Resampler.add`'s flux convention: the blotted value is the mosaic's surface
    brightness times the frame pixel's true / nominal area, i.e. comparable to the frame's SCI.

    Parameters
    ----------
    image : numpy.ndarray
        The mosaic (e.g. the median).
    image_wcs : gwcs.WCS
        The mosaic's.
    target_wcs : gwcs.WCS
        The frame's.
    target_shape : tuple of int
        The frame's ``(ny, nx)``.
    pixmap : numpy.ndarray, optional
        The frame's pixel map on the mosaic grid (`pixel_map`), if already known.
    pixel_scale_ratio : float
        Mosaic / nominal frame pixel scale.
    stepsize : int
        See `pixel_map`.
    fillval : float
        Frame pixels outside the mosaic.
    interp : str
        ``blot_image``'s interpolation: ``nearest``, ``linear``, ``poly3``, ``poly5`` (``sinc``, ``lanczos3``...).
    area : numpy.ndarray, optional
        `area_ratio` of ``pixmap``, if already known.

    Returns
    -------
    numpy.ndarray
        float32 ``target_shape``; NaN where the interpolation reaches a NaN of ``image`` (a grid
        pixel without data: ``nearest`` and ``linear`` read 2 x 2 grid pixels, ``poly3`` 4 x 4,
        ``poly5`` 6 x 6).
    """
    if pixmap is None:
        pixmap = pixel_map(target_wcs, image_wcs, target_shape, stepsize)
    area = (area_ratio(pixmap, stepsize) if area is None else area) * pixel_scale_ratio**2
    if not np.isfinite(pixmap).all():
        pixmap = np.where(np.isfinite(pixmap), pixmap, -1.0)
    out = np.full(target_shape, fillval, dtype=np.float32)
    blot_image(np.asarray(image, dtype=np.float32), pixmap, out_img=out, fillval=fillval, iscale=1.0, interp=interp)
    out *= np.nan_to_num(area, nan=1.0)
    return out


@dataclass
class FrameSummary:
    """What the mosaic needs to know of a frame before drizzling it."""

    name: str
    footprint: np.ndarray
    shape: tuple
    pixel_scale: float
    bunit: str
    instrument: str
    filter: str
    exposure_time: float
    group: str = ""


def frame_summary(model):
    """Return a frame's `FrameSummary`.

    Parameters
    ----------
    model : IRISImageModel
        A Level 2 frame with ``meta.wcs``.

    Raises
    ------
    ResampleError
        No WCS, or no pixel scale.
    """
    name = model.meta.filename or "frame"
    wcs = getattr(model.meta, "wcs", None)
    if wcs is None:
        raise ResampleError(f"{name}: no WCS (meta.wcs); run assign_wcs first")
    if model.data is None or model.data.ndim != 2:
        raise ResampleError(f"{name}: SCI is not a 2-D image")
    scale = nominal_pixel_scale(model)
    return FrameSummary(
        name=name,
        footprint=frame_footprint(wcs, model.data.shape),
        shape=model.data.shape,
        pixel_scale=scale,
        bunit=model.meta.bunit_data or "DN/s",
        instrument=model.meta.instrument.name or "",
        filter=model.meta.instrument.filter or "",
        exposure_time=exposure_time(model),
        group=getattr(model.meta, "group_id", None) or "",
    )


def exposure_time(model):
    """Return a frame's exposure time (s), the ``exptime`` weight; 1 when it has none."""
    return float(getattr(model.meta.exposure, "exposure_time", None) or 1.0)


def nominal_pixel_scale(model):
    """Return a frame's nominal pixel scale (arcsec): PIXAR_A2, else PIXSCALE, else CDELT.

    Raises
    ------
    ResampleError
        None of them is known.
    """
    area = getattr(model.meta.photometry, "pixelarea_arcsecsq", None)
    if area:
        return math.sqrt(area)
    if model.meta.instrument.plate_scale:
        return float(model.meta.instrument.plate_scale)
    cdelt = getattr(model.meta.wcsinfo, "cdelt1", None)
    if cdelt:
        return abs(cdelt) * 3600.0
    raise ResampleError(f"{model.meta.filename or 'frame'}: no pixel scale (PIXAR_A2, PIXSCALE or CDELT1)")


def check_frames(summaries):
    """Refuse frames that cannot go into one mosaic: other instruments, filters or units.

    Parameters
    ----------
    summaries : list of FrameSummary
        The frames.

    Raises
    ------
    ResampleError
        One line naming the first frame that differs from the first one.
    """
    if not summaries:
        raise ResampleError("no input frame")
    first = summaries[0]
    for other in summaries[1:]:
        for what in ("instrument", "filter", "bunit"):
            if getattr(other, what) != getattr(first, what):
                raise ResampleError(
                    f"{other.name}: {what} {getattr(other, what)!r} differs from {getattr(first, what)!r} of "
                    f"{first.name}; a mosaic combines frames of one instrument, filter and unit"
                )


def output_grid(
    summaries,
    pixel_scale=None,
    pixel_scale_ratio=1.0,
    rotation=0.0,
    output_shape=None,
    crval=None,
    crpix=None,
    max_growth=4.0,
):
    """Return the mosaic grid of frames: ``(gwcs, wcsinfo, pixel scale, pixel scale ratio)``.

    Parameters
    ----------
    summaries : list of FrameSummary
        The frames.
    pixel_scale : float, optional
        Output pixel scale (arcsec); by default ``pixel_scale_ratio`` times the frames'.
    pixel_scale_ratio : float
        Used when ``pixel_scale`` is not given.
    rotation, output_shape, crval, crpix :
        See `make_output_wcs`.
    max_growth : float
        Largest ratio of the grid's area to the frames' total area (frames far apart would make
        a mostly empty mosaic: an error, unless ``output_shape`` is given).

    Raises
    ------
    ResampleError
    """
    check_frames(summaries)
    input_scale = float(np.median([summary.pixel_scale for summary in summaries]))
    if pixel_scale:
        ratio = pixel_scale / input_scale
    else:
        if not pixel_scale_ratio or pixel_scale_ratio <= 0:
            raise ResampleError(f"pixel_scale_ratio must be positive, got {pixel_scale_ratio}")
        ratio = float(pixel_scale_ratio)
        pixel_scale = ratio * input_scale
    wcs, info = make_output_wcs(
        [summary.footprint for summary in summaries], pixel_scale, rotation, output_shape, crval, crpix
    )
    if output_shape is None:
        area = wcs.array_shape[0] * wcs.array_shape[1] * ratio * ratio
        frames = sum(summary.shape[0] * summary.shape[1] for summary in summaries)
        if len(summaries) > 1 and area > max_growth * frames:
            raise ResampleError(
                f"the frames do not overlap: {summaries[0].name} ... {summaries[-1].name} span a "
                f"{wcs.array_shape[1]} x {wcs.array_shape[0]} pixel grid, {area / frames:.0f} times their total area; "
                "give output_shape to drizzle them anyway"
            )
    log.info(
        "Output grid %d x %d pixels of %.6g arcsec (ratio %.4g to the frames'), CRVAL %.8f %.8f, rotation %.3f deg",
        wcs.array_shape[1],
        wcs.array_shape[0],
        pixel_scale,
        ratio,
        info["crval1"],
        info["crval2"],
        rotation,
    )
    return wcs, info, pixel_scale, ratio


def resample_library(library, resampler, frame_names=None):
    """Drizzle every frame of a library onto a `Resampler`, one frame in memory at a time.

    Parameters
    ----------
    library : ModelLibrary
        Open or not; its models are only read (shelved unmodified).
    resampler : Resampler
        Receives the frames.
    frame_names : list, optional
        Appended with each frame's name.

    Returns
    -------
    dict
        `Resampler.finish`'s arrays.
    """
    with library:
        for index in range(len(library)):
            model = library.borrow(index)
            try:
                variances = {
                    name: getattr(model, name) for name in VARIANCE_ARRAYS if getattr(model, name, None) is not None
                }
                grid, stepsize = resampler.output_wcs, resampler.pixmap_stepsize
                pixmap = library_pixel_map(library, index, model, grid, stepsize)
                resampler.add(
                    model.data,
                    model.meta.wcs,
                    model.dq,
                    variances,
                    exposure_time(model),
                    pixmap=pixmap,
                    name=model.meta.filename or f"frame {index}",
                    sky=sky_level(model),
                    area=library_pixel_area(library, index, model, grid, stepsize, pixmap),
                )
                if frame_names is not None:
                    frame_names.append(model.meta.filename or f"frame {index}")
            finally:
                library.shelve(model, index, modify=False)
            del model
    return resampler.finish()


def summarize_library(library):
    """Return the `FrameSummary` of each frame of a library (read one at a time, unless the library kept them)."""
    with library:
        return [library.frame_fact(index, "summary", frame_summary) for index in range(len(library))]


def fill_value(text):
    """Return the numeric fill value of a ``fillval`` parameter (``NaN``, ``INDEF`` or a number)."""
    text = str(text).strip().upper()
    if text in ("NAN", "INDEF", "NONE", ""):
        return np.nan
    return float(text)
