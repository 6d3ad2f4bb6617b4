"""Benchmark of the per-frame quick-look work of the real-time service: QA numbers, PNG, DS9 regions.

One simulated exposure (IRIS Kbb, stars, the cache detector) is written as a Level 0 ramp and
as a Level 2 frame (the truth's scene plus Gaussian noise of its variance, DQ from the truth's
mask, a gwcs), then timed in this process, warm (the second of two runs, as in the service):

* ``detected_sources`` and ``measure_quality`` (with the detection reused) on the open frame;
* ``render_png`` of the open frame, and of each file from its path (reading included);
* ``write_ds9_regions``;

and, cold, ``tmt-quicklook`` on both files in a fresh process (start-up included).

usage: python benchmarks/bench_quicklook.py [--size 4096] [--nreads 10] [--stars 300] [--workdir DIR]
"""

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_files(folder, size, nreads, stars):
    import numpy as np

    from liger_iris_pipeline import datamodels
    from liger_iris_pipeline import simulate as sim
    from liger_iris_pipeline.assign_wcs.imaging import assign_wcs

    detector = sim.make_detector((size, size), seed=sim.CACHE_DETECTOR_SEED)
    scene = sim.Scene.random(stars, seed=2, ra=150.1, dec=2.2, field=0.9 * size * 0.004)
    ramp, truth = sim.simulate_exposure(scene, detector, nreads=nreads, pointing=(150.1, 2.2, 20.0), seed=3)
    ramp.save(folder / "bench_uncal.fits")
    sigma = np.sqrt(np.maximum(truth.scene_rate, 0) / ramp.meta.exposure.integration_time + 1.0)
    noise = np.random.default_rng(0).standard_normal(truth.scene_rate.shape)
    cal = datamodels.IRISImageModel((truth.scene_rate + noise * sigma).astype(np.float32))
    cal.update(ramp)
    cal.err = sigma.astype(np.float32)
    cal.dq = truth.mask.astype(np.uint32)
    cal.meta.processing_level = 2
    assign_wcs(cal)
    cal.save(folder / "bench_cal.fits")
    return folder / "bench_uncal.fits", folder / "bench_cal.fits"


def timed(label, function, repeat=2):
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        elapsed = time.perf_counter() - start
    print(f"{label:<40s} {elapsed:7.2f} s")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--nreads", type=int, default=10)
    parser.add_argument("--stars", type=int, default=300)
    parser.add_argument("--workdir", type=Path)
    arguments = parser.parse_args()
    folder = arguments.workdir or Path(tempfile.mkdtemp(prefix="bench_quicklook_"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        uncal, cal_path = make_files(folder, arguments.size, arguments.nreads, arguments.stars)
        from liger_iris_pipeline import datamodels
        from liger_iris_pipeline.operations.qa import detected_sources, measure_quality
        from liger_iris_pipeline.quicklook.regions import write_ds9_regions
        from liger_iris_pipeline.quicklook.render import render_png

        print(f"{arguments.size} x {arguments.size}, {arguments.nreads} reads, {arguments.stars} stars; warm:")
        with datamodels.open(cal_path) as cal:
            sources = timed("detected_sources", lambda: detected_sources(cal))
            qa = timed("measure_quality (detection reused)", lambda: measure_quality(cal, sources))
            timed("render_png (open frame)", lambda: render_png(cal, folder / "open.png"))
            timed("write_ds9_regions", lambda: write_ds9_regions(sources, cal.meta.wcs, folder / "cal.reg"))
        timed("render_png (Level 2 file)", lambda: render_png(cal_path, folder / "cal.png"))
        timed("render_png (Level 0 file)", lambda: render_png(uncal, folder / "uncal.png"))
        numbers = (f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in qa.items())
        print("QA:", ", ".join(numbers))
        command = [
            str(Path(sys.executable).parent / "tmt-quicklook"),
            str(uncal),
            str(cal_path),
            "--output-dir",
            str(folder / "cli"),
        ]
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        print(f"{'tmt-quicklook, both files (cold)':<40s} {time.perf_counter() - start:7.2f} s")
    finally:
        if arguments.workdir is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
