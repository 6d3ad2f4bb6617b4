"""Imager filters, sky background and diffraction-limited PSF width (IRIS and Liger).

Units: wavelengths in micron, angles in arcsec, rates in DN/s per pixel at the nominal
gain `NOMINAL_GAIN` (e-/DN).

The sky is a piecewise-constant surface brightness in Vega magnitudes per square
arcsecond (`SKY_BANDS`, typical Maunakea values for the OH airglow and the
thermal continuum). A filter's sky rate is the photon flux of that surface brightness
integrated over the filter's (top-hat) passband, so narrow and line filters get the sky
of their broad band scaled by their bandwidth, and filters that straddle several bands
(YJ, HK) add up the pieces.
"""

import math

from .instruments import instrument_model

PLATE_SCALE = instrument_model("iris").plate_scale
"""IRIS imager plate scale (arcsec/pixel), the default of the functions here."""

THROUGHPUT = 0.3
"""Total throughput (atmosphere, telescope, AO system, instrument, detector QE)."""

NOMINAL_GAIN = 1.0
"""Nominal detector gain (e-/DN) used to express photon rates in DN/s."""

_PLANCK = 6.62607015e-34  # J s
_JANSKY = 1.0e-26  # W m^-2 Hz^-1

FILTERS = {
    # Broad-band filters (IRIS design centres); the Z and Y windows are narrower than 20 %.
    "Zbb": (0.9037, 0.120),
    "Ybb": (1.042, 0.140),
    "Jbb": (1.262, 0.250),
    "Hbb": (1.637, 0.330),
    "Kbb": (2.1935, 0.420),
    # Broad filters (MKO-like).
    "Z": (0.882, 0.093),
    "Y": (1.031, 0.102),
    "J": (1.248, 0.160),
    "H": (1.633, 0.290),
    "Ks": (2.145, 0.320),
    "K": (2.200, 0.340),
    # Line filters: "w" marks the wider (~2 %) version, the others are ~1 % wide.
    "CaIIw": (0.858, 0.020),
    "PaBetaw": (1.282, 0.025),
    "FeIIw": (1.644, 0.030),
    "Br_Gammaw": (2.166, 0.040),
    "COw": (2.300, 0.045),
    "HeI": (1.083, 0.011),
    "Jcont": (1.214, 0.012),
    "PaBeta": (1.282, 0.013),
    "Hcont": (1.570, 0.016),
    "FeII": (1.644, 0.016),
    "H2one": (2.122, 0.021),
    "Kcont": (2.270, 0.023),
    "Br_Gamma": (2.166, 0.022),
    "H2two": (2.248, 0.022),
    "CO": (2.2935, 0.023),
    # Order-sorting filters of the spectrograph, usable in the imager.
    "YJ": (1.160, 0.380),
    "HK": (1.945, 0.910),
}
"""Filter name -> (centre wavelength, full width) in micron, top-hat passbands."""


def _add_narrow_band_filters():
    """Split each broad-band filter into contiguous narrow-band filters (ZN1..KN5, KN45)."""
    for band, count in (("Z", 4), ("Y", 4), ("J", 4), ("H", 5), ("K", 5)):
        centre, width = FILTERS[f"{band}bb"]
        step = width / count
        for index in range(count):
            FILTERS[f"{band}N{index + 1}"] = (centre - width / 2 + (index + 0.5) * step, step)
    # KN45 covers KN4 and KN5 together.
    centre, width = FILTERS["Kbb"]
    FILTERS["KN45"] = (centre + width / 2 - 2 * width / 5 / 2, 2 * width / 5)


_add_narrow_band_filters()

SKY_BANDS = (
    # (upper wavelength edge in micron, band, Vega zero point in Jy, sky mag/arcsec^2)
    (0.93, "Z", 2232.0, 18.5),
    (1.11, "Y", 2026.0, 17.8),
    (1.42, "J", 1560.0, 16.5),
    (1.85, "H", 1040.0, 14.0),
    (2.30, "K", 645.0, 13.5),
    # Beyond 2.3 micron the thermal emission of the atmosphere and of the warm telescope
    # and AO optics rises steeply; this is what makes the K-band sky brighter than H.
    (math.inf, "K", 645.0, 12.0),
)
"""Piecewise sky surface brightness on Maunakea, by wavelength."""


def filter_names():
    """Return the names of the simulated filters (the schema's FILTER enum minus DARK and N/A)."""
    return list(FILTERS)


def _check_filter(name):
    if name not in FILTERS:
        raise ValueError(f"unknown filter {name!r}; known filters: {', '.join(FILTERS)}")
    return FILTERS[name]


def sky_rate(filter_name, plate_scale=PLATE_SCALE, instrument="iris"):
    """Return the sky background of a filter.

    Parameters
    ----------
    filter_name : str
        One of `FILTERS`.
    plate_scale : float
        Pixel size (arcsec).
    instrument : str
        ``iris`` or ``liger``: the telescope's collecting area.

    Returns
    -------
    float
        Sky count rate per pixel (DN/s) at the nominal gain.
    """
    centre, width = _check_filter(filter_name)
    low, high = centre - width / 2, centre + width / 2
    photons = 0.0  # photons s^-1 m^-2 arcsec^-2
    lower_edge = 0.0
    for upper_edge, _band, zero_point, mag in SKY_BANDS:
        a, b = max(low, lower_edge), min(high, upper_edge)
        if b > a:
            # Photon flux of a flat F_nu spectrum: integral of F_nu / (h lambda) d lambda.
            photons += zero_point * _JANSKY / _PLANCK * math.log(b / a) * 10 ** (-0.4 * mag)
        lower_edge = upper_edge
    electrons = photons * instrument_model(instrument).collecting_area * THROUGHPUT * plate_scale**2
    return electrons / NOMINAL_GAIN


AB_ZERO_POINT = 3631.0
"""Flux density of AB magnitude 0 (Jy)."""

_VEGA_CENTRES = (("Z", 0.88), ("Y", 1.03), ("J", 1.25), ("H", 1.63), ("K", 2.19))
"""Centre wavelengths (micron) of the bands whose Vega zero points `SKY_BANDS` holds."""


def dn_per_jy(filter_name, instrument="iris"):
    """Return the rate of a source of 1 Jy, flat in F_nu over the filter's top-hat passband.

    The same photon model as `sky_rate`: photons ``F_nu 1e-26 / h * ln(lambda_hi / lambda_lo)``
    per s and m^2, times the telescope's collecting area and `THROUGHPUT`, over `NOMINAL_GAIN`.

    Parameters
    ----------
    filter_name : str
        One of `FILTERS`.
    instrument : str
        ``iris`` or ``liger``: the telescope's collecting area.

    Returns
    -------
    float
        DN/s (total, all pixels) per Jy.
    """
    centre, width = _check_filter(filter_name)
    photons = _JANSKY / _PLANCK * math.log((centre + width / 2) / (centre - width / 2))
    return photons * instrument_model(instrument).collecting_area * THROUGHPUT / NOMINAL_GAIN


def abmag(flux_jy):
    """Return the AB magnitude ``-2.5 log10(F / 3631 Jy)`` of flux densities (Jy); NaN where F <= 0."""
    import numpy as np

    flux = np.asarray(flux_jy, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, -2.5 * np.log10(np.where(flux > 0, flux, 1.0) / AB_ZERO_POINT), np.nan)


def vega_zero_point(filter_name):
    """Return the flux density (Jy) of a Vega-magnitude 0 star (an A0V spectrum) at a filter's centre.

    A smooth spectrum: the Z, Y, J, H, K zero points of `SKY_BANDS` interpolated linearly in
    ``log(F_nu)`` against ``log(lambda)`` (and extrapolated as a power law beyond them).
    """
    centre, _width = _check_filter(filter_name)
    zero_points = {band: zero_point for _edge, band, zero_point, _mag in SKY_BANDS}
    points = [(math.log(wavelength), math.log(zero_points[band])) for band, wavelength in _VEGA_CENTRES]
    x = math.log(centre)
    index = min(max(sum(1 for px, _ in points if px <= x) - 1, 0), len(points) - 2)
    (x0, y0), (x1, y1) = points[index], points[index + 1]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def psf_fwhm(filter_name, instrument="iris"):
    """Return the diffraction-limited FWHM (1.03 lambda/D) of the PSF core.

    Parameters
    ----------
    filter_name : str
        One of `FILTERS`; its centre wavelength is used.
    instrument : str
        ``iris`` or ``liger``: the telescope's diameter D.

    Returns
    -------
    float
        FWHM in arcsec.
    """
    centre, _width = _check_filter(filter_name)
    return math.degrees(1.03 * centre * 1e-6 / instrument_model(instrument).telescope_diameter) * 3600.0
