"""Data reduction pipeline for the TMT IRIS and Keck Liger imagers and spectrographs.

Subpackages, steps and pipelines are imported on first use so that ``import liger_iris_pipeline``
stays fast: ``liger_iris_pipeline.ProcessImagerL2Pipeline`` imports stpipe only when asked for.
"""

import importlib
import importlib.metadata

try:
    __version__ = importlib.metadata.version(__name__)
except importlib.metadata.PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

_SUBMODULES = ("datamodels", "simulate", "readout", "associations", "pipeline", "dqflags")


def _step_classes():
    from .stpipe.integration import STEPS

    return {path.rsplit(".", 1)[1]: path.rsplit(".", 1)[0] for path, _, _ in STEPS}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    module = _step_classes().get(name)
    if module is not None:
        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES, *_step_classes()])
