"""fit_distortion: pinhole centroids -> distortion polynomials, against the simulator's distortion."""

import numpy as np
import pytest
from level1_helpers import level1_from_truth

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.fit_distortion import FitDistortionStep
from liger_iris_pipeline.fit_distortion.pinholes import DistortionFitError, fit_distortion, polynomial_terms
from liger_iris_pipeline.simulate.distortion import instrument_distortion
from liger_iris_pipeline.simulate.exposure import pinhole_grid

IRIS = (4096, 4096)
CENTER = (2047.5, 2047.5)


def frame_grid(n=41):
    """Focal-plane positions covering the full IRIS frame, corners included."""
    grid = np.linspace(0.0, IRIS[0] - 1.0, n)
    u, v = np.meshgrid(grid, grid)
    return u.ravel(), v.ravel()


def synthetic_centroids(noise=0.005, seed=0, pitch=128.0):
    """Pinholes of the simulator's IRIS distortion, with Gaussian centroid errors (pixels)."""
    truth = instrument_distortion("iris", IRIS)
    u, v, _ = pinhole_grid(IRIS, pitch)
    x, y = truth.to_detector(u, v)
    inside = (x > 8) & (x < IRIS[1] - 9) & (y > 8) & (y < IRIS[0] - 9)
    rng = np.random.default_rng(seed)
    x, y = x[inside] + rng.normal(0, noise, inside.sum()), y[inside] + rng.normal(0, noise, inside.sum())
    return truth, x, y


def worst_errors(fit, truth):
    """Largest forward and inverse errors of a fit over the frame (pixels)."""
    u, v = frame_grid()
    x, y = truth.to_detector(u, v)
    xf, yf = fit.detector(u, v)
    uf, vf = fit.focal(x, y)
    return np.hypot(uf - u, vf - v).max(), np.hypot(xf - x, yf - y).max()


@pytest.mark.parametrize("pitch", [128.0, None])
def test_fit_recovers_the_distortion_over_the_frame(pitch):
    truth, x, y = synthetic_centroids()
    fit = fit_distortion(x, y, CENTER, 2048.0, pitch=pitch, degree=3)
    assert fit.pitch == pytest.approx(128.0, abs=1e-3)
    assert fit.npoints == len(x)
    assert max(fit.rms) == pytest.approx(0.005, rel=0.2)  # the centroid noise
    forward, inverse = worst_errors(fit, truth)
    assert forward < 0.01 and inverse < 0.01  # 5 px of distortion at the corners
    # The matrices have the reference's layout: c[i, j] of s^i t^j, no constant or linear terms.
    assert fit.inverse_coeffs_x.shape == (4, 4)
    assert fit.inverse_coeffs_x[3, 0] == pytest.approx(truth.ax[3, 0], abs=2e-3)
    assert not fit.coeffs_x[0, 0] and not fit.coeffs_x[1, 0] and not fit.coeffs_x[0, 1]


def test_outliers_and_duplicates_are_rejected():
    truth, x, y = synthetic_centroids(seed=1)
    x[10] += 2.0  # a cosmic ray on a pinhole
    x = np.append(x, x[20] + 0.5)  # a double detection
    y = np.append(y, y[20])
    x = np.append(x, CENTER[0] + 64.0)  # a ghost between holes
    y = np.append(y, CENTER[1] + 64.0)
    fit = fit_distortion(x, y, CENTER, 2048.0, degree=3)
    assert not fit.used[10] and not fit.used[20] and not fit.used[-2] and not fit.used[-1]
    assert fit.npoints == len(x) - 4
    assert max(worst_errors(fit, truth)) < 0.01


def test_too_few_pinholes_for_the_degree():
    _, x, y = synthetic_centroids()
    assert len(polynomial_terms(3)) == 7
    with pytest.raises(DistortionFitError, match=r"^pinholes.fits: 10 pinholes found, at least 16 are needed"):
        fit_distortion(x[:10], y[:10], CENTER, 2048.0, degree=3, name="pinholes.fits")


@pytest.fixture(scope="module")
def corner_pinholes():
    """Level 1 pinhole frame of a 1024x1024 subarray at a corner of the IRIS detector (pitch 64)."""
    detector = sim.make_detector(IRIS, seed=1)
    ramp, truth = sim.simulate_pinhole_exposure(detector, pitch=64.0, nreads=3, seed=2, subarray=(1, 3073, 1024, 1024))
    return level1_from_truth(ramp, truth), truth


def test_step_on_a_simulated_subarray(corner_pinholes, tmp_path):
    level1, truth = corner_pinholes
    level1.meta.filename = "corner_rate.fits"
    reference = FitDistortionStep.call(level1, pitch=64.0)
    assert isinstance(reference, datamodels.TMTDistortionModel)
    meta = reference.meta
    assert (meta.reftype, meta.instrument.name, meta.instrument.detector) == ("DISTORTION", "IRIS", "IMG1")
    assert (meta.distortion.center_x, meta.distortion.center_y, meta.distortion.scale) == (2047.5, 2047.5, 2048.0)
    assert meta.distortion.npoints >= 0.8 * len(truth.sources) and meta.distortion.degree == 3
    assert max(meta.distortion.rms_x, meta.distortion.rms_y) < 0.01
    assert meta.cal_step.fit_distortion == "COMPLETE"

    # The fitted polynomials put each pinhole's focal-plane position where the simulator put it.
    path = tmp_path / "corner_distortion.fits"
    reference.save(path)
    with datamodels.open(path) as reread:
        cx, cy, scale = reread.meta.distortion.center_x, reread.meta.distortion.center_y, reread.meta.distortion.scale
        u, v = np.asarray(truth.sources["u"]), np.asarray(truth.sources["v"])
        s, t = (u - cx) / scale, (v - cy) / scale
        x = u + np.polynomial.polynomial.polyval2d(s, t, reread.inverse_coeffs_x)
        y = v + np.polynomial.polynomial.polyval2d(s, t, reread.inverse_coeffs_y)
    # truth x, y are the subarray's pixels: full frame = subarray + (SUBSTRT - 1).
    dx, dy = x - (truth.sources["x"] + 0), y - (truth.sources["y"] + 3072)
    assert np.sqrt(np.mean(dx**2 + dy**2)) < 0.01


def test_a_frame_without_pinholes(corner_pinholes):
    level1, _ = corner_pinholes
    empty = level1.copy()
    empty.data[...] = 0.0
    empty.meta.filename = "empty_rate.fits"
    with pytest.raises(DistortionFitError, match=r"empty_rate.fits: 0 pinholes found"):
        FitDistortionStep.call(empty)


def test_distortion_calibration_from_the_command_line(tmp_path):
    """``tmtrun distortion_calibration.cfg pinhole_rate.fits``: dark subtraction, then the fit, to ``_distortion``."""
    from liger_iris_pipeline.cli.tmtrun import main as tmtrun

    detector = sim.make_detector((256, 256), seed=1)
    ramp, truth = sim.simulate_pinhole_exposure(detector, pitch=24.0, nreads=3, seed=2)
    rate = tmp_path / "pinhole_rate.fits"
    level1_from_truth(ramp, truth).save(rate)
    dark = tmp_path / "dark.fits"
    sim.reference_model(detector, "DARK").save(dark)
    arguments = [f"--steps.dark_current.override_dark={dark}", f"--output_dir={tmp_path}", "--log-level=WARNING"]
    assert tmtrun(["distortion_calibration.cfg", str(rate), *arguments]) == 0
    with datamodels.open(tmp_path / "pinhole_distortion.fits") as reference:
        assert isinstance(reference, datamodels.TMTDistortionModel)
        assert reference.meta.cal_step.dark_current == "COMPLETE"
        assert reference.meta.cal_step.fit_distortion == "COMPLETE"
        assert reference.meta.distortion.npoints >= 0.8 * len(truth.sources)
        assert reference.meta.pedigree == "GROUND" and reference.meta.useafter == "2024-01-01T00:00:00"
