"""Shared set-up of the CRDS tests: a tiny built cache and an environment for ``crds`` subprocesses."""

import atexit
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

import liger_iris_pipeline.crds_plugin as plugin

REPO = Path(__file__).resolve().parents[1]
SOURCE_CACHE = REPO / "crds_cache"
PTH = Path(plugin.__file__).parent / "liger_iris_pipeline_crds.pth"
BIN = Path(sys.executable).parent


def installed_pth():
    """Return the installed copy of the plugin's .pth file, or None."""
    for directory in [*site.getsitepackages(), site.getusersitepackages()]:
        candidate = Path(directory) / PTH.name
        if candidate.exists():
            return candidate
    return None


def copy_cache(destination):
    """Copy the repository cache's config and mappings (not its references) to `destination`."""
    for part in ("config", "mappings"):
        shutil.copytree(SOURCE_CACHE / part, destination / part)
    return destination


def crds_env(cache, workdir):
    """Return an environment in which the plain ``crds`` script and ``tmt-crds-cache`` work on `cache`.

    When the package's ``.pth`` is not installed (an editable install made before it existed),
    a ``sitecustomize`` adds a directory holding a copy of it as a site directory, which is
    exactly how site-packages processes it.
    """
    # CRDS_SERVER_URL stays unset: crds then works serverless on the local cache, without warnings.
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRDS_")}
    env.update(CRDS_PATH=str(cache), CRDS_OBSERVATORY="tmt", CRDS_READONLY_CACHE="1")
    shims = Path(workdir) / ".shims"
    shims.mkdir(exist_ok=True)
    paths = [str(BIN)]
    if installed_pth() is None:
        shutil.copy(PTH, shims / PTH.name)
        (shims / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(shims)!r})\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shims), env.get("PYTHONPATH")]))
    if shutil.which("tmt-crds-cache", path=str(BIN)) is None:
        script = shims / "tmt-crds-cache"
        script.write_text(
            f"#!{sys.executable}\nfrom liger_iris_pipeline.cli.crds_cache import main\nraise SystemExit(main())\n"
        )
        script.chmod(0o755)
        paths.insert(0, str(shims))
    env["PATH"] = os.pathsep.join([*paths, env.get("PATH", "")])
    return env


def run(command, env, cwd, check=True):
    """Run a shell command; return its CompletedProcess (stdout and stderr merged)."""
    result = subprocess.run(
        command,
        shell=True,
        env=env,
        cwd=cwd,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        executable="/bin/bash",
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{command!r} failed ({result.returncode}):\n{result.stdout}")
    return result


_BUILT = {}
"""(size, instruments) -> a tiny cache built once per test session, copied for each caller."""


def build_tiny_cache(destination, size=64, instruments=None):
    """Make `destination` a cache of the repository's mappings with their references (every instrument's) at `size`.

    The references are built once per session, size and choice of `instruments` (the build runs
    the calibration pipelines of each instrument; ``("iris",)`` builds IRIS's only, in half the
    time), then copied: each caller gets a cache of its own to damage.
    """
    from liger_iris_pipeline.cli.crds_cache import build

    key = (size, tuple(instruments or ()))
    if key not in _BUILT:
        template = Path(tempfile.mkdtemp(prefix=f"tiny_cache_{size}_")) / "crds_cache"
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
        copy_cache(template)
        build(template, size=size, log=lambda line: None, instruments=instruments)
        _BUILT[key] = template
    shutil.copytree(_BUILT[key], destination)
    return destination


def science_model(date="2024-06-01", time="00:00:00", **values):
    """Return a small IRISImageModel with the metadata CRDS selects on (override any by keyword).

    ``instrument="LIGER"`` makes it a Liger frame (INSTRUME and TELESCOP).
    """
    from liger_iris_pipeline import datamodels

    model = datamodels.IRISImageModel((64, 64))
    meta = model.meta
    meta.instrument.name = values.get("instrument", "IRIS")
    meta.telescope = {"IRIS": "TMT", "LIGER": "KECK"}[meta.instrument.name]
    meta.instrument.detector = values.get("detector", "IMG1")
    meta.instrument.filter = values.get("filter", "Kbb")
    meta.instrument.pupil = values.get("pupil", "CLEAR")
    meta.subarray.name = values.get("subarray", "FULL")
    meta.exposure.readout_mode = values.get("readout_mode", "UTR")
    meta.observation.date, meta.observation.time = date, time
    return model
