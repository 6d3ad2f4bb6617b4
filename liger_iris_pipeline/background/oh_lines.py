"""The OH night-sky line list of the sky scaling, with each line's vibrational band (``data/oh_lines.ecsv``).

The 30 strongest OH lines of Rousselot et al. (2000, A&A 354, 1134) in each of the Y, J, H and K
broad bands (the 8 of Z), vacuum wavelengths and relative intensities of the Keck NIRSPEC
compilation of that list as distributed with PypeIt
(``pypeit/data/arc_lines/NIST/OH_R24000_vacuum.ascii``). The band (``"v'-v''"``) of each line is
computed from the OH term values (the file's header says how). Wavelengths in microns, in vacuum
(``docs/ifs_design.rst``); the file is the pipeline's own copy of these values (the simulator keeps
its own, so that neither imports the other), as ``wavecal``'s arc-line list is.
"""

from ..lib.line_lists import packaged_lines

__all__ = ["OH_LINE_FILE", "oh_lines"]

OH_LINE_FILE = "data/oh_lines.ecsv"
"""The line list, relative to this package."""


def oh_lines(low=None, high=None):
    """Return ``(wavelength, band)`` of the OH lines between ``low`` and ``high`` (vacuum microns, None: no limit).

    The wavelengths are float64, sorted; the bands (``"v'-v''"``) str.
    """
    return packaged_lines(__package__, OH_LINE_FILE, ("wavelength", "band"), low, high)
