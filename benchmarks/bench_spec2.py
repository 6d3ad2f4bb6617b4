"""Benchmark of spec2 on a full 4096 x 4096 slicer IFS frame: Level 1 -> cube (and spectrum), per step.

A Level 1 frame of the full slicer layout (88 x 45 slices, Kbb, the default science scene with sky)
is made from the simulator's truth (its detector rate, with Gaussian noise of the variances a 600 s
exposure has), with its references from the truth (``tests/ifs_helpers.py``: slice geometry,
wavelength solution, the IFS flat, the IFS detector's dark). In one process, each of spec2's steps
is then run on the previous one's product and timed, with its peak memory (``VmHWM``, reset before
each step), then the whole pipeline from the file (``ProcessIFSL2Pipeline``, products written).

The I/O floor, measured in the same run: reading the Level 1 frame as the pipeline does
(``datamodels.open``, checksums verified, every array loaded) and writing the pipeline's products
again (``_s3d`` and ``_x1d``, read beforehand). The ratio says what spec2 costs beyond the I/O any
reduction must do. The machine may be shared: compare the ratios of one run.

Measured (quiet 2-core machine, Kbb, 2036 planes, ``python benchmarks/bench_spec2.py --workdir
/tmp/bs2``): read 0.32 s; dark 0.33 s, flat 0.27 s, assign_wcs 0.89 s, cube_build 5.7 s, extract_1d
0.73 s (each on its own, input copied); spec2 from the file with its products written 7.5 s at a
peak of 2.4 GB, 11x its I/O floor of 0.66 s: the floor is small (a 384 MB frame read from the page
cache, a 0.23 GB cube written), the work is cube_build's resampling of 14 million detector pixels.
jwst's cube_build takes minutes per exposure.

usage: python benchmarks/bench_spec2.py [--workdir DIR] [--filter Kbb]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_pipeline import io_floor, peak_rss, prewarm, reset_peak_rss  # noqa: E402


def make_data(work, filter_name):
    """Write the Level 1 frame and return ``(path, references)`` (references as models)."""
    import ifs_helpers

    from liger_iris_pipeline.simulate import exposure, ifs

    layout = ifs.SlicerLayout()
    detector = ifs_helpers.ifs_detector(layout)
    scene = ifs.default_science_scene(layout, filter_name)
    cube, tables = ifs.truth_cube(scene, layout, filter_name)
    rate = exposure.illuminated_rate(detector, ifs.dispersed_rate(cube, tables["grid"], layout, filter_name))
    ramp, truth = ifs.simulate_ifs_exposure(
        ifs.IFSScene(sky=False, telluric=False), detector, layout, filter=filter_name, nreads=2, noiseless=True
    )
    frame = ifs_helpers.level1_frame(truth, ramp, detector, seed=1, rate=rate)
    path = Path(work) / "ifs_full_rate.fits"
    frame.save(path)
    slicegeo, wavecal = ifs_helpers.slicer_references(layout, detector, filter_name)
    references = {
        "dark": ifs_helpers.detector_reference(detector, "DARK", filter_name),
        "flat": ifs_helpers.ifs_flat(layout, detector, filter_name),
        "slicegeo": slicegeo,
        "wavecal": wavecal,
    }
    return path, references


def timed(function, *args, **kwargs):
    """Run a function; return ``(result, seconds, peak RSS in bytes)``."""
    reset_peak_rss()
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, peak_rss()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", help="folder for the data (default: a temporary one)")
    parser.add_argument("--filter", default="Kbb")
    args = parser.parse_args(argv)
    import logging

    logging.disable(logging.INFO)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_spec2_"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    path, references = make_data(work, args.filter)
    print(f"data: {path} ({path.stat().st_size / 2**20:.0f} MB) in {time.perf_counter() - start:.1f} s")

    from liger_iris_pipeline import datamodels
    from liger_iris_pipeline.assign_wcs import AssignWcsIFSStep
    from liger_iris_pipeline.cube_build import CubeBuildStep
    from liger_iris_pipeline.extract_1d import Extract1dStep
    from liger_iris_pipeline.pipeline.spec2 import IFSDarkCurrentStep, IFSFlatFieldStep, ProcessIFSL2Pipeline

    overrides = {
        "dark_current": {"override_dark": references["dark"]},
        "flat_field": {"override_flat": references["flat"]},
        "assign_wcs": {"override_slicegeo": references["slicegeo"], "override_wavecal": references["wavecal"]},
    }
    # Warm-up on the frame: imports and numba's compiled kernel, as in a running service.
    prewarm([path])
    model, seconds, peak = timed(datamodels.open, path)
    model.data  # noqa: B018 - load the arrays
    rows = [("read the Level 1 frame", seconds, peak)]
    steps = [
        ("dark_current", IFSDarkCurrentStep, overrides["dark_current"]),
        ("flat_field", IFSFlatFieldStep, overrides["flat_field"]),
        ("assign_wcs", AssignWcsIFSStep, overrides["assign_wcs"]),
        ("cube_build", CubeBuildStep, {}),
        ("extract_1d", Extract1dStep, {}),
    ]
    product = model
    for name, step_class, parameters in steps:
        product, seconds, peak = timed(step_class.call, product, **parameters)
        rows.append((name, seconds, peak))
    cube = product if not isinstance(product, datamodels.IRISSpectrumModel) else None
    output = work / "spec2"
    output.mkdir(exist_ok=True)
    result, seconds, peak = timed(
        ProcessIFSL2Pipeline.call, str(path), steps=overrides, save_results=True, output_dir=str(output)
    )
    rows.append(("spec2 (file -> _s3d, _x1d written)", seconds, peak))
    products = sorted(str(p) for p in output.glob("*_s3d.fits")) + sorted(str(p) for p in output.glob("*_x1d.fits"))
    prewarm([path, *products])
    floor = io_floor([str(path)], products, work / "floor")
    print(f"cube {result.data.shape} (nwave, ny, nx); spectrum of {len(datamodels.open(products[-1]).spec_table)} rows")
    print(f"{'stage':40s} {'seconds':>8s} {'peak GB':>8s}")
    for name, seconds, peak in rows:
        print(f"{name:40s} {seconds:8.2f} {peak / 2**30:8.2f}")
    spec2_seconds = rows[-1][1]
    print(f"{'I/O floor (read _rate, write _s3d, _x1d)':40s} {floor:8.2f}")
    print(f"spec2 / floor = {spec2_seconds / floor:.1f}")
    del cube


if __name__ == "__main__":
    main()
