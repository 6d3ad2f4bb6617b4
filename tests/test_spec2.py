"""spec2 on simulated slicer frames against the simulator's truth (small layout).

The references (slice geometry, wavelength solution, the IFS flat, the IFS detector's dark) are
the simulator's truth (``ifs_helpers``), given as ``override_*``: the calibration pipelines that
fit them have their own tests. Level 1 frames are the truth's detector rate, noiseless or with
Gaussian noise of the variances they carry (the Level 0 -> 1 reduction of slicer ramps is tested
in ``test_simulate_ifs``).
"""

import re

import numpy as np
import pytest
from ifs_helpers import (
    FILTER,
    detector_reference,
    ifs_detector,
    ifs_flat,
    level1_frame,
    simulate,
    slicer_references,
)
from photutils.centroids import centroid_com
from test_command_line import failure

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline.assign_wcs import AssignWcsIFSStep
from liger_iris_pipeline.assign_wcs.slicer import slicer_transforms
from liger_iris_pipeline.cli.tmtrun import main as tmtrun
from liger_iris_pipeline.cube_build.cube_wcs import cube_gwcs
from liger_iris_pipeline.extract_1d import Extract1dStep
from liger_iris_pipeline.pipeline.spec2 import ProcessIFSL2Pipeline
from liger_iris_pipeline.simulate import ifs
from liger_iris_pipeline.simulate.ifs.validation import cube_wavelengths, line_centre

SOURCE = ifs.PointSource(3.6, 2.4, abmag=17.0, lines={"Br_gamma": 400.0, "H2_1-0_S0": 300.0})


@pytest.fixture(scope="module")
def layout():
    return ifs.SlicerLayout.small()


@pytest.fixture(scope="module")
def detector(layout):
    return ifs_detector(layout)


@pytest.fixture(scope="module")
def references(layout, detector):
    slicegeo, wavecal = slicer_references(layout, detector)
    return {
        "slicegeo": slicegeo,
        "wavecal": wavecal,
        "dark": detector_reference(detector, "DARK"),
        "flat": ifs_flat(layout, detector),
    }


@pytest.fixture(scope="module")
def science(layout, detector):
    """A point source with two lines, without sky or atmosphere."""
    return simulate(ifs.IFSScene(sources=[SOURCE], sky=False, telluric=False), layout, detector)


def _steps(references):
    return {
        "dark_current": {"override_dark": references["dark"]},
        "flat_field": {"override_flat": references["flat"]},
        "assign_wcs": {"override_slicegeo": references["slicegeo"], "override_wavecal": references["wavecal"]},
    }


def _spec2(frame, references, **kwargs):
    return ProcessIFSL2Pipeline.call(frame, steps=_steps(references), **kwargs)


def test_assign_wcs_gives_the_simulator_geometry(layout, detector, references, science):
    ramp, truth = science
    frame = AssignWcsIFSStep.call(
        level1_frame(truth, ramp, detector),
        override_slicegeo=references["slicegeo"],
        override_wavecal=references["wavecal"],
    )
    assert frame.meta.cal_step.assign_wcs == "COMPLETE"
    y, x = np.mgrid[: layout.detector_shape[0], : layout.detector_shape[1]]
    labels, _ = slicer_transforms(frame.meta.wcs)
    on_slices = labels > 0
    index, s, wavelength = frame.meta.wcs.get_transform("detector", "slicer")(x[on_slices], y[on_slices])
    slice_map, along, truth_wavelength = layout.pixel_maps(FILTER)
    np.testing.assert_array_equal(labels - 1, slice_map)
    np.testing.assert_array_equal(index, slice_map[on_slices])
    np.testing.assert_allclose(s, along[on_slices], atol=1e-5)
    np.testing.assert_allclose(wavelength, truth_wavelength[on_slices], rtol=1e-7)
    # The centre of spaxel (x, y) = (k, i) is s = k + 0.5 on slice i: the truth's sky position of that spaxel.
    source = truth.sources[0]
    ra, dec, _ = frame.meta.wcs.get_transform("slicer", "world")(source["y"], source["x"] + 0.5, 2.2)
    np.testing.assert_allclose((ra, dec), (source["ra"], source["dec"]), atol=1e-10)


def test_cube_flux_positions_and_lines_against_the_truth(tmp_path, layout, detector, references, science):
    ramp, truth = science
    cube = _spec2(level1_frame(truth, ramp, detector), references)
    assert cube.meta.cal_step.cube_build == "COMPLETE" and cube.meta.cal_step.background == "SKIPPED"
    assert cube.meta.bunit_data == "DN/s" and cube.data.shape[1:] == (layout.n_slices, layout.n_spaxels)
    # Flux: the cube holds DN/s per spaxel per bin, the truth too (in its finer bins).
    total = np.nansum(cube.data, dtype=np.float64)
    assert total == pytest.approx(truth.cube.sum(dtype=np.float64), rel=0.02)
    assert np.isfinite(cube.data).mean() > 0.99 and (cube.wmap[np.isfinite(cube.data)] > 0).all()
    # Position: centroids of the collapsed cube and truth cube, each through its own WCS.
    truth_wcs = cube_gwcs(truth.cube_wcsinfo(), truth.cube.shape)
    ra, dec, _ = cube.meta.wcs(*centroid_com(np.nansum(cube.data, axis=0)), 0)
    truth_ra, truth_dec, _ = truth_wcs(*centroid_com(truth.cube.sum(axis=0)), 0)
    offset = np.hypot((ra - truth_ra) * np.cos(np.radians(dec)), dec - truth_dec) * 3600 / layout.spaxel_scale
    assert offset < 0.1
    # Lines: fitted centres in the spaxels of the source against the truth's wavelengths, in detector rows.
    wavelengths = cube_wavelengths(cube)
    dispersion = layout.dispersion(FILTER)
    errors = []
    lines = [line for line in truth.sources["line_wavelength"] if wavelengths[50] < line < wavelengths[-50]]
    assert len(lines) == 2
    for line in lines:
        for y, x in ((2, 3), (2, 4), (3, 3), (3, 4)):
            errors.append((line_centre(cube.data[:, y, x], wavelengths, line, dispersion) - line) / dispersion)
    assert np.sqrt(np.mean(np.square(errors))) < 0.05
    # The product round-trips with its WCS.
    path = cube.save(tmp_path / "source_s3d.fits")
    with dm.open(path) as saved:
        assert isinstance(saved, dm.IRISCubeModel)
        np.testing.assert_allclose(saved.meta.wcs(2.0, 3.0, 10.0), cube.meta.wcs(2.0, 3.0, 10.0))


def test_voxel_pulls_of_a_noisy_frame(layout, detector, references, science):
    """The cube of a noisy frame against the cube of the noiseless one: voxel pulls of width 1.

    The expected value of each voxel is the same resampling of the truth's detector rate (the truth
    cube through the LSF, the detector pixels and the footprints), so the pulls test the variance
    propagation of cube_build (weights squared) and of the steps before it.
    """
    ramp, truth = science
    expected = _spec2(level1_frame(truth, ramp, detector), references)
    noisy = _spec2(level1_frame(truth, ramp, detector, seed=5), references)
    usable = np.isfinite(noisy.data) & (noisy.wmap > 0.5)
    pulls = ((noisy.data - expected.data) / noisy.err)[usable]
    assert usable.sum() > 20000
    assert abs(np.mean(pulls)) < 0.05 and pulls.std() == pytest.approx(1.0, rel=0.15)
    assert np.nansum(noisy.data, dtype=np.float64) == pytest.approx(truth.cube.sum(dtype=np.float64), rel=0.02)


def test_spec2_refuses_an_imager_frame(tmp_path, capsys):
    path = str(tmp_path / "img_001_rate.fits")
    image = dm.IRISImageModel(np.zeros((8, 8), np.float32))
    image.meta.instrument.name = "IRIS"
    image.meta.instrument.detector = "IMG1"
    image.save(path)
    assert tmtrun(["spec2.cfg", path, f"--output_dir={tmp_path}"]) == 1
    assert failure(capsys) == (
        f"{path}: the input of ProcessIFSL2Pipeline must be an IRISIFSImageModel (Level 1 or 2 IFS frame), "
        "this is a IRISImageModel: an imager frame, reduce it with image2"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["img_001_rate.fits"]


def test_cube_build_needs_the_slicer_wcs(layout, detector, science):
    from liger_iris_pipeline.cube_build import CubeBuildStep

    ramp, truth = science
    with pytest.raises(ValueError, match="no slicer WCS: run assign_wcs"):
        CubeBuildStep.call(level1_frame(truth, ramp, detector))


@pytest.fixture(scope="module")
def cubes(layout, detector, references, science):
    """spec2's cubes and spectra of the noiseless and a noisy frame of the point source."""
    ramp, truth = science
    products = {}
    for name, seed in (("noiseless", None), ("noisy", 5)):
        frame = level1_frame(truth, ramp, detector, seed=seed)
        cube = _spec2(frame, references)
        products[name] = (cube, Extract1dStep.call(cube, radius=2.5))
    return products


def test_extract_1d_against_the_truth(layout, science, cubes):
    from photutils.aperture import CircularAperture

    _, truth = science
    cube, spectrum = cubes["noiseless"]
    table = spectrum.spec_table
    assert spectrum.meta.cal_step.extract_1d == "COMPLETE" and spectrum.meta.flux_unit == "DN/s"
    np.testing.assert_allclose(table["WAVELENGTH"], cube.meta.wcs(0, 0, np.arange(len(table)))[2])
    # The aperture around the centroid, in the truth cube: the same flux within 2 %.
    position = centroid_com(truth.cube.sum(axis=0))
    weights = CircularAperture(position, r=2.5).to_mask(method="exact").to_image(truth.cube.shape[1:])
    expected = np.einsum("kyx,yx->", truth.cube.astype(np.float64), weights)
    assert np.nansum(table["FLUX"]) == pytest.approx(expected, rel=0.02)
    # Flux errors: the noisy spectrum against the noiseless one.
    noisy = cubes["noisy"][1].spec_table
    good = np.isfinite(noisy["FLUX"]) & (noisy["NPIXELS"] > 0.9 * np.pi * 2.5**2)
    pulls = ((noisy["FLUX"] - table["FLUX"]) / noisy["FLUX_ERROR"])[good]
    assert good.sum() > 400 and pulls.std() == pytest.approx(1.0, rel=0.15)
    variances = sum(noisy[f"FLUX_VAR_{name}"] for name in ("POISSON", "RNOISE", "FLAT"))
    np.testing.assert_allclose(noisy["FLUX_ERROR"] ** 2, variances, rtol=1e-6)


def test_spec2_from_an_association_on_the_command_line(tmp_path, layout, detector, references, science, capsys):
    from liger_iris_pipeline.associations import make_asn

    ramp, truth = science
    rate = level1_frame(truth, ramp, detector, seed=3).save(tmp_path / "point_001_rate.fits")
    asn = tmp_path / "point_asn.json"
    make_asn([rate], asn_type="spec2", output=asn)
    files = {}
    for name, model in references.items():
        files[name] = str(model.save(tmp_path / f"ref_{name}.fits"))
    arguments = [
        f"--steps.dark_current.override_dark={files['dark']}",
        f"--steps.flat_field.override_flat={files['flat']}",
        f"--steps.assign_wcs.override_slicegeo={files['slicegeo']}",
        f"--steps.assign_wcs.override_wavecal={files['wavecal']}",
        f"--output_dir={tmp_path}",
        "--save_cal=true",
    ]
    assert tmtrun(["spec2.cfg", str(asn), *arguments]) == 0
    with dm.open(tmp_path / "point_001_cal.fits") as cal:  # the calibrated frame keeps its slicer WCS
        labels, _ = slicer_transforms(cal.meta.wcs)
        y, x = np.argwhere(labels == 3)[100]
        index, s, _ = cal.meta.wcs.get_transform("detector", "slicer")(x, y)
        slice_map, along, _ = layout.pixel_maps(FILTER)
        assert (index, s) == pytest.approx((slice_map[y, x], along[y, x]), abs=1e-5)
    with dm.open(tmp_path / "point_001_s3d.fits") as cube, dm.open(tmp_path / "point_001_x1d.fits") as spectrum:
        assert isinstance(cube, dm.IRISCubeModel) and isinstance(spectrum, dm.IRISSpectrumModel)
        assert cube.meta.asn.table_name == "point_asn.json" and cube.meta.cal_step.extract_1d == "COMPLETE"
        assert len(spectrum.spec_table) == cube.data.shape[0]
    # A cube with a broken spectral WCS: one line, no spectrum.
    from astropy.io import fits

    broken = tmp_path / "broken_s3d.fits"
    edits = {
        "CDELT3": (-1.0, r"invalid metadata: While validating meta.wcsinfo.cdelt3 -1.0 is less than or equal to .*"),
        "CRVAL3": (2.2, r"the cube's spectral WCS is broken: the gwcs and the FITS keywords differ by 279 planes"),
        "CTYPE3": ("FREQ", r"invalid metadata: While validating meta.wcsinfo.ctype3 'FREQ' is not one of \['WAVE'\]"),
    }
    for keyword, (value, expected) in edits.items():
        with fits.open(tmp_path / "point_001_s3d.fits") as hdulist:
            hdulist["SCI"].header[keyword] = value
            hdulist.writeto(broken, checksum=True, overwrite=True)
        capsys.readouterr()
        assert tmtrun(["extract_1d", str(broken), f"--output_dir={tmp_path}"]) == 1
        assert re.fullmatch(f"{re.escape(str(broken))}: {expected}", failure(capsys)), keyword
        assert not list(tmp_path.glob("broken_*x1d*"))


def test_sky_subtraction_with_a_sky_frame(layout, detector, references, science):
    """The source with the night sky, minus a sky frame of its own noise: at the bright OH lines the
    cube is the source's cube (spec2 of the source without sky) within 2 % of the line flux."""
    from liger_iris_pipeline.associations import Level2Product

    source_ramp, source_truth = science
    ramp, truth = simulate(ifs.IFSScene(sources=[SOURCE], telluric=False), layout, detector)
    sky_ramp, sky_truth = simulate(ifs.IFSScene(), layout, detector, kind="SKY", seed=2)
    frame = level1_frame(truth, ramp, detector, seed=11)
    sky = level1_frame(sky_truth, sky_ramp, detector, seed=12)
    sky.meta.filename = "sky_001_rate.fits"
    cube = ProcessIFSL2Pipeline.call([Level2Product("sci", frame, [sky])], steps=_steps(references))
    assert cube.meta.cal_step.background == "COMPLETE" and cube.meta.cal_step.dark_current == "SKIPPED"
    assert cube.meta.background.members == "sky_001_rate.fits"
    expected = _spec2(level1_frame(source_truth, source_ramp, detector), references)
    wavelengths = cube_wavelengths(cube)
    fwhm = wavelengths.mean() / truth.resolving_power
    lines = sky_truth.lines[sky_truth.lines["flux"] > 0.5 * sky_truth.lines["flux"].max()]
    assert len(lines) >= 3
    n_spaxels = layout.n_slices * layout.n_spaxels
    for line in lines:
        window = np.abs(wavelengths - line["wavelength"]) < 2 * fwhm
        residual = np.nansum(cube.data[window] - expected.data[window], dtype=np.float64)
        assert abs(residual) < 0.02 * line["flux"] * n_spaxels
        assert abs(residual) < 4 * np.sqrt(np.nansum(cube.err[window].astype(np.float64) ** 2))


def test_assign_wcs_refuses_a_geometry_of_another_scale(layout, detector, references, science):
    ramp, truth = science
    slicegeo = references["slicegeo"].copy()
    slicegeo.meta.instrument.spaxel_scale = 0.025
    slicegeo.meta.filename = "slicegeo_0025.fits"
    with pytest.raises(ValueError) as error:
        AssignWcsIFSStep.call(
            level1_frame(truth, ramp, detector), override_slicegeo=slicegeo, override_wavecal=references["wavecal"]
        )
    assert str(error.value) == (
        "ifs_rate.fits: the slicegeo reference slicegeo_0025.fits is for another configuration: "
        "SPAXSCL 0.05 (reference 0.025)"
    )


def test_cube_of_two_frames_of_one_pointing(layout, detector, references, science):
    """Two exposures of one pointing average in the cube (WMAP 2, errors / sqrt 2); a dithered one is refused."""
    from liger_iris_pipeline.cube_build import CubeBuildStep

    ramp, truth = science
    frames = []
    for seed in (21, 22):
        frame = level1_frame(truth, ramp, detector, seed=seed)
        frame.meta.filename = f"ifs_{seed}_rate.fits"
        frames.append(
            AssignWcsIFSStep.call(
                frame, override_slicegeo=references["slicegeo"], override_wavecal=references["wavecal"]
            )
        )
    single = CubeBuildStep.call(frames[0])
    both = CubeBuildStep.call(frames)
    full = (single.wmap > 0.99) & (single.wmap < 1.01)
    np.testing.assert_allclose(both.wmap[full], 2.0 * single.wmap[full], rtol=1e-6)
    assert np.median(both.err[full] / single.err[full]) == pytest.approx(1 / np.sqrt(2), rel=0.02)
    assert np.nansum(both.data, dtype=np.float64) == pytest.approx(np.nansum(single.data, dtype=np.float64), rel=0.01)
    frames[1].meta.wcsinfo.crval1 += 0.2 * layout.spaxel_scale / 3600.0
    frames[1].meta.wcs = None
    dithered = AssignWcsIFSStep.call(
        frames[1], override_slicegeo=references["slicegeo"], override_wavecal=references["wavecal"]
    )
    with pytest.raises(
        ValueError, match=r"ifs_22_rate.fits: its spaxel grid is 0.2\d* spaxels from ifs_21_rate.fits's"
    ):
        CubeBuildStep.call([frames[0], dithered])


def test_spec2_without_an_ifs_flat(layout, detector, references, science):
    """No IFS flat (N/A): flat_field is skipped, the cube keeps the slice throughputs (and the pixel response)."""
    ramp, truth = science
    steps = _steps(references)
    steps["flat_field"] = {"override_flat": "N/A"}
    cube = ProcessIFSL2Pipeline.call(level1_frame(truth, ramp, detector), steps=steps)
    assert cube.meta.cal_step.flat_field == "SKIPPED" and cube.meta.cal_step.cube_build == "COMPLETE"
    source_rows = (truth.cube.sum(axis=(0, 2)) * layout.slice_throughputs()).sum()
    assert np.nansum(cube.data, dtype=np.float64) == pytest.approx(source_rows, rel=0.02)


def test_level0_ramps_to_cube(tmp_path, layout, detector, references):
    """Level 0 ramps of the point source -> detector1 (the IFS detector's truth references) -> spec2."""
    from liger_iris_pipeline.pipeline.detector1 import Detector1Pipeline

    scene = ifs.IFSScene(sources=[SOURCE], sky=False, telluric=False)
    ramp, truth = ifs.simulate_ifs_exposure(
        scene, detector, layout, kind="SCIENCE", filter=FILTER, nreads=10, seed=4, cosmic_ray_rate=0.0
    )
    models = {
        name: detector_reference(detector, name) for name in ("MASK", "READNOISE", "GAIN", "NONLIN", "SATURATION")
    }
    ramp_fit = {f"override_{name.lower()}": models[name] for name in ("READNOISE", "GAIN", "NONLIN", "SATURATION")}
    steps = {"dq_init": {"override_mask": models["MASK"]}, "ramp_fit": ramp_fit}
    with Detector1Pipeline.call(ramp, steps=steps) as rate:
        cube = _spec2(rate, references)
    good = np.isfinite(cube.data)
    assert good.mean() > 0.95
    assert np.nansum(cube.data, dtype=np.float64) == pytest.approx(truth.cube.sum(dtype=np.float64), rel=0.02)
