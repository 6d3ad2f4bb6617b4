"""Slicer-mode IFS simulator: Level 0 ramps of the IRIS integral-field spectrograph with known truth.

See ``docs/simulate_ifs.rst``. Built on the imager simulator's detector model
(`~liger_iris_pipeline.simulate.detector`, `~liger_iris_pipeline.simulate.exposure.simulate_ramps`):
the same noise, dark, non-linearity, saturation, bad pixels and cosmic rays.

- `SlicerLayout`: slices, traces, wavelength solutions, line-spread function, slice throughputs.
- `lines`: OH night-sky, arc-lamp (Ar, Kr, Xe, Ne) and nebular line lists (vacuum microns).
- `IFSScene` (`PointSource`, `RotatingDisc`, sky, lamps) and `truth_cube`: the truth cube.
- `dispersed_rate`: truth cube -> detector rate image.
- `simulate_ifs_exposure` -> (`TMTRampModel`, `IFSTruth`); `simulate_ifs_dataset`: a data set on disk
  (also ``python -m liger_iris_pipeline.simulate --ifs``).

Importing this package loads only numpy.
"""

from .dataset import IFS_DETECTOR_SEED, exposure_scene, simulate_ifs_dataset
from .exposure import IFS_EXPOSURE_KINDS, IFSTruth, default_science_scene, simulate_ifs_exposure
from .layout import SlicerLayout, wavelength_at
from .lines import ARC_LINES, NEBULAR_LINES, OH_LINES
from .optics import convolve_lsf, dispersed_rate
from .scene import IFSScene, PointSource, RotatingDisc, WavelengthGrid, telluric_transmission, truth_cube

__all__ = [
    "ARC_LINES",
    "IFS_DETECTOR_SEED",
    "IFS_EXPOSURE_KINDS",
    "NEBULAR_LINES",
    "OH_LINES",
    "IFSScene",
    "IFSTruth",
    "PointSource",
    "RotatingDisc",
    "SlicerLayout",
    "WavelengthGrid",
    "convolve_lsf",
    "default_science_scene",
    "dispersed_rate",
    "exposure_scene",
    "simulate_ifs_dataset",
    "simulate_ifs_exposure",
    "telluric_transmission",
    "truth_cube",
    "wavelength_at",
]
