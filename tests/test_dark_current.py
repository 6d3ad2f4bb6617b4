"""DarkCurrentStep: dark rate subtracted, variance into VAR_RNOISE, NaN darks flagged, subarrays."""

import numpy as np
import pytest
from level1_helpers import good, science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.dark_current import DarkCurrentStep
from liger_iris_pipeline.dark_current.dark_sub import subtract_dark
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.subarray import SubarrayError


@pytest.fixture(scope="module")
def frame(det):
    return science_frame(det)


def test_dark_subtracted_matches_truth_within_errors(det, frame):
    level1, truth = frame
    dark = sim.reference_model(det, "DARK")
    result = DarkCurrentStep.call(level1, override_dark=dark)
    assert result.meta.cal_step.dark_current == "COMPLETE"
    assert result.meta.ref_file.dark.name == "override://TMTDarkModel"
    expected = truth.scene_rate * det.flat
    use = good(result)
    pull = (result.data - expected)[use] / result.err[use]
    assert abs(pull.mean()) < 5 / np.sqrt(use.sum())
    assert abs(pull.std() - 1) < 0.03
    np.testing.assert_allclose(result.var_rnoise, level1.var_rnoise + dark.err**2, rtol=1e-6)
    np.testing.assert_allclose(result.err, np.sqrt(result.var_poisson + result.var_rnoise + result.var_flat), rtol=1e-6)
    assert np.all(result.dq & dark.dq == dark.dq)
    # The input model is left alone.
    assert level1.meta.cal_step.dark_current is None


def test_dark_in_counts_is_divided_by_its_integration_time(det, frame):
    level1, _ = frame
    rate = sim.reference_model(det, "DARK")
    counts = rate.copy()
    counts.meta.bunit_data = "DN"
    counts.meta.exposure.integration_time = 50.0
    counts.data = rate.data * 50.0
    counts.err = rate.err * 50.0
    from_rate = DarkCurrentStep.call(level1, override_dark=rate)
    from_counts = DarkCurrentStep.call(level1, override_dark=counts)
    np.testing.assert_allclose(from_counts.data, from_rate.data, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(from_counts.var_rnoise, from_rate.var_rnoise, rtol=1e-5)
    counts.meta.exposure.integration_time = None
    with pytest.raises(ValueError, match="no positive integration time"):
        DarkCurrentStep.call(level1, override_dark=counts)


def test_nan_dark_pixels_are_flagged_and_science_kept(det, frame):
    level1, _ = frame
    dark = sim.reference_model(det, "DARK")
    dark.data[10, 20] = np.nan
    dark.err[30, 40] = np.nan
    result = DarkCurrentStep.call(level1, override_dark=dark)
    flags = FLAGS["UNRELIABLE_DARK"] | FLAGS["DO_NOT_USE"]
    for y, x in ((10, 20), (30, 40)):
        assert result.dq[y, x] & flags == flags
        assert result.data[y, x] == level1.data[y, x]
        assert np.isfinite(result.err[y, x])
    assert np.count_nonzero(result.dq & FLAGS["UNRELIABLE_DARK"]) == 2


def test_full_frame_dark_is_cut_to_the_subarray(det):
    subarray = (21, 31, 40, 24)
    full, _ = science_frame(det)
    sub, _ = science_frame(det, subarray=subarray)
    dark = sim.reference_model(det, "DARK")
    full_result = DarkCurrentStep.call(full, override_dark=dark)
    sub_result = DarkCurrentStep.call(sub, override_dark=dark)
    rows, cols = sim.region_slices(subarray, det.shape)
    np.testing.assert_allclose(
        sub_result.data - sub.data, full_result.data[rows, cols] - full.data[rows, cols], rtol=0, atol=1e-5
    )
    np.testing.assert_array_equal(sub_result.dq, full_result.dq[rows, cols])
    # A subarray reference containing the science subarray works too.
    sub_dark = sim.reference_model(det, "DARK", subarray=(11, 21, 80, 60))
    np.testing.assert_array_equal(DarkCurrentStep.call(sub, override_dark=sub_dark).data, sub_result.data)


def test_science_outside_the_dark_is_a_clear_error(det):
    sub, _ = science_frame(det, subarray=(61, 61, 40, 40))
    small_dark = sim.reference_model(det, "DARK", subarray=(1, 1, 80, 80))
    with pytest.raises(SubarrayError, match="outside TMTDarkModel"):
        subtract_dark(sub, small_dark)


def test_wrong_models_are_rejected(det, frame):
    level1, _ = frame
    with pytest.raises(TypeError, match="dark reference of DarkCurrentStep must be a TMTDarkModel"):
        DarkCurrentStep.call(level1, override_dark=sim.reference_model(det, "FLAT"))
    with pytest.raises(TypeError, match="must be an IRISImageModel"):
        DarkCurrentStep.call(sim.reference_model(det, "FLAT"), override_dark=sim.reference_model(det, "DARK"))


def test_na_dark_skips(frame):
    level1, _ = frame
    result = DarkCurrentStep.call(level1, override_dark="N/A")
    assert result.meta.cal_step.dark_current == "SKIPPED"
    np.testing.assert_array_equal(result.data, level1.data)


def test_fits_round_trip_of_the_output(tmp_path, det, frame):
    level1, _ = frame
    path = tmp_path / "sci_rate.fits"
    level1.save(path)
    result = DarkCurrentStep.call(str(path), override_dark=sim.reference_model(det, "DARK"))
    result.save(tmp_path / "out.fits")
    reread = datamodels.open(tmp_path / "out.fits")
    assert reread.meta.cal_step.dark_current == "COMPLETE"
    np.testing.assert_array_equal(reread.data, result.data)
    np.testing.assert_array_equal(reread.var_rnoise, result.var_rnoise)
    np.testing.assert_array_equal(reread.dq, result.dq)
