"""TMTStep and CRDS: defaults, provenance, overrides, error messages, read-only use of the cache."""

import logging
import os

import pytest
from crds_helpers import build_tiny_cache, science_model

from liger_iris_pipeline import datamodels
from liger_iris_pipeline.crds_plugin import configure_environment
from liger_iris_pipeline.stpipe import ReferenceFileError, TMTStep


class DarkAndFlatStep(TMTStep):
    """Minimal step asking CRDS for a dark and a flat."""

    class_alias = "dark_current"
    reference_file_types = ["dark", "flat"]

    def process(self, input_model):
        with datamodels.open(input_model) as model:
            result = model.copy()
        self.dark_used = self.get_reference_file(result, "dark")
        self.get_reference_file(result, "flat")
        return result


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    return build_tiny_cache(tmp_path_factory.mktemp("cache") / "crds_cache")


@pytest.fixture
def crds_cache_env(tiny_cache, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CRDS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRDS_PATH", str(tiny_cache))
    return tiny_cache


def _snapshot(root):
    return {str(p): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_references_and_context_recorded_and_cache_untouched(crds_cache_env, tmp_path):
    before = _snapshot(crds_cache_env)
    step = DarkAndFlatStep()
    result = step.run(science_model())
    assert step.dark_used == str(crds_cache_env / "references" / "tmt" / "iris" / "tmt_iris_dark_0001.fits")
    result.save(tmp_path / "out.fits")
    from astropy.io import fits

    header = fits.getheader(tmp_path / "out.fits")
    assert header["R_DARK"] == "crds://tmt_iris_dark_0001.fits"
    assert header["R_FLAT"] == "crds://tmt_iris_flat_0001.fits"
    assert header["CRDS_CTX"] == "tmt_0003.pmap"
    assert header["CRDS_VER"].startswith("14.")
    assert os.environ["CRDS_READONLY_CACHE"] == "1"
    assert _snapshot(crds_cache_env) == before


def test_user_crds_settings_win(crds_cache_env, monkeypatch):
    monkeypatch.setenv("CRDS_READONLY_CACHE", "0")
    monkeypatch.setenv("STPIPE_DISABLE_CRDS_STEPPARS", "false")
    configure_environment()
    assert os.environ["CRDS_READONLY_CACHE"] == "0"
    assert os.environ["STPIPE_DISABLE_CRDS_STEPPARS"] == "false"
    assert os.environ["CRDS_OBSERVATORY"] == "tmt"


def test_override_wins(crds_cache_env, tmp_path):
    dark = datamodels.TMTDarkModel((64, 64))
    path = tmp_path / "my_flat.fits"
    datamodels.TMTFlatModel((64, 64)).save(path)
    step = DarkAndFlatStep(override_dark=dark, override_flat=str(path))
    # Values no CRDS rule matches: only the overrides can satisfy the step.
    result = step.run(science_model(detector="IMG2", date="2020-01-01"))
    assert step.dark_used is dark
    assert result.meta.ref_file.flat.name == str(path)


def test_unmatched_parkeys_error_names_type_values_and_context(crds_cache_env):
    with pytest.raises(ReferenceFileError) as info:
        DarkAndFlatStep().run(science_model(detector="IMG2"))
    message = str(info.value)
    assert message.startswith("no DARK rule matches DETECTOR='IMG2' in tmt_iris_dark_0002.rmap")
    for text in ("CRDS context tmt_0003.pmap", "'IMG1'", "override_dark"):
        assert text in message


def test_date_before_first_reference_error(crds_cache_env):
    expected = r"no DARK rule in tmt_iris_dark_0002.rmap .*tmt_0003.pmap.* covers DATE-OBS='2020-01-01'"
    with pytest.raises(ReferenceFileError, match=expected):
        DarkAndFlatStep().run(science_model(date="2020-01-01"))


def test_missing_reference_file_error(crds_cache_env, tmp_path, monkeypatch):
    import shutil

    partial = tmp_path / "crds_cache"
    shutil.copytree(crds_cache_env, partial)
    (partial / "references" / "tmt" / "iris" / "tmt_iris_flat_0001.fits").unlink()
    monkeypatch.setenv("CRDS_PATH", str(partial))
    with pytest.raises(ReferenceFileError) as info:
        DarkAndFlatStep().run(science_model())
    message = str(info.value)
    assert message.startswith("the FLAT rule in tmt_iris_flat_0002.rmap (CRDS context tmt_0003.pmap) selects ")
    for text in ("tmt_iris_flat_0001.fits, which is not in the cache", f"tmt-crds-cache build --path {partial}"):
        assert text in message


def test_no_pars_lookups_through_call(crds_cache_env, caplog):
    with caplog.at_level(logging.DEBUG):
        DarkAndFlatStep.call(science_model())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "pars-" in r.getMessage()]
    assert not [r for r in caplog.records if r.name == "CRDS" and r.levelno >= logging.ERROR]
