"""source_catalog: dithered frames -> resample -> catalog, matched with the simulated stars."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable
from mosaic_helpers import PLATE_SCALE, make_frames

from liger_iris_pipeline.datamodels.library import ModelLibrary
from liger_iris_pipeline.resample import ResampleStep
from liger_iris_pipeline.source_catalog import SourceCatalogStep
from liger_iris_pipeline.source_catalog.source_catalog import CatalogError, frame_coverage, make_catalog

FAINT_TO_BRIGHT = (2e-9, 2e-7)  # Jy: signal-to-noise ratios of ~30 to ~2000


def mosaic_of(frames, **options):
    return ResampleStep.call(ModelLibrary(frames), in_memory=True, **options)


def matched(catalog, truth, wcs):
    stars = SkyCoord(truth.ra * u.deg, truth.dec * u.deg)
    index, separation, _ = stars.match_to_catalog_sky(catalog["sky_centroid"])
    found = separation < 2 * PLATE_SCALE * u.arcsec
    x, y = wcs.invert(truth.ra[found], truth.dec[found])
    return catalog[index[found]], truth.flux_jy[found], x, y


@pytest.fixture(scope="module")
def star_fields():
    """Four fields of 36 stars, four dithered exposures each, resampled and catalogued."""
    results = []
    for seed in (11, 12, 13, 14):
        frames, truth = make_frames(
            n_frames=4, shape=(224, 224), n_stars=36, distortion=0.3, seed=seed, flux_range=FAINT_TO_BRIGHT
        )
        mosaic = mosaic_of(frames)
        # Boxes small against the sky's variation: distortion makes a sky uniform per detector pixel vary by
        # ~0.2 % over the field (over 200 pixels here, 4000 in a full frame, where the default box suffices).
        catalog = SourceCatalogStep.call(mosaic, bkg_boxsize=32, bkg_filter_size=1)
        results.append((catalog, truth, mosaic.meta.wcs))
    return results


def test_fluxes_are_unbiased_with_unit_pulls(star_fields):
    ratios, pulls = [], []
    for catalog, truth, wcs in star_fields:
        rows, flux, _x, _y = matched(catalog, truth, wcs)
        assert len(rows) == len(truth.flux_jy)  # every star found
        isolated = rows["is_isolated"]
        measured = rows["aper_total_flux"].to_value(u.Jy)[isolated]
        error = rows["aper_total_flux_err"].to_value(u.Jy)[isolated]
        ratios.extend(measured / flux[isolated])
        pulls.extend((measured - flux[isolated]) / error)
    ratios, pulls = np.array(ratios), np.array(pulls)
    assert len(pulls) > 100
    # Targets: unbiased within 1 %, pull std within 10 % of 1.
    assert abs(np.median(ratios) - 1) < 0.005
    assert abs(np.mean(pulls)) < 0.5
    assert 0.9 < np.std(pulls) < 1.1


def test_positions_within_two_hundredths_of_a_pixel(star_fields):
    offsets = []
    for catalog, truth, wcs in star_fields:
        rows, _flux, x, y = matched(catalog, truth, wcs)
        isolated = np.asarray(rows["is_isolated"])
        dx = rows["xcentroid"].value - x
        dy = rows["ycentroid"].value - y
        offsets.extend(np.hypot(dx, dy)[isolated])
    rms = np.sqrt(np.mean(np.square(offsets)) / 2)  # per axis
    assert rms < 0.02


def test_catalog_columns_and_units(star_fields):
    catalog, _truth, _wcs = star_fields[0]
    for name in ("xcentroid", "ycentroid", "sky_centroid", "ra", "dec", "fwhm", "ellipticity", "segment_flux"):
        assert name in catalog.colnames
    assert catalog["aper_total_flux"].unit == u.Jy
    assert catalog["aper1_flux"].unit == u.Jy
    assert catalog["aper_total_abmag"].unit == u.ABmag
    bright = np.argmax(catalog["aper_total_flux"])
    assert catalog["aper_total_abmag"][bright].value == pytest.approx(
        -2.5 * np.log10(catalog["aper_total_flux"][bright].to_value(u.Jy) / 3631.0)
    )
    assert catalog.meta["psf_fwhm_measured"]
    assert 3.0 < catalog.meta["psf_fwhm_pix"] < 6.0
    assert catalog.meta["apcorr2_nstars"] >= 3


def test_step_writes_the_catalog_and_segmentation(tmp_path):
    frames, truth = make_frames(n_frames=3, shape=(128, 128), n_stars=9, distortion=0.3, flux_range=FAINT_TO_BRIGHT)
    mosaic = mosaic_of(frames)
    mosaic.meta.filename = "field_i2d.fits"
    catalog = SourceCatalogStep.call(mosaic, save_results=True, output_dir=str(tmp_path), psf_fwhm=0.016)
    assert catalog.meta["psf_fwhm_pix"] == pytest.approx(4.0)
    written = QTable.read(tmp_path / "field_cat.ecsv")
    assert len(written) == len(catalog) >= 9
    assert written["aper_total_flux"].unit == u.Jy
    with fits.open(tmp_path / "field_segm.fits") as hdus:
        segmentation = hdus["SCI"].data
        assert segmentation.shape == mosaic.data.shape
        assert set(np.unique(segmentation)) == {0, *written["label"]}
        assert hdus["SCI"].header["CTYPE1"] == "RA---TAN"


def test_counts_without_photometric_calibration():
    frames, _truth = make_frames(n_frames=2, shape=(96, 96), n_stars=4, distortion=0.0, flux_range=FAINT_TO_BRIGHT)
    for model in frames:
        model.meta.bunit_data = "DN/s"
    mosaic = mosaic_of(frames)
    catalog = SourceCatalogStep.call(mosaic)
    assert catalog["aper_total_flux"].unit == u.Unit("DN/s") * u.pix
    assert "aper_total_abmag" not in catalog.colnames


def test_empty_and_invalid_images():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(64, 64))
    catalog, segmentation = make_catalog(noise, np.ones_like(noise), pixel_area_sr=1e-16, psf_fwhm=3.0)
    assert len(catalog) <= 1 and segmentation.shape == (64, 64)
    with pytest.raises(CatalogError, match="no valid pixel"):
        make_catalog(np.full((8, 8), np.nan), np.ones((8, 8)))
    with pytest.raises(CatalogError, match="pixel area"):
        make_catalog(noise, np.ones_like(noise), bunit="MJy/sr")


def test_a_frame_is_not_a_mosaic():
    frames, _truth = make_frames(n_frames=1, shape=(64, 64), n_stars=1)
    with pytest.raises(TypeError, match=r"frame0_cal.fits: the mosaic of SourceCatalogStep must be an IRISMosaicModel"):
        SourceCatalogStep.call(frames[0])


def test_frame_coverage_finds_the_input_edges():
    context = np.zeros((1, 100, 100), np.int32)
    context[0, :, :60] |= 1  # input 0 covers x < 60
    context[0, :, 40:] |= 2  # input 1 covers x >= 40
    positions = np.array([[20.0, 50.0], [50.0, 50.0], [57.0, 50.0], [80.0, 50.0], [97.0, 50.0], [150.0, 50.0]])
    n_frames, on_edge = frame_coverage(context, positions, radius=5.0)
    assert n_frames.tolist() == [1, 2, 2, 1, 1, 0]
    # 57 + 5 crosses input 0's edge at 60; 97 + 5 leaves the mosaic; 150 is off it.
    assert on_edge.tolist() == [False, False, True, False, True, True]
    assert frame_coverage(context[0], positions[:2], radius=5.0)[0].tolist() == [1, 2]


def test_catalog_marks_the_stars_on_an_input_edge(star_fields):
    for catalog, _truth, _wcs in star_fields:
        assert "n_frames" in catalog.colnames and "on_frame_edge" in catalog.colnames
        assert catalog["n_frames"].max() == 4
