"""Level 0 IFS exposures (`TMTRampModel`, ``INSTMODE = 'IFS'``) with their truth (`IFSTruth`).

Signal chain: scene -> truth cube (`scene.truth_cube`) -> detector rate before the flat
(`optics.dispersed_rate`) -> ``* flat + dark`` and the ramps through the imager's detector model
(`~liger_iris_pipeline.simulate.exposure.illuminated_rate`,
`~liger_iris_pipeline.simulate.exposure.simulate_ramps`): the same noise, non-linearity, saturation,
bad pixels and cosmic rays as an imager exposure of the same detector.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..exposure import (
    DEFAULT_COSMIC_RAY_RATE,
    _set_metadata,
    illuminated_rate,
    read_truth_extensions,
    simulate_ramps,
    table_hdu,
)
from ..instruments import instrument_model
from ..pointing import pixel_to_world, wcsinfo_for_pointing
from .layout import SlicerLayout
from .optics import dispersed_rate
from .scene import IFSScene, PointSource, RotatingDisc, WavelengthGrid, truth_cube

__all__ = [
    "IFS_EXPOSURE_KINDS",
    "IFSTruth",
    "default_science_scene",
    "simulate_ifs_exposure",
]

IFS_EXPOSURE_KINDS = {
    "SCIENCE": ("IFS", "SCI", "SLI-SCI"),
    "SKY": ("IFS_SKY", "SCI", "SLI-SKY"),
    "FLAT": ("IFS_FLAT", "CAL", "SLI-NFF"),
    "DARK": ("IFS_DARK", "CAL", "SLI-DRK"),
    "ARC": ("ARC", "ENG", "SLI-IDP"),
    "TELLURIC": ("TELLURIC", "CAL", "SLI-TEL"),
}
"""Exposure kind -> (EXP_TYPE after the instrument's prefix, OBSTYPE, OBSNAME), ``docs/ifs_design.rst``."""

TELLURIC_STANDARD = {"abmag": 16.0, "temperature": 9600.0}
"""The telluric standard: an A0V star (a 9600 K blackbody, no lines), bright but unsaturated in 10 reads."""

ARC_LAMP_RATE = 2.0e4
"""Default arc brightness: DN/s per spaxel of each lamp's brightest line."""


@dataclass
class IFSTruth:
    """What an IFS exposure should reduce to.

    Attributes
    ----------
    cube : numpy.ndarray
        float32 ``(nwave, n_slices, n_spaxels)`` DN/s per spaxel per bin: the scene before the LSF,
        the slice throughputs and the flat (`scene.truth_cube`), sky included.
    grid : WavelengthGrid
        The cube's wavelength bins (vacuum microns).
    sky : numpy.ndarray
        float64 (nwave,) sky per spaxel in ``cube`` (zero without sky).
    transmission : numpy.ndarray
        float64 (nwave,) telluric transmission applied to the sources.
    dispersed_rate : numpy.ndarray
        float32 (ny, nx) DN/s reaching each pixel: what a flat-fielded, dark-subtracted Level 2
        frame should show.
    detector_rate : numpy.ndarray
        float32 (ny, nx) DN/s ``dispersed_rate * flat + dark``: what a Level 1 rate frame should show.
    traces : numpy.ndarray
        float64 (n_slices, 3) left-edge traces (`SlicerLayout.trace_coefficients`).
    wavelength_solutions : numpy.ndarray
        float64 (n_slices, 3, 3) (`SlicerLayout.wavelength_coefficients`).
    throughputs : numpy.ndarray
        float64 (n_slices,).
    resolving_power : float
        R of the Gaussian LSF.
    sources : astropy.table.Table
        One row per source and line (`scene.truth_cube`), with ``ra, dec`` (deg) of ``x, y`` on the
        spaxel grid through `wcsinfo`.
    lines : astropy.table.Table
        OH or arc lines in the cube: ``kind, element, wavelength, flux`` (per spaxel).
    velocity : numpy.ndarray
        float32 (n_slices, n_spaxels) line-of-sight velocity of the disc's line (km/s), NaN off the disc.
    line_flux : numpy.ndarray
        float32 (n_slices, n_spaxels) the disc's line flux per spaxel (DN/s).
    cosmic_rays : astropy.table.Table
        As `~liger_iris_pipeline.simulate.ExposureTruth.cosmic_rays`.
    first_saturated_read : numpy.ndarray
        int16 (nints, ny, nx).
    mask : numpy.ndarray
        uint32 (ny, nx) bad-pixel flags.
    read_times : numpy.ndarray
        float64 (nreads,).
    layout : SlicerLayout
    filter_name, exposure_type : str
    wcsinfo : dict
        The spaxel grid's TAN WCS (x along the slices, y across them; 0-based pixel = spaxel).
    seed : int or None
    """

    cube: np.ndarray
    grid: WavelengthGrid
    sky: np.ndarray
    transmission: np.ndarray
    dispersed_rate: np.ndarray
    detector_rate: np.ndarray
    traces: np.ndarray
    wavelength_solutions: np.ndarray
    throughputs: np.ndarray
    resolving_power: float
    sources: object
    lines: object
    velocity: np.ndarray
    line_flux: np.ndarray
    cosmic_rays: object
    first_saturated_read: np.ndarray
    mask: np.ndarray
    read_times: np.ndarray
    layout: SlicerLayout
    filter_name: str
    exposure_type: str
    wcsinfo: dict
    seed: int | None = None

    _IMAGES = (
        ("SKY", "sky"),
        ("TRANSMISSION", "transmission"),
        ("DISPERSED_RATE", "dispersed_rate"),
        ("DETECTOR_RATE", "detector_rate"),
        ("TRACES", "traces"),
        ("WAVESOL", "wavelength_solutions"),
        ("THROUGHPUT", "throughputs"),
        ("VELOCITY", "velocity"),
        ("LINE_FLUX", "line_flux"),
        ("FIRST_SAT", "first_saturated_read"),
        ("MASK", "mask"),
        ("READ_TIMES", "read_times"),
    )
    _TABLES = (("SOURCES", "sources"), ("LINES", "lines"), ("COSMIC_RAYS", "cosmic_rays"))

    @property
    def wavelengths(self):
        """Wavelengths of the cube's bins (float64, microns)."""
        return self.grid.centres

    def cube_wcsinfo(self):
        """Return the ``meta.wcsinfo`` of the truth cube: the spaxel grid's TAN axes and a linear WAVE axis in um."""
        spectral = {"crpix3": 1.0, "crval3": float(self.grid.start), "cdelt3": float(self.grid.step), "pc3_3": 1.0}
        return {**self.wcsinfo, **spectral, "ctype3": "WAVE", "cunit3": "um", "specsys": "TOPOCENT"}

    def cube_model(self):
        """Return the truth cube as an `IRISCubeModel` (SCI only, ``BUNIT = 'DN/s'`` per spaxel per bin).

        Returns
        -------
        IRISCubeModel
            ``data`` is `cube`; the FITS WCS (``meta.wcsinfo``) is `cube_wcsinfo`; instrument, filter,
            IFS mode and spaxel scale of the exposure.
        """
        from ... import datamodels

        model = datamodels.IRISCubeModel()
        model.data = self.cube
        name = self.exposure_type.split("_", 1)[0]
        model.meta.telescope = instrument_model(name).telescope
        model.meta.instrument = {
            "name": name,
            "detector": "IFU",
            "mode": "IFS",
            "filter": self.filter_name,
            "ifs_mode": "SLICER",
            "spaxel_scale": float(self.layout.spaxel_scale),
        }
        model.meta.exposure.type = self.exposure_type
        model.meta.wcsinfo = self.cube_wcsinfo()
        model.meta.bunit_data = "DN/s"
        return model

    @staticmethod
    def cube_path(path):
        """Return the file of the truth cube written beside a truth file: ``<stem>_cube.fits``."""
        path = Path(path)
        return path.with_name(f"{path.stem}_cube.fits")

    def save(self, path, overwrite=True):
        """Write the truth: images and tables to ``path``, the cube to `cube_path` (`cube_model`).

        Parameters
        ----------
        path : str or os.PathLike
            Output file.
        overwrite : bool
            Replace existing files.
        """
        from astropy.io import fits
        from astropy.table import Table

        primary = fits.PrimaryHDU()
        header = primary.header
        header["ORIGIN"] = ("liger_iris_pipeline.simulate.ifs", "truth of a simulated IFS exposure")
        header["FILTER"] = self.filter_name
        header["EXP_TYPE"] = self.exposure_type
        header["RESOLV"] = (float(self.resolving_power), "resolving power of the Gaussian LSF")
        header["WAVE0"] = (float(self.grid.start), "first wavelength bin centre (um, vacuum)")
        header["WAVESTEP"] = (float(self.grid.step), "wavelength bin width (um)")
        header["CUBEFILE"] = (self.cube_path(path).name, "the truth cube (IRISCubeModel)")
        if self.seed is not None:
            header["SEED"] = int(self.seed)
        hdus = [primary]
        hdus += [fits.ImageHDU(np.asarray(getattr(self, name)), name=extension) for extension, name in self._IMAGES]
        hdus += [table_hdu(getattr(self, name), extension) for extension, name in self._TABLES]
        settings = Table({"layout": [json.dumps(asdict(self.layout))], "wcsinfo": [json.dumps(self.wcsinfo)]})
        hdus.append(table_hdu(settings, "SETTINGS"))
        fits.HDUList(hdus).writeto(path, overwrite=overwrite)
        with self.cube_model() as model:
            model.save(self.cube_path(path), overwrite=overwrite)

    @classmethod
    def load(cls, path):
        """Read a truth file and its cube written by `save`.

        Parameters
        ----------
        path : str or os.PathLike
            Truth FITS file.

        Returns
        -------
        IFSTruth
        """
        from astropy.io import fits

        from ... import datamodels

        with fits.open(path) as hdulist:
            header = hdulist[0].header
            values = read_truth_extensions(hdulist, cls._IMAGES, cls._TABLES)
            settings = hdulist["SETTINGS"].data[0]
            layout = json.loads(settings["layout"])
            wcsinfo = json.loads(settings["wcsinfo"])
        layout = SlicerLayout(**{key: tuple(v) if isinstance(v, list) else v for key, v in layout.items()})
        with datamodels.IRISCubeModel(cls.cube_path(path)) as model:
            values["cube"] = model.native_array("data")
        grid = WavelengthGrid(header["WAVE0"], header["WAVESTEP"], values["cube"].shape[0])
        return cls(
            **values,
            grid=grid,
            resolving_power=header["RESOLV"],
            layout=layout,
            filter_name=header["FILTER"],
            exposure_type=header["EXP_TYPE"],
            wcsinfo=wcsinfo,
            seed=header.get("SEED"),
        )


def default_science_scene(layout, filter_name="Kbb"):
    """Return the default science scene: two point sources with lines and a rotating disc, plus sky.

    Positions scale with the layout's spaxel grid, the disc's scale length too (an eighth of the
    grid, at least 2 spaxels so that its velocity field is resolved); the sources' lines are the
    first nebular lines in the filter (any line outside it simply adds nothing).

    Parameters
    ----------
    layout : SlicerLayout
        The slicer.
    filter_name : str
        Filter.

    Returns
    -------
    IFSScene
    """
    from ..filters import FILTERS
    from .lines import NEBULAR_LINES

    centre, width = FILTERS[filter_name]
    lines = [name for name, wavelength in NEBULAR_LINES.items() if abs(wavelength - centre) < 0.45 * width]
    ny, nx = layout.n_slices, layout.n_spaxels
    sources = [
        PointSource(0.27 * nx, 0.3 * ny, abmag=19.0, temperature=5500.0, lines=dict.fromkeys(lines[:2], 400.0)),
        PointSource(0.7 * nx, 0.75 * ny, abmag=20.0, temperature=3500.0, lines=dict.fromkeys(lines[:1], 200.0)),
    ]
    scale = max(min(nx, ny) / 8.0, 2.0)  # resolved: its velocity field is measured spaxel by spaxel
    disc = RotatingDisc(
        0.55 * nx, 0.5 * ny, line=lines[0] if lines else None, flux=4000.0, scale_length=scale, r_turn=scale / 2
    )
    return IFSScene(sources=sources, discs=[disc])


def simulate_ifs_exposure(
    scene,
    detector,
    layout=None,
    kind="SCIENCE",
    filter="Kbb",  # noqa: A002 - the FITS keyword's name
    nreads=10,
    nints=1,
    read_time=None,
    pointing=(0.0, 0.0, 0.0),
    cosmic_ray_rate=None,
    seed=0,
    date="2025-06-01T10:00:00",
    *,
    noiseless=False,
    linear=False,
    readout_mode="UTR",
    program_id="SIM-0001",
    observation_id="001",
    exposure_number=1,
    target_name=None,
):
    """Simulate the Level 0 ramps of one slicer exposure.

    Parameters
    ----------
    scene : IFSScene
        What the slicer sees (sources, sky, or a lamp); ignored for a dark.
    detector : DetectorTruth
        The IFS detector, full frame (``layout.detector_shape``).
    layout : SlicerLayout, optional
        The slicer; the full default layout if None.
    kind : str
        One of `IFS_EXPOSURE_KINDS` (sets EXP_TYPE, OBSTYPE, OBSNAME).
    filter : str
        Filter; a dark is always ``'DARK'``.
    nreads, nints : int
        Reads per integration, integrations.
    read_time : float, optional
        Time between reads (s); the instrument's by default.
    pointing : tuple of float
        ``(ra, dec, pa)`` of the spaxel grid's centre (deg).
    cosmic_ray_rate : float, optional
        Events per pixel per second; default the imager's, or 0 if ``noiseless``.
    seed : int
        Seed of the noise and cosmic rays.
    date : str
        Exposure start (ISO 8601 UTC).
    noiseless, linear : bool
        No Poisson or read noise; no non-linearity.
    readout_mode : {'UTR', 'CDS', 'MCDS'}
        READPATT.
    program_id, observation_id : str
        PROGID, OBS_ID.
    exposure_number : int
        EXPOSURE.
    target_name : str, optional
        TARGNAME; by default the kind.

    Returns
    -------
    model : TMTRampModel
        uint16 ramps with the IFS metadata (``INSTMODE = 'IFS'``, ``DETECTOR = 'IFU'``,
        ``IFSMODE = 'SLICER'``, ``SPAXSCL``).
    truth : IFSTruth
    """
    if kind not in IFS_EXPOSURE_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(IFS_EXPOSURE_KINDS)}")
    layout = SlicerLayout() if layout is None else layout
    if tuple(detector.shape) != tuple(layout.detector_shape):
        raise ValueError(f"the layout is for a {layout.detector_shape} detector, not {detector.shape}")
    instrument = instrument_model(detector.instrument)
    read_time = instrument.read_time if read_time is None else read_time
    if cosmic_ray_rate is None:
        cosmic_ray_rate = 0.0 if noiseless else DEFAULT_COSMIC_RAY_RATE
    suffix, obstype, obsname = IFS_EXPOSURE_KINDS[kind]
    if kind == "DARK":
        filter, scene = "DARK", IFSScene(sky=False)  # noqa: A001
    optics_filter = "Kbb" if filter == "DARK" else filter
    grid = WavelengthGrid.for_layout(layout, optics_filter)
    cube, tables = truth_cube(scene, layout, filter, grid)
    rate = dispersed_rate(cube, grid, layout, optics_filter)
    detector_rate = illuminated_rate(detector, rate)
    model, cosmic_rays, first_saturated = simulate_ramps(
        detector, detector_rate, nints, nreads, read_time, cosmic_ray_rate, seed, noiseless=noiseless, linear=linear
    )
    exposure_type = f"{instrument.name}_{suffix}"
    wcsinfo = wcsinfo_for_pointing(pointing, (layout.n_slices, layout.n_spaxels), layout.spaxel_scale)
    sources = tables["sources"]
    if len(sources):
        ra, dec = pixel_to_world(wcsinfo, sources["x"], sources["y"])
        sources.add_columns([np.asarray(ra) % 360.0, np.asarray(dec)], indexes=[4, 4], names=["ra", "dec"])
    _set_metadata(
        model.meta,
        det=detector,
        subarray_id=None,
        wcsinfo=wcsinfo,
        pointing=pointing,
        filter_name=filter,
        exposure_type=exposure_type,
        readout_mode=readout_mode,
        nints=nints,
        nreads=nreads,
        nfowler=1,
        read_time=read_time,
        date=date,
        plate_scale=layout.spaxel_scale,
        program_id=program_id,
        observation_id=observation_id,
        exposure_number=exposure_number,
        target_name=target_name or kind,
        detector="IFU",
        mode="IFS",
        observation=(obstype, obsname),
    )
    _set_ifs_metadata(model.meta, layout)
    truth = IFSTruth(
        cube=cube,
        grid=grid,
        sky=tables["sky"],
        transmission=tables["transmission"],
        dispersed_rate=rate,
        detector_rate=detector_rate,
        traces=layout.trace_coefficients(),
        wavelength_solutions=layout.wavelength_coefficients(optics_filter),
        throughputs=layout.slice_throughputs(),
        resolving_power=layout.resolving_power(optics_filter),
        sources=sources,
        lines=tables["lines"],
        velocity=tables["velocity"],
        line_flux=tables["line_flux"],
        cosmic_rays=cosmic_rays,
        first_saturated_read=first_saturated,
        mask=detector.mask,
        read_times=model.read_times,
        layout=layout,
        filter_name=filter,
        exposure_type=exposure_type,
        wcsinfo=wcsinfo,
        seed=seed,
    )
    return model, truth


def _set_ifs_metadata(meta, layout):
    """IFSMODE and SPAXSCL (``docs/ifs_design.rst``)."""
    meta.instrument.ifs_mode = "SLICER"
    meta.instrument.spaxel_scale = float(layout.spaxel_scale)
