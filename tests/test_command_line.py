"""Every command fails with one line naming the file and the problem, and a non-zero status; tracebacks
only on request. The damaged inputs, parameter files and associations are made here."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.cli import demo
from liger_iris_pipeline.cli.tmtrun import cfg_files
from liger_iris_pipeline.cli.tmtrun import main as tmtrun

BIN = Path(sys.executable).parent


def failure(capsys, command="tmtrun"):
    """Return the one stderr line of a failed command, checking there is exactly one and no traceback."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"{command}: error: "), lines[0]
    return lines[0][len(command) + len(": error: ") :]


def edited_ramp(source, path, edit):
    ramp = datamodels.open(source)
    edit(ramp)
    ramp.save(path)
    return path


def one_read(ramp):
    ramp.data = np.ascontiguousarray(ramp.data[:, :1])
    ramp.read_times = ramp.read_times[:1]
    ramp.meta.exposure.nreads = 1


def backwards_times(ramp):
    ramp.read_times = ramp.read_times[::-1].copy()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (one_read, "a ramp needs at least 2 reads per integration to measure a rate, it has 1"),
        (backwards_times, "READ_TIMES must be finite, non-negative and strictly increasing"),
    ],
    ids=["one-read", "read-times"],
)
def test_bad_ramps_are_named(small_cache_env, tmp_path, capsys, edit, message):
    ramp = edited_ramp(small_cache_env["ramps"]["science"], tmp_path / "bad_uncal.fits", edit)
    assert tmtrun(["detector1.cfg", str(ramp), f"--output_dir={tmp_path}"]) == 1
    assert failure(capsys).startswith(f"{ramp}: {message}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad_uncal.fits"]


def test_wrong_model_type_and_missing_file_are_named(small_cache_env, tmp_path, capsys):
    ramp = small_cache_env["ramps"]["science"]
    assert tmtrun(["image2.cfg", ramp, f"--output_dir={tmp_path}"]) == 1
    assert failure(capsys).startswith(f"{ramp}: the input of ProcessImagerL2Pipeline must be an IRISImageModel")
    assert tmtrun(["detector1.cfg", str(tmp_path / "none_uncal.fits")]) == 1
    assert failure(capsys) == f"{tmp_path / 'none_uncal.fits'}: no such file"
    text = tmp_path / "notes_rate.fits"
    text.write_text("SIMPLE? no\n")
    assert tmtrun(["image2.cfg", str(text)]) == 1
    assert failure(capsys) == f"{text}: neither a FITS nor an ASDF file"


def test_unparsable_header_card_is_named(small_cache_env, tmp_path, capsys):
    rate = tmp_path / "card_rate.fits"
    data = bytearray(Path(small_cache_env["rates"]["science"]).read_bytes())
    start = data.index(b"TARGNAME=")
    data[start : start + 80] = b"TARGNAME= 'never closed".ljust(80)
    rate.write_bytes(bytes(data))
    assert tmtrun(["image2.cfg", str(rate), f"--output_dir={tmp_path}"]) == 1
    message = failure(capsys)
    assert message.startswith(f'{rate}: unparsable header card in HDU 0 (PRIMARY): "TARGNAME= \'never closed"')


def test_truncated_file_is_named(small_cache_env, tmp_path, capsys):
    rate = tmp_path / "short_rate.fits"
    rate.write_bytes(Path(small_cache_env["rates"]["science"]).read_bytes()[:-5000])
    assert tmtrun(["image2.cfg", str(rate), f"--output_dir={tmp_path}"]) == 1
    assert failure(capsys).startswith(f"{rate}: ")


def cfg_with(tmp_path, old, new):
    text = cfg_files()["image2.cfg"].read_text()
    assert old in text
    path = tmp_path / "edited.cfg"
    path.write_text(text.replace(old, new))
    line = next(number for number, row in enumerate(path.read_text().splitlines(), 1) if new.strip() in row)
    return path, line


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("save_bsub = False", "save_bsub False", "syntax error: Invalid line ('save_bsub False')"),
        ("nsigma = 3.0", "nsigmaa = 3.0", "unknown parameter 'steps.background.nsigmaa' for ProcessImagerL2Pipeline"),
        ("nsigma = 3.0", "nsigma = three", "parameter steps.background.nsigma: the value 'three' is of the wrong type"),
        ("[[flat_field]]", "[[flatfield]]", "unknown section 'flatfield' for ProcessImagerL2Pipeline"),
        (
            "liger_iris_pipeline.pipeline.ProcessImagerL2Pipeline",
            "liger_iris_pipeline.pipeline.NoSuchPipeline",
            "unknown class 'liger_iris_pipeline.pipeline.NoSuchPipeline'",
        ),
    ],
    ids=["syntax", "unknown-parameter", "wrong-type", "unknown-section", "unknown-class"],
)
def test_cfg_errors_give_file_and_line(small_reduction, tmp_path, capsys, old, new, message):
    cfg, line = cfg_with(tmp_path, old, new)
    assert tmtrun([str(cfg), small_reduction["rates"]["science"], f"--output_dir={tmp_path}"]) == 1
    assert failure(capsys).startswith(f"{cfg}: line {line}: {message}")


def test_bad_associations_are_named(small_reduction, tmp_path, capsys):
    asn = tmp_path / "asn.json"
    asn.write_text("{broken")
    assert tmtrun(["image2.cfg", str(asn)]) == 1
    assert failure(capsys).startswith(f"{asn}: not a JSON association")
    document = {
        "asn_type": "image2",
        "products": [{"name": "x", "members": [{"expname": "gone_rate.fits", "exptype": "science"}]}],
    }
    asn.write_text(json.dumps(document))
    assert tmtrun(["image2.cfg", str(asn)]) == 1
    assert failure(capsys).startswith(f"{asn}: member file(s) not found: {tmp_path / 'gone_rate.fits'}")


def test_debug_adds_the_traceback(small_reduction, tmp_path, capsys):
    assert tmtrun(["image2.cfg", small_reduction["ramps"]["science"], "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].startswith("tmtrun: error: ")


def test_help_before_or_after_the_step(capsys):
    assert tmtrun(["image2", "--help"]) == 0
    after = capsys.readouterr().out
    assert tmtrun(["--help", "image2"]) == 0
    before = capsys.readouterr().out
    assert before == after and "--steps.background.nsigma" in before and "--save_bsub" in before


def test_data_of_another_detector_is_refused(small_cache_env, tmp_path, capsys):
    detector = simulate.make_detector((64, 64), seed=5)
    ramp, _ = simulate.simulate_dark_exposure(detector, nreads=3, seed=1)
    path = tmp_path / "other_uncal.fits"
    ramp.save(path)
    assert tmtrun(["detector1.cfg", str(path), f"--output_dir={tmp_path}"]) == 1
    message = failure(capsys)
    assert message.startswith(f"{path}: taken with detector SIM-5 (DETSERNO), but the mask reference")
    assert "describes detector SIM-20240101" in message


def run(command, *args, env=None):
    return subprocess.run([str(BIN / command), *map(str, args)], capture_output=True, text=True, env=env)


def test_strun_on_our_steps_fails_in_one_line(small_cache_env, tmp_path):
    import os

    env = {**os.environ, "CRDS_PATH": str(small_cache_env["cache"])}
    result = run("strun", "image2", small_cache_env["ramps"]["science"], f"--output_dir={tmp_path}", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"strun: error: {small_cache_env['ramps']['science']}: the input of ProcessImagerL2")
    assert "CRDS - ERROR" not in result.stderr
    result = run("strun", "flat_field", small_cache_env["rates"]["science"], "--override_flat=nowhere.fits", env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("strun: error: ")
    result = run("tmtrun", "image2", small_cache_env["rates"]["science"], "--steps.background.nsigma=x", env=env)
    assert result.returncode == 1
    assert result.stderr == (
        "tmtrun: error: image2: parameter steps.background.nsigma: the value 'x' is of the wrong type "
        "(float expected)\n"
    )


def test_demo_fails_in_one_line(tmp_path, capsys):
    taken = tmp_path / "a_file"
    taken.write_text("")
    assert demo.main(["--output", str(taken), "--size", "32", "--nreads", "3"]) == 1
    assert failure(capsys, "liger-iris-demo")


def test_tmt_asn_command_fails_in_one_line(tmp_path):
    result = run("tmt-asn", tmp_path / "none_rate.fits", "-o", tmp_path / "asn.json")
    assert result.returncode == 1
    assert result.stderr == f"tmt-asn: error: {tmp_path / 'none_rate.fits'}: no such file (science member)\n"
    shutil.rmtree(tmp_path)
    assert not (tmp_path / "asn.json").exists()


def test_checksum_of_a_header_edited_behind_astropy_names_the_fix(small_reduction, tmp_path):
    rate = tmp_path / "edited_rate.fits"
    data = bytearray(Path(small_reduction["rates"]["science"]).read_bytes())
    start = data.index(b"TARGNAME=")
    data[start : start + 80] = b"TARGNAME= 'EDITED'".ljust(80)  # a valid card; the CHECKSUM no longer matches
    rate.write_bytes(bytes(data))
    with pytest.raises(datamodels.DataModelError, match=r"CHECKSUM of HDU 0 \(PRIMARY\) does not match.*checksum=True"):
        datamodels.open(rate)
    # The fix the message gives: astropy warns once about the old sums, then writes new ones.
    with pytest.warns(AstropyUserWarning, match="Checksum verification failed"):
        with fits.open(rate, mode="update", checksum=True):
            pass
    assert datamodels.open(rate).meta.target.name == "EDITED"


def test_one_version_for_the_package_and_the_c_library():
    header = (Path(__file__).parents[1] / "iris_readout" / "include" / "iris_readout.h").read_text()
    declared = ".".join(
        line.split()[2] for line in header.splitlines() if line.startswith("#define IRIS_READOUT_VERSION_")
    )
    result = subprocess.run([BIN / "tmtrun", "--version"], capture_output=True, text=True, check=True)
    versions = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert versions["liger_iris_pipeline"] == versions["iris_readout"] == declared
