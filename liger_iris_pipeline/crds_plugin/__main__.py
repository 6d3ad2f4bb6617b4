"""Run a stock crds tool with the ``tmt`` observatory registered.

``python -m liger_iris_pipeline.crds_plugin <tool> [args...]`` is the same as ``crds <tool> [args...]``
for environments where the package's ``.pth`` hook is not installed (for instance a plain
``PYTHONPATH`` checkout): ``list``, ``bestrefs``, ``certify``, ``checksum``, ``refactor2``,
``newcontext``, ``diff``, ``matches``, ``uses``...
"""

import runpy
import sys

from . import configure_environment

# The stock ``crds`` script's names for tools that do not live at crds.<tool>.
_TOOL_MODULES = {
    "refactor": "crds.refactoring.refactor",
    "refactor2": "crds.refactoring.refactor2",
    "newcontext": "crds.refactoring.newcontext",
    "checksum": "crds.refactoring.checksum",
    "uniqname": "crds.misc.uniqname",
}


def main(argv=None):
    """Run ``crds.<tool>`` as ``__main__`` with the remaining arguments.

    Parameters
    ----------
    argv : list of str, optional
        ``[tool, *arguments]``; default ``sys.argv[1:]``.
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    configure_environment()
    tool, *arguments = argv
    module = _TOOL_MODULES.get(tool, f"crds.{tool}")
    sys.argv = [module, *arguments]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
