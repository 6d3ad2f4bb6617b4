"""The simulator's Level 3 truth: distortion, pinhole grid, pointing errors, dithers, fluxes, defects."""

from pathlib import Path

import numpy as np
import pytest

from liger_iris_pipeline import simulate as sim

RA, DEC = 150.1, 2.2


@pytest.fixture(scope="module")
def detector():
    return sim.make_detector((128, 128), seed=7)


def centroid(image, x, y, half=6):
    """First moment of a background-free image in a box around (x, y)."""
    x0, y0 = round(x), round(y)
    stamp = image[y0 - half : y0 + half + 1, x0 - half : x0 + half + 1].astype(np.float64)
    offsets = np.arange(-half, half + 1)
    total = stamp.sum()
    return x0 + (stamp.sum(axis=0) * offsets).sum() / total, y0 + (stamp.sum(axis=1) * offsets).sum() / total


@pytest.mark.parametrize(("instrument", "side", "low", "high"), [("iris", 4096, 4.5, 5.5), ("liger", 2048, 1.7, 2.3)])
def test_instrument_distortion_at_the_corners(instrument, side, low, high):
    distortion = sim.instrument_distortion(instrument)
    assert distortion.cx == distortion.cy == (side - 1) / 2 and distortion.scale == side / 2
    assert low < distortion.max_displacement((side, side)) < high
    # The centre does not move, nor the local plate scale there (no constant or linear terms).
    x, y = distortion.to_detector([distortion.cx, distortion.cx + 1.0], [distortion.cy, distortion.cy])
    assert x[0] == distortion.cx and y[0] == distortion.cy
    assert x[1] - x[0] == pytest.approx(1.0, abs=1e-6)


def test_distortion_round_trip_to_1e_8_pixel():
    distortion = sim.instrument_distortion("iris")
    rng = np.random.default_rng(1)
    u, v = rng.uniform(-100, 4195, (2, 2000))
    x, y = distortion.to_detector(u, v)
    assert np.hypot(x - u, y - v).max() > 4.0
    back_u, back_v = distortion.to_focal(x, y)
    assert np.abs(back_u - u).max() < 1e-8 and np.abs(back_v - v).max() < 1e-8


def test_distortion_rejects_linear_terms():
    ax = np.zeros((4, 4))
    ax[1, 0] = 0.1
    with pytest.raises(ValueError, match="degree 0, 1"):
        sim.Distortion(ax, np.zeros((4, 4)), 0.0, 0.0, 1.0)
    assert sim.Distortion.zero().is_zero


def test_star_is_drawn_at_its_distorted_position(detector):
    """A star near a corner of a subarray-read frame lands where the distortion puts it."""
    # An exaggerated distortion, so that a 128-pixel frame shows it (~10 px at the corners).
    ax, ay = np.zeros((4, 4)), np.zeros((4, 4))
    ax[3, 0] = ax[1, 2] = ay[0, 3] = ay[2, 1] = 3.0
    ax[2, 0] = 1.0
    distortion = sim.Distortion(ax, ay, 63.5, 63.5, 64.0)
    wcsinfo = sim.wcsinfo_for_pointing((RA, DEC, 0.0), (128, 128), sim.filters.PLATE_SCALE)
    u, v = 110.0, 100.0
    ra, dec = sim.make_wcs(wcsinfo).all_pix2world(u, v, 0)
    scene = sim.Scene(center=(RA, DEC), ra=[float(ra)], dec=[float(dec)], flux=[1e4], sky=0.0)
    subarray = (65, 49, 64, 80)
    _, truth = sim.simulate_exposure(
        scene, detector, nreads=2, noiseless=True, subarray=subarray, distortion=distortion, pointing=(RA, DEC, 0.0)
    )
    x_full, y_full = distortion.to_detector(u, v)
    assert abs(x_full - u) > 2.0
    row = truth.sources[0]
    assert row["u"] == pytest.approx(u, abs=1e-6) and row["v"] == pytest.approx(v, abs=1e-6)
    assert row["x"] == pytest.approx(x_full - 64, abs=1e-6) and row["y"] == pytest.approx(y_full - 48, abs=1e-6)
    cx, cy = centroid(truth.scene_rate, row["x"], row["y"])
    assert cx == pytest.approx(row["x"], abs=0.01) and cy == pytest.approx(row["y"], abs=0.01)
    assert truth.distortion is distortion


def test_default_distortion_is_the_instruments_and_none_is_none(detector, tmp_path):
    scene = sim.Scene.random(5, 3, RA, DEC, field=128 * sim.filters.PLATE_SCALE, n_extended=1, sky=0.0)
    _, truth = sim.simulate_exposure(scene, detector, nreads=2, noiseless=True)
    expected = sim.instrument_distortion("iris", (128, 128))
    assert np.array_equal(truth.distortion.ax, expected.ax) and truth.distortion.cx == 63.5
    x, y = expected.to_detector(np.asarray(truth.sources["u"]), np.asarray(truth.sources["v"]))
    assert np.allclose(truth.sources["x"], x) and np.allclose(truth.sources["y"], y)
    truth.save(tmp_path / "truth.fits")
    loaded = sim.ExposureTruth.load(tmp_path / "truth.fits")
    assert np.array_equal(loaded.distortion.ay, expected.ay) and loaded.distortion.scale == 2048.0
    assert {"u", "v"} <= set(loaded.extended_sources.colnames)
    _, flat = sim.simulate_exposure(scene, detector, nreads=2, noiseless=True, distortion=None)
    assert flat.distortion is None
    assert np.allclose(flat.sources["x"], flat.sources["u"]) and np.allclose(flat.sources["y"], flat.sources["v"])


def test_pinhole_grid_pitch():
    u, v, pitch = sim.pinhole_grid((4096, 4096))
    assert pitch == 128 and 29**2 <= u.size <= 32**2
    assert np.any((u == 2047.5) & (v == 2047.5))
    u, v, pitch = sim.pinhole_grid((64, 64))
    assert u.size >= 25


@pytest.mark.parametrize("size", [64, 128])
def test_pinhole_exposure_truth(size):
    detector = sim.make_detector((size, size), seed=5)
    model, truth = sim.simulate_pinhole_exposure(detector, nreads=3, seed=2)
    assert model.meta.exposure.type == "IRIS_PINHOLE"
    assert (model.meta.obstype, model.meta.obsname) == ("CAL", "IMG1-DMP")
    assert truth.sky_rate == 0.0 and truth.exposure_type == "IRIS_PINHOLE"
    sources = truth.sources
    assert len(sources) >= 25
    pitch = max(size / 32, sim.exposure.PINHOLE_MIN_PITCH)
    # A regular grid in the focal plane, a hole at the centre, seen through the distortion.
    i, j = (np.asarray(sources["u"]) - (size - 1) / 2) / pitch, (np.asarray(sources["v"]) - (size - 1) / 2) / pitch
    assert np.allclose(i, np.round(i), atol=1e-8) and np.allclose(j, np.round(j), atol=1e-8)
    assert np.any((np.abs(i) < 1e-8) & (np.abs(j) < 1e-8))
    x, y = truth.distortion.to_detector(np.asarray(sources["u"]), np.asarray(sources["v"]))
    assert np.allclose(sources["x"], x, atol=1e-8) and np.allclose(sources["y"], y, atol=1e-8)
    # Bright enough for 0.005-pixel centroids, not saturated.
    assert (truth.first_saturated_read < 0).all()
    image = truth.scene_rate
    for row in sources:
        cx, cy = centroid(image, row["x"], row["y"], half=5)
        assert cx == pytest.approx(row["x"], abs=0.01) and cy == pytest.approx(row["y"], abs=0.01)
    electrons = sources["flux"][0] * 2 * sim.instruments.instrument_model("iris").read_time
    sigma = sim.psf_fwhm("Kbb") / sim.filters.PLATE_SCALE / 2.3548
    assert sigma / np.sqrt(electrons) < 0.005


def test_pinhole_exposure_refuses_a_dither():
    with pytest.raises(ValueError, match="dither_arcsec"):
        sim.simulate_pinhole_exposure(sim.make_detector((64, 64), seed=5), dither_arcsec=(1.0, 0.0))


def test_pointing_error_moves_the_header_not_the_scene(detector, tmp_path):
    scene = sim.Scene.random(4, 3, RA, DEC, field=100 * sim.filters.PLATE_SCALE, n_extended=0, sky=0.0)
    common = {"nreads": 2, "noiseless": True, "pointing": (RA, DEC, 30.0), "dither_arcsec": (0.3, -0.2)}
    model_true, exact = sim.simulate_exposure(scene, detector, **common)
    model, truth = sim.simulate_exposure(scene, detector, pointing_error_mas=(25.0, -40.0), **common)
    np.testing.assert_array_equal(truth.scene_rate, exact.scene_rate)
    assert truth.true_crval == (model_true.meta.wcsinfo.crval1, model_true.meta.wcsinfo.crval2)
    assert model.meta.wcsinfo.crval1 != model_true.meta.wcsinfo.crval1
    # The reported WCS puts the stars (-ex, -ey) / plate scale away from where they are.
    u, v = sim.make_wcs(model.meta.wcsinfo).all_world2pix(truth.sources["ra"], truth.sources["dec"], 0)
    scale_mas = sim.filters.PLATE_SCALE * 1000.0
    np.testing.assert_allclose(u - truth.sources["u"], -25.0 / scale_mas, atol=1e-6)
    np.testing.assert_allclose(v - truth.sources["v"], 40.0 / scale_mas, atol=1e-6)
    truth.save(tmp_path / "truth.fits")
    loaded = sim.ExposureTruth.load(tmp_path / "truth.fits")
    assert loaded.pointing_error_mas == (25.0, -40.0) and loaded.true_crval == truth.true_crval
    assert {"flux_jy", "abmag"} <= set(loaded.sources.colnames)


def test_dither_patterns():
    assert sim.dither_offsets(4, "box", 2.0) == [(-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)]
    nine = np.array(sim.dither_offsets(9, "box", 1.5))
    assert len({tuple(row) for row in nine}) == 9 and np.allclose(nine.mean(axis=0), 0.0)
    assert np.abs(nine).max() == 1.5
    assert len(sim.dither_offsets(5, "box")) == 5
    random = np.array(sim.dither_offsets(50, "random", 3.0, seed=1))
    assert np.abs(random).max() <= 3.0 and random.std() > 1.0
    assert sim.dither_offsets(3, "random", 3.0, seed=1) == sim.dither_offsets(3, "random", 3.0, seed=1)
    with pytest.raises(ValueError, match="spiral"):
        sim.dither_offsets(3, "spiral")


def test_physical_fluxes_share_the_sky_photon_model():
    # Hbb lies inside the H band of the sky model: its sky is a flat F_nu source per arcsec^2.
    hband = next(band for band in sim.filters.SKY_BANDS if band[1] == "H")
    surface = hband[2] * 10 ** (-0.4 * hband[3])
    for instrument, scale in (("iris", 0.004), ("liger", 0.010)):
        expected = sim.dn_per_jy("Hbb", instrument) * surface * scale**2
        assert sim.sky_rate("Hbb", scale, instrument) == pytest.approx(expected, rel=1e-12)
    assert sim.abmag(3631.0) == 0.0 and sim.abmag(36.31) == pytest.approx(5.0)
    scene = sim.Scene.random(50, 1, RA, DEC, abmag_range=(20.0, 25.0), filter_name="Jbb")
    magnitudes = sim.abmag(scene.flux / sim.dn_per_jy("Jbb"))
    assert magnitudes.min() >= 20.0 - 1e-9 and magnitudes.max() <= 25.0 + 1e-9


def test_truth_fluxes_in_jansky(detector):
    scene = sim.Scene.random(3, 3, RA, DEC, field=100 * sim.filters.PLATE_SCALE, n_extended=1)
    _, truth = sim.simulate_exposure(scene, detector, nreads=2, noiseless=True, filter="Jbb")
    for table in (truth.sources, truth.extended_sources):
        np.testing.assert_allclose(table["flux_jy"], table["flux"] / sim.dn_per_jy("Jbb"))
        np.testing.assert_allclose(table["abmag"], -2.5 * np.log10(table["flux_jy"] / 3631.0))


def test_reference_catalog(tmp_path):
    from astropy.table import Table

    scene = sim.Scene.random(2000, 3, RA, DEC)
    written = sim.write_reference_catalog(scene, tmp_path / "ref.ecsv", error_mas=3.0, completeness=0.8, seed=4)
    table = Table.read(tmp_path / "ref.ecsv")
    assert set(table.colnames) >= {"id", "ra", "dec", "ra_error", "dec_error", "abmag"}
    assert len(table) == len(written) and 0.75 < len(table) / 2000 < 0.85
    true = table["id"] - 1
    dra = (table["ra"] - scene.ra[true]) * np.cos(np.radians(DEC)) * 3.6e6
    ddec = (table["dec"] - scene.dec[true]) * 3.6e6
    assert np.std(dra) == pytest.approx(3.0, rel=0.1) and np.std(ddec) == pytest.approx(3.0, rel=0.1)
    assert np.all(table["ra_error"] == 3.0) and str(table["ra_error"].unit) == "mas"
    np.testing.assert_allclose(table["abmag"], sim.abmag(scene.flux[true] / sim.dn_per_jy("Kbb")))


def test_standards_catalog_has_every_filter_and_a_smooth_sed(tmp_path):
    from astropy.table import Table

    path = sim.write_standards_catalog(tmp_path / "standards.ecsv")
    table = Table.read(path)
    assert set(table.colnames) == {"name", "filter", "flux_jy"}
    assert len(table) == len(sim.STANDARD_STARS) * len(sim.filter_names())
    star = table[table["name"] == "SIM-STD-1"]
    flux = dict(zip(star["filter"], star["flux_jy"], strict=True))
    # An A0V star: brighter in F_nu at J than at K (Vega: 1560 vs 645 Jy), smoothly.
    assert flux["Jbb"] / flux["Kbb"] == pytest.approx(1560.0 / 645.0, rel=0.05)
    assert flux["Zbb"] > flux["Jbb"] > flux["Hbb"] > flux["Kbb"]
    assert flux["KN1"] > flux["KN2"] > flux["KN3"]


def test_standard_star_exposure(detector):
    model, truth = sim.simulate_standard_exposure(detector, filter="Kbb", nreads=5, seed=3, pointing=(RA, DEC, 0.0))
    assert model.meta.exposure.type == "IRIS_STANDARD"
    assert (model.meta.obstype, model.meta.obsname) == ("CAL", "IMG1-STD")
    catalog = sim.standards_catalog()
    name = model.meta.target.name
    row = catalog[(catalog["name"] == name) & (catalog["filter"] == "Kbb")][0]
    # The brightest standard that does not saturate.
    assert name == "SIM-STD-1"
    assert len(truth.sources) == 1 and truth.sources["flux_jy"][0] == pytest.approx(row["flux_jy"])
    assert truth.sources["x"][0] == pytest.approx(63.5, abs=1e-6) and truth.sources["y"][0] == pytest.approx(63.5)
    assert (truth.first_saturated_read < 0).all() and truth.sky_rate > 0
    _, faint = sim.simulate_standard_exposure(detector, filter="Zbb", nreads=10, name="SIM-STD-3", noiseless=True)
    assert faint.sources["abmag"][0] == pytest.approx(
        sim.abmag(catalog[(catalog["name"] == "SIM-STD-3") & (catalog["filter"] == "Zbb")]["flux_jy"][0])
    )
    with pytest.raises(ValueError, match="NOPE"):
        sim.simulate_standard_exposure(detector, name="NOPE")


def test_dataset_with_dithers_and_pointing_errors(tmp_path):
    manifest = sim.simulate_dataset(
        tmp_path,
        size=64,
        nreads=2,
        n_science=4,
        n_sky=0,
        n_darks=0,
        n_flats=0,
        seed=2,
        dither_pattern="box",
        dither_step=0.02,
        pointing_error_mas=20.0,
    )
    errors, centres = [], []
    for path in manifest["science"]:
        truth = sim.ExposureTruth.load(manifest["truth"][Path(path).name])
        errors.append(truth.pointing_error_mas)
        centres.append(truth.true_crval)
    errors = np.array(errors)
    assert np.all(errors != 0) and np.abs(errors).max() < 100 and len({tuple(e) for e in errors}) == 4
    assert len(set(centres)) == 4


def test_residual_defects_are_recorded_and_significant(detector, tmp_path):
    scene = sim.Scene.random(10, 3, RA, DEC, field=100 * sim.filters.PLATE_SCALE)
    common = {"nreads": 4, "seed": 5, "pointing": (RA, DEC, 0.0)}
    _, clean = sim.simulate_exposure(scene, detector, **common)
    model, truth = sim.simulate_exposure(
        scene, detector, residual_defects={"hot": 3, "cosmic": 5, "trail": 1.0}, **common
    )
    defects = truth.defects
    assert set(defects["kind"]) == {"hot", "cosmic", "trail"}
    assert len(set(defects["defect"][defects["kind"] == "hot"])) == 3
    cosmic_sizes = np.bincount(defects["defect"][defects["kind"] == "cosmic"])
    assert cosmic_sizes[cosmic_sizes > 0].max() <= 4
    # The trail is a line about 2 pixels wide across the frame.
    trail = defects[defects["kind"] == "trail"]
    assert len(trail) > 100
    # Every defect: on an unflagged pixel, >= 10 sigma, only in the detector rate.
    assert np.all(detector.mask[defects["y"], defects["x"]] == 0)
    assert defects["sigma"].min() >= sim.defects.MIN_SIGMA
    change = truth.detector_rate - clean.detector_rate
    assert np.array_equal(change > 0, truth.defect_mask == 1)
    np.testing.assert_allclose(change[defects["y"], defects["x"]], defects["rate"], rtol=1e-5)
    np.testing.assert_array_equal(truth.scene_rate, clean.scene_rate)
    assert truth.defect_mask.dtype == np.uint8 and truth.defect_mask.sum() == len(defects)
    noise = sim.defects.rate_noise(clean.detector_rate, detector.gain, detector.read_noise, 4, 1.47)
    assert np.all(change[truth.defect_mask == 1] >= 10 * noise[truth.defect_mask == 1])
    truth.save(tmp_path / "truth.fits")
    loaded = sim.ExposureTruth.load(tmp_path / "truth.fits")
    np.testing.assert_array_equal(loaded.defect_mask, truth.defect_mask)
    assert list(loaded.defects["kind"]) == list(defects["kind"])
    assert len(clean.defects) == 0 and not clean.defect_mask.any()


def test_rate_noise_matches_the_ramp_scatter():
    """The noise the defects are scaled to is the scatter of the measured rate (CDS, read noise only)."""
    detector = sim.make_detector((64, 64), seed=3)
    rates = []
    for seed in range(30):
        model, _ = sim.simulate_exposure(
            sim.Scene(sky=0.0),
            detector,
            nreads=2,
            seed=seed,
            linear=True,
            cosmic_ray_rate=0.0,
            filter="DARK",
            exposure_type="DARK",
        )
        rates.append(np.diff(model.data[0].astype(np.float64), axis=0)[0] / 1.47)
    good = detector.mask == 0
    measured = np.std(np.array(rates), axis=0)[good]
    expected = sim.defects.rate_noise(detector.dark_rate, detector.gain, detector.read_noise, 2, 1.47)[good]
    assert np.median(measured / expected) == pytest.approx(1.0, abs=0.1)


def test_level3_dataset(tmp_path):
    from astropy.table import Table

    manifest = sim.simulate_dataset(
        tmp_path, size=128, nreads=3, n_science=4, n_sky=1, n_darks=0, n_flats=0, seed=1, level3=True, n_stars=30
    )
    assert len(manifest["science"]) == 4 and len(manifest["sky"]) == 1
    assert len(manifest["pinhole"]) == 1 and len(manifest["standard"]) == 1
    truths = [sim.ExposureTruth.load(manifest["truth"][Path(path).name]) for path in manifest["science"]]
    assert all(len(truth.defects) > 0 for truth in truths)
    assert all(np.hypot(*truth.pointing_error_mas) > 0 for truth in truths)
    pinhole = sim.ExposureTruth.load(manifest["truth"][Path(manifest["pinhole"][0]).name])
    assert pinhole.exposure_type == "IRIS_PINHOLE" and len(pinhole.sources) >= 25
    standard = sim.ExposureTruth.load(manifest["truth"][Path(manifest["standard"][0]).name])
    assert standard.exposure_type == "IRIS_STANDARD" and len(standard.sources) == 1
    reference = Table.read(manifest["reference_catalog"])
    assert 0.7 * 30 <= len(reference) <= 30
    assert len(Table.read(manifest["standards_catalog"])) == 3 * len(sim.filter_names())
    # The 2x2 box dither: four different pointings, the step an eighth of the field.
    step = 128 * sim.filters.PLATE_SCALE / 8
    centres = np.array([truth.true_crval for truth in truths])
    spread = (centres.max(axis=0) - centres.min(axis=0)) * 3600
    assert spread[1] == pytest.approx(step, rel=0.01)


def test_level3_command_line(tmp_path):
    import json

    from liger_iris_pipeline.simulate.dataset import main

    main(
        [
            "--output",
            str(tmp_path),
            "--size",
            "64",
            "--nreads",
            "2",
            "--n-darks",
            "0",
            "--n-flats",
            "0",
            "--n-sky",
            "0",
            "--level3",
            "--dither",
            "2",
            "--dither-pattern",
            "random",
        ]
    )
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert len(manifest["science"]) == 2
    assert {"pinhole", "standard", "reference_catalog", "standards_catalog"} <= set(manifest)


def test_pinhole_centroids_are_good_to_5_millipixels():
    """Noise-limited centroids of a pinhole over noise realisations (last minus first read, 9x9 box)."""
    detector = sim.make_detector((64, 64), seed=3)
    centroids = []
    for seed in range(12):
        model, truth = sim.simulate_pinhole_exposure(detector, seed=seed, linear=True, cosmic_ray_rate=0.0)
        reads = model.data[0].astype(np.float64)
        rate = (reads[-1] - reads[0]) / (model.read_times[-1] - model.read_times[0])
        rate = (rate - detector.dark_rate) / np.where(detector.flat > 0, detector.flat, 1.0)
        row = truth.sources[len(truth.sources) // 2]
        centroids.append(np.subtract(centroid(rate, row["x"], row["y"], half=4), (row["x"], row["y"])))
    assert np.std(centroids, axis=0).max() < 0.005
