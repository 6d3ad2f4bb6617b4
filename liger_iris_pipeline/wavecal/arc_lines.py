"""The arc-lamp line list of the wavelength calibration (``data/arc_lines.ecsv``).

Ar I, Kr I, Xe I and Ne I lines between 0.9 and 2.45 um of relative intensity 1000 or more:
vacuum Ritz wavelengths from the NIST Atomic Spectra Database (Kramida, Ralchenko, Reader and the
NIST ASD Team, https://physics.nist.gov/asd), relative intensities (within each species) of the Keck
NIRSPEC ArNeKrXe arc-lamp list as distributed with PypeIt
(``pypeit/data/arc_lines/lists/NIRSPEC-ArNeKrXe_lines.dat``). Wavelengths in microns, in vacuum
(``docs/ifs_design.rst``); the file is the pipeline's own copy of these published values (the
simulator keeps its own, so that neither imports the other).
"""

from functools import cache
from importlib import resources

import numpy as np
from astropy.table import Table

__all__ = ["ARC_LINE_FILE", "arc_lines"]

ARC_LINE_FILE = "data/arc_lines.ecsv"
"""The line list, relative to this package."""


@cache
def _table():
    with resources.as_file(resources.files(__package__) / ARC_LINE_FILE) as path:
        return Table.read(path, format="ascii.ecsv")


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
    table = _table()
    wavelength = np.asarray(table["wavelength"], dtype=np.float64)
    inside = np.ones(wavelength.size, dtype=bool)
    if low is not None:
        inside &= wavelength >= low
    if high is not None:
        inside &= wavelength <= high
    order = np.argsort(wavelength[inside])
    return wavelength[inside][order], np.asarray(table["intensity"], dtype=np.float64)[inside][order]
