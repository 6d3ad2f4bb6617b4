"""NormalizeStep: mean / median / mode over good pixels only."""

import numpy as np
import pytest
from level1_helpers import detector, science_frame

from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.stats import mode_estimate
from liger_iris_pipeline.normalize import NormalizeStep
from liger_iris_pipeline.normalize.normalize import normalization_value


@pytest.fixture(scope="module")
def frame():
    level1, _ = science_frame(detector(), n_stars=0, sky=100.0)
    return level1


@pytest.mark.parametrize("method", ["mean", "median", "mode"])
def test_bad_and_nan_pixels_are_ignored(frame, method):
    polluted = frame.copy()
    polluted.data[:10] = 1.0e6
    polluted.dq[:10] |= FLAGS["DO_NOT_USE"]
    polluted.data[10, :] = np.nan
    use = ((frame.dq & FLAGS["DO_NOT_USE"]) == 0) & np.isfinite(polluted.data)
    use[:10] = False
    value, count = normalization_value(polluted, method)
    assert count == use.sum()
    reference = {"mean": np.mean, "median": np.median, "mode": mode_estimate}[method](
        frame.data[use].astype(np.float64)
    )
    assert value == pytest.approx(reference, rel=1e-6)

    result = NormalizeStep.call(polluted, method=method)
    assert result.meta.cal_step.normalize == "COMPLETE"
    np.testing.assert_allclose(result.data[use], polluted.data[use] / value, rtol=1e-6)
    for name in ("var_poisson", "var_rnoise", "var_flat"):
        np.testing.assert_allclose(getattr(result, name), getattr(polluted, name) / value**2, rtol=1e-5)
    np.testing.assert_allclose(result.err, polluted.err / value, rtol=1e-5)
    assert np.isnan(result.data[10]).all()


def test_statistics_of_a_known_sample():
    rng = np.random.default_rng(0)
    sample = rng.normal(5.0, 1.0, 200_000)
    assert mode_estimate(sample) == pytest.approx(5.0, abs=0.01)
    # A tail of sources: the mode stays near the peak, the mean does not.
    skewed = np.concatenate([sample, rng.uniform(6.0, 50.0, 20_000)])
    assert abs(mode_estimate(skewed) - 5.0) < 0.1 < np.mean(skewed) - 5.0


def test_a_frame_without_good_pixels_is_an_error(frame):
    bad = frame.copy()
    bad.dq[...] |= FLAGS["DO_NOT_USE"]
    with pytest.raises(ValueError, match="no good pixel"):
        NormalizeStep.call(bad)
