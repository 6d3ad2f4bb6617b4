"""Line lists the pipeline carries as ECSV tables in its packages (arc lamps, OH night sky)."""

from functools import cache
from importlib import resources

import numpy as np
from astropy.table import Table

__all__ = ["packaged_lines"]


@cache
def _table(package, path):
    with resources.as_file(resources.files(package) / path) as file:
        return Table.read(file, format="ascii.ecsv")


def packaged_lines(package, path, columns, low=None, high=None):
    """Return columns of a packaged line list for the lines between two wavelengths, sorted by wavelength.

    Parameters
    ----------
    package : str
        The package holding the table.
    path : str
        The ECSV table relative to the package, with a ``wavelength`` column (vacuum microns).
    columns : tuple of str
        The columns to return.
    low, high : float or None
        Wavelength range (microns); None: no limit.

    Returns
    -------
    tuple of numpy.ndarray
        One array per column.
    """
    table = _table(package, path)
    wavelength = np.asarray(table["wavelength"], dtype=np.float64)
    inside = np.ones(wavelength.size, dtype=bool)
    if low is not None:
        inside &= wavelength >= low
    if high is not None:
        inside &= wavelength <= high
    order = np.argsort(wavelength[inside])
    return tuple(np.asarray(table[name])[inside][order] for name in columns)
