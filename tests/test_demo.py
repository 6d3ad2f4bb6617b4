"""The README's demo runs end to end on a small detector."""

from liger_iris_pipeline import datamodels, demo


def test_demo_simulates_and_reads_back(tmp_path, capsys):
    assert demo.main(["--output", str(tmp_path), "--size", "64", "--nreads", "3"]) == 0
    out = capsys.readouterr().out
    assert "TMTRampModel" in out and "IRIS_IMAGE" in out and "TMTNonlinModel" in out
    assert "peak memory" in out
    science = datamodels.open(tmp_path / "sim_science_001_uncal.fits")
    assert science.data.shape == (1, 3, 64, 64)
    assert science.meta.exposure.nreads == 3
