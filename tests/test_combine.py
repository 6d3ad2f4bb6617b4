"""combine_frames (the compiled clipped-mean kernel) against a straightforward numpy implementation."""

import warnings

import numpy as np
import pytest

from liger_iris_pipeline.datamodels import IRISImageModel
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.combine import combine_frames

DO_NOT_USE = FLAGS["DO_NOT_USE"]
VARIANCES = ("var_poisson", "var_rnoise", "var_flat")


def reference_combine(members, nsigma=3.0, maxiters=5, factors=None):
    """The definition: per-pixel nanmedian clipping against each value's error, whole frames at once."""
    factors = np.ones(len(members)) if factors is None else np.asarray(factors)
    stack = np.stack([m.data * np.float32(f) for m, f in zip(members, factors, strict=True)])
    errors = np.stack([m.err * np.float32(f) for m, f in zip(members, factors, strict=True)])
    valid = np.stack([(m.dq & DO_NOT_USE) == 0 for m in members])
    for m_index, m in enumerate(members):
        for array in (m.data, m.err, *(getattr(m, name) for name in VARIANCES)):
            valid[m_index] &= np.isfinite(array)
    kept = valid.copy()
    for _ in range(maxiters):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            center = np.nanmedian(np.where(kept, stack, np.nan), axis=0)
        with np.errstate(invalid="ignore"):
            clipped = valid & (np.abs(stack - center) <= nsigma * errors)
        clipped |= kept & ~clipped.any(axis=0)
        if np.array_equal(clipped, kept):
            break
        kept = clipped
    count = kept.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        data = (np.where(kept, stack, 0.0).sum(axis=0, dtype=np.float64) / count).astype(np.float32)
        variances = {}
        for name in VARIANCES:
            total = np.zeros(data.shape)
            for index, member in enumerate(members):
                total += np.where(kept[index], getattr(member, name) * np.float64(np.float32(factors[index])) ** 2, 0)
            variances[name] = (total / np.square(count)).astype(np.float32)
    dq = np.zeros(data.shape, np.uint32)
    none = count == 0
    for member in members:
        dq[none] |= member.dq[none]
    dq[none] |= DO_NOT_USE
    return data, variances, dq, count


def random_members(count, shape=(60, 70), seed=0):
    """Frames of one sky with noise, cosmic rays, flagged, NaN and infinite pixels."""
    rng = np.random.default_rng(seed)
    members = []
    for _ in range(count):
        var_poisson = rng.uniform(0.5, 2.0, shape).astype(np.float32)
        var_rnoise = rng.uniform(0.1, 0.5, shape).astype(np.float32)
        var_flat = rng.uniform(0.0, 0.01, shape).astype(np.float32)
        err = np.sqrt(var_poisson + var_rnoise + var_flat).astype(np.float32)
        data = (10.0 + err * rng.standard_normal(shape)).astype(np.float32)
        hits = rng.random(shape) < 0.05
        data[hits] += rng.uniform(5.0, 1000.0, hits.sum()).astype(np.float32)
        dq = np.zeros(shape, np.uint32)
        dq[rng.random(shape) < 0.03] |= DO_NOT_USE
        dq[rng.random(shape) < 0.03] |= FLAGS["JUMP_DET"]  # a flag that does not exclude the value
        data[rng.random(shape) < 0.01] = np.nan
        data[rng.random(shape) < 0.002] = np.inf
        var_rnoise[rng.random(shape) < 0.005] = np.nan
        model = IRISImageModel(data)
        model.err, model.dq = err, dq
        model.var_poisson, model.var_rnoise, model.var_flat = var_poisson, var_rnoise, var_flat
        members.append(model)
    # Pixels where no member is usable, and pixels where only one is.
    for member in members:
        member.dq[5, 7] |= DO_NOT_USE | FLAGS["SATURATED"]
        member.data[6, 8] = np.nan
    for member in members[1:]:
        member.dq[9, 9] |= DO_NOT_USE
    members[0].dq[9, 9] = 0
    members[0].data[9, 9] = members[0].var_rnoise[9, 9] = 1.0
    return members


def assert_same(result, expected):
    combined, used = result
    data, variances, dq, count = expected
    np.testing.assert_array_equal(used, count)
    np.testing.assert_allclose(combined.data, data, rtol=2e-7, atol=0, equal_nan=True)
    for name in VARIANCES:
        np.testing.assert_allclose(getattr(combined, name), variances[name], rtol=2e-7, atol=0, equal_nan=True)
    np.testing.assert_array_equal(combined.dq, dq)
    total = sum(variances[name].astype(np.float64) for name in VARIANCES)
    np.testing.assert_allclose(combined.err, np.sqrt(total).astype(np.float32), rtol=2e-7, equal_nan=True)


@pytest.mark.parametrize("count", [2, 3, 5, 10])
def test_combine_matches_the_reference(count):
    members = random_members(count, seed=count)
    before = [member.data.copy() for member in members]
    result = combine_frames(members)
    assert_same(result, reference_combine(members))
    combined, used = result
    # The cases the random data must reach: rejected outliers, unusable pixels, single members.
    assert used[5, 7] == 0 and used[6, 8] == 0 and np.isnan(combined.data[5, 7])
    assert combined.dq[5, 7] & FLAGS["SATURATED"]
    assert used[9, 9] == 1
    assert combined.data[9, 9] == members[0].data[9, 9]
    usable = sum(((m.dq & DO_NOT_USE) == 0) & np.isfinite(m.data) & np.isfinite(m.var_rnoise) for m in members)
    if count > 2:  # two frames that disagree are both kept
        assert np.count_nonzero(used < usable) > 0.02 * used.size  # cosmic rays rejected
    assert np.all(
        [np.array_equal(member.data, old, equal_nan=True) for member, old in zip(members, before, strict=True)]
    )


@pytest.mark.parametrize("count", [2, 3, 5])
def test_clipping_options_match_the_reference(count):
    members = random_members(count, seed=10 + count)
    for nsigma, maxiters in ((1.0, 1), (2.0, 10), (5.0, 3)):
        assert_same(combine_frames(members, nsigma, maxiters), reference_combine(members, nsigma, maxiters))


def test_scaled_members_match_the_reference(monkeypatch):
    from liger_iris_pipeline.lib import combine

    members = random_members(3, seed=4)
    levels = [8.0, 10.0, 12.5]
    sky = iter(combine.SkyLevel(level, {}, 1) for level in levels)
    monkeypatch.setattr(combine, "sky_level", lambda *args: next(sky))
    result = combine_frames(members, scale_to=10.0)
    assert_same(result, reference_combine(members, factors=[10.0 / level for level in levels]))


def test_two_frames_that_disagree_are_both_kept():
    """Two frames: the median is their mean; when both values are rejected the pair is kept."""
    members = random_members(2, seed=1)
    for member in members:
        member.dq[:] = 0
        member.data[:] = 10.0
        member.var_rnoise[:] = 0.2
    members[1].data[3, 4] = 100.0
    combined, used = combine_frames(members)
    assert used[3, 4] == 2 and combined.data[3, 4] == pytest.approx(55.0)  # both rejected: the previous set
    assert used[0, 0] == 2 and combined.data[0, 0] == 10.0


def test_combine_is_done_in_row_blocks(monkeypatch):
    from liger_iris_pipeline.lib import blocks

    members = random_members(3, seed=7)
    whole = combine_frames(members)
    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 130)  # 1 row and a bit: blocks of 1 row
    blocks = combine_frames(members)
    expected = (whole[0].data, {name: getattr(whole[0], name) for name in VARIANCES}, whole[0].dq, whole[1])
    assert_same(blocks, expected)


def test_background_step_subtracts_by_blocks_what_the_whole_frame_arithmetic_gives(monkeypatch):
    from liger_iris_pipeline.background import BackgroundStep
    from liger_iris_pipeline.lib import blocks
    from liger_iris_pipeline.lib.masks import flag_nonfinite
    from liger_iris_pipeline.lib.subtract import subtract_image

    members = random_members(3, seed=21)
    science = random_members(1, seed=22)[0]
    expected = science.copy()
    flag_nonfinite(expected)  # as the step does to its own copy
    background, _ = combine_frames(members)
    subtract_image(expected, background)
    monkeypatch.setattr(blocks, "BLOCK_PIXELS", 700)  # 10 rows a block
    result = BackgroundStep.call(science, members)
    for name in ("data", "err", "dq", *VARIANCES):
        np.testing.assert_array_equal(getattr(result, name), getattr(expected, name))
    good = (background.dq & DO_NOT_USE) == 0
    assert result.meta.background.level == float(np.median(background.data[good]))
    assert result.meta.background.n_members == 3
