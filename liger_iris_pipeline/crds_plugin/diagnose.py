"""What went wrong with a CRDS look-up, in one line that names the file at fault and the fix.

crds reports a broken cache with a ``(FATAL)`` log message and ``sys.exit(-1)``, a context that
is not in the cache with tracebacks, and a value no rule matches with ``No match found``; it also
logs ``CRDS - ERROR`` lines on stderr. This module checks the cache before crds is asked
(`check_cache`), keeps crds's own log off stderr during a look-up (`quiet`, which passes its
messages on to the ``liger_iris_pipeline.crds`` logger at DEBUG level), and explains a failed
look-up from the input's values and the rules (`explain_lookup`).
"""

import ast
import contextlib
import datetime
import io
import logging
import os
import re
from pathlib import Path

from . import INSTRUMENT, OBSERVATORY, CacheNotFoundError, cache_path

__all__ = ["CrdsSetupError", "check_cache", "context_source", "explain_lookup", "quiet", "read_server_config"]

log = logging.getLogger("liger_iris_pipeline.crds")

SYMBOLIC_LATEST = ("latest", f"{OBSERVATORY}-latest", f"{OBSERVATORY}-operational")


class CrdsSetupError(RuntimeError):
    """The CRDS cache cannot serve look-ups: missing, incomplete, or a mapping that does not load."""


def _build_hint(path):
    return f"`tmt-crds-cache build --path {path}`"


def read_server_config(path):
    """Return the ``config/tmt/server_config`` dictionary of a cache.

    Parameters
    ----------
    path : str or Path
        Cache root.

    Returns
    -------
    dict

    Raises
    ------
    CrdsSetupError
        The file is missing or is not a Python dictionary literal.
    """
    config = Path(path) / "config" / OBSERVATORY / "server_config"
    try:
        info = ast.literal_eval(config.read_text())
    except FileNotFoundError:
        raise CrdsSetupError(f"{config}: no such file; {Path(path)} is not a complete TMT CRDS cache") from None
    except (OSError, ValueError, SyntaxError) as exc:
        reason = " ".join(str(exc).split())
        raise CrdsSetupError(f"{config}: not a CRDS server_config dictionary ({reason}); {_rewrite(path)}") from None
    if not isinstance(info, dict):
        raise CrdsSetupError(f"{config}: not a CRDS server_config dictionary; {_rewrite(path)}")
    return info


def _rewrite(path):
    return f"restore it, or write a new one with `tmt-crds-cache context --path {path} tmt_NNNN.pmap`"


def context_source(path, context=None):
    """Return the context a look-up uses and where it was chosen.

    Parameters
    ----------
    path : Path
        Cache root.
    context : str, optional
        A context named by the caller.

    Returns
    -------
    tuple
        ``(pmap name, description of where it comes from)``.
    """
    if context:
        return context, "requested"
    info = read_server_config(path)
    config = f"{Path(path) / 'config' / OBSERVATORY / 'server_config'}"
    requested = os.environ.get("CRDS_CONTEXT", "").strip()
    if requested and requested.lower() not in SYMBOLIC_LATEST:
        if requested.lower() == f"{OBSERVATORY}-edit":
            return str(info.get("edit_context")), f"CRDS_CONTEXT={requested}, edit_context of {config}"
        return requested, f"CRDS_CONTEXT={requested}"
    # crds 14 reads latest_context, and falls back on operational_context.
    key = "latest_context" if "latest_context" in info else "operational_context"
    if key not in info:
        raise CrdsSetupError(f"{config}: names no context (latest_context)")
    return str(info[key]), f"{key} of {config}"


_GIVEN_PATHS = []
"""Caches a command was given explicitly (``tmt-crds-cache --path``), innermost last: messages name
them as paths, not as ``CRDS_PATH=`` settings the user never made."""


@contextlib.contextmanager
def given_path(path):
    """Within the block, messages about the cache at `path` name the path, not ``CRDS_PATH``."""
    _GIVEN_PATHS.append(str(path))
    try:
        yield
    finally:
        _GIVEN_PATHS.pop()


def _given(path):
    return bool(_GIVEN_PATHS) and _GIVEN_PATHS[-1] == str(path)


def _cache_label(path):
    if os.environ.get("CRDS_PATH") and not _given(path):
        return f"CRDS_PATH={path}"
    return f"the CRDS cache {path}"


def _point_at(path):
    """The advice to use another cache: by the option the path came from."""
    return "give the --path of a TMT CRDS cache" if _given(path) else "point CRDS_PATH at a TMT CRDS cache"


_CHECKED = {}


def check_cache(context=None):
    """Check that the CRDS cache can serve look-ups under a context; raise `CrdsSetupError` if not.

    Checks: the cache directory exists and has ``config/tmt/server_config`` and
    ``mappings/tmt``; the context (``context``, else ``CRDS_CONTEXT``, else the cache's
    ``latest_context``) is in it; that context and every mapping it names load (syntax and
    sha1sum). Results are remembered per cache, context and mapping modification times.

    Parameters
    ----------
    context : str, optional
        The ``.pmap`` to check.

    Returns
    -------
    tuple
        ``(cache root Path, context name)``.
    """
    try:
        path = cache_path()
    except CacheNotFoundError as exc:
        raise CrdsSetupError(str(exc)) from None
    if not path.exists():
        raise CrdsSetupError(
            f"{_cache_label(path)}: no such directory; {_point_at(path)}, or make one there with {_build_hint(path)}"
        )
    if not path.is_dir():
        raise CrdsSetupError(f"{_cache_label(path)}: not a directory; {_point_at(path)}")
    mappings = path / "mappings" / OBSERVATORY
    server_config = path / "config" / OBSERVATORY / "server_config"
    missing = [str(p.relative_to(path)) for p in (server_config, mappings) if not p.exists()]
    if missing:
        raise CrdsSetupError(
            f"{_cache_label(path)}: not a TMT CRDS cache (no {' or '.join(missing)}); "
            f"make one there with {_build_hint(path)}, or {_point_at(path).replace('a TMT CRDS cache', 'one')}"
        )
    name, source = context_source(path, context)
    key = (str(path), name, server_config.stat().st_mtime_ns, mappings.stat().st_mtime_ns)
    if key in _CHECKED:
        return path, name
    if not name.endswith(".pmap") or not (mappings / name).is_file():
        available = ", ".join(sorted(p.name for p in mappings.glob("*.pmap"))) or "none"
        raise CrdsSetupError(
            f"CRDS context {name} ({source}) is not in {_cache_label(path)} "
            f"(its contexts: {available}); select one of those with CRDS_CONTEXT, or unset CRDS_CONTEXT"
        )
    _check_mapping_tree(mappings, name, None, name)
    _CHECKED[key] = True
    return path, name


def _check_mapping_tree(mappings, name, parent, context):
    """Load a mapping and the mappings it names; raise `CrdsSetupError` naming the first that fails."""
    from crds.core import config, rmap

    path = mappings / name
    if not path.is_file():
        raise CrdsSetupError(
            f"{path}: no such mapping file, named by {parent} of CRDS context {context}; "
            "restore it (mappings are versioned with the cache) or select another context with CRDS_CONTEXT"
        )
    try:
        with quiet():
            mapping = rmap.load_mapping(str(path))
    except Exception as exc:  # noqa: BLE001 - syntax, checksum, header: all mean the file is damaged
        reason = " ".join(str(exc).split())
        reason = re.sub(r"^Can't load file \S+ : ", "", reason)
        raise CrdsSetupError(
            f"{path}: CRDS mapping does not load ({reason}); it is part of CRDS context {context}: "
            "restore it, or run `crds checksum` on it after a deliberate edit"
        ) from None
    if name.endswith((".pmap", ".imap")):
        for child in mapping.selector.values():
            if isinstance(child, str) and config.is_mapping(child):
                _check_mapping_tree(mappings, child, name, context)


class _Forward(logging.Handler):
    """Pass crds's log records on to our logger at DEBUG level, and keep its errors."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.errors = []

    def emit(self, record):
        message = " ".join(record.getMessage().split())
        message = re.sub(r"^\(\d+\) - ", "", message)
        if record.levelno >= logging.ERROR:
            self.errors.append(message)
        log.debug("CRDS %s %s", record.levelname, message)


@contextlib.contextmanager
def quiet():
    """Keep crds's log messages (and its stray tracebacks) off stderr for the duration of the block.

    They go to the ``liger_iris_pipeline.crds`` logger at DEBUG level instead. The handler is
    yielded: its ``errors`` list holds crds's ERROR messages, for a caller to report.
    """
    from crds.core import log as crds_log

    crds_logger = crds_log.THE_LOGGER
    console = crds_logger.console
    forward = _Forward()
    if console is not None:
        crds_logger.logger.removeHandler(console)
    crds_logger.logger.addHandler(forward)
    stray = io.StringIO()
    try:
        with contextlib.redirect_stderr(stray):
            yield forward
    finally:
        crds_logger.logger.removeHandler(forward)
        if console is not None:
            crds_logger.logger.addHandler(console)
        if stray.getvalue().strip():
            log.debug("CRDS stderr: %s", stray.getvalue())


# ----------------------------------------------------------------------------- look-up failures


def _fits_keyword(parkey):
    from crds.tmt.locate import CROSS_STRAPPED_KEYWORDS

    return CROSS_STRAPPED_KEYWORDS.get(parkey.upper(), [parkey.upper()])[0]


def _matches(rule_value, value):
    rule_value = str(rule_value)
    if rule_value in ("N/A", "*"):
        return True
    return str(value).upper() in {part.strip().upper() for part in rule_value.split("|")}


def _bad_date_time(values):
    """Return the problem with the observation date and time (the UseAfter keys), or None."""
    date = values.get("meta.observation.date")
    time = values.get("meta.observation.time")
    if date in (None, "", "UNDEFINED"):
        return "has no DATE-OBS (observation date, YYYY-MM-DD), which CRDS selects references by; add it to the header"
    try:
        datetime.date.fromisoformat(str(date))
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(date)):
            raise ValueError("not YYYY-MM-DD")
    except ValueError as exc:
        return (
            f"invalid DATE-OBS={date!r} ({exc}): CRDS selects references by the observation date, "
            "YYYY-MM-DD; correct the header"
        )
    if time in (None, "", "UNDEFINED"):
        return None  # crds takes midnight
    if not re.fullmatch(r"\d{2}:\d{2}:\d{2}(\.\d+)?", str(time)):
        return f"invalid TIME-OBS={time!r} (not hh:mm:ss[.sss]): CRDS selects references by it; correct the header"
    try:
        datetime.time.fromisoformat(str(time)[:8])
    except ValueError as exc:
        return f"invalid TIME-OBS={time!r} ({exc}): CRDS selects references by it; correct the header"
    return None


def _no_rule(reftype, rmapping, values, context):
    """Explain which of the input's values no rule of an rmap matches, or None if some rule does."""
    match_keys, date_keys = rmapping.parkey[0], rmapping.parkey[1] if len(rmapping.parkey) > 1 else ()
    rows = [tuple(row) for row in rmapping.todict()["selections"]]
    kind = reftype.upper()
    hint = f"add a rule (see docs/crds_ingest.rst) or pass override_{reftype}"
    for index, key in enumerate(match_keys):
        value = values.get(key.lower(), "UNDEFINED")
        remaining = [row for row in rows if _matches(row[index], value)]
        if not remaining:
            offered = ", ".join(sorted({repr(row[index]) for row in rows}))
            return (
                f"no {kind} rule matches {_fits_keyword(key)}={value!r} in {rmapping.basename} "
                f"(CRDS context {context}; its rules have {_fits_keyword(key)} {offered}); {hint}"
            )
        rows = remaining
    if date_keys:
        date = values.get("meta.observation.date")
        time = values.get("meta.observation.time") or "00:00:00"
        first = min(row[len(match_keys)] for row in rows)
        if f"{date} {time}" < first:
            shown = " ".join(f"{_fits_keyword(k)}={values.get(k.lower())!r}" for k in date_keys)
            return (
                f"no {kind} rule in {rmapping.basename} (CRDS context {context}) covers {shown}: "
                f"the first {kind} for these values is used after {first}; {hint}"
            )
    return None


def explain_lookup(parameters, reftype, context=None, cause=None):
    """Explain why CRDS gave no usable reference of a type for an input, in one line (no file prefix).

    Parameters
    ----------
    parameters : dict
        The input's CRDS parameters (``meta.*`` keys).
    reftype : str
        Reference type, e.g. ``dark``.
    context : str, optional
        The context used; default the one `check_cache` finds.
    cause : BaseException, optional
        crds's exception, quoted when nothing better is known.

    Returns
    -------
    str
    """
    import crds
    from crds.core import rmap

    path, context = check_cache(context)  # a broken cache raises CrdsSetupError, the better message
    values = {key.lower(): value for key, value in parameters.items()}
    bad_date = _bad_date_time(values)
    if bad_date:
        return bad_date
    pmap = rmap.get_cached_mapping(str(path / "mappings" / OBSERVATORY / context))
    instrument = str(values.get("meta.instrument.name", INSTRUMENT)).lower()
    try:
        imap = pmap.get_imap(instrument)
    except Exception:  # noqa: BLE001 - the context has no such instrument
        return f"CRDS context {context} has no rules for INSTRUME={instrument.upper()!r}"
    try:
        rmapping = imap.get_rmap(reftype)
    except Exception:  # noqa: BLE001 - the type is not in the imap
        return (
            f"CRDS context {context} has no {reftype.upper()} rules ({imap.basename}); "
            f"add them, or pass override_{reftype}"
        )
    with quiet():
        try:
            name = crds.getrecommendations(parameters, reftypes=[reftype], context=context, observatory=OBSERVATORY)[
                reftype
            ]
        except Exception:  # noqa: BLE001 - nothing selected: explained below from the rules
            name = None
    if name and not str(name).startswith("NOT FOUND") and name != "N/A":
        located = Path(crds.locate_file(name, OBSERVATORY))
        if not located.exists():
            return (
                f"the {reftype.upper()} rule in {rmapping.basename} (CRDS context {context}) selects {name}, "
                f"which is not in the cache ({located.parent}): build it with {_build_hint(path)}, "
                "or copy it there from the cache it was published with"
            )
    explained = _no_rule(reftype, rmapping, values, context)
    if explained:
        return explained
    reason = " ".join(str(cause).split()).rstrip(".") if cause is not None else "unknown reason"
    return f"no usable {reftype.upper()} reference in CRDS context {context} ({reason}); pass override_{reftype}"
