"""spec2's sky scaling per OH vibrational band (``steps.background.sky_scaling = 'oh_family'``, Davies 2007).

The science frame's OH bands are the sky frame's times per-band factors set in the simulator
(``IFSScene.oh_family_scales``); the references are the simulator's truth (``ifs_helpers``). The
residual at a bright OH line is the cube minus the cube of the same scene without sky (spec2 of
the source alone), summed over +-2 FWHM of the line and all spaxels, against the science frame's
flux of the lines in that window (the truth).
"""

import numpy as np
import pytest
from ifs_helpers import ifs_detector, level1_frame, simulate, spec2_overrides
from test_spec2 import SOURCE

from liger_iris_pipeline.assign_wcs import AssignWcsIFSStep
from liger_iris_pipeline.associations import Level2Product
from liger_iris_pipeline.background.oh_lines import oh_lines
from liger_iris_pipeline.background.oh_scaling import scale_oh_bands
from liger_iris_pipeline.cli.tmtrun import main as tmtrun
from liger_iris_pipeline.pipeline.spec2 import IFSBackgroundStep, ProcessIFSL2Pipeline
from liger_iris_pipeline.simulate import ifs

H_FILTER = "HN3"  # OH bands 4-2 and 5-3
K_FILTER = "KN3"  # OH band 9-7
BAND_SCALES = {"4-2": 1.12, "5-3": 0.90}


@pytest.fixture(scope="module")
def layout():
    return ifs.SlicerLayout.small()


@pytest.fixture(scope="module")
def detector(layout):
    return ifs_detector(layout)


def _frames(layout, detector, filter_name, scene, seed=11, sky_seed=12):
    """Level 1 science frame of ``scene``, a nominal sky frame, and the truths (noiseless if seeds are None)."""
    ramp, truth = simulate(scene, layout, detector, filter_name=filter_name)
    sky_ramp, sky_truth = simulate(ifs.IFSScene(), layout, detector, kind="SKY", filter_name=filter_name, seed=2)
    science = level1_frame(truth, ramp, detector, seed=seed)
    sky = level1_frame(sky_truth, sky_ramp, detector, seed=sky_seed)
    sky.meta.filename = "sky_001_rate.fits"
    return science, sky, truth


def _source_cube(layout, detector, filter_name, source):
    """spec2 of the source alone (no sky, no atmosphere): what a perfect sky subtraction leaves."""
    scene = ifs.IFSScene(sources=[source], sky=False, telluric=False)
    ramp, truth = simulate(scene, layout, detector, filter_name=filter_name)
    steps = spec2_overrides(layout, detector, filter_name)
    return ProcessIFSL2Pipeline.call(level1_frame(truth, ramp, detector), steps=steps)


def _spec2(science, sky, layout, detector, filter_name, sky_scaling):
    steps = {**spec2_overrides(layout, detector, filter_name), "background": {"sky_scaling": sky_scaling}}
    return ProcessIFSL2Pipeline.call([Level2Product("sci", science, [sky])], steps=steps)


def _line_residuals(cube, expected, truth):
    """Per bright OH line (half the brightest or more): residual, its error, science flux of the lines in the window."""
    wavelengths = cube.meta.wcs(0, 0, np.arange(cube.data.shape[0]))[2]
    fwhm = wavelengths.mean() / truth.resolving_power
    n_spaxels = cube.data.shape[1] * cube.data.shape[2]
    lines = truth.lines[truth.lines["kind"] == "OH"]
    results = []
    for line in lines[lines["flux"] > 0.5 * lines["flux"].max()]:
        window = np.abs(wavelengths - line["wavelength"]) < 2 * fwhm
        in_window = np.abs(lines["wavelength"] - line["wavelength"]) < 2 * fwhm
        residual = np.nansum(cube.data[window] - expected.data[window], dtype=np.float64)
        error = np.sqrt(np.nansum(cube.err[window].astype(np.float64) ** 2))
        results.append((residual, error, lines["flux"][in_window].sum() * n_spaxels))
    assert len(results) >= 3
    return np.array(results)


def _fitted(cube):
    return {
        band: float(scale)
        for band, scale in (item.split("=") for item in cube.meta.background.oh_band_scales.split(","))
    }


def test_pipeline_line_list_is_the_simulator_list():
    """The pipeline's own copy of the OH list (wavelengths and bands) is the simulator's."""
    wavelength, band = oh_lines()
    truth = sorted(ifs.OH_LINES)
    np.testing.assert_array_equal(wavelength, [line[0] for line in truth])
    assert list(band) == [line[2] for line in truth]
    assert {"3-1", "4-2", "5-3", "6-4", "8-6", "9-7"} <= set(band)


def test_band_scaling_removes_the_residuals_of_independently_varying_bands(layout, detector):
    """Bands 12 % brighter and 10 % fainter than in the sky frame: plain subtraction leaves > 2 % at
    the bright lines, the band scaling < 2 % (and within the noise); the factors are the truth's."""
    scene = ifs.IFSScene(sources=[SOURCE], telluric=False, oh_family_scales=BAND_SCALES)
    science, sky, truth = _frames(layout, detector, H_FILTER, scene)
    expected = _source_cube(layout, detector, H_FILTER, SOURCE)
    plain = _spec2(science, sky, layout, detector, H_FILTER, "none")
    scaled = _spec2(science, sky, layout, detector, H_FILTER, "oh_family")
    assert plain.meta.background.sky_scaling == "none" and scaled.meta.background.sky_scaling == "oh_family"
    before = _line_residuals(plain, expected, truth)
    after = _line_residuals(scaled, expected, truth)
    assert (np.abs(before[:, 0]) > 0.05 * before[:, 2]).all()
    assert (np.abs(after[:, 0]) < 0.02 * after[:, 2]).all()
    assert (np.abs(after[:, 0]) < 4 * after[:, 1]).all()
    fitted = _fitted(scaled)
    assert set(fitted) == set(BAND_SCALES)
    for band, scale in BAND_SCALES.items():
        assert fitted[band] == pytest.approx(scale, abs=0.005)


def test_fitted_factors_within_their_errors(layout, detector):
    """The plain module on a sky-subtracted frame with its WCS: each factor within 4 of its errors of the truth."""
    scene = ifs.IFSScene(sources=[SOURCE], telluric=False, oh_family_scales=BAND_SCALES)
    science, sky, _ = _frames(layout, detector, H_FILTER, scene)
    frame = AssignWcsIFSStep.call(science, **spec2_overrides(layout, detector, H_FILTER)["assign_wcs"])
    subtracted = IFSBackgroundStep.call(frame, [sky])
    variance = subtracted.var_poisson.copy()
    results = scale_oh_bands(subtracted, sky)
    assert {result.band for result in results} == set(BAND_SCALES)
    for result in results:
        assert 0 < result.error < 0.005 and result.n_pixels > 500
        assert abs(result.scale - BAND_SCALES[result.band]) < 4 * result.error
    # The sky's lines now enter with the factor: its variance times (factor**2 - 1) is added at their pixels.
    grown = subtracted.var_poisson.astype(np.float64) - variance
    changed = grown != 0
    assert changed.sum() > 1000
    ratios = grown[changed] / sky.var_poisson[changed]
    expected = np.array([result.scale**2 - 1.0 for result in results])
    assert np.abs(ratios[:, None] - expected[None, :]).min(axis=1).max() < 1e-3
    np.testing.assert_allclose(subtracted.err**2, subtracted.var_poisson + subtracted.var_rnoise + subtracted.var_flat,
                               rtol=1e-5)  # fmt: skip


def test_without_variation_the_factors_are_one_and_do_no_harm(layout, detector):
    """Science and sky frames of the same sky: factors of 1 within the noise, residuals as without scaling."""
    science, sky, truth = _frames(layout, detector, K_FILTER, ifs.IFSScene(sources=[SOURCE], telluric=False))
    expected = _source_cube(layout, detector, K_FILTER, SOURCE)
    plain = _line_residuals(_spec2(science, sky, layout, detector, K_FILTER, "none"), expected, truth)
    scaled_cube = _spec2(science, sky, layout, detector, K_FILTER, "oh_family")
    scaled = _line_residuals(scaled_cube, expected, truth)
    assert _fitted(scaled_cube) == {"9-7": pytest.approx(1.0, abs=0.003)}
    assert (np.abs(scaled[:, 0]) < 0.02 * scaled[:, 2]).all() and (np.abs(scaled[:, 0]) < 4 * scaled[:, 1]).all()
    assert (np.abs(plain[:, 0]) < 0.02 * plain[:, 2]).all()


def test_a_source_line_on_an_oh_line_is_kept(layout, detector):
    """A point source whose Br-gamma falls on the bright 2.1802 um OH line: the clipping keeps it out of the
    fit, so its line flux in the cube is the source's (within 0.5 %) and the factor the truth's."""
    on_oh = 2.1802075
    velocity = (on_oh / ifs.NEBULAR_LINES["Br_gamma"] - 1.0) * 299792.458
    source = ifs.PointSource(3.6, 2.4, abmag=17.0, lines={"Br_gamma": 2000.0}, velocity=velocity)
    scene = ifs.IFSScene(sources=[source], telluric=False, oh_family_scales={"9-7": 1.15})
    science, sky, truth = _frames(layout, detector, K_FILTER, scene)
    expected = _source_cube(layout, detector, K_FILTER, source)
    cube = _spec2(science, sky, layout, detector, K_FILTER, "oh_family")
    assert _fitted(cube)["9-7"] == pytest.approx(1.15, abs=0.005)
    wavelengths = cube.meta.wcs(0, 0, np.arange(cube.data.shape[0]))[2]
    window = np.abs(wavelengths - on_oh) < 2 * wavelengths.mean() / truth.resolving_power
    around_source = (slice(None), slice(1, 4), slice(2, 6))
    found = np.nansum(cube.data[window][around_source[1:]], dtype=np.float64)
    kept = np.nansum(expected.data[window][around_source[1:]], dtype=np.float64)
    assert kept > 0.5 * 2000.0 * truth.transmission.max()
    assert found == pytest.approx(kept, rel=0.005)


def test_pulls_after_the_band_scaling(layout, detector):
    """Noisy frames against noiseless ones, both scaled: voxel pulls at the OH lines of width 1."""
    scene = ifs.IFSScene(sources=[SOURCE], telluric=False, oh_family_scales=BAND_SCALES)
    noiseless, noiseless_sky, truth = _frames(layout, detector, H_FILTER, scene, seed=None, sky_seed=None)
    noisy, noisy_sky, _ = _frames(layout, detector, H_FILTER, scene, seed=21, sky_seed=22)
    expected = _spec2(noiseless, noiseless_sky, layout, detector, H_FILTER, "oh_family")
    cube = _spec2(noisy, noisy_sky, layout, detector, H_FILTER, "oh_family")
    wavelengths = cube.meta.wcs(0, 0, np.arange(cube.data.shape[0]))[2]
    fwhm = wavelengths.mean() / truth.resolving_power
    oh = truth.lines["wavelength"][truth.lines["kind"] == "OH"]
    planes = (np.abs(wavelengths[:, None] - np.asarray(oh)[None, :]) < 2 * fwhm).any(axis=1)
    usable = np.isfinite(cube.data) & (cube.wmap > 0.5) & planes[:, None, None]
    pulls = ((cube.data - expected.data) / cube.err)[usable]
    assert usable.sum() > 1000
    assert abs(np.mean(pulls)) < 0.1 and pulls.std() == pytest.approx(1.0, rel=0.15)


def test_band_scaling_needs_the_wcs(tmp_path, layout, detector, capsys):
    """A frame without its slicer WCS: a one-line error naming the file, no product."""
    science, sky, _ = _frames(layout, detector, K_FILTER, ifs.IFSScene(), seed=None, sky_seed=None)
    science.meta.filename = "sci_rate.fits"
    with pytest.raises(ValueError, match=r"^sci_rate\.fits: sky_scaling = 'oh_family' needs the frame's slicer WCS"):
        IFSBackgroundStep.call(science, [sky], sky_scaling="oh_family")
    science_path, sky_path = tmp_path / "sci_rate.fits", tmp_path / "sky_001_rate.fits"
    science.save(science_path)
    sky.save(sky_path)
    arguments = [str(science_path), str(sky_path), "--sky_scaling=oh_family", f"--output_dir={tmp_path}"]
    assert tmtrun(["liger_iris_pipeline.pipeline.spec2.IFSBackgroundStep", *arguments]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        f"tmtrun: error: {science_path}: sky_scaling = 'oh_family' needs the frame's slicer WCS (run assign_wcs first)"
    )
    assert not list(tmp_path.glob("*background*"))
