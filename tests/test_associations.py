"""Level 2 associations: building, validation and the errors of bad ones."""

import json

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
