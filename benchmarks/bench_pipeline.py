"""Benchmark of a full-frame reduction, Level 0 -> 1 -> 2, against an I/O baseline in the same run.

A full-frame exposure (and two sky exposures for the background) is simulated once; then each
stage runs in a fresh Python process, so that its time includes start-up and its peak memory
(``VmHWM``) is its own:

* ``baseline``: read the Level 0 file through ``datamodels.open``, touch every read, and write a
  Level 1-sized ``IRISImageModel`` -- the I/O any reduction must do;
* ``detector1``: ``tmtrun detector1.cfg`` on the science ramp (DQ init + ramp fit);
* ``image2``: ``tmtrun image2.cfg`` on an association of the science rate frame with the two sky
  frames (background, WCS, subarray map, dark, flat);

It reports each stage's wall time, its ratio to the baseline, its peak memory and that memory in
units of the Level 0 file. The mission's requirement is a full frame reduced in under a minute.

usage: python benchmarks/bench_pipeline.py [--size 4096] [--nreads 10] [--workdir DIR] [--keep]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASELINE = """
import sys
import numpy as np
from liger_iris_pipeline import datamodels
ramp = datamodels.open(sys.argv[1])
total = np.zeros(ramp.data.shape[-2:], np.uint32)
for read in ramp.data[0]:
    total += read
frame = datamodels.IRISImageModel(total.astype(np.float32))
frame.update(ramp)
frame.save(sys.argv[2])
"""

# Runs a command's Python entry point in this process and appends the process's own peak RSS
# (VmHWM: exec starts a fresh count, unlike the rusage of a forked child) to the file in argv[1].
PEAK_WRAPPER = """
import runpy, sys
report, sys.argv = sys.argv[1], sys.argv[2:]
try:
    if sys.argv[0] == "-c":
        code, sys.argv = sys.argv[1], sys.argv[1:]
        exec(compile(code, "<stage>", "exec"), {"__name__": "__main__"})
        status = 0
    else:
        from liger_iris_pipeline.cli.tmtrun import main
        status = main(sys.argv)
finally:
    with open("/proc/self/status") as proc, open(report, "w") as out:
        out.write(next(line for line in proc if line.startswith("VmHWM:")).split()[1])
sys.exit(status)
"""


def run_stage(args, env, work):
    """Run one stage (``-c CODE ...`` or tmtrun arguments) in a fresh Python; return (wall s, peak RSS bytes)."""
    report = work / "peak_kib.txt"
    command = [sys.executable, "-c", PEAK_WRAPPER, str(report), *map(str, args)]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed:\n{result.stderr[-3000:]}")
    return elapsed, int(report.read_text()) * 1024


def main(argv=None):
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--nreads", type=int, default=10)
    parser.add_argument("--workdir", help="where to put the data (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)

    from liger_iris_pipeline.associations import make_asn
    from liger_iris_pipeline.cli.crds_cache import SEED, build
    from liger_iris_pipeline.crds_plugin import cache_path
    from liger_iris_pipeline.simulate import simulate_dataset

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pipeline_"))
    work.mkdir(parents=True, exist_ok=True)
    cache = cache_path()
    if args.size != 4096:
        own = work / "crds_cache"
        for folder in ("config", "mappings"):
            if not (own / folder).exists():
                shutil.copytree(cache / folder, own / folder)
        cache = own
    build(cache, size=args.size, log=lambda line: None)
    env = {**os.environ, "CRDS_PATH": str(cache.resolve())}
    manifest = simulate_dataset(
        work / "level0", size=args.size, nreads=args.nreads, n_science=1, n_sky=2, n_darks=0, n_flats=0, seed=SEED
    )
    for sky in manifest["sky"]:
        run_stage(["detector1.cfg", sky, f"--output_dir={work / 'level1'}"], env, work)
    science = Path(manifest["science"][0])
    results = {}
    results["baseline"] = run_stage(["-c", BASELINE, science, work / "baseline.fits"], env, work)
    results["detector1"] = run_stage(["detector1.cfg", science, f"--output_dir={work / 'level1'}"], env, work)
    rates = sorted((work / "level1").glob("*_rate.fits"))
    asn = work / "level1" / "asn.json"
    make_asn([r for r in rates if "science" in r.name], [r for r in rates if "sky" in r.name], output=asn)
    results["image2"] = run_stage(["image2.cfg", asn, f"--output_dir={work / 'level2'}"], env, work)

    input_bytes = science.stat().st_size
    base = results["baseline"][0]
    print(f"{args.size}x{args.size}, {args.nreads} reads; Level 0 file {input_bytes / 2**20:.0f} MiB")
    print(f"{'stage':<11} {'wall s':>8} {'x baseline':>11} {'peak GiB':>9} {'x input':>8}")
    for name, (elapsed, peak) in results.items():
        print(f"{name:<11} {elapsed:8.2f} {elapsed / base:11.2f} {peak / 2**30:9.2f} {peak / input_bytes:8.2f}")
    total = results["detector1"][0] + results["image2"][0]
    print(f"Level 0 -> 2 of one frame: {total:.1f} s ({total / base:.1f} x baseline)")
    if not args.keep and not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
