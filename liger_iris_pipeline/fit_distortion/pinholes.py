"""Field distortion from a pinhole-grid exposure, without stpipe.

A pinhole mask in the focal plane puts point sources on a square grid of known geometry: at
undistorted focal-plane pixels ``(cx + i p, cy + j p)`` with ``(cx, cy)`` the full-frame centre
and ``p`` the pitch (``docs/level3_design.rst``). The optics move them to measured detector
positions ``(x, y)``; the distortion is the polynomial that maps one onto the other.

1. `find_pinholes`: detect the pinholes (photutils ``DAOStarFinder``) and refine each centroid
   with a 2-D Gaussian fit (``photutils.centroids.centroid_2dg``); pinholes touching flagged or
   non-finite pixels are dropped.
2. `fit_distortion`: assign grid indices by rounding from the centre (the pitch estimated from
   the pinholes nearest the centre when not given: the distortion has no linear terms there),
   then fit by linear least squares, in the normalised coordinates ``s = (x - cx) / R``,
   ``t = (y - cy) / R`` of the distortion reference, the forward (detector -> focal plane) and
   inverse (focal plane -> detector) corrections ``sum c[i, j] s^i t^j`` of terms of degree 2 to
   ``degree`` (no constant or linear terms: the pointing and the plate scale hold at the centre).
   When the pitch is not given it is a free parameter of the forward fit. Outliers (mismatched
   pinholes, cosmic rays) are sigma-clipped, and the indices re-assigned with the fitted model.
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from .. import dqflags

__all__ = ["DistortionFit", "DistortionFitError", "find_pinholes", "fit_distortion", "polynomial_terms"]

log = logging.getLogger(__name__)

_UNUSABLE = dqflags.pixel["DO_NOT_USE"] | dqflags.pixel["SATURATED"]


class DistortionFitError(ValueError):
    """The pinholes found cannot determine the distortion."""


def polynomial_terms(degree):
    """Return the ``(i, j)`` exponents of the fitted terms ``s^i t^j``: ``2 <= i + j <= degree``.

    Parameters
    ----------
    degree : int
        Highest total degree (at least 2).

    Returns
    -------
    list of tuple of int
    """
    return [(i, total - i) for total in range(2, degree + 1) for i in range(total, -1, -1)]


def _design(s, t, terms):
    return np.column_stack([s**i * t**j for i, j in terms]) if terms else np.empty((len(s), 0))


def _matrix(coefficients, terms, degree):
    """Coefficient matrix ``c[i, j]`` of ``s^i t^j`` (the reference's COEFF_X/Y layout)."""
    matrix = np.zeros((degree + 1, degree + 1))
    for (i, j), value in zip(terms, coefficients, strict=True):
        matrix[i, j] = value
    return matrix


def evaluate(matrix, s, t):
    """Return ``sum c[i, j] s^i t^j`` of a coefficient matrix.

    Parameters
    ----------
    matrix : numpy.ndarray
        ``c[i, j]``.
    s, t : numpy.ndarray
        Normalised coordinates.

    Returns
    -------
    numpy.ndarray
    """
    return np.polynomial.polynomial.polyval2d(s, t, matrix)


def find_pinholes(data, dq=None, err=None, fwhm=4.0, threshold=20.0, box_size=None, name="frame"):
    """Return the centroids of the pinholes in a frame.

    Parameters
    ----------
    data : numpy.ndarray
        The frame (DN/s).
    dq : numpy.ndarray, optional
        Its DQ; pixels flagged DO_NOT_USE or SATURATED are left out of the centroid fits, and a
        pinhole with one in its core (3x3 pixels about the peak) is dropped.
    err : numpy.ndarray, optional
        Its ERR: the noise the threshold refers to is its median. Without it, the sigma-clipped
        standard deviation of the frame (too high where the pinholes' haloes cover the frame).
    fwhm : float
        FWHM of the pinhole images (pixels), for detection.
    threshold : float
        Detection threshold in units of the background's standard deviation.
    box_size : int, optional
        Side of the centroid box (odd; default about 2.5 FWHM).
    name : str
        The frame, for messages.

    Returns
    -------
    tuple of numpy.ndarray
        ``(x, y, flux)``: 0-based positions in the frame's own pixels, and DAOStarFinder's flux.
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.centroids import centroid_2dg, centroid_sources
    from photutils.detection import DAOStarFinder
    from photutils.utils.exceptions import NoDetectionsWarning

    data = np.asarray(data, dtype=np.float64)
    bad = ~np.isfinite(data)
    if dq is not None:
        bad |= (np.asarray(dq) & _UNUSABLE) != 0
    if bad.all():
        raise DistortionFitError(f"{name}: no usable pixel (all flagged or not finite)")
    _, median, std = sigma_clipped_stats(data[~bad], sigma=3.0)
    if err is not None:
        noise = np.asarray(err, dtype=np.float64)[~bad]
        noise = noise[np.isfinite(noise) & (noise > 0)]
        if noise.size:
            std = float(np.median(noise))
    image = np.where(bad, 0.0, data - median)
    finder = DAOStarFinder(threshold * std, fwhm, exclude_border=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # no pinhole is reported by the caller
        found = finder(image, mask=bad)
    if found is None or len(found) == 0:
        return np.empty(0), np.empty(0), np.empty(0)
    if box_size is None:
        box_size = 2 * int(round(1.25 * fwhm)) + 1
    half = box_size // 2
    x0 = np.asarray(found["x_centroid"], dtype=float)
    y0 = np.asarray(found["y_centroid"], dtype=float)
    ny, nx = data.shape
    # Whole boxes only: a centroid from a box cut by the edge is biased. Flagged pixels in the box
    # are left out of the fit; one in the core (3x3 about the peak) drops the pinhole.
    inside = (x0 >= half + 1) & (x0 < nx - half - 2) & (y0 >= half + 1) & (y0 < ny - half - 2)
    clean = np.array(
        [
            inside[k] and not bad[int(round(y0[k])) - 1 : int(round(y0[k])) + 2,
                                  int(round(x0[k])) - 1 : int(round(x0[k])) + 2].any()
            for k in range(len(x0))
        ],
        dtype=bool,
    )  # fmt: skip
    if not clean.any():
        return np.empty(0), np.empty(0), np.empty(0)
    x, y = centroid_sources(
        image, x0[clean], y0[clean], box_size=box_size, centroid_func=centroid_2dg, mask=bad if bad.any() else None
    )
    flux = np.asarray(found["flux"], dtype=float)[clean]
    good = np.isfinite(x) & np.isfinite(y)
    dropped = len(x0) - int(good.sum())
    if dropped:
        log.info("%s: %d of %d detections dropped (edge, flagged pixels or failed centroid)", name, dropped, len(x0))
    return x[good], y[good], flux[good]


@dataclass
class DistortionFit:
    """The fitted distortion: coefficient matrices in the layout of the distortion reference."""

    coeffs_x: np.ndarray
    """Forward correction along x: ``u = x + sum c[i, j] s^i t^j``, ``s, t`` from detector pixels."""
    coeffs_y: np.ndarray
    inverse_coeffs_x: np.ndarray
    """Inverse correction along x: ``x = u + sum c[i, j] s^i t^j``, ``s, t`` from focal-plane pixels."""
    inverse_coeffs_y: np.ndarray
    center: tuple
    """``(cx, cy)``: 0-based full-frame pixels."""
    scale: float
    """``R`` (pixels)."""
    pitch: float
    """Grid pitch (focal-plane pixels), given or fitted."""
    degree: int
    npoints: int
    """Pinholes used (after clipping)."""
    rms: tuple
    """Forward fit residual rms ``(x, y)`` in pixels."""
    inverse_rms: tuple
    """Inverse fit residual rms ``(x, y)`` in pixels."""
    used: np.ndarray
    """Boolean, per input centroid: used in the final fit."""
    indices: np.ndarray
    """``(n, 2)`` grid indices ``(i, j)`` assigned to each centroid."""

    def focal(self, x, y):
        """Return the focal-plane positions ``(u, v)`` of full-frame detector positions."""
        s, t = (np.asarray(x) - self.center[0]) / self.scale, (np.asarray(y) - self.center[1]) / self.scale
        return x + evaluate(self.coeffs_x, s, t), y + evaluate(self.coeffs_y, s, t)

    def detector(self, u, v):
        """Return the detector positions ``(x, y)`` of full-frame focal-plane positions."""
        s, t = (np.asarray(u) - self.center[0]) / self.scale, (np.asarray(v) - self.center[1]) / self.scale
        return u + evaluate(self.inverse_coeffs_x, s, t), v + evaluate(self.inverse_coeffs_y, s, t)


def estimate_pitch(x, y, center, nearest=25):
    """Return the grid pitch: the median nearest-neighbour distance of the pinholes nearest the centre.

    Parameters
    ----------
    x, y : numpy.ndarray
        Full-frame detector positions.
    center : tuple of float
        ``(cx, cy)``.
    nearest : int
        Pinholes used (the distortion grows away from the centre).

    Returns
    -------
    float
    """
    from scipy.spatial import cKDTree

    points = np.column_stack([x, y])
    tree = cKDTree(points)
    order = np.argsort(np.hypot(x - center[0], y - center[1]))[:nearest]
    distances, _ = tree.query(points[order], k=2)
    return float(np.median(distances[:, 1]))


def _assign(u, v, center, pitch, tolerance):
    """Grid indices of focal-plane positions; -1 marks unmatched or duplicated ones."""
    fi, fj = (u - center[0]) / pitch, (v - center[1]) / pitch
    i, j = np.round(fi).astype(int), np.round(fj).astype(int)
    matched = np.hypot(fi - i, fj - j) <= tolerance
    keys = i * 1_000_003 + j
    unique, counts = np.unique(keys[matched], return_counts=True)
    duplicated = np.isin(keys, unique[counts > 1])
    return i, j, matched & ~duplicated


def fit_distortion(
    x,
    y,
    center,
    scale,
    pitch=None,
    degree=3,
    nsigma=4.0,
    maxiters=5,
    tolerance=0.25,
    name="frame",
):
    """Fit the forward and inverse distortion polynomials to pinhole centroids.

    Parameters
    ----------
    x, y : numpy.ndarray
        Measured centroids, 0-based full-frame detector pixels.
    center : tuple of float
        ``(cx, cy)``, the full-frame centre: the focal-plane position of the central pinhole
        and the normalisation centre.
    scale : float
        Normalisation ``R`` (pixels).
    pitch : float, optional
        Grid pitch in focal-plane pixels; fitted when None.
    degree : int
        Degree of the polynomials (>= 2).
    nsigma : float
        Clipping threshold on the residuals (units of their robust standard deviation).
    maxiters : int
        Clipping and re-assignment iterations.
    tolerance : float
        Largest distance of a pinhole from its grid point, in pitches, to be matched.
    name : str
        The frame, for messages.

    Returns
    -------
    DistortionFit

    Raises
    ------
    DistortionFitError
        Too few pinholes for the degree, or no grid found.
    """
    from astropy.stats import mad_std

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if degree < 2:
        raise DistortionFitError(f"{name}: the degree of the distortion must be at least 2, got {degree}")
    terms = polynomial_terms(degree)
    needed = 2 * len(terms) + 2
    if len(x) < needed:
        raise DistortionFitError(
            f"{name}: {len(x)} pinholes found, at least {needed} are needed for a degree-{degree} distortion fit"
        )
    cx, cy = center
    fit_pitch = pitch is None
    current_pitch = estimate_pitch(x, y, center) if fit_pitch else float(pitch)
    u, v = x.copy(), y.copy()  # first guess: no distortion
    used = np.ones(len(x), dtype=bool)
    s, t = (x - cx) / scale, (y - cy) / scale
    design = _design(s, t, terms)
    for _ in range(maxiters + 1):
        i, j, matched = _assign(u, v, center, current_pitch, tolerance)
        fit_mask = matched & used
        if fit_mask.sum() < needed:
            raise DistortionFitError(
                f"{name}: {int(fit_mask.sum())} pinholes on the grid (pitch {current_pitch:.3f} px), at least "
                f"{needed} are needed for a degree-{degree} distortion fit"
            )
        coefficients, current_pitch = _solve_forward(design, i, j, x - cx, y - cy, fit_mask, current_pitch, fit_pitch)
        cfx, cfy = coefficients
        u = x + design @ cfx
        v = y + design @ cfy
        rx, ry = u - (cx + i * current_pitch), v - (cy + j * current_pitch)
        sigma = max(mad_std(rx[fit_mask]), mad_std(ry[fit_mask]), 1e-6)
        keep = matched & (np.abs(rx) <= nsigma * sigma) & (np.abs(ry) <= nsigma * sigma)
        if np.array_equal(keep, fit_mask):
            break
        used = keep | ~matched  # a pinhole re-assigned by the better model gets another chance
    used = fit_mask
    rms = (float(np.sqrt(np.mean(rx[used] ** 2))), float(np.sqrt(np.mean(ry[used] ** 2))))

    # Inverse: detector positions as polynomials of the grid's focal-plane positions.
    gu, gv = cx + i * current_pitch, cy + j * current_pitch
    inverse_design = _design((gu - cx) / scale, (gv - cy) / scale, terms)[used]
    icx = np.linalg.lstsq(inverse_design, (x - gu)[used], rcond=None)[0]
    icy = np.linalg.lstsq(inverse_design, (y - gv)[used], rcond=None)[0]
    irx, iry = x[used] - gu[used] - inverse_design @ icx, y[used] - gv[used] - inverse_design @ icy
    inverse_rms = (float(np.sqrt(np.mean(irx**2))), float(np.sqrt(np.mean(iry**2))))
    log.info(
        "%s: distortion of degree %d from %d of %d pinholes (pitch %.4f px%s): rms %.4f/%.4f px (forward), "
        "%.4f/%.4f px (inverse)",
        name,
        degree,
        int(used.sum()),
        len(x),
        current_pitch,
        ", fitted" if fit_pitch else "",
        *rms,
        *inverse_rms,
    )
    return DistortionFit(
        coeffs_x=_matrix(cfx, terms, degree),
        coeffs_y=_matrix(cfy, terms, degree),
        inverse_coeffs_x=_matrix(icx, terms, degree),
        inverse_coeffs_y=_matrix(icy, terms, degree),
        center=(float(cx), float(cy)),
        scale=float(scale),
        pitch=float(current_pitch),
        degree=int(degree),
        npoints=int(used.sum()),
        rms=rms,
        inverse_rms=inverse_rms,
        used=used,
        indices=np.column_stack([i, j]),
    )


def _solve_forward(design, i, j, dx, dy, mask, pitch, fit_pitch):
    """Least squares of ``cx + i p = x + P(s, t)`` (and y), P without constant or linear terms.

    With a fitted pitch the two axes share the unknown ``p``: one system
    ``[i, -D; j, -D] [p, cx, cy] = [dx, dy]`` (block form).
    """
    d = design[mask]
    n, m = d.shape
    if not fit_pitch:
        cfx = np.linalg.lstsq(d, (i * pitch - dx)[mask], rcond=None)[0]
        cfy = np.linalg.lstsq(d, (j * pitch - dy)[mask], rcond=None)[0]
        return (cfx, cfy), pitch
    system = np.zeros((2 * n, 1 + 2 * m))
    system[:n, 0], system[n:, 0] = i[mask], j[mask]
    system[:n, 1 : 1 + m], system[n:, 1 + m :] = -d, -d
    solution = np.linalg.lstsq(system, np.concatenate([dx[mask], dy[mask]]), rcond=None)[0]
    return (solution[1 : 1 + m], solution[1 + m :]), float(solution[0])
