"""The README's demo: simulate exposures, build the CRDS cache, reduce Level 0 -> 1 -> 2, check the truth.

Run as ``liger-iris-demo --output DIR [--size N] [--nreads M]`` (``make demo`` runs it at full
frame, 4096x4096). Steps:

1. the CRDS cache: built on first use (``tmt-crds-cache build``: the truth references of the
   simulated detector, and a dark and a flat made by the calibration pipelines);
2. the simulator writes two dithered science exposures and two sky exposures (Level 0);
3. ``tmtrun detector1.cfg`` turns each into a Level 1 rate frame;
4. ``tmtrun image2.cfg`` calibrates the science frames from a Level 2 association with the sky
   frames as background members;
5. every product is read back through ``datamodels.open`` and the calibrated frames are compared
   with the simulator's truth (star fluxes, WCS positions, background, bad pixels).

``--level3 [--dither N]`` goes on to Level 3 instead (`run_level3`): N dithered science exposures
with pointing errors and residual defects (``level3_star_count`` stars), the calibration
pipelines on a pinhole-grid and a standard-star exposure (their products compared with the
simulator's distortion and flux scale; the reduction uses the cache's references), ``image2``
with the sky members, a Level 3 association (``tmt-asn --asn-type image3``), ``tmtrun image3.cfg``
with the reference catalog, and the truth check of the aligned ``_crf`` frames, the mosaic and
its catalog (`liger_iris_pipeline.simulate.validation_level3.compare_mosaic_with_truth`). The
demo reports; ``tests/test_level3_end_to_end.py`` asserts the targets.

``--ifs`` reduces the integral-field spectrograph's slicer data instead (`run_ifs`): the IFS
detector's references in the cache (slice geometry, wavelength solution, IFS flat, dark... made by
the calibration pipelines), a science exposure (point sources with lines, a rotating disc, OH sky,
atmosphere), a sky frame and a telluric standard through ``detector1`` and ``spec2`` (cubes and
spectra), ``telluric``, and the products against the truth
(`liger_iris_pipeline.simulate.ifs.validation.compare_ifs_with_truth`). The full slicer (88
slices, 4096x4096) at the default ``--size``, the small test slicer (6 slices, 512x256) below it.

It prints where the products are, the wall time of each stage and the peak memory (of each stage
so far and of the whole run).
"""

import argparse
import os
import resource
import shutil
import sys
import time
from pathlib import Path

from ..simulate.instruments import instrument_model

PROG = "liger-iris-demo"

IMAGER_DETECTORS = ("IMG1",)
"""DETECTOR of the imager's references: the imager demos build only those (`_ensure_cache`)."""

FULL_FRAME = instrument_model("iris").detector_shape[1]
"""Side of the IRIS imager detector (pixels): the demo's default and the checkout cache's size."""

LEVEL3_MIN_SIZE = 128
"""Smallest detector of ``--level3``: tweakreg needs 15 stars in each frame."""

LEVEL3_PRODUCT = "sim_mosaic"
"""Product name of the Level 3 association (``sim_mosaic_i2d.fits``, ``sim_mosaic_cat.ecsv``)."""


def _summarise(path):
    """Return a one-line summary of a product read back through `datamodels.open`."""
    import numpy as np

    from .. import datamodels

    with datamodels.open(path) as model:
        meta = model.meta
        shape = "x".join(map(str, model.data.shape))
        if isinstance(model, datamodels.TMTRampModel):
            return f"{type(model).__name__:<15} L0 {meta.exposure.type:<11} {shape:<16} {model.data.dtype}"
        good = (model.dq & datamodels.dqflags.pixel["DO_NOT_USE"]) == 0
        return (
            f"{type(model).__name__:<15} L{meta.processing_level} {meta.obsname or '':<11} {shape:<16} "
            f"median {np.median(model.data[good]):9.3f} DN/s, median err {np.median(model.err[good]):7.3f}, "
            f"{100 * (1 - good.mean()):.1f} % DO_NOT_USE"
        )


def _ensure_cache(cache, size, log, detectors=None):
    """Build the references the cache lacks, rebuilding them if they were made for another detector size.

    ``detectors`` (DETECTOR values, e.g. ``["IFU"]``) limits the build to those detectors' references;
    the IFS detector's are made for the slicer layout of ``size`` (`crds_cache._ifs_layout`).
    """
    from astropy.io import fits

    from .crds_cache import _ifs_layout, build

    expected = {"IFU": tuple(_ifs_layout(size).detector_shape)}
    force = False
    for path in sorted((cache / "references").rglob("tmt_iris_gain_*.fits")):
        detector = fits.getval(path, "DETECTOR")
        if detectors is None or detector in detectors:
            shape = (fits.getval(path, "NAXIS2", "SCI"), fits.getval(path, "NAXIS1", "SCI"))
            force = force or shape != expected.get(detector, (size, size))
    if force:
        log(f"the references in {cache} are not for a {size}x{size} detector: rebuilding them")
    # The demo reduces IRIS data: the other instruments' references are left to `tmt-crds-cache build`.
    written = build(
        cache, size=size, force=force, log=lambda line: log(f"  {line}"), instruments=("iris",), detectors=detectors
    )
    log(f"CRDS cache {cache}: {len(written)} reference(s) built" if written else f"CRDS cache {cache}: up to date")


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
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="demo_output", help="directory for the products (default demo_output)")
    parser.add_argument("--size", type=int, default=FULL_FRAME, help=f"detector side in pixels (default {FULL_FRAME})")
    parser.add_argument("--nreads", type=int, default=10, help="reads per integration (default 10)")
    parser.add_argument(
        "--level3",
        action="store_true",
        help="go on to Level 3: dithered exposures, distortion and photometric calibration, image3, "
        "and the mosaic and catalog checked against the truth",
    )
    parser.add_argument(
        "--dither", type=int, default=4, metavar="N", help="dithered science exposures with --level3 (default 4)"
    )
    parser.add_argument(
        "--ifs",
        action="store_true",
        help="the integral-field spectrograph instead: slicer exposures (science, sky, telluric standard) "
        f"Level 0 -> cube -> spectrum, checked against the truth (the full slicer; the small test slicer "
        f"with a --size below {FULL_FRAME})",
    )
    parser.add_argument("--debug", action="store_true", help="print the traceback of a failure")
    args = parser.parse_args(argv)
    if args.size < 16 or args.nreads < 2:
        parser.error("--size must be at least 16 pixels and --nreads at least 2")
    if args.ifs and args.level3:
        parser.error("--ifs and --level3 are separate demos: give one of them")
    if args.level3 and (args.size < LEVEL3_MIN_SIZE or args.dither < 2):
        parser.error(f"--level3 needs --size of at least {LEVEL3_MIN_SIZE} pixels and --dither of at least 2")

    from ..lib.errors import run_command

    run = run_level3 if args.level3 else run_ifs if args.ifs else _run
    return run_command(PROG, lambda: run(args), argv=["--debug"] if args.debug else [])


def _peak_gib():
    """The process's peak resident memory so far (GiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class _Clock:
    """Prints each stage with the time since the start and since the previous stage, and the peak memory so far."""

    def __init__(self):
        self.started = self.stage_start = time.perf_counter()

    def __call__(self, text):
        now = time.perf_counter()
        print(
            f"[{now - self.started:7.1f} s] {text} ({now - self.stage_start:.1f} s, peak {_peak_gib():.2f} GiB)",
            flush=True,
        )
        self.stage_start = now

    def done(self, products, cache):
        """Print where the products and the cache are, the wall time and the process's peak memory."""
        print(
            f"done: products in {products}; CRDS cache {cache}; "
            f"wall time {time.perf_counter() - self.started:.1f} s, peak memory {_peak_gib():.2f} GiB"
        )


def _prepare_cache(args, output, detectors=None):
    """Point CRDS at the cache of the demo's detector size, building what it lacks; return its path.

    ``detectors`` limits the references built (`_ensure_cache`).
    """
    from ..crds_plugin import cache_path

    # The repository's cache holds full-frame references; other sizes get a cache of their own.
    cache = cache_path()
    if args.size != FULL_FRAME and "CRDS_PATH" not in os.environ:
        own = output / "crds_cache"
        for folder in ("config", "mappings"):
            if not (own / folder).exists():
                shutil.copytree(cache / folder, own / folder)
        cache = own
    os.environ["CRDS_PATH"] = str(cache.resolve())
    _ensure_cache(cache, args.size, print, detectors)
    return cache


def _run(args):
    """Run the demo's stages; return the exit status."""

    from ..associations import make_asn
    from ..simulate import ExposureTruth, simulate_dataset
    from ..simulate.validation import compare_with_truth
    from .crds_cache import SEED
    from .tmtrun import main as tmtrun

    output = Path(args.output)
    stage = _Clock()
    cache = _prepare_cache(args, output, detectors=IMAGER_DETECTORS)
    stage("CRDS cache ready")

    manifest = simulate_dataset(
        output / "level0",
        size=args.size,
        nreads=args.nreads,
        n_science=2,
        n_sky=2,
        n_darks=0,
        n_flats=0,
        seed=SEED,
        n_stars=max(10, round(200 * (args.size / FULL_FRAME) ** 2)),
    )
    stage(f"simulated 2 science + 2 sky exposures, {args.size}x{args.size}, {args.nreads} reads, in {output}/level0")

    for ramp in manifest["science"] + manifest["sky"]:
        if tmtrun(["detector1.cfg", ramp, f"--output_dir={output / 'level1'}", "--log-level=WARNING"], PROG) != 0:
            return 1
    stage(f"Level 1: tmtrun detector1.cfg -> {output}/level1")

    rates = {kind: sorted((output / "level1").glob(f"sim_{kind}_*_rate.fits")) for kind in ("science", "sky")}
    asn = output / "level1" / "image2_asn.json"
    make_asn(rates["science"], rates["sky"], output=asn)
    if tmtrun(["image2.cfg", str(asn), f"--output_dir={output / 'level2'}", "--log-level=WARNING"], PROG) != 0:
        return 1
    stage(f"Level 2: tmtrun image2.cfg {asn} -> {output}/level2")

    products = [*map(Path, manifest["science"] + manifest["sky"]), *rates["science"], *rates["sky"]]
    products += sorted((output / "level2").glob("*_cal.fits"))
    for path in products:
        print(f"  {path.name:<28} {_summarise(path)}")
    import numpy as np

    ratios, errors, offsets = [], [], []
    for path in sorted((output / "level2").glob("*_cal.fits")):
        from .. import datamodels

        name = path.name.replace("_cal.fits", "_uncal.fits")
        with datamodels.open(path) as frame:
            comparison = compare_with_truth(frame, ExposureTruth.load(manifest["truth"][name]))
        print(f"{path.name} against the truth:\n  " + comparison.summary().replace("\n", "\n  "))
        ratios.append(comparison.flux_ratios)
        errors.append(comparison.flux_errors)
        offsets.append(comparison.position_offsets)
    print(level2_targets(np.concatenate(ratios), np.concatenate(errors), np.concatenate(offsets)))
    stage("products read back and compared with the truth")
    stage.done(f"{output}/level0, level1, level2", cache)
    return 0


def level2_targets(ratios, errors, offsets):
    """Return the line judging the calibrated frames' stars, all frames together, against the issue's targets.

    Parameters
    ----------
    ratios, errors : numpy.ndarray
        Measured over true flux of each isolated star, and its relative error.
    offsets : numpy.ndarray
        WCS position offsets (pixels) of the bright isolated stars.

    Returns
    -------
    str
    """
    import numpy as np

    from ..simulate.validation import common_flux_ratio, pull_std_about_common_ratio

    bias, bias_error = common_flux_ratio(ratios, errors)
    pull_std = pull_std_about_common_ratio(ratios, errors)
    rms = float(np.sqrt(np.mean(np.square(offsets)))) if len(offsets) else float("nan")
    met = abs(bias) <= 0.01 and abs(pull_std - 1.0) <= 0.1 and rms <= 0.02
    return (
        f"all frames: {len(ratios)} isolated stars, flux bias {100 * bias:+.2f} +- {100 * bias_error:.2f} % "
        f"(target within 1 %), pull std about it {pull_std:.3f} (target 1 +- 0.1); {len(offsets)} bright stars, "
        f"WCS offset rms {rms:.4f} px (radial; target 0.02): targets {'met' if met else 'missed'}"
    )


def level3_star_count(size):
    """Stars of the ``--level3`` scene: 1600 on the full frame, at least 100 (tweakreg needs 15 per frame)."""
    return max(100, round(1600 * (size / FULL_FRAME) ** 2))


def _reference_path(cache, model, reftype):
    """The cache file of the reference a product was calibrated with (``meta.ref_file.<type>``), or None."""
    entry = getattr(model.meta.ref_file, reftype, None)
    name = getattr(entry, "name", None)
    if not name or name.upper() == "N/A":
        return None
    name = name.removeprefix("crds://")
    instrument = (model.meta.instrument.name or "iris").lower()
    path = Path(cache) / "references" / "tmt" / instrument / name
    return path if path.exists() else None


def distortion_difference(reference, distortion, shape, npoints=33):
    """Rms and largest difference (pixels) of a distortion reference's focal-plane positions from the simulator's.

    Parameters
    ----------
    reference : str, os.PathLike or TMTDistortionModel
        The ``distortion`` reference (``COEFF_X/Y``, ``DIS_CX/CY/SCL``: detector -> focal plane).
    distortion : liger_iris_pipeline.simulate.Distortion
        The truth the exposures were drawn with.
    shape : tuple of int
        ``(ny, nx)`` of the (full-frame) detector.
    npoints : int
        The detector is sampled on an ``npoints`` x ``npoints`` grid.

    Returns
    -------
    tuple of float
        ``(rms per axis, largest distance)``.
    """
    import numpy as np
    from numpy.polynomial import polynomial

    from .. import datamodels

    with datamodels.open(reference) as model:
        info = model.meta.distortion
        cx, cy, scale = float(info.center_x), float(info.center_y), float(info.scale)
        coeffs_x, coeffs_y = np.asarray(model.coeffs_x, float), np.asarray(model.coeffs_y, float)
    ny, nx = shape
    y, x = np.mgrid[0 : ny - 1 : npoints * 1j, 0 : nx - 1 : npoints * 1j]
    s, t = (x - cx) / scale, (y - cy) / scale
    u_fit, v_fit = x + polynomial.polyval2d(s, t, coeffs_x), y + polynomial.polyval2d(s, t, coeffs_y)
    u_true, v_true = distortion.to_focal(x, y)
    du, dv = u_fit - u_true, v_fit - v_true
    return float(np.sqrt(np.mean((du**2 + dv**2) / 2))), float(np.hypot(du, dv).max())


def photom_ratio(reference, filter_name, instrument="iris"):
    """Return a photom reference's PHOTMJSR of a filter over the simulator's (``filters.dn_per_jy``).

    The simulator's conversion: a source of 1 Jy gives ``dn_per_jy`` DN/s, and a frame in MJy/sr
    sums to its flux in MJy times ``1 / PIXAR_SR``, so ``PHOTMJSR = 1e-6 / (dn_per_jy PIXAR_SR)``.
    """
    from .. import datamodels
    from ..simulate import filters

    with datamodels.open(reference) as model:
        pixar_sr = float(model.meta.photometry.pixelarea_steradians)
        rows = [row for row in model.phot_table if str(row["filter"]).strip() == filter_name]
        if not rows:
            raise ValueError(f"{reference}: no {filter_name} row in the photom reference")
        photmjsr = float(rows[0]["photmjsr"])
    return photmjsr / (1e-6 / (filters.dn_per_jy(filter_name, instrument) * pixar_sr))


def run_level3(args):
    """The ``--level3`` demo: Level 0 -> 3 on dithered exposures, checked against the truth; return the exit status."""
    from .. import datamodels
    from ..associations import make_asn
    from ..associations.asn import main as asn_main
    from ..simulate import ExposureTruth, simulate_dataset
    from ..simulate.validation_level3 import compare_mosaic_with_truth, wcs_pointing_error
    from .crds_cache import SEED
    from .tmtrun import main as tmtrun

    output = Path(args.output)
    stage = _Clock()
    cache = _prepare_cache(args, output, detectors=IMAGER_DETECTORS)
    stage("CRDS cache ready")

    level0, level1, level2, level3 = (output / name for name in ("level0", "level1", "level2", "level3"))
    calibration = output / "calibration"
    n_stars = level3_star_count(args.size)
    manifest = simulate_dataset(
        level0,
        size=args.size,
        nreads=args.nreads,
        n_science=args.dither,
        n_sky=2,
        n_darks=0,
        n_flats=0,
        seed=SEED,
        n_stars=n_stars,
        level3=True,
    )

    def truth(ramp):
        # Loaded when needed, one at a time: a full-frame truth takes ~250 MB.
        return ExposureTruth.load(manifest["truth"][Path(ramp).name])

    stage(
        f"simulated {args.dither} dithered science exposures ({n_stars} stars), 2 sky, a pinhole grid and a "
        f"standard star, {args.size}x{args.size}, {args.nreads} reads, in {level0}"
    )

    ramps = [*manifest["science"], *manifest["sky"], *manifest["pinhole"], *manifest["standard"]]
    for ramp in ramps:
        if tmtrun(["detector1.cfg", ramp, f"--output_dir={level1}", "--log-level=WARNING"], PROG) != 0:
            return 1
    stage(f"Level 1: tmtrun detector1.cfg on {len(ramps)} exposures -> {level1}")

    def rate(ramp):
        return level1 / Path(ramp).name.replace("_uncal.fits", "_rate.fits")

    pinhole, standard = rate(manifest["pinhole"][0]), rate(manifest["standard"][0])
    log = "--log-level=WARNING"
    if tmtrun(["distortion_calibration.cfg", str(pinhole), f"--output_dir={calibration}", log], PROG) != 0:
        return 1
    standards = f"--standards_catalog={manifest['standards_catalog']}"
    if tmtrun(["photom_calibration.cfg", str(standard), standards, f"--output_dir={calibration}", log], PROG) != 0:
        return 1
    stage(f"calibrations: tmtrun distortion_calibration.cfg, photom_calibration.cfg -> {calibration}")

    science_rates = [rate(ramp) for ramp in manifest["science"]]
    asn2 = level1 / "image2_asn.json"
    make_asn(science_rates, [rate(ramp) for ramp in manifest["sky"]], output=asn2)
    if tmtrun(["image2.cfg", str(asn2), f"--output_dir={level2}", log], PROG) != 0:
        return 1
    cals = [level2 / Path(ramp).name.replace("_uncal.fits", "_cal.fits") for ramp in manifest["science"]]
    stage(f"Level 2: tmtrun image2.cfg {asn2} -> {level2}")

    # What the reduction used (the cache's references) and what the demo's own calibrations made, against the truth.
    filter_name = truth(manifest["science"][0]).filter_name
    pinhole_distortion = truth(manifest["pinhole"][0]).distortion
    with datamodels.open(cals[0]) as first:
        used = {reftype: _reference_path(cache, first, reftype) for reftype in ("distortion", "photom")}
        bunit = first.meta.bunit_data
    for label, path in (("own", _only(calibration.glob("*_distortion.fits"))), ("cache", used["distortion"])):
        if path is None:
            print(f"  distortion ({label}): none (the reduction ran without a distortion reference)")
            continue
        rms, largest = distortion_difference(path, pinhole_distortion, (args.size, args.size))
        print(f"  distortion ({label}, {path.name}) vs the simulator's: rms {rms:.4f} px, max {largest:.4f} px")
    for label, path in (("own", _only(calibration.glob("*_photom.fits"))), ("cache", used["photom"])):
        if path is None:
            print(f"  photom ({label}): none (the frames stay in {bunit})")
            continue
        ratio = photom_ratio(path, filter_name)
        print(f"  photom ({label}, {path.name}) {filter_name}: PHOTMJSR / simulator's {ratio:.4f} ({ratio - 1:+.2%})")
    for cal, ramp in zip(cals, manifest["science"], strict=True):
        exposure_truth = truth(ramp)
        with datamodels.open(cal) as model:
            measured = wcs_pointing_error(model, exposure_truth)
        true = exposure_truth.pointing_error_mas
        print(
            f"  {cal.name}: header WCS pointing error ({measured[0]:+.2f}, {measured[1]:+.2f}) mas, "
            f"truth PNTERR ({true[0]:+.2f}, {true[1]:+.2f}) mas"
        )
    stage("calibration products and Level 2 WCS compared with the truth")

    asn3 = level2 / "image3_asn.json"
    tmt_asn = [*map(str, cals), "--asn-type", "image3", "--product-name", LEVEL3_PRODUCT, "-o", str(asn3)]
    if asn_main(tmt_asn) != 0:
        return 1
    image3 = [
        "image3.cfg",
        str(asn3),
        f"--output_dir={level3}",
        f"--steps.tweakreg.abs_refcat={manifest['reference_catalog']}",
        "--steps.outlier_detection.save_results=True",
        f"--steps.outlier_detection.output_dir={level3}",
        log,
    ]
    if tmtrun(image3, PROG) != 0:
        return 1
    stage(
        f"Level 3: tmtrun image3.cfg {asn3} (reference catalog {Path(manifest['reference_catalog']).name}) -> {level3}"
    )

    mosaic, catalog = level3 / f"{LEVEL3_PRODUCT}_i2d.fits", level3 / f"{LEVEL3_PRODUCT}_cat.ecsv"
    crfs = [level3 / cal.name.replace("_cal.fits", "_crf.fits") for cal in cals]
    for path in [mosaic, catalog, level3 / f"{LEVEL3_PRODUCT}_segm.fits", *crfs]:
        print(f"  {path.name:<28} {_summarise_level3(path)}")
    comparison = compare_mosaic_with_truth(
        mosaic, catalog, crfs, [manifest["truth"][Path(ramp).name] for ramp in manifest["science"]]
    )
    print("Level 3 products against the truth:\n  " + comparison.summary().replace("\n", "\n  "))
    missed = [name for name, (_value, _target, met) in comparison.checks().items() if not met]
    print("targets: " + ("all met" if not missed else "missed: " + ", ".join(missed)))
    stage("Level 3 products read back and compared with the truth")
    stage.done(f"{output}/level0, level1, calibration, level2, level3", cache)
    return 0


IFS_KINDS = ("science", "sky", "telluric")
"""The slicer exposures of ``--ifs`` (`simulate_ifs_dataset` kinds): the references come from the cache."""

IFS_READ_TIME = 60.0
"""Seconds between the reads of ``--ifs``'s science and sky exposures (540 s with 10 reads); the standard's are the
instrument's."""

IFS_APERTURE_RADIUS = 2.0
"""Radius (spaxels) of the science spectrum's extraction and of the flux apertures of the truth check."""

IFS_COMPARISON = "ifs_truth_comparison.json"
"""File (in the Level 2 folder) of ``--ifs``'s figures against the truth: ``{name: {value, target, met}}``."""


def run_ifs(args):
    """The ``--ifs`` demo: slicer exposures Level 0 -> cube -> spectrum checked against the truth; return the status.

    The science exposure (`default_science_scene`: two point sources with continuum and lines, a
    rotating disc, OH sky, the atmosphere), a sky frame and an A0V telluric standard, in the IFS
    references' filter (`generate.IFU_FILTER`), on the slicer layout of ``--size``
    (`crds_cache._ifs_layout`). ``spec2`` runs on three Level 2 associations: the science and the
    standard each with the sky frame as background member, and the sky frame alone (its OH lines
    check the wavelength solution); ``telluric`` corrects the science spectrum and cube with the
    standard's. The figures are written to `IFS_COMPARISON`.
    """
    import json

    from astropy.table import Table

    from ..associations import make_asn
    from ..crds_plugin.generate import IFU_FILTER
    from ..simulate.ifs import simulate_ifs_dataset
    from ..simulate.ifs.validation import compare_ifs_with_truth, point_sources
    from .crds_cache import SEED, _ifs_layout
    from .tmtrun import main as tmtrun

    output = Path(args.output)
    level0, level1, level2 = (output / name for name in ("level0", "level1", "level2"))
    layout = _ifs_layout(args.size)
    stage = _Clock()
    cache = _prepare_cache(args, output, detectors=("IFU",))
    stage(f"CRDS cache ready (the IFS detector's references, {layout.n_slices} slices)")

    # The science and sky frames are long exposures (slow up-the-ramp reads), the bright standard a short one.
    manifest = simulate_ifs_dataset(
        level0,
        size=layout,
        nreads=args.nreads,
        seed=SEED,
        filter=IFU_FILTER,
        read_time=IFS_READ_TIME,
        references=False,
        kinds=("science", "sky"),
    )
    telluric = simulate_ifs_dataset(
        level0 / "telluric", size=layout, nreads=args.nreads, seed=SEED, filter=IFU_FILTER, references=False,
        kinds=("telluric",),
    )  # fmt: skip
    manifest["telluric"], manifest["truth"] = telluric["telluric"], {**manifest["truth"], **telluric["truth"]}
    ny, nx = layout.detector_shape
    stage(
        f"simulated science and sky ({args.nreads} reads {IFS_READ_TIME:g} s apart) and telluric standard slicer "
        f"exposures ({layout.n_slices} slices of {layout.n_spaxels} spaxels, {ny}x{nx}, {IFU_FILTER}) in {level0}"
    )

    log = "--log-level=WARNING"
    ramps = {kind: manifest[kind][0] for kind in IFS_KINDS}
    for ramp in ramps.values():
        if tmtrun(["detector1.cfg", ramp, f"--output_dir={level1}", log], PROG) != 0:
            return 1
    stage(f"Level 1: tmtrun detector1.cfg on {len(ramps)} exposures -> {level1}")

    rates = {kind: level1 / Path(ramp).name.replace("_uncal.fits", "_rate.fits") for kind, ramp in ramps.items()}
    truth_files = {kind: manifest["truth"][Path(ramp).name] for kind, ramp in ramps.items()}
    # The science spectrum is of the brightest point source, at its catalogue position.
    target = point_sources(Table.read(truth_files["science"], hdu="SOURCES"))[0]
    radius = f"--steps.extract_1d.radius={IFS_APERTURE_RADIUS}"
    position = [f"--steps.extract_1d.source_ra={target['ra']}", f"--steps.extract_1d.source_dec={target['dec']}"]
    spec2_runs = (
        ("science", [rates["sky"]], [*position, radius]),
        ("telluric", [rates["sky"]], [radius]),
        ("sky", [], ["--steps.extract_1d.skip=true"]),
    )
    for kind, background, options in spec2_runs:
        asn = level1 / f"spec2_{kind}_asn.json"
        make_asn([rates[kind]], background, asn_type="spec2", output=asn)
        if tmtrun(["spec2.cfg", str(asn), f"--output_dir={level2}", log, *options], PROG) != 0:
            return 1
    stage(f"Level 2: tmtrun spec2.cfg on the science, telluric standard and sky associations -> {level2}")

    def product(kind, suffix):
        return level2 / Path(ramps[kind]).name.replace("_uncal.fits", f"_{suffix}.fits")

    standard = product("telluric", "x1d")
    # Named apart: both would be <name>_telluric.fits.
    corrected = {}
    for suffix, kind in (("x1d", "spectrum"), ("s3d", "cube")):
        name = Path(ramps["science"]).name.replace("_uncal.fits", f"_{kind}")
        corrected[suffix] = level2 / f"{name}_telluric.fits"
        arguments = [str(product("science", suffix)), str(standard), f"--output_file={name}"]
        if tmtrun(["telluric", *arguments, f"--output_dir={level2}", log], PROG) != 0:
            return 1
    stage(f"telluric: the science spectrum and cube divided by {standard.name}'s transmission -> {level2}")

    products = [*map(Path, ramps.values()), *rates.values()]
    products += [
        product(kind, suffix) for kind in IFS_KINDS for suffix in ("s3d", "x1d") if kind != "sky" or suffix == "s3d"
    ]
    products += corrected.values()
    for path in products:
        print(f"  {path.name:<38} {_summarise_ifs(path)}")
    comparison = compare_ifs_with_truth(
        cube=product("science", "s3d"),
        aperture_radius=IFS_APERTURE_RADIUS,
        corrected_spectrum=corrected["x1d"],
        sky_cube=product("sky", "s3d"),
        truth=truth_files["science"],
        sky_truth=truth_files["sky"],
        standard_cube=product("telluric", "s3d"),
        standard_truth=truth_files["telluric"],
    )
    print("IFS products against the truth:\n  " + comparison.summary().replace("\n", "\n  "))
    checks = comparison.checks()
    record = {name: {"value": value, "target": goal, "met": met} for name, (value, goal, met) in checks.items()}
    (level2 / IFS_COMPARISON).write_text(json.dumps(record, indent=2) + "\n")
    missed = [name for name, (_value, _target, met) in checks.items() if not met]
    print("targets: " + ("all met" if not missed else "missed: " + ", ".join(missed)))
    stage(f"products read back and compared with the truth ({level2 / IFS_COMPARISON})")
    stage.done(f"{output}/level0, level1, level2", cache)
    return 0


def _summarise_ifs(path):
    """Return a one-line summary of an IFS product read back through `datamodels.open`."""
    import numpy as np

    from .. import datamodels

    with datamodels.open(path) as model:
        name, meta = type(model).__name__, model.meta
        if isinstance(model, datamodels.IRISSpectrumModel):
            table = model.spec_table
            good = np.isfinite(table["FLUX"])
            return (
                f"{name:<19} L{meta.processing_level} {len(table)} bins {table['WAVELENGTH'][0]:.4f}-"
                f"{table['WAVELENGTH'][-1]:.4f} um, median {np.median(table['FLUX'][good]):9.3f} "
                f"{meta.flux_unit}, {100 * (1 - good.mean()):.1f} % NaN"
            )
        shape = "x".join(map(str, model.data.shape))
        if isinstance(model, datamodels.TMTRampModel):
            return f"{name:<19} L0 {meta.exposure.type:<14} {shape:<16} {model.data.dtype}"
        good = np.isfinite(model.data) & ((model.dq & datamodels.dqflags.pixel["DO_NOT_USE"]) == 0)
        return (
            f"{name:<19} L{meta.processing_level} {meta.obsname or '':<8} {shape:<14} median "
            f"{np.median(model.data[good]):9.4f} {meta.bunit_data or 'DN/s'}, {100 * (1 - good.mean()):.1f} % unusable"
        )


def _only(paths):
    """The one path of an iterable, or None."""
    paths = sorted(paths)
    return paths[0] if len(paths) == 1 else None


def _summarise_level3(path):
    """Return a one-line summary of a Level 3 product read back through `datamodels.open` or astropy."""
    import numpy as np

    from .. import datamodels

    if not path.exists():
        return "missing"
    if path.suffix == ".ecsv":
        from astropy.table import QTable

        table = QTable.read(path, format="ascii.ecsv")
        return f"catalog of {len(table)} sources, {len(table.colnames)} columns"
    if path.name.endswith("_segm.fits"):
        from astropy.io import fits

        with fits.open(path) as hdulist:
            return f"segmentation image {'x'.join(map(str, hdulist[1].data.shape))}, {hdulist[1].data.max()} segments"
    with datamodels.open(path) as model:
        shape = "x".join(map(str, model.data.shape))
        finite = np.isfinite(model.data)
        text = f"{type(model).__name__:<15} L{model.meta.processing_level} {shape:<10} {model.meta.bunit_data}"
        if getattr(model, "dq", None) is not None and model.dq.shape == model.data.shape:
            outliers = np.count_nonzero(model.dq & datamodels.dqflags.pixel["OUTLIER"])
            return text + f", {outliers} pixels flagged OUTLIER"
        return text + f", {100 * finite.mean():.1f} % covered"


if __name__ == "__main__":
    sys.exit(main())
