"""The README's demo runs end to end on a small detector (the Level 3 run: test_level3_end_to_end.py)."""

import json

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


@pytest.mark.slow
def test_ifs_demo_reduces_slicer_data_and_meets_the_targets(tmp_path, capsys, monkeypatch):
    """``--ifs`` on the small slicer (its own cache): Level 0 -> cube -> spectrum, every judged target met.

    The small slicer undersamples a broad filter's lines (0.6 pixel per FWHM in Kbb, the filter of
    the checkout's IFU rules): its line centres, velocities and spectrum pulls are then reported,
    not judged (``simulate.ifs.validation.MIN_PIXELS_PER_FWHM``); the full slicer judges them all.
    """
    monkeypatch.delenv("CRDS_PATH", raising=False)
    assert demo.main(["--ifs", "--output", str(tmp_path), "--size", "512"]) == 0
    out = capsys.readouterr().out
    assert "Level 2: tmtrun spec2.cfg" in out and "IFS products against the truth" in out and "peak memory" in out
    level2 = tmp_path / "level2"
    with datamodels.open(level2 / "ifs_science_001_s3d.fits") as cube:
        assert isinstance(cube, datamodels.IRISCubeModel) and cube.meta.cal_step.background == "COMPLETE"
        assert cube.meta.ref_file.wavecal.name == "crds://tmt_iris_wavecal_0001.fits"
    with datamodels.open(level2 / "ifs_science_001_spectrum_telluric.fits") as spectrum:
        assert spectrum.meta.cal_step.telluric == "COMPLETE"
    for name in ("ifs_science_001_x1d", "ifs_telluric_001_x1d", "ifs_sky_001_s3d", "ifs_science_001_cube_telluric"):
        assert (level2 / f"{name}.fits").exists(), name
    assert (tmp_path / "crds_cache" / "references" / "tmt" / "iris" / "tmt_iris_slicegeo_0001.fits").exists()
    checks = json.loads((level2 / demo.IFS_COMPARISON).read_text())
    judged = ("point-source flux", "voxel pull std", "source position", "sky residual", "telluric-corrected / truth")
    assert all(any(name.startswith(start) for name in checks) for start in judged), sorted(checks)
    assert {name: check["met"] for name, check in checks.items()} == dict.fromkeys(checks, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ifs", "--level3"], "--ifs and --level3 are separate demos"),
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
