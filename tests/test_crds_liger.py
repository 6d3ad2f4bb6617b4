"""Liger in CRDS: its own imap, rmaps and references in the ``tmt`` cache, selected by INSTRUME; a Liger
data set reduced Level 0 -> 2 by ``tmtrun`` with references from CRDS only, compared with its truth."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from crds_helpers import SOURCE_CACHE, build_tiny_cache, science_model
from level1_helpers import assert_liger_frames_match_truth

from liger_iris_pipeline import datamodels, simulate
from liger_iris_pipeline.cli.crds_cache import SEED, new_reference
from liger_iris_pipeline.crds_plugin import INSTRUMENTS, register
from liger_iris_pipeline.crds_plugin.generate import first_context_types
from liger_iris_pipeline.crds_plugin.ingest import ingest

SIZE = 256
BIN = Path(sys.executable).parent


def _best(context, cache, monkeypatch, **values):
    import crds

    register()
    monkeypatch.setenv("CRDS_PATH", str(cache))
    parameters = science_model(**values).get_crds_parameters()
    instrument = values.get("instrument", "IRIS").lower()
    reftypes = [entry.name for entry in first_context_types(instrument)]
    return crds.getrecommendations(parameters, reftypes=reftypes, context=context, observatory="tmt")


def test_each_instrument_selects_only_its_own_references(monkeypatch):
    assert INSTRUMENTS == ("iris", "liger")
    for instrument in INSTRUMENTS:
        best = _best("tmt_0001.pmap", SOURCE_CACHE, monkeypatch, instrument=instrument.upper())
        expected = {entry.name: f"tmt_{instrument}_{entry.name}_0001.fits" for entry in first_context_types(instrument)}
        assert best == expected


@pytest.fixture(scope="module")
def liger_cache(tmp_path_factory):
    """A cache of both instruments' references at SIZE x SIZE (the Liger ones from the Liger detector)."""
    return build_tiny_cache(tmp_path_factory.mktemp("liger_cache") / "crds_cache", size=SIZE)


def _tmtrun(*args, env):
    result = subprocess.run([BIN / "tmtrun", *map(str, args)], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.fixture(scope="module")
def liger_reduction(liger_cache, tmp_path_factory):
    work = tmp_path_factory.mktemp("liger_e2e")
    level0, level1 = work / "level0", work / "level1"
    level0.mkdir()
    # The cache's Liger detector: the references the rules select describe it.
    detector = simulate.make_detector((SIZE, SIZE), seed=SEED, instrument="liger")
    # No galaxy: at 0.01 arcsec/pixel its wings would cover most of this small field.
    scene = simulate.Scene.random(n_stars=40, seed=5, ra=150.1, dec=2.2, field=SIZE * 0.01, n_extended=0)
    ramps, truths = {"science": [], "sky": []}, []
    for index in range(2):
        ramp, truth = simulate.simulate_exposure(
            scene, detector, nreads=10, seed=40 + index, dither_arcsec=(0.1 * index, 0)
        )
        ramps["science"].append(level0 / f"liger_science_{index + 1}_uncal.fits")
        truths.append(truth)
        sky, _ = simulate.simulate_sky_exposure(detector, nreads=10, seed=50 + index)
        ramps["sky"].append(level0 / f"liger_sky_{index + 1}_uncal.fits")
        for model, path in ((ramp, ramps["science"][-1]), (sky, ramps["sky"][-1])):
            model.meta.filename = path.name
            model.save(path)
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    env["CRDS_PATH"] = str(liger_cache)
    for path in ramps["science"] + ramps["sky"]:
        _tmtrun("detector1.cfg", path, f"--output_dir={level1}", env=env)
    rates = {kind: [level1 / p.name.replace("_uncal", "_rate") for p in paths] for kind, paths in ramps.items()}
    asn = level1 / "image2_asn.json"
    subprocess.run([BIN / "tmt-asn", *rates["science"], "-b", *rates["sky"], "-o", asn], check=True)
    _tmtrun("image2.cfg", asn, f"--output_dir={work / 'level2'}", env=env)
    calibrated = [datamodels.open(work / "level2" / f"liger_science_{index + 1}_cal.fits") for index in range(2)]
    return calibrated, truths, [datamodels.open(path) for path in rates["science"]]


@pytest.mark.slow
def test_liger_reduced_through_crds_matches_truth(liger_reduction):
    calibrated, truths, rates = liger_reduction
    for rate in rates:
        assert rate.meta.instrument.name == "LIGER"
        for name in ("mask", "nonlin", "saturation", "readnoise", "gain"):
            assert getattr(rate.meta.ref_file, name).name == f"crds://tmt_liger_{name}_0001.fits"
    for frame in calibrated:
        assert frame.meta.ref_file.flat.name == "crds://tmt_liger_flat_0001.fits"
        assert frame.meta.ref_file.crds.context_used == "tmt_0003.pmap"
    assert_liger_frames_match_truth(calibrated, truths)


@pytest.mark.slow
def test_ingest_a_liger_reference_changes_only_liger_selection(liger_cache, tmp_path, monkeypatch):
    cache = shutil.copytree(liger_cache, tmp_path / "cache")
    dark = tmp_path / "liger_dark.fits"
    new_reference("dark", dark, "2025-01-01T00:00:00", size=SIZE, instrument="liger")
    lines = []
    for key in list(os.environ):
        if key.startswith("CRDS_"):
            monkeypatch.delenv(key)
    iris_references = sorted((cache / "references" / "tmt" / "iris").iterdir())
    assert ingest([dark], cache, log=lines.append) == "tmt_0004.pmap"
    refdir = cache / "references" / "tmt" / "liger"
    # The checkout's context kept Liger's imap of tmt_0002: the next one is tmt_liger_0003.imap.
    assert lines == [
        f"ingested {dark} as {refdir / 'tmt_liger_dark_0002.fits'}",
        f"tmt_0004.pmap (tmt_liger_0003.imap, tmt_liger_dark_0002.rmap) is now the context of {cache} "
        "(was tmt_0003.pmap)",
    ]
    late = {"date": "2025-06-01"}
    assert _best("tmt_0004.pmap", cache, monkeypatch, instrument="LIGER", **late)["dark"] == "tmt_liger_dark_0002.fits"
    assert _best("tmt_0004.pmap", cache, monkeypatch, instrument="LIGER")["dark"] == "tmt_liger_dark_0001.fits"
    assert _best("tmt_0004.pmap", cache, monkeypatch, instrument="IRIS", **late)["dark"] == "tmt_iris_dark_0001.fits"
    assert sorted((cache / "references" / "tmt" / "iris").iterdir()) == iris_references
