"""The README's demo runs end to end on a small detector (the Level 3 run: test_level3_end_to_end.py)."""

import pytest

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.cli import demo


@pytest.mark.slow
def test_demo_reduces_and_checks_truth(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("CRDS_PATH", raising=False)
    assert demo.main(["--output", str(tmp_path), "--size", "128", "--nreads", "5"]) == 0
    out = capsys.readouterr().out
    assert "Level 2: tmtrun image2.cfg" in out and "against the truth" in out and "peak memory" in out
    assert "Level 3" not in out
    cal = datamodels.open(tmp_path / "level2" / "sim_science_001_cal.fits")
    assert cal.meta.processing_level == 2 and cal.meta.cal_step.flat_field == "COMPLETE"
    assert (tmp_path / "crds_cache" / "references" / "tmt" / "iris" / "tmt_iris_flat_0001.fits").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--level3", "--size", "64"], "--level3 needs --size of at least"),
        (["--level3", "--size", "256", "--dither", "1"], "--dither of at least 2"),
        (["--size", "8"], "--size must be at least 16"),
    ],
)
def test_bad_arguments_are_one_line(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--output", str(tmp_path), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_level3_options_in_help(capsys):
    with pytest.raises(SystemExit):
        demo.main(["--help"])
    out = capsys.readouterr().out
    assert "--level3" in out and "--dither N" in out


def test_level3_scene_has_stars_for_tweakreg():
    assert demo.level3_star_count(demo.LEVEL3_MIN_SIZE) >= 100
    assert demo.level3_star_count(demo.FULL_FRAME) == 1600
