"""The one bridge to stpipe's command line (``strun``), whose entry points are private in stpipe 1.1.

``tmtrun`` runs steps through `step_from_cmdline`; a step run by ``strun`` or ``tmtrun`` reports
its failures as one line (see `liger_iris_pipeline.lib.errors`), which it knows to do through
`under_command_line`. ``tests/test_stpipe_contract.py`` pins the stpipe behaviour both rely on.
"""

import contextlib
import contextvars
import os
import sys

__all__ = ["command_name", "running_command", "step_from_cmdline", "traceback_wanted", "under_command_line"]

_COMMAND = contextvars.ContextVar("liger_iris_pipeline_command", default=None)


def step_from_cmdline(argv):
    """Build a step from command-line arguments and run it, as ``strun`` does.

    Parameters
    ----------
    argv : list of str
        ``[cfg file or step, input, --parameter=value, ...]``.

    Returns
    -------
    stpipe.Step
    """
    from stpipe import _cmdline

    return _cmdline.step_from_cmdline(argv)


def _command_line_code():
    from stpipe import _cmdline

    return _cmdline.step_from_cmdline.__code__


def under_command_line():
    """Return True if the caller runs inside stpipe's command line (``strun`` or ``tmtrun``).

    Returns
    -------
    bool
    """
    target = _command_line_code()
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is target:
            return True
        frame = frame.f_back
    return False


def command_name():
    """Return the name of the command being run: the one set by `running_command`, else the script's."""
    running = _COMMAND.get()
    return running[0] if running else os.path.basename(sys.argv[0] or "strun")


def traceback_wanted():
    """Return True if the command being run asked for tracebacks (``--debug``, ``--verbose``)."""
    from ..lib.errors import traceback_requested

    running = _COMMAND.get()
    return running[1] if running else traceback_requested()


@contextlib.contextmanager
def running_command(name, argv=()):
    """Name the command in progress (for its error messages) for the duration of a ``with`` block.

    Parameters
    ----------
    name : str
        E.g. ``tmtrun``.
    argv : list of str
        Its arguments (``--debug`` or ``--verbose`` there ask for tracebacks).
    """
    from ..lib.errors import traceback_requested

    token = _COMMAND.set((name, traceback_requested(argv)))
    try:
        yield
    finally:
        _COMMAND.reset(token)
