"""ParseSubarrayMapStep: SUBARR_MAP rectangles -> meta.subarray_map and NON_SCIENCE | DO_NOT_USE."""

import numpy as np
import pytest
from level1_helpers import detector, science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.lib.subarray import SubarrayError
from liger_iris_pipeline.parse_subarray_map import ParseSubarrayMapStep
from liger_iris_pipeline.parse_subarray_map.subarray_map import SUBARRAY_PIXEL_FLAGS, subarray_regions

SUBARRAYS = [(11, 21, 16, 8), (61, 41, 8, 24), (100, 100, 20, 20)]


@pytest.fixture(scope="module")
def readout():
    level1, _ = science_frame(detector(), subarrays=SUBARRAYS)
    return level1


def test_regions_and_flags_from_a_simulated_readout(tmp_path, readout):
    result = ParseSubarrayMapStep.call(readout)
    assert result.meta.cal_step.parse_subarray_map == "COMPLETE"
    regions = [(r.id, r.xstart, r.ystart, r.xsize, r.ysize) for r in result.meta.subarray_map]
    assert regions == [(index, *rectangle) for index, rectangle in enumerate(SUBARRAYS, start=1)]
    inside = readout.subarr_map != 0
    assert SUBARRAY_PIXEL_FLAGS == FLAGS["NON_SCIENCE"] | FLAGS["DO_NOT_USE"]
    assert np.all(result.dq[inside] & SUBARRAY_PIXEL_FLAGS == SUBARRAY_PIXEL_FLAGS)
    np.testing.assert_array_equal(result.dq[~inside], readout.dq[~inside])
    np.testing.assert_array_equal(result.data, readout.data)
    result.save(tmp_path / "out.fits")
    reread = datamodels.open(tmp_path / "out.fits")
    assert reread.meta.subarray_map.instance == result.meta.subarray_map.instance


def test_map_of_a_subarray_frame_gives_detector_positions():
    subarr_map = np.zeros((10, 12), dtype=np.uint16)
    subarr_map[2:5, 3:9] = 4
    assert subarray_regions(subarr_map, origin=(101, 201)) == [
        {"id": 4, "xstart": 104, "ystart": 203, "xsize": 6, "ysize": 3}
    ]


def test_non_rectangular_regions_and_too_many_ids_are_errors(readout):
    bad = readout.copy()
    bad.subarr_map[21, 27] = 1  # one pixel sticking out of subarray 1
    with pytest.raises(SubarrayError, match="subarray 1 is not a rectangle"):
        ParseSubarrayMapStep.call(bad)
    many = np.zeros((4, 12), dtype=np.uint16)
    many[0, :11] = np.arange(1, 12)
    with pytest.raises(SubarrayError, match="at most 10"):
        subarray_regions(many)


def test_no_map_skips(readout):
    plain = readout.copy()
    plain.subarr_map = np.zeros_like(readout.subarr_map)
    assert ParseSubarrayMapStep.call(plain).meta.cal_step.parse_subarray_map == "SKIPPED"
