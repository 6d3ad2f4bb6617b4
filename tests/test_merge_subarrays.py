"""MergeSubarraysStep: subarrays pasted by their metadata, independent of input order."""

import itertools

import numpy as np
import pytest
from level1_helpers import science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.assign_wcs import AssignWcsStep
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.subarray import SubarrayError
from liger_iris_pipeline.merge_subarrays import MergeSubarraysStep
from liger_iris_pipeline.parse_subarray_map import ParseSubarrayMapStep

SUBARRAYS = [(11, 21, 16, 8), (61, 41, 8, 24), (100, 100, 20, 20)]
OUTSIDE = FLAGS["OUTSIDE_SUBARRAY"] | FLAGS["DO_NOT_USE"]


@pytest.fixture(scope="module")
def pieces(det):
    frames = []
    for index, subarray in enumerate(SUBARRAYS, start=1):
        frame, _ = science_frame(det, seed=10 + index, subarray=subarray, subarray_id=index)
        frames.append(frame)
    return frames


def test_merge_is_independent_of_input_order(pieces):
    results = [MergeSubarraysStep.call(*order) for order in itertools.permutations(pieces)]
    for result in results[1:]:
        for name in ("data", "err", "dq", "var_poisson", "var_rnoise", "var_flat", "subarr_map"):
            np.testing.assert_array_equal(getattr(result, name), getattr(results[0], name))
    merged = results[0]
    assert merged.meta.cal_step.merge_subarrays == "COMPLETE"
    assert merged.meta.subarray.name == "FULL" and merged.data.shape == (128, 128)
    covered = merged.subarr_map != 0
    for index, (frame, (xstart, ystart, xsize, ysize)) in enumerate(zip(pieces, SUBARRAYS, strict=True), start=1):
        rows, cols = slice(ystart - 1, ystart - 1 + ysize), slice(xstart - 1, xstart - 1 + xsize)
        np.testing.assert_array_equal(merged.data[rows, cols], frame.data)
        np.testing.assert_array_equal(merged.var_poisson[rows, cols], frame.var_poisson)
        np.testing.assert_array_equal(merged.dq[rows, cols], frame.dq)
        assert np.all(merged.subarr_map[rows, cols] == index)
    assert np.all(merged.dq[~covered] == OUTSIDE)
    assert np.isnan(merged.data[~covered]).all() and np.isnan(merged.err[~covered]).all()
    # The WCS reference pixel moves from the first subarray's pixels to the full frame's.
    first = pieces[0]
    assert merged.meta.wcsinfo.crpix1 == first.meta.wcsinfo.crpix1 + 10
    assert merged.meta.wcsinfo.crpix2 == first.meta.wcsinfo.crpix2 + 20
    # ... and parse_subarray_map reads back what was merged.
    parsed = ParseSubarrayMapStep.call(merged)
    assert parsed.meta.subarray_map.instance == merged.meta.subarray_map.instance


def test_subarrays_replace_their_region_of_the_full_frame_readout(det, pieces):
    full, _ = science_frame(det, seed=5, subarrays=SUBARRAYS)
    full = ParseSubarrayMapStep.call(full)
    merged = MergeSubarraysStep.call([pieces[1], full, pieces[0], pieces[2]])
    inside = full.subarr_map != 0
    np.testing.assert_array_equal(merged.data[~inside], full.data[~inside])
    assert not np.any(merged.dq & FLAGS["NON_SCIENCE"])
    np.testing.assert_array_equal(merged.subarr_map, full.subarr_map)


def test_overlaps_and_two_full_frames_are_errors(det, pieces):
    overlapping, _ = science_frame(det, seed=30, subarray=(20, 25, 10, 10))
    with pytest.raises(SubarrayError, match="overlapping subarrays"):
        MergeSubarraysStep.call(*pieces, overlapping)
    full, _ = science_frame(det, seed=5)
    with pytest.raises(SubarrayError, match="more than one full-frame"):
        MergeSubarraysStep.call(full, full.copy())


def test_gwcs_is_rebuilt_for_the_full_frame(tmp_path, pieces):
    with_wcs = [AssignWcsStep.call(piece, override_distortion="N/A") for piece in pieces]
    merged = MergeSubarraysStep.call(*with_wcs)
    # A pixel of subarray 2 has the same sky position in the subarray and in the merged frame.
    ra, dec = with_wcs[1].meta.wcs(3.0, 5.0)
    merged_ra, merged_dec = merged.meta.wcs(3.0 + 60, 5.0 + 40)
    assert merged_ra == pytest.approx(ra, abs=1e-12) and merged_dec == pytest.approx(dec, abs=1e-12)
    merged.save(tmp_path / "merged.fits")
    assert datamodels.open(tmp_path / "merged.fits").meta.cal_step.merge_subarrays == "COMPLETE"
