"""The generated documentation tables cover every model, array and DQ flag."""

import sys
from pathlib import Path

from liger_iris_pipeline import datamodels

sys.path.insert(0, str(Path(__file__).parents[1] / "docs" / "_ext"))
import schema_tables  # noqa: E402


def test_datamodel_tables_list_every_model_and_array():
    text = schema_tables.datamodel_tables()
    for name in datamodels.MODEL_CLASSES:
        assert f"\n{name}\n" in f"\n{text}"
    for extname in ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT", "SUBARR_MAP", "READ_TIMES"):
        assert extname in text
    for keyword in ("DATAMODL", "FILTER", "READPATT", "SUBSTRT1", "S_FLAT", "R_DARK", "CRDS_CTX", "USEAFTER"):
        assert keyword in text


def test_common_keyword_table_is_the_core_schema():
    common = schema_tables.datamodel_tables().split("Keywords of every file")[1]
    assert "DATE-OBS" in common and "REFTYPE" not in common and "BUNIT" not in common


def test_dq_flag_table_lists_every_flag():
    text = schema_tables.dq_flag_table()
    for name, value in datamodels.dqflags.pixel.items():
        assert name in text and str(value) in text
