"""``tmt-batch``: the batch on an embedded cluster gives a serial run's products, a real scheduler and workers
(separate processes on the loopback) survive a killed worker, and a corrupt input fails alone."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from crds_helpers import BIN, build_tiny_cache, crds_env
from dask.system import CPU_COUNT

from liger_iris_pipeline import simulate
from liger_iris_pipeline.lib.output import partial_files
from liger_iris_pipeline.operations.batch import Exposure, choose_background, collect_exposures, local_cluster_size
from liger_iris_pipeline.operations.ledger import Ledger

N_SKY, N_SCIENCE = 2, 6
NAMES = sorted([f"sim_sky_{i:03d}_uncal.fits" for i in range(1, N_SKY + 1)]) + sorted(
    f"sim_science_{i:03d}_uncal.fits" for i in range(1, N_SCIENCE + 1)
)
SERVICE_CFG = "quicklook = False\n"
"""The batch's settings in these tests: products and QA numbers, not the quick-look files (tested elsewhere)."""

SCHEDULER_EVENTS = """
import json, sys
from distributed import Client
with Client(sys.argv[1], timeout=30) as client:
    print(json.dumps([event for _, event in client.get_events(sys.argv[2])], default=sorted))
"""
"""Print a scheduler's events about one worker (argv: scheduler address, worker address) as JSON."""

TIMEOUT = 240
"""Seconds any one command may take before the test fails (instead of hanging)."""


@pytest.fixture(scope="module")
def level0(tmp_path_factory):
    """2 sky and 6 science Level 0 files (64 x 64, 3 reads) and their truth files."""
    folder = tmp_path_factory.mktemp("batch") / "level0"
    simulate.simulate_dataset(
        folder, size=64, nreads=3, n_science=N_SCIENCE, n_sky=N_SKY, n_darks=0, n_flats=0, n_stars=5
    )
    return folder


@pytest.fixture(scope="module")
def batch_data(level0):
    """The work folder (``level0/`` and ``batch.cfg``) and an environment for the commands with a tiny CRDS cache."""
    work = level0.parent
    cache = build_tiny_cache(work / "crds_cache", size=64, instruments=("iris",))
    (work / "batch.cfg").write_text(SERVICE_CFG)
    return work, crds_env(cache, work)


def tmt_batch(*args, env):
    return subprocess.run(
        [BIN / "tmt-batch", *map(str, args)], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def products(folder):
    return sorted(path.name for pattern in ("*_rate.fits", "*_cal.fits") for path in Path(folder).glob(pattern))


def assert_same_products(first, second):
    """Every _rate and _cal file of two folders has the same arrays."""
    assert products(first) == products(second)
    for name in products(first):
        with fits.open(Path(first) / name) as one, fits.open(Path(second) / name) as other:
            images = [hdu.name for hdu in one if isinstance(hdu, fits.ImageHDU)]
            assert images and images == [hdu.name for hdu in other if isinstance(hdu, fits.ImageHDU)]
            for extension in images:
                np.testing.assert_array_equal(
                    one[extension].data, other[extension].data, err_msg=f"{name}[{extension}]"
                )


def assert_done_once(output_dir, names=NAMES):
    records = Ledger(output_dir).records()
    assert sorted(record["name"] for record in records) == sorted(names)
    assert all(record["status"] == "done" for record in records), [r["reason"] for r in records]


def test_choose_background_prefers_the_latest_sky_frames_before():
    sky = [
        Exposure(Path(f"/d/sky{i}_uncal.fits"), True, ("Kbb", "IMG1"), start) for i, start in enumerate((1, 2, 3, 5))
    ]
    rates = [(exposure, f"sky{i}_rate.fits") for i, exposure in enumerate(sky)]
    other = (Exposure(Path("/d/h_uncal.fits"), True, ("Hbb", "IMG1"), 3.5), "h_rate.fits")

    def science(start, key=("Kbb", "IMG1")):
        return Exposure(Path("/d/sci_uncal.fits"), False, key, start)

    assert choose_background(science(4), [*rates, other], 2) == ["sky1_rate.fits", "sky2_rate.fits"]
    assert choose_background(science(0), [*rates, other], 2) == ["sky0_rate.fits", "sky1_rate.fits"]
    assert choose_background(science(9), rates, 1) == ["sky3_rate.fits"]
    assert choose_background(science(4, ("Jbb", "IMG1")), [*rates, other], 2) == []
    assert choose_background(science(4, None), rates, 2) == []  # an unreadable file


def test_local_cluster_is_sized_to_cores_memory_and_exposures():
    from distributed.system import MEMORY_LIMIT

    assert local_cluster_size(100, 1) == (CPU_COUNT, 1)
    assert local_cluster_size(1, 1) == (1, 1)
    assert local_cluster_size(100, MEMORY_LIMIT) == (1, 1)  # one exposure needs more than the machine
    assert local_cluster_size(100, 1, workers=3, threads_per_worker=2) == (3, 2)


def test_inputs_are_files_folders_and_associations(level0, tmp_path):
    exposures = collect_exposures([level0])
    assert sorted(exposure.name for exposure in exposures) == sorted(NAMES)  # not the _truth files
    assert sum(exposure.sky for exposure in exposures) == N_SKY
    assert {exposure.sky_key for exposure in exposures} == {("Kbb", "IMG1")}
    asn = {
        "asn_type": "image2",
        "asn_rule": "test",
        "asn_pool": "test",
        "products": [
            {
                "name": "one",
                "members": [
                    {"expname": str(level0 / NAMES[-1]), "exptype": "science"},
                    {"expname": str(level0 / NAMES[0]), "exptype": "background"},
                ],
            }
        ],
    }
    (tmp_path / "asn.json").write_text(json.dumps(asn))
    chosen = collect_exposures([tmp_path / "asn.json", level0 / NAMES[-1]])
    assert [exposure.name for exposure in chosen] == [NAMES[-1], NAMES[0]]  # each file once
    shutil.copy(level0 / NAMES[0], tmp_path / NAMES[0])
    with pytest.raises(ValueError, match="same name"):
        collect_exposures([level0, tmp_path / NAMES[0]])
    with pytest.raises(FileNotFoundError, match="nowhere_uncal.fits: no such file"):
        collect_exposures([tmp_path / "nowhere_uncal.fits"])


def test_a_task_lost_with_its_workers_is_a_failed_exposure():
    from distributed import KilledWorker

    from liger_iris_pipeline.operations.batch import _record

    class Lost:
        def result(self):
            raise KilledWorker("sim_uncal.fits-0", None, 3)

    exposure = Exposure(Path("/data/sim_uncal.fits"))
    record = _record(Lost(), exposure)
    assert (record["name"], record["status"], record["input"]) == ("sim_uncal.fits", "failed", "/data/sim_uncal.fits")
    assert record["reason"].startswith("/data/sim_uncal.fits: 4 workers died while reducing it")


def test_usage_errors_are_one_line(level0, tmp_path, capsys):
    from liger_iris_pipeline.operations.batch import main

    output = ["--output-dir", str(tmp_path / "out")]
    assert main([str(level0), *output, "--workers", "0"]) == 2
    assert main([str(level0), *output, "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]) == 1
    assert main([str(tmp_path / "nowhere"), *output]) == 1
    assert main([str(tmp_path), *output]) == 1  # a folder without Level 0 files
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 4 and all(line.startswith("tmt-batch: error: ") for line in errors), errors
    assert "'0' is not a whole number of at least 1" in errors[0]
    assert "nowhere: no such file or folder" in errors[2]
    assert "no Level 0 exposures" in errors[3]
    assert not (tmp_path / "out").exists()


def test_a_writer_killed_mid_write_leaves_only_a_temporary_file(tmp_path):
    final = tmp_path / "x_cal.fits"
    code = (
        "import os, signal, sys\n"
        "from liger_iris_pipeline.lib.output import writing\n"
        "with writing(sys.argv[1]) as temporary:\n"
        "    open(temporary, 'wb').write(b'half a product')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", code, str(final)], timeout=60)
    assert result.returncode == -signal.SIGKILL
    assert not final.exists()
    assert [Path(path).name for path in partial_files(tmp_path)] == [path.name for path in tmp_path.iterdir()]
    assert len(partial_files(tmp_path)) == 1


@pytest.mark.slow
def test_embedded_batch_gives_the_serial_products_fails_corrupt_inputs_alone_and_reruns(
    batch_data, tmp_path, monkeypatch
):
    from liger_iris_pipeline.operations.reduce import ServiceConfig, reduce_exposure

    work, env = batch_data
    level0, output = work / "level0", tmp_path / "embedded"
    truncated, garbage = tmp_path / "sim_truncated_uncal.fits", tmp_path / "sim_garbage_uncal.fits"
    data = (level0 / NAMES[-1]).read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    garbage.write_bytes(b"not a FITS file\n" * 200)
    result = tmt_batch(level0, truncated, garbage, "--output-dir", output, "--config", work / "batch.cfg", env=env)
    assert result.returncode == 1, result.stderr
    assert "8 done, 2 failed, 0 already done" in result.stdout
    errors = result.stderr.splitlines()
    for broken in (truncated, garbage):
        assert any(line.startswith(f"tmt-batch: error: {broken}: ") for line in errors), result.stderr
    records = Ledger(output).records()
    assert sorted(record["name"] for record in records) == sorted([*NAMES, truncated.name, garbage.name])
    assert Ledger(output).done_names() == set(NAMES)
    assert Ledger(output).failed()[truncated.name].startswith(f"{truncated}: ")
    assert not any(name.startswith(("sim_truncated", "sim_garbage")) for name in os.listdir(output))
    assert partial_files(output) == []

    # The serial run: a plain loop, sky frames first, each science frame with the batch's choice of sky frames.
    monkeypatch.setenv("CRDS_PATH", env["CRDS_PATH"])
    config = ServiceConfig.from_file(work / "batch.cfg")
    skies = []
    for exposure in sorted(collect_exposures([level0]), key=lambda exposure: not exposure.sky):
        background = None if exposure.sky else choose_background(exposure, skies, config.max_sky_frames)
        record = reduce_exposure(exposure.path, tmp_path / "serial", config, background)
        assert record["status"] == "done", record["reason"]
        if exposure.sky:
            skies.append((exposure, record["products"]["rate"]))
    assert len(products(tmp_path / "serial")) == N_SKY + 2 * N_SCIENCE
    assert_same_products(output, tmp_path / "serial")

    # A re-run skips what is done; with nothing left to do it starts no cluster.
    again = tmt_batch(level0, "--output-dir", output, env=env)
    assert again.returncode == 0, again.stderr
    assert "0 done, 0 failed, 8 already done" in again.stdout and "worker" not in again.stdout
    assert len(Ledger(output).records()) == len(records)


def wait_for(condition, what, timeout=TIMEOUT, processes=()):
    """Poll `condition` until true; fail naming `what` on time-out or when a process exits early."""
    deadline = time.monotonic() + timeout
    while not condition():
        for process in processes:
            assert process.poll() is None, f"{process.args[:3]} exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


@pytest.mark.slow
def test_distributed_batch_survives_a_killed_worker(batch_data, tmp_path):
    work, env = batch_data
    output = tmp_path / "output"
    output.mkdir()
    # What a writer killed in an earlier run leaves behind (lib/output.py's temporary name).
    leftover = output / ".sim_science_001_cal.4242-0123456789ab.part.fits"
    leftover.write_bytes(b"half a product")
    scheduler_file = tmp_path / "scheduler.json"
    scheduler_log = tmp_path / "scheduler.log"
    processes = []

    def start(*args, log):
        with open(tmp_path / log, "w") as stream:
            processes.append(subprocess.Popen([*map(str, args)], env=env, cwd=tmp_path, stdout=stream, stderr=stream))
        return processes[-1]

    try:
        scheduler = start(
            BIN / "dask",
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            scheduler_file,
            log=scheduler_log.name,
        )
        wait_for(scheduler_file.exists, "the scheduler's address", processes=[scheduler])
        address = json.loads(scheduler_file.read_text())["address"]
        workers = [
            start(
                BIN / "dask",
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--name",
                f"worker{index}",
                log=f"worker{index}.log",
            )
            for index in range(2)
        ]
        wait_for(lambda: scheduler_log.read_text().count("Register worker") >= 2, "two workers", processes=processes)
        batch = subprocess.Popen(
            [
                BIN / "tmt-batch",
                work / "level0",
                "--output-dir",
                output,
                "--scheduler",
                address,
                "--config",
                work / "batch.cfg",
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(batch)
        # Science frames are under way on both workers once the first one is calibrated.
        wait_for(lambda: any(output.glob("*_cal.fits")), "the first product", processes=[batch])
        workers[0].send_signal(signal.SIGKILL)
        stdout, stderr = batch.communicate(timeout=TIMEOUT)
        assert batch.returncode == 0, stdout + stderr
        # The scheduler's record of the lost worker: the exposure it was reducing went to the other.
        killed = re.search(r"Register worker addr: (\S+) name: worker0\b", scheduler_log.read_text()).group(1)
        events = subprocess.run(
            [sys.executable, "-c", SCHEDULER_EVENTS, address, killed], capture_output=True, text=True, timeout=60
        )
        lost = [event for event in json.loads(events.stdout) if event["action"] == "remove-worker"]
        assert len(lost) == 1 and lost[0]["processing-tasks"], lost
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
    assert workers[0].returncode == -signal.SIGKILL
    assert "8 done, 0 failed" in stdout
    # Two one-task workers on this host share its cores for ramp fitting.
    assert f"2 worker(s), 2 task(s) at a time, ramp fitting on {max(1, CPU_COUNT // 2)} thread(s)" in stdout
    assert_done_once(output)
    assert f"removed {leftover}" in stdout
    assert partial_files(output) == []
    assert len(products(output)) == N_SKY + 2 * N_SCIENCE
    for name in products(output):
        with fits.open(output / name, checksum=True) as hdus:  # complete: every HDU's checksum holds
            hdus.verify("exception")
            assert np.isfinite(hdus["SCI"].data).any()
