"""CRDS failures through ``tmtrun`` and the Python API: one line naming the problem and the file, with
the fix, and no crds log on stderr. The damaged caches and inputs are made here, from copies."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits

from liger_iris_pipeline.pipeline import Detector1Pipeline
from liger_iris_pipeline.stpipe import ReferenceFileError

BIN = Path(sys.executable).parent


def tmtrun(ramp, workdir, cache=None, python=None, **env):
    """Run ``tmtrun detector1.cfg`` on a ramp in a fresh process; return (status, stderr)."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    if cache is not None:
        environment["CRDS_PATH"] = str(cache)
    environment.update(env)
    args = ["detector1.cfg", str(ramp), f"--output_dir={workdir}"]
    if python is None:
        command = [str(BIN / "tmtrun"), *args]
    else:  # a tmtrun whose package runs as if installed outside a checkout
        body = f"\nfrom liger_iris_pipeline.cli.tmtrun import main\nraise SystemExit(main({args!r}))"
        command = [sys.executable, "-c", python + body]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    return result.returncode, result.stderr


def one_line(status, stderr):
    """Check a failure gave one stderr line and no crds log; return the line after ``tmtrun: error: ``."""
    assert status != 0
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "CRDS - " not in stderr and "Traceback" not in stderr
    assert lines[0].startswith("tmtrun: error: "), lines[0]
    return lines[0][len("tmtrun: error: ") :]


@pytest.fixture
def cache_copy(small_reduction, tmp_path):
    """A copy of the tiny cache, to damage."""
    return Path(shutil.copytree(small_reduction["cache"], tmp_path / "crds_cache"))


def edited(source, path, **cards):
    """Copy a FITS file with header cards changed (checksums updated)."""
    with fits.open(source) as hdulist:
        hdulist[0].header.update(cards)
        hdulist.writeto(path, checksum=True)
    return path


def test_crds_path_unset_outside_a_checkout(small_reduction, tmp_path):
    patch = "import liger_iris_pipeline.crds_plugin as p\np.CHECKOUT_CACHE = '/nonexistent/crds_cache'"
    line = one_line(*tmtrun(small_reduction["ramps"]["science"], tmp_path, python=patch))
    assert line == (
        f"{small_reduction['ramps']['science']}: no TMT CRDS cache: CRDS_PATH is not set and the package does not "
        "run from a source checkout; set CRDS_PATH to a TMT CRDS cache, or make one with "
        "`tmt-crds-cache build --path DIR` and set CRDS_PATH=DIR"
    )


def test_crds_path_missing_directory(small_reduction, tmp_path):
    ramp = small_reduction["ramps"]["science"]
    line = one_line(*tmtrun(ramp, tmp_path, cache=tmp_path / "nowhere"))
    assert line == (
        f"{ramp}: CRDS_PATH={tmp_path / 'nowhere'}: no such directory; point CRDS_PATH at a TMT CRDS cache, "
        f"or make one there with `tmt-crds-cache build --path {tmp_path / 'nowhere'}`"
    )


def test_crds_path_empty_directory(small_reduction, tmp_path):
    ramp = small_reduction["ramps"]["science"]
    empty = tmp_path / "empty"
    empty.mkdir()
    line = one_line(*tmtrun(ramp, tmp_path, cache=empty))
    assert line == (
        f"{ramp}: CRDS_PATH={empty}: not a TMT CRDS cache (no config/tmt/server_config or mappings/tmt); "
        f"make one there with `tmt-crds-cache build --path {empty}`, or point CRDS_PATH at one"
    )


def test_context_not_in_cache(small_reduction, tmp_path):
    ramp = small_reduction["ramps"]["science"]
    line = one_line(*tmtrun(ramp, tmp_path, cache=small_reduction["cache"], CRDS_CONTEXT="tmt_0099.pmap"))
    assert line == (
        f"{ramp}: CRDS context tmt_0099.pmap (CRDS_CONTEXT=tmt_0099.pmap) is not in "
        f"CRDS_PATH={small_reduction['cache']} (its contexts: tmt_0001.pmap, tmt_0002.pmap, tmt_0003.pmap); "
        "select one of those with CRDS_CONTEXT, or unset CRDS_CONTEXT"
    )


@pytest.mark.parametrize(
    ("name", "damage", "reason"),
    [
        ("tmt_0003.pmap", lambda text: "header = {(\n", "'(' was never closed (<unknown>, line 1)"),
        (
            "tmt_iris_0003.imap",
            lambda text: text.replace("'FLAT'", "'FLAT2'"),
            "sha1sum mismatch in 'tmt_iris_0003.imap'",
        ),
        ("tmt_iris_dark_0002.rmap", lambda text: text[: len(text) // 2], None),
    ],
    ids=["pmap-syntax", "imap-checksum", "rmap-truncated"],
)
def test_mapping_that_does_not_load_is_named(small_reduction, cache_copy, tmp_path, name, damage, reason):
    mapping = cache_copy / "mappings" / "tmt" / name
    mapping.write_text(damage(mapping.read_text()))
    line = one_line(*tmtrun(small_reduction["ramps"]["science"], tmp_path, cache=cache_copy))
    assert line.startswith(f"{mapping}: CRDS mapping does not load (")
    assert line.endswith(
        "); it is part of CRDS context tmt_0003.pmap: restore it, or run `crds checksum` on it after a deliberate edit"
    )
    if reason:
        assert f"({reason})" in line


def test_mapping_named_but_absent(small_reduction, cache_copy, tmp_path):
    (cache_copy / "mappings" / "tmt" / "tmt_iris_flat_0002.rmap").unlink()
    line = one_line(*tmtrun(small_reduction["ramps"]["science"], tmp_path, cache=cache_copy))
    assert line.startswith(
        f"{cache_copy / 'mappings' / 'tmt' / 'tmt_iris_flat_0002.rmap'}: no such mapping file, named by "
        "tmt_iris_0003.imap of CRDS context tmt_0003.pmap"
    )


def test_value_no_rule_matches(small_reduction, tmp_path):
    ramp = edited(small_reduction["ramps"]["science"], tmp_path / "img2_uncal.fits", DETECTOR="IMG2")
    line = one_line(*tmtrun(ramp, tmp_path, cache=small_reduction["cache"]))
    assert line == (
        f"{ramp}: no GAIN rule matches DETECTOR='IMG2' in tmt_iris_gain_0002.rmap (CRDS context tmt_0003.pmap; "
        "its rules have DETECTOR 'IFU', 'IMG1'); add a rule (see docs/crds_ingest.rst) or pass override_gain"
    )


def test_filter_no_flat_rule_matches(small_reduction, cache_copy, tmp_path):
    """A flat rule for one filter only: another filter is named with the rmap and the input."""
    from crds_helpers import crds_env, run

    rmap = cache_copy / "mappings" / "tmt" / "tmt_iris_flat_0002.rmap"
    rmap.write_text(rmap.read_text().replace("('IMG1', 'N/A', 'N/A')", "('IMG1', 'Kbb', 'N/A')"))
    run(f"crds checksum {rmap}", crds_env(cache_copy, tmp_path), tmp_path)
    rate = edited(small_reduction["rates"]["science"], tmp_path / "foo_rate.fits", FILTER="Hbb")
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    result = subprocess.run(
        [str(BIN / "tmtrun"), "image2.cfg", str(rate), f"--output_dir={tmp_path}"],
        capture_output=True,
        text=True,
        env={**environment, "CRDS_PATH": str(cache_copy)},
    )
    line = one_line(result.returncode, result.stderr)
    assert line.startswith(f"{rate}: no FLAT rule matches FILTER='Hbb' in tmt_iris_flat_0002.rmap")
    assert "its rules have FILTER 'Kbb'" in line


def test_date_before_every_rule(small_reduction, tmp_path):
    ramp = edited(small_reduction["ramps"]["science"], tmp_path / "old_uncal.fits", **{"DATE-OBS": "2020-01-01"})
    line = one_line(*tmtrun(ramp, tmp_path, cache=small_reduction["cache"]))
    assert line.startswith(f"{ramp}: no GAIN rule in tmt_iris_gain_0002.rmap (CRDS context tmt_0003.pmap) covers ")
    assert "DATE-OBS='2020-01-01'" in line and "used after 2024-01-01 00:00:00" in line


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        ({"DATE-OBS": "2024-13-45"}, "invalid DATE-OBS='2024-13-45' (month must be in 1..12): CRDS selects"),
        ({"DATE-OBS": "yesterday"}, "invalid DATE-OBS='yesterday' ("),
        ({"TIME-OBS": "25:99:00"}, "invalid TIME-OBS='25:99:00' (hour must be in 0..23): CRDS selects"),
    ],
    ids=["month", "word", "hour"],
)
def test_invalid_date_or_time(small_reduction, tmp_path, cards, message):
    ramp = edited(small_reduction["ramps"]["science"], tmp_path / "bad_uncal.fits", **cards)
    line = one_line(*tmtrun(ramp, tmp_path, cache=small_reduction["cache"]))
    assert line.startswith(f"{ramp}: {message}")
    assert "correct the header" in line and "tmt-crds-cache" not in line


def test_selected_reference_missing_from_cache(small_reduction, cache_copy, tmp_path):
    (cache_copy / "references" / "tmt" / "iris" / "tmt_iris_gain_0001.fits").unlink()
    ramp = small_reduction["ramps"]["science"]
    line = one_line(*tmtrun(ramp, tmp_path, cache=cache_copy))
    assert line == (
        f"{ramp}: the GAIN rule in tmt_iris_gain_0002.rmap (CRDS context tmt_0003.pmap) selects "
        f"tmt_iris_gain_0001.fits, which is not in the cache ({cache_copy / 'references' / 'tmt' / 'iris'}): "
        f"build it with `tmt-crds-cache build --path {cache_copy}`, or copy it there from the cache it was "
        "published with"
    )


def test_python_api_raises_the_same_message_and_logs_nothing_on_stderr(
    small_reduction, cache_copy, tmp_path, monkeypatch, capfd
):
    for key in list(os.environ):
        if key.startswith("CRDS_"):
            monkeypatch.delenv(key)
    (cache_copy / "references" / "tmt" / "iris" / "tmt_iris_gain_0001.fits").unlink()
    monkeypatch.setenv("CRDS_PATH", str(cache_copy))
    ramp = small_reduction["ramps"]["science"]
    with pytest.raises(ReferenceFileError, match=r"^/.*/sim_science_001_uncal.fits: the GAIN rule in"):
        Detector1Pipeline.call(ramp)
    monkeypatch.setenv("CRDS_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ReferenceFileError, match=r"CRDS_PATH=.*nowhere: no such directory"):
        Detector1Pipeline.call(ramp)
    assert "CRDS - " not in capfd.readouterr().err


def test_damaged_server_config_is_named_and_rewritten(small_reduction, cache_copy, tmp_path):
    config = cache_copy / "config" / "tmt" / "server_config"
    config.write_text("{'observatory': 'tmt',\n")
    line = one_line(*tmtrun(small_reduction["ramps"]["science"], tmp_path, cache=cache_copy))
    assert line == (
        f"{small_reduction['ramps']['science']}: {config}: not a CRDS server_config dictionary ('{{' was never "
        f"closed (<unknown>, line 1)); restore it, or write a new one with `tmt-crds-cache context --path "
        f"{cache_copy} tmt_NNNN.pmap`"
    )
    result = subprocess.run(
        [str(BIN / "tmt-crds-cache"), "context", "--path", str(cache_copy), "tmt_0001.pmap"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "tmt_0001.pmap\n", result.stderr
    assert "latest_context" in config.read_text()
