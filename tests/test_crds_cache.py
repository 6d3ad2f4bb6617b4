"""The crds_cache/ rules, the reference builder, and selection through the plain crds tools."""

import ast
import importlib
import pkgutil

import pytest
from crds_helpers import SOURCE_CACHE, build_tiny_cache, copy_cache, crds_env, run, science_model

import liger_iris_pipeline
from liger_iris_pipeline.cli import crds_cache
from liger_iris_pipeline.crds_plugin import INSTRUMENTS, REFERENCE_TYPES, generate, register
from liger_iris_pipeline.crds_plugin.generate import LATEST_SERIAL, context_references, context_types
from liger_iris_pipeline.reference_types import instrument_types
from liger_iris_pipeline.stpipe import TMTStep

MAPPINGS = SOURCE_CACHE / "mappings" / "tmt"
CONTEXT = f"tmt_{LATEST_SERIAL:04d}.pmap"
N_REFERENCES = sum(len(context_references(instrument)) for instrument in INSTRUMENTS)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    return build_tiny_cache(tmp_path_factory.mktemp("cache") / "crds_cache")


def _load(path):
    """Return the header dict and selector text of a mapping file."""
    text = path.read_text()
    header_text = text.split("selector")[0].split("=", 1)[1]
    return ast.literal_eval(header_text.strip()), text


def _imap_types(instrument="iris"):
    """The types of the imap the latest context names for an instrument."""
    pmap = (MAPPINGS / CONTEXT).read_text()
    imap = (MAPPINGS / ast.literal_eval(pmap.split("selector =", 1)[1].strip())[instrument.upper()]).read_text()
    return {name.lower() for name in ast.literal_eval(imap.split("selector =", 1)[1].strip())}


def test_every_rmap_parkey_is_a_datamodel_path():
    for rmap in MAPPINGS.glob("*.rmap"):
        header, _ = _load(rmap)
        for group in header["parkey"]:
            for key in group:
                assert generate.schema_node("IRISImageModel", key) is not None, f"{rmap.name}: {key}"
        assert header["parkey"] == generate.parkey(header["filekind"].lower())


def _step_classes():
    for info in pkgutil.walk_packages(liger_iris_pipeline.__path__, "liger_iris_pipeline."):
        if info.name.endswith("__main__") or info.name.startswith("liger_iris_pipeline.crds_plugin.tmt"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:
            continue
    pending, found = [TMTStep], []
    while pending:
        for sub in pending.pop().__subclasses__():
            found.append(sub)
            pending.append(sub)
    return [cls for cls in found if cls.__module__.startswith("liger_iris_pipeline.")]


def test_imap_types_are_the_types_steps_ask_for():
    for instrument in INSTRUMENTS:
        expected = {entry.name for entry in context_types(instrument)}
        assert _imap_types(instrument) == expected, instrument
        assert expected <= {entry.name for entry in instrument_types(instrument)}
    for step in _step_classes():
        assert set(step.reference_file_types) <= set(REFERENCE_TYPES), step


def test_builder_builds_every_named_file_once(tiny_cache):
    from astropy.io import fits

    planned = crds_cache.planned_references(tiny_cache)
    for instrument in INSTRUMENTS:
        mine = [item for item in planned if item[1] == instrument]
        assert sorted(name for name, *_ in mine) == sorted(context_references(instrument))
        assert {kind for _, _, kind, _, _ in mine} == {entry.name for entry in context_types(instrument)}
        refdir = tiny_cache / "references" / "tmt" / instrument
        assert sorted(p.name for p in refdir.iterdir()) == sorted(name for name, *_ in mine)
        for name, _, _, parkeys, _ in mine:  # the imager's and the IFS detector's, each its own
            assert fits.getval(refdir / name, "DETECTOR") == parkeys["META.INSTRUMENT.DETECTOR"], name
        assert all(name.startswith(f"tmt_{instrument}_") for name, *_ in mine)
    files = sorted((tiny_cache / "references" / "tmt").rglob("*.fits"))
    mtimes = {p: p.stat().st_mtime_ns for p in files}
    assert crds_cache.build(tiny_cache, size=64, log=lambda line: None) == []
    assert {p: p.stat().st_mtime_ns for p in files} == mtimes


@pytest.mark.slow
def test_builder_force_and_cli(tmp_path, capsys):
    copy_cache(tmp_path)
    assert crds_cache.main(["build", "--path", str(tmp_path), "--size", "32"]) == 0
    assert f"{N_REFERENCES} reference file(s) built" in capsys.readouterr().out
    assert crds_cache.main(["build", "--path", str(tmp_path), "--size", "32"]) == 0
    assert "already built" in capsys.readouterr().out
    written = crds_cache.build(tmp_path, size=32, force=True, log=lambda line: None)
    assert len(written) == N_REFERENCES
    # Staging happens in a temporary subdirectory that is gone afterwards.
    for instrument in INSTRUMENTS:
        assert all(p.suffix == ".fits" for p in (tmp_path / "references" / "tmt" / instrument).iterdir())


def test_built_references_have_full_headers(tiny_cache):
    from astropy.io import fits

    for path in (tiny_cache / "references" / "tmt").rglob("*.fits"):
        header = fits.getheader(path)
        for keyword in (
            "TELESCOP",
            "INSTRUME",
            "DETECTOR",
            "SUBARRAY",
            "REFTYPE",
            "USEAFTER",
            "PEDIGREE",
            "DESCRIP",
            "AUTHOR",
        ):
            assert keyword in header, f"{path.name}: {keyword}"
        assert header["REFTYPE"].lower() == path.name.split("_")[2]
        assert header["INSTRUME"].lower() == path.name.split("_")[1] == path.parent.name
        assert header["TELESCOP"] == {"iris": "TMT", "liger": "KECK"}[path.parent.name]
        with fits.open(path) as hdulist:
            assert "ASDF" not in hdulist


@pytest.mark.slow
def test_crds_cli_on_the_cache(tiny_cache, tmp_path):
    env = crds_env(tiny_cache, tmp_path)
    status = run("crds list --status", env, tmp_path).stdout
    assert f"Effective Context = '{CONTEXT}'" in status and "Readonly Cache = True" in status
    mappings = run("crds list --mappings", env, tmp_path).stdout.split()
    assert "tmt_iris_flat_0002.rmap" in mappings and "tmt_iris_slicegeo_0001.rmap" in mappings
    refs = tiny_cache / "references" / "tmt"
    certify = run(f"crds certify {refs}/*/*.fits --comparison-context {CONTEXT}", env, tmp_path).stdout
    assert "0 errors" in certify
    assert "0 errors" in run(f"crds certify {tiny_cache}/mappings/tmt/{CONTEXT}", env, tmp_path).stdout
    crds_cache.example_science_file(tmp_path / "sci.fits", "2024-06-01")
    # The imager's types: slicegeo and wavecal have rules for the IFS detector only.
    imager_types = [entry for entry in context_types("iris") if entry.name not in ("slicegeo", "wavecal")]
    run(
        f"crds bestrefs --files sci.fits --types {' '.join(e.name for e in imager_types)} --update-bestrefs",
        env,
        tmp_path,
    )
    from astropy.io import fits

    header = fits.getheader(tmp_path / "sci.fits")
    for entry in imager_types:
        assert header[entry.keyword] == f"crds://tmt_iris_{entry.name}_0001.fits"


def test_certify_reports_bad_references(tiny_cache, tmp_path):
    from astropy.io import fits

    bad = tmp_path / "tmt_iris_dark_0009.fits"
    with fits.open(tiny_cache / "references" / "tmt" / "iris" / "tmt_iris_dark_0001.fits") as hdulist:
        hdulist[0].header["DETECTOR"] = "IMG9"
        hdulist[0].header["USEAFTER"] = "yesterday"
        hdulist["SCI"].data = hdulist["SCI"].data[None]
        hdulist.writeto(bad)
    out = run(
        f"crds certify ./{bad.name} --comparison-context tmt_0001.pmap",
        crds_env(tiny_cache, tmp_path),
        tmp_path,
        check=False,
    ).stdout
    assert "IMG9" in out and "yesterday" in out.lower() and "ndim" in out.lower()


# A context with several entries per parkey, to show each one takes part in the selection.
_SELECTION_RMAPS = {
    "dark": """{
    ('IMG1', 'N/A', 'N/A') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_dark_0901.fits',
                                        '2025-01-01 00:00:00' : 'tmt_iris_dark_0902.fits'}),
    ('IMG2', 'N/A', 'N/A') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_dark_0903.fits'}),
    ('IMG1', 'SUBARRAY1', 'N/A') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_dark_0904.fits'}),
    ('IMG1', 'N/A', 'CDS') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_dark_0905.fits'}),
}""",
    "flat": """{
    ('IMG1', 'N/A', 'N/A') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_flat_0901.fits'}),
    ('IMG1', 'Kbb', 'N/A') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_flat_0902.fits'}),
    ('IMG1', 'N/A', 'MASK1') : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_flat_0903.fits'}),
}""",
    "mask": """{
    ('IMG1',) : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_mask_0901.fits'}),
    ('IMG3',) : UseAfter({'2024-01-01 00:00:00' : 'tmt_iris_mask_0902.fits'}),
}""",
}


@pytest.fixture(scope="module")
def selection_context(tmp_path_factory):
    cache = copy_cache(tmp_path_factory.mktemp("selection"))
    mappings = cache / "mappings" / "tmt"
    for filekind, selector in _SELECTION_RMAPS.items():
        text = (mappings / f"tmt_iris_{filekind}_0001.rmap").read_text()
        text = text.split("selector =")[0].replace("_0001.rmap", "_0901.rmap") + f"selector = Match({selector})\n"
        (mappings / f"tmt_iris_{filekind}_0901.rmap").write_text(text)
    imap = (mappings / "tmt_iris_0001.imap").read_text().replace("tmt_iris_0001.imap", "tmt_iris_0901.imap")
    for filekind in _SELECTION_RMAPS:
        imap = imap.replace(f"tmt_iris_{filekind}_0001.rmap", f"tmt_iris_{filekind}_0901.rmap")
    (mappings / "tmt_iris_0901.imap").write_text(imap)
    pmap = (mappings / "tmt_0001.pmap").read_text().replace("tmt_0001.pmap", "tmt_0901.pmap")
    (mappings / "tmt_0901.pmap").write_text(pmap.replace("tmt_iris_0001.imap", "tmt_iris_0901.imap"))
    register()
    from crds.refactoring.checksum import update_checksum

    for path in mappings.glob("*0901.*map"):
        update_checksum(str(path))
    return cache


@pytest.mark.parametrize(
    ("reftype", "values", "expected"),
    [
        ("dark", {}, "tmt_iris_dark_0901.fits"),
        ("dark", {"date": "2025-03-01"}, "tmt_iris_dark_0902.fits"),
        ("dark", {"date": "2024-12-31", "time": "23:59:59"}, "tmt_iris_dark_0901.fits"),
        ("dark", {"detector": "IMG2"}, "tmt_iris_dark_0903.fits"),
        ("dark", {"subarray": "SUBARRAY1"}, "tmt_iris_dark_0904.fits"),
        ("dark", {"readout_mode": "CDS"}, "tmt_iris_dark_0905.fits"),
        ("flat", {"filter": "H"}, "tmt_iris_flat_0901.fits"),
        ("flat", {"filter": "Kbb"}, "tmt_iris_flat_0902.fits"),
        ("flat", {"filter": "H", "pupil": "MASK1"}, "tmt_iris_flat_0903.fits"),
        ("mask", {"detector": "IMG3"}, "tmt_iris_mask_0902.fits"),
    ],
)
def test_selection_by_each_parkey_and_date(selection_context, monkeypatch, reftype, values, expected):
    import crds

    register()
    monkeypatch.setenv("CRDS_PATH", str(selection_context))
    model = science_model(**values)
    best = crds.getrecommendations(
        model.get_crds_parameters(), reftypes=[reftype], context="tmt_0901.pmap", observatory="tmt"
    )
    assert best[reftype] == expected


def test_selection_before_first_useafter_finds_nothing(selection_context, monkeypatch):
    import crds

    register()
    monkeypatch.setenv("CRDS_PATH", str(selection_context))
    best = crds.getrecommendations(
        science_model(date="2023-01-01").get_crds_parameters(),
        reftypes=["dark"],
        context="tmt_0901.pmap",
        observatory="tmt",
    )
    assert best["dark"].startswith("NOT FOUND")
