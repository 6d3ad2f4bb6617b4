"""Quick-look PNGs, DS9 region files, the night report (in a real headless browser) and tmt-quicklook."""

import math

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from PIL import Image
from test_qa import POINTING, star_grid

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.assign_wcs.imaging import assign_wcs, complete_wcsinfo, make_gwcs
from liger_iris_pipeline.operations.qa import detected_sources
from liger_iris_pipeline.pipeline import Detector1Pipeline
from liger_iris_pipeline.quicklook.regions import write_ds9_regions
from liger_iris_pipeline.quicklook.render import MASKED_COLOUR, PNG_SIZE, render_png, sky_orientation

SIZE = 128


@pytest.fixture(scope="module")
def products(tmp_path_factory):
    """Level 0, 1, 2 and 3 files of one simulated exposure (position angle 30 deg), and its truth."""
    folder = tmp_path_factory.mktemp("quicklook")
    detector = sim.make_detector((SIZE, SIZE), seed=11)
    references = sim.reference_models(detector)
    pointing = (*POINTING[:2], 30.0)
    ramp, truth = sim.simulate_exposure(
        star_grid(detector, pointing=pointing), detector, nreads=4, pointing=pointing, seed=4, distortion=None
    )
    ramp.save(folder / "sim_uncal.fits")
    steps = {
        "dq_init": {"override_mask": references["MASK"]},
        "ramp_fit": {
            f"override_{name.lower()}": references[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")
        },
    }
    rate = Detector1Pipeline.call(ramp, steps=steps)
    rate.save(folder / "sim_rate.fits")
    cal = rate.copy()
    assign_wcs(cal)
    cal.meta.processing_level = 2
    cal.save(folder / "sim_cal.fits")
    mosaic = datamodels.IRISMosaicModel(np.where(np.isfinite(cal.data), cal.data, np.nan).astype(np.float32))
    mosaic.update(cal)
    mosaic.wht = ((cal.dq & 1) == 0).astype(np.float32)
    mosaic.meta.wcs = cal.meta.wcs
    mosaic.meta.processing_level = 3
    mosaic.save(folder / "sim_i2d.fits")
    paths = {level: folder / f"sim_{suffix}.fits" for level, suffix in enumerate(("uncal", "rate", "cal", "i2d"))}
    return paths, cal, truth


def image_area(png):
    """The PNG's pixels (RGB) below the title strip."""
    with Image.open(png) as image:
        assert image.size == PNG_SIZE
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    return pixels[PNG_SIZE[1] - PNG_SIZE[0] :]


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_png_of_each_level(products, tmp_path, level):
    paths, _, _ = products
    png = tmp_path / f"level{level}.png"
    assert render_png(paths[level], png) == str(png)
    pixels = image_area(png)
    grey = pixels[(pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])][:, 0]
    # Not blank: sky noise and stars span the grey scale (zscale saturates the stars' cores).
    assert grey.std() > 20 and (grey >= 250).mean() > 1e-3
    # The reference-pixel border (DO_NOT_USE from dq_init on, not in raw ramps) in the masked colour.
    magenta = np.array([int(MASKED_COLOUR[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    border = pixels[2:-2, :16].reshape(-1, 3)  # the left edge: 4 pixels, 8 PNG pixels per pixel
    is_magenta = np.abs(border - magenta).max(axis=1) < 2
    assert is_magenta.all() if level > 0 else not is_magenta.any()
    assert not list(tmp_path.glob(".*part*"))


@pytest.mark.parametrize("position_angle", [0.0, 30.0, -125.0])
def test_compass_follows_the_position_angle(position_angle):
    """Detector +y points at PA (North through East), East to the left at PA 0 (docs/simulate.rst)."""
    wcsinfo = sim.wcsinfo_for_pointing((150.0, -30.0, position_angle), (256, 256), 0.004)
    expected_north = 90.0 - position_angle
    for wcs in (sim.make_wcs(wcsinfo), make_gwcs(complete_wcsinfo(wcsinfo), (256, 256))):
        north, east, scale = sky_orientation(wcs, 100.0, 140.0)
        assert math.remainder(north - expected_north, 360.0) == pytest.approx(0.0, abs=1e-3)
        assert math.remainder(east - north - 90.0, 360.0) == pytest.approx(0.0, abs=1e-3)
        assert scale == pytest.approx(0.004, rel=1e-4)


def test_regions_round_trip(products, tmp_path):
    from regions import CirclePixelRegion, CircleSkyRegion, Regions

    _, cal, truth = products
    sources = detected_sources(cal)
    sky = write_ds9_regions(sources, cal.meta.wcs, tmp_path / "sky.reg")
    shapes = Regions.read(sky, format="ds9")
    assert len(shapes) == len(sources) >= len(truth.sources) and all(isinstance(s, CircleSkyRegion) for s in shapes)
    assert {shape.center.frame.name for shape in shapes} == {"fk5"}  # DS9's "j2000"
    centres = SkyCoord([shape.center for shape in shapes])
    for star in truth.sources:
        separation = centres.separation(SkyCoord(star["ra"], star["dec"], unit="deg", frame="icrs")).arcsec
        assert separation.min() < 0.3 * 0.004  # a third of a pixel
    assert shapes[0].radius.to_value("arcsec") == pytest.approx(6 * 0.004, rel=1e-3)
    image = write_ds9_regions(sources, None, tmp_path / "image.reg")
    shapes = Regions.read(image, format="ds9")
    assert all(isinstance(s, CirclePixelRegion) for s in shapes)
    centres = np.array([[s.center.x, s.center.y] for s in shapes])
    np.testing.assert_allclose(centres, np.column_stack([sources["x"], sources["y"]]), atol=1e-6)
