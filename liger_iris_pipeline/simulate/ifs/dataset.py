"""A simulated slicer data set on disk: science, sky, lamp flat, arc, dark, telluric standard, with truth.

``python -m liger_iris_pipeline.simulate --ifs [small|full] --output DIR`` writes one with
`simulate_ifs_dataset`.
"""

from pathlib import Path

from ..dataset import write_manifest, write_truth_references
from ..detector import make_detector
from .exposure import ARC_LAMP_RATE, TELLURIC_STANDARD, default_science_scene, simulate_ifs_exposure
from .layout import SlicerLayout
from .scene import IFSScene, PointSource

__all__ = ["IFS_DETECTOR_SEED", "exposure_scene", "simulate_ifs_dataset"]

IFS_DETECTOR_SEED = 20240102
"""Seed of the simulated IFS detector: its own physical detector (serial ``SIM-20240102``), not the imager's."""

DEFAULT_FILTERS = {"small": "KN3", "full": "Kbb"}
"""Default filter of each layout size: the small layout's 500 rows sample a narrow filter at R = 8000."""

_KINDS = (
    ("science", "SCIENCE"),
    ("sky", "SKY"),
    ("flat", "FLAT"),
    ("arc", "ARC"),
    ("dark", "DARK"),
    ("telluric", "TELLURIC"),
)


def exposure_scene(kind, layout, filter_name):
    """Return the scene of an exposure kind.

    Parameters
    ----------
    kind : str
        ``SCIENCE`` (`default_science_scene`), ``SKY`` (night sky only), ``FLAT`` (continuum lamp),
        ``ARC`` (Ar, Kr, Xe and Ne lamps together), ``DARK`` or ``TELLURIC`` (an A0V star on the
        spaxel at the middle of the field, with sky, through the atmosphere).
    layout : SlicerLayout
        The slicer.
    filter_name : str
        Filter.

    Returns
    -------
    IFSScene
    """
    if kind == "SCIENCE":
        return default_science_scene(layout, filter_name)
    if kind == "TELLURIC":
        centre = (float(layout.n_spaxels // 2), float(layout.n_slices // 2))  # on a spaxel's centre
        return IFSScene(sources=[PointSource(*centre, **TELLURIC_STANDARD)])
    scenes = {
        "SKY": IFSScene(),
        "FLAT": IFSScene(sky=False, telluric=False, lamp="continuum"),
        "ARC": IFSScene(sky=False, telluric=False, lamp="arc", lamp_rate=ARC_LAMP_RATE),
        "DARK": IFSScene(sky=False, telluric=False),
    }
    return scenes[kind]


def simulate_ifs_dataset(
    output_dir,
    size="small",
    nreads=5,
    seed=0,
    *,
    filter=None,  # noqa: A002
    pointing=(150.1, 2.2, 0.0),
    detector_seed=IFS_DETECTOR_SEED,
    read_time=None,
    references=True,
    kinds=None,
):
    """Simulate and write a slicer data set with its truth.

    Files (in ``output_dir``): ``ifs_<kind>_001_uncal.fits`` (Level 0 ramps, `TMTRampModel`) for the
    kinds science, sky, flat, arc, dark and telluric; ``ifs_<kind>_001_truth.fits`` beside each
    (`IFSTruth.save`); ``truth_<reftype>.fits``: the IFS detector's truth references (dark, flat,
    mask, ...); ``manifest.json``. Each truth file's cube is an `IRISCubeModel` beside it
    (``ifs_<kind>_001_truth_cube.fits``).

    Parameters
    ----------
    output_dir : str or os.PathLike
        Directory (created if needed).
    size : {'small', 'full'} or SlicerLayout
        `SlicerLayout.small` (512 x 256 detector, fast), the full 4096 x 4096 `SlicerLayout`, or a layout.
    nreads : int
        Reads per integration.
    seed : int
        Master seed; exposure ``k`` gets ``seed + 100 k``.
    filter : str, optional
        Filter of every exposure but the dark; `DEFAULT_FILTERS` of the size by default.
    pointing : tuple of float
        ``(ra, dec, pa)`` of the science field (deg); sky frames one arcminute north, the telluric
        standard five arcminutes south.
    detector_seed : int
        Seed of the IFS detector.
    read_time : float, optional
        Time between reads (s); the instrument's by default.
    references : bool
        Write the detector's truth references.
    kinds : iterable of str, optional
        The exposures to write (of science, sky, flat, arc, dark, telluric); default all. Each kind
        keeps its seed, so a subset is the same exposures as in the whole set.

    Returns
    -------
    dict
        Kind -> list of ramp files, ``truth`` and ``truth_cube``: {ramp file name: file}, ``references``:
        {REFTYPE: file}, ``layout`` (the layout's parameters), ``filter``, ``manifest``: the JSON file.
    """
    if isinstance(size, SlicerLayout):
        layout = size
        filter = filter or "Kbb"  # noqa: A001
    elif size in DEFAULT_FILTERS:
        layout = SlicerLayout.small() if size == "small" else SlicerLayout()
        filter = filter or DEFAULT_FILTERS[size]  # noqa: A001
    else:
        raise ValueError(f"size must be 'small', 'full' or a SlicerLayout, got {size!r}")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    detector = make_detector(layout.detector_shape, seed=detector_seed)
    ra, dec, pa = pointing
    pointings = {"SKY": (ra, dec + 1.0 / 60.0, pa), "TELLURIC": (ra, dec - 5.0 / 60.0, pa)}
    manifest = {"truth": {}, "truth_cube": {}, "references": {}, "filter": filter, "layout": _layout_dict(layout)}
    wanted = {name for name, _ in _KINDS} if kinds is None else set(kinds)
    if unknown := wanted - {name for name, _ in _KINDS}:
        raise ValueError(f"unknown exposure kinds {sorted(unknown)}: choose from {[name for name, _ in _KINDS]}")
    for number, (name, kind) in enumerate(_KINDS):
        if name not in wanted:
            continue
        model, truth = simulate_ifs_exposure(
            exposure_scene(kind, layout, filter),
            detector,
            layout,
            kind=kind,
            filter=filter,
            nreads=nreads,
            read_time=read_time,
            pointing=pointings.get(kind, pointing),
            seed=seed + 100 * number,
            target_name={"TELLURIC": "A0V STANDARD", "SCIENCE": "SIMULATED IFS FIELD"}.get(kind),
        )
        path = output / f"ifs_{name}_001_uncal.fits"
        model.meta.filename = path.name
        model.save(path)
        truth_path = output / f"ifs_{name}_001_truth.fits"
        truth.save(truth_path)
        manifest.setdefault(name, []).append(str(path))
        manifest["truth"][path.name] = str(truth_path)
        manifest["truth_cube"][path.name] = str(truth.cube_path(truth_path))
        del model, truth
    if references:
        manifest["references"] = write_truth_references(
            detector, output, filter, instrument={"detector": "IFU", "mode": "IFS"}
        )
    return write_manifest(output, manifest)


def _layout_dict(layout):
    from dataclasses import asdict

    return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(layout).items()}
