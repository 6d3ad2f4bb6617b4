"""The arc-lamp line list of the wavelength calibration (``data/arc_lines.ecsv``).

Ar I, Kr I, Xe I and Ne I lines between 0.9 and 2.45 um of relative intensity 1000 or more:
vacuum Ritz wavelengths from the NIST Atomic Spectra Database (Kramida, Ralchenko, Reader and the
NIST ASD Team, https://physics.nist.gov/asd), relative intensities (within each species) of the Keck
NIRSPEC ArNeKrXe arc-lamp list as distributed with PypeIt
(``pypeit/data/arc_lines/lists/NIRSPEC-ArNeKrXe_lines.dat``). Wavelengths in microns, in vacuum
(``docs/ifs_design.rst``); the file is the pipeline's own copy of these published values (the
simulator keeps its own, so that neither imports the other).
"""

import numpy as np

from ..lib.line_lists import packaged_lines

__all__ = ["ARC_LINE_FILE", "arc_lines"]

ARC_LINE_FILE = "data/arc_lines.ecsv"
"""The line list, relative to this package."""


def arc_lines(low=None, high=None):
    """Return the arc lines between two wavelengths.

    Parameters
    ----------
    low, high : float or None
        Wavelength range (microns, vacuum); None: no limit.

    Returns
    -------
    wavelength, intensity : numpy.ndarray
        float64 arrays sorted by wavelength: vacuum microns and relative intensity.
    """
    wavelength, intensity = packaged_lines(__package__, ARC_LINE_FILE, ("wavelength", "intensity"), low, high)
    return wavelength.astype(np.float64), intensity.astype(np.float64)
