"""The IFS detector's references in a simulated CRDS cache: built by the calibration pipelines, selected by CRDS."""

import os
import subprocess
import sys

import numpy as np
import pytest
from crds_helpers import copy_cache
from ifs_helpers import ifs_detector, level1_frame
from numpy.polynomial import polynomial as P

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline.cli.crds_cache import build
from liger_iris_pipeline.crds_plugin import generate
from liger_iris_pipeline.simulate import ifs

IFU_CONTEXT = "tmt_0003.pmap"


@pytest.fixture(scope="module")
def ifu_cache(tmp_path_factory):
    """A cache whose context tmt_0003 adds the IFU rules (`generate.IFU_RULES`), with the IFU references built.

    The imager's references are empty files: the build makes the IFS detector's only.
    """
    cache = tmp_path_factory.mktemp("ifu") / "crds_cache"
    copy_cache(cache)
    saved = dict(generate.CONTEXT_DETECTORS), generate.LATEST_SERIAL
    generate.CONTEXT_DETECTORS[3], generate.LATEST_SERIAL = generate.IFU_RULES, 3
    try:
        generate.write_contexts(cache / "mappings" / "tmt")
    finally:
        generate.CONTEXT_DETECTORS.clear()
        generate.CONTEXT_DETECTORS.update(saved[0])
        generate.LATEST_SERIAL = saved[1]
    references = cache / "references" / "tmt" / "iris"
    references.mkdir(parents=True, exist_ok=True)
    for entry in generate.context_types("iris", 2):
        (references / f"tmt_iris_{entry.name}_0001.fits").touch()
    written = build(cache, size=64, context=IFU_CONTEXT, log=lambda line: None, instruments=["iris"])
    return cache, {path.name for path in written}


def test_ifu_rules_select_the_ifs_references(ifu_cache):
    _, written = ifu_cache
    detector_types = ("dark", "flat", "gain", "mask", "nonlin", "readnoise", "saturation")
    assert written == {f"tmt_iris_{name}_0002.fits" for name in detector_types} | {
        "tmt_iris_slicegeo_0001.fits",
        "tmt_iris_wavecal_0001.fits",
    }


def test_ifs_references_are_the_calibration_pipelines_fits(ifu_cache):
    cache, _ = ifu_cache
    references = cache / "references" / "tmt" / "iris"
    layout = ifs.SlicerLayout.small()
    with dm.open(references / "tmt_iris_slicegeo_0001.fits") as geometry:
        assert geometry.meta.instrument.detector == "IFU" and geometry.meta.instrument.ifs_mode == "SLICER"
        truth = layout.trace_coefficients()
        for row in geometry.slices:
            y = np.arange(row["YSTART"], row["YSTOP"], dtype=np.float64)
            offsets = P.polyval(y, row["TRACE"]) - P.polyval(y, truth[row["SLICE"]])
            assert np.sqrt(np.mean(offsets**2)) < 0.05
    with dm.open(references / "tmt_iris_wavecal_0001.fits") as wavecal:
        assert wavecal.meta.instrument.filter == generate.IFU_FILTER and np.all(wavecal.solutions["RMS_PIX"] < 0.05)
    with dm.open(references / "tmt_iris_flat_0002.fits") as flat:
        assert flat.data.shape == layout.detector_shape and flat.meta.instrument.detector == "IFU"
        assert flat.meta.instrument.filter == generate.IFU_FILTER and flat.meta.description.startswith("IFS flat")
    with dm.open(references / "tmt_iris_dark_0002.fits") as dark:
        assert dark.data.shape == layout.detector_shape and dark.meta.instrument.detector == "IFU"


def test_crds_gives_an_ifs_frame_the_ifu_references(ifu_cache, tmp_path):
    # In a process of its own: crds keeps the mappings it loaded by name, and other tests' caches have a
    # tmt_0003.pmap of their own.
    cache, _ = ifu_cache
    layout = ifs.SlicerLayout.small()
    detector = ifs_detector(layout)
    ramp, truth = ifs.simulate_ifs_exposure(
        ifs.exposure_scene("FLAT", layout, generate.IFU_FILTER), detector, layout, kind="FLAT",
        filter=generate.IFU_FILTER, nreads=2, noiseless=True, date="2024-06-01T00:00:00",
    )  # fmt: skip
    ramp.meta.filename = "ifs_flat_001_uncal.fits"
    frame = level1_frame(truth, ramp, detector, seed=1)
    frame.save(tmp_path / "ifs_flat_001_rate.fits")
    code = (
        "import os\nfrom liger_iris_pipeline import datamodels\nfrom liger_iris_pipeline.ifs_flat import IFSFlatStep\n"
        f"frame = datamodels.open({str(tmp_path / 'ifs_flat_001_rate.fits')!r})\n"
        "print(*(os.path.basename(IFSFlatStep().get_reference_file(frame, t)) for t in ('slicegeo', 'flat', 'dark')))"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    environment.update(CRDS_PATH=str(cache), CRDS_CONTEXT=IFU_CONTEXT)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "tmt_iris_slicegeo_0001.fits",
        "tmt_iris_flat_0002.fits",
        "tmt_iris_dark_0002.fits",
    ]
