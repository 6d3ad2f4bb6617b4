"""Benchmark of Level 3 imaging (image3) on dithered frames, against bare drizzle calls in the same run.

N dithered, distorted Level 2 frames (``_cal``, MJy/sr, stars, the test suite's
``tests/mosaic_helpers.py`` generator; dithers of about an arcsecond, 5 pixels of distortion at
the corners of a full frame) are written once; then each stage runs in a fresh Python process,
so that its time includes start-up and its peak memory (``VmHWM``) is its own:

* ``startup``: importing the steps (included in every stage's time);
* ``floor``: the bare drizzle calls of the mosaic image3 makes, on the same frames: for each
  frame, read it, compute its pixel map on the mosaic grid (the WCS evaluated every
  ``--pixmap-stepsize`` pixels, as the steps do), drizzle its SCI and the square root of each
  of its non-zero variance arrays (one ``drizzle.resample.Drizzle.add_image`` each, into a
  ``Drizzle`` of its own: the ``_i2d`` carries VAR_POISSON, VAR_RNOISE and VAR_FLAT, and jwst's
  variance propagation, which resample follows, drizzles each one like SCI). It runs first and
  last (the machine may be shared): the mean is the reference. The floor used to drizzle SCI
  only, which left the variance drizzles every ``_i2d`` needs outside the floor and inside the
  budget's overhead; ``floor SCI only`` is that figure, shown for comparison;
* ``outlier_detection``, ``resample``: the steps on the association, frames on disk;
* ``source_catalog``: the step on the ``_i2d``;
* ``image3``: the whole pipeline (tweakreg, skymatch, outlier_detection, resample,
  source_catalog), when it is installed.

Each stage's wall time, CPU time (user + system: on a shared machine, free of the waits for the
cores other programs hold), their ratios to the floor's and its peak memory are printed, with the
memory of the output arrays plus one frame (the design's bound) for comparison.

The issue's target is printed last: image3 within 2 x the floor plus source detection (ratio <= 1):
the second floor pays for outlier detection (a drizzle of every frame, the median, a blot of every
frame) and everything else image3 does (tweakreg, skymatch, reading and writing the frames).

usage: python benchmarks/bench_image3.py [--size 4096] [--frames 4 9] [--workdir DIR] [--keep] [--no-image3]
"""

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent / "tests"

MAKE_FRAMES = """
import sys
sys.path.insert(0, sys.argv[1])
from mosaic_helpers import make_frames
from liger_iris_pipeline.associations.level3 import make_level3_asn
work, size, count = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
names = []
def save(model):
    name = f"{work}/bench{len(names)}_cal.fits"
    model.save(name)
    model.close()
    names.append(name)
scale = size / 4096
make_frames(n_frames=count, shape=(size, size), n_stars=max(16, int(400 * scale * scale)), fwhm=4.0,
            dither=250 * scale, distortion=5.0, seed=count, margin=int(40 * scale) + 12, on_frame=save)
make_level3_asn(names, "bench", output=f"{work}/bench_asn.json")
"""

FLOOR = """
import sys, json
from pathlib import Path
import numpy as np
from drizzle.resample import Drizzle
from liger_iris_pipeline import datamodels
from liger_iris_pipeline.lib.variance import VARIANCE_ARRAYS
from liger_iris_pipeline.resample.resample import frame_summary, output_grid, pixel_map
asn, stepsize, variances = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "variances"
members = [asn.parent / m["expname"] for m in json.loads(asn.read_text())["products"][0]["members"]]
summaries = []
for name in members:
    with datamodels.open(name) as model:
        summaries.append(frame_summary(model))
wcs, _info, _scale, ratio = output_grid(summaries)
driz = Drizzle(out_shape=wcs.array_shape, fillval=np.nan)
for name in members:
    with datamodels.open(name) as model:
        pixmap = pixel_map(model.meta.wcs, wcs, model.data.shape, stepsize)
        driz.add_image(model.data, exptime=1.0, pixmap=pixmap, pixel_scale_ratio=ratio)
        for array in VARIANCE_ARRAYS if variances else ():
            variance = getattr(model, array)
            if variance.any():  # an all-zero array needs no drizzle, in image3 either
                single = Drizzle(out_shape=wcs.array_shape, fillval=np.nan, disable_ctx=True)
                single.add_image(np.sqrt(variance), exptime=1.0, pixmap=pixmap, pixel_scale_ratio=ratio)
print(wcs.array_shape)
"""

STARTUP = """
import liger_iris_pipeline.resample, liger_iris_pipeline.outlier_detection, liger_iris_pipeline.source_catalog
"""

STEP = """
import sys
from importlib import import_module
module, name, source, output, stepsize = sys.argv[1:6]
step = getattr(import_module(module), name)
if name == "ProcessImagerL3Pipeline":
    options = {"steps": {alias: {"pixmap_stepsize": int(stepsize)} for alias in ("outlier_detection", "resample")}}
elif name == "SourceCatalogStep":
    options = {}
else:
    options = {"pixmap_stepsize": int(stepsize)}
# The flagged frames (_crf) are written on request only, as in image3.
result = step.call(source, output_dir=output, save_results=name != "OutlierDetectionStep", **options)
"""

# Runs code in this process and appends the process's own peak RSS (VmHWM) to the file in argv[1].
PEAK_WRAPPER = """
import sys
report, code, sys.argv = sys.argv[1], sys.argv[2], sys.argv[2:]
try:
    exec(compile(code, "<stage>", "exec"), {"__name__": "__main__"})
finally:
    with open("/proc/self/status") as proc, open(report, "w") as out:
        out.write(next(line for line in proc if line.startswith("VmHWM:")).split()[1])
"""


def run_stage(code, args, work):
    """Run one stage in a fresh Python; return (wall s, peak RSS bytes, CPU s)."""
    report = work / "peak_kib.txt"
    command = [sys.executable, "-c", PEAK_WRAPPER, str(report), code, *map(str, args)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=work)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"stage {args[:2]} failed:\n{result.stderr[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, int(report.read_text()) * 1024, cpu


def image3_available():
    try:
        import liger_iris_pipeline.pipeline.image3  # noqa: F401
    except ImportError:
        return False
    return True


def bench(size, count, work, with_image3=True, stepsize=4):
    """Run every stage on ``count`` frames of ``size`` pixels; return the rows of the table."""
    work.mkdir(parents=True, exist_ok=True)
    asn = work / "bench_asn.json"
    stamp = work / "frames.txt"
    # A --workdir keeps the frames: made again only for another size.
    if not (asn.is_file() and stamp.is_file() and stamp.read_text() == f"{size} {count}"):
        run_stage(MAKE_FRAMES, [TESTS, work, size, count], work)
        stamp.write_text(f"{size} {count}")
    frame_bytes = size * size * 4 * 6  # SCI, ERR, DQ, 3 variances
    rows = {
        "startup": run_stage(STARTUP, [], work),
        "floor": run_stage(FLOOR, [asn, stepsize, "variances"], work),
        "floor SCI only": run_stage(FLOOR, [asn, stepsize, "sci"], work),
    }
    for name, module, klass, source in (
        ("outlier_detection", "liger_iris_pipeline.outlier_detection", "OutlierDetectionStep", asn),
        ("resample", "liger_iris_pipeline.resample", "ResampleStep", asn),
        ("source_catalog", "liger_iris_pipeline.source_catalog", "SourceCatalogStep", work / "out" / "bench_i2d.fits"),
    ):
        rows[name] = run_stage(STEP, [module, klass, source, work / "out", stepsize], work)
    if with_image3 and image3_available():
        rows["image3"] = run_stage(
            STEP,
            ["liger_iris_pipeline.pipeline.image3", "ProcessImagerL3Pipeline", asn, work / "image3", stepsize],
            work,
        )
    # The machine may be shared: the floor again at the end, and the mean of the two is the reference.
    again = run_stage(FLOOR, [asn, stepsize, "variances"], work)
    rows["floor (again)"] = again
    rows["floor"] = (
        (rows["floor"][0] + again[0]) / 2,
        max(rows["floor"][1], again[1]),
        (rows["floor"][2] + again[2]) / 2,
    )
    with_header = {}
    from astropy.io import fits

    with fits.open(work / "out" / "bench_i2d.fits") as hdus:
        ny, nx = hdus["SCI"].data.shape
    output_bytes = ny * nx * 4 * 8  # SCI, ERR, WHT, CON, 3 variances + drizzle's working weights
    with_header["bound"] = output_bytes + frame_bytes
    return rows, (ny, nx), with_header["bound"]


def main(argv=None):
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096, help="frame side (pixels)")
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 9], help="numbers of dithered frames")
    parser.add_argument("--workdir", help="where to put the data (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--no-image3", action="store_true", help="only the floor and this package's steps")
    parser.add_argument(
        "--pixmap-stepsize", type=int, default=4, help="WCS evaluated every N pixels, floor and steps alike"
    )
    args = parser.parse_args(argv)
    base = Path(args.workdir or tempfile.mkdtemp(prefix="bench_image3_"))
    for count in args.frames:
        work = base / f"n{count}"
        rows, shape, bound = bench(args.size, count, work, not args.no_image3, args.pixmap_stepsize)
        floor = rows["floor"][0]
        print(
            f"\n{count} frames of {args.size}x{args.size} -> mosaic {shape[1]}x{shape[0]}, "
            f"pixmap_stepsize {args.pixmap_stepsize}"
        )
        print(f"{'stage':<18} {'wall s':>8} {'x floor':>8} {'CPU s':>8} {'x floor':>8} {'peak GiB':>9} {'x bound':>8}")
        for name, (elapsed, peak, cpu) in rows.items():
            print(
                f"{name:<18} {elapsed:8.2f} {elapsed / floor:8.2f} {cpu:8.2f} {cpu / rows['floor'][2]:8.2f} "
                f"{peak / 2**30:9.2f} {peak / bound:8.2f}"
            )
        steps = sum(rows[name][0] for name in ("outlier_detection", "resample"))
        catalog = rows["source_catalog"][0]
        print(
            f"outlier_detection + resample: {steps:.1f} s = {steps / (2 * floor):.2f} x (floor x2); "
            f"source_catalog {catalog:.1f} s; bound (outputs + one frame) {bound / 2**30:.2f} GiB"
        )
        if "image3" in rows:
            # The target: the whole of image3 within 2 x the floor plus source detection.
            budget = 2 * floor + catalog
            print(f"image3 {rows['image3'][0]:.1f} s = {rows['image3'][0] / budget:.2f} x (2 x floor + source_catalog)")
            sci_only = 2 * rows["floor SCI only"][0] + catalog
            print(f"  against the SCI-only floor: {rows['image3'][0] / sci_only:.2f} x (2 x that + source_catalog)")
            # CPU time does not count the waits for the cores other programs hold.
            cpu_budget = 2 * rows["floor"][2] + rows["source_catalog"][2]
            print(
                f"  in CPU time: image3 {rows['image3'][2]:.1f} s = {rows['image3'][2] / cpu_budget:.2f} x the budget"
            )
    if not args.keep and not args.workdir:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
