"""outlier_detection: injected residual defects (hot pixels, cosmic rays, a trail) in dithered frames."""

import numpy as np
import pytest
from mosaic_helpers import PLATE_SCALE, make_frames

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.datamodels.library import ModelLibrary
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.outlier_detection import OutlierDetectionStep
from liger_iris_pipeline.outlier_detection.outlier_detection import OUTLIER_FLAGS, OutlierDetector, find_outliers
from liger_iris_pipeline.resample.resample import frame_footprint, make_output_wcs, pixel_map


def coverage(frames, index, margin=3.0):
    """Number of frames whose detector covers each pixel of frame ``index`` (margin in pixels)."""
    model = frames[index]
    count = np.zeros(model.data.shape, int)
    for other in frames:
        pixmap = pixel_map(model.meta.wcs, other.meta.wcs, model.data.shape)
        ny, nx = other.data.shape
        x, y = pixmap[..., 0], pixmap[..., 1]
        count += (x > margin) & (x < nx - 1 - margin) & (y > margin) & (y < ny - 1 - margin)
    return count


def detect(frames, **options):
    wcs, _ = make_output_wcs([frame_footprint(m.meta.wcs, m.data.shape) for m in frames], PLATE_SCALE)
    detector = OutlierDetector(wcs, len(frames), in_memory=True, **options)
    for model in frames:
        detector.add(model)
    median = detector.median()
    for index, model in enumerate(frames):
        detector.flag(model, median, index)
    detector.close()
    return median


def defect_statistics(frames, truth, min_coverage=3, star_limit=None):
    """(found, missed) defects where >= min_coverage frames overlap (and the star signal < star_limit),
    (false, clean) pixels."""
    found = missed = false = clean = 0
    for index, (model, mask) in enumerate(zip(frames, truth.defect_masks, strict=True)):
        flagged = (model.dq & OUTLIER_FLAGS) == OUTLIER_FLAGS
        redundant = coverage(frames, index) >= min_coverage
        if star_limit is not None:
            redundant &= truth.star_images[index] < star_limit
        found += np.count_nonzero(flagged & mask & redundant)
        missed += np.count_nonzero(~flagged & mask & redundant)
        false += np.count_nonzero(flagged & ~mask)
        clean += np.count_nonzero(~mask)
    return found, missed, false, clean


@pytest.mark.parametrize("seed", [3, 4])
def test_injected_defects_are_flagged(seed):
    frames, truth = make_frames(
        n_frames=5, shape=(192, 192), n_stars=9, distortion=1.0, defects=True, seed=seed, flux_range=(2e-9, 2e-7)
    )
    detect(frames)
    found, missed, false, clean = defect_statistics(frames, truth)
    # All defects where >= 3 frames overlap (a median needs them): a trail across a star's core is missed
    # where it adds less than the blot's interpolation error there (jwst's scale term, ~10 % of the peak).
    assert found > 300 and found / (found + missed) >= 0.97
    # Targets: >= 99 % of the defects off the stars (star signal < 20 sigma of the sky); < 0.1 % of
    # the clean pixels.
    found, missed, _, _ = defect_statistics(frames, truth, star_limit=0.5)
    assert found / (found + missed) >= 0.99
    assert false / clean < 1e-3


@pytest.mark.parametrize("two_frame_minimum", [True, False])
def test_two_frames_minimum_finds_the_defects(two_frame_minimum):
    """With two frames the median is their mean, which a defect pulls up by half its amplitude."""
    frames, truth = make_frames(
        n_frames=2, shape=(160, 160), n_stars=9, distortion=1.0, defects=True, seed=6, flux_range=(2e-9, 2e-7)
    )
    detect(frames, two_frame_minimum=two_frame_minimum)
    found, missed, false, clean = defect_statistics(frames, truth, min_coverage=2, star_limit=0.5)
    if two_frame_minimum:
        assert found > 100 and found / (found + missed) >= 0.99
        assert false / clean < 1e-3
    else:
        assert found / (found + missed) < 0.95  # the defects of 10 to 20 sigma are missed


def test_no_defect_no_flag():
    frames, _truth = make_frames(n_frames=4, shape=(128, 128), n_stars=9, distortion=1.0, flux_range=(2e-9, 2e-7))
    known = FLAGS["HOT"] | FLAGS["DO_NOT_USE"]
    frames[0].data[60, 60] += 1e3  # a known hot pixel: already unusable, not an outlier
    frames[0].dq[60, 60] = known
    detect(frames)
    flagged = sum(np.count_nonzero(m.dq & FLAGS["OUTLIER"]) for m in frames)
    assert flagged < 1e-3 * 4 * 128 * 128
    assert frames[0].dq[60, 60] == known


def test_find_outliers_thresholds():
    data = np.zeros((20, 20), np.float32)
    err = np.ones_like(data)
    blotted = np.zeros_like(data)
    data[5, 5] = 6.0  # > snr1 = 5
    data[10, 10] = 4.5  # between snr2 and snr1: alone, not an outlier
    data[15, 15] = 6.0
    blotted[14:17, 14:17] = 50.0  # a steep blot: the derivative term raises the threshold
    blotted[15, 15] = 100.0
    data[15, 15] += 100.0
    mask = find_outliers(data, err, blotted)
    assert mask[5, 5] and not mask[10, 10] and not mask[15, 15]
    blotted[0, 0] = np.nan
    data[0, 0] = 1e6
    assert not find_outliers(data, err, blotted)[0, 0]


@pytest.mark.parametrize(("snr", "scale", "backg"), [((5.0, 4.0), (1.2, 0.7), 0.0), ((3.0, 2.0), (0.5, 0.0), 3.5)])
def test_find_outliers_is_stcal_flag_resampled_crs(snr, scale, backg):
    """The test evaluated at the candidates only gives stcal's mask bit for bit: edges, NaN in every input."""
    from stcal.outlier_detection.utils import flag_resampled_crs

    rng = np.random.default_rng(7)
    for ny, nx in ((1, 1), (1, 9), (7, 1), (23, 31), (200, 170)):
        blotted = rng.normal(100.0, 30.0, (ny, nx)).astype(np.float32)
        err = np.abs(rng.normal(1.0, 0.3, (ny, nx))).astype(np.float32)
        data = (blotted + rng.normal(0.0, 1.2, (ny, nx))).astype(np.float32)
        hits = rng.integers(0, ny * nx, max(1, ny * nx // 20))
        data.ravel()[hits] += rng.uniform(-50.0, 500.0, hits.size).astype(np.float32)
        data[0] += 40.0  # defects along the edges
        data[:, -1] += 40.0
        for array in (data, blotted, err):
            array.ravel()[rng.integers(0, ny * nx, max(1, ny * nx // 50))] = np.nan
        defined = np.isfinite(data) & np.isfinite(blotted)
        zero = np.float32(0.0)
        with np.errstate(invalid="ignore"):
            expected = flag_resampled_crs(
                np.where(defined, data, zero), err, np.where(defined, blotted, zero), *snr, *scale, backg
            )
        np.testing.assert_array_equal(find_outliers(data, err, blotted, snr, scale, backg), expected & defined)


def test_parameters_are_checked():
    frames, _truth = make_frames(n_frames=2, shape=(64, 64), n_stars=1)
    wcs, _ = make_output_wcs([frame_footprint(m.meta.wcs, m.data.shape) for m in frames], PLATE_SCALE)
    with pytest.raises(ValueError, match="at least 2 frames"):
        OutlierDetector(wcs, 1)
    with pytest.raises(ValueError, match="snr must be two numbers"):
        OutlierDetector(wcs, 2, snr="5")


def test_step_on_disk_saves_crf_and_intermediates(tmp_path):
    frames, truth = make_frames(
        n_frames=4, shape=(128, 128), n_stars=9, distortion=1.0, defects=True, seed=7, flux_range=(2e-9, 2e-7)
    )
    paths = []
    for model in frames:
        path = tmp_path / model.meta.filename
        model.save(path)
        paths.append(str(path))
    library = ModelLibrary(paths, on_disk=True, temp_directory=tmp_path)
    result = OutlierDetectionStep.call(
        library, save_results=True, save_intermediate_results=True, output_dir=str(tmp_path)
    )
    with result:
        for index in range(len(result)):
            model = result.borrow(index)
            assert model.meta.cal_step.outlier_detection == "COMPLETE"
            flagged = (model.dq & OUTLIER_FLAGS) == OUTLIER_FLAGS
            redundant = coverage(frames, index) >= 3
            mask = truth.defect_masks[index] & redundant & (truth.star_images[index] < 0.5)
            assert np.count_nonzero(flagged & mask) >= 0.98 * np.count_nonzero(mask)
            result.shelve(model, index, modify=False)
    for index in range(4):
        crf = tmp_path / f"frame{index}_crf.fits"
        assert crf.exists(), sorted(p.name for p in tmp_path.iterdir())
        with datamodels.open(crf) as model:
            assert np.count_nonzero(model.dq & FLAGS["OUTLIER"]) > 0
        assert (tmp_path / f"frame{index}_blot.fits").exists()
        assert (tmp_path / f"frame{index}_outlier_i2d.fits").exists()
    assert (tmp_path / "frame0_median.fits").exists()
    for model in frames:
        model.close()


def test_step_skips_a_single_frame():
    frames, _truth = make_frames(n_frames=1, shape=(64, 64), n_stars=1)
    result = OutlierDetectionStep.call(ModelLibrary(frames), in_memory=True)
    with result:
        model = result.borrow(0)
        assert model.meta.cal_step.outlier_detection == "SKIPPED"
        result.shelve(model, 0, modify=False)
