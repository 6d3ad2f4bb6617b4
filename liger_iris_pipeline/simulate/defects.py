"""Residual defects: what Level 1 and Level 2 cannot see, for Level 3 outlier detection to find.

Each is extra rate (DN/s) in one exposure only, constant over the ramp (so jump detection
does not see it), on pixels the detector's mask does not flag:

- ``hot``: a new hot pixel (extra dark current in this exposure; not in the MASK reference).
- ``cosmic``: a cosmic ray missed at Level 1, a compact hit of 1-4 adjacent pixels.
- ``trail``: a satellite trail, a straight line about 2 pixels wide across the frame (light,
  so it is seen through the flat).

Every affected pixel changes by at least `MIN_SIGMA` times its own noise (the rate noise of a
ramp fit of that pixel: read noise and Poisson noise of its rate), so that a perfect outlier
detector finds every one. Counts and amplitudes are *assumed* values, not measured rates.
"""

import numpy as np

__all__ = ["DEFAULT_DEFECTS", "MIN_SIGMA", "draw_residual_defects", "empty_defects", "rate_noise"]

MIN_SIGMA = 10.0
"""Smallest change of an affected pixel, in units of its rate noise."""

DEFAULT_DEFECTS = {"hot": 4, "cosmic": 4, "trail": 0.3}
"""Per exposure: new hot pixels, missed cosmic rays, probability of a satellite trail."""

_TRAIL_HALF_WIDTH = 1.0  # pixels: centres within 1 px of the line, ~2 px wide


def rate_noise(detector_rate, gain, read_noise, nreads, read_time):
    """Return the rate noise (DN/s) of an up-the-ramp fit of each pixel.

    Read noise ``12 r^2 / (N (N^2 - 1) dt^2)`` plus Poisson noise
    ``6 (N^2 + 1) / (5 N (N + 1)) * rate / (gain (N - 1) dt)``, the variances of a least-squares
    slope through N equally spaced reads (exact for N = 2).
    """
    n = max(int(nreads), 2)
    total = (n - 1) * read_time
    variance = np.square(read_noise, dtype=np.float32)
    variance *= np.float32(12.0 / (n * (n * n - 1) * read_time * read_time))
    poisson = np.maximum(detector_rate, 0.0).astype(np.float32)
    poisson /= gain
    poisson *= np.float32(6.0 * (n * n + 1) / (5.0 * n * (n + 1) * total))
    variance += poisson
    return np.sqrt(variance)


def draw_residual_defects(rng, det, detector_rate, nreads, read_time, counts=None):
    """Draw the residual defects of one exposure.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random generator (a stream of its own, so the rest of the exposure is unchanged).
    det : DetectorTruth
        The detector (or subarray) of the exposure.
    detector_rate : numpy.ndarray
        Rate (DN/s) without defects, for the noise of each pixel.
    nreads, read_time : int, float
        The ramp, for the noise.
    counts : dict, optional
        ``{"hot": n, "cosmic": n, "trail": probability}``; `DEFAULT_DEFECTS` by default.

    Returns
    -------
    extra_rate : numpy.ndarray
        float32 DN/s to add to the detector rate.
    table : astropy.table.Table
        One row per affected pixel: ``defect`` (number), ``kind``, ``x, y`` (0-based),
        ``rate`` (DN/s added) and ``sigma`` (the change in units of the pixel's noise).
    mask : numpy.ndarray
        uint8, 1 where a defect changed the pixel.
    """
    from astropy.table import Table

    counts = {**DEFAULT_DEFECTS, **(counts or {})}
    ny, nx = det.shape
    sigma = rate_noise(detector_rate, det.gain, det.read_noise, nreads, read_time)
    # Defects go on pixels the pipeline treats as good: not flagged and of ordinary brightness
    # (a defect on a saturating star core would be flagged SATURATED, not left for Level 3).
    usable = det.mask == 0
    if usable.any():
        usable &= detector_rate <= np.percentile(detector_rate[usable], 90.0)
    extra = np.zeros((ny, nx), dtype=np.float32)
    rows = []

    def add(kind, number, ys, xs, amplitude):
        for y, x in zip(ys, xs, strict=True):
            if not usable[y, x] or extra[y, x]:
                continue
            change = max(amplitude * (det.flat[y, x] if kind == "trail" else 1.0), 1.05 * MIN_SIGMA * sigma[y, x])
            extra[y, x] = change
            rows.append((number, kind, int(x), int(y), change, change / sigma[y, x]))

    candidates = np.flatnonzero(usable)
    number = 0
    for _ in range(int(counts["hot"])):
        if candidates.size:
            number += 1
            pixel = rng.choice(candidates)
            y, x = divmod(int(pixel), nx)
            add("hot", number, [y], [x], rng.uniform(1.5, 5.0) * MIN_SIGMA * sigma[y, x])
    for _ in range(int(counts["cosmic"])):
        if candidates.size:
            number += 1
            y, x = divmod(int(rng.choice(candidates)), nx)
            # A compact hit: the pixel and up to three of its neighbours.
            neighbours = [(0, 1), (1, 0), (1, 1), (0, -1), (-1, 0)]
            picked = rng.permutation(len(neighbours))[: rng.integers(0, 4)]
            ys, xs = [y], [x]
            for index in picked:
                yy, xx = y + neighbours[index][0], x + neighbours[index][1]
                if 0 <= yy < ny and 0 <= xx < nx:
                    ys.append(yy)
                    xs.append(xx)
            add("cosmic", number, ys, xs, rng.uniform(2.0, 10.0) * MIN_SIGMA * float(sigma[y, x]))
    if rng.uniform() < float(counts["trail"]):
        number += 1
        # A line through a random point of the frame at a random angle.
        x0, y0 = rng.uniform(0, nx - 1), rng.uniform(0, ny - 1)
        angle = rng.uniform(0.0, np.pi)
        # Distance of each pixel centre from the line, by broadcasting (float32: 4 bytes a pixel).
        across = (np.arange(nx, dtype=np.float32) - np.float32(x0)) * np.float32(np.sin(angle))
        along = (np.arange(ny, dtype=np.float32) - np.float32(y0)) * np.float32(np.cos(angle))
        on_line = np.abs(across[None, :] - along[:, None]) <= _TRAIL_HALF_WIDTH
        amplitude = 2.0 * MIN_SIGMA * float(np.median(sigma[on_line & usable])) if (on_line & usable).any() else 0.0
        ys, xs = np.nonzero(on_line)
        add("trail", number, ys, xs, amplitude)
    table = Table(
        rows=rows or None,
        names=("defect", "kind", "x", "y", "rate", "sigma"),
        dtype=(np.int32, "U6", np.int32, np.int32, np.float64, np.float64),
    )
    return extra, table, (extra > 0).astype(np.uint8)


def empty_defects(shape):
    """Return the defects of an exposure without any (`draw_residual_defects`' outputs)."""
    from astropy.table import Table

    table = Table(
        names=("defect", "kind", "x", "y", "rate", "sigma"),
        dtype=(np.int32, "U6", np.int32, np.int32, np.float64, np.float64),
    )
    return np.zeros(shape, dtype=np.float32), table, np.zeros(shape, dtype=np.uint8)
