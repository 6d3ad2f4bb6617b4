"""FlatFieldStep: JWST semantics, bad flat pixels, variances, subarrays; dark + flat reach the scene."""

import numpy as np
import pytest
from level1_helpers import good, science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.dark_current import DarkCurrentStep
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.flat_field import FlatFieldStep

BAD = FLAGS["NO_FLAT_FIELD"] | FLAGS["DO_NOT_USE"]


@pytest.fixture(scope="module")
def dark_subtracted(det):
    level1, truth = science_frame(det)
    return DarkCurrentStep.call(level1, override_dark=sim.reference_model(det, "DARK")), truth


def test_dark_and_flat_give_the_scene_within_errors(det, dark_subtracted):
    frame, truth = dark_subtracted
    flat = sim.reference_model(det, "FLAT")
    result = FlatFieldStep.call(frame, override_flat=flat)
    assert result.meta.cal_step.flat_field == "COMPLETE"
    assert result.meta.ref_file.flat.name == "override://TMTFlatModel"
    use = good(result)
    pull = (result.data - truth.scene_rate)[use] / result.err[use]
    assert abs(pull.mean()) < 5 / np.sqrt(use.sum())
    assert abs(pull.std() - 1) < 0.03
    # JWST formulas
    square = np.where(use, flat.data, 1.0) ** 2
    np.testing.assert_allclose(result.var_poisson[use], (frame.var_poisson / square)[use], rtol=1e-5)
    np.testing.assert_allclose(result.var_rnoise[use], (frame.var_rnoise / square)[use], rtol=1e-5)
    np.testing.assert_allclose(
        result.var_flat[use], (result.data**2 * flat.err**2 / square)[use], rtol=1e-5, atol=1e-12
    )
    np.testing.assert_allclose(result.err, np.sqrt(result.var_poisson + result.var_rnoise + result.var_flat), rtol=1e-6)
    # The reference's dead and reference pixels (flat 0) reach the output DQ with NO_FLAT_FIELD.
    zero = det.flat == 0
    assert zero.any() and np.all(result.dq[zero] & BAD == BAD)


def test_bad_flat_values_are_flagged_and_divided_by_one(det, dark_subtracted):
    frame, _ = dark_subtracted
    flat = sim.reference_model(det, "FLAT")
    flat.data[20, 30] = np.nan
    flat.data[21, 30] = 0.0
    flat.data[22, 30] = -0.5
    flat.dq[23, 30] |= FLAGS["DO_NOT_USE"]
    flat.err[24, 30] = np.inf
    result = FlatFieldStep.call(frame, override_flat=flat)
    for y in (20, 21, 22, 23):
        assert result.dq[y, 30] & BAD == BAD
        assert result.data[y, 30] == frame.data[y, 30]
        assert np.isfinite(result.err[y, 30]) and result.var_flat[y, 30] == 0
    assert result.dq[24, 30] & FLAGS["UNRELIABLE_FLAT"]
    assert result.var_flat[24, 30] == 0 and np.isfinite(result.err).all()
    assert np.isfinite(result.data).all()


def test_subarray_uses_the_cut_of_a_full_frame_flat(det):
    subarray = (33, 9, 48, 64)
    full, _ = science_frame(det)
    sub, _ = science_frame(det, subarray=subarray)
    flat = sim.reference_model(det, "FLAT")
    full_result = FlatFieldStep.call(full, override_flat=flat)
    sub_result = FlatFieldStep.call(sub, override_flat=flat)
    rows, cols = sim.region_slices(subarray, det.shape)
    np.testing.assert_allclose(sub_result.data / sub.data, (full_result.data / full.data)[rows, cols], rtol=1e-6)
    np.testing.assert_allclose(
        sub_result.var_flat / sub_result.data**2, (full_result.var_flat / full_result.data**2)[rows, cols], rtol=1e-4
    )
    np.testing.assert_array_equal(sub_result.dq, full_result.dq[rows, cols])


def test_override_flat_from_a_file_and_na(tmp_path, det, dark_subtracted):
    frame, _ = dark_subtracted
    path = tmp_path / "flat.fits"
    sim.reference_model(det, "FLAT").save(path)
    result = FlatFieldStep.call(frame, override_flat=str(path))
    assert result.meta.ref_file.flat.name == str(path)
    np.testing.assert_array_equal(
        result.data, FlatFieldStep.call(frame, override_flat=sim.reference_model(det, "FLAT")).data
    )
    skipped = FlatFieldStep.call(frame, override_flat="N/A")
    assert skipped.meta.cal_step.flat_field == "SKIPPED"
    np.testing.assert_array_equal(skipped.data, frame.data)


def test_fits_round_trip_of_the_output(tmp_path, det, dark_subtracted):
    frame, _ = dark_subtracted
    result = FlatFieldStep.call(frame, override_flat=sim.reference_model(det, "FLAT"))
    result.save(tmp_path / "cal.fits")
    reread = datamodels.open(tmp_path / "cal.fits")
    for name in ("data", "err", "dq", "var_poisson", "var_rnoise", "var_flat"):
        np.testing.assert_array_equal(getattr(reread, name), getattr(result, name))
    assert reread.meta.cal_step.flat_field == "COMPLETE"
