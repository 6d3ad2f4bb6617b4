"""photom, measure_photom and photom_calibration against the simulator's truth.

The conversion the pipeline measures from simulated standard stars is compared with the
simulator's own (``1 / dn_per_jy`` per pixel area), and fluxes of stars on a calibrated frame
with the truth's flux densities (Jy).
"""

import math

import numpy as np
import pytest
from astropy import units as u
from level1_helpers import DEC, RA, level1_from_truth

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.measure_photom.standards import StandardPhotometryError, measure_standard
from liger_iris_pipeline.photom import PhotomStep
from liger_iris_pipeline.photom.photom import PhotomError, apply_photom, pixel_area
from liger_iris_pipeline.pipeline import PhotomCalibrationPipeline, ProcessImagerL2Pipeline
from liger_iris_pipeline.simulate.validation import compare_with_truth

SIZE = 320
FILTERS = ("Kbb", "Hbb")
STANDARDS_PER_FILTER = 3


def photom_model(rows, plate_scale=0.004, filename="test_photom.fits"):
    """A PHOTOM reference with rows ``(filter, photmjsr, uncertainty, nstars)``."""
    table = np.array(rows, dtype=[("filter", "S12"), ("photmjsr", "f8"), ("uncertainty", "f8"), ("nstars", "i4")])
    model = datamodels.TMTPhotomModel(phot_table=table)
    model.meta.photometry.pixelarea_steradians, model.meta.photometry.pixelarea_arcsecsq = pixel_area(plate_scale)
    model.meta.filename = filename
    return model


def rate_frame(shape=(8, 8), filter_name="Kbb"):
    """A small DN/s frame with a NaN pixel."""
    rng = np.random.default_rng(0)
    frame = datamodels.IRISImageModel(rng.uniform(1, 2, shape).astype(np.float32))
    frame.var_poisson = np.full(shape, 0.04, np.float32)
    frame.var_rnoise = np.full(shape, 0.01, np.float32)
    frame.var_flat = np.full(shape, 0.0001, np.float32)
    frame.err = np.sqrt(frame.var_poisson + frame.var_rnoise + frame.var_flat)
    frame.dq = np.zeros(shape, np.uint32)
    frame.data[2, 3] = np.nan
    frame.dq[2, 3] = FLAGS["DO_NOT_USE"]
    frame.meta.instrument.name, frame.meta.instrument.detector = "IRIS", "IMG1"
    frame.meta.instrument.filter, frame.meta.instrument.plate_scale = filter_name, 0.004
    frame.meta.filename = "frame_rate.fits"
    return frame


def true_photmjsr(filter_name, instrument="iris", plate_scale=0.004):
    """The simulator's conversion: MJy/sr of 1 DN/s in a pixel."""
    area = ((plate_scale * u.arcsec) ** 2).to_value(u.sr)
    return 1.0e-6 / (simulate.dn_per_jy(filter_name, instrument) * area)


def test_apply_photom_scales_arrays_and_records_keywords(tmp_path):
    frame = rate_frame()
    before = frame.copy()
    apply_photom(frame, photom_model([("Hbb", 7.0, 0.02, 1), ("Kbb", 3.0, 0.01, 2)]))
    np.testing.assert_allclose(frame.data, before.data * 3.0, rtol=1e-6)
    np.testing.assert_allclose(frame.err, before.err * 3.0, rtol=1e-6)
    for name in ("var_poisson", "var_rnoise", "var_flat"):
        np.testing.assert_allclose(getattr(frame, name), getattr(before, name) * 9.0, rtol=1e-6)
    np.testing.assert_allclose(frame.err**2, frame.var_poisson + frame.var_rnoise + frame.var_flat, rtol=1e-5)
    assert np.isnan(frame.data[2, 3]) and frame.dq[2, 3] == FLAGS["DO_NOT_USE"]
    np.testing.assert_array_equal(frame.dq, before.dq)
    phot = frame.meta.photometry
    assert phot.conversion_megajanskys == 3.0 and phot.conversion_uncertainty == 0.01
    # PHOTUJA2 independently: 1 MJy/sr in uJy/arcsec^2.
    assert phot.conversion_microjanskys == pytest.approx(3.0 * (1 * u.MJy / u.sr).to_value(u.uJy / u.arcsec**2))
    assert phot.pixelarea_steradians == pytest.approx(((0.004 * u.arcsec) ** 2).to_value(u.sr), rel=1e-12)
    assert phot.pixelarea_arcsecsq == pytest.approx(0.004**2)
    frame.save(tmp_path / "frame_cal.fits")
    with datamodels.open(tmp_path / "frame_cal.fits") as saved:
        assert saved.meta.bunit_data == saved.meta.bunit_err == "MJy/sr"
        assert saved.meta.bunit_var_poisson == "(MJy/sr)**2"
        assert saved.meta.photometry.conversion_megajanskys == 3.0


def test_apply_photom_refuses_bad_inputs():
    frame = rate_frame(filter_name="Jbb")
    with pytest.raises(PhotomError, match=r"test_photom.fits has no row for filter 'Jbb' \(it has Kbb\)"):
        apply_photom(frame, photom_model([("Kbb", 3.0, 0.01, 1)]))
    frame = rate_frame()
    with pytest.raises(PhotomError, match=r"PIXAR_SR.*plate scale 0.004"):
        apply_photom(frame, photom_model([("Kbb", 3.0, 0.01, 1)], plate_scale=0.01))
    apply_photom(frame, photom_model([("Kbb", 3.0, 0.01, 1)]))
    with pytest.raises(PhotomError, match="frame_rate.fits is already in MJy/sr.*calibrate it twice"):
        apply_photom(frame, photom_model([("Kbb", 3.0, 0.01, 1)]))


def test_photom_step_without_reference_is_skipped():
    result = PhotomStep.call(rate_frame(), override_photom="N/A")
    assert result.meta.cal_step.photom == "SKIPPED"
    assert result.meta.bunit_data in (None, "DN/s") and result.meta.photometry.conversion_megajanskys is None


def test_photom_step_applies_reference():
    result = PhotomStep.call(rate_frame(), override_photom=photom_model([("Kbb", 3.0, 0.01, 1)]))
    assert result.meta.cal_step.photom == "COMPLETE" and result.meta.bunit_data == "MJy/sr"


@pytest.fixture(scope="module")
def detector():
    return simulate.make_detector((SIZE, SIZE), seed=11)


@pytest.fixture(scope="module")
def truth_references(detector):
    """The truth references; the flat with no error: it is exact, its stated 0.2 % is not in the data."""
    references = simulate.reference_models(detector, filter="N/A")
    references["FLAT"].err[...] = 0.0
    return references


@pytest.fixture(scope="module")
def standards(detector):
    """Level 1 standard-star frames (``STANDARDS_PER_FILTER`` per filter) and their truths."""
    frames, truths = [], []
    for index, filter_name in enumerate(FILTERS):
        for exposure in range(STANDARDS_PER_FILTER):
            seed = 100 + 10 * index + exposure
            ramp, truth = simulate.simulate_standard_exposure(
                detector, filter=filter_name, nreads=10, seed=seed, noiseless=True, pointing=(RA, DEC, 0.0)
            )
            ramp.meta.filename = f"std_{filter_name}_{exposure + 1}_uncal.fits"
            frames.append(level1_from_truth(ramp, truth, seed=seed + 1))
            truths.append(truth)
    return frames, truths


def ideal_level2(detector, frame):
    """``(data, err)`` of a Level 1 frame dark-subtracted and flat-fielded with the truth (NaN on dead pixels)."""
    flat = np.where(detector.flat > 0, detector.flat, np.nan)
    return (frame.data - detector.dark_rate) / flat, frame.err / flat


def test_measure_standard_recovers_the_truth_rate(detector, standards):
    pulls = []
    for frame, truth in zip(*standards, strict=True):
        data, err = ideal_level2(detector, frame)
        result = measure_standard(data, err, frame.dq)
        star = truth.sources[0]
        assert math.hypot(result.x - star["x"], result.y - star["y"]) < 0.05
        expected_fwhm = simulate.psf_fwhm(truth.filter_name) / 0.004
        assert result.fwhm == pytest.approx(expected_fwhm, rel=0.02)
        assert result.aperture_correction == pytest.approx(1.0, abs=1e-6)
        pulls.append((result.rate - star["flux"]) / result.rate_error)
    assert np.all(np.abs(pulls) < 4)


def test_measure_standard_corrects_masked_pixels(detector, standards):
    frame, truth = standards[0][0], standards[1][0]
    data, err = ideal_level2(detector, frame)
    dq = frame.dq.copy()
    x, y = round(float(truth.sources[0]["x"])), round(float(truth.sources[0]["y"]))
    dq[y, x + 1] |= FLAGS["DO_NOT_USE"]  # a bright pixel next to the peak
    data[y, x + 1] = np.nan
    result = measure_standard(data, err, dq)
    assert result.masked_pixels == 1 and result.aperture_correction < 0.98
    assert abs(result.rate - truth.sources[0]["flux"]) < 4 * result.rate_error


def test_measure_standard_without_star_fails():
    data = np.random.default_rng(1).normal(5.0, 1.0, (64, 64))
    with pytest.raises(StandardPhotometryError, match="frame: no star"):
        measure_standard(data, np.ones_like(data), np.zeros(data.shape, np.uint32))


@pytest.fixture(scope="module")
def photom_reference(standards, truth_references, tmp_path_factory):
    """The PHOTOM reference of the standards, made by photom_calibration and read back from its file."""
    work = tmp_path_factory.mktemp("photom")
    catalog = simulate.write_standards_catalog(work / "standards.ecsv")
    photom = PhotomCalibrationPipeline.call(
        standards[0],
        standards_catalog=catalog,
        steps={
            "dark_current": {"override_dark": truth_references["DARK"]},
            "flat_field": {"override_flat": truth_references["FLAT"]},
        },
    )
    path = work / "sim_photom.fits"
    photom.save(path)
    with datamodels.open(path) as reference:
        yield reference.copy()


def test_photom_reference_matches_the_simulator_conversion(photom_reference, detector):
    meta = photom_reference.meta
    assert isinstance(photom_reference, datamodels.TMTPhotomModel)
    assert (meta.reftype, meta.instrument.filter, meta.instrument.detector) == ("PHOTOM", "N/A", "IMG1")
    assert meta.instrument.detector_serial == detector.serial
    assert meta.photometry.pixelarea_steradians == pytest.approx(pixel_area(0.004)[0], rel=1e-12)
    table = photom_reference.phot_table
    assert sorted(str(value) for value in table["filter"]) == sorted(FILTERS)
    for row in table:
        expected = true_photmjsr(str(row["filter"]))
        assert row["nstars"] == STANDARDS_PER_FILTER
        assert 0 < row["uncertainty"] < 0.003
        # Within the stated uncertainty (3 sigma: two filters, no look-elsewhere to speak of).
        assert abs(row["photmjsr"] / expected - 1) < 3 * row["uncertainty"], (row, expected)


def test_photom_calibration_refuses_unknown_standard(standards, truth_references, tmp_path):
    catalog = tmp_path / "other.ecsv"
    table = simulate.standards_catalog()
    table["name"] = [f"OTHER-{value}" for value in table["name"]]
    table.write(catalog, format="ascii.ecsv")
    with pytest.raises(StandardPhotometryError, match=r"other.ecsv: no flux of standard 'SIM-STD-.*' in filter Kbb"):
        PhotomCalibrationPipeline.call(
            standards[0][:1],
            standards_catalog=str(catalog),
            steps={
                "dark_current": {"override_dark": truth_references["DARK"]},
                "flat_field": {"override_flat": truth_references["FLAT"]},
            },
        )


def science_frames(detector, count=4):
    """Level 1 science frames of bright random stars in Kbb, and their truths."""
    frames, truths = [], []
    for index in range(count):
        scene = simulate.Scene.random(
            30, seed=30 + index, ra=RA, dec=DEC, field=0.8 * SIZE * 0.004, n_extended=0, flux_range=(300.0, 3.0e4)
        )
        ramp, truth = simulate.simulate_exposure(
            scene, detector, nreads=10, pointing=(RA, DEC, 0.0), seed=60 + index, noiseless=True, filter="Kbb"
        )
        ramp.meta.filename = f"science_{index + 1}_uncal.fits"
        frames.append(level1_from_truth(ramp, truth, seed=70 + index))
        truths.append(truth)
    return frames, truths


def test_image2_fluxes_in_jansky_match_the_truth(detector, truth_references, photom_reference):
    frames, truths = science_frames(detector)
    steps = {
        "assign_wcs": {"override_distortion": "N/A"},
        "dark_current": {"override_dark": truth_references["DARK"]},
        "flat_field": {"override_flat": truth_references["FLAT"]},
        "background": {"sky_from_science": True},
        "photom": {"override_photom": photom_reference},
    }
    ratios, errors, pulls = [], [], []
    for frame, truth in zip(frames, truths, strict=True):
        calibrated = ProcessImagerL2Pipeline.call(frame, steps=steps)
        assert calibrated.meta.cal_step.photom == "COMPLETE" and calibrated.meta.bunit_data == "MJy/sr"
        comparison = compare_with_truth(calibrated, truth)
        assert comparison.unit == "MJy/sr"
        ratios.extend(comparison.flux_ratios)
        errors.extend(comparison.flux_errors)
        pulls.extend(comparison.flux_pulls)
    ratios, errors, pulls = np.array(ratios), np.array(errors), np.array(pulls)
    weights = 1.0 / errors**2
    bias = np.sum(weights * (ratios - 1)) / np.sum(weights)
    print(f"{pulls.size} stars: flux bias {100 * bias:+.3f} %, pull mean {pulls.mean():+.3f}, std {pulls.std():.3f}")
    assert pulls.size >= 60
    assert abs(bias) < 0.01
    assert abs(pulls.std() - 1.0) < 0.1 + 2.0 / math.sqrt(2 * pulls.size)  # target 10 %, plus sampling
    # The reference's own error (PHOTUNC ~0.15 %) is common to all stars and not in ERR.
    assert abs(pulls.mean()) < 0.5


def test_compare_with_truth_refuses_mjy_without_pixel_area(detector, truth_references):
    frames, truths = science_frames(detector, count=1)
    frame = frames[0]
    frame.meta.bunit_data = "MJy/sr"
    with pytest.raises(ValueError, match="MJy/sr but has no PIXAR_SR"):
        compare_with_truth(frame, truths[0])


@pytest.mark.slow
def test_photom_reference_for_cache_has_every_filter():
    from liger_iris_pipeline.pipeline.photom_calibration import photom_reference_for_cache

    detector = simulate.make_detector((128, 128), seed=3, instrument="liger")
    references = simulate.reference_models(detector, filter="N/A")
    photom = photom_reference_for_cache(detector, references, "2024-01-01T00:00:00")
    assert (photom.meta.instrument.name, photom.meta.instrument.filter) == ("LIGER", "N/A")
    assert (photom.meta.useafter, photom.meta.pedigree) == ("2024-01-01T00:00:00", "SIMULATION")
    table = photom.phot_table
    assert sorted(str(value) for value in table["filter"]) == sorted(simulate.filter_names())
    pulls = np.array(
        [(row["photmjsr"] / true_photmjsr(str(row["filter"]), "liger", 0.01) - 1) / row["uncertainty"] for row in table]
    )
    assert np.all(np.abs(pulls) < 4) and abs(pulls.std() - 1) < 0.35, pulls


def test_compare_with_truth_in_jansky_agrees_with_dn_per_second(detector):
    """A frame converted with the simulator's own conversion measures the same in Jy as in DN/s."""
    scene = simulate.Scene.random(20, seed=5, ra=RA, dec=DEC, field=0.8 * SIZE * 0.004, n_extended=0)
    ramp, truth = simulate.simulate_exposure(scene, detector, nreads=5, pointing=(RA, DEC, 0.0), noiseless=True)
    rng = np.random.default_rng(2)
    error = np.sqrt(np.maximum(truth.scene_rate, 0) / 7.35 + 0.5).astype(np.float32)
    frame = datamodels.IRISImageModel(truth.scene_rate - truth.sky_rate + error * rng.standard_normal(error.shape))
    frame.update(ramp)
    frame.err, frame.dq = error, np.zeros(error.shape, np.uint32)
    frame.var_poisson, frame.var_rnoise, frame.var_flat = error**2, np.zeros_like(error), np.zeros_like(error)
    in_dn = compare_with_truth(frame, truth, bright_snr=np.inf)
    apply_photom(frame, photom_model([("Kbb", true_photmjsr("Kbb"), 0.0, 1)]))
    in_jy = compare_with_truth(frame, truth, bright_snr=np.inf)
    assert (in_dn.unit, in_jy.unit) == ("DN/s", "MJy/sr") and in_jy.flux_pulls.size >= 5
    np.testing.assert_allclose(in_jy.flux_pulls, in_dn.flux_pulls, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(in_jy.flux_ratios, in_dn.flux_ratios, rtol=1e-5)
    assert "isolated stars (Jy)" in in_jy.summary() and "MJy/sr" in in_jy.summary()


def test_measure_standard_sees_a_compact_halo(detector):
    """The curve of growth beyond the aperture shows PSF wings the Gaussian core model misses."""
    wings = {}
    for halo in (0.0, 0.3):
        scene = simulate.Scene(
            center=(RA, DEC), ra=[RA], dec=[DEC], flux=[2.0e4], halo_fraction=halo, halo_fwhm=0.03, halo_radius=0.15
        )
        ramp, truth = simulate.simulate_exposure(scene, detector, nreads=10, seed=0, noiseless=True)
        data, err = ideal_level2(detector, level1_from_truth(ramp, truth, seed=10))
        wings[halo] = measure_standard(data, err, truth.mask)
    assert abs(wings[0.0].wing_fraction) < 3 * wings[0.0].wing_fraction_error
    assert wings[0.3].wing_fraction > 4 * wings[0.3].wing_fraction_error
