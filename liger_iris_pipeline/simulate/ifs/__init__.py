"""Slicer-mode IFS simulator: Level 0 ramps of the IRIS integral-field spectrograph with known truth.

See ``docs/simulate_ifs.rst``. Built on the imager simulator's detector model
(`~liger_iris_pipeline.simulate.detector`, `~liger_iris_pipeline.simulate.exposure.simulate_ramps`):
the same noise, dark, non-linearity, saturation, bad pixels and cosmic rays.

- `SlicerLayout`: slices, traces, wavelength solutions, line-spread function, slice throughputs.
- `lines`: OH night-sky, arc-lamp (Ar, Kr, Xe, Ne) and nebular line lists (vacuum microns).

Importing this package loads only numpy.
"""

from .layout import SlicerLayout
from .lines import ARC_LINES, NEBULAR_LINES, OH_LINES

__all__ = ["ARC_LINES", "NEBULAR_LINES", "OH_LINES", "SlicerLayout"]
