"""Reading, validating and writing Level 2 associations.

An association is the JSON document of the JWST pipeline::

    {"asn_type": "image2", "asn_rule": "...", "asn_pool": "...",
     "products": [{"name": "obs1", "members": [{"expname": "sci_rate.fits", "exptype": "science"},
                                               {"expname": "sky_rate.fits", "exptype": "background"}]}]}

Member names are relative to the association file's directory. Each product has exactly one
science member; ``background`` (or ``sky``) members are subtracted from it.
"""

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

__all__ = [
    "AssociationError",
    "Level2Product",
    "check_members_exist",
    "load_asn",
    "make_asn",
    "read_document",
    "validate_document",
    "write_document",
]


class AssociationError(ValueError):
    """An association file is unreadable, does not follow the schema, or names missing files."""


@dataclass
class Level2Product:
    """One product of a Level 2 association, with member paths resolved.

    Attributes
    ----------
    name : str
        Product name, the base of the output file names.
    science : pathlib.Path
        The science exposure.
    background : list of pathlib.Path
        Background exposures for it (possibly empty).
    asn_table : str, optional
        File name of the association the product comes from.
    asn_pool : str, optional
        The association's pool name.
    """

    name: str
    science: Path
    background: list = field(default_factory=list)
    asn_table: str | None = None
    asn_pool: str | None = None


def validate_document(document, path, schema="level2_asn", kind="association"):
    """Raise `AssociationError` naming the first place where `document` breaks its JSON schema.

    Parameters
    ----------
    document : object
        The parsed association.
    path : str or os.PathLike
        The file, for the message.
    schema : str
        ``schemas/<schema>.schema.json`` of this package.
    kind : str
        What the document should be, for the message (``Level 3 association``).
    """
    import jsonschema

    text = resources.files(__package__).joinpath(f"schemas/{schema}.schema.json").read_text()
    validator = jsonschema.Draft202012Validator(json.loads(text))
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    if errors:
        error = errors[0]
        where = "/".join(str(part) for part in error.absolute_path) or "top level"
        raise AssociationError(f"{path}: invalid {kind} at {where}: {error.message}")


def read_document(path):
    """Return the parsed JSON of an association file, or raise `AssociationError` saying why not."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise AssociationError(f"{path}: no such association file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AssociationError(f"{path}: not a JSON association ({exc})") from exc


def check_members_exist(path, members):
    """Raise `AssociationError` naming the member files of association `path` that do not exist."""
    missing = [str(member) for member in members if not member.exists()]
    if missing:
        raise AssociationError(f"{path}: member file(s) not found: {', '.join(missing)}")


def write_document(document, output, members):
    """Write an association to `output` (all or nothing), never over one of its `members`."""
    from ..lib.output import OutputTransaction, writing

    with OutputTransaction([(name, "association member") for name in members]) as transaction:
        transaction.check(output)
        with writing(output) as temporary:
            Path(temporary).write_text(json.dumps(document, indent=2) + "\n")


def load_asn(path, check_files=True):
    """Read and validate a Level 2 association.

    Parameters
    ----------
    path : str or os.PathLike
        The JSON file.
    check_files : bool
        Raise if a member file does not exist.

    Returns
    -------
    list of Level2Product
        The products, member paths resolved against the association's directory.

    Raises
    ------
    AssociationError
        Unreadable JSON, a schema violation, not exactly one science member in a product, or
        (with ``check_files``) a missing member file.
    """
    path = Path(path)
    document = read_document(path)
    validate_document(document, path)
    products = []
    for index, product in enumerate(document["products"]):
        science = [m["expname"] for m in product["members"] if m["exptype"] == "science"]
        background = [m["expname"] for m in product["members"] if m["exptype"] in ("background", "sky")]
        if len(science) != 1:
            raise AssociationError(
                f"{path}: product {index} ({product['name']!r}) must have exactly one science member, "
                f"found {len(science)}"
            )
        members = [path.parent / name for name in (*science, *background)]
        if check_files:
            check_members_exist(path, members)
        products.append(Level2Product(product["name"], members[0], members[1:], path.name, document.get("asn_pool")))
    return products


def make_asn(science, background=(), product_name=None, asn_type="image2", output=None):
    """Build a Level 2 association: one product per science exposure, all sharing the backgrounds.

    Parameters
    ----------
    science : list of str or os.PathLike
        Science exposures.
    background : list of str or os.PathLike
        Background exposures (used for every science exposure).
    product_name : str, optional
        Product name when there is one science exposure; by default each product is named
        after its science file without its suffix (``x_rate.fits`` -> ``x``).
    asn_type : str
        ``image2`` (imager) or ``spec2``.
    output : str or os.PathLike, optional
        Write the association there (member names relative to its directory), never over one
        of its members.

    Returns
    -------
    dict
        The association document (validated).
    """
    import os

    if not science:
        raise AssociationError("an association needs at least one science exposure")
    if product_name is not None and len(science) != 1:
        raise AssociationError("a product name can be given only with one science exposure")
    base = Path(output).resolve().parent if output is not None else Path.cwd()

    def member(name, exptype):
        return {"expname": os.path.relpath(Path(name).resolve(), base), "exptype": exptype}

    products = []
    for name in science:
        stem = Path(name).name.split(".")[0]
        stem = stem.rsplit("_", 1)[0] if "_" in stem else stem
        members = [member(name, "science"), *(member(b, "background") for b in background)]
        products.append({"name": product_name or stem, "members": members})
    document = {
        "asn_type": asn_type,
        "asn_rule": f"candidate_{asn_type.capitalize()}",
        "asn_pool": "liger_iris_pipeline",
        "products": products,
    }
    validate_document(document, output or "<association>")
    if output is not None:
        write_document(document, output, (*science, *background))
    return document


def check_member(path, role):
    """Raise `AssociationError` unless a file is a Level 1 or 2 imager frame (an `IRISImageModel` FITS file).

    Parameters
    ----------
    path : str or os.PathLike
        The member.
    role : str
        ``science`` or ``background``, for the message.
    """
    from ..datamodels import DataModelError
    from ..datamodels.open_model import declared_model_type

    path = Path(path)
    if not path.is_file():
        raise AssociationError(f"{path}: no such file ({role} member)")
    try:
        model_type = declared_model_type(path)
    except DataModelError as exc:
        raise AssociationError(f"{exc} ({role} member)") from None
    if model_type != "IRISImageModel":
        hint = " (a Level 0 ramp: reduce it with `tmtrun detector1.cfg` first)" if model_type == "TMTRampModel" else ""
        raise AssociationError(
            f"{path}: a {role} member must be a Level 1 or 2 imager frame (IRISImageModel), "
            f"this file is a {model_type}{hint}"
        )


def main(argv=None):
    """Command line ``tmt-asn``: write a Level 2 association from a list of files.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status (non-zero on error).
    """
    import argparse

    from ..lib.errors import run_command

    parser = argparse.ArgumentParser(
        prog="tmt-asn",
        description="Write a Level 2 association of science and background exposures, or (--asn-type image3) "
        "a Level 3 association of the calibrated frames of one target and filter.",
    )
    parser.add_argument("science", nargs="+", help="science exposures (Level 1 rate files; _cal files for image3)")
    parser.add_argument("-b", "--background", nargs="*", default=[], help="background exposures")
    parser.add_argument("-o", "--output", required=True, help="association file to write (.json)")
    parser.add_argument(
        "--product-name", help="product name (image2: one science exposure only; image3: default <target>_<filter>)"
    )
    parser.add_argument("--asn-type", default="image2", choices=["image2", "spec2", "image3"])
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    args = parser.parse_args(argv)

    def write_level3():
        from .level3 import check_level3_members, level3_product_name, make_level3_asn

        if args.background:
            raise AssociationError("a Level 3 (image3) association has no background members")
        if not args.output.endswith(".json"):
            raise AssociationError(f"{args.output}: an association file name ends in .json")
        check_level3_members(args.science)
        name = args.product_name or level3_product_name(args.science)
        make_level3_asn(args.science, name, args.output)
        print(f"wrote {args.output}")
        return 0

    def write():
        if args.asn_type == "image3":
            return write_level3()
        members = [(name, "science") for name in args.science] + [(name, "background") for name in args.background]
        for name, role in members:
            check_member(name, role)
        if not args.output.endswith(".json"):
            raise AssociationError(f"{args.output}: an association file name ends in .json")
        make_asn(args.science, args.background, args.product_name, args.asn_type, args.output)
        print(f"wrote {args.output}")
        return 0

    return run_command("tmt-asn", write, argv=["--debug"] if args.debug else [])
