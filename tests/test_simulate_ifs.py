"""The slicer IFS simulator against its own truth (small layout; the full frame is marked slow)."""

import json
import time

import numpy as np
import pytest

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.simulate import ifs
from liger_iris_pipeline.simulate.ifs.scene import SPEED_OF_LIGHT

FILTER = "KN3"


@pytest.fixture(scope="module")
def layout():
    return ifs.SlicerLayout.small()


@pytest.fixture(scope="module")
def detector(layout):
    return sim.make_detector(layout.detector_shape, seed=11)


def _rate(scene, layout):
    cube, truth = ifs.truth_cube(scene, layout, FILTER)
    return cube, truth, ifs.dispersed_rate(cube, truth["grid"], layout, FILTER)


def _row_of(layout, index, spaxel, wavelength):
    """Detector row where the slice's solution at the spaxel's centre reaches a wavelength."""
    start, stop = layout.slice_rows(index)
    rows = np.linspace(start - 0.5, stop - 0.5, 20001)
    solution = layout.wavelength_coefficients(FILTER)[index]
    return float(np.interp(wavelength, ifs.wavelength_at(solution, spaxel + 0.5, rows), rows))


def _centroid(rate, layout, index, spaxel, row):
    """First moment in y, over +-8 rows, of the column lying inside the spaxel at that row."""
    rows, columns, s = layout.slice_footprint(index, layout.trace_coefficients()[index])
    at = int(round(row)) - rows[0]
    column = columns[np.argmin(np.abs(s[at] - (spaxel + 0.5)))]
    # The column's pixels lie inside the spaxel (no light of its neighbours) at the line's rows.
    assert np.all(np.abs(s[at - 8 : at + 9, column - columns[0]] - (spaxel + 0.5)) < 0.5 - 0.5 / layout.spaxel_pixels)
    window = np.arange(int(round(row)) - 8, int(round(row)) + 9)
    profile = rate[window, column].astype(np.float64)
    return float((window * profile).sum() / profile.sum())


def test_layout_geometry(layout):
    full = ifs.SlicerLayout()
    assert (full.n_slices, full.n_spaxels, full.n_banks, full.detector_shape) == (88, 45, 2, (4096, 4096))
    slice_map, along, wavelength = layout.pixel_maps(FILTER)
    # Every slice is there with its full width, and slices never share a column within a row.
    for index in range(layout.n_slices):
        per_row = (slice_map == index).sum(axis=1)
        start, stop = layout.slice_rows(index)
        assert np.all(per_row[start:stop] == layout.slice_width)
    # Wavelength grows with y in every slice, and the filter's band lies on every slice.
    centre, width = sim.FILTERS[FILTER]
    for index in range(layout.n_slices):
        column = np.flatnonzero((slice_map == index).any(axis=0))[layout.slice_width // 2]
        values = wavelength[:, column][np.isfinite(wavelength[:, column])]
        assert np.all(np.diff(values) > 0)
        assert values[0] < centre - width / 2 and values[-1] > centre + width / 2
    assert 4000.0 == full.resolving_power("Kbb") and 8000.0 == full.resolving_power(FILTER)
    with pytest.raises(ValueError, match="do not fit"):
        ifs.SlicerLayout(n_spaxels=60)


def test_line_lists_are_vacuum_microns_in_range():
    for lamp, lines in ifs.ARC_LINES.items():
        wavelengths = np.array([w for w, _ in lines])
        assert lamp in ("ArI", "KrI", "XeI", "NeI") and wavelengths.min() >= 0.9 and wavelengths.max() <= 2.45
    oh = np.array([w for w, *_ in ifs.OH_LINES])
    assert oh.size >= 100 and oh.min() > 0.94 and oh.max() < 2.41
    # Vacuum, not air: Br-gamma is 2.16612 um in vacuum (2.16553 in air).
    assert ifs.NEBULAR_LINES["Br_gamma"] == pytest.approx(2.16612, abs=2e-5)


def test_sky_is_the_broad_band_sky_with_scalable_oh_lines(layout):
    from liger_iris_pipeline.simulate.ifs.scene import SKY_LINE_FRACTION

    nominal, truth = ifs.truth_cube(ifs.IFSScene(), layout, FILTER)
    brighter, _ = ifs.truth_cube(ifs.IFSScene(oh_scale=1.2), layout, FILTER)
    per_spaxel = sim.sky_rate(FILTER, layout.spaxel_scale)
    assert truth["sky"].sum() == pytest.approx(per_spaxel, rel=1e-6)
    np.testing.assert_allclose(nominal.sum(axis=0), per_spaxel, rtol=1e-5)
    extra = brighter.sum(axis=0, dtype=np.float64) - nominal.sum(axis=0, dtype=np.float64)
    np.testing.assert_allclose(extra, 0.2 * SKY_LINE_FRACTION * per_spaxel, rtol=1e-4)
    assert set(truth["lines"]["kind"]) == {"OH"} and len(truth["lines"]) >= 5


def test_oh_bands_vary_independently(layout):
    """``oh_family_scales`` scales the lines of one vibrational band and leaves the others (and the continuum)."""
    nominal, truth = ifs.truth_cube(ifs.IFSScene(), layout, "HN3")
    varied, varied_truth = ifs.truth_cube(ifs.IFSScene(oh_family_scales={"4-2": 1.1}), layout, "HN3")
    band = np.asarray(truth["lines"]["band"])
    assert set(band) == {"4-2", "5-3"} and list(varied_truth["lines"]["band"]) == list(band)
    ratio = np.asarray(varied_truth["lines"]["flux"]) / np.asarray(truth["lines"]["flux"])
    np.testing.assert_allclose(ratio[band == "4-2"], 1.1)
    np.testing.assert_allclose(ratio[band == "5-3"], 1.0)
    extra = varied.sum(axis=0, dtype=np.float64) - nominal.sum(axis=0, dtype=np.float64)
    np.testing.assert_allclose(extra, 0.1 * truth["lines"]["flux"][band == "4-2"].sum(), rtol=1e-4)


def test_flux_is_conserved_slice_by_slice(layout):
    scene = ifs.default_science_scene(layout, FILTER)
    cube, truth = ifs.truth_cube(scene, layout, FILTER)
    throughputs = layout.slice_throughputs()
    slice_map, _, _ = layout.pixel_maps(FILTER)
    total = np.zeros(layout.detector_shape)
    for index in range(layout.n_slices):
        alone = np.zeros_like(cube)
        alone[:, index] = cube[:, index]
        rate = ifs.dispersed_rate(alone, truth["grid"], layout, FILTER)
        expected = cube[:, index].sum(dtype=np.float64) * throughputs[index]
        assert rate.sum(dtype=np.float64) == pytest.approx(expected, rel=1e-3)
        # No light of this slice reaches another slice's pixels.
        assert not rate[(slice_map >= 0) & (slice_map != index)].any()
        total += rate
    np.testing.assert_allclose(total, ifs.dispersed_rate(cube, truth["grid"], layout, FILTER), rtol=1e-5, atol=1e-6)


def test_arc_lines_fall_on_the_wavelength_solution(layout):
    scene = ifs.IFSScene(sky=False, telluric=False, lamp="arc", lamp_rate=1e4)
    _, truth, rate = _rate(scene, layout)
    lines = truth["lines"]
    wavelengths = np.sort(np.asarray(lines["wavelength"]))
    step = layout.dispersion(FILTER)
    isolated = [w for w in wavelengths if np.sort(np.abs(wavelengths - w))[1] > 20 * step]
    assert len(isolated) >= 3
    offsets = []
    for index in range(layout.n_slices):
        for spaxel in (1, layout.n_spaxels // 2, layout.n_spaxels - 2):
            for wavelength in isolated:
                row = _row_of(layout, index, spaxel, wavelength)
                start, stop = layout.slice_rows(index)
                if start + 10 < row < stop - 10:
                    offsets.append(_centroid(rate, layout, index, spaxel, row) - row)
    assert len(offsets) >= 30
    assert np.max(np.abs(offsets)) < 0.01


def test_velocity_map_shifts_the_disc_line(layout):
    disc = ifs.RotatingDisc(3.6, 2.4, line="Br_gamma", flux=5000.0, scale_length=2.0, r_turn=1.0, v_max=250.0)
    cube, truth, rate = _rate(ifs.IFSScene(discs=[disc], sky=False, telluric=False), layout)
    velocity = truth["velocity"]
    rest = ifs.NEBULAR_LINES["Br_gamma"]
    wave = truth["grid"].centres
    assert np.nanmax(velocity) - np.nanmin(velocity) > 200.0
    # In the truth cube: each spaxel's line centroid is rest * (1 + v / c).
    measured = (cube * wave[:, None, None]).sum(axis=0, dtype=np.float64) / cube.sum(axis=0, dtype=np.float64)
    np.testing.assert_allclose((measured / rest - 1.0) * SPEED_OF_LIGHT, velocity, atol=0.05)
    # On the detector: the line's row, read through the wavelength solution, gives the same velocity.
    solutions = layout.wavelength_coefficients(FILTER)
    for index, spaxel in ((0, 1), (2, 4), (4, 6), (5, 2)):
        expected = rest * (1.0 + velocity[index, spaxel] / SPEED_OF_LIGHT)
        row = _centroid(rate, layout, index, spaxel, _row_of(layout, index, spaxel, expected))
        found = ifs.wavelength_at(solutions[index], spaxel + 0.5, row)
        assert (found / rest - 1.0) * SPEED_OF_LIGHT == pytest.approx(velocity[index, spaxel], abs=0.5)


def test_ramps_reproduce_the_rate_within_the_noise(layout, detector):
    nreads = 10
    scene = ifs.default_science_scene(layout, FILTER)
    model, truth = ifs.simulate_ifs_exposure(
        scene, detector, layout, filter=FILTER, nreads=nreads, linear=True, cosmic_ray_rate=0.0, seed=3
    )
    reads = model.data[0].astype(np.float64)
    times = model.read_times - model.read_times.mean()
    slope = np.tensordot(times, reads, axes=(0, 0)) / (times**2).sum()
    good = (truth.mask & sim.detector.DO_NOT_USE) == 0
    rate = truth.detector_rate.astype(np.float64)
    step = float(np.diff(model.read_times)[0])
    # Unweighted up-the-ramp slope: Poisson and read-noise variances (Rauscher et al. 2007, eq. 1).
    poisson = 6.0 * (nreads**2 + 1) / (5.0 * nreads * (nreads**2 - 1) * step) * rate / detector.gain
    read = 12.0 * detector.read_noise.astype(np.float64) ** 2 / (nreads * (nreads**2 - 1) * step**2)
    pulls = ((slope - rate) / np.sqrt(poisson + read + 1.0 / 12.0 / step**2 / nreads))[good]
    lit = good & (truth.dispersed_rate > 5.0)
    assert lit.sum() > 1000
    assert abs(pulls.mean()) < 0.02 and pulls.std() == pytest.approx(1.0, abs=0.05)
    relative = np.median(np.abs(slope[lit] - rate[lit]) / rate[lit])
    assert relative < 0.1


@pytest.mark.parametrize("kind", list(ifs.IFS_EXPOSURE_KINDS))
def test_exposure_metadata(kind, layout, detector):
    scene = ifs.exposure_scene(kind, layout, FILTER)
    model, truth = ifs.simulate_ifs_exposure(scene, detector, layout, kind=kind, filter=FILTER, nreads=2, seed=1)
    suffix, obstype, obsname = ifs.IFS_EXPOSURE_KINDS[kind]
    meta = model.meta
    assert (meta.exposure.type, meta.obstype, meta.obsname) == (f"IRIS_{suffix}", obstype, obsname)
    assert (meta.instrument.mode, meta.instrument.detector) == ("IFS", "IFU")
    assert (meta.instrument.ifs_mode, meta.instrument.spaxel_scale) == ("SLICER", layout.spaxel_scale)
    assert meta.instrument.filter == ("DARK" if kind == "DARK" else FILTER)
    assert model.data.shape == (1, 2, *layout.detector_shape)
    lit = truth.dispersed_rate.sum()
    assert (lit == 0) if kind == "DARK" else (lit > 0)


def test_truth_round_trip_and_dataset(tmp_path, layout):
    manifest = ifs.simulate_ifs_dataset(tmp_path, nreads=2)
    assert set(manifest) >= {"science", "sky", "flat", "arc", "dark", "telluric", "truth", "manifest"}
    assert json.loads((tmp_path / "manifest.json").read_text())["filter"] == FILTER
    with dm.open(manifest["references"]["MASK"]) as mask:
        assert (mask.meta.instrument.detector, mask.meta.instrument.mode) == ("IFU", "IFS")
        assert mask.meta.instrument.detector_serial == f"SIM-{ifs.IFS_DETECTOR_SEED}"
    science = manifest["science"][0]
    with dm.open(science) as model:
        assert model.meta.instrument.mode == "IFS" and model.meta.exposure.type == "IRIS_IFS"
    truth = ifs.IFSTruth.load(manifest["truth"]["ifs_science_001_uncal.fits"])
    assert truth.layout == layout and truth.filter_name == FILTER
    assert {"point", "disc"} <= set(truth.sources["kind"])
    first = truth.sources[0]
    expected = sim.pointing.pixel_to_world(truth.wcsinfo, first["x"], first["y"])
    np.testing.assert_allclose((first["ra"], first["dec"]), np.ravel(expected), atol=1e-12)
    assert np.isfinite(truth.velocity).sum() > 10 and len(truth.lines) > 5
    from astropy.io import fits
    from astropy.wcs import WCS

    cube_file = manifest["truth_cube"]["ifs_science_001_uncal.fits"]
    assert cube_file == str(ifs.IFSTruth.cube_path(manifest["truth"]["ifs_science_001_uncal.fits"]))
    with dm.open(cube_file) as cube:
        assert isinstance(cube, dm.IRISCubeModel) and cube.meta.bunit_data == "DN/s"
        assert cube.meta.instrument.ifs_mode == "SLICER" and cube.data.shape == truth.cube.shape
    with fits.open(cube_file) as hdulist:
        wcs = WCS(hdulist["SCI"].header)
        assert wcs.wcs.ctype[2] == "WAVE" and hdulist["SCI"].header["CUNIT3"] == "um"
        wavelength = wcs.spectral.pixel_to_world(np.arange(3)).to_value("um")
        ra, dec = wcs.celestial.pixel_to_world_values((layout.n_spaxels - 1) / 2, (layout.n_slices - 1) / 2)
    np.testing.assert_allclose(wavelength, truth.wavelengths[:3], rtol=1e-12)
    np.testing.assert_allclose((ra, dec), (150.1, 2.2), atol=1e-9)
    telluric = ifs.IFSTruth.load(manifest["truth"]["ifs_telluric_001_uncal.fits"])
    assert telluric.transmission.min() < 0.995 and telluric.sources["temperature"][0] == 9600.0


@pytest.mark.slow
def test_full_frame_is_fast():
    layout = ifs.SlicerLayout()
    started = time.perf_counter()
    cube, truth = ifs.truth_cube(ifs.default_science_scene(layout, "Kbb"), layout, "Kbb")
    rate = ifs.dispersed_rate(cube, truth["grid"], layout, "Kbb")
    elapsed = time.perf_counter() - started
    assert elapsed < 30.0
    slice_map, _, _ = layout.pixel_maps("Kbb")
    lit_rows = slice_map.max(axis=1) >= 0
    # Two banks of 44 slices, each row of a bank crossing all of its slices; no two slices overlap.
    assert ((slice_map >= 0).sum(axis=1)[lit_rows] == 44 * layout.slice_width).all()
    assert lit_rows.sum() == 2 * layout.bank_rows
    assert rate.sum(dtype=np.float64) == pytest.approx(
        (cube.sum(axis=(0, 2), dtype=np.float64) * layout.slice_throughputs()).sum(), rel=1e-3
    )


def test_level1_pipeline_recovers_the_truth_rate(tmp_path, layout):
    """The existing Level 1 pipeline, given the IFS detector's truth references, measures the truth's rate."""
    from liger_iris_pipeline.pipeline.detector1 import Detector1Pipeline

    manifest = ifs.simulate_ifs_dataset(tmp_path, nreads=10)
    references = manifest["references"]
    ramp_references = {f"override_{name.lower()}": references[name] for name in ("READNOISE", "GAIN", "NONLIN")}
    ramp_references["override_saturation"] = references["SATURATION"]
    steps = {"dq_init": {"override_mask": references["MASK"]}, "ramp_fit": ramp_references}
    with Detector1Pipeline.call(manifest["science"][0], steps=steps) as rate:
        truth = ifs.IFSTruth.load(manifest["truth"]["ifs_science_001_uncal.fits"])
        good = (rate.dq & sim.detector.DO_NOT_USE) == 0
        pulls = ((rate.data - truth.detector_rate) / rate.err)[good]
    assert abs(np.median(pulls)) < 0.03 and pulls.std() == pytest.approx(1.0, abs=0.1)
