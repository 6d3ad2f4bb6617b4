"""Benchmark of a full-frame reduction, Level 0 -> 1 -> 2: the cold ``tmtrun`` chain and the warm service.

Each figure comes with its I/O floor, measured in the same run: the time to read the stage's
inputs the way the pipeline reads them (``datamodels.open``: structure, cards and checksums
verified, every array loaded) and to write files of its products' sizes (its own products, read
beforehand, saved again), clocked inside a process (start-up excluded). The ratio says what the
reduction costs beyond the I/O that any reduction must do. A full-frame data set is simulated
once (two science exposures and two sky exposures, the background members of image2) and
reused by later runs with the same ``--workdir``.

Cold chain: each stage is a fresh Python process, so its time includes start-up (shown: a
``tmtrun --version``) and its peak memory (``VmHWM``) is its own:

* ``detector1``: ``tmtrun detector1.cfg`` on the first science ramp (DQ init + ramp fit); floor:
  read the Level 0 file and the references the stage read, write the ``_rate`` product again;
* ``image2``: ``tmtrun image2.cfg`` on an association of the science rate frame with the sky
  frames (background, WCS, subarray map, dark, flat, photom); floor: read the science and sky
  rate frames and the stage's references, write the ``_cal`` product again.

Every file is read once before a stage and before its floor, so that both find their inputs in
the page cache (the floor is then the decoding, checking and writing that cannot be avoided).

Warm service: one process holds an ``ExposureReducer`` (``liger_iris_pipeline.operations.reduce``),
reduces the two sky exposures and the first science exposure (imports, references, compiled
kernels warm), then the second science exposure, a new frame: its latency per stage
(``detector1``, ``image2``, ``qa``, ``quicklook``) and its peak memory; then, in the same process,
its floor (read its Level 0 file and the two sky rate frames, write its ``_rate`` and ``_cal``).

Targets (issue 11, 4096 x 4096 x 10 reads, 2 cores): image2 within 1.5x of its floor with a peak
of at most 3x its product; the cold chain under 15 s; the warm Level 0 -> 2 latency within 2x
its floor. The machine may be shared: compare the ratios of one run.

usage: python benchmarks/bench_pipeline.py [--size 4096] [--nreads 10] [--workdir DIR] [--keep]
                                           [--crds-cache DIR] [--no-warm]
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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

# A stage of this module run in a fresh process: ``-c BENCH_CALL function json-arguments``.
BENCH_CALL = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import bench_pipeline
result = getattr(bench_pipeline, sys.argv[1])(**json.loads(sys.argv[2]))
if result is not None:
    print("RESULT " + json.dumps(result))
"""


def peak_rss():
    """Return this process's peak resident memory (``VmHWM``), bytes."""
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1]) * 1024


def reset_peak_rss():
    """Start a new peak-memory count for this process (Linux: ``clear_refs`` 5 resets ``VmHWM``)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")


def io_floor(inputs, products, scratch):
    """Read the inputs as a pipeline does and write files of the products' sizes; return seconds.

    Parameters
    ----------
    inputs : list of str
        Files to read with ``datamodels.open``; every array is loaded.
    products : list of str
        Products whose contents are written again (read before the clock starts).
    scratch : str
        Folder for the files written (emptied afterwards).

    Returns
    -------
    float
        Wall time of the reads and writes.
    """
    from liger_iris_pipeline import datamodels

    templates = [datamodels.open(path) for path in products]
    for template in templates:
        _load_arrays(template)
    scratch = Path(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for path in inputs:
        with datamodels.open(path) as model:
            _load_arrays(model)
    for index, template in enumerate(templates):
        template.save(str(scratch / f"floor_{index}_{Path(template.meta.filename).name}"))
    elapsed = time.perf_counter() - start
    for template in templates:
        template.close()
    shutil.rmtree(scratch)
    return elapsed


def prewarm(paths):
    """Read files once (raw bytes), so that a stage and its floor both find them in the page cache."""
    for path in paths:
        with open(path, "rb") as stream:
            while stream.read(1 << 24):
                pass


def stage_references(product, cache, before=None):
    """Return the reference files a stage read: the product's ``R_*`` files not already in ``before``'s.

    Parameters
    ----------
    product : Path
        The stage's product.
    cache : Path
        The CRDS cache (``crds://`` names are under ``references/tmt/<instrument>``).
    before : Path, optional
        The stage's input product, whose references earlier stages read.

    Returns
    -------
    list of str
    """
    from astropy.io import fits

    def names(path):
        header = fits.getheader(path)
        return {value.removeprefix("crds://") for key, value in header.items() if key.startswith("R_")}

    used = names(product) - (names(before) if before else set())
    return sorted(str(path) for name in used for path in (cache / "references").rglob(name))


def _load_arrays(model):
    """Make sure every array of a model is in memory (one element of each is read)."""
    import numpy as np

    for value in model.instance.values():
        if isinstance(value, np.ndarray) and value.size:
            value.flat[-1]


def warm_service(skies, warmup, new, output_dir, cache):
    """Reduce with a warm ``ExposureReducer``: skies and a first frame, then a new frame; return figures.

    Parameters
    ----------
    skies : list of str
        Level 0 sky exposures (reduced first: the background members).
    warmup : str
        A first science exposure (warms imports, references and compiled kernels).
    new : str
        The science exposure whose latency is measured.
    output_dir : str
        The reducer's output folder.
    cache : str
        CRDS cache (``CRDS_PATH``).

    Returns
    -------
    dict
        ``latency`` (seconds per stage of the new frame), ``floor`` (seconds), ``peak`` and
        ``resident`` (bytes: peak during the new frame, resident before it), ``products`` (paths).
    """
    os.environ["CRDS_PATH"] = cache
    from liger_iris_pipeline.operations.reduce import ExposureReducer

    reducer = ExposureReducer(output_dir)
    sky_rates = []
    for path in [*skies, warmup]:
        record = reducer.reduce(path)
        if record.status != "done":
            raise RuntimeError(f"warm-up of the service failed: {record.reason}")
        if "cal" not in record.products:
            sky_rates.append(record.products["rate"])
    resident = _resident_rss()
    reset_peak_rss()
    record = reducer.reduce(new)
    peak = peak_rss()
    if record.status != "done":
        raise RuntimeError(f"the service failed on {new}: {record.reason}")
    floor = io_floor(
        [new, *sky_rates], [record.products["rate"], record.products["cal"]], str(Path(output_dir) / "floor")
    )
    return {"latency": record.latency, "floor": floor, "peak": peak, "resident": resident, "products": record.products}


def _resident_rss():
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1]) * 1024


def run_stage(args, env, work):
    """Run one stage (``-c CODE ...`` or tmtrun arguments) in a fresh Python.

    Returns
    -------
    tuple
        (wall s, peak RSS bytes, the stage's ``RESULT`` JSON or None).
    """
    report = work / "peak_kib.txt"
    command = [sys.executable, "-c", PEAK_WRAPPER, str(report), *map(str, args)]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))[:200]} failed:\n{result.stderr[-3000:]}")
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    value = json.loads(lines[-1][len("RESULT ") :]) if lines else None
    if value is None:
        value = pipeline_seconds(result.stdout + "\n" + result.stderr)
    return elapsed, int(report.read_text()) * 1024, value


def pipeline_seconds(log):
    """Return the time from a tmtrun log's first ``Step X running`` to its ``Step X done`` (None without them).

    The run of the pipeline itself: the process's start-up, imports and parameter files come before it.
    """
    import re
    from datetime import datetime

    pattern = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - stpipe\.step - INFO - Step (\S+) (running|done)")
    events = [match.groups() for match in map(pattern.match, log.splitlines()) if match]
    if not events:
        return None
    stamp, outermost, _ = events[0]
    done = [when for when, step, kind in events if step == outermost and kind == "done"]
    if not done:
        return None
    parse = lambda text: datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f")  # noqa: E731
    return (parse(done[-1]) - parse(stamp)).total_seconds()


def bench_call(function, **arguments):
    """Return the ``run_stage`` arguments that call a function of this module in a fresh process."""
    return ["-c", BENCH_CALL, function, json.dumps(arguments)]


def crds_cache(path, size, work):
    """Return a CRDS cache with references of the detector size: ``path``, or one built in ``work``."""
    from liger_iris_pipeline.cli.crds_cache import build
    from liger_iris_pipeline.cli.demo import IMAGER_DETECTORS
    from liger_iris_pipeline.crds_plugin import cache_path

    if path:
        return Path(path).resolve()
    own = work / "crds_cache"
    for folder in ("config", "mappings"):
        if not (own / folder).exists():
            shutil.copytree(cache_path() / folder, own / folder)
    # The imager's references only: the IFS detector's full slicer would add minutes and is not used here.
    build(own, size=size, log=lambda line: None, instruments=["iris"], detectors=IMAGER_DETECTORS)
    return own.resolve()


def simulate(work, size, nreads):
    """Simulate (or reuse) two science and two sky exposures; return the manifest."""
    from liger_iris_pipeline.cli.crds_cache import SEED
    from liger_iris_pipeline.simulate import simulate_dataset

    level0 = work / "level0"
    manifest_file = level0 / "manifest.json"
    wanted = {"size": size, "nreads": nreads}
    if manifest_file.exists():
        manifest = json.loads(manifest_file.read_text())
        if (work / "simulated.json").exists() and json.loads((work / "simulated.json").read_text()) == wanted:
            return manifest
    manifest = simulate_dataset(level0, size=size, nreads=nreads, n_science=2, n_sky=2, n_darks=0, n_flats=0, seed=SEED)
    (work / "simulated.json").write_text(json.dumps(wanted))
    return manifest


def main(argv=None):
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--nreads", type=int, default=10)
    parser.add_argument("--workdir", help="where to put the data (default: a temporary directory); reused if simulated")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--crds-cache", help="CRDS cache with references of this size (default: one built in workdir)")
    parser.add_argument("--no-warm", action="store_true", help="only the cold chain")
    args = parser.parse_args(argv)

    from liger_iris_pipeline.associations import make_asn

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pipeline_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cache = crds_cache(args.crds_cache, args.size, work)
    env = {**os.environ, "CRDS_PATH": str(cache)}
    manifest = simulate(work, args.size, args.nreads)
    science = [Path(path) for path in manifest["science"]]
    skies = [Path(path) for path in manifest["sky"]]
    level1, level2 = work / "level1", work / "level2"
    for folder in (level1, level2, work / "service"):
        shutil.rmtree(folder, ignore_errors=True)

    for sky in skies:
        run_stage(["detector1.cfg", sky, f"--output_dir={level1}"], env, work)
    # Each stage, then its floor: the same inputs (its references included), read from the page cache.
    references = sorted(str(path) for path in (cache / "references").rglob("*.fits"))
    prewarm([science[0], *references])
    cold = {"detector1": run_stage(["detector1.cfg", science[0], f"--output_dir={level1}"], env, work)}
    rates = {path.name: path for path in level1.glob("*_rate.fits")}
    rate = rates[science[0].name.replace("_uncal", "_rate")]
    sky_rates = [rates[sky.name.replace("_uncal", "_rate")] for sky in skies]
    inputs = {"detector1": [str(science[0]), *stage_references(rate, cache)]}
    asn = level1 / "asn.json"
    make_asn([rate], sky_rates, output=asn)
    prewarm([rate, *sky_rates])
    cold["image2"] = run_stage(["image2.cfg", asn, f"--output_dir={level2}"], env, work)
    cal = level2 / rate.name.replace("_rate", "_cal")
    inputs["image2"] = [str(rate), *map(str, sky_rates), *stage_references(cal, cache, before=rate)]
    floors = {}
    for name, product in (("detector1", rate), ("image2", cal)):
        prewarm(inputs[name])
        call = bench_call("io_floor", inputs=inputs[name], products=[str(product)], scratch=str(work / "floor"))
        floors[name] = run_stage(call, env, work)

    startup = run_stage(["--version"], env, work)[0]
    sizes = {"uncal": science[0].stat().st_size, "rate": rate.stat().st_size, "cal": cal.stat().st_size}
    print(
        f"{args.size}x{args.size}, {args.nreads} reads; files: Level 0 {sizes['uncal'] / 2**20:.0f} MiB, "
        f"_rate {sizes['rate'] / 2**20:.0f} MiB, _cal {sizes['cal'] / 2**20:.0f} MiB"
    )
    print(f"Cold tmtrun chain (fresh processes; Python start-up and imports, tmtrun --version: {startup:.2f} s)")
    columns = (("wall s", 7), ("run s", 6), ("I/O s", 6), ("x I/O", 6))
    columns += (("run x I/O", 9), ("peak GiB", 9), ("x product", 10))
    print(f"  {'stage':<10} " + " ".join(f"{title:>{width}}" for title, width in columns))
    for name, product in (("detector1", "rate"), ("image2", "cal")):
        (elapsed, peak, run), floor = cold[name], floors[name][2]
        print(
            f"  {name:<10} {elapsed:7.2f} {run:6.2f} {floor:6.2f} {elapsed / floor:6.2f} {run / floor:9.2f} "
            f"{peak / 2**30:9.2f} {peak / sizes[product]:10.2f}"
        )
    print("  (wall: the whole process; run: the pipeline's own run, from its log, after start-up and imports)")
    chain = sum(stage[0] for stage in cold.values())
    chain_io = sum(stage[2] for stage in floors.values())
    print(f"  Level 0 -> 2: {chain:.1f} s (target < 15 s); its I/O {chain_io:.1f} s (x{chain / chain_io:.2f})")

    if not args.no_warm:
        service = work / "service"
        call = bench_call(
            "warm_service",
            skies=list(map(str, skies)),
            warmup=str(science[0]),
            new=str(science[1]),
            output_dir=str(service),
            cache=str(cache),
        )
        prewarm([*skies, *science])
        _, _, warm = run_stage(call, env, work)
        latency = warm["latency"]
        level2_latency = latency["detector1"] + latency["image2"]
        print("Warm service (ExposureReducer, a new exposure after two skies and one science frame):")
        print("  " + ", ".join(f"{stage} {seconds:.2f} s" for stage, seconds in latency.items()))
        print(
            f"  Level 0 -> 2: {level2_latency:.2f} s (floor {warm['floor']:.2f} s, "
            f"x{level2_latency / warm['floor']:.2f}; target x2); with QA and quick-look {latency['total']:.2f} s"
        )
        print(
            f"  peak {warm['peak'] / 2**30:.2f} GiB during the frame ({warm['peak'] / sizes['cal']:.2f} x the _cal "
            f"product), {warm['resident'] / 2**30:.2f} GiB resident before it"
        )
    if not args.keep and not args.workdir:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
