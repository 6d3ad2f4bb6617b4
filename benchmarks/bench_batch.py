"""Throughput of ``tmt-batch`` on an embedded cluster of 1, 2... workers, on the same simulated exposures.

The simulator writes N sky and M science Level 0 files once (``--size``, ``--nreads``); a CRDS
cache of IRIS references at that size is built once in the work folder (or ``--crds-path`` is
used). Then ``tmt-batch`` reduces them, each time into a new output folder, with each
``--workers`` count in a fresh process (cluster start-up included in the wall time). Printed per
run: the batch's own reduction time and throughput (exposures per minute, first submission to
last result), the wall time of the command, the load average after it and the CPU time per
exposure of the command and its workers (which a busy machine changes less than wall times: on
an idle machine of C cores, C x 60 / that is the throughput's ceiling); then, per worker
count, the best and median throughput over ``--repeat`` runs and the speed-up of the best over
the first count's best (on a shared machine the best run is the least disturbed).

usage: python benchmarks/bench_batch.py [--size 1024] [--nreads 5] [--sky 2] [--science 6]
                                        [--workers 1 2] [--repeat N] [--workdir DIR] [--crds-path DIR]
                                        [--no-quicklook]
"""

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SUMMARY = re.compile(r"; ([\d.]+) s reducing \(([\d.]+) exposures/min\)")


def _children_cpu():
    """CPU seconds (user + system) of the finished child processes and theirs (the batch's workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cache(work, size, given):
    if given:
        return Path(given)
    from liger_iris_pipeline.cli.crds_cache import build
    from liger_iris_pipeline.cli.demo import IMAGER_DETECTORS

    cache = work / "crds_cache"
    if not (cache / "references").exists():
        for part in ("config", "mappings"):
            shutil.copytree(REPO / "crds_cache" / part, cache / part, dirs_exist_ok=True)
        start = time.perf_counter()
        build(cache, size=size, log=lambda line: None, instruments=("iris",), detectors=IMAGER_DETECTORS)
        print(f"CRDS cache {cache} built in {time.perf_counter() - start:.0f} s")
    return cache


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--nreads", type=int, default=5)
    parser.add_argument("--sky", type=int, default=2)
    parser.add_argument("--science", type=int, default=6)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each worker count (best and median shown)")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temporary folder, removed)")
    parser.add_argument("--crds-path", help="an existing CRDS cache with IRIS references of --size")
    parser.add_argument("--no-quicklook", action="store_true", help="no PNG and regions files")
    args = parser.parse_args(argv)

    from liger_iris_pipeline import simulate

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    try:
        work.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CRDS_PATH": str(_cache(work, args.size, args.crds_path))}
        level0 = work / f"level0_{args.size}_{args.nreads}_{args.sky}_{args.science}"
        if not level0.exists():
            simulate.simulate_dataset(
                level0, size=args.size, nreads=args.nreads, n_science=args.science, n_sky=args.sky, n_darks=0,
                n_flats=0, n_stars=25,
            )  # fmt: skip
        options = []
        if args.no_quicklook:
            (work / "batch.cfg").write_text("quicklook = False\n")
            options = ["--config", str(work / "batch.cfg")]
        print(f"{args.sky} sky + {args.science} science exposures, {args.size} x {args.size}, {args.nreads} reads")
        count = args.sky + args.science
        print(f"{'workers':>7} {'reducing (s)':>12} {'exposures/min':>13} {'wall (s)':>8} {'load':>5} {'CPU s/exp':>9}")
        rates = {workers: [] for workers in args.workers}
        # Rounds alternate the worker counts, so that a change in the machine's load touches them alike.
        for _ in range(args.repeat):
            for workers in args.workers:
                output = work / f"output_{workers}"
                shutil.rmtree(output, ignore_errors=True)
                start, cpu = time.perf_counter(), _children_cpu()
                result = subprocess.run(
                    [BIN / "tmt-batch", level0, "--output-dir", output, "--workers", str(workers), *options],
                    env=env, capture_output=True, text=True,
                )  # fmt: skip
                wall, cpu = time.perf_counter() - start, (_children_cpu() - cpu) / count
                found = SUMMARY.search(result.stdout)
                if result.returncode or not found:
                    sys.exit(f"tmt-batch --workers {workers} failed:\n{result.stdout}{result.stderr}")
                seconds, rate = float(found.group(1)), float(found.group(2))
                rates[workers].append(rate)
                load = os.getloadavg()[0]
                print(f"{workers:>7} {seconds:>12.1f} {rate:>13.1f} {wall:>8.1f} {load:>5.1f} {cpu:>9.1f}")
        first = max(rates[args.workers[0]])
        for workers, values in rates.items():
            print(
                f"{workers} worker(s): best {max(values):.1f} exposures/min ({max(values) / first:.2f} x), "
                f"median {statistics.median(values):.1f}"
            )
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
