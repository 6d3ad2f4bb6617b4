"""Benchmark of the iris_readout ramp fit against the memory floor and stcal.

For each read count a synthetic read-major ``(nreads, size, size)`` uint16
ramp is built once in memory (ramps, a few saturating pixels and cosmic-ray
jumps) and, in the same process, these are timed on it:

* ``floor``: ``sum_reads``, a trivial C kernel summing the reads (2 threads),
  the cost of reading the ramp once;
* ``plain``: UTR, unweighted, no references, no jump detection;
* ``full``: nonlinearity + saturation + jumps + variances + DQ with
  per-pixel reference maps and optimal weighting;
* ``stcal``: JWST's OLS_C ramp fit (stcal) on the same ramp as float32, if
  stcal imports (10 and 30 reads only; it takes tens of seconds).

Outputs are preallocated and reused, so repeated calls measure the steady
state of a pipeline that processes frame after frame.  Times are the best of
``--repeat`` runs (the machine is shared).  Memory: the process's peak
resident set size during each kernel (Linux VmHWM, reset before each
measurement), and that peak over the ramp plus the outputs.

usage: python benchmarks/bench_readout.py [--size 4096] [--reads 10 30 100]
       [--repeat 3] [--skip-stcal]
"""

import argparse
import gc
import resource
import time

import numpy as np

from liger_iris_pipeline.readout import RampFitResult, fit_ramp, sum_reads, version

TFRAME = 1.47  # s per read
GB = 1024.0**3


def reset_peak_rss():
    """Reset the kernel's peak-RSS counter of this process (Linux)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes():
    """Peak resident set size since the last reset (VmHWM), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_ramp(nreads, size, rng):
    """Synthetic uint16 ramp built read by read (no whole-cube temporaries)."""
    npix = size * size
    cube = np.empty((nreads, size, size), np.uint16)
    bias = rng.integers(900, 1100, npix).astype(np.uint32)
    per_read = rng.integers(10, 60 * 100 // nreads + 10, npix).astype(np.uint32)
    noise = [rng.integers(0, 24, npix).astype(np.uint32) for _ in range(4)]
    hot = rng.choice(npix, npix // 1000, replace=False)  # saturate mid-ramp
    per_read[hot] = 65535 // max(nreads // 2, 1)
    crs = rng.choice(npix, npix // 500, replace=False)  # cosmic-ray jumps
    cr_read = rng.integers(1, nreads, crs.size)
    tmp = np.empty(npix, np.uint32)
    for k in range(nreads):
        np.multiply(per_read, k + 1, out=tmp)
        tmp += bias
        tmp += noise[k % 4]
        tmp[crs[cr_read <= k]] += 600
        np.minimum(tmp, 65535, out=tmp)
        cube[k] = tmp.reshape(size, size)
    times = TFRAME * np.arange(1, nreads + 1)
    return cube, times


def make_refs(size, rng):
    shape = (size, size)
    coeffs = np.zeros((3,) + shape, np.float32)
    coeffs[1] = 1.0
    coeffs[2] = rng.uniform(0.0, 2e-7, shape).astype(np.float32)
    return dict(
        nonlin_coeffs=coeffs,
        saturation=np.full(shape, 60000.0, np.float32),
        read_noise=np.full(shape, 9.0, np.float32),
        gain=np.full(shape, 1.0, np.float32),
        mask=np.zeros(shape, np.uint32),
    )


def timed(fn, repeat):
    """Best wall time of ``repeat`` calls and the peak RSS during them."""
    fn()  # warm up: page in outputs, thread pool
    gc.collect()
    reset_peak_rss()
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best, peak_rss_bytes()


def stcal_fit(cube, times):
    """JWST OLS_C ramp fit (optimal weighting) via stcal's RampData API."""
    from stcal.ramp_fitting.ramp_fit import ramp_fit_data
    from stcal.ramp_fitting.ramp_fit_class import RampData

    nreads, ny, nx = cube.shape
    data = cube.astype(np.float32)[None]
    rd = RampData()
    rd.set_arrays(
        data,
        np.zeros(data.shape, np.uint8),
        np.zeros((ny, nx), np.uint32),
        np.zeros((ny, nx), np.float32),
    )
    dt = float(times[1] - times[0])
    rd.set_meta(name="NIRCAM", frame_time=dt, group_time=dt, groupgap=0, nframes=1, drop_frames1=None)
    rd.algorithm = "OLS_C"
    rd.set_dqflags(
        dict(
            DO_NOT_USE=1,
            SATURATED=2,
            JUMP_DET=4,
            PERSISTENCE=32,
            NO_GAIN_VALUE=1 << 19,
            UNRELIABLE_SLOPE=1 << 24,
            CHARGELOSS=128,
        )
    )
    rn = np.full((ny, nx), 9.0, np.float32)
    gain = np.ones((ny, nx), np.float32)
    image, _, _ = ramp_fit_data(rd, False, rn, gain, "OLS_C", "optimal", "none")
    return image["slope"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="frame is size x size")
    parser.add_argument("--reads", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    parser.add_argument("--skip-stcal", action="store_true", help="do not run stcal")
    args = parser.parse_args(argv)

    stcal = None
    if not args.skip_stcal:
        try:
            import stcal  # noqa: F401

            stcal = stcal.__version__
        except ImportError:
            stcal = None
    rng = np.random.default_rng(2024)
    size = args.size
    refs = make_refs(size, rng)
    shape = (size, size)
    out = RampFitResult(
        np.empty(shape, np.float32),
        np.empty(shape, np.float32),
        np.empty(shape, np.float32),
        np.empty(shape, np.uint32),
        np.empty(shape, np.uint16),
    )
    out_bytes = sum(a.nbytes for a in out)
    floor_out = np.empty(shape, np.uint32)

    print(
        f"iris_readout {version()}, {size}x{size} uint16 ramps, best of {args.repeat}"
        f"{'' if stcal else ', stcal not run'}{', stcal ' + stcal if stcal else ''}"
    )
    header = (
        f"{'reads':>5} {'kernel':<6} {'thr':>3} {'time s':>8} {'Gpixread/s':>10} "
        f"{'x floor':>8} {'stcal/x':>8} {'peak GB':>8} {'x(ramp+out)':>11}"
    )
    print(header)
    print("-" * len(header))
    for nreads in args.reads:
        cube, times = make_ramp(nreads, size, rng)
        work = nreads * size * size
        base = cube.nbytes + out_bytes
        rows = []
        floor_t, floor_mem = timed(lambda c=cube: sum_reads(c, nthreads=2, out=floor_out), args.repeat)
        rows.append(("floor", 2, floor_t, floor_mem))
        for nthreads in (1, 2):
            t, mem = timed(
                lambda c=cube, ts=times, nt=nthreads: fit_ramp(
                    c, ts, weighting="unweighted", jump_threshold=0.0, nthreads=nt, out=out
                ),
                args.repeat,
            )
            rows.append(("plain", nthreads, t, mem))
        for nthreads in (1, 2):
            t, mem = timed(
                lambda c=cube, ts=times, nt=nthreads: fit_ramp(c, ts, jump_threshold=5.0, nthreads=nt, out=out, **refs),
                args.repeat,
            )
            rows.append(("full", nthreads, t, mem))
        stcal_t = None
        if stcal and nreads <= 30:
            gc.collect()
            reset_peak_rss()
            t0 = time.perf_counter()
            stcal_fit(cube, times)
            stcal_t = time.perf_counter() - t0
            rows.append(("stcal", 1, stcal_t, peak_rss_bytes()))
        for name, nthreads, t, mem in rows:
            vs_stcal = f"{stcal_t / t:8.0f}" if stcal_t and name != "stcal" else f"{'':>8}"
            print(
                f"{nreads:5d} {name:<6} {nthreads:3d} {t:8.3f} {work / t / 1e9:10.2f} "
                f"{t / floor_t:8.2f} {vs_stcal} {mem / GB:8.2f} {mem / base:11.2f}"
            )
        print(
            f"      ramp {cube.nbytes / GB:.2f} GB, outputs {out_bytes / GB:.2f} GB, "
            f"references {sum(np.asarray(v).nbytes for v in refs.values()) / GB:.2f} GB"
        )
        del cube
        gc.collect()


if __name__ == "__main__":
    main()
