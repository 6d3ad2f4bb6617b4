"""Observatory policies crds asks ``crds.tmt.locate`` for: file naming, cache layout, header keywords.

crds calls these functions by name (``crds.core.utils.get_locator_module``). TMT names files
``tmt_<instrument>_<filekind>_<serial>.<ext>`` and keeps references in
``$CRDS_PATH/references/tmt/<instrument>/``. Rmaps select on the datamodel paths (``META.*``);
the reference and science files carry the FITS keywords those paths are written to, and
`CROSS_STRAPPED_KEYWORDS` tells crds they are the same thing.
"""

import os.path
import re

from crds.core import config, exceptions, timestamp, utils
from crds.io import abstract

from liger_iris_pipeline.reference_types import REFERENCE_TYPES, UNTYPED_REF_FILES

from . import FILEKINDS, INSTRUMENTS, TYPES

HERE = os.path.dirname(__file__) or "."

OBSERVATORY = "tmt"

CROSS_STRAPPED_KEYWORDS = {
    "META.TELESCOPE": ["TELESCOP"],
    "META.INSTRUMENT.NAME": ["INSTRUME"],
    "META.INSTRUMENT.DETECTOR": ["DETECTOR"],
    "META.INSTRUMENT.FILTER": ["FILTER"],
    "META.INSTRUMENT.PUPIL": ["PUPIL"],
    "META.INSTRUMENT.IFS_MODE": ["IFSMODE"],
    "META.INSTRUMENT.SPAXEL_SCALE": ["SPAXSCL"],
    "META.SUBARRAY.NAME": ["SUBARRAY"],
    "META.EXPOSURE.READOUT_MODE": ["READPATT"],
    "META.EXPOSURE.TYPE": ["EXP_TYPE"],
    "META.OBSERVATION.DATE": ["DATE-OBS"],
    "META.OBSERVATION.TIME": ["TIME-OBS"],
    "META.REFTYPE": ["REFTYPE"],
    "META.USEAFTER": ["USEAFTER"],
    "META.PEDIGREE": ["PEDIGREE"],
    "META.DESCRIPTION": ["DESCRIP"],
    "META.AUTHOR": ["AUTHOR"],
    "META.MODEL_TYPE": ["DATAMODL"],
}
"""Datamodel path -> FITS keywords holding the same value (the schemas' ``fits_keyword``)."""

FILEKIND_KEYWORDS = {**UNTYPED_REF_FILES, **{entry.name: entry.keyword for entry in REFERENCE_TYPES.values()}}
"""Reference type -> FITS keyword of ``meta.ref_file.<type>.name`` (from `liger_iris_pipeline.reference_types`)."""

# Type-table look-ups crds expects the locator to expose.
get_all_tpninfos = TYPES.get_all_tpninfos
get_row_keys_by_instrument = TYPES.get_row_keys_by_instrument
get_item = TYPES.get_item
suffix_to_filekind = TYPES.suffix_to_filekind
filekind_to_suffix = TYPES.filekind_to_suffix

_SUBARRAY = "META.SUBARRAY.NAME"
_NAME_RE = re.compile(r"^tmt(_[a-z0-9]+)?(_[a-z0-9-]+)?(_[0-9]+)?$")


# ----------------------------------------------------------------------------- certify


def tpn_path(tpn_file):
    """Return the path of a certify rules file shipped in ``tpns/``."""
    return os.path.join(HERE, "tpns", tpn_file)


def get_extra_tpninfos(refpath):
    """Return no file-specific certify rules: all of them are static, in ``tpns/``."""
    return []


def project_check(refpath, rmap=None):
    """Check that a reference file opens as the data model it declares, with valid metadata.

    Parameters
    ----------
    refpath : str
        The reference file being certified.
    rmap : crds.core.rmap.ReferenceMapping, optional
        The rmap it is checked against (certify passes it; unused).

    Raises
    ------
    crds.core.exceptions.ValidationError
        The file is not a valid liger_iris_pipeline reference file.
    """
    from liger_iris_pipeline import datamodels

    try:
        with datamodels.open(refpath) as model:
            model.validate()
    except Exception as exc:
        raise exceptions.ValidationError("liger_iris_pipeline data model check:", str(exc)) from exc


# ----------------------------------------------------------------------------- names


def match_context_key(key):
    """Return `key` in the case rmaps use for it: TMT parkeys are upper case."""
    return key.upper()


def decompose_newstyle_name(filename):
    """Split a TMT file name into its fields.

    Parameters
    ----------
    filename : str
        E.g. ``./tmt_iris_dark_0001.fits`` or ``tmt_0001.pmap``.

    Returns
    -------
    tuple
        ``(directory, observatory, instrument, filekind, serial, extension)``; fields a
        name does not have (the filekind of an imap...) are empty strings.

    Raises
    ------
    AssertionError
        The name does not follow the TMT convention (crds expects this exception type).
    """
    path = os.path.dirname(filename)
    name, ext = os.path.splitext(os.path.basename(filename))
    parts = name.split("_")
    assert parts[0] == OBSERVATORY and _NAME_RE.match(name), f"Invalid TMT file name {filename!r}"
    serial = parts[-1] if parts[-1].isdigit() else ""
    fields = parts[1:-1] if serial else parts[1:]
    if ext == ".pmap":
        assert not fields, f"Invalid .pmap name {filename!r}"
        fields = ["", ""]
    elif ext == ".imap":
        assert len(fields) == 1, f"Invalid .imap name {filename!r}"
        fields = [fields[0], ""]
    else:
        assert len(fields) == 2, f"Invalid reference or rmap name {filename!r}"
    instrument, filekind = fields
    assert instrument in [*INSTRUMENTS, ""], f"Invalid instrument {instrument!r} in name {filename!r}"
    assert filekind in [*FILEKINDS, ""], f"Invalid filekind {filekind!r} in name {filename!r}"
    return path, OBSERVATORY, instrument, filekind, serial, ext


def get_reference_properties(filename):
    """Return `decompose_newstyle_name` fields, read from the header if the name is not a TMT name."""
    try:
        return decompose_newstyle_name(filename)
    except AssertionError:
        return ref_properties_from_header(filename)


def ref_properties_from_header(filename):
    """Return `decompose_newstyle_name` fields of a reference file from its INSTRUME and REFTYPE keywords.

    Parameters
    ----------
    filename : str
        A reference file whose name does not follow the TMT convention.

    Returns
    -------
    tuple
        ``(directory, "tmt", instrument, filekind, serial, extension)``, the serial being the
        file's root name.
    """
    from crds import data_file

    path = os.path.dirname(filename)
    root, ext = os.path.splitext(os.path.basename(filename))
    header = data_file.get_free_header(filename, (), None, OBSERVATORY)
    instrument = header.get("INSTRUME", header.get("META.INSTRUMENT.NAME", "UNDEFINED")).lower()
    filekind = header.get("REFTYPE", header.get("META.REFTYPE", "UNDEFINED")).lower()
    if instrument not in INSTRUMENTS or filekind not in FILEKINDS:
        raise exceptions.CrdsNamingError(
            f"cannot tell the TMT instrument and reference type of {filename!r}: "
            f"INSTRUME={instrument.upper()!r} REFTYPE={filekind.upper()!r}"
        )
    return path, OBSERVATORY, instrument, filekind, root, ext


def get_file_properties(filename):
    """Return ``(instrument, filekind)`` of a mapping or reference file (empty strings where not applicable)."""
    if config.is_mapping(filename):
        return decompose_newstyle_name(filename)[2:4]
    return get_reference_properties(filename)[2:4]


# ----------------------------------------------------------------------------- headers


def header_to_reftypes(header, context=None):
    """Return the reference types a dataset needs: an empty list, which crds reads as "every type"."""
    return []


def reference_keys_to_dataset_keys(rmapping, header):
    """Turn a reference file's header into the dataset values its rmap entry matches.

    Used by ``crds refactor2 insert_reference``: USEAFTER becomes the observation date and
    time; a parkey keyword the reference does not carry means "any value" (``N/A``); and a
    full-frame reference (``SUBARRAY = FULL``) serves every subarray, since the steps cut
    subarrays out of full-frame references.

    Parameters
    ----------
    rmapping : crds.core.rmap.ReferenceMapping
        The rmap the reference is inserted into.
    header : dict
        The reference file's (cross-strapped) header.

    Returns
    -------
    dict
        The header with the rmap's parkeys set to the values to match.
    """
    result = dict(header)
    for key in rmapping.get_required_parkeys():
        value = str(result.get(key, "UNDEFINED"))
        if value in ("UNDEFINED", ""):
            result[key] = "N/A"
        elif key == _SUBARRAY and value.upper() == "FULL":
            result[key] = "N/A"
    useafter = header.get("META.USEAFTER", header.get("USEAFTER"))
    if useafter not in (None, "UNDEFINED"):
        date, time = timestamp.reformat_date(useafter).split()
        result["META.OBSERVATION.DATE"] = result["DATE-OBS"] = date
        result["META.OBSERVATION.TIME"] = result["TIME-OBS"] = time
    return result


def condition_matching_header(rmapping, header):
    """Normalise header values to the form rmaps store them in."""
    return utils.condition_header(header)


def fits_to_parkeys(header):
    """Return `header` with each FITS keyword also under its datamodel path."""
    parkeys = dict(header)
    for path, keywords in CROSS_STRAPPED_KEYWORDS.items():
        for keyword in keywords:
            if keyword in header and path not in parkeys:
                parkeys[path] = header[keyword]
    return parkeys


def get_static_pairs():
    """Return the (keyword, synonym) pairs of `CROSS_STRAPPED_KEYWORDS`, both ways."""
    return abstract.equivalence_dict_to_pairs(CROSS_STRAPPED_KEYWORDS)


def get_cross_strapped_pairs(header):
    """Return the keyword synonyms crds fills into every header it reads; the same for every header."""
    return get_static_pairs()


def filekind_to_keyword(filekind):
    """Return the FITS keyword that records the reference of a type (``R_DARK``...).

    Parameters
    ----------
    filekind : str
        Reference type, any case.

    Returns
    -------
    str
        The schema's keyword; for a type the schema does not know yet, ``R_`` plus the first
        six letters of the type, so ``crds bestrefs --update-bestrefs`` never writes a
        HIERARCH card.
    """
    filekind = filekind.lower()
    return FILEKIND_KEYWORDS.get(filekind, "R_" + filekind.upper().replace("-", "")[:6])


# ----------------------------------------------------------------------------- cache layout


def get_env_prefix(instrument):
    """Return the prefix of reference names recorded in headers (``crds://``)."""
    return "crds://"


def locate_file(refname, mode=None, parameters=None):
    """Return the cache path of a reference or mapping file, from its name alone.

    Parameters
    ----------
    refname : str
        File name (a directory part is ignored).
    mode : str, optional
        Cache subdirectory mode (``instrument`` or ``flat``); default from the cache's config.
    parameters : dict, optional
        Dataset header, used for the instrument when the name does not tell it.

    Returns
    -------
    str
    """
    try:
        instrument = get_reference_properties(refname)[2]
    except Exception:
        instrument = utils.header_to_instrument(parameters or {}).lower()
    return os.path.join(locate_dir(instrument, mode), os.path.basename(refname))


def locate_dir(instrument, mode=None):
    """Return the cache directory of an instrument's references.

    Parameters
    ----------
    instrument : str
        E.g. ``iris``.
    mode : str, optional
        ``instrument`` (``references/tmt/<instrument>/``, what the TMT cache uses) or ``flat``
        (``references/tmt/``); default from ``config/tmt/ref_cache_subdir_mode``.

    Returns
    -------
    str
    """
    if mode is None:
        mode = config.get_crds_ref_subdir_mode(observatory=OBSERVATORY)
    config.check_crds_ref_subdir_mode(mode)
    refpath = config.get_crds_refpath(OBSERVATORY)
    if mode == "instrument":
        return os.path.join(refpath, instrument.lower())
    if mode == "flat":
        return refpath
    raise ValueError(f"TMT CRDS caches use the 'instrument' or 'flat' layout, not {mode!r}")


__all__ = [
    "CROSS_STRAPPED_KEYWORDS",
    "FILEKIND_KEYWORDS",
    "TYPES",
    "condition_matching_header",
    "decompose_newstyle_name",
    "filekind_to_keyword",
    "fits_to_parkeys",
    "get_cross_strapped_pairs",
    "get_env_prefix",
    "get_extra_tpninfos",
    "filekind_to_suffix",
    "get_all_tpninfos",
    "get_file_properties",
    "get_item",
    "get_row_keys_by_instrument",
    "get_reference_properties",
    "header_to_reftypes",
    "locate_dir",
    "locate_file",
    "match_context_key",
    "project_check",
    "ref_properties_from_header",
    "reference_keys_to_dataset_keys",
    "suffix_to_filekind",
    "tpn_path",
]
