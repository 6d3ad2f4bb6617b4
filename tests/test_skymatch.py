"""skymatch: frames with known, different sky levels come out equal within the noise."""

import numpy as np
import pytest
from alignment_helpers import make_frames

from liger_iris_pipeline.datamodels.library import ModelLibrary
from liger_iris_pipeline.skymatch import SkyFrame, SkyMatchStep, good_sky_pixels, match_sky
from liger_iris_pipeline.skymatch.skymatch import bin_frame

SKIES = [5.0, 7.5, 4.0, 6.25]


@pytest.fixture(scope="module")
def frames():
    # No pointing error: skymatch trusts the WCS (tweakreg runs before it).
    frames, _, _ = make_frames(n=4, pointing_error_mas=0.0, sky_levels=SKIES, n_stars=40, noise=1.0, seed=3)
    return frames


def _models(library):
    with library:
        models = [library.borrow(index) for index in range(len(library))]
        for index, model in enumerate(models):
            library.shelve(model, index, modify=False)
    return models


def test_match_sky_finds_the_differences(frames):
    sky_frames = [
        SkyFrame(f.data, good_sky_pixels(f.data, f.dq), f.meta.wcs, f.meta.filename, str(i))
        for i, f in enumerate(frames)
    ]
    skies = match_sky(sky_frames, skymethod="match")
    expected = np.array(SKIES) - min(SKIES)
    # Sky noise 1 per pixel over ~3e4 overlapping pixels: ~0.01.
    assert np.allclose(skies, expected, atol=0.05), skies


@pytest.mark.parametrize("binning", [2, 4, 8])
def test_binned_frames_find_the_same_differences(frames, binning):
    sky_frames = []
    for index, frame in enumerate(frames):
        data, mask = bin_frame(frame.data, good_sky_pixels(frame.data, frame.dq), binning)
        sky_frames.append(SkyFrame(data, mask, frame.meta.wcs, frame.meta.filename, str(index), binning))
    skies = match_sky(sky_frames, skymethod="match")
    assert np.allclose(skies, np.array(SKIES) - min(SKIES), atol=0.05), skies


def test_bin_frame_averages_the_good_pixels():
    data = np.arange(36, dtype=np.float32).reshape(6, 6)
    mask = np.ones((6, 6), bool)
    mask[0, 0] = False  # one bad pixel in the first block: the mean of the other three
    mask[4:, 4:] = False  # a whole block bad
    mask[4, 2] = mask[5, 3] = mask[4, 3] = False  # three of four bad: the block does not count
    means, good = bin_frame(data, mask, 2)
    assert means.shape == good.shape == (3, 3)
    assert means[0, 0] == pytest.approx((1 + 6 + 7) / 3)
    assert means[1, 1] == pytest.approx((14 + 15 + 20 + 21) / 4)
    assert good[0, 0] and good[1, 1] and not good[2, 2] and not good[2, 1]
    # A frame that is not a whole number of blocks: its last row and column are left out.
    assert bin_frame(data[:5, :5], mask[:5, :5], 2)[0].shape == (2, 2)


@pytest.mark.parametrize("on_disk", [False, True])
def test_step_subtracts_and_records(frames, tmp_path, monkeypatch, on_disk):
    monkeypatch.chdir(tmp_path)
    paths = []
    for frame in frames:
        path = tmp_path / frame.meta.filename
        frame.save(path)
        paths.append(str(path))
    library = ModelLibrary(paths, on_disk=on_disk)
    models = _models(SkyMatchStep(subtract=True).run(library))
    levels = [np.median(m.data[m.data < np.percentile(m.data, 80)]) for m in models]
    assert np.ptp(levels) < 0.05, levels
    for model, sky in zip(models, SKIES, strict=True):
        assert model.meta.cal_step.skymatch == "COMPLETE"
        assert model.meta.background.subtracted is True
        assert model.meta.background.method == "match"
        assert abs(model.meta.background.level - (sky - min(SKIES))) < 0.05
    library.close()


def test_record_only_leaves_the_data(frames):
    library = ModelLibrary([f.copy() for f in frames])
    models = _models(SkyMatchStep(subtract=False, skymethod="global+match").run(library))
    for model, frame, sky in zip(models, frames, SKIES, strict=True):
        np.testing.assert_array_equal(model.data, frame.data)
        assert model.meta.background.subtracted is False
        # global+match: the absolute sky of each frame (stars raise the median slightly).
        assert abs(model.meta.background.level - sky) < 0.3


def test_flagged_pixels_are_ignored(frames):
    damaged = [f.copy() for f in frames]
    damaged[1].data[:50, :] = 1000.0  # a bright flagged region
    damaged[1].dq[:50, :] |= 1
    library = ModelLibrary(damaged)
    models = _models(SkyMatchStep().run(library))
    expected = np.array(SKIES) - min(SKIES)
    levels = [m.meta.background.level for m in models]
    assert np.allclose(levels, expected, atol=0.05), levels


def test_frame_without_overlap_is_skipped(frames):
    far = frames[3].copy()
    from liger_iris_pipeline.assign_wcs.imaging import complete_wcsinfo, make_gwcs

    info = dict(far.meta.wcsinfo.instance)
    info["crval2"] += 0.1  # 6 arcmin away
    far.meta.wcs = make_gwcs(complete_wcsinfo(info), far.data.shape)
    library = ModelLibrary([frames[0].copy(), frames[1].copy(), far])
    models = _models(SkyMatchStep().run(library))
    assert models[2].meta.cal_step.skymatch == "SKIPPED"
    assert models[0].meta.cal_step.skymatch == "COMPLETE"
