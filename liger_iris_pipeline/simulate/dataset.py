"""A complete simulated data set on disk: science, sky, darks, flats, truth references.

``python -m liger_iris_pipeline.simulate --output DIR --size N --nreads M --seed S``
writes one with `simulate_dataset`; ``--level3 --dither N --dither-pattern box`` a Level 3 one
(dithered science exposures with pointing errors and residual defects, a pinhole-grid and a
standard-star exposure, reference and standards catalogs); ``--ifs`` a slicer IFS one
(`ifs.simulate_ifs_dataset`).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import filters
from .catalogs import write_reference_catalog, write_standards_catalog
from .detector import CACHE_DETECTOR_SEED, make_detector
from .exposure import (
    simulate_dark_exposure,
    simulate_exposure,
    simulate_flat_exposure,
    simulate_pinhole_exposure,
    simulate_sky_exposure,
    simulate_standard_exposure,
)
from .instruments import INSTRUMENTS, instrument_model
from .pointing import dither_offsets
from .references import REFERENCE_TYPES, reference_model
from .scene import Scene

__all__ = ["main", "simulate_dataset", "write_manifest", "write_truth_references"]

DEFAULT_POINTING = (150.1, 2.2, 0.0)
"""(ra, dec, pa) of the simulated science field (deg)."""


def simulate_dataset(
    output_dir,
    size=None,
    nreads=10,
    n_science=1,
    n_sky=1,
    n_darks=3,
    n_flats=3,
    seed=0,
    subarray=None,
    *,
    filter="Kbb",  # noqa: A002
    n_stars=100,
    read_time=None,
    pointing=DEFAULT_POINTING,
    detector_seed=CACHE_DETECTOR_SEED,
    instrument="iris",
    dither_pattern=None,
    dither_step=None,
    pointing_error_mas=None,
    level3=False,
):
    """Simulate and write a data set with its truth.

    Files (in ``output_dir``):

    - ``sim_science_NNN_uncal.fits``, ``sim_sky_NNN_uncal.fits``,
      ``sim_dark_NNN_uncal.fits``, ``sim_flat_NNN_uncal.fits``: Level 0 ramps
      (`TMTRampModel`); science exposures are dithered by ``size / 16`` pixels, or by
      ``dither_pattern``.
    - ``<same name>_truth.fits`` for each (`ExposureTruth.save`).
    - ``truth_<reftype>.fits``: the truth references (`reference_models`), lower-case reftype.
    - ``manifest.json``: the returned manifest.

    Parameters
    ----------
    output_dir : str or os.PathLike
        Directory (created if needed).
    size : int, optional
        Detector side (pixels); the instrument's imager detector by default.
    nreads : int
        Reads per integration (one integration per exposure).
    n_science, n_sky, n_darks, n_flats : int
        Number of exposures of each kind.
    seed : int
        Master seed; the scene and every exposure get seeds derived from it.
    subarray : tuple of int, optional
        ``(xstart, ystart, xsize, ysize)`` read out in every exposure and cut from the
        references; full frame if None.
    filter : str
        Filter of the science, sky and flat exposures.
    n_stars : int
        Point sources in the science field (one galaxy is added).
    read_time : float
        Time between reads (s); the instrument's by default.
    pointing : tuple of float
        ``(ra, dec, pa)`` of the science field (deg).
    detector_seed : int
        Seed of the detector. The default is the detector of the shipped CRDS cache, so the
        exposures reduce with its references; another seed is another physical detector
        (another DETSERNO), which needs references of its own.
    instrument : str
        ``iris`` (TMT) or ``liger`` (Keck): detector size, plate scale, telescope.
    dither_pattern : {'box', 'random'}, optional
        Dither the science exposures with `dither_offsets` (``n_science`` positions,
        ``dither_step`` arcsec apart, default 1 arcsec); by default the five positions
        ``(0, 0), (+-size/16, +-size/16)`` pixels in turn.
    dither_step : float, optional
        Step of ``dither_pattern`` (arcsec).
    pointing_error_mas : float, optional
        RMS per axis (mas) of the pointing error of each science exposure's header WCS (a
        normal draw per exposure, seeded; recorded in its truth); default 0 (exact
        headers), 20 with ``level3``.
    level3 : bool
        A Level 3 data set: science exposures dithered (``box`` by default, step
        ``min(1 arcsec, field / 8)``) with pointing errors and residual defects, plus a
        pinhole-grid exposure (``sim_pinhole_001``), a standard-star exposure
        (``sim_standard_001``, `simulate_standard_exposure`), ``reference_catalog.ecsv``
        (`write_reference_catalog`) and ``standards.ecsv`` (`write_standards_catalog`).

    Returns
    -------
    dict
        ``{"science": [...], "sky": [...], "dark": [...], "flat": [...]}`` lists of
        ramp files, ``"truth"``: {ramp file name: truth file}, ``"references"``:
        {REFTYPE: file}, ``"manifest"``: the JSON file; all paths as strings. With
        ``level3`` also ``"pinhole"`` and ``"standard"`` (lists of ramp files),
        ``"reference_catalog"`` and ``"standards_catalog"`` (files).
    """
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    facts = instrument_model(instrument)
    detector = make_detector(None if size is None else (size, size), seed=detector_seed, instrument=instrument)
    size = detector.shape[1]
    read_time = facts.read_time if read_time is None else read_time
    ra, dec, pa = pointing
    field = size * facts.plate_scale
    scene = Scene.random(n_stars, seed + 1, ra, dec, field=field)
    manifest = {"science": [], "sky": [], "dark": [], "flat": [], "truth": {}, "references": {}}
    if level3:
        manifest.update({"pinhole": [], "standard": []})
        dither_pattern = dither_pattern or "box"
        dither_step = min(1.0, field / 8.0) if dither_step is None else dither_step
        pointing_error_mas = 20.0 if pointing_error_mas is None else pointing_error_mas
    pointing_error_mas = 0.0 if pointing_error_mas is None else float(pointing_error_mas)

    # Each exposure is written and dropped before the next is simulated: at full frame one
    # exposure with its truth takes ~0.7 GB.
    def write(kind, index, model, truth):
        name = f"sim_{kind}_{index + 1:03d}"
        path = output / f"{name}_uncal.fits"
        model.meta.filename = path.name
        model.save(path)
        truth_path = output / f"{name}_truth.fits"
        truth.save(truth_path)
        manifest[kind].append(str(path))
        manifest["truth"][path.name] = str(truth_path)

    common = {"nreads": nreads, "read_time": read_time, "subarray": subarray}
    if dither_pattern is None:
        step = size / 16 * facts.plate_scale
        dithers = [(0.0, 0.0), (step, step), (-step, step), (-step, -step), (step, -step)]
    else:
        dithers = dither_offsets(
            max(n_science, 1), dither_pattern, 1.0 if dither_step is None else dither_step, seed + 6
        )
    errors = np.random.default_rng(seed + 7).standard_normal((max(n_science, 1), 2)) * float(pointing_error_mas)
    for index in range(n_science):
        exposure = simulate_exposure(
            scene,
            detector,
            filter=filter,
            pointing=pointing,
            dither_arcsec=dithers[index % len(dithers)],
            pointing_error_mas=tuple(errors[index]),
            residual_defects=level3,
            seed=seed + 100 + index,
            exposure_number=index + 1,
            **common,
        )
        write("science", index, *exposure)
        del exposure
    for index in range(n_sky):
        # A blank field one arcminute north of the science field.
        sky_pointing = (ra, dec + 1.0 / 60.0, pa)
        exposure = simulate_sky_exposure(
            detector,
            filter=filter,
            pointing=sky_pointing,
            seed=seed + 200 + index,
            exposure_number=index + 1,
            **common,
        )
        write("sky", index, *exposure)
        del exposure
    for index in range(n_darks):
        exposure = simulate_dark_exposure(
            detector, pointing=pointing, seed=seed + 300 + index, exposure_number=index + 1, **common
        )
        write("dark", index, *exposure)
        del exposure
    # Flat lamp bright enough to reach ~40 % of full well at the last read.
    lamp_rate = 20000.0 / (nreads * read_time)
    for index in range(n_flats):
        exposure = simulate_flat_exposure(
            detector,
            lamp_rate=lamp_rate,
            filter=filter,
            pointing=pointing,
            seed=seed + 400 + index,
            exposure_number=index + 1,
            **common,
        )
        write("flat", index, *exposure)
        del exposure
    if level3:
        exposure = simulate_pinhole_exposure(detector, filter=filter, pointing=pointing, seed=seed + 500, **common)
        write("pinhole", 0, *exposure)
        del exposure
        # The standard in a field of its own, a few arcminutes away.
        standard_pointing = (ra, dec - 5.0 / 60.0, pa)
        exposure = simulate_standard_exposure(
            detector, filter=filter, pointing=standard_pointing, seed=seed + 600, **common
        )
        write("standard", 0, *exposure)
        del exposure
        catalog_path = output / "reference_catalog.ecsv"
        write_reference_catalog(scene, catalog_path, seed=seed + 8, filter=filter, instrument=instrument)
        manifest["reference_catalog"] = str(catalog_path)
        manifest["standards_catalog"] = write_standards_catalog(output / "standards.ecsv")
    manifest["references"] = write_truth_references(detector, output, filter, subarray)
    return write_manifest(output, manifest)


def write_truth_references(detector, output, filter, subarray=None, instrument=None):  # noqa: A002
    """Write a detector's truth references (`reference_model`) as ``truth_<reftype>.fits``.

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    output : pathlib.Path
        Directory.
    filter : str
        Filter of the flat.
    subarray : tuple of int, optional
        Cut the references to this subarray.
    instrument : dict, optional
        ``meta.instrument`` values to change (the IFS detector's ``detector`` and ``mode``).

    Returns
    -------
    dict
        REFTYPE -> file.
    """
    written = {}
    # One reference at a time: together the full-frame references take ~1.2 GB.
    for reftype in REFERENCE_TYPES:
        model = reference_model(detector, reftype, subarray=subarray, filter=filter)
        for key, value in (instrument or {}).items():
            setattr(model.meta.instrument, key, value)
        path = output / f"truth_{reftype.lower()}.fits"
        model.meta.filename = path.name
        model.save(path)
        written[reftype] = str(path)
        del model
    return written


def write_manifest(output, manifest):
    """Write ``manifest.json`` (its own path under ``"manifest"``) and return the manifest."""
    path = output / "manifest.json"
    manifest["manifest"] = str(path)
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv=None):
    """Command line: simulate a data set (``python -m liger_iris_pipeline.simulate``).

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        prog="python -m liger_iris_pipeline.simulate",
        description="Simulate IRIS or Liger imager Level 0 exposures, truth references and truth files.",
    )
    parser.add_argument("--output", required=True, help="output directory")
    parser.add_argument(
        "--instrument", default="iris", choices=sorted(INSTRUMENTS), help="instrument and telescope (default iris)"
    )
    parser.add_argument(
        "--size", type=int, help="detector side in pixels (default: the instrument's, 4096 IRIS, 2048 Liger)"
    )
    parser.add_argument("--nreads", type=int, default=10, help="reads per integration (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the scene and the noise (default 0)")
    parser.add_argument(
        "--detector-seed",
        type=int,
        default=CACHE_DETECTOR_SEED,
        help=f"seed of the detector (default {CACHE_DETECTOR_SEED}, the detector of the shipped CRDS cache; "
        "another seed needs references of its own)",
    )
    parser.add_argument("--n-science", type=int, default=1)
    parser.add_argument("--n-sky", type=int, default=1)
    parser.add_argument("--n-darks", type=int, default=3)
    parser.add_argument("--n-flats", type=int, default=3)
    parser.add_argument(
        "--filter", choices=filters.filter_names(), help="filter (default Kbb; KN3 for the small IFS layout)"
    )
    parser.add_argument(
        "--subarray",
        type=int,
        nargs=4,
        metavar=("XSTART", "YSTART", "XSIZE", "YSIZE"),
        help="read out this subarray (1-based starts) instead of the full frame",
    )
    parser.add_argument(
        "--level3",
        action="store_true",
        help="a Level 3 data set: dithered science exposures with pointing errors and residual defects, "
        "a pinhole-grid and a standard-star exposure, reference and standards catalogs",
    )
    parser.add_argument("--dither", type=int, metavar="N", help="N dithered science exposures (sets --n-science)")
    parser.add_argument("--dither-pattern", choices=("box", "random"), help="dither pattern (default box)")
    parser.add_argument("--dither-step", type=float, help="dither step (arcsec)")
    parser.add_argument(
        "--pointing-error", type=float, help="RMS pointing error of the header WCS (mas; default 0, 20 with --level3)"
    )
    parser.add_argument(
        "--ifs",
        nargs="?",
        const="small",
        choices=("small", "full"),
        help="a slicer IFS data set instead (science, sky, lamp flat, arc, dark, telluric standard and truth): "
        "the small test layout (default) or the full 4096 x 4096 one; uses --output, --nreads, --seed, --filter",
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.ifs:
        from .ifs import simulate_ifs_dataset

        manifest = simulate_ifs_dataset(
            args.output, size=args.ifs, nreads=args.nreads, seed=args.seed, filter=args.filter
        )
        print(
            f"wrote {len(manifest['truth'])} IFS exposures ({manifest['filter']}) and their truth to {args.output} "
            f"in {time.perf_counter() - started:.1f} s; manifest: {manifest['manifest']}"
        )
        return
    if args.dither is not None:
        args.n_science = args.dither
        args.dither_pattern = args.dither_pattern or "box"
    manifest = simulate_dataset(
        args.output,
        size=args.size,
        nreads=args.nreads,
        n_science=args.n_science,
        n_sky=args.n_sky,
        n_darks=args.n_darks,
        n_flats=args.n_flats,
        seed=args.seed,
        detector_seed=args.detector_seed,
        instrument=args.instrument,
        subarray=tuple(args.subarray) if args.subarray else None,
        filter=args.filter or "Kbb",
        dither_pattern=args.dither_pattern,
        dither_step=args.dither_step,
        pointing_error_mas=args.pointing_error,
        level3=args.level3,
    )
    count = sum(len(manifest.get(kind, [])) for kind in ("science", "sky", "dark", "flat", "pinhole", "standard"))
    print(
        f"wrote {count} exposures and {len(manifest['references'])} truth references to {args.output} "
        f"in {time.perf_counter() - started:.1f} s; manifest: {manifest['manifest']}"
    )
