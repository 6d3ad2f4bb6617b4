"""SubtractImagesStep: difference of two frames with variances added and DQ OR-ed."""

import numpy as np
import pytest
from level1_helpers import good, science_frame

from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.subarray import SubarrayError
from liger_iris_pipeline.subtract_images import SubtractImagesStep


def test_difference_of_two_exposures_is_consistent_with_truth(det):
    first, truth_first = science_frame(det, seed=3)
    second, truth_second = science_frame(det, seed=4)
    second.dq[5, 6] |= FLAGS["SATURATED"]
    result = SubtractImagesStep.call(first, second)
    assert result.meta.cal_step.subtract_images == "COMPLETE"
    expected = truth_first.detector_rate - truth_second.detector_rate
    use = good(result)
    pull = (result.data - expected)[use] / result.err[use]
    assert abs(pull.mean()) < 5 / np.sqrt(use.sum())
    assert abs(pull.std() - 1) < 0.03
    for name in ("var_poisson", "var_rnoise", "var_flat"):
        np.testing.assert_allclose(getattr(result, name), getattr(first, name) + getattr(second, name), rtol=1e-6)
    np.testing.assert_array_equal(result.dq, first.dq | second.dq)


def test_nan_in_the_subtracted_frame_is_flagged_not_propagated(det):
    first, _ = science_frame(det, seed=3)
    second, _ = science_frame(det, seed=4)
    second.data[7, 8] = np.nan
    result = SubtractImagesStep.call(first, second)
    assert result.data[7, 8] == first.data[7, 8]
    assert result.dq[7, 8] & FLAGS["DO_NOT_USE"]


def test_shape_and_region_mismatches_are_errors(det):
    full, _ = science_frame(det)
    sub, _ = science_frame(det, subarray=(1, 1, 64, 64))
    other, _ = science_frame(det, subarray=(65, 1, 64, 64))
    with pytest.raises(SubarrayError, match="shapes differ"):
        SubtractImagesStep.call(full, sub)
    with pytest.raises(SubarrayError, match="different detector regions"):
        SubtractImagesStep.call(sub, other)
