"""Astronomical scene: point sources and extended sources on the sky, plus a uniform sky.

Rates are what a calibrated (dark-subtracted, flat-fielded) Level 2 frame shows, in DN/s
per pixel; the detector multiplies them by its flat and adds its dark current.

- Point sources: ``flux`` is the total rate (DN/s) of the source on the detector. The
  PSF is a 2-D Gaussian core of FWHM ``1.03 lambda / D`` (filter centre wavelength,
  D = 30 m) integrated exactly over each pixel (differences of ``erf`` at the pixel
  edges, +-8 sigma stamps, so the flux on the detector equals ``flux`` to ~1e-15 for a
  source away from the edges). An optional Moffat halo takes ``halo_fraction`` of the
  flux; it is normalised over the infinite plane and truncated at ``halo_radius``, so the
  truncated tail (known analytically) is lost.
- Extended sources: elliptical Sersic profiles (exponential disk by default), truncated at
  10 effective radii and normalised analytically so that the truncated profile holds
  ``flux``; pixels are averages over a 5x5 sub-pixel grid (for an exponential disk with
  r_eff >= 5 pixels the image then holds ``flux`` to better than 0.1 %; a steep n = 4
  cusp is less exact in its central pixel).
- Sky: ``sky`` DN/s per pixel if given, else the filter's Maunakea sky
  (`~liger_iris_pipeline.simulate.filters.sky_rate`).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from . import filters
from .pointing import world_to_pixel

__all__ = ["ExtendedSource", "Scene"]

_SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
_STAMP_SIGMAS = 8.0
_OVERSAMPLE = 5
_SERSIC_RADII = 10.0
_erf = np.frompyfunc(math.erf, 1, 1)


@dataclass
class ExtendedSource:
    """An elliptical Sersic galaxy.

    Attributes
    ----------
    ra, dec : float
        Centre (deg, ICRS).
    flux : float
        Total rate (DN/s).
    r_eff : float
        Half-light radius along the major axis (arcsec).
    sersic_n : float
        Sersic index (1 = exponential disk, 4 = de Vaucouleurs).
    axis_ratio : float
        Minor / major axis.
    position_angle : float
        Major axis position angle (deg, North through East).
    """

    ra: float
    dec: float
    flux: float
    r_eff: float = 0.05
    sersic_n: float = 1.0
    axis_ratio: float = 1.0
    position_angle: float = 0.0


def _as_array(values):
    return np.atleast_1d(np.asarray(values, dtype=np.float64))


@dataclass
class Scene:
    """Sources on the sky and the sky background.

    Attributes
    ----------
    center : tuple of float
        ``(ra, dec)`` of the field centre (deg), the default pointing.
    ra, dec, flux : numpy.ndarray
        Point sources: positions (deg) and total rates (DN/s).
    extended : list of ExtendedSource
        Extended sources.
    sky : float or None
        Uniform background (DN/s per pixel); None uses the filter's sky. A flat-lamp
        exposure puts its lamp rate here.
    halo_fraction : float
        Fraction of each point source's flux in a Moffat halo (0 = pure diffraction core).
    halo_fwhm : float
        Halo FWHM (arcsec).
    halo_beta : float
        Moffat power index of the halo.
    halo_radius : float
        Radius (arcsec) at which the halo is truncated.
    """

    center: tuple = (0.0, 0.0)
    ra: np.ndarray = field(default_factory=lambda: np.zeros(0))
    dec: np.ndarray = field(default_factory=lambda: np.zeros(0))
    flux: np.ndarray = field(default_factory=lambda: np.zeros(0))
    extended: list = field(default_factory=list)
    sky: float | None = None
    halo_fraction: float = 0.0
    halo_fwhm: float = 0.4
    halo_beta: float = 2.5
    halo_radius: float = 1.0

    def __post_init__(self):
        self.ra, self.dec, self.flux = (_as_array(values) for values in (self.ra, self.dec, self.flux))
        if not self.ra.shape == self.dec.shape == self.flux.shape:
            raise ValueError("ra, dec and flux of the point sources must have the same length")
        if not 0.0 <= self.halo_fraction <= 1.0:
            raise ValueError(f"halo_fraction {self.halo_fraction} is not within [0, 1]")

    @classmethod
    def random(
        cls,
        n_stars,
        seed,
        ra,
        dec,
        field=16.384,
        flux_range=(10.0, 1.0e5),
        n_extended=1,
        *,
        abmag_range=None,
        filter_name="Kbb",
        instrument="iris",
        **kwargs,
    ):
        """Return a field of random stars (and galaxies) around ``(ra, dec)``.

        Parameters
        ----------
        n_stars : int
            Number of point sources.
        seed : int
            Seed of the random generator.
        ra, dec : float
            Field centre (deg).
        field : float
            Side of the square field (arcsec); the default is the IRIS imager field
            (4096 pixels of 0.004 arcsec).
        flux_range : tuple of float
            Point-source rates are log-uniform in this range (DN/s).
        n_extended : int
            Number of exponential-disk galaxies (r_eff 0.02-0.1 arcsec, rates 10x
            ``flux_range``).
        abmag_range : tuple of float, optional
            ``(bright, faint)`` AB magnitudes in ``filter_name`` seen by ``instrument``;
            replaces ``flux_range`` (`filters.dn_per_jy`).
        filter_name, instrument : str
            Filter and telescope of ``abmag_range``.
        **kwargs
            Other `Scene` attributes (``sky``, ``halo_fraction``...).

        Returns
        -------
        Scene
        """
        if abmag_range is not None:
            to_rate = filters.dn_per_jy(filter_name, instrument) * filters.AB_ZERO_POINT
            flux_range = tuple(sorted(to_rate * 10 ** (-0.4 * float(mag)) for mag in abmag_range))
        rng = np.random.default_rng(seed)
        half = field / 3600.0 / 2.0
        cos_dec = math.cos(math.radians(dec))

        def positions(count):
            offsets = rng.uniform(-half, half, (2, count))
            return ra + offsets[0] / cos_dec, dec + offsets[1]

        star_ra, star_dec = positions(n_stars)
        low, high = (math.log(value) for value in flux_range)
        star_flux = np.exp(rng.uniform(low, high, n_stars))
        galaxies = []
        for gal_ra, gal_dec in zip(*positions(n_extended), strict=True):
            galaxies.append(
                ExtendedSource(
                    ra=float(gal_ra),
                    dec=float(gal_dec),
                    flux=float(np.exp(rng.uniform(low, high))) * 10.0,
                    r_eff=float(rng.uniform(0.02, 0.1)),
                    sersic_n=1.0,
                    axis_ratio=float(rng.uniform(0.4, 1.0)),
                    position_angle=float(rng.uniform(0.0, 180.0)),
                )
            )
        return cls(center=(ra, dec), ra=star_ra, dec=star_dec, flux=star_flux, extended=galaxies, **kwargs)

    def sky_rate(self, filter_name, plate_scale=filters.PLATE_SCALE, instrument="iris"):
        """Return the uniform background (DN/s per pixel) in a filter, seen by an instrument."""
        if self.sky is not None:
            return float(self.sky)
        return filters.sky_rate(filter_name, plate_scale, instrument)

    def render(self, wcsinfo, shape, filter_name, plate_scale=filters.PLATE_SCALE, instrument="iris", to_detector=None):
        """Return the rate image of the scene and the pixel positions of its sources.

        Sources are drawn at their detector positions ``to_detector(u, v)`` of their
        focal-plane positions (the WCS's pixels); the PSF and galaxy shapes are not
        distorted (the distortion's scale changes by ~1e-3 across a source).

        Parameters
        ----------
        wcsinfo : dict
            ``meta.wcsinfo`` values of the exposure (`wcsinfo_for_pointing`).
        shape : tuple of int
            ``(ny, nx)`` of the image.
        filter_name : str
            Filter; sets the PSF width and (if ``sky`` is None) the sky.
        plate_scale : float
            Arcsec per pixel.
        instrument : str
            ``iris`` or ``liger``: the telescope (PSF width, sky).
        to_detector : callable, optional
            ``(u, v) -> (x, y)``: focal-plane pixels of this image (those of ``wcsinfo``)
            to its detector pixels; the identity (no distortion) if None.

        Returns
        -------
        rate : numpy.ndarray
            float32 (ny, nx) DN/s per pixel.
        star_xy : numpy.ndarray
            float64 (2, n_stars) 0-based detector pixel positions (x = column, y = row).
        galaxy_xy : numpy.ndarray
            float64 (2, n_extended) 0-based detector pixel positions.
        """
        if to_detector is None:

            def to_detector(u, v):
                return u, v

        def sky_to_detector(ra, dec):
            u, v = world_to_pixel(wcsinfo, ra, dec)
            return to_detector(np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64))

        rate = np.zeros(shape, dtype=np.float32)
        star_xy = np.array(sky_to_detector(self.ra, self.dec)).reshape(2, -1)
        if self.ra.size:
            sigma = filters.psf_fwhm(filter_name, instrument) / plate_scale * _SIGMA_PER_FWHM
            for x, y, flux in zip(star_xy[0], star_xy[1], self.flux, strict=True):
                _add_gaussian(rate, x, y, sigma, flux * (1.0 - self.halo_fraction))
                if self.halo_fraction > 0:
                    _add_moffat(
                        rate,
                        x,
                        y,
                        self.halo_fwhm / plate_scale,
                        self.halo_beta,
                        self.halo_radius / plate_scale,
                        flux * self.halo_fraction,
                    )
        galaxy_xy = np.zeros((2, len(self.extended)))
        for index, galaxy in enumerate(self.extended):
            x, y = (float(value) for value in sky_to_detector(galaxy.ra, galaxy.dec))
            galaxy_xy[:, index] = x, y
            # Direction of the major axis on the detector, from a small step along it on the sky.
            step = 1.0e-4
            angle = math.radians(galaxy.position_angle)
            tip = sky_to_detector(
                galaxy.ra + step * math.sin(angle) / math.cos(math.radians(galaxy.dec)),
                galaxy.dec + step * math.cos(angle),
            )
            direction = np.array([float(tip[0]) - x, float(tip[1]) - y])
            direction /= np.hypot(*direction)
            _add_sersic(rate, x, y, galaxy, galaxy.r_eff / plate_scale, direction)
        rate += np.float32(self.sky_rate(filter_name, plate_scale, instrument))
        return rate, star_xy, galaxy_xy


def _paste(image, stamp, x0, y0):
    """Add ``stamp`` whose pixel [0, 0] lands on image pixel (x0, y0), clipped to the image."""
    ny, nx = image.shape
    sy, sx = stamp.shape
    ya, xa = max(y0, 0), max(x0, 0)
    yb, xb = min(y0 + sy, ny), min(x0 + sx, nx)
    if ya < yb and xa < xb:
        image[ya:yb, xa:xb] += stamp[ya - y0 : yb - y0, xa - x0 : xb - x0]


def _pixel_integrals(centre, sigma, half):
    """Integrals of a unit 1-D Gaussian over the 2 half + 1 pixels around round(centre)."""
    first = round(centre) - half
    edges = np.arange(first, first + 2 * half + 2) - 0.5
    cdf = 0.5 * _erf((edges - centre) / (sigma * math.sqrt(2.0))).astype(np.float64)
    return np.diff(cdf), first


def _add_gaussian(image, x, y, sigma, flux):
    half = math.ceil(_STAMP_SIGMAS * sigma) + 1
    wx, x0 = _pixel_integrals(x, sigma, half)
    wy, y0 = _pixel_integrals(y, sigma, half)
    _paste(image, flux * np.outer(wy, wx), x0, y0)


def _add_moffat(image, x, y, fwhm, beta, radius, flux):
    alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))
    half = math.ceil(radius)
    x0, y0 = round(x) - half, round(y) - half
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    dx = offsets + (x0 + half - x)
    dy = (offsets + (y0 + half - y))[:, None]
    r2 = (dx * dx + dy * dy) / (alpha * alpha)
    # The halo varies on scales of alpha >> 1 pixel, so its value at the pixel centre is its integral.
    stamp = (beta - 1.0) / (math.pi * alpha * alpha) * (1.0 + r2) ** (-beta)
    stamp[r2 * alpha * alpha > radius * radius] = 0.0
    _paste(image, flux * stamp, x0, y0)


def _sersic_b(n):
    """Sersic b_n (half-light radius), Ciotti & Bertin (1999) asymptotic expansion."""
    return 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n) + 46.0 / (25515.0 * n * n)


def _lower_gamma(s, x):
    """Lower incomplete gamma function gamma(s, x), by its power series (x of a few tens at most)."""
    term = total = 1.0 / s
    k = 0
    while term > 1e-17 * total:
        k += 1
        term *= x / (s + k)
        total += term
    return total * math.exp(s * math.log(x) - x)


def _add_sersic(image, x, y, galaxy, r_eff, direction):
    """Add a Sersic profile truncated at 10 r_eff, holding exactly ``galaxy.flux`` in total.

    Only the part of the stamp that overlaps the image is evaluated (5x oversampled); the
    normalisation is the analytic flux inside the truncation ellipse,
    ``2 pi q n r_e^2 e^b b^(-2n) gamma(2n, b 10^(1/n))`` per unit central surface brightness.
    """
    n, q = galaxy.sersic_n, galaxy.axis_ratio
    b = _sersic_b(n)
    unit_flux = (
        2.0
        * math.pi
        * q
        * n
        * r_eff
        * r_eff
        * math.exp(b)
        * b ** (-2.0 * n)
        * _lower_gamma(2.0 * n, b * _SERSIC_RADII ** (1.0 / n))
    )
    half = math.ceil(_SERSIC_RADII * r_eff) + 1
    ny, nx = image.shape
    x0, x1 = max(round(x) - half, 0), min(round(x) + half + 1, nx)
    y0, y1 = max(round(y) - half, 0), min(round(y) + half + 1, ny)
    if x0 >= x1 or y0 >= y1:
        return
    # Sub-pixel centres of the oversampled grid, relative to the galaxy centre.
    dx = np.arange(x0 * _OVERSAMPLE, x1 * _OVERSAMPLE) / _OVERSAMPLE + (0.5 / _OVERSAMPLE - 0.5) - x
    dy = (np.arange(y0 * _OVERSAMPLE, y1 * _OVERSAMPLE) / _OVERSAMPLE + (0.5 / _OVERSAMPLE - 0.5) - y)[:, None]
    major = dx * direction[0] + dy * direction[1]
    minor = (dy * direction[0] - dx * direction[1]) / q
    radius = np.sqrt(major * major + minor * minor) / r_eff
    fine = np.exp(-b * (radius ** (1.0 / n) - 1.0))
    fine[radius > _SERSIC_RADII] = 0.0
    stamp = fine.reshape(y1 - y0, _OVERSAMPLE, x1 - x0, _OVERSAMPLE).mean(axis=(1, 3))
    image[y0:y1, x0:x1] += stamp * (galaxy.flux / unit_flux)
