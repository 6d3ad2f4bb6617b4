"""The tmt CRDS observatory plugin: registration, generated type files, activation in child processes."""

import multiprocessing
import subprocess
import sys

import pytest
from crds_helpers import PTH, crds_env, installed_pth, run

import liger_iris_pipeline.crds_plugin as plugin
from liger_iris_pipeline.crds_plugin import generate
from liger_iris_pipeline.reference_types import INSTRUMENTS, REFERENCE_TYPES, instrument_types


def test_register_is_idempotent():
    import crds
    from crds.core import constants

    plugin.register()
    assert plugin.register() is False
    assert constants.ALL_OBSERVATORIES.count("tmt") == 1
    assert crds.__path__.count(plugin._PLUGIN_DIR) == 1
    import crds.tmt

    assert crds.tmt.INSTRUMENTS == ["all", "iris", "liger"]
    assert set(plugin.REFERENCE_TYPES) <= set(crds.tmt.FILEKINDS)


def _child_sees_tmt():
    # Runs in a fresh interpreter: only the .pth hook can have registered the plugin.
    import crds  # noqa: F401 - the import is what fires the hook
    from crds.core import constants, utils

    return "tmt" in constants.ALL_OBSERVATORIES, utils.instrument_to_observatory("iris")


def test_registration_reaches_spawned_processes(tmp_path, monkeypatch):
    for key, value in crds_env(tmp_path, tmp_path).items():
        monkeypatch.setenv(key, value)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        assert pool.apply(_child_sees_tmt) == (True, "tmt")


def test_pth_is_cheap_and_lazy(tmp_path):
    env = crds_env(tmp_path, tmp_path)
    code = "import sys; print('crds' in sys.modules, [getattr(f, '__name__', '') for f in sys.meta_path][0])"
    out = subprocess.run([sys.executable, "-c", code], env=env, text=True, capture_output=True, check=True).stdout
    assert out.split() == ["False", "TmtCrdsFinder"]


def test_pth_installed_matches_source():
    installed = installed_pth()
    if installed is None:
        pytest.skip(f"{PTH.name} is not installed in site-packages yet (reinstall the package)")
    assert installed.read_text() == PTH.read_text()


def test_generated_type_files_are_current():
    for path, text in generate.generated_files().items():
        assert path.exists() and path.read_text() == text, f"{path} is stale: run generate"
    assert generate.stale_files() == [], "type files of a type no longer registered: run generate"
    assert plugin.REFERENCE_TYPES == tuple(REFERENCE_TYPES)


def test_locator_keywords_match_schema():
    plugin.register()
    from crds.tmt import locate

    for path, (keyword,) in locate.CROSS_STRAPPED_KEYWORDS.items():
        model = (
            "TMTDarkModel"
            if path.startswith("META.REFTYPE")
            or path in ("META.USEAFTER", "META.PEDIGREE", "META.DESCRIPTION", "META.AUTHOR")
            else "IRISImageModel"
        )
        assert generate.schema_node(model, path)["fits_keyword"] == keyword, path
    for filekind, keyword in locate.FILEKIND_KEYWORDS.items():
        node = generate.schema_node("IRISImageModel", f"meta.ref_file.{filekind}.name")
        assert node["fits_keyword"] == keyword == locate.filekind_to_keyword(filekind.upper())
        assert len(keyword) <= 8
    assert len(locate.filekind_to_keyword("distortionmodel")) <= 8


def test_wrapper_runs_crds_tools_without_the_hook(tmp_path):
    from crds_helpers import SOURCE_CACHE

    env = {"PATH": "/usr/bin:/bin", "CRDS_PATH": str(SOURCE_CACHE)}
    result = run(f"{sys.executable} -m liger_iris_pipeline.crds_plugin list --mappings", env, tmp_path)
    assert "tmt_iris_dark_0002.rmap" in result.stdout


def test_everything_reads_the_registry():
    """The CRDS type files, the locator, the schemas and the plugin list exactly the registry's types."""
    plugin.register()
    import crds.tmt
    from crds.tmt import locate

    assert plugin.INSTRUMENTS == INSTRUMENTS == ("iris", "liger")
    for instrument in INSTRUMENTS:
        for entry in instrument_types(instrument):
            spec = generate.spec_dicts()[f"{instrument}_{entry.name}.spec"]
            assert spec["parkey"][0] == entry.parkeys and spec["text_descr"] == entry.description
            assert (generate.TMT_DIR / "tpns" / f"{instrument}_{entry.name}.tpn").is_file()
    for entry in REFERENCE_TYPES.values():
        assert locate.FILEKIND_KEYWORDS[entry.name] == entry.keyword == locate.filekind_to_keyword(entry.name)
        assert generate.schema_node("IRISImageModel", f"meta.ref_file.{entry.name}.name")["fits_keyword"] == (
            entry.keyword
        )
    assert generate.schema_enum("TMTDarkModel", "meta.reftype") == [name.upper() for name in REFERENCE_TYPES]
    assert set(crds.tmt.FILEKINDS) == {"all", *REFERENCE_TYPES}
