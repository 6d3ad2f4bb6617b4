"""Data reduction pipeline for the TMT IRIS and Keck Liger imagers and spectrographs.

Subpackages are imported on first use so that ``import liger_iris_pipeline`` stays fast.
"""

import importlib

__version__ = "0.1.0"

_SUBMODULES = ("datamodels", "simulate", "readout")


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_SUBMODULES])
