"""AssignWcsStep: gwcs vs astropy.wcs from the same header, 1-based CRPIX, simulator truth, FITS round trip."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from level1_helpers import DEC, RA, detector, science_frame

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.assign_wcs import AssignWcsStep
from liger_iris_pipeline.assign_wcs.imaging import WcsInfoError, complete_wcsinfo, make_gwcs

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
    level1, truth = science_frame(detector(), n_stars=30, pa=33.0, subarray=(17, 9, 100, 110))
    result = AssignWcsStep.call(level1)
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


def test_a_distortion_reference_is_refused():
    level1, _ = science_frame(detector(64), n_stars=0)
    with pytest.raises(ValueError, match="override_distortion must be N/A"):
        AssignWcsStep.call(level1, override_distortion="distortion.asdf")
