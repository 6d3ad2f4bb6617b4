"""``tmt-crds-cache``: build the reference files the CRDS rules of a TMT cache name.

Full-frame references are hundreds of megabytes, too large for git: the repository keeps the
mappings (``crds_cache/mappings/tmt``) and this command builds every reference they name,
deterministically (fixed simulator seed), into ``crds_cache/references/tmt/<instrument>/``
(IRIS at 4096x4096 and Liger at 2048x2048 pixels, each instrument's simulated detector;
``--size N`` makes every instrument's references N x N, or its full size if smaller)::

    tmt-crds-cache build                  # the package's cache (CRDS_PATH or the checkout's crds_cache/)
    tmt-crds-cache build --path DIR --size 64 --context tmt_0002.pmap --force

The header of each reference is filled from its rmap entry (DETECTOR, FILTER, PUPIL, ...,
USEAFTER), so the built files are exactly what the rules select and pass ``crds certify``.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

from ..crds_plugin import INSTRUMENTS, OBSERVATORY, REFERENCE_TYPES, cache_path, register
from ..crds_plugin.generate import IFU_FILTER
from ..lib.errors import run_command
from ..simulate.detector import CACHE_DETECTOR_SEED as SEED

__all__ = [
    "SEED",
    "build",
    "distortion_reference",
    "example_science_file",
    "ifs_reference_models",
    "main",
    "new_reference",
    "planned_references",
    "source_reference_models",
    "write_reference_file",
]

AUTHOR = "liger_iris_pipeline tmt-crds-cache"

# Rmap "don't care" values: the keyword is written as N/A where the schema allows it, and left
# out otherwise (READPATT); crds.tmt.locate reads both as "any value" when a file is re-ingested.
_ANY = "N/A"


CALIBRATION_EXPOSURES = 3
"""Dark and flat-lamp exposures simulated for each dark and flat reference."""

DARK_NREADS = 20
FLAT_NREADS = 10
FLAT_LAMP_FILL = 20000.0
"""DN a flat-lamp exposure accumulates by its last read (~40 % of full well)."""


PINHOLE_NREADS = 10
"""Reads of the simulated pinhole-grid exposure the distortion reference is fitted to."""

PINHOLE_MIN_SIDE = 64
"""Smallest detector side (pixels) with enough pinholes (5 x 5 at the simulator's minimum pitch)
for a degree-3 fit; a smaller test cache gets a distortion reference without distortion."""

DERIVED_TYPES = ("DARK", "FLAT", "DISTORTION", "PHOTOM")
"""Reference types made by the project's calibration pipelines (the others are the simulator's truth)."""


def source_reference_models(detector, useafter, types=None):
    """Return the reference models of every type (or of `types`) for one USEAFTER date.

    This is the one place that decides where each reference type comes from: the mask,
    nonlinearity, saturation, read-noise and gain references are the simulator's truth (the
    laboratory characterisation of the detector); the dark and the flat are made by the
    project's calibration pipelines from simulated dark and flat-lamp exposures, reduced to
    Level 1 with those truth references; the distortion by ``distortion_calibration`` from a
    simulated pinhole-grid exposure; the photometric calibration by
    `liger_iris_pipeline.pipeline.photom_calibration.photom_reference_for_cache`.

    Parameters
    ----------
    detector : liger_iris_pipeline.simulate.DetectorTruth
        The simulated detector.
    useafter : str
        USEAFTER, ``YYYY-MM-DDThh:mm:ss``.
    types : iterable of str, optional
        Upper-case types wanted; default all. The calibration pipelines run only for the
        types that need them.

    Returns
    -------
    dict
        Upper-case reference type -> `liger_iris_pipeline.datamodels.TMTReferenceFileModel`.
    """
    from .. import simulate

    wanted = set(DERIVED_TYPES) if types is None else {name.upper() for name in types}
    references = simulate.reference_models(detector, useafter=useafter, filter=_ANY)
    if wanted & set(DERIVED_TYPES):
        references["DARK"], references["FLAT"] = calibration_references(detector, references, useafter)
    if "DISTORTION" in wanted:
        references["DISTORTION"] = distortion_reference(detector, references, useafter)
    if "PHOTOM" in wanted:
        from ..pipeline.photom_calibration import photom_reference_for_cache

        references["PHOTOM"] = photom = photom_reference_for_cache(detector, references, useafter)
        if photom.meta.subarray.name is None:
            photom.meta.subarray.name = "FULL"  # one table serves the whole detector
    return references


def _level1_pipeline(truth):
    """Detector1Pipeline reducing simulated ramps with the truth references (no CRDS look-up)."""
    from ..pipeline import Detector1Pipeline

    ramp_fit = {f"override_{name.lower()}": truth[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")}
    return Detector1Pipeline(steps={"dq_init": {"override_mask": truth["MASK"]}, "ramp_fit": ramp_fit})


def calibration_references(detector, truth, useafter):
    """Make the dark and flat references with the calibration pipelines.

    Parameters
    ----------
    detector : liger_iris_pipeline.simulate.DetectorTruth
        The simulated detector.
    truth : dict
        Truth references (``MASK``, ``NONLIN``, ``SATURATION``, ``READNOISE``, ``GAIN``) used to
        reduce the calibration ramps to Level 1.
    useafter : str
        USEAFTER of the results.

    Returns
    -------
    tuple
        ``(TMTDarkModel, TMTFlatModel)``.
    """
    from .. import simulate
    from ..pipeline import ProcessFlatfieldL2
    from ..simulate.instruments import instrument_model

    level1 = _level1_pipeline(truth)
    reference = {"useafter": useafter, "pedigree": "SIMULATION", "author": AUTHOR}

    dark = _master_dark(detector, level1, useafter)
    lamp_rate = FLAT_LAMP_FILL / (FLAT_NREADS * instrument_model(detector.instrument).read_time)
    flats = _level1_frames(level1, simulate.simulate_flat_exposure, detector, nreads=FLAT_NREADS, lamp_rate=lamp_rate)
    flat = ProcessFlatfieldL2(**reference, steps={"dark_current": {"override_dark": dark}}).run(flats)
    flat.meta.instrument.filter = _ANY
    return dark, flat


def _level1_frames(level1, simulate_exposure, detector, **kwargs):
    """`CALIBRATION_EXPOSURES` simulated exposures of a detector, reduced to Level 1."""
    return [
        level1.run(simulate_exposure(detector, seed=SEED + 1000 * index + kwargs["nreads"], **kwargs)[0])
        for index in range(CALIBRATION_EXPOSURES)
    ]


def _master_dark(detector, level1, useafter):
    """The dark reference of a detector: simulated dark exposures through ``master_dark``."""
    from .. import simulate
    from ..pipeline import MasterDarkPipeline

    reference = {"useafter": useafter, "pedigree": "SIMULATION", "author": AUTHOR}
    darks = _level1_frames(level1, simulate.simulate_dark_exposure, detector, nreads=DARK_NREADS)
    return MasterDarkPipeline(steps={"combine_darks": reference}).run(darks)


IFS_TYPES = ("DARK", "FLAT", "MASK", "NONLIN", "SATURATION", "READNOISE", "GAIN", "SLICEGEO", "WAVECAL")
"""Reference types of the IFS detector (``DETECTOR = 'IFU'``, ``docs/ifs_design.rst``)."""

IFS_NREADS = 10
"""Reads of the simulated lamp-flat and arc exposures of the IFS references."""


def ifs_reference_models(useafter, layout=None, types=None, filter_name=IFU_FILTER, instrument="iris"):
    """Return the IFS detector's references (``DETECTOR = 'IFU'``) for one USEAFTER date.

    The IFS detector is its own simulated detector (seed
    `~liger_iris_pipeline.simulate.ifs.IFS_DETECTOR_SEED`). Its mask, non-linearity, saturation, read
    noise and gain are the simulator's truth; the dark comes from simulated darks through
    ``master_dark``; the slice geometry, the IFS flat and the wavelength solution from simulated
    slicer lamp flats and an arc, reduced to Level 1 with the truth references, through
    ``slicegeo_calibration``, ``ifs_flat_calibration`` and ``wavecal_calibration``.

    Parameters
    ----------
    useafter : str
        USEAFTER, ``YYYY-MM-DDThh:mm:ss``.
    layout : liger_iris_pipeline.simulate.ifs.SlicerLayout, optional
        The slicer; its small test layout by default.
    types : iterable of str, optional
        Upper-case types wanted (of `IFS_TYPES`); default all. The calibration pipelines run only
        for the types that need them.
    filter_name : str
        Filter of the lamp flats and the arc (FILTER of the flat and the wavelength solution).
    instrument : str
        ``iris`` or ``liger`` (INSTRUME, TELESCOP and read time of the simulated exposures).

    Returns
    -------
    dict
        Upper-case reference type -> `liger_iris_pipeline.datamodels.TMTReferenceFileModel`.
    """
    from .. import simulate
    from ..pipeline import IFSFlatCalibrationPipeline, SliceGeometryCalibrationPipeline, WavecalCalibrationPipeline
    from ..simulate import ifs
    from ..simulate.filters import FILTERS

    layout = layout or ifs.SlicerLayout.small()
    wanted = set(IFS_TYPES) if types is None else {name.upper() for name in types}
    detector = simulate.make_detector(layout.detector_shape, seed=ifs.IFS_DETECTOR_SEED, instrument=instrument)
    references = simulate.reference_models(detector, useafter=useafter, filter=_ANY)
    level1 = _level1_pipeline(references)
    reference = {"useafter": useafter, "pedigree": "SIMULATION", "author": AUTHOR}
    if wanted & {"DARK", "FLAT", "SLICEGEO", "WAVECAL"}:
        references["DARK"] = dark = _master_dark(detector, level1, useafter)
        dark_step = {"override_dark": dark}

        def slicer_frames(kind, count):
            scene = ifs.exposure_scene(kind, layout, filter_name)
            return [
                level1.run(
                    ifs.simulate_ifs_exposure(
                        scene,
                        detector,
                        layout,
                        kind=kind,
                        filter=filter_name,
                        nreads=IFS_NREADS,
                        seed=SEED + 5000 + index,
                    )[0]
                )
                for index in range(count)
            ]

        flats = slicer_frames("FLAT", CALIBRATION_EXPOSURES)
        geometry_step = {**reference, "n_slices": layout.n_slices, "n_spaxels": layout.n_spaxels}
        steps = {"dark_current": dark_step, "slice_geometry": geometry_step}
        references["SLICEGEO"] = geometry = SliceGeometryCalibrationPipeline(steps=steps).run(flats)
        steps = {"dark_current": dark_step, "ifs_flat": {**reference, "override_slicegeo": geometry}}
        references["FLAT"] = IFSFlatCalibrationPipeline(steps=steps).run(flats)
        del flats
        if "WAVECAL" in wanted:
            centre, width = FILTERS[filter_name]
            band = [centre - 0.6 * width, centre + 0.6 * width]
            wavecal_step = {**reference, "override_slicegeo": geometry, "wavelength_range": band}
            arc = slicer_frames("ARC", 1)
            references["WAVECAL"] = WavecalCalibrationPipeline(steps={"wavecal": wavecal_step}).run(arc)
    for model in references.values():
        model.meta.instrument.detector = "IFU"
    return {name: model for name, model in references.items() if name in IFS_TYPES}


def distortion_reference(detector, references, useafter):
    """Make the distortion reference: a simulated pinhole-grid exposure through detector1 and distortion_calibration.

    Parameters
    ----------
    detector : liger_iris_pipeline.simulate.DetectorTruth
        The simulated detector.
    references : dict
        The truth references and the ``DARK`` made by `calibration_references`.
    useafter : str
        USEAFTER of the result.

    Returns
    -------
    TMTDistortionModel
    """
    from .. import simulate
    from ..pipeline import DistortionCalibrationPipeline

    ramp, _ = simulate.simulate_pinhole_exposure(detector, nreads=PINHOLE_NREADS, seed=SEED + 7000)
    reference = {"useafter": useafter, "pedigree": "SIMULATION", "author": AUTHOR}
    if min(detector.shape) < PINHOLE_MIN_SIDE:
        return _identity_distortion(ramp, reference)
    frame = _level1_pipeline(references).run(ramp)
    del ramp
    steps = {"dark_current": {"override_dark": references["DARK"]}, "fit_distortion": reference}
    distortion = DistortionCalibrationPipeline(steps=steps).run(frame)
    distortion.meta.instrument.filter = _ANY
    return distortion


def _identity_distortion(frame, reference):
    """The distortion reference of a detector too small for a pinhole fit: no distortion."""
    import numpy as np

    from ..fit_distortion.fit_distortion_step import distortion_reference
    from ..fit_distortion.pinholes import DistortionFit

    ny, nx = frame.data.shape[-2:]
    zero = [np.zeros((4, 4)) for _ in range(4)]  # one array per HDU
    fit = DistortionFit(
        *zero, ((nx - 1) / 2.0, (ny - 1) / 2.0), max(nx, ny) / 2.0, 0.0, 3, 0, (0.0, 0.0), (0.0, 0.0),
        np.zeros(0, dtype=bool), np.zeros((0, 2), dtype=int),
    )  # fmt: skip
    distortion = distortion_reference(frame, fit, reference["useafter"], reference["pedigree"], reference["author"])
    distortion.meta.description = (
        f"Distortion: none (a {nx}x{ny} detector has too few pinholes for a fit; the simulated distortion "
        "at its centre is below 1e-3 px)"
    )
    distortion.meta.instrument.filter = _ANY
    return distortion


@contextlib.contextmanager
def _crds_path(path):
    """Point crds at `path` for the duration of the block (crds reads CRDS_PATH at each call)."""
    saved = os.environ.get("CRDS_PATH")
    os.environ["CRDS_PATH"] = str(path)
    try:
        yield
    finally:
        if saved is None:
            del os.environ["CRDS_PATH"]
        else:
            os.environ["CRDS_PATH"] = saved


def planned_references(path, context=None):
    """Return every reference file the rules of a context name, with the values it is selected by.

    Parameters
    ----------
    path : str or Path
        Cache root (with ``mappings/tmt`` and ``config/tmt``).
    context : str, optional
        A ``.pmap`` name; default the cache's context (``latest_context``, what crds 14 uses).

    Returns
    -------
    list of tuple
        ``(reference file name, instrument, filekind, {parkey: value}, useafter)``, instrument
        lower case, useafter as ``YYYY-MM-DDThh:mm:ss``; a file named by several rmap entries is
        listed once.
    """
    from crds.core import rmap

    from ..crds_plugin.diagnose import check_cache, read_server_config

    register()
    path = Path(path)
    with _crds_path(path):
        if context is None:
            info = read_server_config(path)
            context = info.get("latest_context", info.get("operational_context"))
        check_cache(context)  # the cache and the context's mappings load, or one line says why not
        pmap = rmap.load_mapping(str(path / "mappings" / OBSERVATORY / context))
        planned = {}
        for instrument in sorted(pmap.selections):
            for filekind, rmapping in sorted(pmap.get_imap(instrument.lower()).selections.items()):
                if not hasattr(rmapping, "todict"):
                    continue  # an N/A type: nothing to build
                match_keys = rmapping.parkey[0]
                for *values, useafter, filename in rmapping.todict()["selections"]:
                    planned.setdefault(
                        filename,
                        (
                            filename,
                            instrument.lower(),
                            filekind.lower(),
                            dict(zip(match_keys, values, strict=True)),
                            useafter.replace(" ", "T"),
                        ),
                    )
    return list(planned.values())


def write_reference_file(model, path):
    """Save a reference model as a FITS file CRDS accepts.

    ``crds certify`` rejects FITS files that carry stdatamodels' ``ASDF`` extension, so it is
    dropped: the FITS keywords and extensions hold everything the reference models need.

    Parameters
    ----------
    model : liger_iris_pipeline.datamodels.TMTReferenceFileModel
        The reference.
    path : str or Path
        Output ``.fits`` file (overwritten).
    """
    from astropy.io import fits

    model.save(path, overwrite=True)
    with fits.open(path) as hdulist:
        kept = fits.HDUList([hdu.copy() for hdu in hdulist if hdu.name != "ASDF"])
    kept.writeto(path, overwrite=True, checksum=True)


def new_reference(reftype, output, useafter, size=None, parkeys=None, instrument="iris"):
    """Write one reference file of a type for ingestion into a context (see ``docs/crds_ingest.rst``).

    Parameters
    ----------
    reftype : str
        Reference type, e.g. ``dark``.
    output : str or Path
        Output file; name it ``tmt_<instrument>_<type>_<serial>.fits``.
    useafter : str
        USEAFTER, ``YYYY-MM-DDThh:mm:ss``.
    size : int, optional
        Detector size in pixels per side; default the instrument's detector.
    parkeys : dict, optional
        ``{parkey: value}`` selection values (e.g. ``{"META.EXPOSURE.READOUT_MODE": "CDS"}``);
        the detector defaults to IMG1.
    instrument : str
        ``iris`` or ``liger``.
    """
    model = source_reference_models(_detector(instrument, size), useafter, [reftype])[reftype.upper()]
    _apply_selection(model, {"META.INSTRUMENT.DETECTOR": "IMG1", **(parkeys or {})})
    model.meta.author = AUTHOR
    write_reference_file(model, output)


def example_science_file(
    path,
    date,
    time="00:00:00",
    detector="IMG1",
    subarray="FULL",
    readout_mode="UTR",
    filter="Kbb",  # noqa: A002 - the metadata name
    size=8,
):
    """Write a small IRIS science frame carrying the metadata CRDS selects references by.

    For trying rules out (``crds bestrefs --files``), as in ``docs/crds_ingest.rst``.

    Parameters
    ----------
    path : str or Path
        Output FITS file.
    date, time : str
        Observation date ``YYYY-MM-DD`` and time ``hh:mm:ss``.
    detector, subarray, readout_mode, filter : str
        DETECTOR, SUBARRAY, READPATT, FILTER.
    size : int
        Image size in pixels per side.
    """
    from .. import datamodels

    model = datamodels.IRISImageModel((size, size))
    meta = model.meta
    meta.instrument.name, meta.instrument.detector, meta.instrument.filter = "IRIS", detector, filter
    meta.subarray.name, meta.exposure.readout_mode = subarray, readout_mode
    meta.observation.date, meta.observation.time = date, time
    model.save(path)


def _apply_selection(model, parkeys):
    """Write the rmap entry's match values into the model's metadata."""
    from asdf.exceptions import ValidationError

    for key, value in parkeys.items():
        node = model
        *parents, leaf = key.lower().split(".")
        for name in parents:
            node = getattr(node, name)
        try:
            setattr(node, leaf, value)
        except ValidationError:
            if value != _ANY:
                raise
            # The schema has no N/A for this keyword: the rule ignores it, whatever the file says.


def _ifs_layout(size):
    """The slicer layout of the IFS references: the full one for a full-size cache, else the small test layout."""
    from ..simulate import ifs

    return (
        ifs.SlicerLayout() if size is None or size >= ifs.SlicerLayout().detector_shape[0] else ifs.SlicerLayout.small()
    )


def _detector(instrument, size):
    """Return the simulated detector the references of an instrument are made from.

    `size` (pixels per side) is capped at the instrument's own detector: ``size=4096`` gives
    IRIS 4096x4096 and Liger its full 2048x2048, like the default.
    """
    from .. import simulate
    from ..simulate.instruments import instrument_model

    full = instrument_model(instrument).detector_shape
    shape = full if size is None else (min(size, full[0]), min(size, full[1]))
    return simulate.make_detector(shape, seed=SEED, instrument=instrument)


def build(path=None, size=None, context=None, force=False, log=print, instruments=None, detectors=None):
    """Build the references a context names that are not in the cache yet.

    Parameters
    ----------
    path : str or Path, optional
        Cache root; default `liger_iris_pipeline.crds_plugin.cache_path`.
    size : int, optional
        Detector size (pixels per side) of every instrument's full-frame references, at most the
        instrument's own; default each instrument's detector
        (`liger_iris_pipeline.simulate.instruments`: IRIS 4096, Liger 2048).
    context : str, optional
        ``.pmap`` name; default the cache's context (``latest_context``).
    force : bool
        Rebuild files that already exist.
    log : callable
        Receives one progress line per file.
    instruments : list of str, optional
        Build only the references of these instruments (lower case); default every instrument
        of the context.
    detectors : list of str, optional
        Build only the references selected by these DETECTOR values (``["IFU"]``: the IFS
        detector's); default every reference.

    Returns
    -------
    list of Path
        The files written (files kept from an earlier build are not listed).
    """
    path = Path(path) if path is not None else cache_path()
    with _crds_path(path):  # the calibration pipelines' steps look for a cache: this one
        return _build(path, size, context, force, log, instruments, detectors)


def _build(path, size, context, force, log, instruments=None, detectors=None):
    references = path / "references" / OBSERVATORY
    todo = [
        item
        for item in planned_references(path, context)
        if (force or not (references / item[1] / item[0]).exists())
        and (instruments is None or item[1] in instruments)
        and (detectors is None or item[3].get("META.INSTRUMENT.DETECTOR") in detectors)
    ]
    written = []
    for instrument in sorted({item[1] for item in todo}):
        refdir = references / instrument
        refdir.mkdir(parents=True, exist_ok=True)
        detector = None
        models_by_date = {}
        # Files appear under their final name only when complete: a killed build leaves no truncated reference.
        with tempfile.TemporaryDirectory(prefix=".building-", dir=refdir) as staging:
            for filename, _, filekind, parkeys, useafter in (item for item in todo if item[1] == instrument):
                start = time.perf_counter()
                ifs = parkeys.get("META.INSTRUMENT.DETECTOR") == "IFU"  # the IFS detector, its own references
                if (useafter, ifs) not in models_by_date:
                    kinds = {
                        item[2].upper()
                        for item in todo
                        if item[1] == instrument
                        and item[4] == useafter
                        and (item[3].get("META.INSTRUMENT.DETECTOR") == "IFU") == ifs
                    }
                    if ifs:
                        models = ifs_reference_models(useafter, _ifs_layout(size), kinds, instrument=instrument)
                    else:
                        detector = detector or _detector(instrument, size)
                        models = source_reference_models(detector, useafter, kinds)
                    models_by_date[useafter, ifs] = models
                model = models_by_date[useafter, ifs][filekind.upper()]
                _apply_selection(model, parkeys)
                model.meta.author = AUTHOR
                staged = Path(staging) / filename
                write_reference_file(model, staged)
                os.replace(staged, refdir / filename)
                written.append(refdir / filename)
                log(
                    f"built {refdir / filename} ({(refdir / filename).stat().st_size / 2**20:.1f} MiB, "
                    f"{time.perf_counter() - start:.1f} s)"
                )
    return written


def seed(path, log=print):
    """Give a new or empty directory the configuration and mappings of a TMT cache.

    They are copied from the source checkout's ``crds_cache/`` (its ``config/tmt`` and every
    mapping of ``mappings/tmt``) or, without a checkout, generated (every context,
    `liger_iris_pipeline.crds_plugin.generate.write_contexts`; the latest is the cache's). Every
    file is written under a temporary name and renamed, ``server_config`` last, so an interrupted seed leaves no cache
    that looks complete.

    Parameters
    ----------
    path : str or Path
        The directory (created if missing).
    log : callable
        Receives one line.

    Raises
    ------
    CrdsSetupError
        The directory already holds part of a cache.
    """
    import shutil

    from ..crds_plugin import CHECKOUT_CACHE
    from ..crds_plugin.diagnose import CrdsSetupError
    from ..crds_plugin.generate import write_contexts
    from ..crds_plugin.ingest import server_config_text

    path = Path(path)
    source = Path(CHECKOUT_CACHE)
    config = path / "config" / OBSERVATORY
    mappings = path / "mappings" / OBSERVATORY
    if config.exists() or mappings.exists():
        raise CrdsSetupError(
            f"{path}: an incomplete TMT CRDS cache (has {'config' if config.exists() else 'mappings'}/{OBSERVATORY}, "
            f"not both); remove it, or restore the missing part"
        )
    path.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".seeding-", dir=path) as staging:
        staging = Path(staging)
        if (source / "mappings" / OBSERVATORY).is_dir():
            shutil.copytree(source / "mappings" / OBSERVATORY, staging / "mappings", ignore=_not_mappings)
            shutil.copytree(source / "config" / OBSERVATORY, staging / "config")
            origin = f"mappings of {source}"
        else:
            written = write_contexts(staging / "mappings")
            (staging / "config").mkdir()
            (staging / "config" / "ref_cache_subdir_mode").write_text("instrument\n")
            (staging / "config" / "server_config").write_text(server_config_text(written[0].name))
            origin = "contexts generated"
        for part, folder in (("mappings", mappings), ("config", config)):
            folder.mkdir(parents=True)
            for file in sorted((staging / part).iterdir(), key=lambda p: p.name == "server_config"):
                os.replace(file, folder / file.name)
    log(f"new TMT CRDS cache in {path} ({origin})")


def _not_mappings(folder, names):
    return [name for name in names if not name.endswith((".pmap", ".imap", ".rmap"))]


def check(path=None, context=None):
    """Check a cache: its configuration and context load, and every reference the context names is there.

    Parameters
    ----------
    path : str or Path, optional
        Cache root; default `liger_iris_pipeline.crds_plugin.cache_path`.
    context : str, optional
        The ``.pmap`` to check; default the cache's (``latest_context``).

    Returns
    -------
    tuple
        ``(context, number of references)``.

    Raises
    ------
    CrdsSetupError
        What is wrong, in one line.
    """
    from ..crds_plugin.diagnose import CrdsSetupError, check_cache
    from ..crds_plugin.ingest import _cache_env

    path = Path(path) if path is not None else cache_path()
    with _cache_env(path):
        _, context = check_cache(context)
        planned = planned_references(path, context)
    references = path / "references" / OBSERVATORY
    missing = [references / instrument / name for name, instrument, *_ in planned]
    missing = [file for file in missing if not file.is_file()]
    if missing:
        raise CrdsSetupError(
            f"{missing[0]}: missing ({len(missing)} of the {len(planned)} references CRDS context {context} "
            f"names are); build them with `tmt-crds-cache build --path {path}`"
        )
    return context, len(planned)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other failure of the command."""

    def error(self, message):
        self.exit(2, f"{self.prog.split()[0]}: error: {message} (see --help)\n")


def main(argv=None):
    """Entry point of the ``tmt-crds-cache`` console script.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments; default ``sys.argv[1:]``.

    Returns
    -------
    int
        Exit status.
    """
    parser = _OneLineParser(prog="tmt-crds-cache", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build the reference files the CRDS rules name")
    build_parser.add_argument(
        "--path", type=Path, help="cache root (default: $CRDS_PATH or the checkout's crds_cache/)"
    )
    build_parser.add_argument(
        "--size",
        type=int,
        help="detector size in pixels per side, for every instrument up to its own "
        "(default: each instrument's, IRIS 4096, Liger 2048)",
    )
    build_parser.add_argument(
        "--context", help="context (.pmap) whose references to build (default: the cache's latest_context)"
    )
    build_parser.add_argument("--force", action="store_true", help="rebuild references that already exist")
    new_parser = commands.add_parser("reference", help="write one new reference file, to ingest into a context")
    new_parser.add_argument("reftype", choices=REFERENCE_TYPES, help="reference type")
    new_parser.add_argument("--useafter", required=True, help="USEAFTER, YYYY-MM-DDThh:mm:ss")
    new_parser.add_argument(
        "--instrument", choices=INSTRUMENTS, default="iris", help="instrument of the reference (default iris)"
    )
    new_parser.add_argument(
        "--output", type=Path, required=True, help="output file, tmt_<instrument>_<type>_<serial>.fits"
    )
    new_parser.add_argument(
        "--size", type=int, help="detector size in pixels per side (default: the instrument's, IRIS 4096, Liger 2048)"
    )
    new_parser.add_argument(
        "--set",
        metavar="PARKEY=VALUE",
        action="append",
        default=[],
        help="selection value, e.g. META.EXPOSURE.READOUT_MODE=CDS (repeatable)",
    )
    commands.add_parser("path", help="print the cache the package uses")
    path_help = "cache root (default: $CRDS_PATH or the checkout's crds_cache/)"
    check_parser = commands.add_parser("check", help="check the cache: configuration, context, mappings, references")
    check_parser.add_argument("--path", type=Path, help=path_help)
    check_parser.add_argument("--context", help="context (.pmap) to check (default: the cache's)")
    context_parser = commands.add_parser("context", help="print the cache's context, or make another one its context")
    context_parser.add_argument("pmap", nargs="?", help="context to switch to, e.g. tmt_0002.pmap")
    context_parser.add_argument("--path", type=Path, help=path_help)
    ingest_parser = commands.add_parser(
        "ingest", help="certify reference files and add them to the cache as a new context, all or nothing"
    )
    ingest_parser.add_argument("files", nargs="+", type=Path, help="reference files (master dark and flat products...)")
    ingest_parser.add_argument("--path", type=Path, help=path_help)
    args = parser.parse_args(argv)
    return run_command("tmt-crds-cache", lambda: _run(args), argv=argv)


def _run(args):
    """Run one sub-command."""
    from ..crds_plugin.diagnose import given_path

    if args.command == "reference":
        parkeys = {}
        for item in args.set:
            if "=" not in item:
                raise ValueError(f"--set {item}: expected PARKEY=VALUE")
            key, value = item.split("=", 1)
            parkeys[key] = value
        new_reference(
            args.reftype, args.output, args.useafter, size=args.size, parkeys=parkeys, instrument=args.instrument
        )
        print(f"wrote {args.output}")
        return 0
    if args.command == "path":
        print(cache_path())
        return 0
    path = args.path or cache_path()
    # A --path is named as such in messages, not as the CRDS_PATH the command sets internally.
    with given_path(path) if args.path else contextlib.nullcontext():
        return _run_on_cache(args, path)


def _run_on_cache(args, path):
    """Run a sub-command working on the cache at `path`."""
    from ..crds_plugin.diagnose import read_server_config

    if args.command == "check":
        context, count = check(path, args.context)
        print(f"{path}: CRDS context {context} loads, its {count} reference files are in the cache")
        return 0
    if args.command == "context":
        if args.pmap:
            from ..crds_plugin.ingest import set_context

            set_context(path, args.pmap)
        print(read_server_config(path)["latest_context"])
        return 0
    if args.command == "ingest":
        from ..crds_plugin.ingest import ingest

        ingest(args.files, path)
        return 0
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        seed(path)
    start = time.perf_counter()
    written = build(path, size=args.size, context=args.context, force=args.force)
    total = sum(p.stat().st_size for p in written)
    print(
        f"{len(written)} reference file(s) built in {path}, {total / 2**20:.1f} MiB, "
        f"{time.perf_counter() - start:.1f} s"
        if written
        else f"all references already built in {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
