"""Field distortion of the imager optics: undistorted focal-plane pixels -> detector pixels.

Convention (``docs/level3_design.rst``): the focal plane ``(u, v)`` is the undistorted
image in pixels of the nominal plate scale, 0-based, in the full-frame system, where the
TAN WCS of ``meta.wcsinfo`` holds exactly. The optics put the light of ``(u, v)`` on
detector pixel::

    x = u + sum_ij ax[i, j] s^i t^j,    y = v + sum_ij ay[i, j] s^i t^j
    s = (u - cx) / R,  t = (v - cy) / R,  2 <= i + j <= 3

with ``(cx, cy) = ((nx - 1) / 2, (ny - 1) / 2)`` the centre of the full frame being
simulated and ``R`` half the side of the instrument's full detector; ``ax, ay`` are in
pixels. There are no constant or linear terms: the pointing and the plate scale hold at the
centre, so a detector smaller than the instrument's (tests) sees almost no distortion.

The instruments' distortions (`instrument_distortion`) are *assumed* values, not optical
design data: a radial cubic term (pincushion) plus smaller quadratic terms (a tilted focal
plane), giving about 5 pixels at the corners of the IRIS detector and 2 at those of Liger's.
"""

from dataclasses import dataclass

import numpy as np

from .instruments import instrument_model

__all__ = ["DISTORTION_TERMS", "Distortion", "instrument_distortion"]

DISTORTION_TERMS = {
    # instrument: {(i, j): (ax, ay)} coefficients of s^i t^j in pixels (assumed values).
    # Radial cubic k (s^2 + t^2) (s, t): ax[3,0] = ax[1,2] = ay[0,3] = ay[2,1] = k.
    "iris": {
        (3, 0): (1.50, 0.0),
        (1, 2): (1.50, 0.0),
        (0, 3): (0.0, 1.50),
        (2, 1): (0.0, 1.50),
        (2, 0): (0.35, 0.10),
        (1, 1): (0.20, 0.30),
        (0, 2): (-0.10, 0.25),
    },
    "liger": {
        (3, 0): (0.60, 0.0),
        (1, 2): (0.60, 0.0),
        (0, 3): (0.0, 0.60),
        (2, 1): (0.0, 0.60),
        (2, 0): (0.15, 0.05),
        (1, 1): (0.10, 0.12),
        (0, 2): (-0.05, 0.10),
    },
}
"""Assumed distortion coefficients of each instrument (see the module docstring)."""

_DEGREE = 3
_TOLERANCE = 1.0e-8  # pixels, of the inverse
_MAX_ITERATIONS = 50


@dataclass(frozen=True)
class Distortion:
    """A cubic polynomial distortion of the focal plane (see the module docstring).

    Attributes
    ----------
    ax, ay : numpy.ndarray
        (4, 4) coefficients (pixels) of ``s^i t^j`` in ``x - u`` and ``y - v``; terms of
        degree 0 and 1 must be zero.
    cx, cy : float
        Centre of the full frame (0-based pixels).
    scale : float
        ``R``: half the side of the instrument's full detector (pixels).
    """

    ax: np.ndarray
    ay: np.ndarray
    cx: float
    cy: float
    scale: float

    def __post_init__(self):
        for name in ("ax", "ay"):
            coefficients = np.array(getattr(self, name), dtype=np.float64)
            if coefficients.shape != (_DEGREE + 1, _DEGREE + 1):
                raise ValueError(f"{name} must be a {_DEGREE + 1}x{_DEGREE + 1} array, got {coefficients.shape}")
            degree = np.add.outer(np.arange(_DEGREE + 1), np.arange(_DEGREE + 1))
            if np.any(coefficients[(degree < 2) | (degree > _DEGREE)] != 0):
                raise ValueError(f"{name} has terms of degree 0, 1 or > {_DEGREE}; only degrees 2 and 3 are allowed")
            coefficients.flags.writeable = False
            object.__setattr__(self, name, coefficients)
        if not self.scale > 0:
            raise ValueError(f"distortion scale must be positive, got {self.scale}")

    @classmethod
    def zero(cls, cx=0.0, cy=0.0, scale=1.0):
        """Return the identity (no distortion)."""
        return cls(np.zeros((4, 4)), np.zeros((4, 4)), cx, cy, scale)

    @property
    def is_zero(self):
        """True if the distortion is the identity."""
        return not (self.ax.any() or self.ay.any())

    def _offsets(self, u, v):
        """Return ``(x - u, y - v)`` and their derivatives with respect to u and v."""
        s, t = (u - self.cx) / self.scale, (v - self.cy) / self.scale
        dx, dy = np.zeros_like(s), np.zeros_like(s)
        dx_ds, dx_dt, dy_ds, dy_dt = (np.zeros_like(s) for _ in range(4))
        for i in range(_DEGREE + 1):
            for j in range(_DEGREE + 1 - i):
                a, b = self.ax[i, j], self.ay[i, j]
                if a == 0 and b == 0:
                    continue
                term = s**i * t**j
                dx += a * term
                dy += b * term
                if i:
                    ds = i * s ** (i - 1) * t**j
                    dx_ds += a * ds
                    dy_ds += b * ds
                if j:
                    dt = j * s**i * t ** (j - 1)
                    dx_dt += a * dt
                    dy_dt += b * dt
        jacobian = tuple(value / self.scale for value in (dx_ds, dx_dt, dy_ds, dy_dt))
        return dx, dy, jacobian

    def to_detector(self, u, v):
        """Return detector pixels ``(x, y)`` of focal-plane pixels ``(u, v)`` (full frame, 0-based)."""
        u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
        dx, dy, _ = self._offsets(u, v)
        return u + dx, v + dy

    def to_focal(self, x, y):
        """Return focal-plane pixels ``(u, v)`` of detector pixels ``(x, y)``, by Newton iteration to 1e-8 px.

        Raises
        ------
        RuntimeError
            The iteration did not converge (a distortion far beyond a few pixels).
        """
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        u, v = x.copy(), y.copy()
        for _ in range(_MAX_ITERATIONS):
            dx, dy, (xu, xv, yu, yv) = self._offsets(u, v)
            # Residual of x(u, v) - x and its Jacobian (identity plus the distortion's).
            fx, fy = u + dx - x, v + dy - y
            a, b, c, d = 1.0 + xu, xv, yu, 1.0 + yv
            determinant = a * d - b * c
            du = (d * fx - b * fy) / determinant
            dv = (a * fy - c * fx) / determinant
            u, v = u - du, v - dv
            if np.all(np.abs(du) < _TOLERANCE) and np.all(np.abs(dv) < _TOLERANCE):
                return u, v
        raise RuntimeError("inverse distortion did not converge")

    def max_displacement(self, shape):
        """Return the largest ``|(x, y) - (u, v)|`` (pixels) at the corners of a ``(ny, nx)`` frame."""
        ny, nx = shape
        u = np.array([0.0, nx - 1.0, 0.0, nx - 1.0])
        v = np.array([0.0, 0.0, ny - 1.0, ny - 1.0])
        x, y = self.to_detector(u, v)
        return float(np.max(np.hypot(x - u, y - v)))


def instrument_distortion(instrument, detector_shape=None):
    """Return the assumed distortion of an instrument's imager for a simulated full frame.

    Parameters
    ----------
    instrument : str
        ``iris`` or ``liger``.
    detector_shape : tuple of int, optional
        ``(ny, nx)`` of the simulated full frame (its centre is the distortion centre);
        the instrument's detector by default.

    Returns
    -------
    Distortion
    """
    facts = instrument_model(instrument)
    ny, nx = facts.detector_shape if detector_shape is None else detector_shape
    ax, ay = np.zeros((4, 4)), np.zeros((4, 4))
    for (i, j), (a, b) in DISTORTION_TERMS[facts.name.lower()].items():
        ax[i, j], ay[i, j] = a, b
    return Distortion(ax, ay, (nx - 1) / 2.0, (ny - 1) / 2.0, facts.detector_shape[1] / 2.0)
