"""Liger, Keck's sibling of IRIS: simulated with its own telescope and detector, reduced by the same
``detector1`` and ``image2`` pipelines, and compared with its truth like IRIS."""

import math

import pytest
from level1_helpers import assert_liger_frames_match_truth

from liger_iris_pipeline import simulate
from liger_iris_pipeline.associations import make_asn
from liger_iris_pipeline.pipeline import Detector1Pipeline, ProcessImagerL2Pipeline

SIZE = 256


def test_liger_simulator_uses_keck_and_its_imager():
    liger, iris = simulate.instruments.instrument_model("liger"), simulate.instruments.instrument_model("IRIS")
    assert (liger.name, liger.telescope, liger.detector_shape, liger.plate_scale) == (
        "LIGER",
        "KECK",
        (2048, 2048),
        0.01,
    )
    assert simulate.make_detector(seed=3, instrument="liger").shape == (2048, 2048)
    # lambda/D: Keck's PSF is three times TMT's; the sky per pixel scales with area and pixel solid angle.
    assert simulate.psf_fwhm("Kbb", "liger") == pytest.approx(3 * simulate.psf_fwhm("Kbb", "iris"))
    assert simulate.psf_fwhm("Kbb", "liger") == pytest.approx(math.degrees(1.03 * 2.1935e-6 / 10.0) * 3600)
    ratio = simulate.sky_rate("Kbb", 0.01, "liger") / simulate.sky_rate("Kbb", 0.004, "iris")
    assert ratio == pytest.approx(liger.collecting_area / iris.collecting_area * (0.01 / 0.004) ** 2)
    with pytest.raises(ValueError, match="unknown instrument 'nirc2'"):
        simulate.make_detector((8, 8), instrument="nirc2")


def test_liger_exposure_metadata():
    detector = simulate.make_detector((32, 32), seed=4, instrument="liger")
    scene = simulate.Scene(center=(150.1, 2.2), sky=1.0)
    ramp, truth = simulate.simulate_exposure(scene, detector, nreads=3, seed=1)
    meta = ramp.meta
    assert (meta.telescope, meta.instrument.name, meta.exposure.type) == ("KECK", "LIGER", "LIGER_IMAGE")
    assert meta.instrument.plate_scale == 0.01 and meta.instrument.detector_serial == "SIM-LIGER-4"
    assert (meta.obstype, meta.obsname) == ("SCI", "IMG1-SCI")
    dark, _ = simulate.simulate_dark_exposure(detector, nreads=3, seed=2)
    assert dark.meta.exposure.type == "LIGER_DARK"
    with pytest.raises(ValueError, match="IRIS_DARK"):
        simulate.simulate_exposure(scene, detector, nreads=3, exposure_type="IRIS_DARK")
    references = simulate.reference_models(detector)
    assert {(ref.meta.telescope, ref.meta.instrument.name) for ref in references.values()} == {("KECK", "LIGER")}


@pytest.fixture(scope="module")
def liger_reduction(tmp_path_factory):
    work = tmp_path_factory.mktemp("liger")
    detector = simulate.make_detector((SIZE, SIZE), seed=21, instrument="liger")
    references = simulate.reference_models(detector)
    # No galaxy: at 0.01 arcsec/pixel its wings would cover most of this small field.
    scene = simulate.Scene.random(n_stars=40, seed=5, ra=150.1, dec=2.2, field=SIZE * 0.01, n_extended=0)
    level1 = {
        "dq_init": {"override_mask": references["MASK"]},
        "ramp_fit": {
            f"override_{name.lower()}": references[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")
        },
    }
    level2 = {
        "dark_current": {"override_dark": references["DARK"]},
        "flat_field": {"override_flat": references["FLAT"]},
        "assign_wcs": {"override_distortion": "N/A"},  # the references of this test are the truth's
        "photom": {"override_photom": "N/A"},
    }
    truths, science, sky = [], [], []
    for index in range(2):
        ramp, truth = simulate.simulate_exposure(
            scene, detector, nreads=10, seed=40 + index, dither_arcsec=(0.1 * index, 0)
        )
        ramp.meta.filename = f"liger_science_{index + 1}_uncal.fits"
        science.append(work / f"liger_science_{index + 1}_rate.fits")
        Detector1Pipeline.call(ramp, steps=level1).save(science[-1])
        truths.append(truth)
        sky_ramp, _ = simulate.simulate_sky_exposure(detector, nreads=10, seed=50 + index)
        sky.append(work / f"liger_sky_{index + 1}_rate.fits")
        Detector1Pipeline.call(sky_ramp, steps=level1).save(sky[-1])
    make_asn(science, sky, output=work / "liger_asn.json")
    calibrated = ProcessImagerL2Pipeline.call(work / "liger_asn.json", steps=level2)
    return calibrated, truths


def test_liger_reduces_to_its_truth(liger_reduction):
    assert_liger_frames_match_truth(*liger_reduction)
