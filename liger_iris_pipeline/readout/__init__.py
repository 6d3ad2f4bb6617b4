"""Ramp fitting with the iris_readout C library.

Importing this package is cheap and works even when the compiled extension
is absent; the extension is loaded on first use of :func:`fit_ramp`,
:class:`RampFitter`, :func:`combine_integrations` or :func:`version` (an
ImportError then says how to build it).
"""

__all__ = [
    "CombinedResult",
    "IrisReadoutError",
    "RampFitResult",
    "RampFitter",
    "combine_integrations",
    "fit_ramp",
    "sum_reads",
    "version",
]


def __getattr__(name):
    # the binding imports numpy; defer it until a name is actually used
    if name in __all__:
        from liger_iris_pipeline.readout import binding

        return getattr(binding, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
