"""The README's demo: simulate exposures, build the CRDS cache, reduce Level 0 -> 1 -> 2, check the truth.

Run as ``liger-iris-demo --output DIR [--size N] [--nreads M]`` (``make demo`` runs it at full
frame, 4096x4096). Steps:

1. the CRDS cache: built on first use (``tmt-crds-cache build``: the truth references of the
   simulated detector, and a dark and a flat made by the calibration pipelines);
2. the simulator writes two dithered science exposures and two sky exposures (Level 0);
3. ``tmtrun detector1.cfg`` turns each into a Level 1 rate frame;
4. ``tmtrun image2.cfg`` calibrates the science frames from a Level 2 association with the sky
   frames as background members;
5. every product is read back through ``datamodels.open`` and the calibrated frames are compared
   with the simulator's truth (star fluxes, WCS positions, background, bad pixels).

It prints where the products are, the wall time of each stage and the peak memory.
"""

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from ..simulate.instruments import instrument_model

PROG = "liger-iris-demo"

FULL_FRAME = instrument_model("iris").detector_shape[1]
"""Side of the IRIS imager detector (pixels): the demo's default and the checkout cache's size."""


def _summarise(path):
    """Return a one-line summary of a product read back through `datamodels.open`."""
    import numpy as np

    from .. import datamodels

    with datamodels.open(path) as model:
        meta = model.meta
        shape = "x".join(map(str, model.data.shape))
        if isinstance(model, datamodels.TMTRampModel):
            return f"{type(model).__name__:<15} L0 {meta.exposure.type:<11} {shape:<16} {model.data.dtype}"
        good = (model.dq & datamodels.dqflags.pixel["DO_NOT_USE"]) == 0
        return (
            f"{type(model).__name__:<15} L{meta.processing_level} {meta.obsname or '':<11} {shape:<16} "
            f"median {np.median(model.data[good]):9.3f} DN/s, median err {np.median(model.err[good]):7.3f}, "
            f"{100 * (1 - good.mean()):.1f} % DO_NOT_USE"
        )


def _ensure_cache(cache, size, log):
    """Build the references the cache lacks, rebuilding them if they were made for another detector size."""
    from .. import datamodels
    from .crds_cache import build

    existing = sorted((cache / "references").rglob("tmt_iris_gain_*.fits"))
    force = bool(existing) and datamodels.open(existing[0]).data.shape != (size, size)
    if force:
        log(f"the references in {cache} are not {size}x{size}: rebuilding them")
    # The demo reduces IRIS data: the other instruments' references are left to `tmt-crds-cache build`.
    written = build(cache, size=size, force=force, log=lambda line: log(f"  {line}"), instruments=("iris",))
    log(f"CRDS cache {cache}: {len(written)} reference(s) built" if written else f"CRDS cache {cache}: up to date")


def main(argv=None):
    """Run the demo.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output", help="directory for the products (default demo_output)")
    parser.add_argument(
        "--size", type=int, default=FULL_FRAME, help=f"detector side in pixels (default {FULL_FRAME})"
    )
    parser.add_argument("--nreads", type=int, default=10, help="reads per integration (default 10)")
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    args = parser.parse_args(argv)
    if args.size < 16 or args.nreads < 2:
        parser.error("--size must be at least 16 pixels and --nreads at least 2")

    from ..lib.errors import run_command

    return run_command(PROG, lambda: _run(args), argv=["--debug"] if args.debug else [])


def _run(args):
    """Run the demo's stages; return the exit status."""

    from ..associations import make_asn
    from ..crds_plugin import cache_path
    from ..simulate import ExposureTruth, simulate_dataset
    from ..simulate.validation import compare_with_truth
    from .crds_cache import SEED
    from .tmtrun import main as tmtrun

    output = Path(args.output)
    started = time.perf_counter()
    stage_start = started

    def stage(text):
        nonlocal stage_start
        now = time.perf_counter()
        print(f"[{now - started:7.1f} s] {text} ({now - stage_start:.1f} s)", flush=True)
        stage_start = now

    # The repository's cache holds full-frame references; other sizes get a cache of their own.
    cache = cache_path()
    if args.size != FULL_FRAME and "CRDS_PATH" not in os.environ:
        own = output / "crds_cache"
        for folder in ("config", "mappings"):
            if not (own / folder).exists():
                shutil.copytree(cache / folder, own / folder)
        cache = own
    os.environ["CRDS_PATH"] = str(cache.resolve())
    _ensure_cache(cache, args.size, print)
    stage("CRDS cache ready")

    manifest = simulate_dataset(
        output / "level0",
        size=args.size,
        nreads=args.nreads,
        n_science=2,
        n_sky=2,
        n_darks=0,
        n_flats=0,
        seed=SEED,
        n_stars=max(10, round(200 * (args.size / FULL_FRAME) ** 2)),
    )
    stage(f"simulated 2 science + 2 sky exposures, {args.size}x{args.size}, {args.nreads} reads, in {output}/level0")

    for ramp in manifest["science"] + manifest["sky"]:
        if tmtrun(["detector1.cfg", ramp, f"--output_dir={output / 'level1'}", "--log-level=WARNING"], PROG) != 0:
            return 1
    stage(f"Level 1: tmtrun detector1.cfg -> {output}/level1")

    rates = {kind: sorted((output / "level1").glob(f"sim_{kind}_*_rate.fits")) for kind in ("science", "sky")}
    asn = output / "level1" / "image2_asn.json"
    make_asn(rates["science"], rates["sky"], output=asn)
    if tmtrun(["image2.cfg", str(asn), f"--output_dir={output / 'level2'}", "--log-level=WARNING"], PROG) != 0:
        return 1
    stage(f"Level 2: tmtrun image2.cfg {asn} -> {output}/level2")

    products = [*map(Path, manifest["science"] + manifest["sky"]), *rates["science"], *rates["sky"]]
    products += sorted((output / "level2").glob("*_cal.fits"))
    for path in products:
        print(f"  {path.name:<28} {_summarise(path)}")
    for path in sorted((output / "level2").glob("*_cal.fits")):
        from .. import datamodels

        name = path.name.replace("_cal.fits", "_uncal.fits")
        comparison = compare_with_truth(datamodels.open(path), ExposureTruth.load(manifest["truth"][name]))
        print(f"{path.name} against the truth:\n  " + comparison.summary().replace("\n", "\n  "))
    stage("products read back and compared with the truth")
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"done: products in {output}/level0, level1, level2; CRDS cache {cache}; "
        f"wall time {time.perf_counter() - started:.1f} s, peak memory {peak_gib:.2f} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
