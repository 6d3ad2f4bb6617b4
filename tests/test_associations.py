"""Level 2 and Level 3 associations: building, validation and the errors of bad ones."""

import json
import re

import pytest

from liger_iris_pipeline.associations import AssociationError, load_asn, make_asn
from liger_iris_pipeline.associations.asn import main as tmt_asn
from liger_iris_pipeline.datamodels import IRISImageModel


@pytest.fixture
def files(tmp_path):
    names = ["a_rate.fits", "b_rate.fits", "sky1_rate.fits", "sky2_rate.fits"]
    for name in names:
        IRISImageModel((4, 4)).save(tmp_path / name)
    return [tmp_path / name for name in names]


def test_make_and_load_round_trip(tmp_path, files):
    asn = tmp_path / "sub" / "asn.json"
    asn.parent.mkdir()
    document = make_asn(files[:2], files[2:], output=asn)
    assert document["asn_type"] == "image2"
    assert [p["name"] for p in document["products"]] == ["a", "b"]
    assert document["products"][0]["members"][0] == {"expname": "../a_rate.fits", "exptype": "science"}
    products = load_asn(asn)
    assert [p.name for p in products] == ["a", "b"]
    assert products[1].science.resolve() == files[1].resolve()
    assert [b.resolve() for b in products[0].background] == [f.resolve() for f in files[2:]]


def test_command_line(tmp_path, files, capsys):
    out = tmp_path / "asn.json"
    assert tmt_asn([str(files[0]), "-b", str(files[2]), "-o", str(out), "--product-name", "obs1"]) == 0
    assert load_asn(out)[0].name == "obs1"
    assert tmt_asn([str(tmp_path / "missing_rate.fits"), "-o", str(tmp_path / "x.json")]) == 1
    assert "missing_rate.fits" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not a JSON association"),
        ({"products": []}, "'asn_type' is a required property"),
        ({"asn_type": "image3", "products": [{"name": "x", "members": []}]}, "at asn_type: 'image3' is not one of"),
        ({"asn_type": "image2", "products": []}, "at products"),
        (
            {
                "asn_type": "image2",
                "products": [{"name": "x", "members": [{"expname": "a_rate.fits", "exptype": "dark"}]}],
            },
            "products/0/members/0/exptype",
        ),
        (
            {
                "asn_type": "image2",
                "products": [{"name": "x", "members": [{"expname": "sky1_rate.fits", "exptype": "background"}]}],
            },
            "exactly one science member, found 0",
        ),
        (
            {
                "asn_type": "image2",
                "products": [{"name": "x", "members": [{"expname": "gone.fits", "exptype": "science"}]}],
            },
            "member file\\(s\\) not found: .*gone.fits",
        ),
    ],
)
def test_bad_associations_name_file_and_problem(tmp_path, files, document, message):
    path = tmp_path / "bad.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    with pytest.raises(AssociationError, match=f"bad.json: .*{message}"):
        load_asn(path)


def test_missing_association_file(tmp_path):
    with pytest.raises(AssociationError, match="no such association file"):
        load_asn(tmp_path / "none.json")


# Level 3 (image3) associations: the calibrated frames of one target and filter -> one product.


@pytest.fixture
def cal_frames(tmp_path):
    import numpy as np

    from liger_iris_pipeline import datamodels

    paths = []
    for index, filter_name in enumerate(["Kbb", "Kbb", "Kbb", "H"]):
        model = datamodels.IRISImageModel(np.zeros((8, 8), np.float32))
        model.meta.processing_level = 2
        model.meta.instrument.name = "IRIS"
        model.meta.instrument.filter = filter_name
        model.meta.target.name = "M 31"
        path = tmp_path / f"exp{index}_cal.fits"
        model.save(path)
        paths.append(path)
    return paths


def test_level3_command_line_writes_one_product(tmp_path, cal_frames, capsys):
    from liger_iris_pipeline.associations.level3 import read_level3_asn
    from liger_iris_pipeline.datamodels.library import ModelLibrary

    out = tmp_path / "l3" / "asn.json"
    out.parent.mkdir()
    assert tmt_asn([*map(str, cal_frames[:3]), "--asn-type", "image3", "-o", str(out)]) == 0
    document = read_level3_asn(out)
    assert document["asn_type"] == "image3"
    assert document["products"][0]["name"] == "M_31_Kbb"
    assert [m["expname"] for m in document["products"][0]["members"]] == [f"../exp{i}_cal.fits" for i in range(3)]
    assert len(ModelLibrary(out)) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("filter", r"different filters \(H, Kbb\)"),
        ("level", "must be a Level 2 \\(calibrated, _cal\\) frame, PROCLEVL is 1"),
        ("ramp", "must be a calibrated imager frame \\(IRISImageModel\\), this file is a TMTRampModel"),
        ("background", "has no background members"),
    ],
)
def test_level3_command_line_refuses_bad_members(tmp_path, cal_frames, capsys, change, message):
    import numpy as np

    from liger_iris_pipeline import datamodels

    frames = [str(path) for path in cal_frames[:2]]
    extra = []
    if change == "filter":
        frames.append(str(cal_frames[3]))
    elif change == "level":
        model = datamodels.open(cal_frames[0])
        model.meta.processing_level = 1
        model.save(tmp_path / "raw_rate.fits")
        model.close()
        frames.append(str(tmp_path / "raw_rate.fits"))
    elif change == "ramp":
        ramp = datamodels.TMTRampModel(np.zeros((1, 2, 4, 4), np.uint16))
        ramp.save(tmp_path / "x_uncal.fits")
        frames.append(str(tmp_path / "x_uncal.fits"))
    else:
        extra = ["-b", str(cal_frames[2])]
    out = tmp_path / "asn.json"
    assert tmt_asn([*frames, *extra, "--asn-type", "image3", "-o", str(out)]) == 1
    assert not out.exists()
    assert re.search(message, capsys.readouterr().err)


def test_level3_association_validation(tmp_path):
    from liger_iris_pipeline.associations.level3 import read_level3_asn

    path = tmp_path / "asn.json"
    path.write_text(
        json.dumps(
            {"asn_type": "image3", "products": [{"name": "x", "members": [{"expname": "a", "exptype": "background"}]}]}
        )
    )
    with pytest.raises(
        AssociationError, match=r"asn.json: invalid Level 3 association at products/0/members/0/exptype"
    ):
        read_level3_asn(path)
