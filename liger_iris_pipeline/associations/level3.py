"""Level 3 associations: the calibrated science frames (``_cal``) of one target and filter -> one product.

The JSON document of the JWST pipeline, with one product::

    {"asn_type": "image3", "asn_rule": "candidate_Image3", "asn_pool": "...",
     "products": [{"name": "m31_Kbb", "members": [{"expname": "a_cal.fits", "exptype": "science"},
                                                  {"expname": "b_cal.fits", "exptype": "science"}]}]}

Member names are relative to the association file's directory. ``image3`` reads it through
`liger_iris_pipeline.datamodels.library.ModelLibrary`.
"""

import json
import os
from pathlib import Path

from .asn import AssociationError, check_members_exist, read_document, validate_document, write_document

__all__ = [
    "association_members",
    "check_level3_members",
    "level3_product_name",
    "make_level3_asn",
    "read_level3_asn",
]


def _validate(document, path):
    validate_document(document, path, schema="level3_asn", kind="Level 3 association")


def read_level3_asn(path):
    """Read and validate a Level 3 association.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file.

    Returns
    -------
    dict
        The association document (member names as written, relative to the file's directory).

    Raises
    ------
    AssociationError
        Unreadable JSON or a schema violation (for example a Level 2 association).
    """
    document = read_document(path)
    _validate(document, path)
    return document


def check_level3_members(paths):
    """Raise `AssociationError` unless the files are calibrated imager frames of one instrument and filter.

    Parameters
    ----------
    paths : list of str or os.PathLike
        The member files.

    Returns
    -------
    list of dict
        Per member: ``path``, ``instrument``, ``filter``, ``target``, ``level`` (from the primary header).
    """
    from astropy.io import fits

    from ..datamodels import DataModelError
    from ..datamodels.open_model import declared_model_type

    described = []
    for path in map(Path, paths):
        if not path.is_file():
            raise AssociationError(f"{path}: no such file (science member)")
        try:
            model_type = declared_model_type(path)
        except DataModelError as exc:
            raise AssociationError(f"{exc} (science member)") from None
        if model_type != "IRISImageModel":
            raise AssociationError(
                f"{path}: a Level 3 member must be a calibrated imager frame (IRISImageModel), "
                f"this file is a {model_type}"
            )
        header = fits.getheader(path, 0)
        level = header.get("PROCLEVL")
        if level != 2:
            raise AssociationError(
                f"{path}: a Level 3 member must be a Level 2 (calibrated, _cal) frame, PROCLEVL is {level}"
            )
        described.append(
            {
                "path": path,
                "instrument": header.get("INSTRUME"),
                "filter": header.get("FILTER"),
                "target": header.get("TARGNAME"),
            }
        )
    for key in ("instrument", "filter"):
        values = sorted({str(member[key]) for member in described})
        if len(values) > 1:
            raise AssociationError(
                f"Level 3 members have different {key}s ({', '.join(values)}): one association per {key}"
            )
    return described


def level3_product_name(members):
    """Check the members (`check_level3_members`, one target too) and return ``<target>_<filter>``.

    Parameters
    ----------
    members : list of str or os.PathLike
        The ``_cal`` frames.

    Returns
    -------
    str
        The target name and filter, characters other than letters, digits, ``-`` and ``.`` as ``_``.
    """
    import re

    described = check_level3_members(members)
    targets = sorted({str(member["target"]) for member in described})
    if len(targets) > 1:
        raise AssociationError(
            f"Level 3 members have different targets ({', '.join(targets)}): one association per target"
        )
    name = f"{targets[0]}_{described[0]['filter']}"
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def make_level3_asn(members, product_name, output=None, pool="liger_iris_pipeline"):
    """Build (and optionally write) a Level 3 association of calibrated frames.

    Parameters
    ----------
    members : list of str or os.PathLike
        The ``_cal`` frames.
    product_name : str
        Base name of the products (``<product>_i2d.fits``, ``<product>_cat.ecsv``).
    output : str or os.PathLike, optional
        Write it there; member names are then relative to its directory.
    pool : str
        The ``asn_pool`` value.

    Returns
    -------
    dict
        The association document (validated).
    """
    if not members:
        raise AssociationError("a Level 3 association needs at least one science frame")
    base = Path(output).resolve().parent if output is not None else Path.cwd()
    document = {
        "asn_type": "image3",
        "asn_rule": "candidate_Image3",
        "asn_pool": pool,
        "products": [
            {
                "name": product_name,
                "members": [
                    {"expname": os.path.relpath(Path(name).resolve(), base), "exptype": "science"} for name in members
                ],
            }
        ],
    }
    _validate(document, output or "<association>")
    if output is not None:
        write_document(document, output, members)
    return document


def association_members(path, check_files=True):
    """Return the member files of a Level 2 or Level 3 association, science members first.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file.
    check_files : bool
        Raise if a member file does not exist.

    Returns
    -------
    list of pathlib.Path
        Resolved against the association's directory; the first is the first science member,
        whose metadata selects CRDS references and parameters.

    Raises
    ------
    AssociationError
        Unreadable, or valid as neither level (the Level 2 reader's message).
    """
    from .asn import load_asn

    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if isinstance(document, dict) and document.get("asn_type") == "image3":
        document = read_level3_asn(path)
        members = [path.parent / member["expname"] for member in document["products"][0]["members"]]
        if check_files:
            check_members_exist(path, members)
        return members
    products = load_asn(path, check_files=check_files)
    science = [product.science for product in products]
    return science + [background for product in products for background in product.background]
