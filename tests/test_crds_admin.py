"""``tmt-crds-cache``: build into a new or empty directory, check, switch contexts atomically, ingest the
calibration pipelines' products all or nothing; every failure one line with a non-zero status."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from astropy.io import fits
from crds_helpers import crds_env, run

from liger_iris_pipeline.crds_plugin import INSTRUMENTS, diagnose, ingest
from liger_iris_pipeline.crds_plugin.generate import LATEST_SERIAL, context_references

BIN = Path(sys.executable).parent

N_REFERENCES = sum(len(context_references(instrument)) for instrument in INSTRUMENTS)
"""References the latest context names: every rule of every type of every instrument (27: IRIS's imager 9,
its IFS 9, Liger 9)."""

CONTEXT = f"tmt_{LATEST_SERIAL:04d}.pmap"
"""The checkout's context (and a new cache's)."""


def tmt_crds_cache(*args, env=None):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    result = subprocess.run(
        [str(BIN / "tmt-crds-cache"), *map(str, args)],
        capture_output=True,
        text=True,
        env={**environment, **(env or {})},
    )
    return result.returncode, result.stdout, result.stderr


def failure(status, stdout, stderr):
    """Check a failure: non-zero status, one stderr line, no traceback or crds log; return the message."""
    assert status != 0
    lines = stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr and "CRDS - " not in stderr, stderr
    assert lines[0].startswith("tmt-crds-cache: error: ")
    return lines[0][len("tmt-crds-cache: error: ") :]


def snapshot(root):
    """Every file of a tree with its content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("exists", [False, True], ids=["new", "empty"])
def test_build_makes_a_complete_cache_in_a_new_or_empty_directory(tmp_path, exists):
    target = tmp_path / "cache"
    if exists:
        target.mkdir()
    status, out, err = tmt_crds_cache("build", "--path", target, "--size", "32")
    assert status == 0, err
    assert f"{N_REFERENCES} reference file(s) built" in out
    status, out, err = tmt_crds_cache("check", "--path", target)
    assert status == 0, err
    assert out == f"{target}: CRDS context {CONTEXT} loads, its {N_REFERENCES} reference files are in the cache\n"
    assert sorted(p.name for p in (target / "references" / "tmt").iterdir()) == ["iris", "liger"]
    assert not [p for p in target.rglob("*") if p.name.startswith(".")]


def test_failures_are_one_line(small_reduction, tmp_path):
    missing = tmp_path / "nowhere"
    # --path is named as the path given, not as the CRDS_PATH the command sets internally.
    assert failure(*tmt_crds_cache("check", "--path", missing)) == (
        f"the CRDS cache {missing}: no such directory; give the --path of a TMT CRDS cache, "
        f"or make one there with `tmt-crds-cache build --path {missing}`"
    )
    partial = tmp_path / "partial"
    shutil.copytree(small_reduction["cache"] / "config", partial / "config")
    assert failure(*tmt_crds_cache("build", "--path", partial)).startswith(
        f"the CRDS cache {partial}: not a TMT CRDS cache (no mappings/tmt)"
    )
    cache = shutil.copytree(small_reduction["cache"], tmp_path / "cache")
    (cache / "references" / "tmt" / "iris" / "tmt_iris_mask_0001.fits").unlink()
    assert failure(*tmt_crds_cache("check", "--path", cache)) == (
        f"{cache / 'references' / 'tmt' / 'iris' / 'tmt_iris_mask_0001.fits'}: missing "
        f"(1 of the {N_REFERENCES} references "
        f"CRDS context {CONTEXT} names are); build them with `tmt-crds-cache build --path {cache}`"
    )
    assert failure(*tmt_crds_cache("context", "--path", cache, "tmt_0007.pmap")) == (
        f"{cache}: no CRDS context tmt_0007.pmap in mappings/tmt (it has: tmt_0001.pmap, tmt_0002.pmap, tmt_0003.pmap)"
    )
    assert failure(*tmt_crds_cache("build", "--size", "x")) == ("argument --size: invalid int value: 'x' (see --help)")


def _ingest_failure(cache, *files):
    before = snapshot(cache)
    message = failure(*tmt_crds_cache("ingest", "--path", cache, *files))
    assert snapshot(cache) == before
    return message


def test_ingest_refuses_bad_files_and_leaves_the_cache_unchanged(small_reduction, tmp_path):
    cache = shutil.copytree(small_reduction["cache"], tmp_path / "cache")
    text = tmp_path / "notes.fits"
    text.write_text("not FITS")
    assert _ingest_failure(cache, text).startswith(f"{text}: not a FITS file")
    science = small_reduction["rates"]["science"]
    assert _ingest_failure(cache, science).startswith(f"{science}: REFTYPE=None is not a reference type")
    dark = cache / "references" / "tmt" / "iris" / "tmt_iris_dark_0001.fits"
    bad = tmp_path / "bad_dark.fits"
    with fits.open(dark) as hdulist:
        hdulist[0].header["DETECTOR"] = "IMG9"
        hdulist[0].header["USEAFTER"] = "2025-01-01T00:00:00"
        hdulist.writeto(bad, checksum=True)
    message = _ingest_failure(cache, bad)
    assert message.startswith(f"{bad}: crds certify against {CONTEXT} (reference file): ")
    assert "IMG9" in message


def test_failure_after_the_files_are_in_place_removes_them(small_reduction, tmp_path, monkeypatch):
    cache = shutil.copytree(small_reduction["cache"], tmp_path / "cache")
    new = tmp_path / "new_dark.fits"
    with fits.open(cache / "references" / "tmt" / "iris" / "tmt_iris_dark_0001.fits") as hdulist:
        hdulist[0].header["USEAFTER"] = "2025-01-01T00:00:00"
        hdulist.writeto(new, checksum=True)
    before = snapshot(cache)

    def broken(*args):
        raise ingest.IngestError("simulated failure")

    monkeypatch.setattr(ingest, "_check_selection", broken)
    for key in list(os.environ):
        if key.startswith("CRDS_"):
            monkeypatch.delenv(key)
    with pytest.raises(ingest.IngestError, match="simulated failure"):
        ingest.ingest([new], cache, log=lambda line: None)
    assert snapshot(cache) == before


def test_context_switch_is_atomic_and_validated(small_reduction, tmp_path, monkeypatch):
    cache = shutil.copytree(small_reduction["cache"], tmp_path / "cache")
    config = cache / "config" / "tmt" / "server_config"
    before = config.read_bytes()
    renames = []
    real_replace = os.replace

    def recording_replace(source, target):
        renames.append((Path(source), Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", recording_replace)
    (cache / "mappings" / "tmt" / "tmt_0009.pmap").write_text("header = {\n")  # a context that does not load
    with pytest.raises(diagnose.CrdsSetupError, match=r"tmt_0009.pmap: CRDS mapping does not load"):
        ingest.set_context(cache, "tmt_0009.pmap")
    assert config.read_bytes() == before and not renames
    shutil.copy(cache / "mappings" / "tmt" / "tmt_0001.pmap", cache / "mappings" / "tmt" / "tmt_0009.pmap")
    run(
        "crds refactor2 set_header --rmaps tmt_0009.pmap --header-key name --header-value tmt_0009.pmap "
        "--inplace --fixers",
        crds_env(cache, tmp_path),
        cache / "mappings" / "tmt",
    )
    ingest.set_context(cache, "tmt_0009.pmap")
    assert [(source.parent, target) for source, target in renames] == [(config.parent, config)]
    assert diagnose.read_server_config(cache)["latest_context"] == "tmt_0009.pmap"
    assert sorted(p.name for p in config.parent.iterdir()) == ["ref_cache_subdir_mode", "server_config"]


@pytest.mark.slow
def test_ingest_calibration_pipeline_products(small_reduction, tmp_path, monkeypatch):
    """Master dark and flat from ``tmtrun master_dark.cfg`` / ``preprocess_flatfield.cfg``, ingested together."""
    from liger_iris_pipeline import simulate
    from liger_iris_pipeline.associations.asn import main as tmt_asn
    from liger_iris_pipeline.cli.tmtrun import main as tmtrun

    cache = shutil.copytree(small_reduction["cache"], tmp_path / "cache")
    for key in list(os.environ):
        if key.startswith("CRDS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRDS_PATH", str(cache))
    manifest = simulate.simulate_dataset(
        tmp_path / "level0", size=64, nreads=5, n_science=0, n_sky=0, n_darks=2, n_flats=2, n_stars=0
    )
    level1 = tmp_path / "level1"
    for ramp in manifest["dark"] + manifest["flat"]:
        assert tmtrun(["detector1.cfg", ramp, f"--output_dir={level1}", "--log-level=WARNING"]) == 0
    rates = {kind: sorted(str(p) for p in level1.glob(f"sim_{kind}_*_rate.fits")) for kind in ("dark", "flat")}
    for kind in rates:
        assert tmt_asn([*rates[kind], "-o", str(tmp_path / f"{kind}s.json")]) == 0
    useafter = "2025-01-01T00:00:00"
    assert (
        tmtrun(
            [
                "master_dark.cfg",
                str(tmp_path / "darks.json"),
                f"--output_dir={tmp_path}",
                f"--steps.combine_darks.useafter={useafter}",
                "--log-level=WARNING",
            ]
        )
        == 0
    )
    assert (
        tmtrun(
            [
                "preprocess_flatfield.cfg",
                str(tmp_path / "flats.json"),
                f"--output_dir={tmp_path}",
                f"--useafter={useafter}",
                "--log-level=WARNING",
            ]
        )
        == 0
    )
    dark, flat = tmp_path / "sim_dark_001_dark.fits", tmp_path / "sim_flat_001_flat.fits"
    env = crds_env(cache, tmp_path)
    output = run(f"tmt-crds-cache ingest {dark} {flat}", env, tmp_path).stdout
    refdir = cache / "references" / "tmt" / "iris"
    # The next free serials: the checkout's context has the IFS detector's dark and flat as _0002.
    assert f"ingested {dark} as {refdir / 'tmt_iris_dark_0003.fits'}" in output
    assert f"ingested {flat} as {refdir / 'tmt_iris_flat_0003.fits'}" in output
    assert (
        "tmt_0004.pmap (tmt_iris_0004.imap, tmt_iris_dark_0003.rmap, tmt_iris_flat_0003.rmap) is now the context"
        in output
    )
    info = diagnose.read_server_config(cache)
    assert [info[key] for key in ingest.CONTEXT_KEYS] == ["tmt_0004.pmap"] * 3
    # The stock tools see the new context as the cache's, and need no CRDS_OBSERVATORY.
    del env["CRDS_OBSERVATORY"]
    assert "Effective Context = 'tmt_0004.pmap'" in run("crds list --status", env, tmp_path).stdout
    run("crds certify crds://tmt_0004.pmap", env, tmp_path)
    # Frames observed before the new USEAFTER keep the old references, later ones get the new.
    from liger_iris_pipeline.cli.crds_cache import example_science_file

    example_science_file(tmp_path / "early.fits", "2024-06-01")
    example_science_file(tmp_path / "late.fits", "2025-06-01")
    run("crds bestrefs --files early.fits late.fits --types dark flat --update-bestrefs", env, tmp_path)
    assert [fits.getval(tmp_path / "early.fits", key) for key in ("R_DARK", "R_FLAT")] == [
        "crds://tmt_iris_dark_0001.fits",
        "crds://tmt_iris_flat_0001.fits",
    ]
    assert [fits.getval(tmp_path / "late.fits", key) for key in ("R_DARK", "R_FLAT")] == [
        "crds://tmt_iris_dark_0003.fits",
        "crds://tmt_iris_flat_0003.fits",
    ]
    # Ingesting the same files again makes the next versions.
    output = run(f"tmt-crds-cache ingest --path {cache} {dark}", env, tmp_path).stdout
    assert "tmt_0005.pmap (tmt_iris_0005.imap, tmt_iris_dark_0004.rmap) is now the context" in output


def test_contexts_generated_are_the_checkout_ones(tmp_path):
    from crds_helpers import SOURCE_CACHE

    from liger_iris_pipeline.crds_plugin.generate import write_contexts, write_first_context

    written = write_contexts(tmp_path / "all")
    assert written[0].name == CONTEXT
    for path in written:
        assert path.read_text() == (SOURCE_CACHE / "mappings" / "tmt" / path.name).read_text(), path.name
    assert sorted(p.name for p in written) == sorted(p.name for p in (SOURCE_CACHE / "mappings" / "tmt").iterdir())
    first = write_first_context(tmp_path / "first")
    assert first[0].name == "tmt_0001.pmap"
    for path in first:
        assert path.read_text() == (SOURCE_CACHE / "mappings" / "tmt" / path.name).read_text(), path.name


@pytest.mark.slow
def test_build_without_a_checkout_generates_the_contexts(tmp_path):
    target = tmp_path / "cache"
    code = (
        "import liger_iris_pipeline.crds_plugin as p\np.CHECKOUT_CACHE = '/nonexistent/crds_cache'\n"
        "from liger_iris_pipeline.cli.crds_cache import main\n"
        f"raise SystemExit(main(['build', '--path', {str(target)!r}, '--size', '32']))"
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment)
    assert result.returncode == 0, result.stderr
    assert f"new TMT CRDS cache in {target} (contexts generated)" in result.stdout
    status, out, err = tmt_crds_cache("check", "--path", target)
    assert status == 0, err
    assert diagnose.read_server_config(target)["latest_context"] == CONTEXT
