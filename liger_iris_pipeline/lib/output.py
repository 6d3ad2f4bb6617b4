"""Writing products safely: never over an input, and all of a run's products or none.

Every file a data model writes goes through `writing`: it is written under a temporary name in
its final folder and renamed into place. Inside an `OutputTransaction` (a pipeline or step run,
see `liger_iris_pipeline.stpipe.core`), the renames wait until the whole run has succeeded, so
a run that fails leaves no product at all, and a product whose name is one of the run's inputs
or references (compared as files: symlinks and hard links included) is refused.
"""

import contextlib
import contextvars
import os
import re
import uuid

__all__ = [
    "OutputError",
    "OutputTransaction",
    "active_transaction",
    "outside_transaction",
    "partial_files",
    "same_file",
    "writing",
]

_ACTIVE = contextvars.ContextVar("liger_iris_pipeline_output_transaction", default=None)


class OutputError(ValueError):
    """A product would overwrite an input, a reference, or another product of the same run."""


def same_file(first, second):
    """Return True if two paths name the same file (after symlinks; hard links included).

    Parameters
    ----------
    first, second : str or os.PathLike
        Paths; they need not exist.

    Returns
    -------
    bool
    """
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet: compare where they would be
        return os.path.realpath(first) == os.path.realpath(second)


def active_transaction():
    """Return the `OutputTransaction` of the run in progress, or None."""
    return _ACTIVE.get()


@contextlib.contextmanager
def outside_transaction():
    """Write files at once, not as products of the run in progress (scratch files such as a library's frames)."""
    token = _ACTIVE.set(None)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


class OutputTransaction:
    """The products of one run: staged under temporary names, renamed into place together.

    Parameters
    ----------
    protected : iterable of (str, str)
        ``(path, role)`` of the files no product may replace (``role`` says what the file is
        in messages: ``input``, ``association member``, ``dark reference``...).

    Use as a context manager: on a normal exit every staged product is renamed to its final
    name (`commit`); on an exception every staged file is deleted (`abort`).
    """

    def __init__(self, protected=()):
        self._protected = []
        self._staged = []
        self._token = None
        for path, role in protected:
            self.protect(path, role)

    def protect(self, path, role):
        """Add a file that no product may replace.

        Parameters
        ----------
        path : str or os.PathLike
            The file.
        role : str
            What it is, for messages.
        """
        self._protected.append((os.fspath(path), role))

    def check(self, path):
        """Raise `OutputError` if a product at `path` would replace a protected file or another product.

        Parameters
        ----------
        path : str or os.PathLike
            Final name of a product.
        """
        for protected, role in self._protected:
            if same_file(path, protected):
                raise OutputError(
                    f"{protected}: refusing to overwrite the {role} with a product of this run ({path}); "
                    "give the output another name or folder"
                )
        for _, final in self._staged:
            if same_file(path, final):
                raise OutputError(f"{path}: two products of this run would have the same name")

    def stage(self, temporary, final):
        """Record a product written under a temporary name, to be renamed at `commit`."""
        self._staged.append((os.fspath(temporary), os.fspath(final)))

    def commit(self):
        """Check every product once more, then rename them all into place.

        Returns
        -------
        list of str
            The final paths.
        """
        staged, self._staged = self._staged, []
        try:
            for index, (_, final) in enumerate(staged):
                self._staged = staged[:index]
                self.check(final)
        except OutputError:
            self._staged = staged
            raise
        for temporary, final in staged:
            os.replace(temporary, final)
        return [final for _, final in staged]

    def abort(self):
        """Delete every staged file."""
        for temporary, _ in self._staged:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        self._staged = []

    def __enter__(self):
        self._token = _ACTIVE.set(self)
        return self

    def __exit__(self, exc_type, exc, tb):
        _ACTIVE.reset(self._token)
        if exc_type is None:
            try:
                self.commit()
            except BaseException:
                self.abort()
                raise
        else:
            self.abort()
        return False


_TEMPORARY_NAME = re.compile(r"^\..+\.\d+-[0-9a-f]{12}\.part(\.[^.]*)?$")
"""The names `writing` gives files until they are complete: ``.<stem>.<pid>-<12 hex>.part<extension>``."""


def partial_files(folder):
    """Return the files in `folder` still under `writing`'s temporary names.

    A writer killed before its rename (a worker lost mid-write, a power cut) leaves such a file:
    incomplete, and never a product. Only a process that knows no writer is at work in the folder
    may delete them.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder (not searched recursively); it need not exist.

    Returns
    -------
    list of str
        Sorted paths.
    """
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(folder, name) for name in names if _TEMPORARY_NAME.match(name))


@contextlib.contextmanager
def writing(final):
    """Yield a temporary path to write a file to; it becomes `final` when complete.

    Outside a transaction the file is renamed as soon as the block ends; inside one, when the
    transaction commits. A block that raises leaves nothing behind.

    Parameters
    ----------
    final : str or os.PathLike
        Where the file must end up.

    Yields
    ------
    str
        The temporary path: in the same folder (so the rename is atomic), with the same extension.
    """
    final = os.fspath(final)
    transaction = active_transaction()
    if transaction is not None:
        transaction.check(final)
    folder, name = os.path.split(os.path.abspath(final))
    stem, extension = os.path.splitext(name)
    # Not mkstemp: its 0600 mode would stay with the product; the writer creates the file under the umask.
    # The name follows _TEMPORARY_NAME, which `partial_files` recognises.
    temporary = os.path.join(folder, f".{stem}.{os.getpid()}-{uuid.uuid4().hex[:12]}.part{extension}")
    try:
        yield temporary
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if transaction is not None:
        transaction.stage(temporary, final)
    else:
        os.replace(temporary, final)
