"""The slicer's geometry and flat from simulated lamp flats, against the simulator's truth (small layout)."""

import numpy as np
import pytest
from ifs_helpers import FILTER, ifs_detector, level1_frame, slicer_references
from numpy.polynomial import polynomial as P

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline import dqflags
from liger_iris_pipeline.ifs_flat import IFSFlatStep
from liger_iris_pipeline.ifs_flat.ifs_flat import IFSFlatError, ifs_flat, slice_coverage
from liger_iris_pipeline.simulate import ifs
from liger_iris_pipeline.simulate.dataset import write_truth_references
from liger_iris_pipeline.slice_geometry import SliceGeometryStep
from liger_iris_pipeline.slice_geometry.edges import SliceGeometryError

NO_FLAT = dqflags.pixel["NO_FLAT_FIELD"] | dqflags.pixel["DO_NOT_USE"]


@pytest.fixture(scope="module")
def layout():
    return ifs.SlicerLayout.small()


@pytest.fixture(scope="module")
def detector(layout):
    return ifs_detector(layout)


@pytest.fixture(scope="module")
def lamp(layout, detector):
    """The lamp flat's ramp (metadata) and truth."""
    scene = ifs.exposure_scene("FLAT", layout, FILTER)
    return ifs.simulate_ifs_exposure(scene, detector, layout, kind="FLAT", filter=FILTER, nreads=2, noiseless=True)


@pytest.fixture(scope="module")
def lamp_rate(lamp, detector):
    """A dark-subtracted Level 1 lamp flat (600 s) with the detector's bad pixels flagged."""
    ramp, truth = lamp
    ramp.meta.filename = "ifs_flat_001_uncal.fits"
    frame = level1_frame(truth, ramp, detector, seed=5, rate=truth.dispersed_rate * detector.flat)
    frame.dq = (detector.mask & dqflags.pixel["DO_NOT_USE"]).astype(np.uint32)
    return frame


def edge_rms(geometry, truth_traces):
    """Rms over each slice's rows of the fitted minus the true left edge (pixels), per slice."""
    rms = []
    for row in geometry.slices:
        y = np.arange(row["YSTART"], row["YSTOP"], dtype=np.float64)
        offsets = P.polyval(y, row["TRACE"]) - P.polyval(y, truth_traces[row["SLICE"]])
        rms.append(np.sqrt(np.mean(offsets**2)))
    return np.array(rms)


@pytest.fixture(scope="module")
def geometry(lamp_rate, layout):
    return SliceGeometryStep.call(lamp_rate, n_slices=layout.n_slices, n_spaxels=layout.n_spaxels)


def test_slice_edges_match_the_truth_traces(geometry, lamp, layout):
    _, truth = lamp
    assert isinstance(geometry, dm.TMTSliceGeometryModel)
    assert edge_rms(geometry, truth.traces).max() < 0.05
    table = geometry.slices
    assert list(table["SLICE"]) == list(range(layout.n_slices)) and np.all(table["BANK"] == 0)
    np.testing.assert_allclose(table["WIDTH"], layout.slice_width, atol=0.02)
    start, stop = layout.slice_rows(0)
    # the lamp lights the filter's passband: most of the bank's rows
    assert np.all(table["YSTART"] >= start) and np.all(table["YSTOP"] <= stop)
    assert np.all(table["YSTOP"] - table["YSTART"] > 0.85 * (stop - start))
    meta = geometry.meta
    assert meta.slice_geometry.n_spaxels == layout.n_spaxels
    assert meta.slice_geometry.spaxel_pixels == pytest.approx(layout.spaxel_pixels, abs=1e-3)
    assert (meta.instrument.detector, meta.instrument.ifs_mode) == ("IFU", "SLICER")
    assert meta.instrument.spaxel_scale == layout.spaxel_scale
    assert meta.reftype == "SLICEGEO" and meta.cal_step.slice_geometry == "COMPLETE"


def test_too_few_slices_is_a_one_line_error(lamp_rate, layout):
    with pytest.raises(
        SliceGeometryError, match=r"^ifs_flat_001_rate\.fits: 6 slices found in 1 lit bank\(s\), 7 expected"
    ):
        SliceGeometryStep.call(lamp_rate, n_slices=7, n_spaxels=layout.n_spaxels)
    dark = lamp_rate.copy()
    dark.data[...] = 0.0
    with pytest.raises(SliceGeometryError, match=r"^ifs_flat_001_rate\.fits: no rows lit by the lamp"):
        SliceGeometryStep.call(dark, n_slices=layout.n_slices)


def truth_flat(layout, detector, slice_map):
    """The simulator's pixel flat times the slice throughputs, where the pipeline's flat has a slice."""
    return detector.flat * layout.slice_throughputs()[np.maximum(slice_map, 0)]


def test_flat_recovers_pixel_and_slice_response(geometry, lamp_rate, layout, detector):
    flat, flat_err, flat_dq = ifs_flat(lamp_rate.data, lamp_rate.err, lamp_rate.dq, geometry.slices)
    slice_map, coverage = slice_coverage(geometry.slices, flat.shape)
    has_flat = (flat_dq & NO_FLAT) == 0
    assert np.all(flat[slice_map < 0] == 1.0) and np.all(flat_dq[slice_map < 0] & dqflags.pixel["NO_FLAT_FIELD"])
    assert np.median(flat[has_flat]) == pytest.approx(1.0, abs=1e-6)
    truth = truth_flat(layout, detector, slice_map)
    truth /= np.median(truth[has_flat])
    # A lamp flat cannot tell a response shared by all slices at a row from the lamp's spectrum:
    # that smooth factor (the simulator's illumination averaged across the row) is taken out.
    rows = np.flatnonzero(has_flat.any(axis=1))
    shared = np.array([np.median(flat[y][has_flat[y]] / truth[y][has_flat[y]]) for y in rows])
    shared = P.polyval(np.arange(flat.shape[0]), P.polyfit(rows, shared, 4))
    pulls = (flat - truth * shared[:, None])[has_flat] / flat_err[has_flat]
    assert abs(np.std(pulls) - 1.0) < 0.1 and abs(np.mean(pulls)) < 0.1
    # the slice throughputs stay in the flat
    medians = [np.median(flat[has_flat & (slice_map == index)]) for index in range(layout.n_slices)]
    expected = [np.median(truth[has_flat & (slice_map == index)]) for index in range(layout.n_slices)]
    np.testing.assert_allclose(medians, expected, rtol=0.01)
    # most of each slice's lit pixels get a flat
    assert has_flat.sum() > 0.9 * (coverage > 0).sum() * 0.9


def test_flat_keeps_the_slice_throughputs_of_every_bank():
    """Slices in two banks (the full slicer has two): their throughputs relative to each other, bank to bank."""
    layout = ifs.SlicerLayout.small(n_banks=2)
    detector = ifs_detector(layout)
    scene = ifs.exposure_scene("FLAT", layout, FILTER)
    ramp, truth = ifs.simulate_ifs_exposure(
        scene, detector, layout, kind="FLAT", filter=FILTER, nreads=2, noiseless=True
    )
    # Without the pixel flat, whose rows' shared response a lamp flat cannot measure, the flat is the throughputs.
    frame = level1_frame(truth, ramp, detector, seed=5, rate=truth.dispersed_rate)
    slicegeo, _ = slicer_references(layout, detector)
    flat, flat_err, flat_dq = ifs_flat(frame.data, frame.err, frame.dq, slicegeo.slices)
    slice_map, _ = slice_coverage(slicegeo.slices, flat.shape)
    throughputs = layout.slice_throughputs()
    measured, noise = [], []
    for index in range(layout.n_slices):
        pixels = ((flat_dq & NO_FLAT) == 0) & (slice_map == index)
        measured.append(np.median(flat[pixels]) / throughputs[index])
        noise.append(1.2533 * np.median(flat_err[pixels]) / np.sqrt(pixels.sum()))  # error of a median
    measured = np.array(measured) / np.mean(measured)
    assert np.all(np.abs(measured - 1.0) < 5 * np.array(noise))


def test_flat_step_makes_the_ifu_flat_reference(geometry, lamp_rate):
    flat = IFSFlatStep.call(lamp_rate, override_slicegeo=geometry)
    assert isinstance(flat, dm.TMTFlatModel)
    meta = flat.meta
    assert (meta.reftype, meta.instrument.detector, meta.instrument.filter) == ("FLAT", "IFU", FILTER)
    assert meta.cal_step.ifs_flat == "COMPLETE"
    assert flat.dq_def is not None and np.median(flat.data[(flat.dq & NO_FLAT) == 0]) == pytest.approx(1.0)


@pytest.mark.parametrize("instrument", [{"spaxel_scale": 0.025}, {"ifs_mode": "LENSLET", "spaxel_scale": 0.009}])
def test_flat_refuses_a_geometry_of_another_mode_or_scale(geometry, lamp_rate, instrument):
    other = geometry.copy()
    other.meta.filename = "other_slicegeo.fits"
    for key, value in instrument.items():
        setattr(other.meta.instrument, key, value)
    with pytest.raises(IFSFlatError, match=r"^other_slicegeo\.fits: slice geometry for IFSMODE .* ifs_flat_001_rate"):
        IFSFlatStep.call(lamp_rate, override_slicegeo=other)


def test_calibration_pipelines_from_the_command_line(lamp, detector, layout, tmp_path, capsys):
    from liger_iris_pipeline.cli.tmtrun import main as tmtrun

    ramp, truth = lamp
    ramp.meta.filename = "ifs_flat_001_uncal.fits"
    frame = level1_frame(truth, ramp, detector, seed=6)  # with the dark current
    path = tmp_path / "ifs_flat_001_rate.fits"
    frame.save(path)
    references = write_truth_references(detector, tmp_path, FILTER, instrument={"detector": "IFU", "mode": "IFS"})
    dark = f"--steps.dark_current.override_dark={references['DARK']}"
    common = [dark, f"--output_dir={tmp_path}"]
    geometry_args = [f"--steps.slice_geometry.{key}={getattr(layout, key)}" for key in ("n_slices", "n_spaxels")]
    assert tmtrun(["slicegeo_calibration.cfg", str(path), *common, *geometry_args]) == 0
    geometry_path = tmp_path / "ifs_flat_001_slicegeo.fits"
    with dm.open(geometry_path) as geometry:
        assert edge_rms(geometry, truth.traces).max() < 0.05
    assert (
        tmtrun(["ifs_flat_calibration.cfg", str(path), *common, f"--steps.ifs_flat.override_slicegeo={geometry_path}"])
        == 0
    )
    with dm.open(tmp_path / "ifs_flat_001_flat.fits") as flat:
        assert isinstance(flat, dm.TMTFlatModel) and flat.meta.instrument.detector == "IFU"
        assert flat.meta.cal_step.dark_current == "COMPLETE"
    capsys.readouterr()
    assert tmtrun(["slicegeo_calibration.cfg", str(path), *common, "--steps.slice_geometry.n_slices=88"]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        message
        == f"tmtrun: error: {path}: 6 slices found in 1 lit bank(s), 88 expected: not a lamp flat of this slicer"
    )
