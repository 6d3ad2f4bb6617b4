"""Slice edges of the slicer IFS traced on a lamp flat, and their polynomials (``docs/ifs_design.rst``).

The lamp lights the slices and leaves the gaps between them dark. In each row the lit runs of
pixels are the slices; an edge is placed where the light of its few pixels, divided by the
slice's interior level, says the slice begins: a pixel partly covered by the slice receives the
covered fraction of a full pixel's light, so the edge is found to a small fraction of a pixel.
Slices are followed from a bank's middle row outward (a trace moves by much less than a pixel per
row), and each edge is fitted with a polynomial in y with sigma clipping.
"""

import logging

import numpy as np
from astropy.modeling import fitting, models
from astropy.stats import sigma_clip
from scipy import ndimage

from .. import dqflags

__all__ = ["SliceGeometryError", "fit_edges", "trace_edges", "find_banks"]

log = logging.getLogger(__name__)

_LIT_FRACTION = 0.5
"""A pixel is lit above this fraction of its row's lamp level; a slice's row is used above it too."""


class SliceGeometryError(ValueError):
    """The lamp flat does not show the expected slices."""


def _lamp_image(data, dq):
    """Return the frame with unusable pixels replaced along y (for finding runs) and the mask of those pixels."""
    bad = ~np.isfinite(data)
    if dq is not None:
        bad |= (dq & dqflags.pixel["DO_NOT_USE"]) != 0
    image = np.where(bad, 0.0, data).astype(np.float64)
    if bad.any():
        filled = ndimage.median_filter(image, size=(5, 1))
        image = np.where(bad, filled, image)
    return image, bad


def find_banks(image, min_rows=16):
    """Return the ``(start, stop)`` rows of each bank: runs of rows the lamp lights.

    Parameters
    ----------
    image : numpy.ndarray
        Lamp flat (ny, nx).
    min_rows : int
        Shorter runs of lit rows are ignored.

    Returns
    -------
    list of tuple of int
    """
    row_level = np.percentile(image, 90, axis=1)
    if not row_level.max() > 0:
        return []
    lit = row_level > _LIT_FRACTION * np.median(row_level[row_level > 0.25 * row_level.max()])
    edges = np.flatnonzero(np.diff(np.concatenate([[0], lit.astype(np.int8), [0]])))
    return [
        (int(start), int(stop)) for start, stop in zip(edges[::2], edges[1::2], strict=True) if stop - start >= min_rows
    ]


def _runs(profile, threshold):
    """Return first and last columns of the runs of ``profile > threshold``."""
    lit = np.concatenate([[0], (profile > threshold).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(lit))
    return edges[::2], edges[1::2] - 1


def _row_edges(profile, bad_row, first, last):
    """Sub-pixel left and right edges of the runs ``first..last`` of a row, NaN where unmeasurable.

    A run's edge pixels and their outer neighbour hold ``level * covered width``: the edge is the
    boundary of the window minus (or plus) the window's light over the interior level.
    """
    nx = profile.size
    left = np.full(first.size, np.nan)
    right = np.full(first.size, np.nan)
    level = np.full(first.size, np.nan)
    for index, (j0, j1) in enumerate(zip(first, last, strict=True)):
        if j0 < 1 or j1 > nx - 2 or j1 - j0 < 4:
            continue
        interior = profile[j0 + 2 : j1 - 1]
        value = np.median(interior)
        if value <= 0 or bad_row[j0 - 1 : j0 + 2].any() or bad_row[j1 - 1 : j1 + 2].any():
            continue
        level[index] = value
        left[index] = j0 + 1.5 - profile[j0 - 1 : j0 + 2].sum() / value
        right[index] = j1 - 1.5 + profile[j1 - 1 : j1 + 2].sum() / value
    return left, right, level


def trace_edges(data, dq=None, n_slices=None, name="frame"):
    """Measure the left and right edge of every slice in every row of a lamp flat.

    Parameters
    ----------
    data : numpy.ndarray
        Lamp flat (ny, nx), dark subtracted, DN/s.
    dq : numpy.ndarray, optional
        Its DQ flags: ``DO_NOT_USE`` pixels are not measured.
    n_slices : int, optional
        Slices expected on the detector (all banks); fewer or more found is an error.
    name : str
        File name for messages.

    Returns
    -------
    left, right : numpy.ndarray
        float64 (n_slices, ny): edge positions (0-based pixels), NaN where not measured.
    level : numpy.ndarray
        float64 (n_slices, ny): the slice's interior level in each row.
    banks : numpy.ndarray
        int16 (n_slices,): bank of each slice (banks numbered from the bottom).

    Raises
    ------
    SliceGeometryError
        No lit bank, or not the expected number of slices.
    """
    image, bad = _lamp_image(np.asarray(data, dtype=np.float64), dq)
    ny = image.shape[0]
    banks = find_banks(image)
    if not banks:
        raise SliceGeometryError(f"{name}: no rows lit by the lamp: not a lamp flat of the slicer")
    lefts, rights, levels, bank_of = [], [], [], []
    for bank, (start, stop) in enumerate(banks):
        middle = (start + stop) // 2
        band = np.median(image[max(start, middle - 5) : middle + 6], axis=0)
        first, last = _runs(band, _LIT_FRACTION * np.percentile(band, 75))
        keep = (last - first) >= 4
        first, last = first[keep], last[keep]
        if first.size == 0:
            raise SliceGeometryError(f"{name}: no slices found in the lit rows {start}-{stop - 1}")
        count = first.size
        left = np.full((count, ny), np.nan)
        right = np.full((count, ny), np.nan)
        level = np.full((count, ny), np.nan)
        for rows in (range(middle, stop), range(middle - 1, start - 1, -1)):
            centres = (first + last) / 2.0
            widths = (last - first + 1).astype(np.float64)
            for row in rows:
                profile = image[row]
                run_first, run_last = _runs(profile, _LIT_FRACTION * np.percentile(profile, 75))
                if run_first.size == 0:
                    continue
                run_centres = (run_first + run_last) / 2.0
                nearest = np.abs(run_centres[None, :] - centres[:, None]).argmin(axis=1)
                moved = np.abs(run_centres[nearest] - centres)
                run_widths = run_last[nearest] - run_first[nearest] + 1
                matched = (moved < 0.25 * widths) & (np.abs(run_widths - widths) < 0.25 * widths)
                if not matched.any():
                    continue
                row_left, row_right, row_level = _row_edges(
                    profile, bad[row], run_first[nearest[matched]], run_last[nearest[matched]]
                )
                left[matched, row], right[matched, row], level[matched, row] = row_left, row_right, row_level
                centres[matched] = run_centres[nearest[matched]]
        lefts.append(left)
        rights.append(right)
        levels.append(level)
        bank_of += [bank] * count
    left, right, level = np.concatenate(lefts), np.concatenate(rights), np.concatenate(levels)
    found = left.shape[0]
    if n_slices is not None and found != n_slices:
        raise SliceGeometryError(
            f"{name}: {found} slices found in {len(banks)} lit bank(s), {n_slices} expected:"
            " not a lamp flat of this slicer"
        )
    log.info("%s: %d slices in %d bank(s)", name, found, len(banks))
    return left, right, level, np.array(bank_of, dtype=np.int16)


def fit_edges(left, right, level, degree=2, nsigma=4.0, name="frame"):
    """Fit a polynomial in y to each slice's edges and find its rows.

    Parameters
    ----------
    left, right, level : numpy.ndarray
        (n_slices, ny) from `trace_edges`.
    degree : int
        Degree of the edge polynomials (at most 3).
    nsigma : float
        Clipping threshold on the residuals.
    name : str
        File name for messages.

    Returns
    -------
    traces : numpy.ndarray
        float64 (n_slices, 4): left-edge polynomials (`numpy.polynomial.polynomial.polyval`).
    widths : numpy.ndarray
        float64 (n_slices,): mean of right minus left edge over the slice's rows.
    rows : numpy.ndarray
        int32 (n_slices, 2): ``(ystart, ystop)``, the rows where the slice is lit above half its level.
    rms : numpy.ndarray
        float64 (n_slices,): rms of the kept left-edge residuals (pixels).
    """
    if not 1 <= degree <= 3:
        raise ValueError(f"degree must be 1 to 3 (TRACE holds 4 coefficients), got {degree}")
    n_slices, ny = left.shape
    y = np.arange(ny, dtype=np.float64)
    traces = np.zeros((n_slices, 4))
    widths = np.zeros(n_slices)
    rows = np.zeros((n_slices, 2), dtype=np.int32)
    rms = np.zeros(n_slices)
    fitter = fitting.FittingWithOutlierRemoval(fitting.LinearLSQFitter(), sigma_clip, niter=3, sigma=nsigma)
    for index in range(n_slices):
        lit = np.isfinite(level[index]) & (level[index] > _LIT_FRACTION * np.nanmedian(level[index]))
        used = lit & np.isfinite(left[index]) & np.isfinite(right[index])
        if used.sum() < 3 * (degree + 1):
            raise SliceGeometryError(f"{name}: slice {index} measured in only {used.sum()} rows")
        lit_rows = np.flatnonzero(lit)
        rows[index] = lit_rows[0], lit_rows[-1] + 1
        # Centred and scaled y keeps the least-squares problem well conditioned at 4096 rows.
        centre, half = y[used].mean(), max(np.ptp(y[used]) / 2.0, 1.0)
        t = (y[used] - centre) / half
        coefficients = []
        for edge in (left[index, used], right[index, used]):
            fitted, clipped = fitter(models.Polynomial1D(degree), t, edge)
            coefficients.append(fitted.parameters)
            if len(coefficients) == 1:
                rms[index] = np.sqrt(np.mean((edge - fitted(t))[~clipped] ** 2))
        in_y = [
            np.polynomial.Polynomial(c)(np.polynomial.Polynomial([-centre / half, 1.0 / half])).coef
            for c in coefficients
        ]
        traces[index, : in_y[0].size] = in_y[0]
        ys = y[rows[index, 0] : rows[index, 1]]
        widths[index] = np.mean(
            np.polynomial.polynomial.polyval(ys, in_y[1]) - np.polynomial.polynomial.polyval(ys, in_y[0])
        )
    return traces, widths, rows, rms
