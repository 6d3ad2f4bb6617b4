"""``tmtrun``: run a liger_iris_pipeline step or pipeline from the command line.

It is stpipe's command line (``strun``) with the package's defaults: CRDS through the ``tmt``
plugin, the shipped ``.cfg`` files found by name, versions of the whole stack, and a non-zero
exit status with a one-line error on any failure::

    tmtrun image2.cfg asn.json
    tmtrun liger_iris_pipeline.ProcessImagerL2Pipeline sci_rate.fits --steps.flat_field.override_flat=f.fits
    tmtrun detector1 exposure_uncal.fits --output_dir out
    tmtrun --list-cfgs | --copy-cfgs DIR | --version | --help
"""

import contextlib
import shutil
import sys
from importlib import resources
from pathlib import Path

__all__ = ["cfg_files", "main"]

USAGE = """usage: tmtrun <cfg file | step alias | Step class> <input file or association> [--parameter=value ...]

Run a liger_iris_pipeline step or pipeline. Shipped configurations (found by name when not in
the working directory): {cfgs}. Steps and pipelines: {aliases}.

options:
  -h, --help [STEP]   this message; with a step, pipeline or cfg: its parameters
  --version           versions of liger_iris_pipeline, iris_readout and the STScI stack
  --list-cfgs         list the shipped .cfg files
  --copy-cfgs DIR     copy the shipped .cfg files into DIR
  --debug, --verbose  on failure, also print the traceback (--verbose: all log messages)
Everything else is stpipe's command line (strun): --output_dir, --save-parameters, --log-level...
Log messages go to stdout (--log-stream=stderr to change it); a failure is one line on stderr,
"tmtrun: error: <file>: <problem>", with exit status 1.
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


def _has_option(argv, name):
    return any(arg == name or arg.startswith(name + "=") for arg in argv)


def _prepare(argv):
    """Return stpipe's arguments for a tmtrun command line, after checking what tmtrun can check first.

    A shipped cfg given by name is found; a ``.cfg`` file is checked (syntax, class, parameters,
    with line numbers); log messages go to stdout unless the user chose a stream, so that stderr
    carries only the failure line.
    """
    from ..stpipe.cfg_check import check_cfg_file

    argv = _resolve_cfg(argv)
    target = argv[0]
    if target.endswith(".cfg"):
        if not Path(target).is_file():
            raise FileNotFoundError(f"{target}: no such parameter file (shipped: {', '.join(cfg_files())})")
        check_cfg_file(target)
    elif not Path(target).is_file():  # an ASDF parameter file is checked by stpipe; anything else names a step
        from stpipe import Step, utilities

        try:
            utilities.import_class(utilities.resolve_step_class_alias(target), Step)
        except (ImportError, AttributeError, TypeError, ValueError):
            raise ValueError("neither a parameter file nor a step or pipeline (`tmtrun --help` lists them)") from None
    if not any(_has_option(argv, option) for option in ("--log-stream", "--log-file", "--logcfg")):
        argv = [*argv, "--log-stream=stdout"]
    return argv


def main(argv=None, prog="tmtrun"):
    """Run ``tmtrun``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    prog : str
        Command name in error messages (``liger-iris-demo`` runs tmtrun as part of itself).

    Returns
    -------
    int
        0 on success, 1 on any error (2 for usage errors).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        if len(argv) > 1:  # tmtrun --help image2: the parameters of image2
            return main([*argv[1:], "--help"], prog)
        from ..stpipe.integration import STEPS

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

    from stpipe.exceptions import StpipeExitException

    from ..crds_plugin import configure_environment
    from ..lib.errors import run_command
    from ..stpipe.cmdline import running_command, step_from_cmdline

    def run():
        # Failures inside a run are reported (one line) by the step itself, which exits with SystemExit.
        stpipe_argv = _prepare(argv)
        with contextlib.suppress(Exception):
            configure_environment()  # a broken CRDS set-up is reported by the first look-up, with its fix
        try:
            with running_command(prog, argv):
                step_from_cmdline(stpipe_argv)
        except StpipeExitException as exc:
            return exc.exit_status
        return 0

    try:
        return run_command(prog, run, argv=argv, file=argv[0])
    except SystemExit as exc:  # argparse usage errors, and failures already reported
        return exc.code if isinstance(exc.code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
