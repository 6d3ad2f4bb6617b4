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
few offsets for all pixels of a slice at once (numpy, ``bincount``), a slice at a time.
"""

import math
from dataclasses import dataclass

import numpy as np

from ..assign_wcs.slicer import slicer_transforms
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
    for label, transform in transforms.items():
        rows = np.flatnonzero(np.any(labels == label, axis=1))
        if rows.size == 0:
            continue
        columns = np.flatnonzero(labels[rows[rows.size // 2]] == label)
        x = columns.mean()
        y = np.array([rows[0] - 0.5, rows[-1] + 0.5, rows[rows.size // 2] - 0.5, rows[rows.size // 2] + 0.5])
        _, s, wavelength = transform(np.full(4, x), np.clip(y, -0.5, ny_frame - 0.5))
        low, high = min(low, wavelength[:2].min()), max(high, wavelength[:2].max())
        steps.append(abs(wavelength[3] - wavelength[2]))
        _, s_edges, _ = transform(np.array([columns[0] - 0.5, columns[-1] + 0.5]), np.full(2, rows[rows.size // 2]))
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


def _overlaps(low, high, size):
    """Yield ``(cell, overlap)`` of intervals ``[low, high)`` (in cell units) with the cells ``0..size-1``."""
    first = np.floor(low).astype(np.int64)
    span = int(np.max(np.ceil(high) - first)) if low.size else 0
    for offset in range(span):
        cell = first + offset
        overlap = np.minimum(high, cell + 1.0) - np.maximum(low, cell)
        inside = (overlap > 0) & (cell >= 0) & (cell < size)
        yield np.where(inside, cell, 0), np.where(inside, overlap, 0.0)


def _slice_footprints(frame, labels, transforms, grid):
    """Yield per slice the good pixels' flat indices and footprints in voxel units ``(row, s edges, plane edges)``."""
    good = (labels > 0) & good_pixels(frame.dq, frame.data, *(getattr(frame, name) for name in VARIANCE_ARRAYS))
    pixels = np.flatnonzero(good)
    pixel_labels = labels.ravel()[pixels]
    order = np.argsort(pixel_labels, kind="stable")
    pixels, pixel_labels = pixels[order], pixel_labels[order]
    bounds = np.searchsorted(pixel_labels, np.arange(1, max(transforms) + 2))
    nx_frame = labels.shape[1]
    plane_zero = grid.wavelength_start - grid.wavelength_step / 2.0
    for label in range(1, max(transforms) + 1):
        chosen = pixels[bounds[label - 1] : bounds[label]]
        if chosen.size == 0:
            continue
        y, x = np.divmod(chosen, nx_frame)
        transform = transforms[label]
        _, s_low, _ = transform(x - 0.5, y)
        _, s_high, _ = transform(x + 0.5, y)
        _, _, wave_low = transform(x, y - 0.5)
        _, _, wave_high = transform(x, y + 0.5)
        plane_low = (np.minimum(wave_low, wave_high) - plane_zero) / grid.wavelength_step
        plane_high = (np.maximum(wave_low, wave_high) - plane_zero) / grid.wavelength_step
        yield label - 1, chosen, np.minimum(s_low, s_high), np.maximum(s_low, s_high), plane_low, plane_high


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
    plane_size = nwave * nx
    numerator = np.zeros((ny, plane_size))
    weights = np.zeros((ny, plane_size))
    variances = {name: np.zeros((ny, plane_size)) for name in VARIANCE_ARRAYS}
    dq = np.zeros((ny, plane_size), dtype=np.uint32)
    for frame in frames:
        labels, transforms = slicer_transforms(frame.meta.wcs)
        data = frame.data.ravel()
        frame_dq = frame.dq.ravel()
        frame_variances = {name: getattr(frame, name).ravel() for name in VARIANCE_ARRAYS}
        for row, pixels, s_low, s_high, plane_low, plane_high in _slice_footprints(frame, labels, transforms, grid):
            if row >= ny:
                continue
            area = (s_high - s_low) * (plane_high - plane_low)
            flux = data[pixels].astype(np.float64)
            pixel_variances = {name: values[pixels].astype(np.float64) for name, values in frame_variances.items()}
            pixel_dq = frame_dq[pixels]
            flags = int(np.bitwise_or.reduce(pixel_dq)) if pixel_dq.size else 0
            for column, s_overlap in _overlaps(s_low, s_high, nx):
                for plane, plane_overlap in _overlaps(plane_low, plane_high, nwave):
                    overlap = s_overlap * plane_overlap
                    voxel = plane * nx + column
                    share = overlap / area
                    numerator[row] += np.bincount(voxel, share * flux, plane_size)
                    weights[row] += np.bincount(voxel, overlap, plane_size)
                    for name, values in pixel_variances.items():
                        variances[name][row] += np.bincount(voxel, share * share * values, plane_size)
                    for bit in (1 << k for k in range(32) if flags >> k & 1):
                        used = (overlap > 0) & (pixel_dq & bit > 0)
                        dq[row][np.bincount(voxel[used], minlength=plane_size) > 0] |= bit
    empty = weights == 0
    dq[empty] |= _NO_DATA
    with np.errstate(invalid="ignore", divide="ignore"):
        result = {"data": numerator / weights}
        for name, values in variances.items():
            result[name] = values / weights**2
    result["err"] = np.sqrt(sum(result[name] for name in VARIANCE_ARRAYS))

    def as_cube(values, dtype=np.float32):
        return np.ascontiguousarray(values.reshape(ny, nwave, nx).transpose(1, 0, 2), dtype=dtype)

    cube = {name: as_cube(values) for name, values in result.items()}
    cube["wmap"] = as_cube(weights)
    cube["dq"] = as_cube(dq, np.uint32)
    return cube
