"""The slicer's wavelength solution from an arc frame (`slice_solution`, `wavelength_solutions`).

Conventions (``docs/ifs_design.rst``): slice ``i`` covers rows ``YSTART <= y < YSTOP``; along it
``s`` counts spaxels from its left edge, ``x = x_left(y) + s * spaxel_pixels`` with
``x_left(y) = polyval(y, TRACE)``; the light of spaxel ``k`` follows the solution at its centre
``s = k + 0.5``. The solution is ``lambda(s, y) = polyval2d(s, y, COEFFS)``, COEFFS ``(3, 3)``, vacuum
microns.

For each slice:

1. Each spaxel's arc spectrum along y: the columns it covers, weighted by the part of each pixel
   inside the spaxel (`spaxel_spectra`).
2. On the middle spaxel, peaks (`scipy.signal.find_peaks`) are centroided and identified against
   the line list without knowing the band (`identify_lines`): pairs of peaks and pairs of list lines
   vote for a linear dispersion and zero point (a Hough transform, as in pattern-matching arc
   identifications, e.g. PypeIt's); the best candidates are grown into a quadratic ``lambda(y)`` by
   matching and refitting (two rules, `_grow`), and the one matching most peaks, then with the
   smallest residuals, wins. The line list given is the band's: the whole list is ambiguous.
3. Every identified line without another list line near its fit window (a blend) is centroided in
   every spaxel near its predicted row: a least-squares fit
   (`scipy.optimize.curve_fit`) of a Gaussian integrated over each pixel plus a constant, which
   stays unbiased when the line-spread function is barely sampled (FWHM ~1.5 pixels).
4. ``lambda(s, y)`` is fitted by weighted linear least squares on the 3 x 3 polynomial basis
   (`numpy.polynomial.polynomial.polyvander2d`), rejecting centroids off the fit by more than
   ``clip_sigma`` times the robust scatter (`astropy.stats.sigma_clip`).
"""

import math
import warnings

import numpy as np
from astropy.stats import mad_std, sigma_clip
from numpy.polynomial import Polynomial
from numpy.polynomial import polynomial as P
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.signal import find_peaks
from scipy.special import erf

__all__ = [
    "SPEED_OF_LIGHT_KMS",
    "WavecalError",
    "fit_centroid",
    "fit_slice_solution",
    "identify_lines",
    "slice_solution",
    "spaxel_spectra",
    "wavelength_solutions",
]

SPEED_OF_LIGHT_KMS = 299792.458
"""Speed of light (km/s, exact by definition of the metre)."""

RELATIVE_DISPERSION = (1.0e-5, 1.0e-3)
"""Range of ``(d lambda / d y) / lambda`` searched for (per pixel): R = 4000-8000 sampled by 1 to
20 pixels per resolution element, wide enough for any IRIS or Liger filter."""

_ROOT_TWO = math.sqrt(2.0)


class WavecalError(ValueError):
    """An arc frame or slice geometry from which no wavelength solution can be made."""


def spaxel_spectra(data, error, good, ystart, ystop, trace, n_spaxels, spaxel_pixels):
    """Extract each spaxel's spectrum of one slice along y.

    Parameters
    ----------
    data, error : numpy.ndarray
        ``(ny, nx)`` frame and its 1-sigma error.
    good : numpy.ndarray
        ``(ny, nx)`` bool, pixels to use.
    ystart, ystop : int
        The slice's rows.
    trace : array_like
        ``x_left(y)`` polynomial coefficients (numpy order).
    n_spaxels : int
        Spaxels along the slice.
    spaxel_pixels : float
        Columns per spaxel.

    Returns
    -------
    rows : numpy.ndarray
        int64 ``(nrows,)``.
    flux, flux_error : numpy.ndarray
        float64 ``(nrows, n_spaxels)``: each row's flux in the spaxel (the pixels' sum weighted by
        the part of each inside it, scaled up for bad pixels) and its error; NaN where more than
        half of the weight is in bad pixels.
    """
    rows = np.arange(ystart, ystop)
    left = P.polyval(rows.astype(np.float64), np.asarray(trace, dtype=np.float64))
    first = max(int(math.floor(left.min())) - 1, 0)
    last = min(int(math.ceil(left.max() + n_spaxels * spaxel_pixels)) + 2, data.shape[1])
    columns = np.arange(first, last)
    block = data[ystart:ystop, first:last].astype(np.float64)
    variance = error[ystart:ystop, first:last].astype(np.float64) ** 2
    usable = good[ystart:ystop, first:last] & np.isfinite(block) & np.isfinite(variance)
    block = np.where(usable, block, 0.0)
    variance = np.where(usable, variance, 0.0)
    flux = np.full((rows.size, n_spaxels), np.nan)
    flux_error = np.full((rows.size, n_spaxels), np.nan)
    for k in range(n_spaxels):
        low = left[:, None] + k * spaxel_pixels
        weight = np.clip(np.minimum(columns + 0.5, low + spaxel_pixels) - np.maximum(columns - 0.5, low), 0.0, 1.0)
        total = weight.sum(axis=1)
        used = (weight * usable).sum(axis=1)
        scale = np.divide(total, used, out=np.zeros_like(total), where=used > 0)
        keep = used > 0.5 * total
        flux[keep, k] = ((weight * block).sum(axis=1) * scale)[keep]
        flux_error[keep, k] = (np.sqrt((weight**2 * variance).sum(axis=1)) * scale)[keep]
    return rows, flux, flux_error


def _integrated_gaussian(y, amplitude, centre, sigma, background):
    """A Gaussian of total flux ``amplitude`` integrated over pixels centred on ``y``, plus a constant."""
    upper = erf((y + 0.5 - centre) / (_ROOT_TWO * sigma))
    lower = erf((y - 0.5 - centre) / (_ROOT_TWO * sigma))
    return 0.5 * amplitude * (upper - lower) + background


def _integrated_gaussian_jacobian(y, amplitude, centre, sigma, background):
    """Derivatives of `_integrated_gaussian` by its four parameters: ``(len(y), 4)``."""
    upper, lower = (y + 0.5 - centre) / sigma, (y - 0.5 - centre) / sigma
    density_upper, density_lower = np.exp(-0.5 * upper**2), np.exp(-0.5 * lower**2)
    norm = amplitude / (math.sqrt(2.0 * math.pi) * sigma)
    return np.stack(
        [
            0.5 * (erf(upper / _ROOT_TWO) - erf(lower / _ROOT_TWO)),
            norm * (density_lower - density_upper),
            norm * (lower * density_lower - upper * density_upper),
            np.ones_like(y),
        ],
        axis=1,
    )


def fit_centroid(rows, flux, flux_error, guess, half_window, sigma_guess=1.0):
    """Fit a line's centroid near a guessed row.

    Parameters
    ----------
    rows : numpy.ndarray
        Rows of the spectrum.
    flux, flux_error : numpy.ndarray
        The spectrum and its error (NaN: not measured).
    guess : float
        Row of the line.
    half_window : int
        Rows either side of the guess fitted.
    sigma_guess : float
        First guess of the line's Gaussian sigma (pixels).

    Returns
    -------
    tuple of float or None
        ``(centre, centre_error, sigma, amplitude)``, or None when the window leaves the spectrum,
        holds unmeasured rows, or the fit fails or lands outside the window.
    """
    at = int(round(guess)) - rows[0]
    low, high = at - half_window, at + half_window + 1
    if low < 0 or high > rows.size:
        return None
    y, f, e = rows[low:high].astype(np.float64), flux[low:high], flux_error[low:high]
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(e)) and np.all(e > 0)):
        return None
    background = float(np.min(f))
    start = [max(float(f.sum() - background * f.size), 1e-12), float(guess), sigma_guess, background]
    try:
        with warnings.catch_warnings():
            # A fit that cannot estimate its covariance, or overflows on a flat window, is no centroid.
            warnings.simplefilter("error", OptimizeWarning)
            warnings.simplefilter("error", RuntimeWarning)
            values, covariance = curve_fit(
                _integrated_gaussian, y, f, p0=start, sigma=e, absolute_sigma=True, jac=_integrated_gaussian_jacobian
            )
    except (RuntimeError, ValueError, OptimizeWarning, RuntimeWarning):
        return None
    centre_error = math.sqrt(covariance[1, 1]) if np.isfinite(covariance[1, 1]) else math.inf
    amplitude, centre, sigma = values[0], values[1], abs(values[2])
    inside = y[0] + 1 < centre < y[-1] - 1 and 0.2 < sigma < half_window
    if not (inside and amplitude > 0 and np.isfinite(centre_error)):
        return None
    return float(centre), centre_error, float(sigma), float(amplitude)


def _peaks(rows, flux, flux_error, detection_sigma, max_peaks):
    """Centroided peaks of a spectrum, brightest first: centres and their Gaussian sigmas."""
    if not np.any(np.isfinite(flux_error)):
        return np.array([]), np.array([])  # a spaxel with no usable pixel
    noise = float(np.nanmedian(flux_error))
    filled = np.nan_to_num(flux, nan=float(np.nanmedian(flux)))
    found, properties = find_peaks(filled, prominence=detection_sigma * noise)
    found = found[np.argsort(properties["prominences"])[::-1]]
    centres, sigmas = [], []
    for index in found:
        fitted = fit_centroid(rows, flux, flux_error, rows[index], half_window=4)
        if fitted is not None and all(abs(fitted[0] - c) > 1.0 for c in centres):
            centres.append(fitted[0])
            sigmas.append(fitted[2])
        if len(centres) == max_peaks:
            break
    return np.array(centres), np.array(sigmas)


def _match(predicted, lines, tolerance):
    """Index of the nearest line to each predicted wavelength, -1 where none lies within tolerance.

    A line nearest to several peaks goes to the closest of them.
    """
    nearest = np.clip(np.searchsorted(lines, predicted), 1, lines.size - 1)
    left_closer = np.abs(predicted - lines[nearest - 1]) < np.abs(predicted - lines[nearest])
    nearest = np.where(left_closer, nearest - 1, nearest)
    distance = np.abs(lines[nearest] - predicted)
    matched = np.where(distance <= tolerance, nearest, -1)
    for line in np.unique(matched[matched >= 0]):
        claimants = np.flatnonzero(matched == line)
        matched[claimants[claimants != claimants[np.argmin(distance[claimants])]]] = -1
    return matched


def _fit_matches(peaks, lines, found, centre, span):
    """``lambda(y - centre)`` through the matched peaks; quadratic once four lines over a third of the span hold it."""
    used = found >= 0
    degree = 2 if used.sum() >= 4 and np.ptp(peaks[used]) > span / 3.0 else 1
    return Polynomial.fit(peaks[used] - centre, lines[found[used]], degree).convert()


def _grow_everywhere(peaks, lines, solution, centre, tolerance, max_iterations=12):
    """Grow a first guess by matching every peak within three tolerances and refitting until the matches hold."""
    span = np.ptp(peaks)
    matched = np.full(peaks.size, -1)
    for _ in range(max_iterations):
        found = _match(solution(peaks - centre), lines, 3.0 * tolerance * abs(solution.deriv()(0.0)))
        if np.sum(found >= 0) < 2:
            return solution
        solution = _fit_matches(peaks, lines, found, centre, span)
        if np.array_equal(found, matched):
            break
        matched = found
    return solution


def _grow_outward(peaks, lines, solution, centre, tolerance, max_iterations=20):
    """Grow a first guess by extending its matched stretch by half its length at a time (two tolerances)."""
    span = np.ptp(peaks)
    found = _match(solution(peaks - centre), lines, tolerance * abs(solution.deriv()(0.0)))
    if np.sum(found >= 0) < 2:
        return solution
    low, high = peaks[found >= 0].min(), peaks[found >= 0].max()
    for _ in range(max_iterations):
        margin = max(0.5 * (high - low), 4.0 * tolerance)
        near = (peaks >= low - margin) & (peaks <= high + margin)
        width = 2.0 * tolerance * abs(solution.deriv()(0.0))
        found = np.where(near, _match(solution(peaks - centre), lines, width), -1)
        if np.sum(found >= 0) < 2:
            return solution
        solution = _fit_matches(peaks, lines, found, centre, span)
        if low - margin <= peaks.min() and high + margin >= peaks.max():
            break
        low, high = min(low, peaks[found >= 0].min()), max(high, peaks[found >= 0].max())
    return solution


def _grow(peaks, lines, dispersion, zero, centre, tolerance, grow):
    """Grow a linear first guess into ``lambda(y)`` with one of the growth rules, then keep the lines on it.

    A curved dispersion puts distant lines many pixels off the guess's straight line: either rule
    refits as it goes (`_grow_everywhere` converges fast where lines are sparse, `_grow_outward`
    does not let a dense list offer a wrong line to a peak predicted far off); a last match within
    the tolerance keeps only the lines on the fit.
    """
    solution = grow(peaks, lines, Polynomial([zero, dispersion]), centre, tolerance)
    found = np.full(peaks.size, -1)
    for _ in range(2):
        found = _match(solution(peaks - centre), lines, tolerance * abs(solution.deriv()(0.0)))
        if np.sum(found >= 0) < 2:
            break
        solution = _fit_matches(peaks, lines, found, centre, np.ptp(peaks))
    return found, solution


def identify_lines(peaks, lines, centre, tolerance=1.0, candidates=30):
    """Identify arc peaks against a line list, without a first guess of the band.

    Parameters
    ----------
    peaks : numpy.ndarray
        Centroids (rows) of the peaks of one spectrum.
    lines : numpy.ndarray
        Sorted vacuum wavelengths of the line list (microns).
    centre : float
        Row about which ``lambda(y)`` is expanded (the slice's middle).
    tolerance : float
        Largest distance (pixels) between a peak and its line after the fit.
    candidates : int
        Vote bins grown into solutions.

    Returns
    -------
    matched : numpy.ndarray
        int64, per peak: index of its line in ``lines``, -1 if unidentified.
    solution : numpy.polynomial.Polynomial
        ``lambda(y - centre)`` (microns) of the best identification.
    """
    best = (np.full(peaks.size, -1), Polynomial([0.0]), -1, math.inf)
    if peaks.size < 2 or lines.size < 2:
        return best[:2]
    i, j = np.triu_indices(peaks.size, 1)
    m, n = np.triu_indices(lines.size, 1)
    dy = (peaks[j] - peaks[i])[:, None]
    dispersion = (lines[n] - lines[m])[None, :] / dy
    relative = np.abs(dispersion) / lines[m][None, :]
    pair, line_pair = np.nonzero((relative >= RELATIVE_DISPERSION[0]) & (relative <= RELATIVE_DISPERSION[1]))
    if pair.size == 0:
        return best[:2]
    d = dispersion[pair, line_pair]
    zero = lines[m[line_pair]] + d * (centre - peaks[i[pair]])
    # Vote bins: 3 % in dispersion, 4 tolerances in zero point (at the bin's dispersion); a curved
    # dispersion spreads a solution's votes over neighbouring bins, which the growth step then joins.
    log_bin = np.round(np.log(np.abs(d)) / 0.03)
    zero_bin = np.round(zero / (4.0 * tolerance * np.exp(log_bin * 0.03)))
    # One integer per bin (a row-wise unique sorts ~10x slower): zero_bin < 1e7 for any dispersion searched.
    keys = ((log_bin.astype(np.int64) + 1000) * 2 + (d > 0)) * 10_000_000 + zero_bin.astype(np.int64)
    _, first, votes = np.unique(keys, return_index=True, return_counts=True)
    for index in first[np.argsort(votes)[::-1][:candidates]]:
        for grow in (_grow_everywhere, _grow_outward):
            matched, solution = _grow(peaks, lines, d[index], zero[index], centre, tolerance, grow)
            used = matched >= 0
            if used.sum() < 2:
                continue
            residual = float(np.sqrt(np.mean((solution(peaks[used] - centre) - lines[matched[used]]) ** 2)))
            residual /= abs(solution.deriv()(0.0))
            if (used.sum(), -residual) > (best[2], -best[3]):
                best = (matched, solution, int(used.sum()), residual)
    return best[:2]


def _rows_of(solution, wavelengths, rows, centre):
    """Rows where a monotonic ``lambda(y - centre)`` reaches wavelengths (interpolated on the rows)."""
    values = solution(rows - centre)
    order = np.argsort(values)
    return np.interp(wavelengths, values[order], rows[order].astype(np.float64))


def fit_slice_solution(s, y, wavelength, y_error, clip_sigma=4.0, max_iterations=5):
    """Fit ``lambda(s, y) = polyval2d(s, y, COEFFS)`` (3 x 3) to line centroids, rejecting outliers.

    Parameters
    ----------
    s, y : numpy.ndarray
        Positions of the centroids: along the slice (spaxels) and row.
    wavelength : numpy.ndarray
        Their lines' vacuum wavelengths (microns).
    y_error : numpy.ndarray
        Centroid errors (pixels), the weights.
    clip_sigma : float
        Rejection threshold, in robust standard deviations of the residuals.
    max_iterations : int
        Fit-and-reject iterations at most.

    Returns
    -------
    coefficients : numpy.ndarray
        float64 ``(3, 3)``.
    used : numpy.ndarray
        bool, the centroids kept.
    residual_pixels : numpy.ndarray
        ``(lambda_fit(s, y) - wavelength) / (d lambda / d y)`` of every centroid (pixels).
    """
    basis = P.polyvander2d(s, y, [2, 2])
    scale = np.sqrt((basis**2).sum(axis=0))  # columns spread over ~16 decades: condition the solve
    used = np.ones(s.size, dtype=bool)
    coefficients = np.zeros((3, 3))
    residual_pixels = np.zeros(s.size)
    for _ in range(max_iterations):
        dispersion = np.abs(P.polyval2d(s, y, P.polyder(coefficients, axis=1))) if coefficients.any() else None
        sigma = y_error * (dispersion if dispersion is not None else 1.0)
        weights = 1.0 / sigma[used]
        solved, *_ = np.linalg.lstsq(basis[used] / scale * weights[:, None], wavelength[used] * weights, rcond=None)
        coefficients = (solved / scale).reshape(3, 3)
        dispersion = np.abs(P.polyval2d(s, y, P.polyder(coefficients, axis=1)))
        residual_pixels = (P.polyval2d(s, y, coefficients) - wavelength) / dispersion
        clipped = sigma_clip(residual_pixels / y_error, sigma=clip_sigma, stdfunc=mad_std, maxiters=1).mask
        keep = ~np.asarray(clipped, dtype=bool)
        if np.array_equal(keep, used):
            break
        used = keep
    return coefficients, used, residual_pixels


def slice_solution(
    data,
    error,
    good,
    geometry,
    lines,
    *,
    detection_sigma=10.0,
    max_peaks=25,
    tolerance=1.0,
    clip_sigma=4.0,
    min_lines=4,
    max_rms_pix=0.1,
    name="arc",
):
    """Return the wavelength solution of one slice.

    Parameters
    ----------
    data, error : numpy.ndarray
        ``(ny, nx)`` arc frame (DN/s) and its error.
    good : numpy.ndarray
        ``(ny, nx)`` bool, pixels to use.
    geometry : dict
        The slice's ``slice``, ``ystart``, ``ystop``, ``trace``, ``n_spaxels``, ``spaxel_pixels``.
    lines : numpy.ndarray
        Sorted vacuum wavelengths of the arc line list (microns).
    detection_sigma : float
        Prominence of a peak, in units of the spectrum's median error.
    max_peaks : int
        Brightest peaks of the middle spaxel used for the identification.
    tolerance : float
        Largest distance (pixels) of an identified peak from its line.
    clip_sigma : float
        Outlier rejection of the 2-D fit.
    min_lines : int
        Fewest distinct lines for a solution.
    max_rms_pix : float
        Largest rms of the fit (pixels) taken as a right identification: a wrong one that matches
        a few lines by chance leaves residuals of a tenth of a pixel or more.
    name : str
        The arc frame, for messages.

    Returns
    -------
    dict
        ``slice``, ``coeffs`` ``(3, 3)``, ``nlines``, ``rms_pix``, ``rms_kms``.

    Raises
    ------
    WavecalError
        Fewer than ``min_lines`` lines identified or fitted, or a fit worse than ``max_rms_pix``.
    """
    index = geometry["slice"]
    n_spaxels = geometry["n_spaxels"]
    rows, flux, flux_error = spaxel_spectra(
        data, error, good, *(geometry[key] for key in ("ystart", "ystop", "trace", "n_spaxels", "spaxel_pixels"))
    )
    centre = 0.5 * (rows[0] + rows[-1])
    middle = n_spaxels // 2
    peaks, sigmas = _peaks(rows, flux[:, middle], flux_error[:, middle], detection_sigma, max_peaks)
    matched, first_guess = identify_lines(peaks, lines, centre, tolerance=tolerance)
    identified = np.unique(matched[matched >= 0])
    if identified.size < min_lines:
        raise WavecalError(
            f"{name}: slice {index}: {identified.size} arc lines identified ({peaks.size} peaks found), "
            f"at least {min_lines} needed"
        )
    sigma = float(np.median(sigmas[matched >= 0]))
    half_window = max(3, int(math.ceil(4.0 * sigma)))
    # A line with another line of the list near its fit window (seen or not: a faint one still
    # pulls the centroid) would be a blend: left out.
    line_rows = _rows_of(first_guess, lines[identified], rows, centre)
    list_rows = _rows_of(first_guess, lines, rows, centre)
    crowded = np.sum(np.abs(line_rows[:, None] - list_rows[None, :]) < 2 * half_window, axis=1) > 1
    s_all, y_all, wave_all, error_all = [], [], [], []
    for k in range(n_spaxels):
        for m, guess in zip(identified[~crowded], line_rows[~crowded], strict=True):
            fitted = fit_centroid(rows, flux[:, k], flux_error[:, k], guess, half_window, sigma)
            if fitted is not None and abs(fitted[0] - guess) < 3.0:
                s_all.append(k + 0.5)
                y_all.append(fitted[0])
                wave_all.append(lines[m])
                error_all.append(max(fitted[1], 1e-4))
    s_all, y_all, wave_all, error_all = map(np.asarray, (s_all, y_all, wave_all, error_all))
    if np.unique(wave_all).size < min_lines:
        measured = np.unique(wave_all).size
        raise WavecalError(f"{name}: slice {index}: {measured} isolated lines measured, at least {min_lines} needed")
    coefficients, used, residual_pixels = fit_slice_solution(s_all, y_all, wave_all, error_all, clip_sigma=clip_sigma)
    nlines = int(np.unique(wave_all[used]).size)
    if nlines < min_lines:
        raise WavecalError(f"{name}: slice {index}: {nlines} arc lines kept by the fit, at least {min_lines} needed")
    fitted = P.polyval2d(s_all[used], y_all[used], coefficients)
    rms_kms = float(np.sqrt(np.mean(((fitted - wave_all[used]) / wave_all[used]) ** 2)) * SPEED_OF_LIGHT_KMS)
    rms_pix = float(np.sqrt(np.mean(residual_pixels[used] ** 2)))
    if rms_pix > max_rms_pix:
        raise WavecalError(
            f"{name}: slice {index}: the fit's rms is {rms_pix:.3f} pixels (at most {max_rms_pix} expected): "
            "the lines are probably misidentified; give the band (wavelength_range)"
        )
    return {"slice": index, "coeffs": coefficients, "nlines": nlines, "rms_pix": rms_pix, "rms_kms": rms_kms}


def wavelength_solutions(data, error, good, slices, n_spaxels, spaxel_pixels, lines, **options):
    """Return the wavelength solution of every slice (`slice_solution`).

    Parameters
    ----------
    data, error, good : numpy.ndarray
        The arc frame, its error and the pixels to use.
    slices : sequence of dict
        Per slice: ``slice``, ``ystart``, ``ystop``, ``trace``.
    n_spaxels : int
        Spaxels per slice.
    spaxel_pixels : float
        Columns per spaxel.
    lines : numpy.ndarray
        Sorted vacuum wavelengths of the arc line list (microns).
    **options
        `slice_solution`'s keyword arguments.

    Returns
    -------
    list of dict
        One per slice, in the order of ``slices``.
    """
    return [
        slice_solution(
            data, error, good, {**row, "n_spaxels": n_spaxels, "spaxel_pixels": spaxel_pixels}, lines, **options
        )
        for row in slices
    ]
