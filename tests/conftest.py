"""Shared pytest configuration: keep every test off the network and out of the user's CRDS cache."""

import os

import pytest

os.environ.setdefault("STPIPE_DISABLE_CRDS_STEPPARS", "true")


@pytest.fixture(scope="session")
def det():
    """A 128x128 simulated detector (seed 1), shared by the Level 2 step tests."""
    from level1_helpers import detector

    return detector()


@pytest.fixture(scope="session")
def small_reduction(tmp_path_factory):
    """A 64x64 CRDS cache of the simulator's cache detector, and Level 0 and Level 1 files reduced with it.

    Returns a dict: ``cache``; ``ramps`` and ``rates`` (``science``, ``sky`` -> path); ``truth``
    (``science`` -> path). Tests copy what they damage.
    """
    from crds_helpers import build_tiny_cache

    from liger_iris_pipeline import simulate
    from liger_iris_pipeline.cli.tmtrun import main as tmtrun

    work = tmp_path_factory.mktemp("small_reduction")
    cache = build_tiny_cache(work / "crds_cache")
    manifest = simulate.simulate_dataset(
        work / "level0", size=64, nreads=5, n_science=1, n_sky=1, n_darks=0, n_flats=0, n_stars=5
    )
    saved = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(cache)
    try:
        for ramp in manifest["science"] + manifest["sky"]:
            assert tmtrun(["detector1.cfg", ramp, f"--output_dir={work / 'level1'}", "--log-level=WARNING"]) == 0
    finally:
        if saved is None:
            del os.environ["CRDS_PATH"]
        else:
            os.environ["CRDS_PATH"] = saved
    return {
        "cache": cache,
        "ramps": {"science": manifest["science"][0], "sky": manifest["sky"][0]},
        "rates": {kind: str(work / "level1" / f"sim_{kind}_001_rate.fits") for kind in ("science", "sky")},
        "truth": {"science": manifest["truth"]["sim_science_001_uncal.fits"]},
    }


@pytest.fixture
def small_cache_env(small_reduction, monkeypatch):
    """Point CRDS at the small reduction's cache for one test."""
    for key in list(os.environ):
        if key.startswith("CRDS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CRDS_PATH", str(small_reduction["cache"]))
    return small_reduction
