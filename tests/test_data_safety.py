"""No command overwrites its inputs, a failed run writes nothing, products carry checksums, and
non-finite inputs come out flagged. Every damaged file is made here from good ones."""

import hashlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.associations import make_asn
from liger_iris_pipeline.associations.asn import main as tmt_asn
from liger_iris_pipeline.cli.tmtrun import main as tmtrun
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.output import OutputError, OutputTransaction

DO_NOT_USE = FLAGS["DO_NOT_USE"]


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def listing(folder):
    """Every file of a folder, hidden ones (temporary files) included."""
    return sorted(p.name for p in folder.iterdir())


def error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_detector1_refuses_to_replace_a_ramp_named_like_its_product(small_cache_env, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(small_cache_env["ramps"]["science"], "trap_rate.fits")
    before = digest("trap_rate.fits")
    assert tmtrun(["detector1.cfg", "trap_rate.fits"]) == 1
    line = error_line(capsys)
    assert line.startswith("tmtrun: error: trap_rate.fits: refusing to overwrite the input")
    assert digest("trap_rate.fits") == before
    assert listing(tmp_path) == ["trap_rate.fits"]


def test_image2_refuses_to_replace_a_cal_input(small_cache_env, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(small_cache_env["rates"]["science"], "frame_cal.fits")
    before = digest("frame_cal.fits")
    assert tmtrun(["image2.cfg", "frame_cal.fits"]) == 1
    assert "refusing to overwrite the input" in error_line(capsys)
    assert digest("frame_cal.fits") == before
    assert listing(tmp_path) == ["frame_cal.fits"]


@pytest.mark.parametrize("link", [os.symlink, os.link])
def test_outputs_through_links_to_an_input_are_refused(small_cache_env, tmp_path, capsys, link):
    ramp = tmp_path / "exposure_uncal.fits"
    shutil.copy(small_cache_env["ramps"]["science"], ramp)
    before = digest(ramp)
    out = tmp_path / "out"
    out.mkdir()
    link(ramp, out / "exposure_rate.fits")  # the product's name, already taken by the input
    assert tmtrun(["detector1.cfg", str(ramp), f"--output_dir={out}"]) == 1
    assert "refusing to overwrite the input" in error_line(capsys)
    assert digest(ramp) == before
    assert listing(out) == ["exposure_rate.fits"]


def test_a_reference_is_never_replaced_by_a_product(small_cache_env, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(small_cache_env["rates"]["science"], "frame_rate.fits")
    dark = small_cache_env["cache"] / "references" / "tmt" / "iris" / "tmt_iris_dark_0001.fits"
    shutil.copy(dark, "frame_dark_current.fits")  # the dark is named like the step's product
    before = digest("frame_dark_current.fits")
    assert tmtrun(["dark_current", "frame_rate.fits", "--override_dark=frame_dark_current.fits"]) == 1
    assert "refusing to overwrite the dark reference" in error_line(capsys)
    assert digest("frame_dark_current.fits") == before


def test_transaction_refuses_hard_links_and_duplicate_products(tmp_path):
    source = tmp_path / "in.fits"
    datamodels.IRISImageModel((4, 4)).save(source)
    os.link(source, tmp_path / "alias.fits")
    model = datamodels.IRISImageModel((4, 4))
    with pytest.raises(OutputError, match="in.fits: refusing to overwrite the input"):
        with OutputTransaction([(source, "input")]):
            model.save(tmp_path / "alias.fits")
    with pytest.raises(OutputError, match="two products of this run would have the same name"):
        with OutputTransaction():
            model.save(tmp_path / "a.fits")
            model.save(tmp_path / "a.fits")
    assert listing(tmp_path) == ["alias.fits", "in.fits"]


def test_tmt_asn_never_writes_over_its_members(small_reduction, tmp_path, capsys):
    sci = tmp_path / "sci_rate.fits"
    shutil.copy(small_reduction["rates"]["science"], sci)
    before = digest(sci)
    assert tmt_asn([str(sci), "-o", str(sci)]) == 1
    assert error_line(capsys).startswith(f"tmt-asn: error: {sci}: an association file name ends in .json")
    os.symlink(sci, tmp_path / "asn.json")
    assert tmt_asn([str(sci), "-o", str(tmp_path / "asn.json")]) == 1
    assert "refusing to overwrite the association member" in error_line(capsys)
    assert digest(sci) == before


@pytest.mark.parametrize(
    ("make_member", "message"),
    [
        (lambda path, good: None, "no such file (background member)"),
        (lambda path, good: path.write_text("not fits"), "neither a FITS nor an ASDF file (background member)"),
        (lambda path, good: shutil.copy(good["ramps"]["sky"], path), "this file is a TMTRampModel"),
    ],
    ids=["missing", "not-fits", "level0"],
)
def test_tmt_asn_checks_its_members(small_reduction, tmp_path, capsys, make_member, message):
    member = tmp_path / "sky_rate.fits"
    make_member(member, small_reduction)
    out = tmp_path / "asn.json"
    assert tmt_asn([small_reduction["rates"]["science"], "-b", str(member), "-o", str(out)]) == 1
    line = error_line(capsys)
    assert line.startswith(f"tmt-asn: error: {member}: ") and message in line
    assert not out.exists()


def test_failed_association_run_writes_no_product(small_cache_env, tmp_path, capsys):
    good = tmp_path / "a_rate.fits"
    shutil.copy(small_cache_env["rates"]["science"], good)
    broken = tmp_path / "b_rate.fits"
    shutil.copy(good, broken)
    with fits.open(broken, mode="update") as hdulist:  # a valid file whose science array holds a ramp's shape
        hdulist["SCI"].data = np.zeros((2, 64, 64), np.float32)
    sky = tmp_path / "sky_rate.fits"
    shutil.copy(small_cache_env["rates"]["sky"], sky)
    asn = tmp_path / "asn.json"
    make_asn([good, broken], [sky], output=asn)
    out = tmp_path / "out"
    before = listing(tmp_path)
    assert tmtrun(["image2.cfg", str(asn), f"--output_dir={out}", "--save_bsub=true"]) == 1
    line = error_line(capsys)
    assert line.startswith(f"tmtrun: error: {broken}: ") and "SCI" in line
    assert listing(out) == []  # neither a_cal.fits nor a_bsub.fits, nor a temporary file
    assert listing(tmp_path) == sorted([*before, "out"])
    # the same association without the broken member writes both products
    make_asn([good], [sky], output=asn)
    assert tmtrun(["image2.cfg", str(asn), f"--output_dir={out}", "--save_bsub=true"]) == 0
    assert listing(out) == ["a_bsub.fits", "a_cal.fits"]


def test_products_carry_checksums_and_damage_is_named(small_cache_env, tmp_path, capsys):
    out = tmp_path / "out"
    assert tmtrun(["image2.cfg", small_cache_env["rates"]["science"], f"--output_dir={out}"]) == 0
    product = out / "sim_science_001_cal.fits"
    with fits.open(product, checksum=True) as hdulist:
        assert all("CHECKSUM" in hdu.header and "DATASUM" in hdu.header for hdu in hdulist)
        assert all(hdu.verify_checksum() == 1 for hdu in hdulist)
        offset = hdulist["DQ"].fileinfo()["datLoc"]
    data = bytearray(product.read_bytes())
    data[offset + 17] ^= 0x04
    damaged = tmp_path / "damaged_cal.fits"
    damaged.write_bytes(bytes(data))
    with pytest.raises(datamodels.DataModelError, match=r"damaged_cal.fits: .*DATASUM of HDU \d \(DQ\) does not match"):
        datamodels.open(damaged)


def test_corrupt_reference_is_refused_naming_file_and_hdu(small_cache_env, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    gain = small_cache_env["cache"] / "references" / "tmt" / "iris" / "tmt_iris_gain_0001.fits"
    data = bytearray(gain.read_bytes())
    with fits.open(gain) as hdulist:
        offset = hdulist["SCI"].fileinfo()["datLoc"]
    data[offset + 1000] ^= 0x10
    (tmp_path / "gain.fits").write_bytes(bytes(data))
    ramp = small_cache_env["ramps"]["science"]
    assert tmtrun(["detector1.cfg", ramp, "--steps.ramp_fit.override_gain=gain.fits"]) == 1
    line = error_line(capsys)
    assert "gain.fits: corrupt FITS file: DATASUM of HDU 1 (SCI) does not match" in line
    assert listing(tmp_path) == ["gain.fits"]


def damaged_rate(source, path):
    """Copy a rate file with non-finite SCI and ERR pixels; return their positions."""
    model = datamodels.open(source)
    good = np.argwhere((model.dq & DO_NOT_USE) == 0)
    (y1, x1), (y2, x2), (y3, x3) = good[100], good[200], good[300]
    model.data[y1, x1] = np.nan
    model.data[y2, x2] = np.inf
    model.err[y3, x3] = np.nan
    model.var_poisson[y3, x3] = np.nan
    model.save(path)
    return (y1, x1), (y2, x2), (y3, x3)


def test_non_finite_input_pixels_come_out_flagged(small_cache_env, tmp_path):
    rate = tmp_path / "nan_rate.fits"
    (nan_sci, inf_sci, nan_err) = damaged_rate(small_cache_env["rates"]["science"], rate)
    assert tmtrun(["image2.cfg", str(rate), f"--output_dir={tmp_path}"]) == 0
    cal = datamodels.open(tmp_path / "nan_cal.fits")
    for position in (nan_sci, inf_sci, nan_err):
        assert cal.dq[position] & DO_NOT_USE, position
    assert cal.dq[nan_err] & FLAGS["UNRELIABLE_ERROR"]
    # every Level 2 step does the same on its own
    for step in ("dark_current", "flat_field", "assign_wcs", "normalize", "parse_subarray_map"):
        assert tmtrun([step, str(rate), f"--output_dir={tmp_path}"]) == 0
        product = datamodels.open(tmp_path / f"nan_{step}.fits")
        assert all(product.dq[position] & DO_NOT_USE for position in (nan_sci, inf_sci, nan_err)), step


def test_non_finite_reference_pixels_come_out_flagged(small_cache_env, tmp_path):
    from liger_iris_pipeline.dark_current import DarkCurrentStep
    from liger_iris_pipeline.flat_field import FlatFieldStep

    frame = datamodels.open(small_cache_env["rates"]["science"])
    good = np.argwhere((frame.dq & DO_NOT_USE) == 0)
    references = small_cache_env["cache"] / "references" / "tmt" / "iris"
    dark = datamodels.open(references / "tmt_iris_dark_0001.fits")
    flat = datamodels.open(references / "tmt_iris_flat_0001.fits")
    (y1, x1), (y2, x2), (y3, x3) = good[10], good[20], good[30]
    dark.data[y1, x1] = np.nan
    flat.data[y2, x2] = np.inf
    flat.err[y3, x3] = np.nan
    darked = DarkCurrentStep.call(frame, override_dark=dark)
    assert darked.dq[y1, x1] & (DO_NOT_USE | FLAGS["UNRELIABLE_DARK"]) == DO_NOT_USE | FLAGS["UNRELIABLE_DARK"]
    flatted = FlatFieldStep.call(frame, override_flat=flat)
    assert flatted.dq[y2, x2] & (DO_NOT_USE | FLAGS["NO_FLAT_FIELD"]) == DO_NOT_USE | FLAGS["NO_FLAT_FIELD"]
    assert flatted.dq[y3, x3] & (DO_NOT_USE | FLAGS["UNRELIABLE_FLAT"]) == DO_NOT_USE | FLAGS["UNRELIABLE_FLAT"]
    assert np.isfinite(flatted.err[y3, x3])
