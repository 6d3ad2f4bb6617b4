"""The slicer's calibration references (slice geometry, wavelength solution): FITS round trip, registry, schema."""

import numpy as np
import pytest
from astropy.io import fits

from liger_iris_pipeline import datamodels as dm
from liger_iris_pipeline.crds_plugin import generate
from liger_iris_pipeline.reference_types import reference_type

REFERENCE_META = {
    "telescope": "TMT",
    "reftype": None,
    "useafter": "2024-01-01T00:00:00",
    "pedigree": "SIMULATION",
    "description": "test reference",
    "author": "test",
}


def _reference_meta(model, reftype, **instrument):
    for key, value in {**REFERENCE_META, "reftype": reftype}.items():
        setattr(model.meta, key, value)
    values = {"name": "IRIS", "detector": "IFU", "ifs_mode": "SLICER", "spaxel_scale": 0.05, "filter": "KN3"}
    for key, value in {**values, **instrument}.items():
        setattr(model.meta.instrument, key, value)
    return model


def slice_geometry(n_slices=3):
    model = dm.TMTSliceGeometryModel()
    table = np.zeros(n_slices, dtype=model.get_dtype("slices"))
    table["SLICE"] = np.arange(n_slices)
    table["YSTART"], table["YSTOP"] = 6, 500
    table["TRACE"][:, :3] = [[10.0 + 30 * index, 1e-3, -2e-6] for index in range(n_slices)]
    table["WIDTH"] = 24.0
    model.slices = table
    model.meta.slice_geometry.n_spaxels = 8
    model.meta.slice_geometry.spaxel_pixels = 3
    return _reference_meta(model, "SLICEGEO")


def wavecal(n_slices=3):
    model = dm.TMTWavecalModel()
    table = np.zeros(n_slices, dtype=model.get_dtype("solutions"))
    table["SLICE"] = np.arange(n_slices)
    table["COEFFS"][:, 0, :2] = [2.1, 1e-4]
    table["NLINES"] = 12
    table["RMS_PIX"], table["RMS_KMS"] = 0.02, 0.5
    model.solutions = table
    return _reference_meta(model, "WAVECAL")


@pytest.mark.parametrize(
    ("make", "attribute", "extname", "keywords"),
    [
        (slice_geometry, "slices", "SLICES", {"NSPAXEL": 8, "SPAXPIX": 3, "IFSMODE": "SLICER", "SPAXSCL": 0.05}),
        (wavecal, "solutions", "SOLUTIONS", {"IFSMODE": "SLICER", "SPAXSCL": 0.05, "FILTER": "KN3"}),
    ],
    ids=["slicegeo", "wavecal"],
)
def test_round_trip(tmp_path, make, attribute, extname, keywords):
    model = make()
    path = tmp_path / f"{extname.lower()}.fits"
    model.save(path)
    with fits.open(path) as hdulist:
        assert {key: hdulist[0].header[key] for key in keywords} == keywords
        assert hdulist[0].header["DATAMODL"] == type(model).__name__
        assert hdulist[extname].header["NAXIS2"] == 3
    with dm.open(path) as reopened:
        assert type(reopened) is type(model)
        assert reopened.get_primary_array_name() == attribute
        for name in getattr(model, attribute).dtype.names:
            np.testing.assert_array_equal(getattr(reopened, attribute)[name], getattr(model, attribute)[name])


def test_trace_and_solution_evaluate_with_numpy_polynomials():
    geometry, solutions = slice_geometry(), wavecal()
    x_left = np.polynomial.polynomial.polyval(100.0, geometry.slices["TRACE"][1])
    assert x_left == pytest.approx(40.0 + 0.1 - 0.02)
    assert np.polynomial.polynomial.polyval2d(2.0, 100.0, solutions.solutions["COEFFS"][0]) == pytest.approx(2.11)


@pytest.mark.parametrize("make", [slice_geometry, wavecal], ids=["slicegeo", "wavecal"])
def test_ifs_mode_and_scale_are_required(tmp_path, make):
    model = make()
    del model.meta.instrument.spaxel_scale
    with pytest.raises(Exception, match="spaxel_scale"):
        model.validate()


def test_registry_entries_select_on_the_ifs_keys():
    ifs_keys = ("META.INSTRUMENT.DETECTOR", "META.INSTRUMENT.IFS_MODE", "META.INSTRUMENT.SPAXEL_SCALE")
    assert reference_type("slicegeo").parkeys == ifs_keys
    assert reference_type("wavecal").parkeys == (*ifs_keys, "META.INSTRUMENT.FILTER")
    assert generate.parkey("wavecal")[0] == (*ifs_keys, "META.INSTRUMENT.FILTER")
    assert reference_type("slicegeo").model == "TMTSliceGeometryModel"
    assert reference_type("wavecal").model == "TMTWavecalModel"
    # a model's flat metadata carries the parkeys CRDS matches on
    parameters = slice_geometry().get_crds_parameters()
    assert parameters["meta.instrument.ifs_mode"] == "SLICER"
    assert parameters["meta.instrument.spaxel_scale"] == 0.05
