"""The iris_readout command-line tool: its output is a Level 1 product that the pipeline reads and
`tmtrun image2.cfg` reduces, it never writes over an input, and every failure is one line.

The damaged files (truncated ramp, one-coefficient nonlinearity) are made here."""

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.cli.tmtrun import main as tmtrun

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "iris_readout" / "build" / "iris_readout"


@pytest.fixture(scope="module")
def cli():
    """Path of the command, built if cfitsio is there."""
    if not CLI.exists():
        subprocess.run(["make", "-C", str(ROOT / "iris_readout"), "cli"], capture_output=True, check=False)
    if not CLI.exists():
        pytest.skip("the iris_readout command needs cfitsio (Debian: libcfitsio-dev) to build")
    return str(CLI)


def references(cache):
    folder = Path(cache) / "references" / "tmt" / "iris"
    kinds = ("nonlin", "saturation", "readnoise", "gain", "mask")
    return {kind: str(folder / f"tmt_iris_{kind}_0001.fits") for kind in kinds}


def run(cli, *args):
    return subprocess.run([cli, *map(str, args)], capture_output=True, text=True, check=False)


def one_line_error(result):
    """Return the message of a failure, checking the exit status and that stderr is one line."""
    assert result.returncode != 0, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("iris_readout: error: "), lines[0]
    return lines[0][len("iris_readout: error: ") :]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_output_is_a_level1_product_that_image2_reduces(cli, small_cache_env, tmp_path):
    ramp = small_cache_env["ramps"]["science"]
    refs = references(small_cache_env["cache"])
    out = tmp_path / "sim_science_001_rate.fits"
    result = run(cli, "-s", "utr", *(a for kind in refs for a in (f"--{kind}", refs[kind])), ramp, "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""

    pipeline = small_cache_env["rates"]["science"]
    with fits.open(out, checksum=True) as ours, fits.open(pipeline) as theirs:
        for hdu in ours:
            assert hdu._checksum_valid and hdu._datasum_valid, hdu.name
        assert ours[0].header["DATAMODL"] == "IRISImageModel"
        assert ours[0].header["PROCLEVL"] == 1
        for name in ("SCI", "ERR", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT"):
            assert ours[name].header["BUNIT"] == theirs[name].header["BUNIT"], name
        for key in ("CRPIX1", "CRVAL1", "CRVAL2", "CDELT1", "CTYPE1", "CTYPE2", "PC1_1", "RADESYS"):
            assert ours["SCI"].header[key] == theirs["SCI"].header[key], key
        for key in ("INSTRUME", "DETECTOR", "FILTER", "EXP_TYPE", "DATE-OBS", "SUBSTRT1", "NREADS"):
            assert ours[0].header[key] == theirs[0].header[key], key
        # the same library with the same references: the same rates
        good = np.isfinite(theirs["SCI"].data)
        assert np.isfinite(ours["SCI"].data[good]).mean() > 0.99
        np.testing.assert_allclose(ours["SCI"].data[good], theirs["SCI"].data[good], rtol=1e-5, atol=1e-4)
        np.testing.assert_array_equal(ours["DQ"].data, theirs["DQ"].data)

    model = datamodels.open(out)
    assert type(model).__name__ == "IRISImageModel"
    model.close()
    assert tmtrun(["image2.cfg", str(out), f"--output_dir={tmp_path}", "--log-level=WARNING"]) == 0
    calibrated = datamodels.open(tmp_path / "sim_science_001_cal.fits")
    assert calibrated.meta.processing_level == 2
    assert np.isfinite(calibrated.data).mean() > 0.9
    calibrated.close()


@pytest.fixture
def ramp_copy(small_reduction, tmp_path):
    path = tmp_path / "ramp_uncal.fits"
    shutil.copy(small_reduction["ramps"]["science"], path)
    return path


def test_never_writes_over_an_input(cli, ramp_copy, tmp_path, small_reduction):
    before = digest(ramp_copy)
    (tmp_path / "link.fits").symlink_to(ramp_copy.name)
    os.link(ramp_copy, tmp_path / "hard.fits")
    gain = references(small_reduction["cache"])["gain"]
    gain_copy = tmp_path / "gain.fits"
    shutil.copy(gain, gain_copy)
    cases = [
        (ramp_copy, ramp_copy),
        (ramp_copy, tmp_path / "sub" / ".." / ramp_copy.name),
        (ramp_copy, tmp_path / "link.fits"),
        (ramp_copy, tmp_path / "hard.fits"),
        (tmp_path / "link.fits", ramp_copy),
    ]
    (tmp_path / "sub").mkdir()
    for source, out in cases:
        message = one_line_error(run(cli, "-f", "-s", "utr", source, "-o", out))
        assert "the same file" in message and "choose another output name" in message, message
    message = one_line_error(run(cli, "-f", "-s", "utr", "--gain", gain_copy, ramp_copy, "-o", gain_copy))
    assert message.startswith(f"{gain_copy}: is the input file"), message
    assert digest(ramp_copy) == before
    assert digest(gain_copy) == digest(gain)
    assert (tmp_path / "link.fits").is_symlink()
    assert not list(tmp_path.glob("*.tmp*"))


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("-n", "99999999999999999999", "out of range"),
        ("-n", "2x", "is not a whole number"),
        ("-n", "", "is not a whole number"),
        ("-n", "0", "out of range"),
        ("-j", "1e999", "out of range"),
        ("-g", "nan", "is not a number"),
        ("-a", "0.9", "out of range"),
    ],
)
def test_bad_numbers_are_one_line(cli, ramp_copy, tmp_path, option, value, problem):
    out = tmp_path / "out.fits"
    message = one_line_error(run(cli, "-s", "mcds", option, value, ramp_copy, "-o", out))
    assert message.startswith(f"{option}: ") and problem in message, message
    assert not out.exists()


@pytest.mark.parametrize("keep", [0.5, 0.99], ids=["half", "last-block-cut"])
def test_truncated_ramp_is_refused(cli, ramp_copy, tmp_path, keep):
    # a cut inside an HDU (a cut exactly between HDUs leaves a shorter but valid FITS file)
    data = ramp_copy.read_bytes()
    bad = tmp_path / "truncated_uncal.fits"
    bad.write_bytes(data[: int(len(data) * keep)])
    out = tmp_path / "out.fits"
    message = one_line_error(run(cli, "-s", "utr", bad, "-o", out))
    assert message.startswith(f"{bad}: truncated"), message
    assert not out.exists() and not list(tmp_path.glob("out.fits.tmp*"))


def test_one_coefficient_nonlinearity_is_refused(cli, ramp_copy, tmp_path, small_reduction):
    source = references(small_reduction["cache"])["nonlin"]
    bad = tmp_path / "nonlin_one_coeff.fits"
    with fits.open(source) as hdul:
        hdul["COEFFS"].data = hdul["COEFFS"].data[:1].copy()
        hdul.writeto(bad)
    out = tmp_path / "out.fits"
    message = one_line_error(run(cli, "-s", "utr", "--nonlin", bad, ramp_copy, "-o", out))
    assert message.startswith(f"{bad}: COEFFS holds 1 coefficient"), message
    assert not out.exists()


def test_existing_output_is_kept_without_f(cli, ramp_copy, tmp_path):
    out = tmp_path / "out.fits"
    out.write_bytes(b"keep me")
    message = one_line_error(run(cli, "-s", "utr", ramp_copy, "-o", out))
    assert message.startswith(f"{out}: exists"), message
    assert out.read_bytes() == b"keep me"
    assert run(cli, "-f", "-s", "utr", ramp_copy, "-o", out).returncode == 0
    with fits.open(out, checksum=True) as hdul:
        assert hdul[0].header["DATAMODL"] == "IRISImageModel"


def test_subarray_map_is_carried_over(cli, small_reduction, tmp_path):
    ramp = datamodels.open(small_reduction["ramps"]["science"])
    ny, nx = ramp.data.shape[-2:]
    sub = np.zeros((ny, nx), np.uint16)
    sub[10:20, 5:30] = 1
    ramp.subarr_map = sub
    source = tmp_path / "sub_uncal.fits"
    ramp.save(source)
    ramp.close()
    out = tmp_path / "sub_rate.fits"
    result = run(cli, "-s", "utr", "-r", "5", source, "-o", out)
    assert result.returncode == 0, result.stderr
    frame = datamodels.open(out)
    np.testing.assert_array_equal(frame.subarr_map, sub)
    frame.close()
