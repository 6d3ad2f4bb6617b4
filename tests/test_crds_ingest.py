"""docs/crds_ingest.rst runs as written: certify, insert_reference, newcontext, checksum, bestrefs by date,
the switch of the cache's context, and ``tmt-crds-cache ingest`` of a master dark made by the calibration
pipeline; docs/crds.rst's ``crds://`` examples run too."""

from pathlib import Path

import pytest
from crds_helpers import REPO, build_tiny_cache, crds_env, run

from liger_iris_pipeline.crds_plugin.diagnose import read_server_config

PAGE = REPO / "docs" / "crds_ingest.rst"


def console_blocks(text):
    """Return ``[(command, [expected output lines])]`` from the ``code-block:: console`` blocks of an rst page."""
    steps, in_block = [], False
    for line in text.splitlines():
        if line.startswith(".. code-block:: console"):
            in_block = True
        elif in_block and line and not line.startswith(" "):
            in_block = False
        elif in_block and line.strip().startswith("$ "):
            steps.append((line.strip()[2:], []))
        elif in_block and line.strip() and steps:
            steps[-1][1].append(line.strip())
    return steps


def run_page(page, tmp_path):
    """Run a page's console commands in one shell on a copy of a tiny cache; check their expected output.

    Returns ``(source cache, work directory, [(command, expected lines)])``. ``CRDS_OBSERVATORY``
    is not set: the plugin sets it for a cache of tmt mappings only.
    """
    cache = build_tiny_cache(tmp_path / "source_cache")
    workdir = tmp_path / "work"
    workdir.mkdir()
    env = crds_env(cache, workdir)
    del env["CRDS_OBSERVATORY"]
    steps = console_blocks(page.read_text())
    # One shell, so the page's `export` carries over; a marker line separates each command's output.
    script = "set -e\n" + "".join(f"echo '@@step {i}'\n{command}\n" for i, (command, _) in enumerate(steps))
    output = run(script, env, workdir).stdout
    chunks = dict(chunk.split("\n", 1) for chunk in output.split("@@step ")[1:])
    for i, (command, expected) in enumerate(steps):
        for line in expected:
            assert line in chunks[str(i)], f"{command!r}: expected {line!r} in\n{chunks[str(i)]}"
    return cache, workdir, steps


@pytest.mark.slow
def test_ingest_page_commands_run(tmp_path):
    cache, workdir, steps = run_page(PAGE, tmp_path)
    assert len(steps) >= 20
    # The copy was modified, the source cache was not.
    assert (workdir / "crds_cache" / "mappings" / "tmt" / "tmt_0005.pmap").exists()
    assert read_server_config(workdir / "crds_cache")["latest_context"] == "tmt_0005.pmap"
    assert not Path(cache / "mappings" / "tmt" / "tmt_0004.pmap").exists()
    assert read_server_config(cache)["latest_context"] == "tmt_0003.pmap"


@pytest.mark.slow
def test_crds_page_crds_names_example_runs(tmp_path):
    """docs/crds.rst: ``crds diff`` and ``crds certify`` with ``crds://`` names."""
    _, _, steps = run_page(REPO / "docs" / "crds.rst", tmp_path)
    assert [command.split()[:2] for command, _ in steps if command.startswith("crds ")] == [
        ["crds", "diff"],
        ["crds", "certify"],
        ["crds", "certify"],
    ]
