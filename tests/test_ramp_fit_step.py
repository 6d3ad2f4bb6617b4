"""Level 1: DQInitStep, RampFitStep and Detector1Pipeline against the simulator's truth."""

import numpy as np
import pytest

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.dq_init import DQInitStep
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.pipeline import Detector1Pipeline
from liger_iris_pipeline.ramp_fitting import RampFitStep

SIZE = 96
POINTING = (150.1, 2.2, 0.0)


@pytest.fixture(scope="module")
def detector():
    return sim.make_detector((SIZE, SIZE), seed=11)


@pytest.fixture(scope="module")
def references(detector):
    return sim.reference_models(detector)


def ramp_fit_overrides(references):
    return {f"override_{name.lower()}": references[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")}


def run_level1(ramp, references, **ramp_fit_pars):
    steps = {
        "dq_init": {"override_mask": references["MASK"]},
        "ramp_fit": {**ramp_fit_overrides(references), **ramp_fit_pars},
    }
    return Detector1Pipeline.call(ramp, steps=steps)


def usable(frame, truth):
    """Pixels with light, no flag that spoils the rate, and no jump or saturation."""
    spoiled = FLAGS["DO_NOT_USE"] | FLAGS["JUMP_DET"] | FLAGS["SATURATED"] | FLAGS["HOT"]
    return ((frame.dq & spoiled) == 0) & (truth.mask == 0)


@pytest.mark.parametrize(("mode", "nfowler"), [("UTR", 1), ("CDS", 1), ("MCDS", 3)])
def test_rate_and_error_match_truth(detector, references, mode, nfowler):
    scene = sim.Scene.random(15, 3, *POINTING[:2], field=SIZE * 0.004)
    ramp, truth = sim.simulate_exposure(
        scene,
        detector,
        nreads=10,
        readout_mode=mode,
        nfowler=nfowler,
        pointing=POINTING,
        seed=5,
        cosmic_ray_rate=0.0,
    )
    frame = run_level1(ramp, references)
    assert isinstance(frame, datamodels.IRISImageModel)
    assert frame.meta.processing_level == 1
    assert frame.meta.cal_step.dq_init == frame.meta.cal_step.ramp_fit == "COMPLETE"
    assert frame.meta.exposure.readout_mode == mode
    assert (frame.meta.obstype, frame.meta.obsname) == ("SCI", "IMG1-SCI")
    good = usable(frame, truth)
    assert good.sum() > 0.7 * SIZE * SIZE
    pull = (frame.data - truth.detector_rate)[good] / frame.err[good]
    assert abs(pull.mean()) < 0.05
    assert abs(pull.std() - 1) < 0.1
    np.testing.assert_allclose(frame.err**2, frame.var_poisson + frame.var_rnoise + frame.var_flat, rtol=1e-5)
    # the mask reaches the output DQ
    flagged = (references["MASK"].dq & FLAGS["DO_NOT_USE"]) != 0
    assert np.all(frame.dq[flagged] & FLAGS["DO_NOT_USE"])
    assert np.all(
        frame.dq[references["MASK"].dq == (FLAGS["REFERENCE_PIXEL"] | FLAGS["DO_NOT_USE"])] & FLAGS["REFERENCE_PIXEL"]
    )


def test_high_signal_rate_is_unbiased_after_nonlinearity_correction(detector, references):
    # A bright flat lamp takes the pixels to ~60 % of full well, where the nonlinearity is several percent.
    ramp, truth = sim.simulate_flat_exposure(
        detector, lamp_rate=2000.0, nreads=10, pointing=POINTING, seed=7, cosmic_ray_rate=0.0
    )
    frame = run_level1(ramp, references)
    good = usable(frame, truth)
    bias = np.mean(frame.data[good] / truth.detector_rate[good]) - 1
    assert abs(bias) < 1e-3
    # without the correction the same ramps are biased low by percents: the test can tell
    uncorrected = run_level1(ramp, references, override_nonlin="N/A")
    assert np.mean(uncorrected.data[good] / truth.detector_rate[good]) - 1 < -0.01


def test_jumps_flagged_and_rates_recovered(detector, references):
    scene = sim.Scene.random(5, 4, *POINTING[:2], field=SIZE * 0.004)
    ramp, truth = sim.simulate_exposure(scene, detector, nreads=12, pointing=POINTING, seed=9, cosmic_ray_rate=2e-3)
    frame = run_level1(ramp, references, jump_threshold=5.0)
    rays = truth.cosmic_rays
    exposed = truth.mask[rays["y"], rays["x"]] == 0
    not_edge = (rays["read"] > 0) & (rays["read"] < 12)
    read_noise = references["READNOISE"].data[rays["y"], rays["x"]]
    strong = exposed & not_edge & (rays["amplitude"] >= 10 * np.sqrt(2) * read_noise)
    assert strong.sum() > 100
    hit = (frame.dq[rays["y"][strong], rays["x"][strong]] & FLAGS["JUMP_DET"]) != 0
    assert hit.mean() >= 0.99
    clean = np.ones((SIZE, SIZE), bool)
    clean[rays["y"], rays["x"]] = False
    clean &= truth.mask == 0
    clean &= truth.first_saturated_read[0] < 0
    false_rate = np.mean((frame.dq[clean] & FLAGS["JUMP_DET"]) != 0)
    assert false_rate < 1e-3
    # the rate of a pixel with a jump comes from the ramp segments around it
    y, x = rays["y"][strong][hit], rays["x"][strong][hit]
    single = np.bincount(y * SIZE + x, minlength=SIZE * SIZE)[y * SIZE + x] == 1
    pull = (frame.data[y, x] - truth.detector_rate[y, x]) / frame.err[y, x]
    assert np.median(np.abs(pull[single])) < 1.0


def test_pixels_saturating_mid_ramp_get_rate_from_earlier_reads(detector, references):
    bright = sim.Scene(
        center=POINTING[:2], ra=np.array([POINTING[0]]), dec=np.array([POINTING[1]]), flux=np.array([6e5])
    )
    ramp, truth = sim.simulate_exposure(bright, detector, nreads=10, pointing=POINTING, seed=2, cosmic_ray_rate=0.0)
    frame = run_level1(ramp, references)
    first = truth.first_saturated_read[0]
    mid_ramp = (first >= 3) & (truth.mask == 0)
    assert mid_ramp.sum() >= 5
    assert np.all(frame.dq[mid_ramp] & FLAGS["SATURATED"])
    assert not np.any(frame.dq[mid_ramp] & FLAGS["DO_NOT_USE"])
    pull = (frame.data[mid_ramp] - truth.detector_rate[mid_ramp]) / frame.err[mid_ramp]
    assert np.all(np.abs(pull) < 5)
    saturated_at_once = (first == 0) | (first == 1)
    assert np.all(frame.dq[saturated_at_once & (truth.mask == 0)] & FLAGS["DO_NOT_USE"])


def test_integrations_combine_by_inverse_variance(detector, references):
    scene = sim.Scene.random(5, 6, *POINTING[:2], field=SIZE * 0.004)
    ramp, truth = sim.simulate_exposure(
        scene, detector, nreads=6, nints=3, pointing=POINTING, seed=4, cosmic_ray_rate=0.0
    )
    combined = run_level1(ramp, references)
    single, _ = sim.simulate_exposure(
        scene, detector, nreads=6, nints=1, pointing=POINTING, seed=4, cosmic_ray_rate=0.0
    )
    one = run_level1(single, references)
    good = usable(combined, truth) & usable(one, truth)
    pull = (combined.data - truth.detector_rate)[good] / combined.err[good]
    assert abs(pull.std() - 1) < 0.1
    ratio = np.median(one.var_rnoise[good] / combined.var_rnoise[good])
    assert ratio == pytest.approx(3.0, rel=0.05)


def test_subarray_uses_full_frame_references(detector, references):
    scene = sim.Scene.random(10, 3, *POINTING[:2], field=SIZE * 0.004)
    subarray = (21, 31, 40, 24)
    ramp, truth = sim.simulate_exposure(
        scene, detector, nreads=8, pointing=POINTING, seed=8, subarray=subarray, cosmic_ray_rate=0.0
    )
    assert ramp.data.shape == (1, 8, 24, 40)
    frame = run_level1(ramp, references)
    assert frame.data.shape == (24, 40)
    assert (frame.meta.subarray.xstart, frame.meta.subarray.ystart) == (21, 31)
    good = usable(frame, truth)
    pull = (frame.data - truth.detector_rate)[good] / frame.err[good]
    assert abs(pull.mean()) < 0.1 and abs(pull.std() - 1) < 0.15
    rows, columns = slice(30, 54), slice(20, 60)
    np.testing.assert_array_equal(frame.dq & references["MASK"].dq[rows, columns], references["MASK"].dq[rows, columns])


def test_output_file_round_trip(tmp_path, detector, references):
    ramp, _ = sim.simulate_dark_exposure(detector, nreads=4, pointing=POINTING, seed=1)
    ramp.meta.filename = "dark_uncal.fits"
    path = tmp_path / "dark_uncal.fits"
    ramp.save(path)
    steps = {"dq_init": {"override_mask": references["MASK"]}, "ramp_fit": ramp_fit_overrides(references)}
    Detector1Pipeline.call(str(path), steps=steps, save_results=True, output_dir=str(tmp_path))
    frame = datamodels.open(tmp_path / "dark_rate.fits")
    assert isinstance(frame, datamodels.IRISImageModel)
    assert (frame.meta.obstype, frame.meta.obsname) == ("CAL", "IMG1-DRK")
    assert frame.meta.ref_file.mask.name and frame.meta.ref_file.gain.name
    assert frame.err.dtype.name == "float32" and frame.dq.dtype.name == "uint32"


def test_bad_inputs_raise_clear_errors(detector, references):
    ramp, _ = sim.simulate_dark_exposure(detector, nreads=4, pointing=POINTING, seed=1)
    frame = datamodels.IRISImageModel((4, 4))
    with pytest.raises(TypeError, match=r"must be a TMTRampModel \(Level 0 ramp\), this is a IRISImageModel"):
        RampFitStep.call(frame, **ramp_fit_overrides(references))
    short = ramp.copy()
    short.read_times = short.read_times[:2]
    with pytest.raises(ValueError, match=r"READ_TIMES must hold one time per read \(4\), found shape \(2,\)"):
        RampFitStep.call(short, **ramp_fit_overrides(references))
    one_read = datamodels.TMTRampModel(ramp.data[:, :1].copy())
    one_read.update(ramp)
    one_read.read_times = ramp.read_times[:1]
    with pytest.raises(ValueError, match="a ramp needs at least 2 reads per integration to measure a rate, it has 1"):
        RampFitStep.call(one_read, **ramp_fit_overrides(references))
    with pytest.raises(ValueError, match="needs a readnoise reference to compute the errors"):
        RampFitStep.call(ramp, **{**ramp_fit_overrides(references), "override_readnoise": "N/A"})
    with pytest.raises(TypeError, match="must be a TMTRampModel or IRISImageModel"):
        DQInitStep.call(references["GAIN"], override_mask=references["MASK"])


def test_one_coefficient_nonlinearity_reference_is_named(tmp_path, detector, references):
    ramp, _ = sim.simulate_dark_exposure(detector, nreads=4, pointing=POINTING, seed=1)
    bad = references["NONLIN"].copy()
    bad.coeffs = np.ascontiguousarray(bad.coeffs[:1])
    path = tmp_path / "nonlin_one_coeff.fits"
    bad.save(path)
    overrides = {**ramp_fit_overrides(references), "override_nonlin": str(path)}
    with pytest.raises(ValueError, match=r"nonlin_one_coeff.fits: a nonlinearity reference needs COEFFS .* 2..16"):
        RampFitStep.call(ramp, **overrides)


@pytest.mark.parametrize("bad", [np.nan, 0.0, -2.0, np.inf])
def test_damaged_gain_reference_marks_pixels_do_not_use(detector, references, bad):
    ramp, _ = sim.simulate_dark_exposure(detector, nreads=5, pointing=POINTING, seed=2)
    gain = references["GAIN"].copy()
    gain.data[10:12, 20:25] = bad
    rn = references["READNOISE"].copy()
    rn.data[30, 30] = np.nan
    overrides = {**ramp_fit_overrides(references), "override_gain": gain, "override_readnoise": rn}
    frame = RampFitStep.call(ramp, **overrides)
    block = frame.dq[10:12, 20:25]
    assert ((block & FLAGS["DO_NOT_USE"]) != 0).all() and ((block & FLAGS["NO_GAIN_VALUE"]) != 0).all()
    assert np.isnan(frame.data[10:12, 20:25]).all() and np.isnan(frame.err[10:12, 20:25]).all()
    assert frame.dq[30, 30] & FLAGS["UNRELIABLE_ERROR"] and frame.dq[30, 30] & FLAGS["DO_NOT_USE"]
    assert np.isnan(frame.data[30, 30])
