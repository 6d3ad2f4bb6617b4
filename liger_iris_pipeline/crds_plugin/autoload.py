"""Register the ``tmt`` observatory in every process that imports ``crds``.

The stock ``crds`` command runs each tool as ``python -m crds.<tool>`` in a child process and
multiprocessing "spawn" workers start fresh interpreters, so registering in the parent process
is not enough. ``liger_iris_pipeline_crds.pth`` (installed into site-packages) puts a one-shot
finder on ``sys.meta_path`` at interpreter start; on the first ``import crds`` it calls
`crds_spec`, which returns crds's own module spec with a loader that registers the plugin right
after ``crds/__init__.py`` has run. Importing crds eagerly from the ``.pth`` would instead cost
about a second per interpreter, and even importing this module there would cost a few module
look-ups, which is why the finder itself lives inline in the ``.pth`` line.
"""

import importlib.util


class _RegisteringLoader:
    """Wrap crds's loader: execute the package, then register the plugin."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        """Delegate module creation to the wrapped loader."""
        return self._loader.create_module(spec)

    def exec_module(self, module):
        """Execute ``crds/__init__.py``, then register ``tmt``."""
        self._loader.exec_module(module)
        try:
            from . import register

            register()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not make crds unusable in the environment
            import warnings

            warnings.warn(f"liger_iris_pipeline could not register the tmt CRDS observatory: {exc}", stacklevel=2)

    def __getattr__(self, name):
        # Resource readers and the other optional loader APIs pass through unchanged.
        return getattr(self._loader, name)


def crds_spec():
    """Return the module spec of ``crds`` with a loader that registers the plugin after import.

    Called by the ``.pth`` finder after it has removed itself from ``sys.meta_path``, so the
    look-up below reaches the ordinary finders.

    Returns
    -------
    importlib.machinery.ModuleSpec or None
        None if crds is not installed.
    """
    spec = importlib.util.find_spec("crds")
    if spec is not None and spec.loader is not None:
        spec.loader = _RegisteringLoader(spec.loader)
    return spec
