"""cffi (API mode) build of the iris_readout C library for Python.

``setup.py`` declares ``cffi_modules=["liger_iris_pipeline/readout/_build_ffi.py:ffibuilder"]``;
running this file as a script compiles the extension in place, next to this
file, for development::

    python liger_iris_pipeline/readout/_build_ffi.py
"""

import os
import re
import shutil
import tempfile
from pathlib import Path

from cffi import FFI

_ROOT = Path(__file__).resolve().parents[2]
_C = _ROOT / "iris_readout"
HEADER = _C / "include" / "iris_readout.h"

# "#define IRIS_NAME value": an integer constant of the header
_DEFINE = re.compile(r"#\s*define\s+(IRIS_\w+)\s+\S")
_DIRECTIVE = re.compile(r"#\s*(\w+)\s*(.*)$")


def cdef_from_header(text):
    """Return the cffi ``cdef`` of the public header ``text``: its declarations, unchanged.

    A small, strict transformation, so that the binding can never drift from
    the header: comments are removed; ``#include``, the include guard and the
    ``#ifdef __cplusplus`` blocks (``extern "C"``) are dropped; ``#define
    IRIS_NAME value`` becomes ``#define IRIS_NAME ...``, for which cffi takes
    the integer value from the compiled header (no expression is re-typed or
    evaluated here).  Any other preprocessor directive raises ValueError: a
    header this cannot turn into a cdef fails the build loudly.

    Parameters
    ----------
    text : str
        Contents of ``iris_readout.h``.

    Returns
    -------
    str
        Declarations for ``FFI.cdef``.
    """
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    text = text.replace("\\\n", " ")
    lines = []
    stack = []  # one entry per open #if: whether its lines are kept
    guard = None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        directive = _DIRECTIVE.match(stripped)
        if directive is None:
            if stripped and all(stack):
                lines.append(line.rstrip())
            continue
        name, rest = directive.group(1), directive.group(2).strip()
        if name in ("if", "ifdef", "ifndef"):
            if not all(stack) or (name == "ifdef" and rest == "__cplusplus"):
                stack.append(False)
            elif name == "ifndef" and guard is None and not stack:
                guard = rest
                stack.append(True)
            else:
                raise ValueError(f"iris_readout.h line {number}: #{name} {rest} is not understood by the cdef builder")
        elif name == "endif":
            if not stack:
                raise ValueError(f"iris_readout.h line {number}: #endif without #if")
            stack.pop()
        elif not all(stack) or name == "include" or (name == "define" and rest == guard):
            continue
        elif name == "define" and _DEFINE.match(stripped):
            lines.append(f"#define {_DEFINE.match(stripped).group(1)} ...")
        else:
            raise ValueError(f"iris_readout.h line {number}: #{name} {rest} is not understood by the cdef builder")
    if stack:
        raise ValueError("iris_readout.h: #if without #endif")
    return "\n".join(lines) + "\n"


# derived from the header at build time: never a hand-kept copy
CDEF = cdef_from_header(HEADER.read_text())


def make_ffi(absolute=False):
    """FFI builder; source paths relative to the working directory (as
    setuptools wants them) unless ``absolute``."""

    def path(p):
        return str(p) if absolute else os.path.relpath(p, os.getcwd())

    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        "liger_iris_pipeline.readout._iris_readout_ffi",
        '#include "iris_readout.h"',
        sources=sorted(path(p) for p in (_C / "src").glob("*.c")),
        include_dirs=[path(_C / "include")],
        depends=[
            path(HEADER),
            path(_C / "src" / "internal.h"),
            path(_C / "src" / "kernel.inc"),
        ],
        # -fno-math-errno lets sqrtf vectorise (the library never reads errno);
        # -ffp-contract=fast gives fused multiply-adds in the AVX2+FMA kernel
        extra_compile_args=["-O3", "-fopenmp", "-std=c11", "-fno-math-errno", "-ffp-contract=fast"],
        extra_link_args=["-fopenmp"],
        libraries=["m"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    # build in a scratch directory, then put the module next to this file
    with tempfile.TemporaryDirectory() as tmp:
        built = make_ffi(absolute=True).compile(tmpdir=tmp, verbose=False)
        shutil.copy(built, Path(__file__).resolve().parent)
