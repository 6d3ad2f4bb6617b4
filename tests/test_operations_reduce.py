"""The per-exposure reducer of the service and the batch (``operations/reduce.py``) and the ledger."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.associations import make_asn
from liger_iris_pipeline.cli.tmtrun import main as tmtrun
from liger_iris_pipeline.datamodels import header_metadata
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.operations.ledger import Ledger
from liger_iris_pipeline.operations.reduce import (
    ExposureReducer,
    ServiceConfig,
    is_sky_frame,
    reduce_exposure,
    sky_key,
)
from liger_iris_pipeline.simulate.validation import compare_with_truth


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """A tiny CRDS cache (CRDS_PATH for the module) and 2 sky + 3 science Level 0 exposures with their truth."""
    from crds_helpers import build_tiny_cache

    work = tmp_path_factory.mktemp("night")
    cache = build_tiny_cache(work / "crds_cache", instruments=["iris"])
    manifest = simulate.simulate_dataset(
        work / "level0", size=64, nreads=3, n_science=3, n_sky=2, n_darks=0, n_flats=0, n_stars=8
    )
    with pytest.MonkeyPatch.context() as patch:
        # Only the user's choices: crds keeps its own settings in os.environ once imported.
        for key in ("CRDS_CONTEXT", "CRDS_SERVER_URL"):
            patch.delenv(key, raising=False)
        patch.setenv("CRDS_PATH", str(cache))
        yield {"cache": cache, **manifest}


def files_left(folder):
    """Names in `folder` that are not finished products (temporary files are dotfiles or *.part*)."""
    return [path.name for path in folder.iterdir() if path.name.startswith(".") or ".part" in path.name]


def truth_of(product, night):
    """The simulator's truth of the exposure a product was reduced from."""
    name = os.path.basename(product).rsplit("_", 1)[0] + "_uncal.fits"
    return simulate.ExposureTruth.load(night["truth"][name])


def check_rate(rate_path, night):
    """The rate frame measures the truth's detector rate, within its errors."""
    truth = truth_of(rate_path, night)
    with datamodels.open(rate_path) as rate:
        good = (rate.dq & FLAGS["DO_NOT_USE"]) == 0
        pulls = ((rate.data - truth.detector_rate) / rate.err)[good]
    assert good.sum() > 0.7 * good.size
    assert abs(np.median(pulls)) < 0.1
    assert 0.85 < np.std(pulls) < 1.15


def check_sky_removed(cal_path, night, bias=0.0):
    """The calibrated frame's source-free pixels average zero: within 4 sigma of their mean, plus `bias`
    (a fraction of one pixel's noise)."""
    with datamodels.open(cal_path) as frame:
        comparison = compare_with_truth(frame, truth_of(cal_path, night))
        noise = float(np.median(frame.err))
    assert abs(comparison.background_pull_std - 1) < 0.15
    assert abs(comparison.background_residual) < 4 * comparison.background_residual_error + bias * noise


def test_sky_frames_then_science_with_them_as_background(night, tmp_path):
    reducer = ExposureReducer(tmp_path)
    skies = [reducer.reduce(path) for path in night["sky"]]
    assert [sky.status for sky in skies] == ["done", "done"], [sky.reason for sky in skies]
    assert sorted(skies[0].products) == ["png", "rate"]  # a sky frame stops at Level 1
    assert skies[0].qa["exposure_type"].endswith("_SKY")
    science = reducer.reduce(night["science"][0])
    assert science.status == "done", science.reason
    assert sorted(science.products) == ["cal", "png", "rate", "regions"]
    for path in science.products.values():
        assert os.path.isfile(path)
    with datamodels.open(science.products["cal"]) as cal:
        assert cal.meta.background.n_members == 2  # both sky frames of its filter
        assert cal.meta.cal_step.background == "COMPLETE"
        assert cal.meta.cal_step.dark_current == "SKIPPED"  # it cancels in the sky difference
    check_rate(skies[0].products["rate"], night)
    check_rate(science.products["rate"], night)
    check_sky_removed(science.products["cal"], night)
    record = json.loads(json.dumps(science.as_record()))
    assert record["name"] == os.path.basename(night["science"][0])
    assert record["input"] == str(night["science"][0])
    assert set(record["latency"]) == {"detector1", "image2", "qa", "quicklook", "total"}
    assert record["latency"]["total"] >= record["latency"]["detector1"] + record["latency"]["image2"]
    assert record["qa"]["n_stars"] >= 1
    # The batch's client decides from headers alone, with the reducer's rule.
    assert not reducer.remember_sky(science.products["rate"])
    header = header_metadata(night["sky"][0], datamodels.TMTRampModel)
    assert is_sky_frame(header) and sky_key(header) == ("Kbb", "IMG1")
    assert reducer.sky_frames(datamodels.open(science.products["cal"])) == [sky.products["rate"] for sky in skies]

    # Warm (after three frames) or cold, the products are the same: tmtrun on the same frame and skies.
    warm = reducer.reduce(night["science"][1])
    cold = tmp_path / "cold"
    assert tmtrun(["detector1.cfg", night["science"][1], f"--output_dir={cold}", "--log-level=WARNING"]) == 0
    rates = [sky.products["rate"] for sky in skies]
    make_asn([cold / "sim_science_002_rate.fits"], rates, output=cold / "asn.json")
    assert tmtrun(["image2.cfg", str(cold / "asn.json"), f"--output_dir={cold}", "--log-level=WARNING"]) == 0
    for kind in ("rate", "cal"):
        theirs_path = cold / f"sim_science_002_{kind}.fits"
        with datamodels.open(warm.products[kind]) as ours, datamodels.open(theirs_path) as theirs:
            for array in ("data", "err", "dq", "var_poisson", "var_rnoise"):
                np.testing.assert_array_equal(getattr(ours, array), getattr(theirs, array), err_msg=f"{kind} {array}")
    assert not files_left(tmp_path)


def test_own_sky(night, tmp_path):
    config = ServiceConfig(background="own_sky", quicklook=False)
    reducer = ExposureReducer(tmp_path, config)
    result = reducer.reduce(night["science"][1])
    assert result.status == "done", result.reason
    assert sorted(result.products) == ["cal", "rate"]
    with datamodels.open(result.products["cal"]) as cal:
        assert cal.meta.background.method == "sky_from_science"
        assert cal.meta.cal_step.dark_current == "COMPLETE"
    # The median of a frame with stars sits a little above its sky: a small bias, not 4 sigma of the mean.
    check_sky_removed(result.products["cal"], night, bias=0.25)


def test_failures_leave_nothing_and_the_next_frame_is_reduced(night, tmp_path):
    reducer = ExposureReducer(tmp_path / "out", ServiceConfig(quicklook=False))
    truncated = tmp_path / "cut_uncal.fits"
    truncated.write_bytes(Path(night["science"][2]).read_bytes()[:20000])
    result = reducer.reduce(truncated)
    assert result.status == "failed"
    assert result.reason.startswith(f"{truncated}: not a readable FITS file")
    assert result.products == {} and result.qa == {}

    sky = reducer.reduce(night["sky"][0])
    wrong = reducer.reduce(sky.products["rate"])  # a Level 1 frame is no Level 0 ramp
    assert wrong.status == "failed"
    assert wrong.reason.startswith(f"{sky.products['rate']}: the input of ramp_fit must be a TMTRampModel")

    # A reference missing from the cache fails image2, after detector1: the frame leaves no _rate either.
    flat = next((night["cache"] / "references" / "tmt" / "iris").glob("*_flat_*.fits"))
    hidden = flat.with_name("hidden.fits")
    flat.rename(hidden)
    try:
        missing = reducer.reduce(night["science"][2])
    finally:
        hidden.rename(flat)
    assert missing.status == "failed"
    # As tmtrun image2 would say it of the frame (image2 works on the _rate in memory).
    assert missing.reason.startswith("sim_science_003_rate.fits: the FLAT rule in tmt_iris_flat_0002.rmap")
    assert not (tmp_path / "out" / "sim_science_003_rate.fits").exists()

    after = reducer.reduce(night["science"][2])
    assert after.status == "done", after.reason
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "sim_science_003_cal.fits",
        "sim_science_003_rate.fits",
        "sim_sky_001_rate.fits",
    ]


def test_a_new_crds_context_is_followed(night, tmp_path, monkeypatch):
    reducer = ExposureReducer(tmp_path, ServiceConfig(quicklook=False))
    first = reducer.reduce(night["science"][0])
    with datamodels.open(first.products["cal"]) as cal:
        assert cal.meta.ref_file.crds.context_used == "tmt_0003.pmap"
        assert cal.meta.cal_step.photom == "COMPLETE"
    # tmt_0001 predates the photom references: the same warm reducer must stop finding one.
    monkeypatch.setenv("CRDS_CONTEXT", "tmt_0001.pmap")
    second = reducer.reduce(night["science"][1])
    assert reducer.context == "tmt_0001.pmap"
    with datamodels.open(second.products["cal"]) as cal:
        assert cal.meta.ref_file.crds.context_used == "tmt_0001.pmap"
        assert cal.meta.cal_step.photom == "SKIPPED"
    monkeypatch.delenv("CRDS_CONTEXT")
    third = reducer.reduce(night["science"][2])
    with datamodels.open(third.products["cal"]) as cal:
        assert cal.meta.ref_file.crds.context_used == "tmt_0003.pmap"


def test_reduce_exposure_keeps_one_reducer_and_takes_the_background_it_is_given(night, tmp_path):
    from liger_iris_pipeline.operations import reduce

    config = ServiceConfig(quicklook=False)
    sky = reduce_exposure(night["sky"][0], tmp_path / "sky", config)
    count = len(reduce._REDUCERS)
    # The batch names the sky frames itself: here one, reduced into another folder.
    science = reduce_exposure(
        str(night["science"][1]), str(tmp_path / "sky"), config, background=[sky["products"]["rate"]]
    )
    assert len(reduce._REDUCERS) == count
    assert (sky["status"], science["status"]) == ("done", "done"), science["reason"]
    assert json.loads(json.dumps(science))["products"]["cal"] == str(tmp_path / "sky" / "sim_science_002_cal.fits")
    with datamodels.open(science["products"]["cal"]) as cal:
        assert cal.meta.background.n_members == 1


def test_service_config_file(tmp_path):
    path = tmp_path / "service.cfg"
    path.write_text("background = own_sky\nmax_sky_frames = 3\nquicklook = false\nimage2_cfg = my_image2.cfg\n")
    config = ServiceConfig.from_file(path)
    assert config == ServiceConfig(
        image2_cfg=str(tmp_path / "my_image2.cfg"), background="own_sky", max_sky_frames=3, quicklook=False
    )
    path.write_text("background = moon\n")
    with pytest.raises(ValueError, match=rf"^{path}: background: .*moon"):
        ServiceConfig.from_file(path)
    path.write_text("backgruond = own_sky\n")
    with pytest.raises(ValueError, match=rf"^{path}: unknown key\(s\) backgruond"):
        ServiceConfig.from_file(path)
    with pytest.raises(ValueError, match="max_sky_frames"):
        ServiceConfig(max_sky_frames=0)


def test_ledger(tmp_path, caplog):
    ledger = Ledger(tmp_path)
    assert ledger.records() == [] and ledger.done_names() == set()
    ledger.append({"name": "a.fits", "status": "failed", "reason": "a.fits: bad"})
    ledger.append({"name": "b.fits", "status": "done", "reason": ""})
    assert ledger.done_names() == {"b.fits"}
    assert ledger.failed() == {"a.fits": "a.fits: bad"}
    # A crash in the middle of a line: that line is ignored (and reported), the next record is whole.
    with open(ledger.path, "a") as stream:
        stream.write('{"name": "c.fits", "sta')
    ledger.append({"name": "a.fits", "status": "done", "reason": ""})
    assert ledger.done_names() == {"a.fits", "b.fits"}
    assert ledger.failed() == {}
    assert [record["name"] for record in ledger.records()] == ["a.fits", "b.fits", "a.fits"]
    assert "line 3 is not a complete record" in caplog.text
    with pytest.raises(ValueError, match="needs a name and a status"):
        ledger.append({"name": "d.fits"})
