"""The scene in front of the slicer, as a truth cube on the spaxel grid.

The cube is ``(wavelength, y, x)``: y is the slice, x the spaxel along it (`SlicerLayout`), on a
regular wavelength grid finer than the resolution (`WavelengthGrid`). Its unit is DN/s per spaxel
per wavelength bin (``BUNIT = 'DN/s'``): what reaches the slicer through the atmosphere, telescope,
instrument and detector QE (the imager's `~liger_iris_pipeline.simulate.filters.THROUGHPUT`) and the
filter (a top hat), before the slice throughputs and the pixel flat. A calibrated cube before
flux calibration should show it, convolved with the line-spread function.

Flux scale: a source of flux density F_nu gives ``F_nu * dn_per_jy(filter) / ln(hi / lo) / lambda``
DN/s per micron, the photon model of `~liger_iris_pipeline.simulate.filters.dn_per_jy` spread over
wavelength.

Models (simulator choices, documented in ``docs/simulate_ifs.rst``):

- `PointSource`: a Gaussian PSF of the filter's diffraction-limited FWHM; a blackbody continuum
  (`astropy.modeling.physical_models.BlackBody`) scaled to an AB magnitude at the filter's centre;
  emission lines of given total flux at the source's velocity.
- `RotatingDisc`: an exponential disc in one emission line, an arctangent rotation curve
  (Courteau 1997, AJ 114, 2402) seen at an inclination, giving the known velocity map.
- Sky: the imager's broad-band sky rate per spaxel (`~liger_iris_pipeline.simulate.filters.sky_rate`),
  `SKY_LINE_FRACTION` of it in the OH lines (`lines.OH_LINES`, their relative intensities), the rest
  a continuum flat in photons per micron. The OH lines can be scaled as a whole (``oh_scale``) and
  per vibrational band (``oh_family_scales``): the bands vary independently in time (Davies 2007).
- Telluric absorption (`telluric_transmission`): a documented simple model of the main H2O and CO2
  bands, applied to the sources (not to the sky's emission).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ..filters import FILTERS, dn_per_jy, psf_fwhm, sky_rate
from .lines import ARC_LINES, NEBULAR_LINES, lines_in_range, oh_lines_in_range

__all__ = [
    "SKY_LINE_FRACTION",
    "TELLURIC_BANDS",
    "IFSScene",
    "PointSource",
    "RotatingDisc",
    "WavelengthGrid",
    "telluric_transmission",
    "truth_cube",
]

SPEED_OF_LIGHT = 299792.458
"""km/s."""

SKY_LINE_FRACTION = 0.8
"""Fraction of the near-infrared broad-band sky in the OH lines (a simulator choice: OH dominates J and H)."""

TELLURIC_BANDS = (
    # (centre um, Gaussian sigma um, optical depth at the centre): H2O, CO2 and CH4 bands at a dry site.
    (0.935, 0.015, 1.5),
    (1.135, 0.020, 1.2),
    (1.380, 0.045, 4.0),
    (1.870, 0.050, 4.0),
    (2.010, 0.008, 0.6),
    (2.060, 0.008, 0.5),
    (2.320, 0.040, 0.1),
    (2.500, 0.060, 2.0),
)
"""Telluric absorption bands: approximate centres of the water (0.94, 1.14, 1.38, 1.87, 2.5 um),
carbon dioxide (2.01, 2.06 um) and methane (2.32 um) bands of the near-infrared atmosphere (e.g.
the ATRAN model, Lord 1992, NASA TM-103957); widths and depths are a smooth simple model, not a fit."""

_OVERSAMPLE = 3
"""Truth-cube wavelength bins per detector pixel."""


@dataclass(frozen=True)
class WavelengthGrid:
    """A regular wavelength grid: bin ``j`` is centred on ``start + j * step`` (microns)."""

    start: float
    step: float
    size: int

    @property
    def centres(self):
        """Bin centres (float64, microns)."""
        return self.start + self.step * np.arange(self.size)

    @property
    def edges(self):
        """Bin edges (float64, size + 1)."""
        return self.start + self.step * (np.arange(self.size + 1) - 0.5)

    @classmethod
    def for_layout(cls, layout, filter_name, oversample=_OVERSAMPLE):
        """Return the grid covering every wavelength a slice receives, ``oversample`` bins per pixel.

        Parameters
        ----------
        layout : SlicerLayout
            The slicer.
        filter_name : str
            Filter of the exposure.
        oversample : int
            Bins per detector pixel (at the bank's centre).

        Returns
        -------
        WavelengthGrid
        """
        low, high = layout.wavelength_range(filter_name)
        step = layout.dispersion(filter_name) / oversample
        return cls(low, step, int(math.ceil((high - low) / step)) + 1)


@dataclass
class PointSource:
    """An unresolved source.

    Attributes
    ----------
    x, y : float
        Position on the spaxel grid (0-based; x along the slices, y across them).
    abmag : float
        AB magnitude of the continuum at the filter's centre (``inf``: no continuum).
    temperature : float
        Blackbody temperature of the continuum (K).
    lines : dict
        Line name (`lines.NEBULAR_LINES`) -> total flux (DN/s).
    velocity : float
        Line-of-sight velocity of the lines (km/s).
    line_sigma : float
        Intrinsic velocity dispersion of the lines (km/s).
    """

    x: float
    y: float
    abmag: float = 20.0
    temperature: float = 5000.0
    lines: dict = field(default_factory=dict)
    velocity: float = 0.0
    line_sigma: float = 30.0


@dataclass
class RotatingDisc:
    """An inclined, rotating exponential disc seen in one emission line.

    Attributes
    ----------
    x, y : float
        Centre on the spaxel grid.
    line : str
        Line name (`lines.NEBULAR_LINES`); None: the first of them in the filter.
    flux : float
        Total line flux (DN/s).
    scale_length : float
        Exponential scale length along the major axis (spaxels).
    v_max : float
        Asymptotic rotation speed (km/s).
    r_turn : float
        Turnover radius of the arctangent rotation curve (spaxels).
    position_angle : float
        Of the receding major axis, from +y towards +x (deg).
    inclination : float
        0 face-on, 90 edge-on (deg).
    v_sys : float
        Systemic velocity (km/s).
    line_sigma : float
        Intrinsic velocity dispersion (km/s).
    """

    x: float
    y: float
    line: str | None = None
    flux: float = 200.0
    scale_length: float = 3.0
    v_max: float = 200.0
    r_turn: float = 1.5
    position_angle: float = 30.0
    inclination: float = 60.0
    v_sys: float = 0.0
    line_sigma: float = 40.0

    def maps(self, shape):
        """Return the disc's line flux (DN/s per spaxel) and line-of-sight velocity (km/s) maps.

        Parameters
        ----------
        shape : tuple of int
            ``(ny, nx)`` of the spaxel grid.

        Returns
        -------
        flux, velocity : numpy.ndarray
            float64 ``(ny, nx)``; the flux sums to ``flux`` over an unbounded grid.
        """
        y, x = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
        angle = math.radians(self.position_angle)
        along = (x - self.x) * math.sin(angle) + (y - self.y) * math.cos(angle)  # major axis
        across = -(x - self.x) * math.cos(angle) + (y - self.y) * math.sin(angle)
        cos_i = math.cos(math.radians(self.inclination))
        radius = np.hypot(along, across / cos_i)
        brightness = np.exp(-radius / self.scale_length)
        flux = self.flux * brightness / (2 * math.pi * self.scale_length**2 * cos_i)
        rotation = self.v_max * 2.0 / math.pi * np.arctan(radius / self.r_turn)
        with np.errstate(invalid="ignore", divide="ignore"):
            cos_theta = np.where(radius > 0, along / np.where(radius > 0, radius, 1.0), 0.0)
        velocity = self.v_sys + rotation * cos_theta * math.sin(math.radians(self.inclination))
        return flux, velocity


@dataclass
class IFSScene:
    """What the slicer sees.

    Attributes
    ----------
    sources : list of PointSource
    discs : list of RotatingDisc
    sky : bool
        Add the night sky (OH lines and continuum).
    telluric : bool
        Pass the sources through `telluric_transmission`.
    lamp : {None, 'continuum', 'arc'}
        A calibration lamp filling the field uniformly instead of the sky.
    lamp_rate : float
        Continuum lamp: DN/s per detector pixel at the centre of a bank (before throughputs and
        flat). Arc: DN/s per spaxel of each lamp's brightest line.
    arc_lamps : tuple of str
        Lamps of an arc exposure (keys of `lines.ARC_LINES`).
    oh_scale : float
        Factor on the OH lines (the airglow varies from frame to frame; the continuum does not).
    oh_family_scales : dict
        Vibrational band (``"9-7"``, the bands of `lines.OH_LINES`) -> a further factor on that band's
        lines (bands not given: 1): the bands vary independently, by a few to 10-20 % between frames
        minutes apart (Davies 2007, MNRAS 375, 1099).
    """

    sources: list = field(default_factory=list)
    discs: list = field(default_factory=list)
    sky: bool = True
    telluric: bool = True
    lamp: str | None = None
    lamp_rate: float = 200.0
    arc_lamps: tuple = ("ArI", "KrI", "XeI", "NeI")
    oh_scale: float = 1.0
    oh_family_scales: dict = field(default_factory=dict)


def telluric_transmission(wavelength):
    """Return the atmosphere's transmission at vacuum wavelengths (microns): `TELLURIC_BANDS`."""
    wavelength = np.asarray(wavelength, dtype=np.float64)
    depth = np.zeros_like(wavelength)
    for centre, sigma, tau in TELLURIC_BANDS:
        depth += tau * np.exp(-0.5 * ((wavelength - centre) / sigma) ** 2)
    return np.exp(-depth)


def _per_jy_density(filter_name, wavelength):
    """DN/s per micron of 1 Jy at these wavelengths (the photon model of `dn_per_jy`)."""
    centre, width = FILTERS[filter_name]
    return dn_per_jy(filter_name) / math.log((centre + width / 2) / (centre - width / 2)) / wavelength


def _passband(filter_name, grid):
    """Fraction of each bin inside the filter's top-hat passband."""
    centre, width = FILTERS[filter_name]
    edges = grid.edges
    low = np.clip(edges[:-1], centre - width / 2, centre + width / 2)
    high = np.clip(edges[1:], centre - width / 2, centre + width / 2)
    return (high - low) / grid.step


def add_lines(spectrum, grid, wavelengths, fluxes, sigma=None):
    """Add emission lines (total flux per line) to spectra on a grid, conserving flux and centroid.

    Parameters
    ----------
    spectrum : numpy.ndarray
        Flux per bin, changed in place: ``(nwave,)`` for unresolved lines, ``(nwave, *shape)`` for
        resolved lines of ``shape`` (one line per spectrum) or ``(nwave,)`` for one resolved line.
    grid : WavelengthGrid
        Its wavelength bins.
    wavelengths, fluxes : array_like
        Line centres (microns) and total fluxes (the spectrum's unit).
    sigma : array_like, optional
        Gaussian sigma (microns) of resolved lines, integrated over the bins; None: unresolved lines,
        each split between its two nearest bin centres (flux and centroid exact).
    """
    from scipy.special import ndtr

    wavelengths = np.asarray(wavelengths, dtype=np.float64)
    fluxes = np.asarray(fluxes, dtype=np.float64)
    if sigma is None:
        position = (wavelengths - grid.start) / grid.step
        below = np.floor(position).astype(np.int64)
        weight = position - below
        for index, share in ((below, 1.0 - weight), (below + 1, weight)):
            inside = (index >= 0) & (index < grid.size)
            np.add.at(spectrum, index[inside], (fluxes * share)[inside])
        return
    edges = grid.edges.reshape(-1, *([1] * wavelengths.ndim))
    spectrum += np.diff(ndtr((edges - wavelengths) / sigma), axis=0) * fluxes


def _psf_weights(source, shape, fwhm):
    """Fraction of a Gaussian PSF (FWHM in spaxels) falling in each spaxel."""
    from scipy.special import ndtr

    sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    fractions = []
    for centre, size in ((source.y, shape[0]), (source.x, shape[1])):
        edges = np.arange(size + 1) - 0.5
        fractions.append(np.diff(ndtr((edges - centre) / sigma)))
    return fractions[0][:, None] * fractions[1][None, :]


def _line_wavelength(name, filter_name):
    """Rest wavelength of a nebular line, or the first nebular line inside the filter if ``name`` is None."""
    if name is not None:
        return NEBULAR_LINES[name]
    centre, width = FILTERS[filter_name]
    for wavelength in NEBULAR_LINES.values():
        if abs(wavelength - centre) < width / 2 * 0.9:
            return wavelength
    raise ValueError(f"no nebular line inside filter {filter_name}; give the disc a line")


def sky_spectrum(grid, filter_name, spaxel_scale, oh_scale=1.0, oh_family_scales=None):
    """Return the sky per spaxel (DN/s per bin, float64 nwave) and the OH lines used ``(wavelength, flux, band)``.

    ``oh_scale`` multiplies every OH line, ``oh_family_scales`` (band -> factor) those of a band in
    addition; the nominal sky (both 1) is the broad-band sky rate.
    """
    centre, width = FILTERS[filter_name]
    total = sky_rate(filter_name, spaxel_scale)
    oh_wavelength, intensity, bands = oh_lines_in_range(centre - width / 2, centre + width / 2)
    line_fraction = SKY_LINE_FRACTION if oh_wavelength.size else 0.0
    spectrum = (1.0 - line_fraction) * total / width * grid.step * np.ones(grid.size)
    oh_flux = line_fraction * total * intensity / intensity.sum() if oh_wavelength.size else intensity
    family_scales = oh_family_scales or {}
    oh_flux = oh_flux * oh_scale * np.array([family_scales.get(band, 1.0) for band in bands])
    add_lines(spectrum, grid, oh_wavelength, oh_flux)
    return spectrum * _passband(filter_name, grid), (oh_wavelength, oh_flux, bands)


def truth_cube(scene, layout, filter_name, grid=None):
    """Return the truth cube of a scene and its tables.

    Parameters
    ----------
    scene : IFSScene
        Sources, discs, sky or lamp.
    layout : SlicerLayout
        The slicer (spaxel grid, scale).
    filter_name : str
        Filter; ``'DARK'`` gives an empty cube.
    grid : WavelengthGrid, optional
        By default `WavelengthGrid.for_layout` of the layout and filter.

    Returns
    -------
    cube : numpy.ndarray
        float32 ``(nwave, n_slices, n_spaxels)`` DN/s per spaxel per bin.
    truth : dict
        ``grid`` (`WavelengthGrid`), ``sky`` (float64 nwave, DN/s per spaxel per bin, zero without
        sky), ``transmission`` (telluric, float64 nwave), ``sources`` (`astropy.table.Table`: ``id,
        kind, x, y, abmag, temperature, line, line_wavelength, line_flux, velocity``, one row per
        source and line), ``lines`` (Table ``kind, element, band, wavelength, flux``: OH or arc lines
        put into the cube, flux per spaxel, ``band`` an OH line's vibrational band), ``velocity``
        (float32 ``(n_slices, n_spaxels)`` km/s of the discs' line, NaN where no disc), ``line_flux``
        (float32, the discs' line flux per spaxel).
    """

    shape = (layout.n_slices, layout.n_spaxels)
    dark = filter_name not in FILTERS
    if grid is None:
        grid = WavelengthGrid.for_layout(layout, "Kbb" if dark else filter_name)
    wave = grid.centres
    cube = np.zeros((grid.size, *shape), dtype=np.float32)
    sky = np.zeros(grid.size)
    transmission = telluric_transmission(wave) if scene.telluric else np.ones(grid.size)
    source_rows, line_rows = [], []
    velocity_map = np.full(shape, np.nan, dtype=np.float32)
    disc_flux = np.zeros(shape, dtype=np.float32)
    if dark:
        return cube, _truth_tables(grid, sky, transmission, source_rows, line_rows, velocity_map, disc_flux)
    passband = _passband(filter_name, grid)
    per_jy = _per_jy_density(filter_name, wave) * grid.step
    centre = FILTERS[filter_name][0]

    if scene.lamp == "continuum":
        per_micron = scene.lamp_rate * layout.spaxel_pixels / layout.dispersion(filter_name)
        cube += (per_micron * grid.step * passband).astype(np.float32)[:, None, None]
    elif scene.lamp == "arc":
        spectrum = np.zeros(grid.size)
        for lamp in scene.arc_lamps:
            wavelengths, intensity = lines_in_range(ARC_LINES[lamp], grid.edges[0], grid.edges[-1])
            flux = scene.lamp_rate * intensity / max(max(i for _, i in ARC_LINES[lamp]), 1.0)
            add_lines(spectrum, grid, wavelengths, flux)
            line_rows += [("ARC", lamp, "", w, f) for w, f in zip(wavelengths, flux, strict=True)]
        cube += (spectrum * passband).astype(np.float32)[:, None, None]
    elif scene.lamp is not None:
        raise ValueError(f"lamp must be None, 'continuum' or 'arc', got {scene.lamp!r}")
    elif scene.sky:
        sky, oh_lines = sky_spectrum(grid, filter_name, layout.spaxel_scale, scene.oh_scale, scene.oh_family_scales)
        cube += sky.astype(np.float32)[:, None, None]
        line_rows += [("OH", "OH", band, w, f) for w, f, band in zip(*oh_lines, strict=True)]

    fwhm = psf_fwhm(filter_name) / layout.spaxel_scale
    for number, source in enumerate(scene.sources, start=1):
        spectrum = np.zeros(grid.size)
        if math.isfinite(source.abmag):
            spectrum += _continuum_jy(source, wave, centre) * per_jy
        rows = [("", math.nan, 0.0)]
        for name, flux in source.lines.items():
            observed = NEBULAR_LINES[name] * (1.0 + source.velocity / SPEED_OF_LIGHT)
            add_lines(spectrum, grid, observed, flux, observed * source.line_sigma / SPEED_OF_LIGHT)
            rows.append((name, observed, flux))
        spectrum *= transmission * passband
        cube += spectrum.astype(np.float32)[:, None, None] * _psf_weights(source, shape, fwhm).astype(np.float32)
        for name, observed, flux in rows[1:] if len(rows) > 1 else rows:
            fixed = (number, "point", source.x, source.y, source.abmag, source.temperature)
            source_rows.append((*fixed, name, observed, flux, source.velocity))
    for number, disc in enumerate(scene.discs, start=len(scene.sources) + 1):
        flux, velocity = disc.maps(shape)
        rest = _line_wavelength(disc.line, filter_name)
        # Only where the disc is brighter than 1e-6 of its peak: a full-frame cube has 4000 spaxels.
        seen = flux > 1e-6 * flux.max()
        observed = rest * (1.0 + velocity[seen] / SPEED_OF_LIGHT)
        spectra = np.zeros((grid.size, int(seen.sum())))
        add_lines(spectra, grid, observed, flux[seen], observed * disc.line_sigma / SPEED_OF_LIGHT)
        spectra *= (transmission * passband)[:, None]
        cube[:, seen] += spectra.astype(np.float32)
        velocity_map[seen] = velocity[seen]
        disc_flux[seen] += flux[seen].astype(np.float32)
        name = disc.line or next(key for key, value in NEBULAR_LINES.items() if value == rest)
        source_rows.append((number, "disc", disc.x, disc.y, math.inf, 0.0, name, rest, disc.flux, disc.v_sys))
    return cube, _truth_tables(grid, sky, transmission, source_rows, line_rows, velocity_map, disc_flux)


def _continuum_jy(source, wavelength, centre):
    """Blackbody continuum (Jy) scaled to the source's AB magnitude at the filter's centre."""
    import astropy.units as u
    from astropy.modeling.physical_models import BlackBody

    blackbody = BlackBody(temperature=source.temperature * u.K)
    shape = blackbody(wavelength * u.um).value / blackbody(centre * u.um).value
    return 3631.0 * 10 ** (-0.4 * source.abmag) * shape


_SOURCE_COLUMNS = ("id", "kind", "x", "y", "abmag", "temperature", "line", "line_wavelength", "line_flux", "velocity")


def _truth_tables(grid, sky, transmission, source_rows, line_rows, velocity_map, disc_flux):
    from astropy.table import Table

    sources = Table(
        rows=source_rows or None,
        names=_SOURCE_COLUMNS,
        dtype=(np.int32, "U8", float, float, float, float, "U16", float, float, float),
    )
    lines = Table(
        rows=line_rows or None,
        names=("kind", "element", "band", "wavelength", "flux"),
        dtype=("U4", "U4", "U4", float, float),
    )
    return {
        "grid": grid,
        "sky": sky,
        "transmission": transmission,
        "sources": sources,
        "lines": lines,
        "velocity": velocity_map,
        "line_flux": disc_flux,
    }
