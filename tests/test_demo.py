"""The README's demo runs end to end on a small detector."""

import pytest

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.cli import demo

pytestmark = pytest.mark.slow


def test_demo_reduces_and_checks_truth(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    assert demo.main(["--output", str(tmp_path), "--size", "128", "--nreads", "5"]) == 0
    out = capsys.readouterr().out
    assert "Level 2: tmtrun image2.cfg" in out and "against the truth" in out and "peak memory" in out
    cal = datamodels.open(tmp_path / "level2" / "sim_science_001_cal.fits")
    assert cal.meta.processing_level == 2 and cal.meta.cal_step.flat_field == "COMPLETE"
    assert (tmp_path / "crds_cache" / "references" / "tmt" / "iris" / "tmt_iris_flat_0001.fits").exists()
