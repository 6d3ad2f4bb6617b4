"""Add reference files to a TMT CRDS cache as a new context, all or nothing; switch contexts atomically.

`ingest` does what ``docs/crds_ingest.rst`` walks through by hand: certify each file, name it
with the next free serial, insert it into a new version of its type's rmap (selection from its
header: DETECTOR, SUBARRAY, READPATT, FILTER, PUPIL, USEAFTER; a keyword it does not carry, or
``SUBARRAY = FULL``, matches any value), write the new imap and pmap with their sha1sums,
certify them, check that each file is selected for its own header, and make the new pmap the
cache's context (``latest_context``, the key crds 14 reads, with ``operational_context`` and
``edit_context``). Until that last step, which is one rename of ``config/tmt/server_config``,
nothing the cache selects has changed; any failure removes every file the ingest wrote.
"""

import ast
import os
import pprint
import re
import shutil
import tempfile
from pathlib import Path

from . import INSTRUMENTS, OBSERVATORY, REFERENCE_TYPES, configure_environment
from .diagnose import CrdsSetupError, check_cache, quiet, read_server_config

__all__ = ["IngestError", "ingest", "server_config_text", "set_context"]

CONTEXT_KEYS = ("latest_context", "operational_context", "edit_context")
"""The server_config entries naming the cache's context: crds 14 selects with ``latest_context``."""


class IngestError(RuntimeError):
    """A file cannot be ingested; the cache is unchanged."""


def _serial(name):
    match = re.search(r"_(\d+)\.\w+$", name)
    return int(match.group(1)) if match else 0


def _next_name(prefix, extension, *folders, taken=()):
    """Return ``<prefix>_<next serial>.<extension>`` after every such name in `folders` and `taken`."""
    names = [p.name for folder in folders for p in Path(folder).glob(f"{prefix}_*{extension}")]
    names += [name for name in taken if name.startswith(prefix + "_")]
    serial = max([_serial(name) for name in names if re.fullmatch(rf"{prefix}_\d+{extension}", name)], default=0)
    return f"{prefix}_{serial + 1:04d}{extension}"


def set_context(path, context):
    """Make a context the cache's context, atomically (``server_config`` written aside, then renamed).

    A ``server_config`` that does not load is replaced by a new cache's, naming `context`.

    Parameters
    ----------
    path : str or Path
        Cache root.
    context : str
        A ``.pmap`` in ``mappings/tmt`` of the cache.

    Raises
    ------
    CrdsSetupError
        The context is not in the cache or does not load.
    """
    from ..lib.output import writing

    path = Path(path)
    if not (path / "mappings" / OBSERVATORY / context).is_file():
        available = ", ".join(sorted(p.name for p in (path / "mappings" / OBSERVATORY).glob("*.pmap")))
        raise CrdsSetupError(f"{path}: no CRDS context {context} in mappings/{OBSERVATORY} (it has: {available})")
    config = path / "config" / OBSERVATORY / "server_config"
    try:
        info = read_server_config(path)
    except CrdsSetupError:  # unreadable: start again from a new cache's
        config.parent.mkdir(parents=True, exist_ok=True)
        info = ast.literal_eval(server_config_text(context))
    with _cache_env(path):
        check_cache(context)
    info.update(dict.fromkeys(CONTEXT_KEYS, context))
    with writing(config) as temporary:
        Path(temporary).write_text(pprint.pformat(info, sort_dicts=False) + "\n")


def server_config_text(context):
    """Return the ``server_config`` of a new serverless cache whose context is `context`."""
    import crds

    info = {
        "observatory": OBSERVATORY,
        "operational_context": context,
        "edit_context": context,
        "latest_context": context,
        "bad_files_list": [],
        "bad_files": "",
        "last_synced": "2024-01-01 00:00:00",
        "force_remote_mode": False,
        "effective_mode": "local",
        "crds_version": {"str": crds.__version__},
        "reference_url": {},
        "mapping_url": {},
    }
    return pprint.pformat(info, sort_dicts=False) + "\n"


class _cache_env:  # noqa: N801 - used as a context manager, like contextlib's
    """Point crds at a cache (CRDS_PATH, no CRDS_CONTEXT) for the duration of a ``with`` block."""

    def __init__(self, path):
        self.path = str(path)

    def __enter__(self):
        self.saved = {key: os.environ.get(key) for key in ("CRDS_PATH", "CRDS_CONTEXT")}
        os.environ["CRDS_PATH"] = self.path
        os.environ.pop("CRDS_CONTEXT", None)
        configure_environment()
        return self

    def __exit__(self, *exc):
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        return False


def _reference_header(file):
    """Return the primary header of a reference file, checking it is a TMT reference of a known type."""
    from astropy.io import fits

    try:
        header = fits.getheader(file)
    except FileNotFoundError:
        raise IngestError(f"{file}: no such file") from None
    except OSError as exc:
        raise IngestError(f"{file}: not a FITS file ({' '.join(str(exc).split())})") from None
    reftype = str(header.get("REFTYPE", "")).lower()
    if reftype not in REFERENCE_TYPES:
        raise IngestError(
            f"{file}: REFTYPE={header.get('REFTYPE')!r} is not a reference type of the TMT cache "
            f"({', '.join(REFERENCE_TYPES)}); is it a calibration pipeline's product?"
        )
    if str(header.get("INSTRUME", "")).lower() not in INSTRUMENTS:
        instrument = header.get("INSTRUME")
        raise IngestError(
            f"{file}: INSTRUME={instrument!r}, the cache holds references of "
            f"{', '.join(name.upper() for name in INSTRUMENTS)}"
        )
    if not header.get("USEAFTER"):
        raise IngestError(f"{file}: no USEAFTER keyword (the date from which the reference applies)")
    return header


def _crds_errors(handler, before):
    from crds.core import log as crds_log

    return handler.errors if crds_log.errors() > before else []


def _certify(files, context, what):
    """Run crds certify on files; raise `IngestError` with crds's first error."""
    from crds.certify import certify
    from crds.core import log as crds_log

    for file, label in files:
        before = crds_log.errors()
        with quiet() as handler:
            certify.certify_files([str(file)], context, skip_banner=True, check_rmap=False)
        errors = _crds_errors(handler, before)
        if errors:
            raise IngestError(f"{label}: crds certify against {context} ({what}): {errors[0]}")


def ingest(files, path=None, log=print):
    """Ingest reference files into a cache as a new context, which becomes the cache's context.

    Parameters
    ----------
    files : list of str or Path
        Reference files (e.g. the ``_dark`` and ``_flat`` products of ``tmtrun master_dark.cfg``
        and ``tmtrun preprocess_flatfield.cfg``).
    path : str or Path, optional
        Cache root; default `liger_iris_pipeline.crds_plugin.cache_path`.
    log : callable
        Receives one line per ingested file and one for the new context.

    Returns
    -------
    str
        The new context (``tmt_NNNN.pmap``).

    Raises
    ------
    IngestError, CrdsSetupError
        Nothing was changed in the cache.
    """
    from . import cache_path

    if not files:
        raise IngestError("no files to ingest")
    path = Path(path) if path is not None else cache_path()
    with _cache_env(path):
        _, context = check_cache(read_server_config(path).get("latest_context"))
        return _ingest(files, path, context, log)


def _ingest(files, path, context, log):
    from crds.core import rmap

    mappings = path / "mappings" / OBSERVATORY
    headers = {Path(file): _reference_header(file) for file in files}
    if len({p.resolve() for p in headers}) != len(headers):
        raise IngestError("the same file is given twice")
    pmap = rmap.get_cached_mapping(str(mappings / context))
    by_instrument = {}
    for file, header in headers.items():
        by_instrument.setdefault(str(header["INSTRUME"]).lower(), {})[file] = header
    written = []  # files moved into the cache, removed on failure
    with tempfile.TemporaryDirectory(prefix=".ingest-", dir=path) as scratch:
        scratch = Path(scratch)
        staged, moves, new_mappings, new_imaps = {}, [], [], {}
        for instrument, instrument_headers in sorted(by_instrument.items()):
            if instrument.upper() not in pmap.selections:
                first = next(iter(instrument_headers))
                raise IngestError(f"{first}: CRDS context {context} has no {instrument.upper()} rules to add it to")
            references = path / "references" / OBSERVATORY / instrument
            references.mkdir(parents=True, exist_ok=True)
            names, imap_name, rmaps = _stage_instrument(
                instrument, instrument_headers, pmap.get_imap(instrument), path, context, scratch
            )
            staged.update(names)
            moves += [(scratch / name, references / name) for name in names.values()]
            new_mappings += rmaps
            new_imaps[instrument] = imap_name
        new_pmap = _next_name(OBSERVATORY, ".pmap", mappings)
        pmap_copy = rmap.load_mapping(str(mappings / context))
        for instrument, imap_name in new_imaps.items():
            pmap_copy.selector[instrument.upper()] = imap_name
        _write_mapping(pmap_copy, scratch / new_pmap, context)
        mapping_names = [n for _, n in new_mappings] + [*new_imaps.values(), new_pmap]

        try:
            moves += [(scratch / name, mappings / name) for name in mapping_names]
            for source, target in moves:
                if target.exists():
                    raise IngestError(f"{target}: already exists; another ingest may be running")
                os.replace(source, target)
                written.append(target)
            check_cache(new_pmap)
            new_files = [mappings / name for name in mapping_names]
            _certify([(file, file) for file in new_files], context, "new mapping")
            _check_selection(headers, staged, new_pmap)
            set_context(path, new_pmap)
        except BaseException:
            for target in written:
                target.unlink(missing_ok=True)
            raise
    for file, name in staged.items():
        instrument = str(headers[file]["INSTRUME"]).lower()
        log(f"ingested {file} as {path / 'references' / OBSERVATORY / instrument / name}")
    changed = ", ".join([*new_imaps.values(), *(name for _, name in new_mappings)])
    log(f"{new_pmap} ({changed}) is now the context of {path} (was {context})")
    return new_pmap


def _stage_instrument(instrument, headers, imap, path, context, scratch):
    """Write one instrument's new references, rmaps and imap into `scratch`, certified.

    Returns
    -------
    tuple
        ``({file: staged reference name}, new imap name, [(reftype, new rmap name), ...])``.
    """
    from crds.core import log as crds_log
    from crds.core import rmap
    from crds.refactoring import refactor

    mappings = path / "mappings" / OBSERVATORY
    references = path / "references" / OBSERVATORY / instrument
    prefix = f"{OBSERVATORY}_{instrument}"
    staged, by_type = {}, {}
    for file, header in headers.items():
        reftype = str(header["REFTYPE"]).lower()
        existing = _named_files(imap, reftype)
        name = _next_name(f"{prefix}_{reftype}", ".fits", references, taken=[*existing, *staged.values()])
        shutil.copyfile(file, scratch / name)
        staged[file] = name
        by_type.setdefault(reftype, []).append(scratch / name)
    _certify([(scratch / staged[file], file) for file in headers], context, "reference file")

    new_mappings = []
    for reftype, refs in sorted(by_type.items()):
        if reftype.upper() not in imap.selections:
            raise IngestError(f"{refs[0].name}: CRDS context {context} has no {reftype.upper()} rmap to add it to")
        old = imap.get_rmap(reftype)
        new_name = _next_name(f"{prefix}_{reftype}", ".rmap", mappings)
        before = crds_log.errors()
        with quiet() as handler:
            refactor.rmap_insert_references(
                str(mappings / old.basename), str(scratch / new_name), [str(r) for r in refs], OBSERVATORY
            )
        errors = _crds_errors(handler, before)
        if errors or not (scratch / new_name).exists():
            reason = errors[0] if errors else "no change"
            raise IngestError(f"{refs[0].name}: not inserted into {old.basename}: {reason}")
        _rename_mapping(scratch / new_name, old.basename)
        new_mappings.append((reftype, new_name))

    new_imap = _next_name(prefix, ".imap", mappings)
    imap_copy = rmap.load_mapping(str(mappings / imap.basename))
    for reftype, new_name in new_mappings:
        imap_copy.selector[reftype.upper()] = new_name
    _write_mapping(imap_copy, scratch / new_imap, imap.basename)
    return staged, new_imap, new_mappings


def _named_files(imap, reftype):
    """Return the reference files an imap's rmap of a type names (none if it has no such rmap)."""
    if reftype.upper() not in imap.selections:
        return []
    return [name for *_, name in imap.get_rmap(reftype).todict()["selections"]]


def _rename_mapping(file, derived_from):
    from crds.core import rmap

    _write_mapping(rmap.load_mapping(str(file), ignore_checksum=True), file, derived_from)


def _write_mapping(mapping, file, derived_from):
    """Write a mapping under its new name: header ``name`` and ``derived_from``, new sha1sum."""
    mapping.header["name"] = Path(file).name
    mapping.header["derived_from"] = derived_from
    mapping.write(str(file))


def _check_selection(headers, staged, context):
    """Check each ingested file is what the new context selects for its own header's values."""
    import crds
    from crds.core import rmap
    from crds.tmt.locate import fits_to_parkeys, reference_keys_to_dataset_keys

    pmap = rmap.get_cached_mapping(context)
    for file, header in headers.items():
        reftype = str(header["REFTYPE"]).lower()
        instrument = str(header["INSTRUME"]).upper()
        rmapping = pmap.get_imap(instrument.lower()).get_rmap(reftype)
        values = reference_keys_to_dataset_keys(rmapping, fits_to_parkeys(dict(header)))
        parameters = {key: values[key] for key in rmapping.get_required_parkeys() if key in values}
        parameters = {key: ("ANY" if value == "N/A" else value) for key, value in parameters.items()}
        parameters["META.INSTRUMENT.NAME"] = instrument
        with quiet():
            selected = crds.getrecommendations(parameters, reftypes=[reftype], context=context, observatory=OBSERVATORY)
        if selected.get(reftype) != staged[file]:
            raise IngestError(
                f"{file}: the new context {context} selects {selected.get(reftype)} for this file's own values, "
                f"not {staged[file]}"
            )
