"""resample: drizzle of dithered, distorted Level 2 frames against the truth (mosaic_helpers)."""

import math

import numpy as np
import pytest
from drizzle.resample import Drizzle
from mosaic_helpers import PIXAR_SR, PLATE_SCALE, make_frames
from photutils.aperture import CircularAperture, aperture_photometry

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.datamodels.library import ModelLibrary
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.resample import ResampleStep
from liger_iris_pipeline.resample.resample import (
    VARIANCE_ARRAYS,
    ResampleError,
    Resampler,
    area_ratio,
    blot,
    frame_footprint,
    frame_summary,
    make_output_wcs,
    output_grid,
    resample_library,
    signal_independent_rnoise,
    sky_level,
)


def drizzle_frames(frames, ratio=1.0, **options):
    wcs, info = make_output_wcs([frame_footprint(m.meta.wcs, m.data.shape) for m in frames], PLATE_SCALE * ratio)
    resampler = Resampler(wcs, pixel_scale_ratio=ratio, **options)
    for model in frames:
        variances = {name: getattr(model, name) for name in VARIANCE_ARRAYS}
        resampler.add(model.data, model.meta.wcs, model.dq, variances, 100.0)
    return resampler.finish(), wcs


def star_photometry(image, error, wcs, truth, radius, ratio):
    x, y = wcs.invert(truth.ra, truth.dec)
    apertures = CircularAperture(np.column_stack([x, y]), r=radius)
    table = aperture_photometry(np.nan_to_num(image), apertures, error=np.nan_to_num(error))
    scale = PIXAR_SR * ratio * ratio * 1e6
    return np.asarray(table["aperture_sum"]) * scale, np.asarray(table["aperture_sum_err"]) * scale


def test_drizzle_scales_flux_with_the_pixel_area():
    """The convention the area correction rests on: drizzle conserves surface brightness, not flux per pixel."""
    ny = nx = 60
    y, x = np.mgrid[0:ny, 0:nx].astype(float)
    pixmap = np.dstack([1.03 * x + 0.01 * y, 0.98 * y])  # a distorted pixel: 1.0094 output pixels
    data = np.zeros((ny, nx), np.float32)
    data[30, 30] = 1.0
    plain = Drizzle(out_shape=(80, 80), fillval=0.0)
    plain.add_image(data, exptime=1.0, pixmap=pixmap)
    assert plain.out_img.sum() == pytest.approx(1.03 * 0.98, rel=1e-4)
    corrected = Drizzle(out_shape=(80, 80), fillval=0.0)
    corrected.add_image(data / area_ratio(pixmap), exptime=1.0, pixmap=pixmap)
    assert corrected.out_img.sum() == pytest.approx(1.0, rel=1e-5)


@pytest.mark.parametrize("ratio", [1.0, 0.7])
def test_point_source_flux_is_conserved_through_distortion(ratio):
    frames, truth = make_frames(n_frames=4, shape=(160, 160), n_stars=25, distortion=4.0, sky=0.0, seed=5)
    result, wcs = drizzle_frames(frames, ratio)
    flux, error = star_photometry(result["data"], result["err"], wcs, truth, 8.0 / ratio, ratio)
    ratios = flux / truth.flux_jy
    assert abs(np.mean(ratios) - 1) < 2e-4
    pulls = (flux - truth.flux_jy) / error
    # The drizzled ERR includes drizzle's correlated noise (aperture sums): pulls of unit width.
    assert 0.75 < np.std(pulls) < 1.25
    assert abs(np.mean(pulls)) < 3 / math.sqrt(len(pulls))


def test_without_the_area_correction_the_flux_would_be_biased():
    """With 4 px of distortion at the corners of a small frame a star's pixel area differs by percents."""
    frames, _truth = make_frames(n_frames=1, shape=(160, 160), n_stars=4, distortion=4.0, sky=0.0)
    wcs, _ = make_output_wcs([frame_footprint(frames[0].meta.wcs, (160, 160))], PLATE_SCALE)
    from liger_iris_pipeline.resample.resample import pixel_map

    pixmap = pixel_map(frames[0].meta.wcs, wcs, (160, 160))
    area = area_ratio(pixmap)
    assert area.max() - area.min() > 0.05
    # Computed every 4 pixels and interpolated (the steps' default): the same areas to 0.3 % even there
    # (1.5e-4 for a distortion of IRIS's relative size).
    np.testing.assert_allclose(area_ratio(pixmap, 4), area, rtol=3e-3)


def test_variances_and_weights():
    frames, _truth = make_frames(n_frames=4, shape=(96, 96), n_stars=4, distortion=1.0)
    result, _wcs = drizzle_frames(frames)
    covered = result["wht"] > 0
    # Four frames of equal read noise: the combined read-noise variance is a quarter where all four overlap.
    deep = result["wht"] > 0.95 * np.nanmax(result["wht"])
    rnoise = frames[0].var_rnoise[0, 0]
    assert np.nanmedian(result["var_rnoise"][deep]) == pytest.approx(rnoise / 4, rel=0.05)
    total = result["var_rnoise"] + result["var_poisson"] + result["var_flat"]
    np.testing.assert_allclose(result["err"][covered], np.sqrt(total[covered]), rtol=1e-5)
    assert np.isnan(result["data"][~covered]).all()
    assert result["con"] is not None


def test_weights_do_not_depend_on_the_signal():
    """A ramp's read-noise variance grows with its signal; 1/VAR_RNOISE weights would make bright stars faint."""
    frames, truth = make_frames(n_frames=4, shape=(160, 160), n_stars=16, distortion=2.0, sky=0.0, seed=8)
    plain, wcs = drizzle_frames(frames)
    for model in frames:
        signal = np.clip(model.data, 0.0, None)
        model.var_rnoise = (model.var_rnoise * (1.0 + 4.0 * signal / signal.max())).astype(np.float32)
    raised, _ = drizzle_frames(frames)
    flux_plain, _ = star_photometry(plain["data"], plain["err"], wcs, truth, 8.0, 1.0)
    flux_raised, _ = star_photometry(raised["data"], raised["err"], wcs, truth, 8.0, 1.0)
    # Per-pixel weights moved the fluxes by ~1 %; the block medians leave them where they were.
    np.testing.assert_allclose(flux_raised, flux_plain, rtol=2e-4)


def test_signal_independent_rnoise_keeps_the_read_noise_levels():
    variance = np.full((128, 128), 4.0, np.float32)
    variance[:, 64:] = 9.0  # two amplifiers of different read noise
    variance[20:23, 20:23] = 40.0  # a bright star's core
    dq = np.zeros(variance.shape, np.uint32)
    dq[100, 10] = FLAGS["DO_NOT_USE"]
    variance[100, 10] = np.nan
    smooth = signal_independent_rnoise(variance, dq)
    assert smooth.shape == variance.shape
    np.testing.assert_array_equal(smooth[:, :64], 4.0)
    np.testing.assert_array_equal(smooth[:, 64:], 9.0)


@pytest.mark.parametrize(("weight_type", "good_bits"), [("ivm", "~DO_NOT_USE"), ("ivm", 0), ("exptime", "~DO_NOT_USE")])
def test_weight_map_is_stcal_build_driz_weight(weight_type, good_bits):
    """The weights are stcal's, bit for bit (on the smoothed VAR_RNOISE), 0 where SCI is not finite."""
    import warnings

    from stcal.resample.utils import build_driz_weight

    frame = make_frames(n_frames=1, shape=(96, 96), n_stars=3)[0][0]
    frame.data[5, 5] = np.nan
    frame.dq[7, 7] |= FLAGS["DO_NOT_USE"]
    frame.dq[9, 9] |= FLAGS["SATURATED"]
    frame.var_rnoise[:40, :40] = 0.0  # no usable variance: no weight
    grid, _ = make_output_wcs([frame_footprint(frame.meta.wcs, frame.data.shape)], PLATE_SCALE)
    weights = Resampler(grid, weight_type=weight_type, good_bits=good_bits).weight_map(
        frame.data, frame.dq, frame.var_rnoise, 600.0
    )
    model = {
        "data": frame.data,
        "dq": frame.dq,
        "var_rnoise": signal_independent_rnoise(frame.var_rnoise, frame.dq),
        "exposure_time": 600.0,
        "measurement_time": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.asarray(build_driz_weight(model, weight_type, good_bits, flag_name_map=FLAGS), np.float32)
    expected[~np.isfinite(frame.data) | ~np.isfinite(expected)] = 0.0
    assert weights.dtype == np.float32 and weights[5, 5] == 0.0 and weights[7, 7] == 0.0
    assert (weights[9, 9] == 0.0) == (good_bits == 0)
    np.testing.assert_array_equal(weights, expected)


def test_flagged_pixels_are_excluded():
    frames, _truth = make_frames(n_frames=2, shape=(64, 64), n_stars=1, distortion=0.0, dither=0.0)
    frames[0].data[30:34, 30:34] = 1e6
    frames[0].dq[30:34, 30:34] = FLAGS["OUTLIER"] | FLAGS["DO_NOT_USE"]
    frames[1].data[10, 10] = np.nan  # NaN: never drizzled
    frames[1].dq[10, 10] = FLAGS["DO_NOT_USE"]
    result, _wcs = drizzle_frames(frames)
    assert np.nanmax(result["data"]) < 1e3
    assert np.isfinite(result["data"]).sum() > 0.9 * result["data"].size


def test_exptime_weights():
    frames, truth = make_frames(n_frames=3, shape=(96, 96), n_stars=9, distortion=1.0, sky=0.0)
    result, wcs = drizzle_frames(frames, weight_type="exptime")
    flux, _ = star_photometry(result["data"], result["err"], wcs, truth, 8.0, 1.0)
    assert np.median(flux / truth.flux_jy) == pytest.approx(1.0, abs=2e-3)


def test_output_grid_parameters():
    frames, _truth = make_frames(n_frames=2, shape=(64, 64), n_stars=1)
    summaries = [frame_summary(m) for m in frames]
    wcs, info, scale, ratio = output_grid(summaries, pixel_scale=0.002, rotation=30.0, output_shape=(100, 120))
    assert wcs.array_shape == (100, 120)
    assert (scale, ratio) == (0.002, pytest.approx(0.5))
    assert info["position_angle"] == 30.0
    assert info["crpix1"] == pytest.approx(60.5)
    # North up by default: +y points to increasing Dec, East (RA) to the left.
    wcs, _info, _, _ = output_grid(summaries)
    ra0, dec0 = wcs(50.0, 50.0)
    ra1, dec1 = wcs(50.0, 60.0)
    ra2, _ = wcs(60.0, 50.0)
    assert dec1 > dec0 and abs(ra1 - ra0) < 1e-9 and ra2 < ra0
    with pytest.raises(ResampleError, match="pixel scale"):
        make_output_wcs([summaries[0].footprint], 0.0)


def test_mixed_filters_and_far_apart_frames_are_refused():
    frames, _truth = make_frames(n_frames=2, shape=(64, 64), n_stars=1)
    frames[1].meta.instrument.filter = "J"
    with pytest.raises(ResampleError, match=r"frame1_cal.fits: filter 'J' differs"):
        output_grid([frame_summary(m) for m in frames])
    far, _ = make_frames(n_frames=2, shape=(64, 64), n_stars=1, dither=2000.0, seed=3)
    with pytest.raises(ResampleError, match="do not overlap"):
        output_grid([frame_summary(m) for m in far])


def test_blot_returns_the_frame():
    frames, _truth = make_frames(n_frames=4, shape=(96, 96), n_stars=9, distortion=2.0, rnoise=1e-4, gain=1e9)
    result, wcs = drizzle_frames(frames)
    model = frames[0]
    blotted = blot(result["data"], wcs, model.meta.wcs, model.data.shape, fillval=np.nan)
    inner = np.s_[12:-12, 12:-12]
    residual = (blotted - model.data)[inner]
    # A drizzled image is the sky convolved with the pixel, twice: peaks come back ~10 % lower.
    assert np.nanmax(np.abs(residual)) < 0.15 * np.nanmax(model.data[inner])
    assert np.nanmedian(np.abs(residual)) < 1e-3


def test_resample_step_on_disk(tmp_path):
    frames, truth = make_frames(n_frames=3, shape=(96, 96), n_stars=9, distortion=1.0, sky=0.0)
    paths = []
    for model in frames:
        path = tmp_path / model.meta.filename
        model.save(path)
        paths.append(str(path))
    library = ModelLibrary(paths, on_disk=True, temp_directory=tmp_path)
    mosaic = ResampleStep.call(library, pixel_scale_ratio=0.8, output_dir=str(tmp_path))
    assert isinstance(mosaic, datamodels.IRISMosaicModel)
    assert mosaic.meta.cal_step.resample == "COMPLETE"
    assert mosaic.meta.resample.n_inputs == 3
    assert mosaic.meta.resample.pixel_scale_ratio == pytest.approx(0.8)
    assert mosaic.meta.resample.members == ",".join(m.meta.filename for m in frames)
    assert mosaic.meta.photometry.pixelarea_arcsecsq == pytest.approx((0.8 * PLATE_SCALE) ** 2)
    assert mosaic.con.ndim == 3
    flux, _ = star_photometry(mosaic.data, mosaic.err, mosaic.meta.wcs, truth, 10.0, 0.8)
    assert np.median(flux / truth.flux_jy) == pytest.approx(1.0, abs=1e-3)
    out = tmp_path / "mosaic_i2d.fits"
    mosaic.save(out)
    with datamodels.open(out) as reopened:
        assert isinstance(reopened, datamodels.IRISMosaicModel)
        np.testing.assert_array_equal(reopened.wht, mosaic.wht)
        assert reopened.meta.wcsinfo.ctype1 == "RA---TAN"
    mosaic.close()
    for model in frames:
        model.close()


def test_skymatch_level_not_subtracted_is_taken_out():
    frames, _truth = make_frames(n_frames=2, shape=(64, 64), n_stars=1, sky=0.5, distortion=0.0)
    for model in frames:
        model.meta.background.level = 0.5  # measured by skymatch, left in the data (BKGSUB = F)
        model.meta.background.subtracted = False
    wcs, _ = make_output_wcs([frame_footprint(m.meta.wcs, m.data.shape) for m in frames], PLATE_SCALE)
    result = resample_library(ModelLibrary(frames), Resampler(wcs))
    assert abs(np.nanmedian(result["data"])) < 0.01
    frames[0].meta.background.subtracted = True  # already subtracted: nothing more taken out
    assert sky_level(frames[0]) == 0.0
