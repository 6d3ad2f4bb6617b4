"""Level 0 -> 3 end to end: ``liger-iris-demo --level3`` on a small detector, its products against the truth.

The demo builds a CRDS cache of the detector's size (the calibration pipelines make its dark,
flat, distortion and photom), simulates dithered exposures with pointing errors and residual
defects, reduces them through detector1, image2 and image3 with the reference catalog, and
prints the comparison. The test reads the products back and asserts the issue's targets
(`compare_mosaic_with_truth`).
"""

import glob

import numpy as np
import pytest

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.cli import demo
from liger_iris_pipeline.simulate import ExposureTruth
from liger_iris_pipeline.simulate.validation_level3 import TARGETS, compare_mosaic_with_truth

pytestmark = pytest.mark.slow

SIZE = 384


@pytest.fixture(scope="module")
def level3_demo(tmp_path_factory):
    """Run the demo once; return its output directory and what it printed."""
    import contextlib
    import io
    import os

    output = tmp_path_factory.mktemp("level3_demo")
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("CRDS_")}
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            status = demo.main(["--level3", "--output", str(output), "--size", str(SIZE), "--nreads", "5"])
    finally:
        for key in [key for key in os.environ if key.startswith("CRDS_")]:
            del os.environ[key]
        os.environ.update(saved)
    assert status == 0, printed.getvalue()
    return output, printed.getvalue()


@pytest.fixture(scope="module")
def comparison(level3_demo):
    output, _ = level3_demo
    level3 = output / "level3"
    truths = [
        ExposureTruth.load(path) for path in sorted(glob.glob(str(output / "level0" / "sim_science_*_truth.fits")))
    ]
    crfs = sorted(level3.glob("sim_science_*_crf.fits"))
    assert len(crfs) == len(truths) == 4
    return compare_mosaic_with_truth(
        level3 / f"{demo.LEVEL3_PRODUCT}_i2d.fits", level3 / f"{demo.LEVEL3_PRODUCT}_cat.ecsv", crfs, truths
    )


def test_demo_prints_every_stage(level3_demo):
    output, out = level3_demo
    for text in (
        "Level 1: tmtrun detector1.cfg",
        "distortion_calibration.cfg, photom_calibration.cfg",
        "Level 2: tmtrun image2.cfg",
        "Level 3: tmtrun image3.cfg",
        "Level 3 products against the truth",
        "peak memory",
    ):
        assert text in out
    assert (output / "level3" / f"{demo.LEVEL3_PRODUCT}_segm.fits").exists()
    with datamodels.open(output / "level3" / f"{demo.LEVEL3_PRODUCT}_i2d.fits") as mosaic:
        assert isinstance(mosaic, datamodels.IRISMosaicModel)
        assert mosaic.meta.processing_level == 3 and mosaic.meta.bunit_data == "MJy/sr"
    with datamodels.open(output / "level2" / "sim_science_001_cal.fits") as cal:
        assert cal.meta.cal_step.photom == "COMPLETE"
        assert cal.meta.ref_file.distortion.name not in (None, "N/A")


def test_calibrations_reproduce_the_simulator(level3_demo):
    """The demo's own distortion and photom products, from its pinhole and standard exposures."""
    output, _ = level3_demo
    pinhole = ExposureTruth.load(output / "level0" / "sim_pinhole_001_truth.fits")
    rms, largest = demo.distortion_difference(
        output / "calibration" / "sim_pinhole_001_distortion.fits", pinhole.distortion, (SIZE, SIZE)
    )
    assert rms < 0.01 and largest < 0.03
    ratio = demo.photom_ratio(output / "calibration" / "sim_standard_001_photom.fits", pinhole.filter_name)
    assert abs(ratio - 1) < 0.01


def test_pointing_errors_recovered(comparison):
    # (a) the header WCS were off by tens of mas; what tweakreg leaves is within 1 mas.
    assert np.abs(comparison.pointing_errors).max() > 5.0
    assert comparison.pointing_residual_max <= TARGETS["pointing_mas"], comparison.summary()


def test_mosaic_positions(comparison):
    # (b) bright isolated stars in the mosaic where the truth's RA/Dec fall through its WCS.
    assert len(comparison.position_offsets) >= 5, comparison.summary()
    assert comparison.position_scatter <= TARGETS["position_rms_px"], comparison.summary()
    mean_mas = np.abs(comparison.position_offsets.mean(axis=0)).max() * comparison.mosaic_pixel_scale * 1e3
    assert mean_mas <= TARGETS["pointing_mas"], comparison.summary()


def test_catalog_fluxes(comparison):
    # (c) isolated stars' total fluxes in Jy against the truth's flux_jy.
    assert comparison.flux_unit == "Jy"
    assert comparison.flux_ratios.size >= 10, comparison.summary()
    assert abs(comparison.flux_bias) <= TARGETS["flux_bias"], comparison.summary()
    assert abs(comparison.pull_std - 1) <= TARGETS["pull_std"], comparison.summary()


def test_outliers(comparison):
    # (d) the residual defects Level 2 cannot see, flagged OUTLIER in the _crf frames.
    assert comparison.n_defects > 100
    assert comparison.defects_flagged >= TARGETS["defects_flagged"], comparison.summary()
    assert comparison.clean_flagged < TARGETS["clean_flagged"], comparison.summary()
