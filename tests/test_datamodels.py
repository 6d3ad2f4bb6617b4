"""Data models: FITS round trips, schema validation, ``open()`` dispatch and its errors, DQ flags."""

import numpy as np
import pytest
from astropy.io import fits

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline.datamodels import dqflags

SCIENCE_META = {
    "meta.telescope": "TMT",
    "meta.processing_level": 2,
    "meta.obstype": "SCI",
    "meta.obsname": "IMG1-SCI",
    "meta.program.id": "2025A-001",
    "meta.observation.date": "2025-06-01",
    "meta.observation.time": "10:00:00.000",
    "meta.observation.observation_id": "obs001",
    "meta.target.name": "M31",
    "meta.target.ra": 10.6847,
    "meta.target.dec": 41.269,
    "meta.instrument.name": "IRIS",
    "meta.instrument.detector": "IMG1",
    "meta.instrument.mode": "IMAGER",
    "meta.instrument.filter": "Br_Gamma",
    "meta.instrument.pupil": "CLEAR",
    "meta.instrument.plate_scale": 0.004,
    "meta.exposure.type": "IRIS_IMAGE",
    "meta.exposure.readout_mode": "MCDS",
    "meta.exposure.nints": 2,
    "meta.exposure.nreads": 8,
    "meta.exposure.nfowler": 2,
    "meta.exposure.read_time": 1.47,
    "meta.exposure.integration_time": 10.29,
    "meta.exposure.exposure_time": 20.58,
    "meta.exposure.start_time": 60827.41666,
    "meta.exposure.start_time_iso": "2025-06-01T10:00:00.000",
    "meta.wcsinfo.crpix1": 16.5,
    "meta.wcsinfo.crpix2": 12.5,
    "meta.wcsinfo.crval1": 10.6847,
    "meta.wcsinfo.crval2": 41.269,
    "meta.wcsinfo.cdelt1": -0.004 / 3600,
    "meta.wcsinfo.cdelt2": 0.004 / 3600,
    "meta.wcsinfo.ctype1": "RA---TAN",
    "meta.wcsinfo.ctype2": "DEC--TAN",
    "meta.wcsinfo.position_angle": 30.0,
    "meta.wcsinfo.radesys": "ICRS",
    "meta.subarray.name": "CUSTOM",
    "meta.subarray.id": 3,
    "meta.subarray.xstart": 101,
    "meta.subarray.ystart": 201,
    "meta.subarray.xsize": 32,
    "meta.subarray.ysize": 24,
    "meta.subarray.detxsize": 4096,
    "meta.subarray.detysize": 4096,
    "meta.cal_step.dark_current": "COMPLETE",
    "meta.cal_step.flat_field": "SKIPPED",
    "meta.ref_file.dark.name": "crds://tmt_iris_dark_0001.fits",
    "meta.ref_file.crds.context_used": "tmt_0001.pmap",
}

KEYWORDS = {
    "TELESCOP": "TMT",
    "PROCLEVL": 2,
    "OBSTYPE": "SCI",
    "OBSNAME": "IMG1-SCI",
    "DATE-OBS": "2025-06-01",
    "TIME-OBS": "10:00:00.000",
    "INSTRUME": "IRIS",
    "DETECTOR": "IMG1",
    "INSTMODE": "IMAGER",
    "FILTER": "Br_Gamma",
    "READPATT": "MCDS",
    "NINTS": 2,
    "NREADS": 8,
    "NFOWLER": 2,
    "TFRAME": 1.47,
    "SUBARRAY": "CUSTOM",
    "SUBSTRT1": 101,
    "SUBSTRT2": 201,
    "SUBSIZE1": 32,
    "SUBSIZE2": 24,
    "CRPIX1": 16.5,
    "CTYPE1": "RA---TAN",
    "RADESYS": "ICRS",
    "S_DARK": "COMPLETE",
    "S_FLAT": "SKIPPED",
    "R_DARK": "crds://tmt_iris_dark_0001.fits",
    "CRDS_CTX": "tmt_0001.pmap",
}

REFERENCE_META = {
    "meta.reftype": "DARK",
    "meta.useafter": "2024-01-01T00:00:00",
    "meta.pedigree": "SIMULATION",
    "meta.description": "Simulated dark",
    "meta.author": "liger_iris_pipeline tests",
    "meta.instrument.name": "IRIS",
    "meta.instrument.detector": "IMG1",
    "meta.subarray.name": "FULL",
}

# model class, constructor shape, {attribute: (dtype, shape)}
MODEL_CASES = [
    (dm.TMTRampModel, (2, 5, 6, 7), {"data": ("uint16", (2, 5, 6, 7)), "pixeldq": ("uint32", (6, 7))}),
    (
        dm.IRISImageModel,
        (6, 7),
        {
            "data": ("float32", (6, 7)),
            "err": ("float32", (6, 7)),
            "dq": ("uint32", (6, 7)),
            "var_poisson": ("float32", (6, 7)),
            "var_rnoise": ("float32", (6, 7)),
            "var_flat": ("float32", (6, 7)),
        },
    ),
    (dm.TMTDarkModel, (6, 7), {"data": ("float32", (6, 7)), "err": ("float32", (6, 7)), "dq": ("uint32", (6, 7))}),
    (dm.TMTFlatModel, (6, 7), {"data": ("float32", (6, 7)), "err": ("float32", (6, 7)), "dq": ("uint32", (6, 7))}),
    (dm.TMTMaskModel, (6, 7), {"dq": ("uint32", (6, 7))}),
    (dm.TMTNonlinModel, (4, 6, 7), {"coeffs": ("float32", (4, 6, 7))}),
    (dm.TMTSaturationModel, (6, 7), {"data": ("float32", (6, 7)), "dq": ("uint32", (6, 7))}),
    (dm.TMTReadnoiseModel, (6, 7), {"data": ("float32", (6, 7))}),
    (dm.TMTGainModel, (6, 7), {"data": ("float32", (6, 7))}),
]


def _fill(model, meta):
    for key, value in meta.items():
        node = model
        *parents, leaf = key.split(".")
        for name in parents:
            node = getattr(node, name)
        setattr(node, leaf, value)


def _get(model, key):
    node = model
    for name in key.split("."):
        node = getattr(node, name)
    return node


@pytest.mark.parametrize(("model_class", "shape", "arrays"), MODEL_CASES, ids=lambda c: getattr(c, "__name__", ""))
def test_fits_round_trip(tmp_path, model_class, shape, arrays):
    rng = np.random.default_rng(1)
    model = model_class(shape)
    is_reference = issubclass(model_class, dm.TMTReferenceFileModel)
    meta = {**SCIENCE_META, **(REFERENCE_META if is_reference else {})}
    _fill(model, meta)
    for name, (dtype, array_shape) in arrays.items():
        values = rng.integers(0, 1000, size=array_shape).astype(dtype)
        setattr(model, name, values)
    if model_class is dm.TMTRampModel:
        model.read_times = np.arange(1, 6) * 1.47
    if is_reference:
        model.dq_def = dqflags.dq_def_table()
    path = tmp_path / "model.fits"
    model.save(path)

    with fits.open(path) as hdulist:
        header = hdulist[0].header
        if "SCI" in hdulist:
            # WCS keywords live with the SCI array, as in JWST files, so DS9 and astropy see them
            assert "CRPIX1" not in header
            header.update({key: hdulist["SCI"].header[key] for key in ("CRPIX1", "CTYPE1", "RADESYS")})
        assert header["DATAMODL"] == model_class.__name__
        assert header["CAL_VER"]
        for keyword, value in KEYWORDS.items():
            if keyword in ("CRPIX1", "CTYPE1", "RADESYS") and "SCI" not in hdulist:
                continue
            if keyword != "SUBARRAY":
                assert header[keyword] == value, keyword
        assert header["SUBARRAY"] == ("FULL" if is_reference else "CUSTOM")
        if is_reference:
            assert header["REFTYPE"] == "DARK"
            assert header["USEAFTER"] == "2024-01-01T00:00:00"
            assert header["PEDIGREE"] == "SIMULATION"
            assert header["AUTHOR"] == "liger_iris_pipeline tests"
            assert header["DESCRIP"] == "Simulated dark"

    reread = dm.open(path)
    assert type(reread) is model_class
    for key, value in meta.items():
        if is_reference and isinstance(value, float):
            # References have no ASDF extension (crds certify refuses it): floats come back from
            # 20-character FITS cards.
            assert _get(reread, key) == pytest.approx(value, rel=1e-12), key
        else:
            assert _get(reread, key) == value, key
    for name, (dtype, array_shape) in arrays.items():
        array = getattr(reread, name)
        assert array.dtype.name == np.dtype(dtype).name, name
        assert array.shape == array_shape, name
        np.testing.assert_array_equal(array, getattr(model, name))
    if is_reference:
        names = {row.decode() if isinstance(row, bytes) else row for row in reread.dq_def["NAME"]}
        assert {"DO_NOT_USE", "OUTSIDE_SUBARRAY", "REFERENCE_PIXEL"} <= names


def test_ramp_read_times_and_subarray_map_round_trip(tmp_path):
    model = dm.TMTRampModel((1, 3, 4, 5))
    model.read_times = np.array([1.5, 3.0, 4.5])
    model.subarr_map = np.zeros((4, 5), np.uint16)
    model.subarr_map[1:3, 2:4] = 1
    model.save(tmp_path / "ramp.fits")
    with fits.open(tmp_path / "ramp.fits") as hdulist:
        assert hdulist["SCI"].header["BITPIX"] == 16 and hdulist["SCI"].header["BZERO"] == 32768
        assert hdulist["SCI"].header["NAXIS"] == 4
    reread = dm.open(tmp_path / "ramp.fits")
    np.testing.assert_array_equal(reread.read_times, [1.5, 3.0, 4.5])
    assert reread.subarr_map.sum() == 4


def test_every_model_has_crds_interface():
    for model_class in dm.MODEL_CLASSES.values():
        model = model_class()
        assert model.crds_observatory == "tmt"
        model.meta.instrument.name = "IRIS"
        model.meta.observation.date = "2025-06-01"
        parameters = model.get_crds_parameters()
        assert parameters["meta.instrument.name"] == "IRIS"
        assert parameters["meta.observation.date"] == "2025-06-01"
        assert all(isinstance(value, (str, int, float, bool)) for value in parameters.values())


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("meta.instrument.filter", "NOT_A_FILTER"),
        ("meta.instrument.detector", "IMG9"),
        ("meta.exposure.readout_mode", "FOWLER"),
        ("meta.exposure.nints", "three"),
        ("meta.exposure.nreads", 0),
        ("meta.observation.date", "01/06/2025"),
        ("meta.subarray.xstart", 0),
        ("meta.wcsinfo.crval2", 91.0),
        ("meta.cal_step.flat_field", "DONE"),
        ("meta.obsname", "IMG1-XYZ"),
    ],
)
def test_bad_metadata_assignment_raises(key, value):
    model = dm.IRISImageModel((2, 2))
    *parents, leaf = key.split(".")
    node = model
    for name in parents:
        node = getattr(node, name)
    with pytest.raises(Exception, match="validat|not one of|not of type|does not match|less than|greater"):
        setattr(node, leaf, value)


@pytest.mark.parametrize(("keyword", "value"), [("FILTER", "XYZ"), ("NINTS", "abc"), ("READPATT", "FOWLER")])
def test_bad_metadata_in_file_raises_naming_file(tmp_path, keyword, value):
    path = tmp_path / "bad.fits"
    model = dm.IRISImageModel((2, 2))
    model.meta.instrument.filter = "Kbb"
    model.save(path)
    with fits.open(path, mode="update") as hdulist:
        hdulist[0].header[keyword] = value
    with pytest.raises(dm.DataModelError, match=f"{path}: invalid metadata"):
        dm.open(path)


def _write_hdus(path, data, model_type="IRISImageModel", extname="SCI"):
    primary = fits.PrimaryHDU()
    if model_type is not None:
        primary.header["DATAMODL"] = model_type
    fits.HDUList([primary, fits.ImageHDU(data, name=extname)]).writeto(path)
    return path


def test_open_dispatches_on_datamodl(tmp_path):
    for model_class, shape, _ in MODEL_CASES:
        path = tmp_path / f"{model_class.__name__}.fits"
        model_class(shape).save(path)
        assert type(dm.open(path)) is model_class
    plain = _write_hdus(tmp_path / "plain.fits", np.ones((3, 3), np.float32))
    assert type(dm.open(plain)) is dm.IRISImageModel
    model = dm.IRISImageModel((2, 2))
    assert type(dm.open(model)) is dm.IRISImageModel
    model.save(tmp_path / "image.asdf")
    assert type(dm.open(tmp_path / "image.asdf")) is dm.IRISImageModel


def test_open_errors_name_file_and_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.fits: no such file"):
        dm.open(tmp_path / "missing.fits")

    foreign = _write_hdus(tmp_path / "foreign.fits", np.ones((3, 3), np.float32), model_type=None)
    with pytest.raises(dm.DataModelError, match="foreign.fits: no DATAMODL keyword"):
        dm.open(foreign)

    unknown = _write_hdus(tmp_path / "unknown.fits", np.ones((3, 3), np.float32), model_type="ImageModel")
    with pytest.raises(dm.DataModelError, match="unknown.fits: unknown DATAMODL 'ImageModel'"):
        dm.open(unknown)

    wrong_dtype = _write_hdus(tmp_path / "dtype.fits", np.ones((3, 3), np.float64))
    with pytest.raises(dm.DataModelError, match="dtype.fits: extension SCI .* must be float32, found float64"):
        dm.open(wrong_dtype)

    wrong_ndim = _write_hdus(tmp_path / "ndim.fits", np.ones((2, 3, 3), np.float32))
    with pytest.raises(dm.DataModelError, match="ndim.fits: extension SCI .* must have 2 dimensions, found 3"):
        dm.open(wrong_ndim)

    signed_ramp = _write_hdus(tmp_path / "ramp.fits", np.ones((1, 2, 3, 3), np.int16), model_type="TMTRampModel")
    with pytest.raises(dm.DataModelError, match="ramp.fits: extension SCI .* must be uint16, found int16"):
        dm.open(signed_ramp)

    no_sci = tmp_path / "nosci.fits"
    fits.PrimaryHDU(header=fits.Header({"DATAMODL": "IRISImageModel"})).writeto(no_sci)
    with pytest.raises(dm.DataModelError, match="nosci.fits: a IRISImageModel needs a SCI extension"):
        dm.open(no_sci)

    text = tmp_path / "notes.fits"
    text.write_text("not a FITS file")
    with pytest.raises(dm.DataModelError, match="notes.fits: neither a FITS nor an ASDF file"):
        dm.open(text)

    with pytest.raises(dm.DataModelError, match="cannot open"):
        dm.open(42)


@pytest.mark.parametrize("cut", [-2880, -10, 5000])
def test_open_rejects_truncated_fits(tmp_path, cut):
    good = tmp_path / "good.fits"
    dm.IRISImageModel((40, 40)).save(good)
    raw = good.read_bytes()
    corrupt = tmp_path / "corrupt.fits"
    corrupt.write_bytes(raw[:cut])
    with pytest.raises(dm.DataModelError, match="corrupt.fits: "):
        dm.open(corrupt)


def test_model_class_directly_checks_file(tmp_path):
    path = _write_hdus(tmp_path / "dtype.fits", np.ones((3, 3), np.float64))
    with pytest.raises(dm.DataModelError, match="must be float32"):
        dm.IRISImageModel(path)


def test_wrong_array_dimensionality_assignment_raises():
    model = dm.IRISImageModel((2, 2))
    with pytest.raises(ValueError, match="wrong number of dimensions"):
        model.data = np.zeros((2, 2, 2), np.float32)


def test_dq_flags_are_jwst_bits_and_unique():
    bits = [value for value in dqflags.pixel.values() if value]
    assert len(bits) == len(set(bits)) == 32
    assert all(value & (value - 1) == 0 for value in bits)
    assert dqflags.pixel["DO_NOT_USE"] == 1
    assert dqflags.pixel["SATURATED"] == 2
    assert dqflags.pixel["JUMP_DET"] == 4
    assert dqflags.pixel["OUTLIER"] == 16
    assert dqflags.pixel["NO_FLAT_FIELD"] == 2**18
    assert dqflags.pixel["REFERENCE_PIXEL"] == 2**31
    outside = dqflags.pixel["OUTSIDE_SUBARRAY"]
    assert [name for name, bit in dqflags.pixel.items() if bit == outside] == ["OUTSIDE_SUBARRAY"]


def test_dq_flag_names_round_trip():
    value = dqflags.names_to_flags(["DO_NOT_USE", "SATURATED", "REFERENCE_PIXEL"])
    assert value == 1 + 2 + 2**31
    assert dqflags.flags_to_names(value) == ["DO_NOT_USE", "SATURATED", "REFERENCE_PIXEL"]
    assert dqflags.names_to_flags("jump_det, outside_subarray") == 4 + 2**29
    assert dqflags.flags_to_names(0) == ["GOOD"]
    for name, bit in dqflags.pixel.items():
        assert dqflags.names_to_flags(dqflags.flags_to_names(bit)) == bit, name
    with pytest.raises(KeyError, match="unknown DQ flag name 'HOTT'"):
        dqflags.names_to_flags("HOTT")
    with pytest.raises(ValueError, match="does not fit"):
        dqflags.flags_to_names(2**32)
    table = dqflags.dq_def_table()
    assert len(table) == 32
    assert all(table["VALUE"] == 2 ** table["BIT"].astype(np.int64))


def test_import_is_lazy():
    import subprocess
    import sys

    code = (
        "import sys, liger_iris_pipeline as p; "
        "assert p.__version__; "
        "heavy = [m for m in ('stdatamodels', 'stpipe', 'crds', 'astropy', 'asdf') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_reference_type_registry_and_models_agree():
    from liger_iris_pipeline.datamodels import TMTReferenceFileModel
    from liger_iris_pipeline.reference_types import REFERENCE_TYPES

    for entry in REFERENCE_TYPES.values():
        model_class = dm.MODEL_CLASSES[entry.model]
        assert issubclass(model_class, TMTReferenceFileModel)
        assert model_class.schema_url.endswith(f"tmt_{entry.name}.schema")
        assert len(entry.keyword) <= 8 and entry.keyword.startswith("R_")
    reference_models = {name for name, cls in dm.MODEL_CLASSES.items() if issubclass(cls, TMTReferenceFileModel)}
    assert reference_models == {entry.model for entry in REFERENCE_TYPES.values()}
