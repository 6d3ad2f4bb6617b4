"""Quick-look PNGs, DS9 region files, the night report (in a real headless browser) and tmt-quicklook."""

import math
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from ifs_helpers import ifs_detector, level1_frame, simulate, spec2_overrides
from PIL import Image
from test_qa import POINTING, star_grid

from liger_iris_pipeline import datamodels
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.assign_wcs.imaging import assign_wcs, complete_wcsinfo, make_gwcs
from liger_iris_pipeline.cube_build.cube_wcs import cube_gwcs, cube_wcsinfo
from liger_iris_pipeline.dqflags import pixel as FLAGS
from liger_iris_pipeline.operations.ledger import Ledger
from liger_iris_pipeline.operations.qa import detected_sources, measure_quality
from liger_iris_pipeline.pipeline import Detector1Pipeline, ProcessIFSL2Pipeline
from liger_iris_pipeline.quicklook.cli import main as quicklook_main
from liger_iris_pipeline.quicklook.regions import write_ds9_regions
from liger_iris_pipeline.quicklook.render import (
    MASKED_COLOUR,
    PNG_SIZE,
    render_png,
    sky_orientation,
    summed_spectrum,
    white_light_image,
)
from liger_iris_pipeline.quicklook.report import write_night_report
from liger_iris_pipeline.simulate import ifs

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


def find_chromium():
    """Return Debian's chromium, installing it when missing (as root with apt); skip only without both."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("no chromium, and apt-get is not available to install it")
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        subprocess.run(command, check=True, capture_output=True, timeout=1200)
    return shutil.which("chromium")


def run_browser(arguments, tmp_path):
    """Run headless chromium to completion (its whole process group killed on a timeout); return its stdout."""
    command = [
        find_chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    process = subprocess.Popen(
        [*command, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    assert process.returncode == 0, err
    return out


def test_night_report_renders_in_a_browser(products, tmp_path):
    paths, cal, _ = products
    output = tmp_path / "night"
    output.mkdir()
    ledger = Ledger(output)
    # A retried exposure counts once, with its last attempt.
    ledger.append(record("exp1_uncal.fits", "failed", reason="x", finished="2026-12-02T00:30:00+00:00"))
    for hour, level in ((1, 1), (2, 2), (3, 2)):
        png = render_png(paths[level], output / f"exp{hour}_{level}.png")
        qa = measure_quality(datamodels.open(paths[level]) if level == 1 else cal)
        ledger.append(
            record(f"exp{hour}_uncal.fits", products={"png": png}, qa=qa, latency={"total": 2.0 + hour}, hour=hour)
        )
    reason = "exp9_uncal.fits: not a FITS file"
    ledger.append(record("exp9_uncal.fits", "failed", reason=reason, hour=4))
    report = write_night_report(output)
    assert report == output / "night_report.html"
    assert (output / "night_report_qa.png").is_file() and len(list((output / "thumbnails").glob("*.png"))) == 3
    assert not list(output.glob(".*part*"))

    dom = run_browser(["--dump-dom", report.as_uri()], tmp_path)
    rows = re.findall(r'<tr class="(done|failed)">(.*?)</tr>', dom, flags=re.S)
    assert [status for status, _ in rows] == ["done", "done", "done", "failed"]
    assert "exp9_uncal.fits" in rows[3][1] and reason in dom and ">x<" not in dom
    assert f"{measure_quality(cal)['fwhm_arcsec']:.4f}" in rows[2][1]
    screenshot = tmp_path / "report.png"
    run_browser(["--screenshot=" + str(screenshot), "--window-size=1200,900", report.as_uri()], tmp_path)
    with Image.open(screenshot) as image:
        assert image.size == (1200, 900)
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    assert pixels.std() > 20  # text, table lines and images, not a blank page
    # The thumbnails loaded through their relative links: the masked border's magenta is on screen.
    magenta = np.array([255.0, 0.0, 255.0])
    assert (np.abs(pixels - magenta).max(axis=2) < 40).sum() > 100


def record(name, status="done", reason="", products=None, qa=None, latency=None, hour=1, finished=None):
    """A night-log record as ``ExposureResult.as_record`` makes it."""
    return {
        "name": name,
        "status": status,
        "reason": reason,
        "products": products or {},
        "qa": qa or {},
        "latency": latency or {},
        "finished": finished or f"2026-12-02T0{hour}:00:00+00:00",
    }


def test_command_line(products, tmp_path, capsys):
    paths, _, _ = products
    out = tmp_path / "out"
    assert quicklook_main([str(paths[level]) for level in range(4)] + ["--output-dir", str(out)]) == 0
    written = capsys.readouterr().out.split()
    names = sorted(path.name for path in out.iterdir())
    assert names == sorted(
        ["sim_uncal.png", "sim_rate.png", "sim_rate.reg", "sim_cal.png", "sim_cal.reg", "sim_i2d.png", "sim_i2d.reg"]
    )
    assert sorted(Path(path).name for path in written) == names
    assert "j2000" in (out / "sim_rate.reg").read_text()  # the header WCS of a rate frame gives sky positions


def test_command_line_errors(products, tmp_path, capsys):
    paths, _, _ = products
    out = tmp_path / "out"
    broken = tmp_path / "broken_cal.fits"
    broken.write_text("not a FITS file\n")
    dark = tmp_path / "dark.fits"
    sim.reference_models(sim.make_detector((16, 16), seed=2))["DARK"].save(dark)
    missing = tmp_path / "missing_cal.fits"
    arguments = [str(broken), str(missing), str(dark), str(paths[2]), "--output-dir", str(out)]
    assert quicklook_main(arguments) == 1
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3
    for line, path in zip(errors, (broken, missing, dark), strict=True):
        assert line.startswith(f"tmt-quicklook: error: {path}: ")
    assert "no such file" in errors[1] and "no quick-look" in errors[2]
    # The bad files left nothing, the good one its two files.
    assert sorted(path.name for path in out.iterdir()) == ["sim_cal.png", "sim_cal.reg"]
    with pytest.raises(SystemExit) as usage:
        quicklook_main([])
    assert usage.value.code == 2


def test_console_script_reports_one_line(tmp_path):
    missing = tmp_path / "missing_cal.fits"
    command = [sys.executable, "-m", "liger_iris_pipeline.quicklook.cli", str(missing), "--output-dir", str(tmp_path)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"tmt-quicklook: error: {missing}: no such file"]
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_night_report_before_the_first_frame(tmp_path):
    report = write_night_report(tmp_path)
    page = report.read_text()
    assert "0 exposure(s) reduced, 0 failed" in page and "<li>none</li>" in page
    assert (tmp_path / "night_report_qa.png").is_file()


# IFS products: the small slicer layout, a point source without sky, through spec2 with the truth's references.

IFS_SOURCE = ifs.PointSource(3.6, 2.4, abmag=17.0, lines={"Br_gamma": 400.0})
MAGENTA = np.array([int(MASKED_COLOUR[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
YELLOW = np.array([255.0, 255.0, 0.0])  # the compass and scale bar
CUBE_PANEL_SPLIT = 0.40  # figure fraction below which a cube's PNG shows its spectrum


@pytest.fixture(scope="module")
def ifs_products(tmp_path_factory):
    """An IFS ramp, rate frame (a few pixels DO_NOT_USE), its cube and spectrum files, and the source's truth."""
    folder = tmp_path_factory.mktemp("quicklook_ifs")
    layout = ifs.SlicerLayout.small()
    detector = ifs_detector(layout)
    ramp, truth = simulate(ifs.IFSScene(sources=[IFS_SOURCE], sky=False, telluric=False), layout, detector)
    ramp.meta.filename = "ifs_science_uncal.fits"
    ramp.save(folder / ramp.meta.filename)
    frame = level1_frame(truth, ramp, detector, seed=3)
    frame.dq[100:110, 50:60] |= FLAGS["DO_NOT_USE"]
    frame.save(folder / "ifs_science_rate.fits")
    ProcessIFSL2Pipeline.call(
        frame, steps=spec2_overrides(layout, detector), output_dir=str(folder), save_results=True
    )  # fmt: skip
    paths = {kind: folder / f"ifs_science_{kind}.fits" for kind in ("uncal", "rate", "s3d", "x1d")}
    assert all(path.is_file() for path in paths.values())
    return paths, truth, layout


def png_pixels(png):
    """All the PNG's pixels (RGB, float), after checking its size."""
    with Image.open(png) as image:
        assert image.size == PNG_SIZE
        return np.asarray(image.convert("RGB"), dtype=float)


def count_colour(pixels, colour, tolerance=2):
    return int((np.abs(pixels - colour).max(axis=-1) < tolerance).sum())


def shaded(alpha=0.3):
    """The colour of a spectrum's masked bins: MASKED_COLOUR at `alpha` over the white axes."""
    return alpha * MAGENTA + (1 - alpha) * 255.0


def test_white_light_and_summed_spectrum_use_good_voxels_only():
    data = np.arange(5 * 3 * 4, dtype=np.float32).reshape(5, 3, 4)  # (nwave, ny, nx)
    cube = datamodels.IRISCubeModel(data.copy())
    cube.err = np.full(data.shape, 2.0, np.float32)
    cube.wmap = np.ones(data.shape, np.float32)
    cube.dq = np.zeros(data.shape, np.uint32)
    # Spaxel (x, y) = (0, 0): one voxel not finite, one without weight, one flagged; plane 3 is its only good one.
    cube.data[0, 0, 0] = np.nan
    cube.wmap[1, 0, 0] = 0.0
    cube.dq[2, 0, 0] = FLAGS["DO_NOT_USE"] | FLAGS["SATURATED"]
    cube.dq[:, 2, 3] = FLAGS["DO_NOT_USE"]  # a spaxel without any good voxel
    cube.dq[4] = FLAGS["DO_NOT_USE"]  # a plane without any
    info = cube_wcsinfo((150.0, 2.0), 0.05, 0.0, 2.0, 0.001, data.shape)
    cube.meta.wcsinfo = info
    cube.meta.wcs = cube_gwcs(info, data.shape)
    image, masked = white_light_image(cube)
    assert image[0, 0] == data[3, 0, 0]
    assert masked[2, 3] and np.isnan(image[2, 3]) and masked.sum() == 1
    np.testing.assert_allclose(image[1, 2], data[:4, 1, 2].mean(), rtol=1e-6)  # a mean: plane 4 does not dim it
    spectrum = summed_spectrum(cube)
    np.testing.assert_allclose(spectrum.wavelength, [2.0, 2.001, 2.002, 2.003, 2.004])
    assert spectrum.masked.tolist() == [False, False, False, False, True] and np.isnan(spectrum.flux[4])
    # Plane 1: 12 spaxels less the one without weight and the flagged one.
    np.testing.assert_allclose(spectrum.flux[1], data[1].sum() - data[1, 0, 0] - data[1, 2, 3])
    np.testing.assert_allclose(spectrum.error[1], 2.0 * np.sqrt(10))


def test_cube_png_white_light_compass_and_spectrum(ifs_products, tmp_path):
    paths, _, _ = ifs_products
    split = round(PNG_SIZE[1] * (1 - CUBE_PANEL_SPLIT))
    pixels = png_pixels(render_png(paths["s3d"], tmp_path / "cube.png"))
    image_panel, spectrum_panel = pixels[:split], pixels[split:]
    assert count_colour(image_panel, YELLOW) > 200  # compass and scale bar from the cube's spatial WCS
    assert count_colour(spectrum_panel, YELLOW) == 0
    spectrum_blue = count_colour(spectrum_panel, np.array([31.0, 119.0, 180.0]), tolerance=30)  # tab:blue
    assert spectrum_blue > 500
    assert count_colour(pixels, MAGENTA) == 0 and count_colour(pixels, shaded(), tolerance=3) == 0

    # A spaxel without a good voxel is drawn in the masked colour; planes without one are shaded.
    with datamodels.open(paths["s3d"]) as cube:
        cube.dq[:, 4, 6] |= FLAGS["DO_NOT_USE"]
        cube.dq[200:220] |= FLAGS["DO_NOT_USE"]
        pixels = png_pixels(render_png(cube, tmp_path / "masked.png"))
    image_panel, spectrum_panel = pixels[:split], pixels[split:]
    spaxel_area = (PNG_SIZE[0] / 8) ** 2  # 8 spaxels across the width, at most
    assert 0.3 * spaxel_area < count_colour(image_panel, MAGENTA) <= spaxel_area
    assert count_colour(spectrum_panel, shaded(), tolerance=3) > 500


def test_spectrum_png_with_error_band_and_masked_bins(ifs_products, tmp_path):
    paths, _, _ = ifs_products
    pixels = png_pixels(render_png(paths["x1d"], tmp_path / "spectrum.png"))
    assert count_colour(pixels, YELLOW) == 0
    shaded_before = count_colour(pixels, shaded(), tolerance=3)
    with datamodels.open(paths["x1d"]) as spectrum:
        n_bins = len(spectrum.spec_table)
        spectrum.spec_table["DQ"][100:130] |= FLAGS["DO_NOT_USE"]
        spectrum.spec_table["FLUX_ERROR"] *= 50  # an error band wide enough to be seen
        pixels = png_pixels(render_png(spectrum, tmp_path / "masked.png"))
    # 30 more bins shaded over the whole height: about 30 / n_bins of the axes (0.84 x 0.82 of the PNG).
    expected = 30 / n_bins * 0.84 * 0.82 * PNG_SIZE[0] * PNG_SIZE[1]
    assert 0.7 * expected < count_colour(pixels, shaded(), tolerance=3) - shaded_before < 1.1 * expected
    band = 0.3 * np.array([31.0, 119.0, 180.0]) + 0.7 * 255.0  # tab:blue at alpha 0.3 over white
    assert count_colour(pixels, band, tolerance=3) > 1000


@pytest.mark.parametrize("kind", ["uncal", "rate"])
def test_ifs_detector_png_has_no_compass(ifs_products, tmp_path, kind):
    """The IFS detector's ramps and frames render as images; their pixels are spectra, so no sky directions."""
    paths, _, _ = ifs_products
    with datamodels.open(paths[kind]) as model:
        assert model.meta.wcsinfo.crval1 is not None  # the header has a pointing: still no compass
    pixels = png_pixels(render_png(paths[kind], tmp_path / f"{kind}.png"))
    assert count_colour(pixels, YELLOW) == 0
    grey = pixels[(pixels[..., 0] == pixels[..., 1]) & (pixels[..., 1] == pixels[..., 2])][:, 0]
    assert grey.std() > 20  # the spectra of the slices, not a blank frame
    # Level 1: 10 x 10 flagged pixels of 512 x 256, shown 2 PNG pixels per pixel (1024 rows of image).
    expected = 10 * 10 * 2 * 2 if kind == "rate" else 0
    assert count_colour(pixels, MAGENTA) == pytest.approx(expected, rel=0.2)


def test_command_line_on_ifs_products(ifs_products, tmp_path, capsys, caplog):
    paths, truth, layout = ifs_products
    out = tmp_path / "out"
    with caplog.at_level("INFO", logger="liger_iris_pipeline.quicklook.cli"):
        assert quicklook_main([str(paths[kind]) for kind in ("rate", "s3d", "x1d")] + ["--output-dir", str(out)]) == 0
    names = sorted(Path(path).name for path in capsys.readouterr().out.split())
    assert names == sorted(path.name for path in out.iterdir())
    assert names == ["ifs_science_rate.png", "ifs_science_s3d.png", "ifs_science_s3d.reg", "ifs_science_x1d.png"]
    notes = [record.getMessage() for record in caplog.records]
    assert f"{paths['x1d']}: no sources to mark on a spectrum: no region file" in notes
    assert f"{paths['rate']}: no sources to mark on a detector frame of spectra: no region file" in notes
    # The cube's region: the simulated source, placed by the cube's spatial WCS, within half a spaxel.
    from regions import CircleSkyRegion, Regions

    (circle,) = Regions.read(out / "ifs_science_s3d.reg", format="ds9")
    assert isinstance(circle, CircleSkyRegion)
    source = truth.sources[0]
    separation = circle.center.separation(SkyCoord(source["ra"], source["dec"], unit="deg")).arcsec
    assert separation < 0.5 * layout.spaxel_scale
    assert circle.radius.to_value("arcsec") == pytest.approx(1.5 * layout.spaxel_scale, rel=1e-3)


def test_command_line_refuses_an_ifs_reference(ifs_products, tmp_path, capsys):
    """A file that is not a product (a slice-geometry reference) still gets the one-line error, and a non-zero exit."""
    paths, _, _ = ifs_products
    layout = ifs.SlicerLayout.small()
    from ifs_helpers import slicer_references

    slicegeo, _ = slicer_references(layout, ifs_detector(layout))
    reference = tmp_path / "slicegeo.fits"
    slicegeo.save(reference)
    assert quicklook_main([str(reference), str(paths["x1d"]), "--output-dir", str(tmp_path / "out")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"tmt-quicklook: error: {reference}: ") and "no quick-look" in line
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["ifs_science_x1d.png"]
