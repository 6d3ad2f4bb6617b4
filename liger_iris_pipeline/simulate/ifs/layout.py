"""Where the slicer puts the light: slices, traces, wavelength solutions, throughputs (`SlicerLayout`).

Coordinates (``docs/ifs_design.rst``): 0-based detector pixels, dispersion along +y (wavelength
increasing with y), space along x. Slice ``i`` lies in bank ``i // slices_per_bank`` (banks are
stacked in y) at position ``i % slices_per_bank`` from the left. Along a slice the position ``s`` is
counted in spaxels from the slice's left edge: spaxel ``k`` covers ``k <= s < k + 1`` and its
centre is ``s = k + 0.5``; on the detector ``x = x_left(y) + s * spaxel_pixels``.

- Trace: ``x_left(y) = sum_k T[i, k] y**k`` (`SlicerLayout.trace_coefficients`), tilted and curved.
- Wavelength solution: ``lambda(s, y) = sum_ij W[i, a, b] s**a y**b`` in vacuum microns
  (`SlicerLayout.wavelength_coefficients`, `numpy.polynomial.polynomial.polyval2d`); the iso-wavelength
  lines are tilted and curved across the slice (a "smile") and each slice has its own zero point.
- Line-spread function: a Gaussian of FWHM ``lambda / R`` (`SlicerLayout.resolving_power`).
- Throughput per slice (`SlicerLayout.slice_throughputs`).

The sky: slice ``i`` is row ``i`` of the truth cube's spatial grid and spaxel ``k`` its column
``k``, square spaxels of ``spaxel_scale`` arcsec.
"""

import math
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P

from ..filters import FILTERS

__all__ = ["SlicerLayout", "wavelength_at"]

_NARROW_FRACTION = 0.1
"""Filters narrower than this fraction of their centre wavelength get the narrow-band resolving power."""


@dataclass(frozen=True)
class SlicerLayout:
    """Geometry and optics of the IRIS slicer IFS on its detector.

    Values used (IRIS design papers, Larkin et al. 2016, 2020; ``docs/ifs_design.rst``): 88 slices of
    45 spaxels on a 4096 x 4096 detector in two banks, R ~ 4000 with broad filters and ~8000 with
    narrow ones. Trace shapes, smile, dispersion curvature and throughput scatter are simulator
    choices of a realistic size, not published values.

    Attributes
    ----------
    detector_shape : tuple of int
        ``(ny, nx)`` of the IFS detector.
    n_slices : int
        Slices (rows of the spaxel grid on the sky).
    n_spaxels : int
        Spaxels along each slice.
    spaxel_pixels : int
        Detector columns per spaxel.
    gap : int
        Empty columns between neighbouring slices (at their nominal position).
    n_banks : int
        Banks of slices stacked in y; each bank has ``n_slices / n_banks`` slices side by side.
    margin : int
        Rows and columns kept dark at the detector's edges and between banks (covers the reference pixels).
    spaxel_scale : float
        Arcsec per spaxel (0.025 or 0.05 for the slicer).
    resolution : float or None
        Resolving power R; None: 4000 for broad filters, 8000 for narrow ones.
    coverage : float
        Fraction of a bank's rows the filter's passband spans.
    dispersion_curvature : float
        Relative change of the dispersion from the bottom to the top of a bank.
    trace_tilt : float
        x shift (pixels) of a trace between the bank's centre row and its top row, at the middle slice.
    trace_curvature : float
        x shift (pixels) of a trace at the bank's bottom and top rows from its straight tilted line.
    smile_tilt, smile_curvature : float
        y shift (pixels) of an iso-wavelength line at a slice's right edge (tilt) and at both edges
        (curvature) relative to its centre.
    slice_offset : float
        y shift (pixels) of the wavelength zero point between the first and last slice of a bank.
    throughput_range : tuple of float
        Slice throughputs are drawn uniformly in this range.
    seed : int
        Seed of the slice throughputs.
    """

    detector_shape: tuple = (4096, 4096)
    n_slices: int = 88
    n_spaxels: int = 45
    spaxel_pixels: int = 2
    gap: int = 2
    n_banks: int = 2
    margin: int = 8
    spaxel_scale: float = 0.05
    resolution: float | None = None
    coverage: float = 0.9
    dispersion_curvature: float = 0.05
    trace_tilt: float = 1.5
    trace_curvature: float = 0.8
    smile_tilt: float = 0.6
    smile_curvature: float = 0.4
    slice_offset: float = 1.0
    throughput_range: tuple = (0.9, 1.0)
    seed: int = 0

    def __post_init__(self):
        if self.n_slices % self.n_banks:
            raise ValueError(f"{self.n_slices} slices do not split into {self.n_banks} banks")
        ny, nx = self.detector_shape
        width = self.slices_per_bank * self.slice_width + (self.slices_per_bank - 1) * self.gap
        room = nx - 2 * self.margin - 2 * math.ceil(abs(self.trace_tilt) + abs(self.trace_curvature) + 1)
        if width > room:
            raise ValueError(f"{self.slices_per_bank} slices of {self.slice_width} px do not fit in {nx} columns")
        if self.bank_rows < 16:
            raise ValueError(f"banks of {self.bank_rows} rows are too short")

    @classmethod
    def small(cls, **changes):
        """Return a test layout: 6 slices of 8 spaxels (3 px each) on a 512 x 256 detector, one bank."""
        values = {"detector_shape": (512, 256), "n_slices": 6, "n_spaxels": 8, "spaxel_pixels": 3, "gap": 4}
        values.update(n_banks=1, margin=6, trace_tilt=1.0, trace_curvature=0.5, smile_tilt=0.4, smile_curvature=0.3)
        return cls(**{**values, **changes})

    @property
    def slices_per_bank(self):
        """Slices side by side in one bank."""
        return self.n_slices // self.n_banks

    @property
    def slice_width(self):
        """Columns covered by one slice."""
        return self.n_spaxels * self.spaxel_pixels

    @property
    def bank_rows(self):
        """Rows of one bank (the detector's rows minus the margins, split between the banks)."""
        return (self.detector_shape[0] - (self.n_banks + 1) * self.margin) // self.n_banks

    def bank_start(self, bank):
        """First row of a bank."""
        return self.margin + bank * (self.bank_rows + self.margin)

    def slice_rows(self, index):
        """``(first, stop)`` rows of a slice's spectrum (its bank)."""
        start = self.bank_start(index // self.slices_per_bank)
        return start, start + self.bank_rows

    def _normalised(self, index):
        """Bank centre row, half height, and the slice's position in its bank in [-1, 1]."""
        start, stop = self.slice_rows(index)
        position = index % self.slices_per_bank
        half_bank = (self.slices_per_bank - 1) / 2.0
        u = (position - half_bank) / half_bank if half_bank else 0.0
        return (start + stop - 1) / 2.0, (stop - start) / 2.0, u

    def resolving_power(self, filter_name):
        """Return R of a filter: `resolution` if set, else 4000 (broad) or 8000 (narrow)."""
        if self.resolution is not None:
            return float(self.resolution)
        centre, width = FILTERS[filter_name]
        return 4000.0 if width / centre > _NARROW_FRACTION else 8000.0

    def trace_coefficients(self):
        """Return the slices' left-edge traces.

        Returns
        -------
        numpy.ndarray
            float64 (n_slices, 3): ``x_left(y) = T[i, 0] + T[i, 1] y + T[i, 2] y**2`` (0-based pixels).
        """
        coefficients = np.zeros((self.n_slices, 3))
        pitch = self.slice_width + self.gap
        bank_width = self.slices_per_bank * pitch - self.gap
        first = (self.detector_shape[1] - bank_width) / 2.0 - 0.5
        for index in range(self.n_slices):
            centre, half, u = self._normalised(index)
            # Tilt and curvature change smoothly across a bank (larger at its edges), as in a real slicer.
            in_t = [
                first + (index % self.slices_per_bank) * pitch,
                self.trace_tilt * (1.0 + 0.3 * u),
                self.trace_curvature * (0.5 + 0.5 * u * u),
            ]
            coefficients[index] = _in_rows(in_t, centre, half)
        return coefficients

    def wavelength_coefficients(self, filter_name):
        """Return the slices' wavelength solutions for a filter.

        The filter's passband spans `coverage` of each bank's rows, centred on the bank.

        Parameters
        ----------
        filter_name : str
            One of `~liger_iris_pipeline.simulate.filters.FILTERS`.

        Returns
        -------
        numpy.ndarray
            float64 (n_slices, 3, 3): ``lambda(s, y) = polyval2d(s, y, W[i])`` (microns, vacuum).
        """
        centre, width = FILTERS[filter_name]
        coefficients = np.zeros((self.n_slices, 3, 3))
        for index in range(self.n_slices):
            row_centre, half, u = self._normalised(index)
            scale = width / 2.0 / self.coverage  # microns per unit of t = (y - centre) / half
            per_pixel = scale / half
            # lambda = centre + scale (t + c t^2) + per_pixel (zero point + tilt sigma + curvature sigma^2),
            # sigma = (s - n/2) / (n/2) across the slice.
            in_t = np.zeros((3, 3))
            in_t[0] = [centre + per_pixel * self.slice_offset * u / 2.0, scale, scale * self.dispersion_curvature / 2]
            in_t[1, 0] = per_pixel * self.smile_tilt
            in_t[2, 0] = per_pixel * self.smile_curvature
            half_slice = self.n_spaxels / 2.0
            in_s = np.stack([_in_rows(row, half_slice, half_slice) for row in in_t.T], axis=1)
            coefficients[index] = np.stack([_in_rows(row, row_centre, half) for row in in_s])
        return coefficients

    def dispersion(self, filter_name):
        """Return the dispersion (microns per pixel) at the centre of the first slice's bank."""
        coefficients = self.wavelength_coefficients(filter_name)[0]
        return float(coefficients[0, 1] + 2 * coefficients[0, 2] * np.mean(self.slice_rows(0)))

    def slice_throughputs(self):
        """Return the slices' throughputs (float64, n_slices), drawn from `seed`."""
        low, high = self.throughput_range
        return np.random.default_rng([int(self.seed), 104729]).uniform(low, high, self.n_slices)

    def wavelength_range(self, filter_name):
        """Return the ``(lowest, highest)`` wavelength reaching any slice's rows (microns)."""
        coefficients = self.wavelength_coefficients(filter_name)
        low, high = math.inf, -math.inf
        s = np.array([0.0, self.n_spaxels / 2.0, self.n_spaxels])
        for index in range(self.n_slices):
            start, stop = self.slice_rows(index)
            edges = wavelength_at(coefficients[index], s[None, :], np.array([[start - 0.5], [stop - 0.5]]))
            low, high = min(low, edges.min()), max(high, edges.max())
        return low, high

    def pixel_maps(self, filter_name):
        """Return what each detector pixel sees.

        Parameters
        ----------
        filter_name : str
            Filter of the exposure.

        Returns
        -------
        slice_map : numpy.ndarray
            int16 (ny, nx): slice whose light the pixel centre receives, -1 in gaps and margins.
        along : numpy.ndarray
            float32 (ny, nx): position ``s`` along the slice at the pixel centre (spaxels), NaN outside.
        wavelength : numpy.ndarray
            float32 (ny, nx): ``lambda(s, y)`` at the pixel centre (microns), NaN outside.
        """
        shape = self.detector_shape
        slice_map = np.full(shape, -1, dtype=np.int16)
        along = np.full(shape, np.nan, dtype=np.float32)
        wavelength = np.full(shape, np.nan, dtype=np.float32)
        traces = self.trace_coefficients()
        solutions = self.wavelength_coefficients(filter_name)
        for index in range(self.n_slices):
            rows, columns, s = self.slice_footprint(index, traces[index])
            inside = (s >= 0.0) & (s < self.n_spaxels)
            y = np.broadcast_to(rows[:, None], s.shape)[inside]
            x = np.broadcast_to(columns[None, :], s.shape)[inside]
            slice_map[y, x] = index
            along[y, x] = s[inside]
            wavelength[y, x] = wavelength_at(solutions[index], s[inside], y)
        return slice_map, along, wavelength

    def slice_footprint(self, index, trace):
        """Return the rows and columns around a slice and ``s`` at their pixel centres.

        Parameters
        ----------
        index : int
            Slice.
        trace : numpy.ndarray
            Its row of `trace_coefficients`.

        Returns
        -------
        rows, columns : numpy.ndarray
            int64 detector rows (the bank's) and columns (the slice plus a pixel on either side).
        s : numpy.ndarray
            float64 (rows, columns): position along the slice (spaxels) at the pixel centres.
        """
        start, stop = self.slice_rows(index)
        rows = np.arange(start, stop)
        left = P.polyval(rows.astype(np.float64), trace)
        first = max(int(math.floor(left.min())) - 1, 0)
        last = min(int(math.ceil(left.max() + self.slice_width)) + 2, self.detector_shape[1])
        columns = np.arange(first, last)
        s = (columns[None, :] - left[:, None]) / self.spaxel_pixels
        return rows, columns, s


def wavelength_at(solution, s, y):
    """Evaluate a slice's wavelength solution.

    Parameters
    ----------
    solution : numpy.ndarray
        ``(3, 3)`` coefficients (a row of `SlicerLayout.wavelength_coefficients`).
    s, y : array_like
        Position along the slice (spaxels) and detector row (0-based); broadcast together.

    Returns
    -------
    numpy.ndarray
        float64 wavelengths (microns, vacuum).
    """
    s, y = np.broadcast_arrays(np.asarray(s, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return P.polyval2d(s, y, solution)


def _in_rows(coefficients_in_t, centre, half):
    """Re-express a polynomial in ``t = (y - centre) / half`` as a polynomial in y (3 coefficients)."""
    t = np.polynomial.Polynomial([-centre / half, 1.0 / half])
    result = np.polynomial.Polynomial(coefficients_in_t)(t).coef
    return np.pad(result, (0, 3 - result.size))
