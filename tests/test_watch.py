"""``tmt-watch`` as the acquisition sees it: a real process fed files slowly, in a burst, corrupt, under
temporary names, stopped with SIGTERM and restarted; its products are checked against the simulator's truth."""

import collections
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.operations.watch import fits_complete, ignored
from liger_iris_pipeline.simulate.validation import compare_with_truth

BIN = Path(sys.executable).parent
SETTLE = 0.5
CORRUPT = "sim_corrupt_uncal.fits"


def read_ledger(output):
    path = output / "ledger.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(output, names, service, timeout=120):
    """Wait until the ledger has a record of each name (the service must keep running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(names) <= {record["name"] for record in read_ledger(output)}:
            return
        assert service.poll() is None, f"tmt-watch exited ({service.returncode})"
        time.sleep(0.2)
    raise AssertionError(f"tmt-watch did not reduce {sorted(names)} in {timeout} s")


def start(incoming, output, log, env, *options):
    return subprocess.Popen(
        [BIN / "tmt-watch", incoming, output, f"--settle={SETTLE}", *options],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )


def stop(service, signum):
    service.send_signal(signum)
    try:
        return service.wait(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


def copy_slowly(source, destination, chunks=4, pause=1.0):
    """Write a file under its final name in chunks, pausing longer than the settle time between them."""
    data = Path(source).read_bytes()
    size = -(-len(data) // chunks)
    with open(destination, "wb") as stream:
        for start in range(0, len(data), size):
            stream.write(data[start : start + size])
            stream.flush()
            time.sleep(pause)


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Run the service through a night's events; return the folders, the truth and the service's log."""
    from crds_helpers import build_tiny_cache

    work = tmp_path_factory.mktemp("watch")
    cache = build_tiny_cache(work / "crds_cache", instruments=["iris"])
    manifest = simulate.simulate_dataset(
        work / "level0", size=64, nreads=3, n_science=4, n_sky=2, n_darks=0, n_flats=0, n_stars=8
    )
    incoming, output = work / "incoming", work / "output"
    incoming.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("CRDS_CONTEXT", "CRDS_SERVER_URL")}
    env["CRDS_PATH"] = str(cache)
    sky, science = manifest["sky"], manifest["science"]
    shutil.copy(sky[0], incoming)  # present at start
    log_path = work / "watch.log"
    statuses = []
    with open(log_path, "wb") as log:
        service = start(incoming, output, log, env)
        try:
            wait_for(output, [Path(sky[0]).name], service)
            copy_slowly(sky[1], incoming / Path(sky[1]).name)
            for path in science[:3]:  # a burst
                shutil.copy(path, incoming)
            (incoming / CORRUPT).write_bytes(Path(science[3]).read_bytes()[:20000])
            # Still being written, under the acquisition's temporary name: left alone.
            shutil.copy(science[3], incoming / ".sim_science_004_uncal.fits.part")
            wait_for(output, [Path(p).name for p in (*sky, *science[:3])] + [CORRUPT], service)
        finally:
            statuses.append(stop(service, signal.SIGTERM))
        assert not [record for record in read_ledger(output) if record["name"] == "sim_science_004_uncal.fits"]

        # Restarted, polling this time: everything done is skipped; the renamed file is reduced.
        service = start(incoming, output, log, env, "--poll")
        try:
            os.rename(incoming / ".sim_science_004_uncal.fits.part", incoming / "sim_science_004_uncal.fits")
            wait_for(output, ["sim_science_004_uncal.fits"], service)
        finally:
            statuses.append(stop(service, signal.SIGINT))
    records = len(read_ledger(output))
    once = subprocess.run(
        [BIN / "tmt-watch", incoming, output, "--once", "--settle=0.1"], capture_output=True, env=env, timeout=120
    )
    assert len(read_ledger(output)) == records  # nothing new: nothing reduced again
    return {
        "incoming": incoming,
        "output": output,
        "manifest": manifest,
        "statuses": [*statuses, once.returncode],
        "log": log_path.read_text(),
        "good": [Path(p).name for p in (*sky, *science)],
    }


def truth_of(name, night):
    return simulate.ExposureTruth.load(night["manifest"]["truth"][name])


def test_clean_stops(night):
    assert night["statuses"] == [0, 0, 0], night["log"][-3000:]
    assert night["log"].count("stopped on SIGTERM") == 1
    assert night["log"].count("stopped on SIGINT") == 1
    assert "Traceback" not in night["log"]


def test_errors_are_one_line(tmp_path):
    config = tmp_path / "service.cfg"
    config.write_text("backgruond = own_sky\n")
    for arguments, message in (
        ([tmp_path / "nowhere", tmp_path / "out"], f"{tmp_path / 'nowhere'}: no such folder"),
        ([tmp_path, tmp_path / "out"], f"{tmp_path / 'out'}: the output folder must not be the incoming folder"),
        ([tmp_path, tmp_path.parent / "out", "--config", config], f"{config}: unknown key(s) backgruond"),
    ):
        result = subprocess.run([BIN / "tmt-watch", *arguments], capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr.startswith(f"tmt-watch: error: {message}"), result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_ledger_has_each_file_once(night):
    records = read_ledger(night["output"])
    counts = collections.Counter(record["name"] for record in records)
    assert counts == collections.Counter([*night["good"], CORRUPT])
    done = {record["name"] for record in records if record["status"] == "done"}
    assert done == set(night["good"]), [record["reason"] for record in records if record["name"] != CORRUPT]
    # In order of arrival: the sky frames first, so every science frame had both as background.
    names = [record["name"] for record in records]
    assert names[:2] == ["sim_sky_001_uncal.fits", "sim_sky_002_uncal.fits"]
    assert names[-1] == "sim_science_004_uncal.fits"


def test_corrupt_file_failed_and_moved_aside(night):
    (record,) = [record for record in read_ledger(night["output"]) if record["name"] == CORRUPT]
    assert record["status"] == "failed"
    assert record["reason"].startswith(f"{night['incoming'] / CORRUPT}: not a readable FITS file")
    assert (night["output"] / "failed" / CORRUPT).is_file()
    assert not (night["incoming"] / CORRUPT).exists()
    assert f"{CORRUPT} FAILED" in night["log"]


def test_one_log_line_per_frame(night):
    lines = [line for line in night["log"].splitlines() if " done in " in line]
    assert sorted(line.split()[2] for line in lines) == sorted(night["good"])
    science = [line for line in lines if "science" in line]
    assert all("image2" in line and "stars" in line and "sky " in line for line in science)


def test_products_match_the_truth(night):
    output = night["output"]
    for name in night["good"]:
        stem = name.replace("_uncal.fits", "")
        truth = truth_of(name, night)
        with datamodels.open(output / f"{stem}_rate.fits") as rate:
            good = (rate.dq & FLAGS["DO_NOT_USE"]) == 0
            pulls = ((rate.data - truth.detector_rate) / rate.err)[good]
        assert abs(np.median(pulls)) < 0.1, name
        assert 0.85 < np.std(pulls) < 1.15, name
        assert (output / f"{stem}_rate.png").is_file() or (output / f"{stem}_cal.png").is_file()
        if "science" not in name:
            assert not (output / f"{stem}_cal.fits").exists()
            continue
        with datamodels.open(output / f"{stem}_cal.fits") as cal:
            assert cal.meta.background.n_members == 2  # the two sky frames, also after the restart
            comparison = compare_with_truth(cal, truth)
            assert cal.meta.cal_step.photom == "COMPLETE"
            photometry = cal.meta.photometry
            one_dn_per_s_jy = photometry.conversion_megajanskys * photometry.pixelarea_steradians * 1e6
        assert abs(comparison.background_residual) < 4 * comparison.background_residual_error, name
        assert abs(comparison.background_pull_std - 1) < 0.15, name
        assert (output / f"{stem}_cal.reg").is_file()
        # The zero point in the night log: photom's conversion, which turns a star's DN/s into its AB magnitude.
        (qa,) = [
            record["qa"] for record in read_ledger(output) if record["name"] == name and record["status"] == "done"
        ]
        assert qa["zero_point_ab"] == pytest.approx(-2.5 * math.log10(one_dn_per_s_jy / 3631.0), abs=1e-6)
        star = truth.sources[0]
        assert qa["zero_point_ab"] - 2.5 * math.log10(star["flux"]) == pytest.approx(star["abmag"], abs=0.02)


def test_no_temporary_or_partial_files(night):
    left = [path.name for path in night["output"].rglob("*") if path.name.startswith(".") or ".part" in path.name]
    assert not left
    assert (night["output"] / "night_report.html").is_file()


def test_completeness_checks(tmp_path, night):
    whole = next(night["incoming"].glob("sim_sky_001_uncal.fits"))
    assert fits_complete(whole)
    data = whole.read_bytes()
    for cut in (100, 2880, len(data) // 2, len(data) - 2880):  # inside a header, at its end, in the data
        part = tmp_path / f"cut{cut}.fits"
        part.write_bytes(data[:cut])
        assert not fits_complete(part), cut
    assert ignored(".x.fits") and ignored("x.fits.part") and ignored("x.fits.tmp") and ignored("notes.txt")
    assert not ignored("x_uncal.fits")
