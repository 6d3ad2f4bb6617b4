"""IFS data models: the detector frame, the cube and the 1-D spectrum through FITS, their schema checks."""

import numpy as np
import pytest
from astropy.io import fits
from interop import SpectralCube, Spectrum
from test_command_line import failure
from test_datamodels import _fill

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline import simulate as sim
from liger_iris_pipeline.associations import make_asn
from liger_iris_pipeline.cli.tmtrun import main as tmtrun
from liger_iris_pipeline.cube_build.cube_wcs import cube_wcs, fits_wcs
from liger_iris_pipeline.lib.models import open_image, open_input
from liger_iris_pipeline.lib.observation import observation_category
from liger_iris_pipeline.pipeline import Detector1Pipeline

IFS_META = {
    "meta.instrument.name": "IRIS",
    "meta.instrument.detector": "IFU",
    "meta.instrument.mode": "IFS",
    "meta.instrument.ifs_mode": "SLICER",
    "meta.instrument.spaxel_scale": 0.05,
    "meta.instrument.filter": "Kbb",
    "meta.exposure.type": "IRIS_IFS",
}


def _attribute(extname):
    return "data" if extname == "SCI" else extname.lower()


def _write_hdus(path, data, model_type, extname="SCI"):
    primary = fits.PrimaryHDU()
    primary.header["DATAMODL"] = model_type
    fits.HDUList([primary, fits.ImageHDU(data, name=extname)]).writeto(path)
    return path


@pytest.mark.parametrize(
    ("model_class", "shape", "extnames"),
    [
        (dm.IRISIFSImageModel, (6, 7), ("SCI", "ERR", "DQ", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")),
        (dm.IRISCubeModel, (5, 6, 7), ("SCI", "ERR", "DQ", "WMAP", "VAR_POISSON", "VAR_RNOISE", "VAR_FLAT")),
    ],
    ids=["frame", "cube"],
)
def test_frame_and_cube_round_trip(tmp_path, model_class, shape, extnames):
    rng = np.random.default_rng(3)
    model = model_class(shape)
    _fill(model, IFS_META)
    model.meta.bunit_data = "DN/s"
    attributes = [_attribute(extname) for extname in extnames]
    for name in attributes:
        setattr(model, name, rng.integers(0, 100, size=shape).astype(getattr(model, name).dtype))
    path = model.save(tmp_path / "model.fits")
    with fits.open(path) as hdulist:
        assert hdulist[0].header["DATAMODL"] == model_class.__name__
        assert hdulist[0].header["IFSMODE"] == "SLICER" and hdulist[0].header["SPAXSCL"] == 0.05
        assert all(hdulist[extname].header["NAXIS"] == len(shape) for extname in extnames)
        assert hdulist["ERR"].header["BUNIT"] == "DN/s" and hdulist["VAR_FLAT"].header["BUNIT"] == "(DN/s)**2"
    reread = dm.open(path)
    assert type(reread) is model_class
    assert reread.meta.instrument.ifs_mode == "SLICER" and reread.meta.instrument.spaxel_scale == 0.05
    for name in attributes:
        np.testing.assert_array_equal(getattr(reread, name), getattr(model, name))


def test_cube_defaults_mark_voxels_without_data():
    cube = dm.IRISCubeModel((3, 4, 5))
    assert np.isnan(cube.data).all() and np.isnan(cube.var_rnoise).all()
    assert not cube.wmap.any() and cube.dq.dtype == np.uint32


def spectrum_model(n=20):
    """A spectrum of ``n`` bins around 2.2 um: flux 1 mJy, 1 % errors."""
    model = dm.IRISSpectrumModel()
    table = np.zeros(n, dtype=model.get_dtype("spec_table"))
    table["WAVELENGTH"] = np.linspace(2.15, 2.25, n)
    table["FLUX"] = 1.0e-3
    table["FLUX_VAR_POISSON"] = 0.6e-10
    table["FLUX_VAR_RNOISE"] = 0.3e-10
    table["FLUX_VAR_FLAT"] = 0.1e-10
    table["FLUX_ERROR"] = np.sqrt(1.0e-10)
    table["NPIXELS"] = 12.5
    table["DQ"][3] = dm.dqflags.pixel["DO_NOT_USE"]
    model.spec_table = table
    _fill(model, {key: value for key, value in IFS_META.items() if "spaxel" not in key})
    return model


def test_spectrum_round_trip_with_column_units(tmp_path):
    path = spectrum_model().save(tmp_path / "spectrum_x1d.fits")
    with fits.open(path, checksum=True) as hdulist:
        table = hdulist["EXTRACT1D"]
        units = dict(zip(table.columns.names, table.columns.units, strict=True))
        assert units["WAVELENGTH"] == "um" and units["FLUX"] == "Jy" and units["FLUX_ERROR"] == "Jy"
        assert units["FLUX_VAR_POISSON"] == units["FLUX_VAR_RNOISE"] == units["FLUX_VAR_FLAT"] == "Jy2"
        assert not units["DQ"] and not units["NPIXELS"]
    reread = dm.open(path)  # the checksums, updated with the units, verify
    assert type(reread) is dm.IRISSpectrumModel
    assert reread.spec_table["DQ"].dtype == np.uint32 and reread.spec_table["DQ"][3] == 1
    np.testing.assert_allclose(reread.spec_table["WAVELENGTH"], np.linspace(2.15, 2.25, 20))


@pytest.mark.parametrize(
    ("model_type", "data", "message"),
    [
        ("IRISCubeModel", np.ones((4, 4), np.float32), "extension SCI .* must have 3 dimensions, found 2"),
        ("IRISCubeModel", np.ones((2, 4, 4), np.float64), "extension SCI .* must be float32, found float64"),
        ("IRISIFSImageModel", np.ones((2, 4, 4), np.float32), "extension SCI .* must have 2 dimensions, found 3"),
        ("IRISIFSImageModel", np.ones((4, 4), np.int32), "extension SCI .* must be float32, found int32"),
    ],
)
def test_wrong_array_shape_or_dtype_in_file_is_refused(tmp_path, model_type, data, message):
    path = _write_hdus(tmp_path / "bad.fits", data, model_type)
    with pytest.raises(dm.DataModelError, match=f"bad.fits: {message}"):
        dm.open(path)


def test_wrong_array_dimensionality_assignment_raises():
    with pytest.raises(ValueError, match="wrong number of dimensions"):
        dm.IRISCubeModel((2, 3, 4)).data = np.zeros((3, 4), np.float32)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("meta.instrument.ifs_mode", "FIBRE"),
        ("meta.instrument.spaxel_scale", 0.0),
        ("meta.wcsinfo.ctype3", "FREQ"),
        ("meta.wcsinfo.cunit3", "nm"),
        ("meta.wcsinfo.cdelt3", -1.0e-4),
        # draft-4 schemas: "exclusiveMinimum: 0" was no bound at all, "minimum: 0, exclusiveMinimum: true" is
        ("meta.instrument.plate_scale", 0.0),
        ("meta.exposure.read_time", 0.0),
    ],
)
def test_bad_ifs_metadata_raises(key, value):
    from asdf.exceptions import ValidationError

    with pytest.raises(ValidationError):
        _fill(dm.IRISCubeModel(), {key: value})


def test_ifs_exposure_types_of_both_instruments():
    model = dm.IRISIFSImageModel()
    for instrument in ("IRIS", "LIGER"):
        for kind in ("IFS", "IFS_SKY", "IFS_FLAT", "IFS_DARK", "IFS_SCAN", "ARC", "TELLURIC"):
            model.meta.exposure.type = f"{instrument}_{kind}"


CENTER = (150.1, 2.2)
SHAPE = (30, 9, 11)  # (nwave, ny, nx)
VOXELS = [(0.0, 0.0, 0.0), (3.0, 2.0, 7.0), (10.0, 8.0, 29.0), (5.0, 4.0, 15.0)]  # (x, y, k)


def cube_file(tmp_path, position_angle=30.0, unit="MJy/sr"):
    """A cube of 0.05 arcsec spaxels at 2.0-2.0145 um, SCI = plane index, written to disk; returns (path, gwcs)."""
    wcs, info = cube_wcs(CENTER, 0.05, position_angle, 2.0, 0.0005, SHAPE)
    model = dm.IRISCubeModel(SHAPE)
    _fill(model, IFS_META)
    model.meta.wcs, model.meta.wcsinfo, model.meta.bunit_data = wcs, info, unit
    model.data[:] = np.arange(SHAPE[0], dtype=np.float32)[:, None, None]
    model.err[:] = 0.5
    return model.save(tmp_path / "cube_s3d.fits"), wcs


def test_cube_wcs_follows_the_imager_convention():
    wcs, info = cube_wcs(CENTER, 0.05, 0.0, 2.0, 0.0005, SHAPE)
    assert (info["ctype3"], info["cunit3"], info["crpix3"]) == ("WAVE", "um", 1.0)
    ra0, dec0, wave0 = wcs(5.0, 4.0, 0.0)  # the centre spaxel of the first plane
    assert (ra0, dec0) == pytest.approx(CENTER, abs=1e-12) and wave0 == pytest.approx(2.0)
    ra, dec, wave = wcs(6.0, 5.0, 10.0)  # one spaxel East-left, North-up, ten planes on
    assert (ra - ra0) * np.cos(np.radians(dec0)) * 3600 == pytest.approx(-0.05, rel=1e-6)
    assert (dec - dec0) * 3600 == pytest.approx(0.05, rel=1e-6) and wave == pytest.approx(2.005)
    np.testing.assert_allclose(wcs.invert(ra, dec, wave), (6.0, 5.0, 10.0), atol=1e-7)
    world = fits_wcs(info).pixel_to_world(6.0, 5.0, 10.0)
    assert world[0].ra.deg == pytest.approx(ra, abs=1e-10) and world[1].to_value("um") == pytest.approx(2.005)
    with pytest.raises(ValueError, match="step of a cube must be positive"):
        cube_wcs(CENTER, 0.05, 0.0, 2.0, -0.0005, SHAPE)


def test_cube_wcs_agrees_with_the_simulator_pointing():
    # Two codes for one convention: the simulator's truth cubes and the pipeline's cubes share their grid.
    _, info = cube_wcs(CENTER, 0.025, 40.0, 2.0, 0.0005, SHAPE)
    truth = sim.wcsinfo_for_pointing((*CENTER, 40.0), SHAPE[1:], 0.025)
    assert info.keys() >= truth.keys()
    for key, value in truth.items():
        assert info[key] == (pytest.approx(value, rel=1e-15, abs=1e-15) if isinstance(value, float) else value), key


def test_cube_opens_in_spectral_cube_with_the_gwcs_axes(tmp_path):
    path, wcs = cube_file(tmp_path)
    np.testing.assert_allclose(dm.open(path).meta.wcs(3.0, 2.0, 7.0), wcs(3.0, 2.0, 7.0), rtol=1e-15)
    cube = SpectralCube.read(path, hdu="SCI")
    assert cube.shape == SHAPE and cube.unit == "MJy / sr"
    assert cube.wcs.wcs.ctype[2] == "WAVE" and cube.wcs.celestial.wcs.ctype[0] == "RA---TAN"
    np.testing.assert_allclose(cube.spectral_axis.to_value("um"), 2.0 + 0.0005 * np.arange(SHAPE[0]), rtol=1e-12)
    for x, y, k in VOXELS:
        wavelength, dec, ra = cube.world[int(k), int(y), int(x)]
        np.testing.assert_allclose([ra.to_value("deg"), dec.to_value("deg")], wcs(x, y, k)[:2], rtol=0, atol=1e-10)
        assert wavelength.to_value("um") == pytest.approx(wcs(x, y, k)[2], rel=1e-12)
        assert cube.unmasked_data[int(k), int(y), int(x)].value == k


def test_cube_opens_in_specutils_with_the_gwcs_axes(tmp_path):
    path, wcs = cube_file(tmp_path, position_angle=-70.0)
    # 'wcs1d-fits' reads N-d images; the ERR extension needs its type (specutils fails on the name alone).
    spectrum = Spectrum.read(path, format="wcs1d-fits", hdu="SCI", uncertainty_hdu="ERR", uncertainty_type="std")
    assert spectrum.flux.shape == SHAPE and spectrum.spectral_axis_index == 0
    assert spectrum.flux.unit == "MJy / sr" and spectrum.uncertainty.array[0, 0, 0] == 0.5
    np.testing.assert_allclose(spectrum.spectral_axis.to_value("um"), 2.0 + 0.0005 * np.arange(SHAPE[0]), rtol=1e-12)
    for x, y, k in VOXELS:
        sky, wavelength = spectrum.wcs.pixel_to_world(x, y, k)
        ra, dec, wave = wcs(x, y, k)
        assert sky.ra.deg == pytest.approx(ra, abs=1e-10) and sky.dec.deg == pytest.approx(dec, abs=1e-10)
        assert wavelength.to_value("um") == pytest.approx(wave, rel=1e-12)
        assert spectrum.flux[int(k), int(y), int(x)].value == k


def test_spectrum_reads_in_specutils(tmp_path):
    path = spectrum_model().save(tmp_path / "spectrum_x1d.fits")
    spectrum = Spectrum.read(path, format="tabular-fits", hdu="EXTRACT1D")
    np.testing.assert_allclose(spectrum.spectral_axis.to_value("um"), np.linspace(2.15, 2.25, 20))
    assert spectrum.flux.unit == "Jy" and spectrum.flux[0].value == pytest.approx(1.0e-3)
    assert spectrum.uncertainty.uncertainty_type == "std"
    np.testing.assert_allclose(spectrum.uncertainty.quantity.to_value("Jy"), 1.0e-5)


@pytest.mark.parametrize(
    ("exposure_type", "ifs_mode", "category"),
    [
        # every SLI- row of the table of observation categories (docs/ifs_design.rst)
        ("IRIS_IFS", "SLICER", ("SCI", "SLI-SCI")),
        ("IRIS_IFS_SKY", "SLICER", ("SCI", "SLI-SKY")),
        ("IRIS_IFS_FLAT", "SLICER", ("CAL", "SLI-NFF")),
        ("IRIS_IFS_DARK", "SLICER", ("CAL", "SLI-DRK")),
        ("IRIS_ARC", "SLICER", ("ENG", "SLI-IDP")),
        ("IRIS_TELLURIC", "SLICER", ("CAL", "SLI-TEL")),
        ("IRIS_IFS", "LENSLET", ("SCI", "LEN-SCI")),
        ("IRIS_IFS_SKY", "LENSLET", ("SCI", "LEN-SKY")),
        ("IRIS_IFS_DARK", "LENSLET", ("CAL", "LEN-DRK")),
        ("IRIS_ARC", "LENSLET", ("ENG", "LEN-IDP")),
        ("IRIS_TELLURIC", "LENSLET", ("CAL", "LEN-TEL")),
        ("IRIS_IFS_SCAN", "LENSLET", ("CAL", "LEN-SPX")),
        ("LIGER_IFS", "SLICER", ("SCI", "SLI-SCI")),
        ("LIGER_ARC", "SLICER", ("ENG", "SLI-IDP")),
        ("IRIS_IFS_SCAN", "SLICER", (None, None)),  # no slicer scans
        ("IRIS_PINHOLE", "SLICER", (None, None)),  # an imager calibration
        ("IRIS_IFS", None, (None, None)),  # the mode unknown
    ],
)
def test_observation_category_of_ifs_products(exposure_type, ifs_mode, category):
    frame = dm.IRISIFSImageModel()
    _fill(frame, IFS_META)
    instrument = exposure_type.split("_")[0]
    frame.meta.instrument.name, frame.meta.exposure.type = instrument, exposure_type
    frame.meta.instrument.ifs_mode = ifs_mode
    assert observation_category(frame) == category
    if category[0]:
        frame.meta.obstype, frame.meta.obsname = category  # the schema's pattern takes it


def test_imager_telluric_keeps_its_detector_category():
    frame = dm.IRISImageModel()
    _fill(frame, {"meta.instrument.name": "IRIS", "meta.instrument.detector": "IMG3", "meta.instrument.mode": "IMAGER"})
    frame.meta.exposure.type = "IRIS_TELLURIC"
    assert observation_category(frame) == ("CAL", "IMG3-TEL")


def ifs_frame_file(folder, model_class=dm.IRISIFSImageModel):
    """A small Level 1 IFS frame on disk (``model_class``, INSTMODE = IFS)."""
    frame = model_class((16, 16))
    _fill(frame, IFS_META)
    frame.meta.processing_level = 1
    return frame.save(folder / "ifs_001_rate.fits")


@pytest.mark.parametrize(
    ("model_class", "what"),
    [
        (dm.IRISIFSImageModel, "a IRISIFSImageModel"),
        (dm.IRISImageModel, "a IRISImageModel with INSTMODE = IFS"),  # an imager class holding an IFS exposure
    ],
    ids=["ifs-class", "instmode"],
)
def test_image2_refuses_an_ifs_frame(tmp_path, capsys, model_class, what):
    path = ifs_frame_file(tmp_path, model_class)
    assert tmtrun(["image2.cfg", path, f"--output_dir={tmp_path}"]) == 1
    expected = f"{path}: the input of ProcessImagerL2Pipeline must be an IRISImageModel (Level 1 or 2 frame), "
    assert failure(capsys) == f"{expected}this is {what}: an IFS frame, reduce it with spec2"
    assert [p.name for p in tmp_path.iterdir()] == ["ifs_001_rate.fits"]  # no partial product
    with pytest.raises(TypeError, match="an IFS frame, reduce it with spec2"):
        open_image(dm.open(path), "flat_field")
    asn = tmp_path / "ifs_asn.json"
    make_asn([path], output=asn)
    assert tmtrun(["image2.cfg", str(asn), f"--output_dir={tmp_path}"]) == 1
    assert failure(capsys) == f"{expected}this is {what}: an IFS frame, reduce it with spec2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ifs_001_rate.fits", "ifs_asn.json"]


def test_an_ifs_step_refuses_an_imager_frame():
    # What spec2's steps (input_model = ("IRISIFSImageModel",)) will say of an imager frame.
    with pytest.raises(TypeError) as refused:
        open_input(dm.IRISImageModel((4, 4)), ("IRISIFSImageModel",), "spec2")
    assert str(refused.value) == (
        "<IRISImageModel>: the input of spec2 must be an IRISIFSImageModel (Level 1 or 2 IFS frame), "
        "this is a IRISImageModel: an imager frame, reduce it with image2"
    )
    frame = open_input(dm.IRISIFSImageModel((4, 4)), ("IRISIFSImageModel",), "spec2")
    assert type(frame) is dm.IRISIFSImageModel and frame.var_flat is not None


def test_detector1_reduces_an_ifs_ramp_to_an_ifs_frame():
    detector = sim.make_detector((32, 32), seed=5)
    references = sim.reference_models(detector)
    ramp, _ = sim.simulate_dark_exposure(detector, nreads=3, pointing=(150.1, 2.2, 0.0), seed=2)
    _fill(ramp, {**IFS_META, "meta.exposure.type": "IRIS_IFS_DARK"})
    ramp_fit = {f"override_{name.lower()}": references[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")}
    steps = {"dq_init": {"override_mask": references["MASK"]}, "ramp_fit": ramp_fit}
    frame = Detector1Pipeline.call(ramp, steps=steps)
    assert type(frame) is dm.IRISIFSImageModel and frame.meta.processing_level == 1
    assert frame.meta.instrument.ifs_mode == "SLICER" and frame.meta.instrument.spaxel_scale == 0.05
    assert (frame.meta.obstype, frame.meta.obsname) == ("CAL", "SLI-DRK")
    assert frame.data.shape == (32, 32) and np.isfinite(frame.err).all()
