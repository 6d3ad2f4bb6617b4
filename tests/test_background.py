"""BackgroundStep: combined sky exposures subtracted to a residual consistent with zero."""

import numpy as np
import pytest
from level1_helpers import good, level1_from_truth, science_frame

from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.background import BackgroundStep
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.flat_field import FlatFieldStep
from liger_iris_pipeline.lib.combine import combine_frames

SKY = 40.0


@pytest.fixture(scope="module")
def science(det):
    return science_frame(det, sky=SKY, n_stars=10)


def sky_frames(det, count, sky=SKY):
    frames = []
    for seed in range(count):
        ramp, truth = sim.simulate_sky_exposure(det, sky=sky, nreads=5, seed=100 + seed, noiseless=True)
        frames.append(level1_from_truth(ramp, truth, seed=200 + seed))
    return frames


def test_sky_exposures_subtract_to_zero_within_errors(det, science):
    level1, truth = science
    members = sky_frames(det, 4)
    members[0].data[40, 50] = 1.0e5  # a cosmic ray in one member is clipped
    members[1].dq[60, 70] |= FLAGS["DO_NOT_USE"]
    result = BackgroundStep.call(level1, members)
    assert result.meta.cal_step.background == "COMPLETE"
    expected = (truth.scene_rate - truth.sky_rate) * det.flat
    use = good(result)
    pull = (result.data - expected)[use] / result.err[use]
    assert abs(pull.mean()) < 5 / np.sqrt(use.sum())
    assert abs(pull.std() - 1) < 0.03
    # Each variance component gained the mean member component / number of members.
    for name in ("var_poisson", "var_rnoise"):
        added = np.mean([getattr(member, name) for member in members], axis=0) / 4
        np.testing.assert_allclose(
            (getattr(result, name) - getattr(level1, name))[100, 100], added[100, 100], rtol=1e-5
        )
    assert abs(result.data[40, 50] - expected[40, 50]) < 5 * result.err[40, 50]
    assert result.var_rnoise[40, 50] > result.var_rnoise[41, 50]  # the outlier was rejected
    assert result.var_rnoise[60, 70] > result.var_rnoise[61, 70]  # 3 members there instead of 4


def test_members_are_scaled_to_the_science_sky(det, science):
    level1, truth = science
    members = sky_frames(det, 2, sky=SKY / 2)
    unscaled = BackgroundStep.call(level1, members)
    scaled = BackgroundStep.call(level1, members, scale_to_science=True)
    use = good(scaled)
    expected = (truth.scene_rate - truth.sky_rate) * det.flat
    assert np.median((unscaled.data - expected)[use]) > 10.0
    assert abs(np.median(((scaled.data - expected) / scaled.err)[use])) < 0.1


def test_no_usable_member_flags_and_keeps_the_pixel(det, science):
    level1, _ = science
    members = sky_frames(det, 2)
    for member in members:
        member.dq[12, 13] |= FLAGS["DO_NOT_USE"]
    combined, used = combine_frames(members)
    assert used[12, 13] == 0 and np.isnan(combined.data[12, 13])
    result = BackgroundStep.call(level1, members)
    assert result.dq[12, 13] & FLAGS["DO_NOT_USE"]
    assert result.data[12, 13] == level1.data[12, 13]


def test_sky_from_science(det, science):
    level1, truth = science
    flat_fielded = FlatFieldStep.call(level1, override_flat=sim.reference_model(det, "FLAT"))
    result = BackgroundStep.call(flat_fielded, sky_from_science=True)
    assert result.meta.cal_step.background == "COMPLETE"
    # Dark current (~0.03 DN/s) is still in the frame; the level removed is sky + dark.
    use = good(result)
    residual = np.median((result.data - (truth.scene_rate - truth.sky_rate))[use])
    assert abs(residual) < 0.1
    added = result.var_poisson - flat_fielded.var_poisson
    assert np.all(added[use] > 0)
    np.testing.assert_allclose(added[use], added[use].mean(), rtol=0.05)


def test_no_members_and_no_sky_option_skips(science):
    level1, _ = science
    result = BackgroundStep.call(level1)
    assert result.meta.cal_step.background == "SKIPPED"
    np.testing.assert_array_equal(result.data, level1.data)


def test_combined_background_is_saved(tmp_path, det, science):
    level1, _ = science
    level1 = level1.copy()
    level1.meta.filename = "sci_rate.fits"
    BackgroundStep.call(level1, sky_frames(det, 2), save_combined_background=True, output_dir=str(tmp_path))
    assert list(tmp_path.glob("*combinedbackground.fits"))


def test_members_of_another_region_are_an_error(det, science):
    level1, _ = science
    ramp, truth = sim.simulate_sky_exposure(det, sky=SKY, nreads=5, subarray=(1, 1, 64, 64), noiseless=True)
    with pytest.raises(ValueError, match="frames to combine differ"):
        BackgroundStep.call(level1, [*sky_frames(det, 1), level1_from_truth(ramp, truth)])
