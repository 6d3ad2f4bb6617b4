"""``tmtrun``: run a liger_iris_pipeline step or pipeline from the command line.

It is stpipe's command line (``strun``) with the package's defaults: CRDS through the ``tmt``
plugin, the shipped ``.cfg`` files found by name, versions of the whole stack, and a non-zero
exit status with a one-line error on any failure::

    tmtrun image2.cfg asn.json
    tmtrun liger_iris_pipeline.ProcessImagerL2Pipeline sci_rate.fits --steps.flat_field.override_flat=f.fits
    tmtrun detector1 exposure_uncal.fits --output_dir out
    tmtrun --list-cfgs | --copy-cfgs DIR | --version | --help
"""

import logging
import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["cfg_files", "main"]

USAGE = """usage: tmtrun <cfg file | step alias | Step class> <input file or association> [--parameter=value ...]

Run a liger_iris_pipeline step or pipeline. Shipped configurations (found by name when not in
the working directory): {cfgs}. Steps and pipelines: {aliases}.

options:
  -h, --help          this message (with a step or cfg: that step's parameters)
  --version           versions of liger_iris_pipeline, iris_readout and the STScI stack
  --list-cfgs         list the shipped .cfg files
  --copy-cfgs DIR     copy the shipped .cfg files into DIR
Everything else is stpipe's command line (strun): --output_dir, --save-parameters, --log-level...
"""


def cfg_files():
    """Return ``{name: path}`` of the ``.cfg`` files shipped with the package."""
    folder = resources.files("liger_iris_pipeline.pipeline") / "cfgs"
    return {
        entry.name: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".cfg")
    }


def _versions():
    import crds
    import stdatamodels
    import stpipe

    from .. import __version__
    from ..readout import version as readout_version

    try:
        readout = readout_version()
    except ImportError as exc:
        readout = f"not built ({exc})"
    return (
        f"liger_iris_pipeline {__version__}\niris_readout {readout}\nstpipe {stpipe.__version__}\n"
        f"stdatamodels {stdatamodels.__version__}\ncrds {crds.__version__}"
    )


def _resolve_cfg(argv):
    """Point a shipped cfg given by bare name (``image2.cfg``) at the package's copy."""
    if argv and argv[0].endswith(".cfg") and not Path(argv[0]).exists():
        shipped = cfg_files().get(Path(argv[0]).name)
        if shipped is not None:
            return [str(shipped), *argv[1:]]
    return argv


def main(argv=None):
    """Run ``tmtrun``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 1 on any error (2 for usage errors).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        from .integration import STEPS

        print(USAGE.format(cfgs=", ".join(cfg_files()), aliases=", ".join(alias for _, alias, _ in STEPS)))
        return 0 if argv else 2
    if argv[0] == "--version":
        print(_versions())
        return 0
    if argv[0] == "--list-cfgs":
        for name, path in cfg_files().items():
            print(f"{name}\t{path}")
        return 0
    if argv[0] == "--copy-cfgs":
        if len(argv) != 2:
            print("tmtrun: error: --copy-cfgs needs one directory", file=sys.stderr)
            return 2
        target = Path(argv[1])
        target.mkdir(parents=True, exist_ok=True)
        for name, path in cfg_files().items():
            shutil.copy(path, target / name)
            print(target / name)
        return 0

    from stpipe import _cmdline
    from stpipe.exceptions import StpipeExitException

    from ..crds_plugin import configure_environment

    configure_environment()
    try:
        _cmdline.step_from_cmdline(_resolve_cfg(argv))
    except StpipeExitException as exc:
        return exc.exit_status
    except SystemExit as exc:  # argparse errors inside stpipe
        return exc.code if isinstance(exc.code, int) else 1
    except Exception as exc:  # every failure must give a non-zero status and a readable message
        logging.getLogger(__name__).debug("tmtrun failed", exc_info=True)
        print(f"tmtrun: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
