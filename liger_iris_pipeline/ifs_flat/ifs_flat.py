"""The slicer IFS's flat from lamp flats and the slice geometry (``docs/ifs_design.rst``).

A lamp flat of the slicer is the lamp's spectrum times the slice throughputs times the pixel
response. The lamp lights every slice with the same spectrum, so in each bank the lamp spectrum is
the median over the slices' fully covered pixels of each row, smoothed along y (a Savitzky-Golay
filter); dividing it out leaves the pixel response times the slice's throughput. That median also
carries the bank's typical throughput, so each bank's spectrum is divided by its sum over the bank's
rows: the lamp's flux over the whole passband is the same in every bank, whatever the wavelength of
each row, and the banks' throughputs stay in the flat relative to each other. Pixels only partly
covered by a slice are divided by the covered fraction of the pixel (from the geometry).

What a lamp flat cannot tell apart from the lamp's spectrum is a response shared by all slices at
the same row of a bank: it stays in the spectrum and is calibrated with the science spectra
(telluric standard). Rows where the lamp is faint (beyond the filter's passband) and pixels
outside the slices get 1 and ``NO_FLAT_FIELD``.
"""

import logging

import numpy as np
from numpy.polynomial import polynomial as P
from scipy import ndimage
from scipy.signal import savgol_filter

from .. import dqflags

__all__ = ["IFSFlatError", "check_geometry", "ifs_flat", "slice_coverage"]

log = logging.getLogger(__name__)


class IFSFlatError(ValueError):
    """The lamp flat and the slice geometry do not go together."""


def check_geometry(frame, geometry, frame_name, geometry_name):
    """Check that a slice geometry is for the frame's IFS mode and spaxel scale.

    Parameters
    ----------
    frame : IRISIFSImageModel
        The lamp flat (or any slicer frame).
    geometry : TMTSliceGeometryModel
        The slice geometry.
    frame_name, geometry_name : str
        File names for the message.

    Raises
    ------
    IFSFlatError
        The frame is not a slicer frame, or the geometry is for another mode or spaxel scale.
    """
    mode, scale = frame.meta.instrument.ifs_mode, frame.meta.instrument.spaxel_scale
    if mode != "SLICER":
        raise IFSFlatError(f"{frame_name}: IFSMODE {mode!r}, not a slicer frame")
    their_mode, their_scale = geometry.meta.instrument.ifs_mode, geometry.meta.instrument.spaxel_scale
    if their_mode != mode or scale is None or their_scale is None or not np.isclose(their_scale, scale):
        raise IFSFlatError(
            f"{geometry_name}: slice geometry for IFSMODE {their_mode} SPAXSCL {their_scale}, "
            f"but {frame_name} is IFSMODE {mode} SPAXSCL {scale}"
        )


def slice_coverage(slices, shape):
    """Return each pixel's slice and the fraction of the pixel the slice covers.

    A pixel belongs to the slice its centre falls in (``x_left(y) <= x < x_left(y) + WIDTH`` in the
    slice's rows), as in the simulator and ``docs/ifs_design.rst``.

    Parameters
    ----------
    slices : numpy.ndarray
        The ``SLICES`` table of a `TMTSliceGeometryModel`.
    shape : tuple of int
        ``(ny, nx)`` of the detector.

    Returns
    -------
    slice_map : numpy.ndarray
        int16 (ny, nx): row index of the slice in ``slices``, -1 outside the slices.
    coverage : numpy.ndarray
        float32 (ny, nx): covered fraction of the pixel (0 outside the slices).
    """
    ny, nx = shape
    slice_map = np.full(shape, -1, dtype=np.int16)
    coverage = np.zeros(shape, dtype=np.float32)
    for index, row in enumerate(slices):
        ys = np.arange(max(int(row["YSTART"]), 0), min(int(row["YSTOP"]), ny))
        left = P.polyval(ys.astype(np.float64), row["TRACE"])[:, None]
        right = left + row["WIDTH"]
        # Only the columns the slice can reach: a full row per slice costs 88 times the frame at full size.
        first, stop = max(int(np.floor(left.min())), 0), min(int(np.ceil(right.max())) + 1, nx)
        columns = np.arange(first, stop, dtype=np.float64)
        covered = np.clip(np.minimum(columns + 0.5, right) - np.maximum(columns - 0.5, left), 0.0, 1.0)
        inside = (columns >= left) & (columns < right)
        rows, cols = np.nonzero(inside)
        slice_map[ys[rows], cols + first] = index
        coverage[ys[rows], cols + first] = covered[rows, cols]
    return slice_map, coverage


def ifs_flat(data, err, dq, slices, smoothing=21, min_level=0.8, max_slope=0.01, name="frame"):
    """Return the IFS flat of a lamp flat: pixel response times slice throughput, median 1.

    Parameters
    ----------
    data, err : numpy.ndarray
        Dark-subtracted lamp flat and its 1-sigma errors (ny, nx), DN/s.
    dq : numpy.ndarray
        Its DQ flags.
    slices : numpy.ndarray
        The ``SLICES`` table of the slice geometry.
    smoothing : int
        Rows of the Savitzky-Golay filter (cubic) smoothing the lamp's spectrum along y.
    min_level : float
        Rows whose lamp level is below this fraction of the bank's median get no flat.
    max_slope : float
        Rows where the lamp level changes by more than this fraction per row (the passband's
        edges), and two rows around them, get no flat.
    name : str
        File name for messages.

    Returns
    -------
    flat, flat_err : numpy.ndarray
        float32 (ny, nx); 1 and 0 where there is no flat.
    flat_dq : numpy.ndarray
        uint32 (ny, nx): the lamp flat's flags, ``NO_FLAT_FIELD`` where there is no flat.

    Raises
    ------
    IFSFlatError
        The lamp does not light the slices of the geometry.
    """
    data = np.asarray(data, dtype=np.float64)
    slice_map, coverage = slice_coverage(slices, data.shape)
    usable = np.isfinite(data) & ((dq & dqflags.pixel["DO_NOT_USE"]) == 0)
    full = usable & (coverage > 0.999)
    lamp = np.full(data.shape, np.nan)
    for bank in np.unique(slices["BANK"]):
        members = np.flatnonzero(slices["BANK"] == bank)
        start, stop = int(slices["YSTART"][members].min()), int(slices["YSTOP"][members].max())
        # Median over the bank's fully covered pixels, row by row: the lamp spectrum times the row's response.
        in_bank = np.isin(slice_map[start:stop], members) & full[start:stop]
        level = np.array(
            [
                np.median(row[mask]) if mask.sum() > 2 else np.nan
                for row, mask in zip(data[start:stop], in_bank, strict=True)
            ]
        )
        if not np.isfinite(level).any() or np.nanmedian(level) <= 0:
            raise IFSFlatError(f"{name}: the lamp does not light the slices of bank {bank} (rows {start}-{stop - 1})")
        bright = np.isfinite(level) & (level > min_level * np.nanmedian(level))
        # Where the lamp rises steeply (the passband's edges) the slices' wavelength offsets, not the
        # pixel response, would make the flat: those rows (and their neighbours) get none.
        steep = np.abs(np.gradient(np.where(bright, level, 0.0))) > max_slope * np.where(bright, level, np.inf)
        bright &= ~ndimage.binary_dilation(steep, iterations=2)
        smooth = np.full(level.shape, np.nan)
        runs = np.flatnonzero(np.diff(np.concatenate([[0], bright.astype(np.int8), [0]])))
        for first, last in zip(runs[::2], runs[1::2], strict=True):
            window = min(smoothing, last - first) // 2 * 2 + 1  # odd, at most the run
            window = window if window <= last - first else window - 2
            run = level[first:last]
            smooth[first:last] = savgol_filter(run, window, 3) if window > 3 else run
        # The banks' medians differ by their slices' typical throughput; the lamp's flux over the passband does not.
        smooth /= np.nansum(level)
        rows = np.isin(slice_map[start:stop], members)
        lamp[start:stop][rows] = np.broadcast_to(smooth[:, None], rows.shape)[rows]
    model = lamp * coverage
    has_flat = (slice_map >= 0) & np.isfinite(model) & (model > 0)
    flat = np.ones(data.shape, dtype=np.float64)
    flat_err = np.zeros(data.shape, dtype=np.float64)
    flat[has_flat] = data[has_flat] / model[has_flat]
    flat_err[has_flat] = err[has_flat] / model[has_flat]
    good = has_flat & usable
    if good.sum() == 0:
        raise IFSFlatError(f"{name}: no pixel of the slices is lit by the lamp")
    norm = np.median(flat[good])
    flat[has_flat] /= norm
    flat_err[has_flat] /= norm
    flat[has_flat & ~np.isfinite(flat)] = 1.0
    flat_dq = dq.astype(np.uint32) | np.where(has_flat, 0, dqflags.pixel["NO_FLAT_FIELD"]).astype(np.uint32)
    log.info("%s: flat of %d slices, %d pixels (normalised by %.4g)", name, len(slices), has_flat.sum(), norm)
    return flat.astype(np.float32), flat_err.astype(np.float32), flat_dq
