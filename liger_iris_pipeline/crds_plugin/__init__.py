"""Teach stock ``crds`` (14.x) the ``tmt`` observatory and locate this package's CRDS cache.

crds reaches observatory code only through ``import crds.<observatory>`` and accepts only the
names in ``crds.core.constants.ALL_OBSERVATORIES``; `register` extends both at run time, so no
fork of crds is needed. ``crds`` itself is imported only inside the functions: the module is
imported at every interpreter start by the ``.pth`` hook (see `autoload`) and must stay cheap.
"""

import os

__all__ = [
    "INSTRUMENTS",
    "OBSERVATORY",
    "REFERENCE_TYPES",
    "CacheNotFoundError",
    "cache_path",
    "configure_environment",
    "is_registered",
    "register",
]

from ..reference_types import INSTRUMENTS as _REGISTRY_INSTRUMENTS
from ..reference_types import REFERENCE_TYPES as _REGISTRY

OBSERVATORY = "tmt"

INSTRUMENTS = _REGISTRY_INSTRUMENTS
"""Instruments of the ``tmt`` observatory in CRDS (lower case), from the reference-type registry."""

INSTRUMENT = "iris"
"""The default instrument (of a dataset that does not say which)."""

REFERENCE_TYPES = tuple(_REGISTRY)
"""Reference types the steps ask CRDS for (`liger_iris_pipeline.reference_types`); the imaps of the
shipped context name exactly each instrument's."""

# os.path rather than pathlib: this module is imported at interpreter start-up, pathlib is not.
_PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

CHECKOUT_CACHE = os.path.join(os.path.dirname(os.path.dirname(_PLUGIN_DIR)), "crds_cache")
"""The ``crds_cache/`` of the source checkout the package runs from (it may not exist)."""


class CacheNotFoundError(RuntimeError):
    """No CRDS cache with TMT mappings could be located."""


def register():
    """Make the ``tmt`` observatory known to the imported ``crds`` package.

    Idempotent: calling it again (or from the import hook and explicitly) changes nothing.

    Returns
    -------
    bool
        True if this call registered the observatory, False if it already was.
    """
    import crds
    from crds.core import constants, utils

    if is_registered():
        return False
    if _PLUGIN_DIR not in crds.__path__:
        crds.__path__.append(_PLUGIN_DIR)
    if OBSERVATORY not in constants.ALL_OBSERVATORIES:
        # In place: every crds module holds a reference to this same list object.
        constants.ALL_OBSERVATORIES.append(OBSERVATORY)
    _observatory_from_cache()
    # These lookups were memoised over the old observatory list.
    for cached in (
        utils.observatory_instrument_tuples,
        utils.instrument_to_observatory,
        utils.get_all_instrument_fixers,
    ):
        cached.cache.clear()
    return True


def _observatory_from_cache():
    """Set ``CRDS_OBSERVATORY=tmt`` when ``CRDS_PATH`` is a cache of TMT mappings only.

    crds takes the observatory from ``CRDS_OBSERVATORY``, else from ``CRDS_SERVER_URL``, else
    from the names of files on the command line, and defaults to ``jwst``: with a TMT cache, the
    stock ``crds`` tools (``crds list``, ``crds diff crds://...``) would look for JWST files.
    Nothing is changed when either variable is set or the cache also holds another observatory.
    """
    # Importing crds stores its unset default in the environment as the string "None".
    chosen = os.environ.get("CRDS_OBSERVATORY", "").lower() not in ("", "none")
    if chosen or os.environ.get("CRDS_SERVER_URL") or not os.environ.get("CRDS_PATH"):
        return
    try:
        observatories = os.listdir(os.path.join(os.environ["CRDS_PATH"], "mappings"))
    except OSError:
        return
    if observatories == [OBSERVATORY]:
        os.environ["CRDS_OBSERVATORY"] = OBSERVATORY


def is_registered():
    """Return True if ``crds`` is imported and knows the ``tmt`` observatory.

    Returns
    -------
    bool
        Whether `register` has taken effect in this process.
    """
    import sys

    crds = sys.modules.get("crds")
    if crds is None or _PLUGIN_DIR not in crds.__path__:
        return False
    from crds.core import constants

    return OBSERVATORY in constants.ALL_OBSERVATORIES


def cache_path():
    """Return the CRDS cache this package uses.

    ``CRDS_PATH`` wins when set. Otherwise, in a source checkout, the repository's
    ``crds_cache/`` (its mappings are versioned there, its references built by
    ``tmt-crds-cache build``).

    Returns
    -------
    pathlib.Path
        The cache root (containing ``mappings/tmt``).

    Raises
    ------
    CacheNotFoundError
        ``CRDS_PATH`` is unset and the package is not running from a source checkout.
    """
    from pathlib import Path

    if os.environ.get("CRDS_PATH"):
        return Path(os.environ["CRDS_PATH"]).expanduser()
    source_cache = Path(CHECKOUT_CACHE)
    if (source_cache / "mappings" / OBSERVATORY).is_dir():
        return source_cache
    raise CacheNotFoundError(
        "no TMT CRDS cache: CRDS_PATH is not set and the package does not run from a source checkout; "
        "set CRDS_PATH to a TMT CRDS cache, or make one with `tmt-crds-cache build --path DIR` "
        "and set CRDS_PATH=DIR"
    )


def configure_environment():
    """Set this package's CRDS defaults in ``os.environ`` and register the plugin.

    Only variables the user has not set are filled in: ``CRDS_PATH`` (see `cache_path`),
    ``CRDS_OBSERVATORY=tmt``, ``CRDS_READONLY_CACHE=1`` (pipeline runs must never modify the
    cache) and ``STPIPE_DISABLE_CRDS_STEPPARS=true`` (the TMT contexts define no ``pars-*``
    step-parameter references, and stpipe would log an error for each lookup).
    ``CRDS_SERVER_URL`` is left alone: unset, crds works serverless on the local cache.

    Returns
    -------
    pathlib.Path
        The cache in use.
    """
    path = cache_path()
    os.environ.setdefault("CRDS_PATH", str(path))
    os.environ.setdefault("CRDS_OBSERVATORY", OBSERVATORY)
    os.environ.setdefault("CRDS_READONLY_CACHE", "1")
    os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")
    register()
    return path
