"""Sphinx extension: write the datamodel and DQ-flag tables from the schemas at build time.

Generating the tables keeps the documentation identical to the schemas the code uses.
"""

from pathlib import Path


def _rst_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    rule = "  ".join("=" * width for width in widths)
    lines = [rule, "  ".join(f"{cell:<{width}}" for cell, width in zip(header, widths, strict=True)), rule]
    lines += ["  ".join(f"{cell!s:<{width}}" for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.append(rule)
    return "\n".join(lines)


def _tables(model_class):
    """Return the (arrays, keywords) rows of a model class's schema."""
    from liger_iris_pipeline.datamodels.model_base import schema_nodes

    arrays, keywords = [], []
    for path, node in schema_nodes(model_class):
        if "datatype" in node:
            datatype = node["datatype"] if isinstance(node["datatype"], str) else "table"
            arrays.append((path, node["fits_hdu"], datatype, node.get("ndim", ""), node.get("title", "")))
        else:
            keywords.append((node["fits_keyword"], node.get("fits_hdu", "PRIMARY"), path, node.get("title", "")))
    return arrays, keywords


def datamodel_tables():
    """Return reStructuredText describing every model's arrays and the core keywords.

    Returns
    -------
    str
        Sections for each model class, then the keyword table of ``tmt_core``.
    """
    from liger_iris_pipeline import datamodels

    _, core_keywords = _tables(datamodels.TMTDataModel)
    parts = []
    for name, model_class in datamodels.MODEL_CLASSES.items():
        arrays, keywords = _tables(model_class)
        doc = (model_class.__doc__ or "").strip().splitlines()[0]
        schema_file = model_class.schema_url.rsplit("/", 1)[-1] + ".yaml"
        parts.append(f"{name}\n{'-' * len(name)}\n\n{doc} Schema: ``{schema_file}``.\n")
        parts.append(_rst_table(["attribute", "EXTNAME", "dtype", "ndim", "description"], arrays) + "\n")
        specific = [row for row in keywords if row not in core_keywords]
        if specific:
            header = ["keyword", "HDU", "attribute", "description"]
            parts.append("Keywords beyond the common ones:\n\n" + _rst_table(header, specific) + "\n")
    parts.append("Keywords of every file (``tmt_core.schema.yaml``)\n" + "-" * 50 + "\n")
    parts.append(_rst_table(["keyword", "HDU", "attribute", "description"], core_keywords))
    return "\n".join(parts) + "\n"


def dq_flag_table():
    """Return the DQ flag table as reStructuredText."""
    from liger_iris_pipeline.datamodels import dqflags

    rows = [
        (int(value).bit_length() - 1 if value else "-", value, name, dqflags.descriptions[name])
        for name, value in dqflags.pixel.items()
    ]
    return _rst_table(["bit", "value", "name", "description"], rows) + "\n"


def _write(app):
    out = Path(app.srcdir) / "_generated"
    out.mkdir(exist_ok=True)
    (out / "datamodel_tables.rst").write_text(datamodel_tables())
    (out / "dq_flag_table.rst").write_text(dq_flag_table())


def setup(app):
    """Register the generator with Sphinx."""
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True}
