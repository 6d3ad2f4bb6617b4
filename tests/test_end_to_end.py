"""End to end: simulate, build the CRDS cache with the calibration pipelines, reduce Level 0 -> 2 with
``tmtrun`` and the shipped ``.cfg`` files, and compare with the simulator's truth."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.cli.crds_cache import SEED, build
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.simulate.validation import compare_with_truth

pytestmark = pytest.mark.slow

SIZE = 256
REPO = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def tmtrun(*args, env, check=True):
    result = subprocess.run([BIN / "tmtrun", *map(str, args)], env=env, capture_output=True, text=True)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def reduction(tmp_path_factory):
    work = tmp_path_factory.mktemp("e2e")
    cache = work / "crds_cache"
    for folder in ("config", "mappings"):
        shutil.copytree(REPO / "crds_cache" / folder, cache / folder)
    build(cache, size=SIZE, log=lambda line: None, detectors=["IMG1"])  # the imager only: no IFS references
    env = {**os.environ, "CRDS_PATH": str(cache)}
    manifest = simulate.simulate_dataset(
        work / "level0", size=SIZE, nreads=10, n_science=3, n_sky=2, n_darks=3, n_flats=2, seed=SEED, n_stars=25
    )
    level1 = work / "level1"
    for ramp in manifest["science"] + manifest["sky"] + manifest["dark"] + manifest["flat"]:
        tmtrun("detector1.cfg", ramp, f"--output_dir={level1}", env=env)
    rates = {kind: sorted(level1.glob(f"sim_{kind}_*_rate.fits")) for kind in ("science", "sky", "dark", "flat")}
    asn = level1 / "image2_asn.json"
    subprocess.run([BIN / "tmt-asn", *rates["science"], "-b", *rates["sky"], "-o", asn], check=True)
    tmtrun("image2.cfg", asn, f"--output_dir={work / 'level2'}", env=env)
    return work, manifest, rates, env


def test_level2_products_match_truth(reduction):
    work, manifest, _, _ = reduction
    pulls, offsets = [], []
    for index in (1, 2, 3):
        frame = datamodels.open(work / "level2" / f"sim_science_{index:03d}_cal.fits")
        truth = simulate.ExposureTruth.load(manifest["truth"][f"sim_science_{index:03d}_uncal.fits"])
        assert frame.meta.processing_level == 2
        assert (frame.meta.obstype, frame.meta.obsname) == ("SCI", "IMG1-SCI")
        steps = frame.meta.cal_step
        assert (steps.dq_init, steps.ramp_fit, steps.background, steps.assign_wcs, steps.flat_field) == (
            "COMPLETE",
        ) * 5
        assert steps.dark_current == "SKIPPED"  # it cancels in the background subtraction
        assert frame.meta.ref_file.flat.name.startswith("crds://tmt_iris_flat")
        assert frame.meta.ref_file.crds.context_used == "tmt_0003.pmap"
        comparison = compare_with_truth(frame, truth)
        pulls.extend(comparison.flux_pulls)
        offsets.extend(comparison.position_offsets)
        assert abs(comparison.background_residual) < 4 * comparison.background_residual_error
        assert comparison.background_pull_std == pytest.approx(1.0, abs=0.1)
        assert comparison.bad_pixels_flagged == 1.0
        np.testing.assert_allclose(frame.err**2, frame.var_poisson + frame.var_rnoise + frame.var_flat, rtol=1e-4)
    pulls = np.array(pulls)
    assert pulls.size >= 15
    assert np.all(np.abs(pulls) < 5)
    assert abs(pulls.mean()) < 0.7
    assert 0.5 < pulls.std() < 1.5
    assert len(offsets) >= 3 and max(offsets) < 0.1


def test_calibration_pipelines_through_tmtrun(reduction, tmp_path):
    work, manifest, rates, env = reduction
    darks = tmp_path / "darks.json"
    subprocess.run([BIN / "tmt-asn", *rates["dark"], "-o", darks], check=True)
    tmtrun("master_dark.cfg", darks, f"--output_dir={tmp_path}", env=env)
    dark = datamodels.open(tmp_path / "sim_dark_001_dark.fits")
    assert isinstance(dark, datamodels.TMTDarkModel)
    assert (dark.meta.reftype, dark.meta.obstype, dark.meta.obsname, dark.meta.bunit_data) == (
        "DARK",
        "CAL",
        "IMG1-DRK",
        "DN/s",
    )
    truth_dark = datamodels.open(manifest["references"]["DARK"])
    good = (dark.dq & FLAGS["DO_NOT_USE"]) == 0
    pull = (dark.data - truth_dark.data)[good] / dark.err[good]
    assert abs(pull.mean()) < 0.1 and pull.std() == pytest.approx(1.0, abs=0.15)

    flats = tmp_path / "flats.json"
    subprocess.run([BIN / "tmt-asn", *rates["flat"], "-o", flats], check=True)
    tmtrun(
        "preprocess_flatfield.cfg",
        flats,
        f"--output_dir={tmp_path}",
        f"--steps.dark_current.override_dark={tmp_path / 'sim_dark_001_dark.fits'}",
        env=env,
    )
    flat = datamodels.open(tmp_path / "sim_flat_001_flat.fits")
    assert isinstance(flat, datamodels.TMTFlatModel) and flat.meta.reftype == "FLAT"
    assert flat.meta.obsname == "IMG1-NFF" and "median" in flat.meta.description
    truth_flat = datamodels.open(manifest["references"]["FLAT"])
    good = ((flat.dq | truth_flat.dq) & FLAGS["DO_NOT_USE"]) == 0
    ratio = flat.data[good] / truth_flat.data[good]
    ratio /= np.median(ratio)  # both are median-normalized, over slightly different good pixels
    assert np.std((ratio - 1) * truth_flat.data[good] / flat.err[good]) == pytest.approx(1.0, abs=0.15)


def test_tmtrun_command_line(reduction, tmp_path):
    work, manifest, rates, env = reduction
    assert "tmtrun" in tmtrun("--help", env=env).stdout
    assert "iris_readout 1." in tmtrun("--version", env=env).stdout
    listed = tmtrun("--list-cfgs", env=env).stdout
    assert all(
        name in listed for name in ("image2.cfg", "detector1.cfg", "preprocess_flatfield.cfg", "master_dark.cfg")
    )
    tmtrun("--copy-cfgs", tmp_path / "cfgs", env=env)
    assert (tmp_path / "cfgs" / "image2.cfg").exists()
    # the class path, a step parameter and an override on the command line; an ASDF parameter file
    science = rates["science"][0]
    flat = work / "crds_cache" / "references" / "tmt" / "iris" / "tmt_iris_flat_0001.fits"
    tmtrun(
        "liger_iris_pipeline.ProcessImagerL2Pipeline",
        science,
        f"--output_dir={tmp_path}",
        f"--steps.flat_field.override_flat={flat}",
        f"--save-parameters={tmp_path / 'image2.asdf'}",
        env=env,
    )
    frame = datamodels.open(tmp_path / "sim_science_001_cal.fits")
    assert frame.meta.ref_file.flat.name.endswith("tmt_iris_flat_0001.fits")
    assert frame.meta.cal_step.dark_current == "COMPLETE"  # no background members: the dark is subtracted
    tmtrun(tmp_path / "image2.asdf", science, f"--output_dir={tmp_path / 'again'}", env=env)
    assert (tmp_path / "again" / "sim_science_001_cal.fits").exists()
    # strun knows the steps through the entry point
    strun = subprocess.run([BIN / "strun", "image2", "--help"], env=env, capture_output=True, text=True)
    assert strun.returncode == 0 and "save_bsub" in strun.stdout


def test_tmtrun_failures_exit_non_zero_without_output(reduction, tmp_path):
    work, manifest, rates, env = reduction
    ramp = Path(manifest["science"][0])
    before = ramp.read_bytes()
    cases = {
        "missing": [tmp_path / "nope_uncal.fits"],
        "wrong type": [rates["science"][0]],  # a Level 1 frame given to the Level 1 pipeline
        "corrupt": [tmp_path / "corrupt_uncal.fits"],
        "bad asn": [tmp_path / "bad.json"],
    }
    (tmp_path / "corrupt_uncal.fits").write_bytes(before[: len(before) // 2])
    (tmp_path / "bad.json").write_text(json.dumps({"asn_type": "image2", "products": [{"name": "x", "members": []}]}))
    for what, args in cases.items():
        config = "image2.cfg" if what == "bad asn" else "detector1.cfg"
        result = tmtrun(config, *args, f"--output_dir={tmp_path / 'out'}", env=env, check=False)
        assert result.returncode != 0, what
        assert "error" in result.stderr.lower(), what
        assert not list((tmp_path / "out").glob("*.fits")) if (tmp_path / "out").exists() else True, what
    assert ramp.read_bytes() == before
    missing_ref = tmtrun(
        "detector1.cfg",
        ramp,
        "--steps.ramp_fit.override_gain=/nonexistent/gain.fits",
        f"--output_dir={tmp_path / 'out'}",
        env=env,
        check=False,
    )
    assert missing_ref.returncode != 0
