"""Instrument simulator: IRIS imager Level 0 ramps and calibration data with known truth.

Everything is deterministic for a seed. Units are DN and seconds throughout; see
``docs/simulate.rst`` for the physical model.

- `make_detector` -> `DetectorTruth`: bias, reference pixels, dark current, hot and dead
  pixels, flat, gain, read noise, nonlinearity, saturation of a full-frame detector.
- `Scene` (point sources with a diffraction-limited PSF, `ExtendedSource` galaxies, sky).
- `Distortion`, `instrument_distortion`: the field distortion every imager exposure is drawn with.
- `simulate_exposure` and the calibration exposures `simulate_dark_exposure`,
  `simulate_flat_exposure`, `simulate_sky_exposure`, `simulate_pinhole_exposure` ->
  (`TMTRampModel`, `ExposureTruth`); `simulate_standard_exposure` with `standards_catalog`.
- `write_reference_catalog`: an astrometric catalog of the stars; `dither_offsets`: dither patterns.
- ``simulate_exposure(pointing_error_mas=..., residual_defects=True)``: a header WCS off by a
  known pointing error; defects Level 2 cannot see (`defects`), recorded in the truth.
- `filters.dn_per_jy`: DN/s of 1 Jy, the physical flux scale of the truth (``flux_jy``, ``abmag``).
- `reference_models`: the truth reference files (DARK, FLAT, MASK, NONLIN, SATURATION,
  READNOISE, GAIN).
- `simulate_dataset`: all of it written to a directory (also
  ``python -m liger_iris_pipeline.simulate``; ``level3=True`` / ``--level3`` for dithered
  exposures, pinhole and standard exposures and the catalogs).
- `ifs`: the spectrograph's slicer mode on the same detector model (``--ifs``, ``docs/simulate_ifs.rst``).

Importing this package loads only numpy; astropy and stdatamodels are imported when a
function needs them.
"""

from .catalogs import STANDARD_STARS, standards_catalog, write_reference_catalog, write_standards_catalog
from .dataset import simulate_dataset
from .detector import CACHE_DETECTOR_SEED, DetectorTruth, make_detector
from .distortion import Distortion, instrument_distortion
from .exposure import (
    DEFAULT_COSMIC_RAY_RATE,
    ExposureTruth,
    pinhole_grid,
    simulate_dark_exposure,
    simulate_exposure,
    simulate_flat_exposure,
    simulate_pinhole_exposure,
    simulate_sky_exposure,
    simulate_standard_exposure,
    subarray_map,
)
from .filters import FILTERS, abmag, dn_per_jy, filter_names, psf_fwhm, sky_rate
from .geometry import region_slices
from .pointing import dither_offsets, make_wcs, wcsinfo_for_pointing
from .references import REFERENCE_TYPES, reference_model, reference_models
from .scene import ExtendedSource, Scene

__all__ = [
    "CACHE_DETECTOR_SEED",
    "DEFAULT_COSMIC_RAY_RATE",
    "FILTERS",
    "REFERENCE_TYPES",
    "STANDARD_STARS",
    "DetectorTruth",
    "Distortion",
    "ExposureTruth",
    "ExtendedSource",
    "Scene",
    "abmag",
    "dither_offsets",
    "dn_per_jy",
    "filter_names",
    "instrument_distortion",
    "make_detector",
    "make_wcs",
    "pinhole_grid",
    "psf_fwhm",
    "reference_model",
    "reference_models",
    "simulate_dark_exposure",
    "simulate_dataset",
    "simulate_exposure",
    "simulate_flat_exposure",
    "simulate_pinhole_exposure",
    "simulate_sky_exposure",
    "simulate_standard_exposure",
    "sky_rate",
    "standards_catalog",
    "subarray_map",
    "region_slices",
    "wcsinfo_for_pointing",
    "write_reference_catalog",
    "write_standards_catalog",
]
