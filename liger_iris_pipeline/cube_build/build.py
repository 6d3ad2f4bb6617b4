"""Resampling slicer IFS frames onto a regular (x, y, wavelength) cube, without stpipe.

The weighting is the drizzle idea of jwst's ``cube_build`` (its ``weighting='drizzle'``): a
detector pixel's footprint in the slicer's coordinates, ``[s(x - 1/2), s(x + 1/2)]`` along the
slice by ``[lambda(y - 1/2), lambda(y + 1/2)]`` in wavelength, within its slice (one row of the
cube), is overlaid on the cube's voxels; the pixel's flux is shared among them in proportion to
the overlapped areas. With ``o`` the overlap of pixel ``p`` and voxel ``v`` in units of the voxel's
area and ``a_p`` the pixel footprint's area in the same units,

    value_v = sum_p (o_pv / a_p) f_p / W_v,   W_v = sum_p o_pv   (the weight map, WMAP),

i.e. the flux density of the pixels over the voxel times its size: the cube's sum over voxels
fully covered is the frames' sum over pixels (flux conserved, DN/s per spaxel per wavelength bin),
and a voxel partly covered by good pixels takes the density of those. The variances follow with
the weights squared, ``var_v = sum_p (o_pv / a_p)^2 var_p / W_v^2``; DQ is the OR of the flags of
the pixels used. A pixel overlaps at most two spaxels and a few bins: the sums run over those
few voxels, in a compiled loop over the pixels (numba).
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..assign_wcs.slicer import slice_boxes, slicer_transforms
from ..dqflags import pixel as dqflags
from ..lib.masks import good_pixels
from ..lib.variance import VARIANCE_ARRAYS

__all__ = ["CubeGrid", "build_cube", "check_same_pointing", "default_grid"]

_NO_DATA = dqflags["DO_NOT_USE"] | dqflags["NON_SCIENCE"]
"""DQ of a voxel no good pixel reaches."""


@dataclass
class CubeGrid:
    """The grid a cube is built on: the frames' spaxel grid and a linear wavelength axis.

    Attributes
    ----------
    wavelength_start : float
        Centre of plane 0 (um).
    wavelength_step : float
        Plane width (um).
    nwave, ny, nx : int
        Planes, slices (rows) and spaxels (columns).
    """

    wavelength_start: float
    wavelength_step: float
    nwave: int
    ny: int
    nx: int

    @property
    def shape(self):
        """``(nwave, ny, nx)``."""
        return (self.nwave, self.ny, self.nx)


def default_grid(frame, wavelength_step=None, wavelength_range=None):
    """Return the cube grid of a frame's slicer WCS: its spaxel grid, and the wavelengths its slices reach.

    Parameters
    ----------
    frame : IRISIFSImageModel
        A frame with a slicer gwcs (``assign_wcs``).
    wavelength_step : float, optional
        Plane width (um); by default the median dispersion at the slices' centres (one plane per
        detector row, as the detector samples the spectrum).
    wavelength_range : tuple of float, optional
        ``(first, last)`` plane centres (um); by default the range every slice's rows reach.

    Returns
    -------
    CubeGrid
    """
    labels, transforms = slicer_transforms(frame.meta.wcs)
    ny_frame = labels.shape[0]
    low, high, steps, n_spaxels = math.inf, -math.inf, [], 0
    for label, box in slice_boxes(labels):
        transform = transforms[label]
        rows = np.flatnonzero(np.any(labels[box] == label, axis=1)) + box[0].start
        middle = rows[rows.size // 2]
        columns = np.flatnonzero(labels[middle, box[1]] == label) + box[1].start
        x = columns.mean()
        y = np.array([rows[0] - 0.5, rows[-1] + 0.5, middle - 0.5, middle + 0.5])
        _, s, wavelength = transform(np.full(4, x), np.clip(y, -0.5, ny_frame - 0.5))
        low, high = min(low, wavelength[:2].min()), max(high, wavelength[:2].max())
        steps.append(abs(wavelength[3] - wavelength[2]))
        _, s_edges, _ = transform(np.array([columns[0] - 0.5, columns[-1] + 0.5]), np.full(2, middle))
        n_spaxels = max(n_spaxels, int(round(s_edges[1])))
    step = float(wavelength_step or np.median(steps))
    if wavelength_range is not None:
        first, last = (float(value) for value in wavelength_range)
    else:
        first, last = low + step / 2.0, high - step / 2.0
    if not (step > 0 and last >= first):
        raise ValueError(f"no wavelength planes between {first} and {last} um in steps of {step} um")
    return CubeGrid(float(first), step, int(math.floor((last - first) / step + 1e-9)) + 1, max(transforms), n_spaxels)


def check_same_pointing(frames, tolerance=0.01):
    """Raise `ValueError` unless the frames' spaxel grids fall on the same sky (one pointing).

    Parameters
    ----------
    frames : list of IRISIFSImageModel
        Frames with slicer WCS.
    tolerance : float
        Largest allowed offset (spaxels) at the grid's corners.

    Raises
    ------
    ValueError
        Names the first frame that differs and by how much: dithered frames are not combined yet.
    """
    from ..lib.models import file_label

    corners = (np.array([0.0, 0.0, 5.0, 5.0]), np.array([0.5, 5.5, 0.5, 5.5]), np.ones(4))
    reference = frames[0].meta.wcs.get_transform("slicer", "world")(*corners)[:2]
    scale = frames[0].meta.instrument.spaxel_scale / 3600.0
    for frame in frames[1:]:
        ra, dec = frame.meta.wcs.get_transform("slicer", "world")(*corners)[:2]
        offset = np.hypot((ra - reference[0]) * np.cos(np.radians(dec)), dec - reference[1]).max() / scale
        if not offset <= tolerance:
            raise ValueError(
                f"{file_label(frame)}: its spaxel grid is {offset:.3g} spaxels from {file_label(frames[0])}'s: "
                "cube_build combines frames of one pointing (dithers are not supported yet)"
            )


def _slice_footprints(frame, labels, transforms, grid):
    """Yield per slice its good pixels and their footprints in voxel units: ``(row, y, x, s edges, plane edges)``.

    The slice's transform is evaluated once on the corners of its pixels; a pixel's ``s`` edges are
    the means of its left and right corners, its wavelength edges those of its lower and upper ones.
    """
    plane_zero = grid.wavelength_start - grid.wavelength_step / 2.0
    arrays = [frame.data, *(getattr(frame, name) for name in VARIANCE_ARRAYS)]
    for label, box in slice_boxes(labels):
        good = (labels[box] == label) & good_pixels(frame.dq[box], *(array[box] for array in arrays))
        y, x = np.nonzero(good)
        if y.size == 0:
            continue
        rows, columns = good.shape
        corner_y, corner_x = np.mgrid[: rows + 1, : columns + 1]
        _, s, wavelength = transforms[label](corner_x + (box[1].start - 0.5), corner_y + (box[0].start - 0.5))
        s_left = (s[y, x] + s[y + 1, x]) / 2.0
        s_right = (s[y, x + 1] + s[y + 1, x + 1]) / 2.0
        wave_bottom = (wavelength[y, x] + wavelength[y, x + 1]) / 2.0
        wave_top = (wavelength[y + 1, x] + wavelength[y + 1, x + 1]) / 2.0
        plane_low = (np.minimum(wave_bottom, wave_top) - plane_zero) / grid.wavelength_step
        plane_high = (np.maximum(wave_bottom, wave_top) - plane_zero) / grid.wavelength_step
        yield (
            label - 1,
            y + box[0].start,
            x + box[1].start,
            np.minimum(s_left, s_right),
            np.maximum(s_left, s_right),
            plane_low,
            plane_high,
        )


def _native(array):
    """Return an array in native byte order (FITS arrays are big-endian), a copy only if it is not."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


@functools.cache
def _drizzle_kernel():
    """Compile (or load from numba's cache) the kernel sharing pixels among voxels; numba is imported on first use."""
    import numba

    @numba.njit(cache=True, nogil=True)
    def kernel(
        row, y, x, s_low, s_high, plane_low, plane_high, flux, var_poisson, var_rnoise, var_flat, dq, sums, cube_dq
    ):
        _, nwave, nx = cube_dq.shape
        for i in range(y.size):
            value = flux[y[i], x[i]]
            variances = (var_poisson[y[i], x[i]], var_rnoise[y[i], x[i]], var_flat[y[i], x[i]])
            area = (s_high[i] - s_low[i]) * (plane_high[i] - plane_low[i])
            if not area > 0.0:
                continue
            for column in range(max(int(np.floor(s_low[i])), 0), min(int(np.ceil(s_high[i])), nx)):
                s_overlap = min(s_high[i], column + 1.0) - max(s_low[i], float(column))
                if s_overlap <= 0.0:
                    continue
                for plane in range(max(int(np.floor(plane_low[i])), 0), min(int(np.ceil(plane_high[i])), nwave)):
                    overlap = s_overlap * (min(plane_high[i], plane + 1.0) - max(plane_low[i], float(plane)))
                    if overlap <= 0.0:
                        continue
                    share = overlap / area
                    sums[0, row, plane, column] += share * value
                    sums[1, row, plane, column] += overlap
                    for k in range(3):
                        sums[2 + k, row, plane, column] += share * share * variances[k]
                    cube_dq[row, plane, column] |= dq[y[i], x[i]]

    return kernel


def build_cube(frames, grid):
    """Resample frames onto a cube grid (see the module's docstring).

    Parameters
    ----------
    frames : list of IRISIFSImageModel
        Frames with slicer gwcs (``assign_wcs``) on the same spaxel grid (one pointing).
    grid : CubeGrid
        The cube's grid.

    Returns
    -------
    dict
        ``data, err, dq, wmap`` and the variance arrays, ``grid.shape``; NaN where ``wmap`` is 0.
    """
    nwave, ny, nx = grid.shape
    # Sums per voxel, (slice, plane, spaxel) order as the pixels reach them: flux share, weight, the variances.
    sums = np.zeros((5, ny, nwave, nx))
    dq = np.zeros((ny, nwave, nx), dtype=np.uint32)
    kernel = _drizzle_kernel()
    for frame in frames:
        labels, transforms = slicer_transforms(frame.meta.wcs)
        # The kernel reads the frame's own arrays at the pixels' (y, x), in native byte order.
        arrays = [_native(getattr(frame, name)) for name in ("data", *VARIANCE_ARRAYS, "dq")]
        for row, y, x, s_low, s_high, plane_low, plane_high in _slice_footprints(frame, labels, transforms, grid):
            if row >= ny:
                continue
            kernel(row, y, x, s_low, s_high, plane_low, plane_high, *arrays, sums, dq)
    numerator, weights = sums[0], sums[1]
    empty = weights == 0
    dq[empty] |= _NO_DATA
    with np.errstate(invalid="ignore", divide="ignore"):
        result = {"data": numerator / weights}
        for name, values in zip(VARIANCE_ARRAYS, sums[2:], strict=True):
            result[name] = values / weights**2
    result["err"] = np.sqrt(sum(result[name] for name in VARIANCE_ARRAYS))

    def as_cube(values, dtype=np.float32):
        return np.ascontiguousarray(values.transpose(1, 0, 2), dtype=dtype)

    cube = {name: as_cube(values) for name, values in result.items()}
    cube["wmap"] = as_cube(weights)
    cube["dq"] = as_cube(dq, np.uint32)
    return cube
