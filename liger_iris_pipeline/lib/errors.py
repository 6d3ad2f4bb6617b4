"""Failures as users of the command-line tools see them: one line naming the file and the problem.

Every command (``tmtrun``, ``tmt-asn``, ``tmt-crds-cache``, ``liger-iris-demo``, and ``strun`` on
this package's steps) reports a failure as ``<command>: error: <file>: <problem>`` on stderr and
exits with a non-zero status; the traceback is printed too only when the user asks for it
(``--debug`` or ``--verbose``).
"""

import os
import re
import sys
import traceback

__all__ = ["command_failed", "failure_message", "one_line", "run_command", "traceback_requested"]

DEBUG_FLAGS = ("--debug", "--verbose", "-v")
"""Command-line flags that ask for tracebacks."""

_FILE_FIRST = re.compile(r"^[^\s:]+\.(fits|fit|fts|json|cfg|asdf|pmap|imap|rmap)(\[\w+\])?: ")
"""A message that already starts with the file at fault."""


def one_line(exc):
    """Return the message of an exception on one line (whitespace and line breaks collapsed).

    Exceptions whose message says nothing without their type (``KeyError('x')``) keep the
    type's name.

    Parameters
    ----------
    exc : BaseException
        The failure.

    Returns
    -------
    str
    """
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError | AttributeError | IndexError) or not text:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text


def traceback_requested(argv=None):
    """Return True if the command line asks for tracebacks (``--debug``, ``--verbose`` or ``-v``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments; default ``sys.argv``.

    Returns
    -------
    bool
    """
    return any(flag in DEBUG_FLAGS for flag in (sys.argv if argv is None else argv))


def command_failed(prog, exc, file=None, show_traceback=False):
    """Print the one-line report of a failure on stderr and return the exit status (1).

    Parameters
    ----------
    prog : str
        The command (``tmtrun``...).
    exc : BaseException
        The failure.
    file : str or os.PathLike, optional
        The file the command was working on, named when the message does not name it already.
    show_traceback : bool
        Print the traceback before the line.

    Returns
    -------
    int
        1.
    """
    if show_traceback:
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{prog}: error: {failure_message(exc, file)}", file=sys.stderr, flush=True)
    return 1


def failure_message(exc, file=None):
    """Return the one line that reports a failure: ``<file>: <problem>`` (`command_failed` without the command).

    Parameters
    ----------
    exc : BaseException
        The failure.
    file : str or os.PathLike, optional
        The file being worked on, named when the message does not name it already.

    Returns
    -------
    str
    """
    message = one_line(exc)
    if file is not None:
        file = os.fspath(file)
        name = os.path.basename(file)
        if message.startswith(f"{name}: "):  # models know their file by name only: give the path typed
            message = f"{file}: {message[len(name) + 2 :]}"
        elif not _FILE_FIRST.match(message):
            message = f"{file}: {message}"
    return message


def run_command(prog, function, argv=None, file=None):
    """Run a command's body and turn any failure into `command_failed`'s one line.

    Parameters
    ----------
    prog : str
        The command.
    function : callable
        The command's body, returning its exit status.
    argv : list of str, optional
        The command's arguments (for ``--debug``/``--verbose``); default ``sys.argv``.
    file : str, optional
        The file the command works on, for messages that do not name one.

    Returns
    -------
    int
        The body's exit status, 1 after a failure, 130 after an interrupt.
    """
    try:
        return function()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except SystemExit:
        raise
    except Exception as exc:  # every failure becomes one line; --debug shows the traceback as well
        return command_failed(prog, exc, file, show_traceback=traceback_requested(argv))
