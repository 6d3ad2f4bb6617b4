"""From the truth cube to the detector: the slicer's spectra as a rate image (`dispersed_rate`).

For each slice (a loop over slices; everything inside is vectorised):

1. Each spaxel's spectrum is convolved with the Gaussian line-spread function of FWHM
   ``lambda / R`` on the truth cube's grid; each bin's flux is spread with weights that sum to one,
   so no flux is lost inside the grid.
2. The convolved spectrum, as a density constant within each bin, is integrated between the
   wavelengths of the pixel edges ``lambda(k + 0.5, y -+ 0.5)`` of spaxel ``k`` (the slice's
   wavelength solution at the spaxel's centre): the rows of a spaxel receive exactly its flux
   between the bank's first and last edge.
3. Along x, spaxel ``k`` covers ``[x_left(y) + k p, x_left(y) + (k + 1) p]`` (p = spaxel pixels) at
   the row's centre; each column receives the part of every spaxel it overlaps, so the columns of
   a row receive exactly the row's flux.
4. Times the slice's throughput. The pixel flat and the dark current are the detector's
   (`~liger_iris_pipeline.simulate.exposure.illuminated_rate`).

The sum of a slice's pixels is therefore its cube flux (between the bank's wavelength limits)
times its throughput, to float precision.
"""

import math

import numpy as np
from numpy.polynomial import polynomial as P

from .layout import wavelength_at

__all__ = ["convolve_lsf", "dispersed_rate"]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))
_LSF_HALF_WIDTH = 6.0
"""The line-spread function's kernel is cut at this many sigma."""


def convolve_lsf(spectra, grid, resolving_power):
    """Convolve spectra with a Gaussian line-spread function of FWHM ``lambda / R``.

    Parameters
    ----------
    spectra : numpy.ndarray
        ``(nwave, n)`` flux per bin.
    grid : WavelengthGrid
        Their wavelength bins.
    resolving_power : float
        R.

    Returns
    -------
    numpy.ndarray
        float64 ``(nwave, n)``: flux per bin; each input bin's flux is distributed with weights
        summing to one (flux leaving the grid's ends is lost).
    """
    sigma = grid.centres / resolving_power / _FWHM_PER_SIGMA / grid.step  # bins
    half = int(math.ceil(_LSF_HALF_WIDTH * sigma.max()))
    offsets = np.arange(-half, half + 1)
    weights = np.exp(-0.5 * (offsets[None, :] / sigma[:, None]) ** 2)
    weights /= weights.sum(axis=1, keepdims=True)
    spectra = np.asarray(spectra, dtype=np.float64)
    result = np.zeros_like(spectra)
    size = spectra.shape[0]
    for column, offset in enumerate(offsets):
        low, high = max(0, -offset), min(size, size - offset)
        result[low + offset : high + offset] += weights[low:high, column, None] * spectra[low:high]
    return result


def dispersed_rate(cube, grid, layout, filter_name):
    """Return the detector rate image of a truth cube, before the pixel flat.

    Parameters
    ----------
    cube : numpy.ndarray
        ``(nwave, n_slices, n_spaxels)`` DN/s per spaxel per bin (`scene.truth_cube`).
    grid : WavelengthGrid
        The cube's wavelength bins.
    layout : SlicerLayout
        The slicer.
    filter_name : str
        Filter (wavelength solution and resolving power).

    Returns
    -------
    numpy.ndarray
        float32 ``layout.detector_shape`` DN/s; zero in the gaps and margins.
    """
    rate = np.zeros(layout.detector_shape, dtype=np.float32)
    if not np.any(cube):
        return rate
    traces = layout.trace_coefficients()
    solutions = layout.wavelength_coefficients(filter_name)
    throughputs = layout.slice_throughputs()
    resolving_power = layout.resolving_power(filter_name)
    for index in range(layout.n_slices):
        convolved = convolve_lsf(cube[:, index, :], grid, resolving_power)
        per_row = _integrate_rows(convolved, grid, layout, index, solutions[index]) * throughputs[index]
        rows, columns, pixels = _spread_columns(per_row, layout, index, traces[index])
        rate[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1] += pixels.astype(np.float32)
    return rate


def _integrate_rows(convolved, grid, layout, index, solution):
    """Flux of each spaxel in each row of its slice: ``(nrows, n_spaxels)``."""
    start, stop = layout.slice_rows(index)
    s_centre = np.arange(layout.n_spaxels) + 0.5
    y_edges = np.arange(start, stop + 1) - 0.5
    wavelength = wavelength_at(solution, s_centre[None, :], y_edges[:, None])  # (nrows + 1, n_spaxels)
    cumulative = np.zeros((grid.size + 1, convolved.shape[1]))
    np.cumsum(convolved, axis=0, out=cumulative[1:])
    position = np.clip((wavelength - grid.edges[0]) / grid.step, 0.0, grid.size)
    below = np.minimum(np.floor(position).astype(np.int64), grid.size - 1)
    columns = np.arange(convolved.shape[1])[None, :]
    at_edges = cumulative[below, columns] + (position - below) * convolved[below, columns]
    return np.diff(at_edges, axis=0)


def _spread_columns(per_row, layout, index, trace):
    """Share each row's spaxel fluxes among the columns they overlap: rows, columns, pixels."""
    rows, columns, _ = layout.slice_footprint(index, trace)
    left = P.polyval(rows.astype(np.float64), trace)
    n_spaxels = layout.n_spaxels
    edges = np.append(columns, columns[-1] + 1) - 0.5
    position = np.clip((edges[None, :] - left[:, None]) / layout.spaxel_pixels, 0.0, n_spaxels)
    below = np.minimum(np.floor(position).astype(np.int64), n_spaxels - 1)
    cumulative = np.zeros((per_row.shape[0], n_spaxels + 1))
    np.cumsum(per_row, axis=1, out=cumulative[:, 1:])
    row_index = np.arange(per_row.shape[0])[:, None]
    at_edges = cumulative[row_index, below] + (position - below) * per_row[row_index, below]
    return rows, columns, np.diff(at_edges, axis=1)
