"""tweakreg: pointing errors of tens of mas recovered against the simulator-free truth of `alignment_helpers`."""

import logging

import numpy as np
import pytest
from alignment_helpers import make_frames, wcs_error_mas, write_reference_catalog

from liger_iris_pipeline.datamodels.library import ModelLibrary
from liger_iris_pipeline.tweakreg import TweakRegStep, detect_sources


@pytest.fixture(scope="module")
def dithered():
    return make_frames(n=4, pointing_error_mas=30.0)


def _run(frames, **parameters):
    library = ModelLibrary([frame.copy() for frame in frames])
    return TweakRegStep(**parameters).run(library)


def _models(library):
    with library:
        models = [library.borrow(index) for index in range(len(library))]
        for index, model in enumerate(models):
            library.shelve(model, index, modify=False)
    return models


def test_detect_sources_masks_flagged_pixels(dithered):
    frames, truths, _ = dithered
    frame = frames[0]
    catalog = detect_sources(frame.data, frame.dq)
    assert len(catalog) >= 20
    dq = frame.dq.copy()
    dq[:, :] = 1  # DO_NOT_USE everywhere: nothing to detect
    assert len(detect_sources(frame.data, dq)) == 0


def test_relative_alignment_removes_the_relative_pointing_errors(dithered):
    frames, truths, _ = dithered
    before = [wcs_error_mas(f.meta.wcs, t, f.data.shape) for f, t in zip(frames, truths, strict=True)]
    assert max(before) > 20.0
    models = _models(_run(frames))
    # Relative alignment: every frame takes the reference frame's pointing error.
    shape = frames[0].data.shape
    ny, nx = shape
    offsets = []
    for model, truth in zip(models, truths, strict=True):
        ra, dec = model.meta.wcs((nx - 1) / 2, (ny - 1) / 2)
        ra0, dec0 = truth((nx - 1) / 2, (ny - 1) / 2)
        offsets.append(((ra - ra0) * np.cos(np.radians(dec0)) * 3.6e6, (dec - dec0) * 3.6e6))
        assert model.meta.cal_step.tweakreg == "COMPLETE"
    offsets = np.array(offsets)
    spread = np.hypot(*(offsets - offsets[0]).T)
    assert spread.max() < 1.0, spread


@pytest.mark.parametrize(
    ("abs_fitgeometry", "catalog_error_mas"),
    # On these 1-arcsec frames a rotation is poorly constrained by a catalog with 2 mas errors
    # (2 mas over a 0.5 arcsec lever arm): fit a shift there, and the rotation too with a better catalog.
    [("shift", 2.0), ("rshift", 0.5)],
)
def test_absolute_alignment_recovers_the_pointing_within_1_mas(dithered, tmp_path, abs_fitgeometry, catalog_error_mas):
    frames, truths, stars = dithered
    catalog = write_reference_catalog(stars, tmp_path / "refcat.ecsv", error_mas=catalog_error_mas)
    models = _models(_run(frames, abs_refcat=catalog, abs_fitgeometry=abs_fitgeometry))
    errors = [wcs_error_mas(m.meta.wcs, t, m.data.shape) for m, t in zip(models, truths, strict=True)]
    print(f"{abs_fitgeometry}, catalog errors {catalog_error_mas} mas: largest WCS error {max(errors):.3f} mas")
    assert max(errors) <= 1.0, errors
    for model in models:
        assert model.meta.cal_step.tweakreg == "COMPLETE"
        assert model.meta.tweakreg.reference == "refcat.ecsv"
        assert model.meta.tweakreg.n_matched >= 15
        assert model.meta.tweakreg.rms_mas < 3 * catalog_error_mas + 0.5
        # The FITS header follows the corrected gwcs (what DS9 shows).
        info = model.meta.wcsinfo
        ra, dec = model.meta.wcs(info.crpix1 - 1, info.crpix2 - 1)
        assert abs(ra - info.crval1) * 3.6e6 * np.cos(np.radians(dec)) < 0.01
        assert abs(dec - info.crval2) * 3.6e6 < 0.01


def test_header_wcs_round_trips_through_fits(dithered, tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    frames, truths, stars = dithered
    catalog = write_reference_catalog(stars, tmp_path / "refcat.ecsv")
    models = _models(_run(frames[:2], abs_refcat=catalog))
    path = tmp_path / "aligned_cal.fits"
    models[1].save(path)
    with fits.open(path) as hdulist:
        header = hdulist["SCI"].header
        assert hdulist[0].header["S_TWKREG"] == "COMPLETE"
        assert hdulist[0].header["TWKREF"] == "refcat.ecsv"
        header_wcs = WCS(header)
    ny, nx = frames[1].data.shape
    x, y = np.meshgrid(np.linspace(0, nx - 1, 5), np.linspace(0, ny - 1, 5))
    ra, dec = header_wcs.all_pix2world(x, y, 0)
    ra0, dec0 = truths[1](x, y)
    assert np.max(np.hypot((ra - ra0) * np.cos(np.radians(dec0)), dec - dec0)) * 3.6e6 < 1.0


def test_too_few_sources_keeps_the_original_wcs(dithered, caplog):
    frames, truths, _ = dithered
    blank = frames[1].copy()
    blank.data[:] = np.random.default_rng(5).normal(5.0, 1.0, blank.data.shape).astype(np.float32)
    inputs = [frames[0], blank, frames[2]]
    with caplog.at_level(logging.WARNING):
        models = _models(_run(inputs))
    assert models[1].meta.cal_step.tweakreg == "SKIPPED"
    assert wcs_error_mas(models[1].meta.wcs, blank.meta.wcs, blank.data.shape) == 0.0
    assert models[0].meta.cal_step.tweakreg == "COMPLETE"
    assert "keeps its original WCS" in caplog.text


def test_catalog_that_matches_nothing_falls_back_to_relative(dithered, tmp_path, caplog):
    from astropy.table import Table

    frames, truths, stars = dithered
    far = Table(stars, copy=True)
    far["dec"] = far["dec"] + 1.0  # one degree away: nothing matches
    path = tmp_path / "far.ecsv"
    far.write(path, format="ascii.ecsv")
    with caplog.at_level(logging.WARNING):
        models = _models(_run(frames, abs_refcat=str(path)))
    assert "keep the relative alignment" in caplog.text
    for model in models:
        assert model.meta.tweakreg.reference == "relative"
        assert model.meta.cal_step.tweakreg == "COMPLETE"


def test_distorted_frames_with_sip_headers(tmp_path):
    """A gwcs with a focal frame (distortion) and a SIP header: both follow the correction."""
    from astropy.io import fits
    from astropy.wcs import WCS

    frames, truths, stars = make_frames(n=3, pointing_error_mas=30.0, distortion_px=3.0, seed=4)
    assert frames[0].meta.wcsinfo.ctype1 == "RA---TAN-SIP"
    catalog = write_reference_catalog(stars, tmp_path / "refcat.ecsv", error_mas=0.5)
    models = _models(_run(frames, abs_refcat=catalog))
    for model, truth in zip(models, truths, strict=True):
        assert model.meta.wcs.available_frames == ["detector", "focal", "world"]
        assert wcs_error_mas(model.meta.wcs, truth, model.data.shape) <= 1.0
        assert model.meta.wcsinfo.sip_max_error < 0.01
    path = tmp_path / "distorted_cal.fits"
    models[2].save(path)
    with fits.open(path) as hdulist:
        header_wcs = WCS(hdulist["SCI"].header)
    ny, nx = models[2].data.shape
    x, y = np.meshgrid(np.linspace(0, nx - 1, 7), np.linspace(0, ny - 1, 7))
    ra, dec = header_wcs.all_pix2world(x, y, 0)
    ra0, dec0 = truths[2](x, y)
    assert np.max(np.hypot((ra - ra0) * np.cos(np.radians(dec0)), dec - dec0)) * 3.6e6 < 1.0


@pytest.fixture(scope="module")
def simulated_frames():
    """Level 2 frames of the simulator's exposures: its scene rate with noise, its header WCS (with the pointing error).

    The truth is the simulator's: each star's detector position (``truth.sources``) and sky position.
    """
    from liger_iris_pipeline import datamodels, simulate
    from liger_iris_pipeline.assign_wcs.imaging import complete_wcsinfo, make_gwcs

    detector = simulate.make_detector((256, 256), seed=1)
    scene = simulate.Scene.random(250, 2, 150.0, 2.0, field=256 * 0.004 * 1.4)
    dithers = [(0.0, 0.0), (0.12, 0.0), (0.0, 0.12), (0.12, 0.12)]
    errors = [(25.0, -30.0), (-18.0, 12.0), (35.0, 20.0), (-10.0, -40.0)]
    rng = np.random.default_rng(3)
    frames, truths = [], []
    for index, (dither, error) in enumerate(zip(dithers, errors, strict=True)):
        ramp, truth = simulate.simulate_exposure(
            scene, detector, nreads=3, pointing=(150.0, 2.0, 0.0), dither_arcsec=dither, pointing_error_mas=error,
            seed=10 + index, exposure_number=index + 1, cosmic_ray_rate=0.0,
        )  # fmt: skip
        exposure_time = 30.0
        noise = np.sqrt(np.maximum(truth.scene_rate, 0.0) / exposure_time)
        model = datamodels.IRISImageModel((truth.scene_rate + rng.normal(0.0, 1.0, noise.shape) * noise).astype("f4"))
        model.var_poisson = (noise**2).astype("f4")
        model.err = noise.astype("f4")
        info = complete_wcsinfo(dict(ramp.meta.wcsinfo.instance))
        model.meta.wcsinfo = info
        model.meta.wcs = make_gwcs(info, model.data.shape)
        model.meta.program.id = ramp.meta.program.id
        model.meta.observation.observation_id = ramp.meta.observation.observation_id
        model.meta.observation.exposure_number = ramp.meta.observation.exposure_number
        model.meta.instrument.name = ramp.meta.instrument.name
        model.meta.instrument.filter = ramp.meta.instrument.filter
        model.meta.filename = f"sim_science_{index + 1:03d}_cal.fits"
        ramp.close()
        frames.append(model)
        truths.append(truth)
    return frames, truths, scene


def _error_against_simulator_truth(wcs, truth, shape):
    """Largest distance (mas) between where the WCS puts the simulator's stars and where they are."""
    sources = truth.sources
    ny, nx = shape
    inside = (sources["x"] > 0) & (sources["x"] < nx - 1) & (sources["y"] > 0) & (sources["y"] < ny - 1)
    ra, dec = wcs(sources["x"][inside], sources["y"][inside])
    cos = np.cos(np.radians(sources["dec"][inside]))
    return float(np.max(np.hypot((ra - sources["ra"][inside]) * cos, dec - sources["dec"][inside])) * 3.6e6)


def test_simulator_pointing_errors_recovered_within_1_mas(simulated_frames, tmp_path):
    from liger_iris_pipeline import simulate

    frames, truths, scene = simulated_frames
    before = [_error_against_simulator_truth(f.meta.wcs, t, f.data.shape) for f, t in zip(frames, truths, strict=True)]
    assert min(before) > 10.0
    catalog = tmp_path / "reference_catalog.ecsv"
    simulate.write_reference_catalog(scene, catalog, error_mas=2.0, seed=5)
    models = _models(_run(frames, abs_refcat=str(catalog), abs_fitgeometry="shift"))
    after = [_error_against_simulator_truth(m.meta.wcs, t, m.data.shape) for m, t in zip(models, truths, strict=True)]
    print(f"simulator frames: header WCS errors {np.round(before, 1)} mas -> {np.round(after, 3)} mas")
    assert max(after) <= 1.0, after


def test_on_disk_frames_get_the_same_correction_at_every_borrow(tmp_path, monkeypatch):
    """On disk the correction is applied at each borrow until written: the FITS keywords fitted once are the same."""
    monkeypatch.chdir(tmp_path)
    frames, truths, stars = make_frames(n=3, pointing_error_mas=30.0, distortion_px=3.0, seed=4)
    paths = []
    for frame in frames:
        frame.save(tmp_path / frame.meta.filename)
        paths.append(tmp_path / frame.meta.filename)
    catalog = write_reference_catalog(stars, tmp_path / "refcat.ecsv", error_mas=0.5)
    library = TweakRegStep(abs_refcat=catalog).run(ModelLibrary(paths, on_disk=True))
    assert not library._temp_filenames  # nothing written
    first, second = _models(library), _models(library)
    for one, other, truth in zip(first, second, truths, strict=True):
        assert one.meta.cal_step.tweakreg == other.meta.cal_step.tweakreg == "COMPLETE"
        assert wcs_error_mas(other.meta.wcs, truth, other.data.shape) <= 1.0
        assert dict(other.meta.wcsinfo.instance) == dict(one.meta.wcsinfo.instance)
        assert other.instance["extra_fits"]["SCI"]["header"] == one.instance["extra_fits"]["SCI"]["header"]
        assert other.meta.wcs is not one.meta.wcs
    library.close()
