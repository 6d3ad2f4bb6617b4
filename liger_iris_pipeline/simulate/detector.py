"""Simulated detector: the per-pixel truth every exposure and reference file is made from.

A `DetectorTruth` is generated once at full-frame geometry; subarray exposures and
subarray reference files are cut from it (`DetectorTruth.cut`), so a subarray sees
exactly the pixels of the corresponding region of the full frame.

Units are DN and seconds, electrons where stated; the gain converts (e-/DN).

Nonlinearity model
------------------
The detector's measured signal ``s`` (raw DN above the pixel's bias/reset level) falls
short of the linear signal ``q`` (accumulated charge / gain, DN). The correction
polynomial of the truth reference maps one to the other exactly::

    q = P(s) = s + c2 s**2 + c3 s**3          (c0 = 0, c1 = 1)

with ``c2, c3 >= 0`` per pixel, chosen so that the deficit ``1 - s/q`` at full well is
3-8 %. ``P`` is then increasing and convex for ``s >= 0``; the simulator inverts it
with its third-order series inverse refined by two Newton iterations (float32 precision).
"""

import math
from dataclasses import dataclass, fields, replace

import numpy as np

from ..dqflags import pixel as _FLAGS
from .geometry import region_slices
from .instruments import instrument_model

__all__ = ["CACHE_DETECTOR_SEED", "DetectorTruth", "make_detector"]

CACHE_DETECTOR_SEED = 20240101
"""Seed of the detector whose references the shipped CRDS cache holds (``tmt-crds-cache build``).

Exposures of another detector (another seed) carry another serial number, and the pipeline
refuses to calibrate them with this detector's references."""

DO_NOT_USE = _FLAGS["DO_NOT_USE"]
DEAD = _FLAGS["DEAD"]
HOT = _FLAGS["HOT"]
REFERENCE_PIXEL = _FLAGS["REFERENCE_PIXEL"]
NO_RESPONSE = REFERENCE_PIXEL | DEAD
"""Mask bits of pixels that collect no charge (reference and dead pixels)."""

N_CHANNELS = 32
"""Readout channels across the columns; each has its own bias offset."""


@dataclass
class DetectorTruth:
    """Per-pixel properties of a simulated detector (or of a subarray cut from one).

    Attributes
    ----------
    bias : numpy.ndarray
        float32 reset (zero) level of each pixel, raw DN.
    dark_rate : numpy.ndarray
        float32 dark current, DN/s (0 for reference and dead pixels).
    flat : numpy.ndarray
        float32 relative response, median 1 over pixels without DO_NOT_USE (0 for
        reference and dead pixels).
    gain : numpy.ndarray
        float32 e-/DN.
    read_noise : numpy.ndarray
        float32 noise of a single read, DN.
    nonlin_c2, nonlin_c3 : numpy.ndarray
        float32 coefficients of the correction polynomial ``P(s) = s + c2 s^2 + c3 s^3``.
    saturation : numpy.ndarray
        float32 raw-DN level (integer valued) at which a pixel saturates: bias plus
        full well, at most 65535.
    mask : numpy.ndarray
        uint32 DQ flags (REFERENCE_PIXEL, DEAD, HOT, DO_NOT_USE).
    subarray : tuple of int
        ``(xstart, ystart, xsize, ysize)`` of these arrays on the detector (1-based starts).
    detector_shape : tuple of int
        ``(ny, nx)`` of the full detector.
    seed : int or None
        Seed the detector was generated with.
    serial : str
        Serial number of the detector (``DETSERNO`` of its exposures and references):
        ``SIM-<seed>``, so each seed is a different physical detector.
    """

    bias: np.ndarray
    dark_rate: np.ndarray
    flat: np.ndarray
    gain: np.ndarray
    read_noise: np.ndarray
    nonlin_c2: np.ndarray
    nonlin_c3: np.ndarray
    saturation: np.ndarray
    mask: np.ndarray
    subarray: tuple
    detector_shape: tuple
    seed: int | None = None
    serial: str = "SIM-UNKNOWN"
    instrument: str = "iris"

    @property
    def shape(self):
        """``(ny, nx)`` of the arrays."""
        return self.bias.shape

    @property
    def is_full_frame(self):
        """True if the arrays cover the whole detector."""
        return tuple(self.shape) == tuple(self.detector_shape)

    def subarray_metadata(self, subarray_id=None):
        """Return ``meta.subarray`` of an exposure or reference with these arrays.

        Parameters
        ----------
        subarray_id : int, optional
            Index of the subarray in a full-frame SUBARR_MAP (name ``SUBARRAYk``); otherwise a
            partial frame is ``CUSTOM`` and the whole detector ``FULL``.

        Returns
        -------
        dict
        """
        if self.is_full_frame:
            name = {"name": "FULL", "id": 0}
        elif subarray_id is not None:
            name = {"name": f"SUBARRAY{int(subarray_id)}", "id": int(subarray_id)}
        else:
            name = {"name": "CUSTOM"}
        xstart, ystart, xsize, ysize = self.subarray
        return {
            **name,
            "xstart": xstart,
            "ystart": ystart,
            "xsize": xsize,
            "ysize": ysize,
            "detxsize": self.detector_shape[1],
            "detysize": self.detector_shape[0],
        }

    def cut(self, subarray):
        """Return the truth of a subarray of this detector (views, no copies).

        Parameters
        ----------
        subarray : tuple of int
            ``(xstart, ystart, xsize, ysize)``, 1-based starts relative to the arrays of
            this object.

        Returns
        -------
        DetectorTruth
            The subarray, with ``subarray`` expressed on the full detector.
        """
        rows, cols = region_slices(subarray, self.shape)
        arrays = {
            field.name: getattr(self, field.name)[rows, cols]
            for field in fields(self)
            if isinstance(getattr(self, field.name), np.ndarray)
        }
        xstart = self.subarray[0] + int(subarray[0]) - 1
        ystart = self.subarray[1] + int(subarray[1]) - 1
        return replace(self, **arrays, subarray=(xstart, ystart, int(subarray[2]), int(subarray[3])))

    def nonlin_coefficients(self):
        """Return the truth correction polynomial as a ``TMTNonlinModel.coeffs`` array.

        Returns
        -------
        numpy.ndarray
            float32 (4, ny, nx): ``c0 = 0, c1 = 1, c2, c3``.
        """
        coeffs = np.zeros((4, *self.shape), dtype=np.float32)
        coeffs[1] = 1.0
        coeffs[2] = self.nonlin_c2
        coeffs[3] = self.nonlin_c3
        return coeffs


def make_detector(
    shape=None,
    seed=0,
    *,
    instrument="iris",
    bias_level=12000.0,
    dark_current=0.025,
    hot_fraction=1.0e-3,
    dead_fraction=5.0e-4,
    gain=1.0,
    read_noise=9.0,
    full_well=52000.0,
    nonlin_deficit=(0.03, 0.08),
    flat_rms=0.01,
    illumination=0.05,
    n_reference=4,
):
    """Generate the truth of a HAWAII-4RG-like detector.

    Parameters
    ----------
    shape : tuple of int, optional
        ``(ny, nx)`` of the full detector; the instrument's imager detector by default.
    seed : int
        Seed of the random generator; the same seed gives the same detector.
    instrument : str
        ``iris`` or ``liger`` (see `instruments`): the default shape, the serial number and
        the metadata of exposures and references.
    bias_level : float
        Mean reset level (raw DN). Per-channel, per-column, per-row and per-pixel
        structure is added and the result is kept within +-2000 DN of it.
    dark_current : float
        Typical dark current (e-/s), with 10 % pixel-to-pixel scatter.
    hot_fraction : float
        Fraction of hot pixels (0.5-50 e-/s, log-uniform). They are flagged HOT, and
        also DO_NOT_USE above 5 e-/s.
    dead_fraction : float
        Fraction of dead pixels (no response; DEAD and DO_NOT_USE).
    gain : float
        Mean gain (e-/DN), 2 % scatter.
    read_noise : float
        Mean read noise of a single read (e-), 5 % scatter; stored in DN.
    full_well : float
        Mean full well (DN above bias), 3 % scatter. The saturation level is
        ``floor(bias + full well)`` capped at 65535.
    nonlin_deficit : tuple of float
        Range of the per-pixel fractional signal deficit at full well.
    flat_rms : float
        Rms of the pixel-to-pixel response.
    illumination : float
        Half range of the low-order (quadratic 2-D polynomial) response variation.
    n_reference : int
        Width of the reference-pixel border on every edge.

    Returns
    -------
    DetectorTruth
        The full-frame truth.
    """
    model = instrument_model(instrument)
    if shape is None:
        shape = model.detector_shape
    ny, nx = (int(value) for value in shape)
    if min(ny, nx) <= 2 * n_reference:
        raise ValueError(f"detector {nx}x{ny} is too small for a {n_reference}-pixel reference border")
    rng = np.random.default_rng(seed)
    f32 = np.float32

    # Reset level: a fixed offset per readout channel, column and row structure, pixel scatter.
    channel = (np.arange(nx) * N_CHANNELS) // nx
    column_offset = rng.normal(0.0, 400.0, N_CHANNELS)[channel] + rng.normal(0.0, 50.0, nx)
    row_offset = rng.normal(0.0, 30.0, ny)
    bias = rng.standard_normal((ny, nx), dtype=f32)
    bias *= 100.0
    bias += (bias_level + row_offset[:, None]).astype(f32)
    bias += column_offset.astype(f32)[None, :]
    np.clip(bias, bias_level - 2000.0, bias_level + 2000.0, out=bias)

    mask = np.zeros((ny, nx), dtype=np.uint32)
    border = n_reference
    mask[:border] = mask[-border:] = REFERENCE_PIXEL | DO_NOT_USE
    mask[:, :border] = mask[:, -border:] = REFERENCE_PIXEL | DO_NOT_USE

    # Hot and dead pixels: disjoint random sets of the active (non-reference) pixels.
    inner_y, inner_x = ny - 2 * border, nx - 2 * border
    n_hot = round(hot_fraction * inner_y * inner_x)
    n_dead = round(dead_fraction * inner_y * inner_x)
    row, col = np.divmod(rng.choice(inner_y * inner_x, n_hot + n_dead, replace=False), inner_x)
    chosen = (row + border) * nx + col + border
    hot, dead = chosen[:n_hot], chosen[n_hot:]

    gain_map = rng.standard_normal((ny, nx), dtype=f32)
    gain_map *= 0.02 * gain
    gain_map += gain

    dark_e = rng.standard_normal((ny, nx), dtype=f32)
    dark_e *= 0.1 * dark_current
    dark_e += dark_current
    np.maximum(dark_e, 0.0, out=dark_e)
    hot_rate = np.exp(rng.uniform(math.log(0.5), math.log(50.0), n_hot)).astype(f32)
    dark_e.ravel()[hot] = hot_rate
    mask.ravel()[hot] = np.where(hot_rate > 5.0, HOT | DO_NOT_USE, HOT)
    mask.ravel()[dead] = DEAD | DO_NOT_USE

    noise = rng.standard_normal((ny, nx), dtype=f32)
    noise *= 0.05 * read_noise
    noise += read_noise
    noise /= gain_map

    # Flat: smooth illumination (quadratic in x and y) times pixel-to-pixel response.
    u = np.linspace(-1.0, 1.0, nx, dtype=f32)
    v = np.linspace(-1.0, 1.0, ny, dtype=f32)[:, None]
    a = rng.normal(0.0, 1.0, 5).astype(f32)
    smooth = a[0] * u + a[1] * v + a[2] * u * u + a[3] * u * v + a[4] * v * v
    smooth -= smooth.mean(dtype=np.float64)
    flat = rng.standard_normal((ny, nx), dtype=f32)
    flat *= flat_rms
    flat += 1.0
    smooth *= illumination / np.abs(smooth).max()
    smooth += 1.0
    flat *= smooth
    del smooth

    full = rng.standard_normal((ny, nx), dtype=f32)
    full *= 0.03 * full_well
    full += full_well
    saturation = bias + full
    np.floor(saturation, out=saturation)
    np.minimum(saturation, 65535.0, out=saturation)

    # Nonlinearity: deficit d at full well, split between the quadratic and cubic terms.
    low, high = nonlin_deficit
    excess = rng.random((ny, nx), dtype=f32)
    excess *= high - low
    excess += low
    excess /= 1.0 - excess  # deficit d -> P(full) / full - 1 = d / (1 - d)
    excess /= full
    split = rng.random((ny, nx), dtype=f32)
    split *= 0.3
    split += 0.6
    c2 = excess * split
    split -= 1.0
    split *= -excess
    split /= full
    c3 = split
    del excess, full

    no_response = (mask & NO_RESPONSE) != 0
    for array in (dark_e, flat, c2, c3):
        array[no_response] = 0.0
    # Median 1 over good pixels: the convention of the flat-field calibration pipeline (normalize's
    # default), so that a flat it makes from lamp exposures matches this truth without a scale factor.
    flat /= np.median(flat[(mask & DO_NOT_USE) == 0])
    dark_e /= gain_map

    return DetectorTruth(
        bias=bias,
        dark_rate=dark_e,
        flat=flat,
        gain=gain_map,
        read_noise=noise,
        nonlin_c2=c2,
        nonlin_c3=c3,
        saturation=saturation,
        mask=mask,
        subarray=(1, 1, nx, ny),
        detector_shape=(ny, nx),
        seed=seed,
        serial=f"{model.serial_prefix}-{seed}",
        instrument=instrument.lower(),
    )
