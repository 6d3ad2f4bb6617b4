"""Quality numbers (operations.qa) against the simulator's truth: PSF FWHM, sky, DQ counts, zero point."""

import math

import numpy as np
import pytest

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.assign_wcs.imaging import assign_wcs
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.operations.qa import QA_KEYS, detected_sources, measure_quality
from liger_iris_pipeline.pipeline import Detector1Pipeline

SIZE = 192
POINTING = (150.1, 2.2, 0.0)
SPACING = 36  # pixels between stars: ~9 FWHM in Kbb, every star isolated


def star_grid(detector, filter_name="Kbb", bright=None, pointing=POINTING):
    """A scene of stars on a grid (fluxes 5e3-4e4 DN/s), plus one star that saturates at `bright` (x, y)."""
    size = detector.detector_shape[1]
    wcs = sim.make_wcs(sim.wcsinfo_for_pointing(pointing, detector.detector_shape, 0.004))
    offsets = np.arange(SPACING // 2 + 6, size - 10, SPACING, dtype=float)
    x, y = (grid.ravel() for grid in np.meshgrid(offsets, offsets))
    flux = np.geomspace(5e3, 4e4, x.size)
    if bright is not None:
        keep = np.hypot(x - bright[0], y - bright[1]) > SPACING / 2
        x, y, flux = np.append(x[keep], bright[0]), np.append(y[keep], bright[1]), np.append(flux[keep], 6e5)
    ra, dec = wcs.all_pix2world(x, y, 0)
    return sim.Scene(center=pointing[:2], ra=ra, dec=dec, flux=flux)


@pytest.fixture(scope="module")
def detector():
    return sim.make_detector((SIZE, SIZE), seed=11)


@pytest.fixture(scope="module")
def level1(detector):
    """A Level 1 frame from Detector1Pipeline (truth references), with a saturating star and cosmic rays."""
    references = sim.reference_models(detector)
    scene = star_grid(detector, bright=(60.0, 130.0))
    ramp, truth = sim.simulate_exposure(
        scene, detector, nreads=5, pointing=POINTING, seed=4, cosmic_ray_rate=2e-4, distortion=None
    )
    steps = {
        "dq_init": {"override_mask": references["MASK"]},
        "ramp_fit": {
            f"override_{name.lower()}": references[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")
        },
    }
    return Detector1Pipeline.call(ramp, steps=steps), truth


def test_keys_and_psf_of_a_level1_frame(level1):
    frame, truth = level1
    qa = measure_quality(frame)
    assert tuple(qa) == QA_KEYS
    assert (qa["filter"], qa["exposure_type"], qa["bunit"]) == ("Kbb", "IRIS_IMAGE", "DN/s")
    assert qa["date_obs"].startswith("2025-06-01T10:00:00")
    # The simulator's PSF: a diffraction-limited Gaussian core of 1.03 lambda/D, pixel-integrated
    # (photutils fits a pixel-integrated Gaussian too, so no pixel-size correction).
    assert qa["fwhm_arcsec"] == pytest.approx(sim.psf_fwhm("Kbb"), rel=0.03)
    assert qa["ellipticity"] < 0.05
    assert qa["n_stars"] >= len(truth.sources) - 1
    # The saturating star (its core flagged) is not fitted: it would widen the FWHM.
    assert qa["zero_point_ab"] != qa["zero_point_ab"]  # NaN: a rate frame has no photometric calibration


def test_dq_counts_are_the_flags_of_the_simulated_defects(level1):
    frame, truth = level1
    qa = measure_quality(frame)
    first_saturated = truth.first_saturated_read[0]
    assert qa["n_saturated"] == np.count_nonzero(first_saturated >= 0) > 10
    # DO_NOT_USE: the detector's bad pixels (reference border, dead, very hot) and pixels
    # saturated before two reads could make a slope.
    bad = ((truth.mask & FLAGS["DO_NOT_USE"]) != 0) | ((first_saturated >= 0) & (first_saturated < 2))
    assert qa["n_bad"] == np.count_nonzero(bad)
    assert qa["n_jump"] == np.count_nonzero(frame.dq & FLAGS["JUMP_DET"]) > 0
    hit = np.zeros((SIZE, SIZE), bool)
    hit[truth.cosmic_rays["y"], truth.cosmic_rays["x"]] = True
    hit &= truth.mask == 0
    # Jump detection (not QA) decides which rays it finds (not the faintest) and flags some neighbours.
    flagged = (frame.dq & FLAGS["JUMP_DET"]) != 0
    assert np.count_nonzero(flagged & hit) >= 0.5 * max(qa["n_jump"], np.count_nonzero(hit))


def test_sky_level_and_noise_of_a_level1_frame(level1):
    frame, truth = level1
    qa = measure_quality(frame)
    good = ((frame.dq & FLAGS["DO_NOT_USE"]) == 0) & (truth.scene_rate < 1.001 * truth.scene_rate.min())
    sky_truth = np.median(truth.detector_rate[good])
    # The clipped median of ~30 000 pixels: within a few percent of the noise of one pixel.
    assert abs(qa["sky_level"] - sky_truth) < 0.05 * qa["sky_noise"]
    # Noise: the pixels' own (ERR) and the flat's structure of the sky, which a Level 1 frame still has.
    expected = math.sqrt(np.median(frame.err[good]) ** 2 + np.var(truth.detector_rate[good]))
    assert qa["sky_noise"] == pytest.approx(expected, rel=0.1)


def level2_from_truth(detector, filter_name, seed=5):
    """A flat-fielded frame in MJy/sr with the simulator's own photometric conversion, and its truth."""
    scene = star_grid(detector, filter_name)
    ramp, truth = sim.simulate_exposure(
        scene, detector, nreads=5, pointing=POINTING, seed=seed, noiseless=True, filter=filter_name, distortion=None
    )
    pixar_sr = (0.004 / 3600 * math.pi / 180) ** 2
    photmjsr = 1.0e-6 / (sim.dn_per_jy(filter_name) * pixar_sr)  # 1 DN/s per pixel, in MJy/sr
    rng = np.random.default_rng(seed)
    sigma = np.sqrt(truth.scene_rate / ramp.meta.exposure.integration_time + 1.0)
    frame = datamodels.IRISImageModel((truth.scene_rate + rng.normal(0, 1, truth.scene_rate.shape) * sigma) * photmjsr)
    frame.update(ramp)
    frame.err = (sigma * photmjsr).astype(np.float32)
    frame.dq = truth.mask.astype(np.uint32)
    frame.meta.bunit_data = "MJy/sr"
    frame.meta.photometry.conversion_megajanskys = photmjsr
    frame.meta.photometry.pixelarea_steradians = pixar_sr
    assign_wcs(frame)  # the pixel scale then comes from the gwcs
    return frame, truth, photmjsr, sigma.min() * photmjsr


@pytest.mark.parametrize("filter_name", ["Kbb", "Hbb"])
def test_level2_sky_fwhm_and_zero_point(detector, filter_name):
    frame, truth, photmjsr, sky_sigma = level2_from_truth(detector, filter_name)
    qa = measure_quality(frame)
    assert qa["bunit"] == "MJy/sr"
    sky = sim.sky_rate(filter_name) * photmjsr
    assert abs(qa["sky_level"] - sky) < 0.1 * sky_sigma
    assert qa["sky_noise"] == pytest.approx(sky_sigma, rel=0.05)
    assert qa["fwhm_arcsec"] == pytest.approx(sim.psf_fwhm(filter_name), rel=0.02)
    assert qa["ellipticity"] < 0.05
    sources = detected_sources(frame)
    for star in truth.sources:  # the sources' sky positions, through the gwcs
        distance = np.hypot(
            (sources["ra"] - star["ra"]) * math.cos(math.radians(star["dec"])), sources["dec"] - star["dec"]
        )
        assert distance.min() * 3600 < 0.3 * 0.004
    # The zero point turns a star's DN/s into the truth's AB magnitude.
    star = truth.sources[0]
    assert qa["zero_point_ab"] - 2.5 * math.log10(star["flux"]) == pytest.approx(star["abmag"], abs=1e-6)


def test_sources_positions_and_empty_frames(level1):
    frame, truth = level1
    sources = detected_sources(frame)
    assert set(sources.colnames) >= {"x", "y", "ra", "dec", "flux"}
    assert np.isnan(sources["ra"]).all()  # a rate frame has no gwcs
    for star in truth.sources:
        distance = np.hypot(sources["x"] - star["x"], sources["y"] - star["y"])
        assert distance.min() < 0.3
    # The QA numbers can reuse the detection (the service makes the region file from it).
    assert measure_quality(frame, sources)["fwhm_arcsec"] == measure_quality(frame)["fwhm_arcsec"]
    blank = datamodels.IRISImageModel(np.full((64, 64), np.nan, np.float32))
    qa = measure_quality(blank)
    assert qa["n_stars"] == 0 and math.isnan(qa["sky_level"]) and math.isnan(qa["fwhm_arcsec"])


def test_cube_fwhm_sky_and_dq_counts_of_its_detector_frame():
    """A cube's white-light image gives the source and its FWHM in arcsec; the sky, its voxels."""
    from liger_iris_pipeline.cube_build.cube_wcs import cube_wcs

    nwave, ny, nx, scale, sigma = 40, 25, 31, 0.05, 1.5  # a point source of FWHM 3.5 spaxels
    y, x = np.mgrid[:ny, :nx]
    source = 50.0 * np.exp(-((x - 14.3) ** 2 + (y - 11.6) ** 2) / (2 * sigma**2))
    rng = np.random.default_rng(4)
    sky, noise = 2.0, 0.5
    cube = datamodels.IRISCubeModel((sky + source + rng.normal(0, noise, (nwave, ny, nx))).astype(np.float32))
    cube.err = np.full(cube.data.shape, noise, np.float32)
    cube.wmap = np.ones(cube.data.shape, np.float32)
    cube.dq = np.zeros(cube.data.shape, np.uint32)
    cube.dq[:, 0, :] = FLAGS["DO_NOT_USE"]  # a row of spaxels without data, with another sky
    cube.data[:, 0, :] = 100.0
    cube.meta.bunit_data = "DN/s"
    cube.meta.wcs, wcsinfo = cube_wcs((150.1, 2.2), scale, 30.0, 2.0, 0.0002, cube.data.shape)
    cube.meta.wcsinfo = wcsinfo
    frame = datamodels.IRISIFSImageModel((8, 8))
    frame.dq[0, :3] = FLAGS["SATURATED"] | FLAGS["DO_NOT_USE"]
    frame.dq[1, :5] = FLAGS["JUMP_DET"]
    qa = measure_quality(cube, detector_frame=frame)
    assert qa["n_stars"] == 1
    assert qa["fwhm_arcsec"] == pytest.approx(2 * math.sqrt(2 * math.log(2)) * sigma * scale, rel=0.05)
    # The voxels' clipped median and scatter: the sky (the source's faint wings lift it a little) and the noise.
    assert qa["sky_level"] == pytest.approx(sky, abs=0.1 * noise)
    assert qa["sky_noise"] == pytest.approx(noise, rel=0.05)
    assert (qa["n_saturated"], qa["n_jump"], qa["n_bad"]) == (3, 5, 3)
    assert qa["zero_point_ab"] != qa["zero_point_ab"]  # NaN: no flux calibration of the IFS
    (row,) = detected_sources(cube)
    ra, dec, _ = cube.meta.wcs(14.3, 11.6, 0)
    assert math.hypot((row["ra"] - ra) * math.cos(math.radians(dec)), row["dec"] - dec) * 3600 < 0.1 * scale
