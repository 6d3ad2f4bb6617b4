"""The instrument simulator: its ramps agree with its own truth, and its files round-trip."""

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline import simulate as sim

FLAGS = dm.dqflags.pixel
RA, DEC = 150.1, 2.2
SCALE = sim.filters.PLATE_SCALE


@pytest.fixture(scope="module")
def detector():
    return sim.make_detector((64, 64), seed=7)


@pytest.fixture(scope="module")
def big_detector():
    return sim.make_detector((128, 128), seed=11)


def star_scene(offsets_pix, fluxes, pa=0.0, **kwargs):
    """Stars at detector offsets (dx, dy) pixels from the centre of a frame pointed at (RA, DEC, pa)."""
    wcsinfo = sim.wcsinfo_for_pointing((RA, DEC, pa), (64, 64), SCALE)
    x = 31.5 + np.array([dx for dx, _ in offsets_pix])
    y = 31.5 + np.array([dy for _, dy in offsets_pix])
    ra, dec = sim.make_wcs(wcsinfo).all_pix2world(x, y, 0)
    return sim.Scene(center=(RA, DEC), ra=ra, dec=dec, flux=fluxes, **kwargs)


def test_import_loads_only_numpy():
    code = (
        "import sys, liger_iris_pipeline.simulate; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'astropy', 'stdatamodels', 'asdf', 'scipy'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_simulator_shares_no_code_with_the_pipeline_steps():
    """The truth must not share the code it checks: only plain facts (DQ bits, reference types), file models."""
    import ast

    allowed = {"dqflags", "reference_types", "datamodels"}
    package = Path(sim.__file__).parent
    borrowed = set()
    for source in package.rglob("*.py"):  # subpackages (simulate.ifs) too
        here = ["liger_iris_pipeline", *source.relative_to(package.parent).parts[:-1]]
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.ImportFrom):
                # Relative imports resolved against the file's package: ``..`` of simulate.ifs is simulate.
                base = ".".join(here[: len(here) - node.level + 1]) if node.level else ""
                if node.module:
                    names = [f"{base}.{node.module}" if base else node.module]
                else:
                    names = [f"{base}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("liger_iris_pipeline.") and not name.startswith("liger_iris_pipeline.simulate"):
                    borrowed.add(name.split(".")[1])
    assert borrowed <= allowed, f"the simulator imports pipeline code: {sorted(borrowed - allowed)}"


def test_filter_table_and_sky_levels():
    schema = yaml.safe_load((Path(dm.__file__).parent / "schemas" / "tmt_core.schema.yaml").read_text())
    enum = schema["properties"]["meta"]["properties"]["instrument"]["properties"]["filter"]["enum"]
    assert set(sim.filter_names()) == set(enum) - {"DARK", "N/A"}
    for name in sim.filter_names():
        centre, width = sim.FILTERS[name]
        assert 0.8 < centre < 2.45 and 0.005 < width / centre < 0.5
        assert sim.sky_rate(name) > 0
    assert sim.sky_rate("Kbb") > sim.sky_rate("Hbb") > sim.sky_rate("Jbb") > sim.sky_rate("Zbb")
    assert sim.sky_rate("K") > sim.sky_rate("H") > sim.sky_rate("J")
    # A narrow filter sees its broad band's sky scaled by bandwidth.
    assert sim.sky_rate("HN3") == pytest.approx(sim.sky_rate("Hbb") / 5, rel=0.05)
    # 1.03 lambda / D at 2.1935 micron = 15.5 mas.
    assert sim.psf_fwhm("Kbb") == pytest.approx(1.03 * 2.1935e-6 / 30.0 * 206264.806, rel=1e-8)
    with pytest.raises(ValueError, match="unknown filter"):
        sim.sky_rate("Lp")


def test_sky_exposure_levels(detector):
    rates = {}
    for name in ("J", "H", "K"):
        _, truth = sim.simulate_sky_exposure(detector, filter=name, nreads=2, noiseless=True)
        assert len(truth.sources) == 0 and truth.exposure_type == "IRIS_SKY"
        assert truth.sky_rate == pytest.approx(sim.sky_rate(name))
        np.testing.assert_allclose(truth.scene_rate, truth.sky_rate, rtol=1e-6)
        rates[name] = truth.sky_rate
    assert rates["K"] > rates["H"] > rates["J"] > 0


def test_deterministic_for_a_seed(detector):
    scene = sim.Scene.random(10, 3, RA, DEC, field=64 * SCALE)
    first = sim.simulate_exposure(scene, detector, nreads=4, seed=5, cosmic_ray_rate=1e-3)
    again = sim.simulate_exposure(scene, detector, nreads=4, seed=5, cosmic_ray_rate=1e-3)
    other = sim.simulate_exposure(scene, detector, nreads=4, seed=6, cosmic_ray_rate=1e-3)
    np.testing.assert_array_equal(first[0].data, again[0].data)
    np.testing.assert_array_equal(first[1].cosmic_rays["amplitude"], again[1].cosmic_rays["amplitude"])
    assert (first[0].data != other[0].data).mean() > 0.5
    np.testing.assert_array_equal(sim.make_detector((64, 64), seed=7).bias, detector.bias)
    assert not np.array_equal(sim.make_detector((64, 64), seed=8).bias, detector.bias)
    assert not np.array_equal(sim.Scene.random(10, 4, RA, DEC).ra, scene.ra)


def test_read_times_start_one_read_after_reset(detector):
    model, truth = sim.simulate_exposure(sim.Scene(sky=1.0), detector, nreads=5, read_time=2.0, noiseless=True)
    np.testing.assert_allclose(model.read_times, [2.0, 4.0, 6.0, 8.0, 10.0])
    np.testing.assert_array_equal(truth.read_times, model.read_times)
    assert model.meta.exposure.integration_time == pytest.approx(8.0)


def test_noiseless_linear_slope_equals_truth_rate(detector):
    scene = star_scene([(0, 0), (10.3, -7.6)], [2.0e4, 500.0])
    model, truth = sim.simulate_exposure(scene, detector, nreads=6, noiseless=True, linear=True)
    assert len(truth.cosmic_rays) == 0
    raw = model.data[0].astype(np.float64)
    times = model.read_times
    unsaturated = truth.first_saturated_read[0] < 0
    assert unsaturated.mean() > 0.99
    # Every read is bias + rate * t, rounded to an integer DN.
    expected = detector.bias + truth.detector_rate * times[:, None, None]
    assert np.abs(raw - expected)[:, unsaturated].max() <= 0.5 + 1e-2
    slope = (raw[-1] - raw[0]) / (times[-1] - times[0])
    error = (slope - truth.detector_rate)[unsaturated]
    assert np.abs(error).max() <= (1.0 + 2e-2) / (times[-1] - times[0])  # uint16 rounding only
    assert abs(error.mean()) < 0.05 / (times[-1] - times[0])
    # Reference and dead pixels read their bias and nothing else.
    no_response = (truth.mask & (FLAGS["REFERENCE_PIXEL"] | FLAGS["DEAD"])) != 0
    assert truth.detector_rate[no_response].max() == 0.0
    bias_only = np.broadcast_to(np.rint(detector.bias[no_response]), raw[:, no_response].shape)
    np.testing.assert_array_equal(raw[:, no_response], bias_only)


def test_noiseless_nonlinear_ramp_is_corrected_by_truth_coefficients(detector):
    # A bright lamp takes every pixel to ~90 % of full well, where the deficit is several percent.
    model, truth = sim.simulate_flat_exposure(detector, lamp_rate=2800.0, nreads=10, noiseless=True)
    coeffs = sim.reference_models(detector)["NONLIN"].coeffs.astype(np.float64)
    raw = model.data[0].astype(np.float64)
    times = model.read_times
    usable = (truth.mask & FLAGS["DO_NOT_USE"]) == 0
    good = (truth.first_saturated_read[0] < 0) & usable
    assert good.sum() > 0.95 * usable.sum()
    signal = raw - detector.bias
    corrected = coeffs[0] + signal * (coeffs[1] + signal * (coeffs[2] + signal * coeffs[3]))
    linear = truth.detector_rate * times[:, None, None]
    deficit = 1.0 - signal[-1][good] / linear[-1][good]
    assert deficit.min() > 0.01 and deficit.max() < 0.09
    # P's slope is < 1.3 here, so rounding to integers moves P(raw - bias) by < 0.65 DN.
    assert np.abs(corrected - linear)[:, good].max() < 0.7
    slope = (corrected[-1] - corrected[0]) / (times[-1] - times[0])
    assert np.abs(slope - truth.detector_rate)[good].max() < 1.4 / (times[-1] - times[0])


def test_cosmic_rays_appear_at_truth_read_with_truth_amplitude(detector):
    model, truth = sim.simulate_exposure(
        sim.Scene(sky=20.0), detector, nreads=8, noiseless=True, linear=True, cosmic_ray_rate=1e-3, seed=2
    )
    hits = truth.cosmic_rays
    assert len(hits) > 20 and (hits["read"] >= 1).sum() > 10
    assert np.all((hits["amplitude"] >= 100 / 1.2) & (hits["amplitude"] <= 5000 / 0.8))
    assert np.all((truth.mask[hits["y"], hits["x"]] & (FLAGS["REFERENCE_PIXEL"] | FLAGS["DEAD"])) == 0)
    expected = detector.bias + truth.detector_rate * model.read_times[:, None, None]
    for hit in hits:
        expected[hit["read"] :, hit["y"], hit["x"]] += hit["amplitude"]
    unsaturated = truth.first_saturated_read[0] < 0
    assert np.abs(model.data[0] - expected)[:, unsaturated].max() <= 0.51
    for hit in hits[hits["read"] >= 1]:
        ramp = model.data[0, :, hit["y"], hit["x"]].astype(np.float64)
        steps = np.diff(ramp) - truth.detector_rate[hit["y"], hit["x"]] * np.diff(model.read_times)
        assert np.argmax(steps) + 1 == hit["read"]


def test_saturated_reads_sit_at_the_saturation_level(detector):
    model, truth = sim.simulate_flat_exposure(detector, lamp_rate=6000.0, nreads=10, seed=4)
    saturation = sim.reference_models(detector)["SATURATION"].data
    first = truth.first_saturated_read[0]
    assert (first >= 1).sum() > 1000 and len(np.unique(first[first >= 0])) > 1
    raw = model.data[0]
    reads = np.arange(raw.shape[0])[:, None, None]
    after = (first >= 0) & (reads >= first)
    np.testing.assert_array_equal(raw[after], np.broadcast_to(saturation, raw.shape)[after])
    assert np.all(raw[~after] < np.broadcast_to(saturation, raw.shape)[~after])
    no_response = (truth.mask & (FLAGS["REFERENCE_PIXEL"] | FLAGS["DEAD"])) != 0
    assert np.all(first[no_response] == -1)


def test_point_source_flux_and_position():
    # Rotated field: the truth positions come from the WCS of the exposure's own keywords.
    scene = star_scene([(3.3, -4.7), (-12.8, 9.1)], [1000.0, 50.0], pa=33.0, sky=0.0)
    detector = sim.make_detector((64, 64), seed=1)
    model, truth = sim.simulate_exposure(scene, detector, nreads=2, pointing=(RA, DEC, 33.0), noiseless=True)
    wcs = sim.make_wcs(model.meta.wcsinfo)
    # The WCS holds in the undistorted focal plane (u, v); the detector positions are distorted.
    u, v = wcs.all_world2pix(truth.sources["ra"], truth.sources["dec"], 0)
    np.testing.assert_allclose(truth.sources["u"], u, atol=1e-9)
    np.testing.assert_allclose(truth.sources["v"], v, atol=1e-9)
    x, y = sim.instrument_distortion("iris", (64, 64)).to_detector(u, v)
    np.testing.assert_allclose(truth.sources["x"], x, atol=1e-9)
    np.testing.assert_allclose(truth.sources["y"], y, atol=1e-9)
    for index in range(2):
        single = sim.Scene(ra=scene.ra[index], dec=scene.dec[index], flux=scene.flux[index], sky=0.0)
        rate, xy, _ = single.render(model.meta.wcsinfo.instance, (64, 64), "Kbb")
        assert rate.sum(dtype=np.float64) == pytest.approx(scene.flux[index], rel=1e-3)
        rows, cols = np.indices(rate.shape)
        assert (rate * cols).sum() / rate.sum() == pytest.approx(truth.sources["x"][index], abs=0.05)
        assert (rate * rows).sum() / rate.sum() == pytest.approx(truth.sources["y"][index], abs=0.05)
    np.testing.assert_allclose(truth.scene_rate.sum(dtype=np.float64), scene.flux.sum(), rtol=1e-3)


def test_sky_orientation_and_dither():
    # North is +y and East is -x at PA 0; at PA 90 detector +y points East.
    wcsinfo = sim.wcsinfo_for_pointing((RA, DEC, 0.0), (64, 64), SCALE)
    north = sim.make_wcs(wcsinfo).all_world2pix(RA, DEC + 10 * SCALE / 3600, 0)
    east = sim.make_wcs(wcsinfo).all_world2pix(RA + 10 * SCALE / 3600 / math.cos(math.radians(DEC)), DEC, 0)
    np.testing.assert_allclose(north, (31.5, 41.5), atol=1e-6)
    np.testing.assert_allclose(east, (21.5, 31.5), atol=1e-6)
    rotated = sim.wcsinfo_for_pointing((RA, DEC, 90.0), (64, 64), SCALE)
    east = sim.make_wcs(rotated).all_world2pix(RA + 10 * SCALE / 3600 / math.cos(math.radians(DEC)), DEC, 0)
    np.testing.assert_allclose(east, (31.5, 41.5), atol=1e-6)
    assert (wcsinfo["crpix1"], wcsinfo["crpix2"]) == (32.5, 32.5)
    # A dither of (+dx, +dy) arcsec moves the sources by (-dx, -dy) / plate scale pixels.
    scene = star_scene([(0.0, 0.0)], [100.0])
    detector = sim.make_detector((64, 64), seed=1)
    _, still = sim.simulate_exposure(scene, detector, nreads=2, noiseless=True, pointing=(RA, DEC, 20.0))
    _, moved = sim.simulate_exposure(
        scene, detector, nreads=2, noiseless=True, pointing=(RA, DEC, 20.0), dither_arcsec=(5 * SCALE, -3 * SCALE)
    )
    assert moved.sources["u"][0] - still.sources["u"][0] == pytest.approx(-5.0, abs=1e-6)
    assert moved.sources["v"][0] - still.sources["v"][0] == pytest.approx(3.0, abs=1e-6)


def test_extended_source_and_halo_flux():
    galaxy = sim.ExtendedSource(RA, DEC, flux=2000.0, r_eff=0.03, sersic_n=1.0, axis_ratio=0.5, position_angle=40)
    wcsinfo = sim.wcsinfo_for_pointing((RA, DEC, 10.0), (200, 200), SCALE)
    rate, _, galaxy_xy = sim.Scene(extended=[galaxy], sky=0.0).render(wcsinfo, (200, 200), "Kbb")
    assert rate.sum(dtype=np.float64) == pytest.approx(2000.0, rel=1e-3)
    rows, cols = np.indices(rate.shape)
    assert (rate * cols).sum() / rate.sum() == pytest.approx(galaxy_xy[0, 0], abs=0.05)
    # The major axis lies along position angle 40 deg on the sky, i.e. 30 deg from detector +y.
    dx, dy = cols - galaxy_xy[0, 0], rows - galaxy_xy[1, 0]
    angle = 0.5 * math.degrees(math.atan2(2 * (rate * dx * dy).sum(), (rate * (dy * dy - dx * dx)).sum()))
    assert abs(angle) == pytest.approx(30.0, abs=1.0)
    # A Moffat halo loses only its analytic tail beyond halo_radius.
    halo = sim.Scene(ra=[RA], dec=[DEC], flux=[1000.0], sky=0.0, halo_fraction=0.2, halo_fwhm=0.1, halo_radius=0.3)
    wcsinfo = sim.wcsinfo_for_pointing((RA, DEC, 0.0), (200, 200), SCALE)
    rate, _, _ = halo.render(wcsinfo, (200, 200), "Kbb")
    alpha = 0.1 / SCALE / (2 * math.sqrt(2 ** (1 / 2.5) - 1))
    tail = (1 + (0.3 / SCALE / alpha) ** 2) ** (1 - 2.5)
    assert rate.sum(dtype=np.float64) == pytest.approx(1000.0 * (1 - 0.2 * tail), rel=2e-3)


def test_mask_flags_the_truth_bad_pixels():
    detector = sim.make_detector((256, 256), seed=3)
    mask = detector.mask
    border = np.ones(mask.shape, dtype=bool)
    border[4:-4, 4:-4] = False
    reference = FLAGS["REFERENCE_PIXEL"] | FLAGS["DO_NOT_USE"]
    assert np.all(mask[border] == reference) and not np.any(mask[~border] & FLAGS["REFERENCE_PIXEL"])
    dead = (mask & FLAGS["DEAD"]) != 0
    assert dead.sum() == round(5e-4 * 248 * 248)
    assert np.all(detector.flat[dead] == 0) and np.all(mask[dead] & FLAGS["DO_NOT_USE"])
    dark_e = detector.dark_rate * detector.gain
    hot = dark_e > 0.4
    np.testing.assert_array_equal(hot, (mask & FLAGS["HOT"]) != 0)
    assert hot.sum() == round(1e-3 * 248 * 248)
    hot_and_unusable = FLAGS["HOT"] | FLAGS["DO_NOT_USE"]
    np.testing.assert_array_equal(dark_e > 5.0, (mask & hot_and_unusable) == hot_and_unusable)
    normal = mask == 0
    assert np.median(dark_e[normal]) == pytest.approx(0.025, rel=0.05)
    assert np.median(detector.flat[(mask & FLAGS["DO_NOT_USE"]) == 0]) == pytest.approx(1.0, abs=1e-6)
    assert 0.005 < np.std(detector.flat[normal]) < 0.05
    assert np.median(detector.read_noise * detector.gain) == pytest.approx(9.0, rel=0.02)
    assert np.median(detector.gain) == pytest.approx(1.0, rel=0.01)
    assert 10000 <= detector.bias.min() and detector.bias.max() <= 14000
    saturation = detector.saturation
    assert np.all(saturation == np.floor(saturation)) and saturation.max() <= 65535
    # The correction polynomial is increasing up to full well, with a 3-8 % deficit there.
    full = (saturation - detector.bias)[normal].astype(np.float64)
    c2, c3 = detector.nonlin_c2[normal].astype(np.float64), detector.nonlin_c3[normal].astype(np.float64)
    deficit = 1 - full / (full + c2 * full**2 + c3 * full**3)
    assert deficit.min() > 0.0 and deficit.max() < 0.08 + 1e-6
    assert c2.min() >= 0 and c3.min() >= 0


def test_subarray_is_a_cut_of_the_full_frame(big_detector):
    scene = sim.Scene.random(30, 5, RA, DEC, field=128 * SCALE, n_extended=1)
    pointing = (RA, DEC, 15.0)
    full, full_truth = sim.simulate_exposure(scene, big_detector, nreads=3, noiseless=True, pointing=pointing)
    subarray = (33, 17, 48, 40)
    sub, sub_truth = sim.simulate_exposure(
        scene, big_detector, nreads=3, noiseless=True, pointing=pointing, subarray=subarray
    )
    rows, cols = slice(16, 56), slice(32, 80)
    np.testing.assert_allclose(sub_truth.detector_rate, full_truth.detector_rate[rows, cols], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(sub_truth.scene_rate, full_truth.scene_rate[rows, cols], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(sub_truth.mask, full_truth.mask[rows, cols])
    assert np.abs(sub.data.astype(int) - full.data[:, :, rows, cols]).max() <= 1
    np.testing.assert_allclose(sub_truth.sources["x"], full_truth.sources["x"] - 32, atol=1e-6)
    np.testing.assert_allclose(sub_truth.sources["y"], full_truth.sources["y"] - 16, atol=1e-6)
    meta = sub.meta.subarray
    assert (meta.name, meta.xstart, meta.ystart, meta.xsize, meta.ysize) == ("CUSTOM", 33, 17, 48, 40)
    assert (meta.detxsize, meta.detysize) == (128, 128)
    assert sub.data.shape == (1, 3, 40, 48)
    assert sub.meta.wcsinfo.crpix1 == full.meta.wcsinfo.crpix1 - 32
    assert full.meta.subarray.name == "FULL" and full.meta.subarray.id == 0
    numbered, _ = sim.simulate_exposure(scene, big_detector, nreads=2, subarray=subarray, subarray_id=3)
    assert (numbered.meta.subarray.name, numbered.meta.subarray.id) == ("SUBARRAY3", 3)
    # References cut to the subarray match the full-frame references.
    full_refs, sub_refs = sim.reference_models(big_detector), sim.reference_models(big_detector, subarray=subarray)
    np.testing.assert_array_equal(sub_refs["NONLIN"].coeffs, full_refs["NONLIN"].coeffs[:, rows, cols])
    np.testing.assert_array_equal(sub_refs["DARK"].data, full_refs["DARK"].data[rows, cols])
    assert sub_refs["FLAT"].meta.subarray.xstart == 33 and sub_refs["FLAT"].meta.subarray.name == "CUSTOM"
    with pytest.raises(ValueError, match="is not inside"):
        sim.simulate_exposure(scene, big_detector, nreads=2, subarray=(100, 1, 40, 10))


def test_subarray_map_marks_the_rectangles(detector, tmp_path):
    rectangles = [(5, 9, 10, 6), (30, 20, 8, 16)]
    model, _ = sim.simulate_exposure(sim.Scene(sky=1.0), detector, nreads=2, subarrays=rectangles, noiseless=True)
    path = tmp_path / "map_uncal.fits"
    model.save(path)
    with dm.open(path) as reopened:
        submap = reopened.subarr_map
        assert submap.dtype == np.uint16
    expected = np.zeros((64, 64), dtype=np.uint16)
    expected[8:14, 4:14] = 1
    expected[19:35, 29:37] = 2
    np.testing.assert_array_equal(submap, expected)
    with pytest.raises(ValueError, match="overlaps"):
        sim.subarray_map([(1, 1, 10, 10), (5, 5, 10, 10)], (64, 64))
    with pytest.raises(ValueError, match="at most 10"):
        sim.subarray_map([(k + 1, 1, 1, 1) for k in range(11)], (64, 64))
    with pytest.raises(ValueError, match="full-frame"):
        sim.simulate_exposure(sim.Scene(), detector, subarray=(1, 1, 32, 32), subarrays=rectangles)


def test_ramp_file_round_trip_with_metadata(detector, tmp_path):
    scene = sim.Scene.random(5, 1, RA, DEC, field=64 * SCALE)
    model, truth = sim.simulate_exposure(
        scene,
        detector,
        nreads=4,
        nints=2,
        readout_mode="MCDS",
        nfowler=2,
        filter="Hbb",
        pointing=(RA, DEC, 45.0),
        date="2025-06-01T10:00:00",
        exposure_number=3,
    )
    path = tmp_path / "sim_uncal.fits"
    model.save(path)
    reopened = dm.open(path)
    assert isinstance(reopened, dm.TMTRampModel)
    np.testing.assert_array_equal(reopened.data, model.data)
    assert reopened.data.dtype == np.uint16 and reopened.data.shape == (2, 4, 64, 64)
    meta = reopened.meta
    assert (meta.telescope, meta.instrument.name, meta.instrument.detector, meta.instrument.mode) == (
        "TMT",
        "IRIS",
        "IMG1",
        "IMAGER",
    )
    assert (meta.instrument.filter, meta.processing_level, meta.obstype, meta.obsname) == ("Hbb", 0, "SCI", "IMG1-SCI")
    exposure = meta.exposure
    assert (exposure.type, exposure.readout_mode, exposure.nints, exposure.nreads, exposure.nfowler) == (
        "IRIS_IMAGE",
        "MCDS",
        2,
        4,
        2,
    )
    assert exposure.integration_time == pytest.approx(model.read_times[-1] - model.read_times[0])
    assert exposure.exposure_time == pytest.approx(2 * exposure.integration_time)
    assert (exposure.end_time - exposure.start_time) * 86400 == pytest.approx(2 * 4 * 1.47, abs=1e-3)
    assert exposure.mid_time == pytest.approx((exposure.start_time + exposure.end_time) / 2)
    assert exposure.start_time_iso == "2025-06-01T10:00:00.000"
    assert (meta.observation.date, meta.observation.time) == ("2025-06-01", "10:00:00.000")
    assert meta.observation.exposure_number == 3 and meta.program.id
    assert (meta.target.ra, meta.target.dec) == (RA, DEC)
    wcs = meta.wcsinfo
    assert (wcs.crpix1, wcs.crval1, wcs.ctype1, wcs.ctype2, wcs.radesys) == (32.5, RA, "RA---TAN", "DEC--TAN", "ICRS")
    assert wcs.cdelt1 == pytest.approx(SCALE / 3600) and wcs.pc1_1 == pytest.approx(-math.cos(math.radians(45)))
    assert truth.first_saturated_read.shape == (2, 64, 64)
    from astropy.io import fits

    assert fits.getheader(path)["DATAMODL"] == "TMTRampModel"


def test_exposure_truth_round_trip(detector, tmp_path):
    scene = sim.Scene.random(4, 1, RA, DEC, field=64 * SCALE)
    _, truth = sim.simulate_exposure(scene, detector, nreads=3, cosmic_ray_rate=1e-3, seed=9)
    _, empty = sim.simulate_dark_exposure(detector, nreads=2, noiseless=True)
    for item, name in ((truth, "t.fits"), (empty, "e.fits")):
        item.save(tmp_path / name)
        loaded = sim.ExposureTruth.load(tmp_path / name)
        for attribute in ("detector_rate", "scene_rate", "first_saturated_read", "mask", "read_times"):
            np.testing.assert_array_equal(getattr(loaded, attribute), getattr(item, attribute))
            assert getattr(loaded, attribute).dtype == getattr(item, attribute).dtype
        for attribute in ("sources", "extended_sources", "cosmic_rays"):
            original, copy = getattr(item, attribute), getattr(loaded, attribute)
            assert copy.colnames == original.colnames and len(copy) == len(original)
            for column in original.colnames:
                np.testing.assert_array_equal(copy[column], original[column])
        assert (loaded.sky_rate, loaded.filter_name, loaded.exposure_type, loaded.subarray, loaded.seed) == (
            item.sky_rate,
            item.filter_name,
            item.exposure_type,
            item.subarray,
            item.seed,
        )
    assert len(truth.cosmic_rays) > 0 and len(empty.sources) == 0


def test_reference_files_round_trip(detector, tmp_path):
    models = sim.reference_models(detector, useafter="2024-02-03T04:05:06", filter="Jbb")
    assert set(models) == set(sim.REFERENCE_TYPES)
    expected_class = {
        "DARK": dm.TMTDarkModel,
        "FLAT": dm.TMTFlatModel,
        "MASK": dm.TMTMaskModel,
        "NONLIN": dm.TMTNonlinModel,
        "SATURATION": dm.TMTSaturationModel,
        "READNOISE": dm.TMTReadnoiseModel,
        "GAIN": dm.TMTGainModel,
    }
    for reftype, model in models.items():
        path = tmp_path / f"truth_{reftype.lower()}.fits"
        model.save(path)
        reopened = dm.open(path)
        assert type(reopened) is expected_class[reftype]
        meta = reopened.meta
        assert (meta.reftype, meta.useafter, meta.pedigree, meta.telescope) == (
            reftype,
            "2024-02-03T04:05:06",
            "SIMULATION",
            "TMT",
        )
        assert (meta.instrument.name, meta.instrument.detector) == ("IRIS", "IMG1")
        assert meta.description and meta.author
        assert (meta.subarray.name, meta.subarray.xsize, meta.subarray.detxsize) == ("FULL", 64, 64)
        assert len(reopened.dq_def) == 32
        np.testing.assert_array_equal(reopened.dq & detector.mask, detector.mask)
    assert models["FLAT"].meta.instrument.filter == "Jbb"
    assert models["DARK"].meta.bunit_data == "DN/s"
    np.testing.assert_array_equal(models["DARK"].data, detector.dark_rate)
    np.testing.assert_array_equal(models["FLAT"].data, detector.flat)
    np.testing.assert_array_equal(models["MASK"].dq, detector.mask)
    np.testing.assert_array_equal(models["SATURATION"].data, detector.saturation)
    np.testing.assert_array_equal(models["READNOISE"].data, detector.read_noise)
    np.testing.assert_array_equal(models["GAIN"].data, detector.gain)
    coeffs = models["NONLIN"].coeffs
    assert coeffs.shape == (4, 64, 64)
    np.testing.assert_array_equal(coeffs[0], 0.0)
    np.testing.assert_array_equal(coeffs[1], 1.0)
    np.testing.assert_array_equal(coeffs[2], detector.nonlin_c2)
    flat_dq = models["FLAT"].dq
    no_response = (detector.mask & (FLAGS["REFERENCE_PIXEL"] | FLAGS["DEAD"])) != 0
    assert np.all(flat_dq[no_response] & FLAGS["NO_FLAT_FIELD"])
    assert not np.any(flat_dq[~no_response] & FLAGS["NO_FLAT_FIELD"])


@pytest.mark.parametrize("sky", [3.0, 300.0])  # Poisson and normal-approximation regimes
def test_noisy_cds_scatter_matches_poisson_and_read_noise(sky):
    detector = sim.make_detector((96, 96), seed=5)
    model, truth = sim.simulate_exposure(
        sim.Scene(sky=sky), detector, nreads=5, linear=True, cosmic_ray_rate=0.0, seed=8
    )
    good = truth.mask == 0
    times = model.read_times
    interval = times[-1] - times[0]
    cds = model.data[0, -1].astype(np.float64) - model.data[0, 0]
    residual = cds - truth.detector_rate * interval
    # Poisson: detector_rate * gain * interval electrons = detector_rate * interval / gain DN^2;
    # two reads of noise; and the variance of rounding each read to an integer (1/12 DN^2 each).
    variance = truth.detector_rate * interval / detector.gain + 2 * detector.read_noise**2 + 2 / 12
    ratio = np.mean(residual[good] ** 2 / variance[good])
    assert ratio == pytest.approx(1.0, abs=0.1)
    assert abs(np.mean(residual[good] / np.sqrt(variance[good]))) < 0.1


def test_calibration_exposures(detector):
    dark, dark_truth = sim.simulate_dark_exposure(detector, nreads=3, noiseless=True)
    kind = (dark.meta.exposure.type, dark.meta.instrument.filter, dark.meta.obsname)
    assert kind == ("IRIS_DARK", "DARK", "IMG1-DRK")
    np.testing.assert_array_equal(dark_truth.scene_rate, 0.0)
    np.testing.assert_array_equal(dark_truth.detector_rate, detector.dark_rate)
    flat, flat_truth = sim.simulate_flat_exposure(detector, lamp_rate=500.0, filter="Kbb", nreads=3, noiseless=True)
    assert (flat.meta.exposure.type, flat.meta.obstype, flat.meta.obsname) == ("IRIS_FLAT", "CAL", "IMG1-NFF")
    np.testing.assert_allclose(flat_truth.detector_rate, 500.0 * detector.flat + detector.dark_rate, rtol=1e-6)
    assert flat_truth.sky_rate == 500.0
    sky, _ = sim.simulate_sky_exposure(detector, nreads=3)
    assert (sky.meta.exposure.type, sky.meta.obsname) == ("IRIS_SKY", "IMG1-SKY")


def test_invalid_requests_raise(detector):
    scene = sim.Scene(sky=1.0)
    with pytest.raises(ValueError, match="MCDS"):
        sim.simulate_exposure(scene, detector, nreads=3, readout_mode="MCDS", nfowler=2)
    with pytest.raises(ValueError, match="CDS"):
        sim.simulate_exposure(scene, detector, nreads=1, readout_mode="CDS")
    with pytest.raises(ValueError, match="readout_mode"):
        sim.simulate_exposure(scene, detector, readout_mode="FOWLER")
    with pytest.raises(ValueError, match="exposure_type"):
        sim.simulate_exposure(scene, detector, exposure_type="IRIS_ARC")
    with pytest.raises(ValueError, match="unknown filter"):
        sim.simulate_exposure(sim.Scene(ra=[RA], dec=[DEC], flux=[1.0]), detector, filter="DARK")
    with pytest.raises(ValueError, match="too small"):
        sim.make_detector((8, 8))


def test_simulate_dataset_and_command_line(tmp_path, capsys):
    manifest = sim.simulate_dataset(tmp_path / "set", size=32, nreads=3, n_science=2, n_darks=1, n_flats=1, seed=4)
    assert [len(manifest[kind]) for kind in ("science", "sky", "dark", "flat")] == [2, 1, 1, 1]
    assert set(manifest["references"]) == set(sim.REFERENCE_TYPES)
    assert json.loads((tmp_path / "set" / "manifest.json").read_text()) == manifest
    science = [dm.open(path) for path in manifest["science"]]
    assert all(path.endswith("_uncal.fits") for path in manifest["science"])
    assert science[0].meta.filename == "sim_science_001_uncal.fits"
    assert science[0].meta.wcsinfo.crval1 != science[1].meta.wcsinfo.crval1  # dithered
    truth = sim.ExposureTruth.load(manifest["truth"]["sim_science_002_uncal.fits"])
    assert truth.detector_rate.shape == (32, 32)
    assert dm.open(manifest["dark"][0]).meta.exposure.type == "IRIS_DARK"
    assert isinstance(dm.open(manifest["references"]["NONLIN"]), dm.TMTNonlinModel)
    from liger_iris_pipeline.simulate.dataset import main

    main(
        [
            "--output",
            str(tmp_path / "cli"),
            "--size",
            "24",
            "--nreads",
            "2",
            "--seed",
            "1",
            "--n-science",
            "0",
            "--n-darks",
            "0",
            "--n-flats",
            "0",
            "--subarray",
            "3",
            "5",
            "16",
            "12",
        ]
    )
    assert "wrote 1 exposures and 7 truth references" in capsys.readouterr().out
    ramp = dm.open(tmp_path / "cli" / "sim_sky_001_uncal.fits")
    assert ramp.data.shape == (1, 2, 12, 16) and ramp.meta.subarray.xstart == 3
