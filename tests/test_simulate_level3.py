"""The simulator's Level 3 truth: distortion, pinhole grid, pointing errors, dithers, fluxes, defects."""

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
