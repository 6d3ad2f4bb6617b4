"""The README's demo: simulate a raw exposure and its calibration data, read them back, summarise.

Run as ``liger-iris-demo --output DIR [--size N] [--nreads M]`` (``make demo`` runs it at full
frame). It prints one line per product and, at the end, the wall time and the peak memory.
"""

import argparse
import resource
import sys
import time


def _summarise(path):
    """Return a one-line summary of a product read back through `datamodels.open`."""
    import numpy as np

    from . import datamodels

    with datamodels.open(path) as model:
        meta = model.meta
        name = type(model).__name__
        if isinstance(model, datamodels.TMTRampModel):
            ramp = model.data[0]
            # Median CDS rate of the central pixels: a quick look that touches two reads only.
            ny, nx = ramp.shape[1:]
            centre = (slice(ny // 4, 3 * ny // 4), slice(nx // 4, 3 * nx // 4))
            cds = (ramp[-1][centre].astype(np.float32) - ramp[0][centre]) / (model.read_times[-1] - model.read_times[0])
            return (
                f"{name:<18} {meta.exposure.type:<11} {meta.instrument.filter:<5} "
                f"{'x'.join(map(str, model.data.shape)):<18} {model.data.dtype!s:<7} "
                f"median CDS rate {np.median(cds):9.3f} DN/s"
            )
        reftype = meta.reftype
        array = model.dq if reftype == "MASK" else model.coeffs if reftype == "NONLIN" else model.data
        if reftype == "MASK":
            stat = f"{np.count_nonzero(array & datamodels.dqflags.pixel['DO_NOT_USE'])} DO_NOT_USE pixels"
        else:
            plane = array[1] if array.ndim == 3 else array
            stat = f"median {np.nanmedian(plane):11.5g}"
        return (
            f"{name:<18} {reftype:<11} {meta.instrument.filter or '':<5} "
            f"{'x'.join(map(str, array.shape)):<18} {array.dtype!s:<7} {stat}"
        )


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
    parser = argparse.ArgumentParser(prog="liger-iris-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output", help="directory for the products (default demo_output)")
    parser.add_argument("--size", type=int, default=4096, help="detector side in pixels (default 4096)")
    parser.add_argument("--nreads", type=int, default=10, help="reads per integration (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)

    from .simulate import simulate_dataset

    started = time.perf_counter()
    print(f"simulating a {args.size}x{args.size} detector, {args.nreads} reads, into {args.output}/ ...")
    manifest = simulate_dataset(args.output, size=args.size, nreads=args.nreads, seed=args.seed)
    simulated = time.perf_counter()
    print(f"simulated in {simulated - started:.1f} s; reading the products back:")
    paths = [path for kind in ("science", "sky", "dark", "flat") for path in manifest[kind]]
    paths += list(manifest["references"].values())
    for path in paths:
        print(f"  {path.rsplit('/', 1)[-1]:<28} {_summarise(path)}")
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        f"done: {len(paths)} products in {args.output}/ (truth files and manifest.json beside them); "
        f"wall time {time.perf_counter() - started:.1f} s, peak memory {peak_gib:.2f} GiB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
