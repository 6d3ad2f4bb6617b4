"""``tmt-quicklook``: quick-look PNGs (and DS9 region files) of products.

::

    tmt-quicklook sim_science_001_cal.fits
    tmt-quicklook out/*_rate.fits raw/*_uncal.fits --output-dir quicklook

For each file: ``<name>.png`` (`render.render_png`) and, for Level 1, 2 and 3 images and IFS
cubes, ``<name>.reg`` with the sources `operations.qa.detected_sources` finds (fk5 circles when the
product has a WCS; a cube's sources are those of its white-light image, placed by its spatial
WCS). A spectrum and an IFS detector frame (whose pixels are spectra) have no sources to mark:
no region file, said in a log line. Outputs go beside each input unless ``--output-dir`` is given. A file that
cannot be shown is reported on one line (``tmt-quicklook: error: <file>: <problem>``) and leaves
no output; the others are still done, and the exit status is 1.
"""

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "quicklook_files"]

PROG = "tmt-quicklook"

log = logging.getLogger(__name__)


def quicklook_files(path, output_dir=None):
    """Write the PNG (and the region file of a Level 1+ image or a cube) of one file: both, or neither.

    Parameters
    ----------
    path : str or os.PathLike
        A Level 0, 1, 2 or 3 file of this package (IFS cubes and spectra included).
    output_dir : str or os.PathLike, optional
        Where to write; default beside the input.

    Returns
    -------
    list of str
        The files written.
    """
    from .. import datamodels
    from ..lib.output import OutputTransaction
    from ..operations.qa import detected_sources
    from .regions import CUBE_RADIUS_SPAXELS, DEFAULT_RADIUS_PIXELS, write_ds9_regions
    from .render import product_wcs, render_png

    path = Path(path)
    folder = Path(output_dir) if output_dir is not None else path.parent
    stem = path.name.removesuffix(".fits")
    with datamodels.open(path) as model, OutputTransaction([(path, "input")]):
        written = [render_png(model, folder / f"{stem}.png")]
        if isinstance(model, datamodels.IRISSpectrumModel | datamodels.IRISIFSImageModel):
            kind = "spectrum" if isinstance(model, datamodels.IRISSpectrumModel) else "detector frame of spectra"
            log.info("%s: no sources to mark on a %s: no region file", path, kind)
        elif not isinstance(model, datamodels.TMTRampModel):
            radius = CUBE_RADIUS_SPAXELS if isinstance(model, datamodels.IRISCubeModel) else DEFAULT_RADIUS_PIXELS
            regions = folder / f"{stem}.reg"
            written.append(write_ds9_regions(detected_sources(model), product_wcs(model), regions, radius))
    return written


def main(argv=None):
    """Run ``tmt-quicklook``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every file was shown, 1 when any failed, 2 for usage errors.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Quick-look PNGs (zscale, compass, scale bar, masked pixels in magenta) and DS9 region files "
        "of Level 0 ramps, Level 1 and 2 frames, Level 3 mosaics, IFS cubes (white-light image and summed "
        "spectrum) and spectra.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="products (FITS) to show")
    parser.add_argument("--output-dir", metavar="DIR", help="where to write (default: beside each file)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    arguments = parser.parse_args(argv)

    from ..lib.errors import command_failed

    if not logging.getLogger().hasHandlers():  # the one-line notes (a spectrum has no region file) on stderr
        logging.basicConfig(level=logging.INFO, format=f"{PROG}: %(message)s")

    if arguments.output_dir is not None:
        output_dir = Path(arguments.output_dir)
        if output_dir.exists() and not output_dir.is_dir():
            return command_failed(PROG, NotADirectoryError(f"{output_dir}: not a directory"))
        output_dir.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in arguments.files:
        try:
            for written in quicklook_files(path, arguments.output_dir):
                print(written)
        except Exception as exc:  # one line per bad file, and on to the next
            status = command_failed(PROG, exc, path, show_traceback=arguments.debug)
    return status


if __name__ == "__main__":
    sys.exit(main())
