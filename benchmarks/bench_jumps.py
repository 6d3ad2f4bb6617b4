"""Jump-detection recall and false flags of iris_readout, and of stcal on the same cubes.

For each read count the same cubes go to both detectors:

* clean pixels: read-noise limited (rate 0) and with Poisson signal (rates
  log-uniform in 5-500 DN/s, gain 2 e-/DN);
* jump pixels: the same two populations with one jump, at a random read, of
  exactly 10 sigma and of 10-30 sigma, sigma being the noise of a two-point
  difference, ``sqrt(2 rn**2 + rate dt / gain)`` DN.

Samples are uint16 (bias 1000 DN, rounded).  A pixel is flagged when its
iris_readout DQ has JUMP_DET, or when any stcal group has JUMP_DET.  stcal
(``stcal.jump``) runs its 5 sigma setting (rejection_threshold=5,
three_grp_thresh=6, four_grp_thresh=5) without neighbour flagging, showers,
snowballs or after-jump flagging, and is given the read noise of a two-point
difference (``--stcal-rn cds``, its convention: it divides a difference by
``sqrt(read_noise**2 + |median| dt)``) or of one read (``--stcal-rn read``).
It is skipped with a message if it does not import.

usage: python benchmarks/bench_jumps.py [--reads 3 4 5 6 10 30] [--clean 200000]
       [--jumps 20000] [--stcal-rn cds|read] [--seed 1] [--rn 5] [--gain 2]
"""

import argparse
import logging
import time

import numpy as np

from liger_iris_pipeline.readout import fit_ramp, version

RN = 5.0  # DN per read
GAIN = 2.0  # e-/DN
BIAS = 1000.0  # DN
TFRAME = 1.47  # s per read
JUMP_DET = 4
WIDTH = 250  # pixels per row of the cubes (jump populations are split in halves)


def make_cube(nreads, npix, rng, poisson, jump_sigma=None):
    """Return a (nreads, npix // WIDTH, WIDTH) uint16 cube, read times and the rates.

    Parameters
    ----------
    nreads, npix : int
        Reads and pixels (a multiple of WIDTH).
    rng : numpy.random.Generator
        Random numbers.
    poisson : bool
        Rates log-uniform in 5-500 DN/s, else 0 (read-noise limited).
    jump_sigma : None, float or (float, float)
        No jump, a jump of that many sigma, or uniform in that range.
    """
    times = TFRAME * np.arange(1, nreads + 1)
    rate = np.exp(rng.uniform(np.log(5.0), np.log(500.0), npix)) if poisson else np.zeros(npix)
    edges = np.concatenate([[0.0], times])
    electrons = rng.poisson(np.outer(np.diff(edges), rate * GAIN)).cumsum(axis=0)
    reads = BIAS + electrons / GAIN + rng.normal(0.0, RN, (nreads, npix))
    if jump_sigma is not None:
        amp = np.full(npix, float(jump_sigma)) if np.ndim(jump_sigma) == 0 else rng.uniform(*jump_sigma, npix)
        sigma = np.sqrt(2 * RN**2 + rate * TFRAME / GAIN)
        after = rng.integers(1, nreads, npix)  # first read after the jump
        reads += np.where(np.arange(nreads)[:, None] >= after, amp * sigma, 0.0)
    cube = np.clip(np.rint(reads), 0, 65535).astype(np.uint16)
    return cube.reshape(nreads, npix // WIDTH, WIDTH), times, rate


def iris_flags(cube, times):
    """Return the pixels iris_readout flags JUMP_DET (bool, flat)."""
    res = fit_ramp(cube, times, read_noise=RN, gain=GAIN, saturation=65535.0)
    return (res.dq & JUMP_DET).ravel() != 0


def stcal_flags(cube, stcal_rn):
    """Return the pixels stcal.jump flags in any group (bool, flat), or None."""
    try:
        from stcal.jump.jump import detect_jumps_data
        from stcal.jump.jump_class import JumpData
    except ImportError:
        return None
    logging.getLogger("stcal").setLevel(logging.ERROR)
    nreads, ny, nx = cube.shape
    flags = {"GOOD": 0, "DO_NOT_USE": 1, "SATURATED": 2, "JUMP_DET": 4}
    flags.update(NO_GAIN_VALUE=2**19, REFERENCE_PIXEL=2**31)
    rn = RN * np.sqrt(2.0) if stcal_rn == "cds" else RN
    jd = JumpData(gain2d=np.full((ny, nx), GAIN, np.float32), rnoise2d=np.full((ny, nx), rn, np.float32), dqflags=flags)
    jd.init_arrays_from_arrays(
        cube[None].astype(np.float32), np.zeros((1, nreads, ny, nx), np.uint8), np.zeros((ny, nx), np.uint32)
    )
    jd.nframes = 1
    jd.dt_group = np.ones(1)
    jd.n_reads_groupdiff = np.ones(1) * 2
    jd.set_detection_settings(5.0, 6.0, 5.0, 1000, 10, False)
    jd.max_cores = "1"
    gdq = detect_jumps_data(jd)[0]
    return ((gdq[0] & JUMP_DET) != 0).any(axis=0).ravel()


def main(argv=None):
    """Print recall and false-flag rates per read count."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, nargs="+", default=[3, 4, 5, 6, 10, 30])
    parser.add_argument("--clean", type=int, default=200000, help="clean pixels per population")
    parser.add_argument("--jumps", type=int, default=20000, help="jump pixels per population and size")
    parser.add_argument("--stcal-rn", choices=("cds", "read"), default="cds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rn", type=float, default=5.0, help="read noise, DN per read")
    parser.add_argument("--gain", type=float, default=2.0, help="e-/DN")
    parser.add_argument("--skip-stcal", action="store_true")
    args = parser.parse_args(argv)
    globals().update(RN=args.rn, GAIN=args.gain)  # read by the cube generator and both detectors
    npc = max(args.clean // WIDTH, 1) * WIDTH
    npj = max(args.jumps // (2 * WIDTH), 1) * 2 * WIDTH
    probe = make_cube(3, WIDTH, np.random.default_rng(0), False)[0]
    have_stcal = not args.skip_stcal and stcal_flags(probe, "cds") is not None
    print(f"iris_readout {version()}; rn {RN} DN, gain {GAIN} e-/DN, {npc} clean and {npj} jump pixels per population")
    if not have_stcal:
        print("stcal not run (--skip-stcal, or it does not import): pip install stcal")
    else:
        print(f"stcal: 5 sigma setting, read noise given as {args.stcal_rn} noise")
    cols = ["recall 10s rn", "recall 10s poi", "recall 10-30s", "false rn %", "false poi %"]
    print(f"{'reads':>5} {'method':>12} " + " ".join(f"{c:>14}" for c in cols) + f" {'time s':>7}")
    for nreads in args.reads:
        rng = np.random.default_rng(args.seed + nreads)
        cubes = [
            make_cube(nreads, npj, rng, False, 10.0),
            make_cube(nreads, npj, rng, True, 10.0),
            make_cube(nreads, npj // 2, rng, False, (10.0, 30.0)),
            make_cube(nreads, npc, rng, False),
            make_cube(nreads, npc, rng, True),
        ]
        # the 10-30 sigma population: half read-noise limited, half Poisson
        half = make_cube(nreads, npj // 2, rng, True, (10.0, 30.0))
        cubes[2] = (np.concatenate([cubes[2][0], half[0]], axis=1), cubes[2][1], None)
        methods = [("iris_readout", lambda cube, times: iris_flags(cube, times))]
        if have_stcal:
            methods.append((f"stcal({args.stcal_rn})", lambda cube, times: stcal_flags(cube, args.stcal_rn)))
        for name, func in methods:
            t0 = time.perf_counter()
            rates = [100.0 * func(cube, times).mean() for cube, times, _ in cubes]
            elapsed = time.perf_counter() - t0
            print(f"{nreads:>5} {name:>12} " + " ".join(f"{r:>14.3f}" for r in rates) + f" {elapsed:>7.1f}")


if __name__ == "__main__":
    main()
