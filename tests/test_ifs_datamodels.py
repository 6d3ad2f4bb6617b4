"""IFS data models: the detector frame, the cube and the 1-D spectrum through FITS, their schema checks."""

import numpy as np
import pytest
from astropy.io import fits

from liger_iris_pipeline import datamodels as dm

IFS_META = {
    "meta.instrument.name": "IRIS",
    "meta.instrument.detector": "IFU",
    "meta.instrument.mode": "IFS",
    "meta.instrument.ifs_mode": "SLICER",
    "meta.instrument.spaxel_scale": 0.05,
    "meta.instrument.filter": "Kbb",
    "meta.exposure.type": "IRIS_IFS",
}


def _fill(model, meta):
    for key, value in meta.items():
        node = model
        *parents, leaf = key.split(".")
        for name in parents:
            node = getattr(node, name)
        setattr(node, leaf, value)


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
