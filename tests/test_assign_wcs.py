"""AssignWcsStep: gwcs vs astropy.wcs from the same header, 1-based CRPIX, simulator truth, FITS round trip;
with a distortion fitted from a simulated pinhole frame: star positions over the IRIS frame and the SIP header."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from level1_helpers import DEC, RA, detector, level1_from_truth, science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.assign_wcs import AssignWcsStep
from liger_iris_pipeline.assign_wcs.imaging import WcsInfoError, complete_wcsinfo, make_gwcs
from liger_iris_pipeline.fit_distortion import FitDistortionStep
from liger_iris_pipeline.simulate.pointing import pixel_to_world, wcsinfo_for_pointing

SCALE = 0.004
FULL = (4096, 4096)


def header_wcs(info):
    """astropy.wcs.WCS of the FITS keywords the schema writes for ``meta.wcsinfo``."""
    keys = ("crpix1", "crpix2", "crval1", "crval2", "cdelt1", "cdelt2", "ctype1", "ctype2", "cunit1", "cunit2",
            "pc1_1", "pc1_2", "pc2_1", "pc2_2", "radesys")  # fmt: skip
    return WCS({"NAXIS": 2, **{key.upper(): info[key] for key in keys}})


@pytest.mark.parametrize("pa", [0.0, 37.5, 180.0, 301.0])
@pytest.mark.parametrize("dec", [DEC, -75.0, 89.9])
def test_gwcs_matches_astropy_over_a_full_frame(pa, dec):
    info = complete_wcsinfo(sim.wcsinfo_for_pointing((RA, dec, pa), FULL, SCALE, dither_arcsec=(1.3, -0.7)))
    gwcs = make_gwcs(info, FULL)
    reference = header_wcs(info)
    grid = np.linspace(0.0, FULL[0] - 1.0, 17)
    x, y = (value.ravel() for value in np.meshgrid(grid, grid))
    x, y = np.append(x, [-0.49, 4095.49]), np.append(y, [-0.49, 4095.49])
    ra, dec_ = gwcs(x, y)
    ra_ref, dec_ref = reference.all_pix2world(x, y, 0)
    # Agreement on the sky, in pixels (1 pixel = SCALE arcsec).
    separation = np.hypot((ra - ra_ref) * np.cos(np.radians(dec_ref)), dec_ - dec_ref) * 3600.0 / SCALE
    assert separation.max() < 1e-3
    # ... and back: astropy's sky positions through the gwcs inverse. Without the bounding box:
    # gwcs tests world positions against the RA/Dec range of the frame's corners, which near the
    # pole cuts off parts of the curved edges.
    x_back, y_back = gwcs.invert(ra_ref, dec_ref, with_bounding_box=False)
    assert np.abs(x_back - x).max() < 1e-3 and np.abs(y_back - y).max() < 1e-3
    x_ref, y_ref = reference.all_world2pix(ra, dec_, 0)
    assert np.abs(x_ref - x).max() < 1e-3 and np.abs(y_ref - y).max() < 1e-3


def test_crpix_is_one_based():
    info = complete_wcsinfo(sim.wcsinfo_for_pointing((RA, DEC, 20.0), (64, 64), SCALE))
    gwcs = make_gwcs(info, (64, 64))
    ra, dec = gwcs(info["crpix1"] - 1.0, info["crpix2"] - 1.0)
    assert ra == pytest.approx(info["crval1"], abs=1e-12) and dec == pytest.approx(info["crval2"], abs=1e-12)
    assert info["crpix1"] == 32.5  # the centre of 64 pixels, FITS 1-based


def test_star_positions_of_the_truth(tmp_path):
    level1, truth = science_frame(detector(), n_stars=30, pa=33.0, subarray=(17, 9, 100, 110), distortion=None)
    result = AssignWcsStep.call(level1, override_distortion="N/A")  # the pure TAN of the undistorted truth
    assert result.meta.cal_step.assign_wcs == "COMPLETE"
    assert result.meta.ref_file.distortion.name == "N/A"
    x, y = result.meta.wcs.invert(np.asarray(truth.sources["ra"]), np.asarray(truth.sources["dec"]))
    inside = np.isfinite(x)
    assert inside.sum() > 10
    assert np.abs(x - truth.sources["x"])[inside].max() < 1e-6
    assert np.abs(y - truth.sources["y"])[inside].max() < 1e-6

    # FITS round trip: the gwcs survives and the SCI header (what DS9 shows) gives astropy the same sky.
    path = tmp_path / "wcs.fits"
    result.save(path)
    reread = datamodels.open(path)
    xs, ys = np.meshgrid([0.0, 50.0, 99.0], [0.0, 60.0, 109.0])
    np.testing.assert_allclose(reread.meta.wcs(xs, ys), result.meta.wcs(xs, ys), rtol=0, atol=1e-12)
    header = fits.getheader(path, "SCI")
    ra, dec = WCS(header).all_pix2world(xs, ys, 0)
    gwcs_ra, gwcs_dec = result.meta.wcs(xs, ys)
    assert np.abs(ra - gwcs_ra).max() * 3600 / SCALE < 1e-3 and np.abs(dec - gwcs_dec).max() * 3600 / SCALE < 1e-3


def test_keywords_are_completed_and_checked():
    given = sim.wcsinfo_for_pointing((RA, DEC, 40.0), (64, 64), SCALE)
    from_pa = {key: value for key, value in given.items() if not key.startswith(("pc", "cdelt"))}
    info = complete_wcsinfo(from_pa, plate_scale=SCALE)
    for key in ("pc1_1", "pc1_2", "pc2_1", "pc2_2", "cdelt1", "cdelt2"):
        assert info[key] == pytest.approx(given[key], abs=1e-15)
    from_pc = {key: value for key, value in given.items() if key != "position_angle"}
    assert complete_wcsinfo(from_pc)["position_angle"] == pytest.approx(40.0)
    with pytest.raises(WcsInfoError, match="does not match the position angle"):
        complete_wcsinfo({**given, "position_angle": 41.0})
    with pytest.raises(WcsInfoError, match="only the TAN projection"):
        complete_wcsinfo({**given, "ctype1": "RA---SIN", "ctype2": "DEC--SIN"})
    with pytest.raises(WcsInfoError, match="lacks CRVAL1"):
        complete_wcsinfo({key: value for key, value in given.items() if key != "crval1"})


def test_no_distortion_reference_gives_the_pure_tan():
    level1, _ = science_frame(detector(64), n_stars=0)
    result = AssignWcsStep.call(level1, override_distortion="N/A")
    assert result.meta.ref_file.distortion.name == "N/A"
    assert result.meta.wcsinfo.ctype1 == "RA---TAN" and result.meta.wcsinfo.sip_max_error is None
    assert result.meta.wcs.available_frames == ["detector", "world"]


# With distortion: a reference fitted by FitDistortionStep from a simulated full-frame IRIS pinhole exposure.


@pytest.fixture(scope="module")
def iris():
    """``(detector, distortion reference)``: the full IRIS detector and its fitted distortion."""
    det = sim.make_detector(FULL, seed=1)
    ramp, truth = sim.simulate_pinhole_exposure(det, nreads=3, seed=2)
    reference = FitDistortionStep.call(level1_from_truth(ramp, truth))
    return det, reference


def star_frame(det, subarray, pa=33.0, n_stars=30):
    """Level 1 frame of isolated stars spread over a subarray of the full detector, and its truth."""
    xstart, ystart, nx, ny = subarray
    rng = np.random.default_rng(5)
    u = rng.uniform(xstart - 1 + 10, xstart - 1 + nx - 10, n_stars)
    v = rng.uniform(ystart - 1 + 10, ystart - 1 + ny - 10, n_stars)
    ra, dec = pixel_to_world(wcsinfo_for_pointing((RA, DEC, pa), FULL, SCALE), u, v)
    scene = sim.Scene(center=(RA, DEC), ra=ra, dec=dec, flux=np.full(n_stars, 1000.0), sky=0.0)
    ramp, truth = sim.simulate_exposure(
        scene, det, nreads=3, pointing=(RA, DEC, pa), seed=3, noiseless=True, subarray=subarray
    )
    return level1_from_truth(ramp, truth), truth


@pytest.mark.parametrize(
    "subarray",
    [(1, 1, 256, 256), (3841, 3841, 256, 256), (3841, 1, 256, 256), (1921, 1921, 256, 256)],
    ids=["corner-00", "corner-11", "corner-10", "centre"],
)
def test_star_positions_with_distortion(iris, subarray, tmp_path):
    det, reference = iris
    level1, truth = star_frame(det, subarray)
    result = AssignWcsStep.call(level1, override_distortion=reference)
    assert result.meta.wcs.available_frames == ["detector", "focal", "world"]
    # Issue 10's target: within 0.02 px rms over the frame, corners included (world -> pixel of the truth).
    x, y = result.meta.wcs.world_to_pixel_values(np.asarray(truth.sources["ra"]), np.asarray(truth.sources["dec"]))
    offsets = np.hypot(x - truth.sources["x"], y - truth.sources["y"])
    assert np.sqrt(np.mean(offsets**2)) < 0.02
    # ... and pixel -> world.
    ra, dec = result.meta.wcs(np.asarray(truth.sources["x"]), np.asarray(truth.sources["y"]))
    separation = np.hypot((ra - truth.sources["ra"]) * np.cos(np.radians(dec)), dec - truth.sources["dec"])
    assert np.sqrt(np.mean((separation * 3600 / SCALE) ** 2)) < 0.02

    # The SIP header: reported, small, and what astropy reads from the written file.
    info = result.meta.wcsinfo
    assert info.sip_max_error < 0.01
    path = tmp_path / "stars_cal.fits"
    result.save(path)
    header = fits.getheader(path, "SCI")
    assert header["SIPMXERR"] == pytest.approx(info.sip_max_error, rel=1e-12)
    if subarray[0] != 1921:  # distorted enough for SIP terms
        assert header["CTYPE1"] == "RA---TAN-SIP" and header["CTYPE2"] == "DEC--TAN-SIP"
        assert header["A_ORDER"] >= 2 and "AP_ORDER" in header and "B_0_2" in header
    xs, ys = np.meshgrid(np.linspace(-0.5, 255.5, 9), np.linspace(-0.5, 255.5, 9))
    ra_sip, dec_sip = WCS(header).all_pix2world(xs, ys, 0)
    ra_gwcs, dec_gwcs = result.meta.wcs(xs, ys)
    difference = np.hypot((ra_sip - ra_gwcs) * np.cos(np.radians(dec_gwcs)), dec_sip - dec_gwcs) * 3600 / SCALE
    assert difference.max() < 0.01

    # Re-running on the written frame rebuilds the same WCS from the nominal keywords (PA_APER).
    with datamodels.open(path) as reread:
        again = AssignWcsStep.call(reread, override_distortion=reference)
    np.testing.assert_allclose(again.meta.wcs(xs, ys), result.meta.wcs(xs, ys), rtol=0, atol=1e-11)
    assert again.meta.wcsinfo.instance == info.instance
    cards = [card[0] for card in again.instance["extra_fits"]["SCI"]["header"]]
    assert len(cards) == len(set(cards))


def test_a_malformed_distortion_reference(iris):
    _, reference = iris
    broken = reference.copy()
    broken.meta.distortion.scale = None
    level1, _ = science_frame(detector(64), n_stars=0)
    with pytest.raises(WcsInfoError, match="lacks DIS_CX, DIS_CY or a positive DIS_SCL"):
        AssignWcsStep.call(level1, override_distortion=broken)
