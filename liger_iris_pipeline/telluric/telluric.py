"""Telluric correction from a telluric standard's spectrum, without stpipe (Vacca et al. 2003, PASP 115, 389).

The atmosphere's transmission is the standard star's observed spectrum divided by its intrinsic
spectrum seen at the instrument's resolution. Vacca et al. observe an A0V star and model it with
Vega's spectrum, scaled to the star's magnitude, convolved with a kernel that turns it into the
observed line profiles, and with its hydrogen lines fitted. The model here is the star's continuum
alone: a blackbody of the standard's temperature, as photons per unit wavelength (the unit of
spectra before flux calibration), convolved with the Gaussian line-spread function of FWHM
lambda / R. Its scale is fitted so that the transmission is 1 where the standard is not absorbed
(the magnitude would give the scale in Jy: a flux calibration the IFS does not have yet).

The transmission is read at the science spectrum's wavelengths, optionally shifted by the amount
that leaves the corrected science smoothest (`measure_shift`, as Spextool's xtellcor), and divided
out. Where it is below
``min_transmission`` (the cores of the deep water bands) nothing is divided: the science is NaN and
flagged ``DO_NOT_USE``.
"""

import math

import numpy as np

from ..dqflags import pixel
from ..lib.models import file_label
from ..lib.variance import VARIANCE_ARRAYS

__all__ = [
    "apply_transmission",
    "continuum_scale",
    "measure_shift",
    "resolving_power",
    "stellar_model",
    "transmission",
]

_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


def resolving_power(filter_name):
    """Return the IFS's R for a filter: 4000 for the broad ('bb') filters, 8000 for the narrow ones (ifs_design)."""
    return 4000.0 if str(filter_name).endswith("bb") else 8000.0


def stellar_model(wavelength, temperature, resolution):
    """Return a star's continuum in photons per unit wavelength at a resolution, up to a scale.

    Parameters
    ----------
    wavelength : numpy.ndarray
        Increasing, evenly spaced wavelengths (microns).
    temperature : float
        Blackbody temperature (K).
    resolution : float
        R: the Gaussian line-spread function's FWHM is ``lambda / R`` (taken at the middle wavelength).

    Returns
    -------
    numpy.ndarray
        float64, normalised to a median of 1.
    """
    import astropy.units as u
    from astropy.convolution import Gaussian1DKernel, convolve
    from astropy.modeling.physical_models import BlackBody

    # Photons per unit wavelength are F_nu / (h lambda).
    model = BlackBody(temperature=temperature * u.K)(wavelength * u.um).value / wavelength
    step = (wavelength[-1] - wavelength[0]) / max(len(wavelength) - 1, 1)
    sigma = np.median(wavelength) / resolution / _FWHM_PER_SIGMA / step
    if sigma > 0.1:
        model = convolve(model, Gaussian1DKernel(sigma), boundary="extend", normalize_kernel=True)
    return model / np.median(model)


def continuum_scale(ratio, ratio_error, clip=1.0, max_iterations=50):
    """Return the level of a ratio where nothing absorbs: the median of the points not below it by ``clip`` sigma.

    Parameters
    ----------
    ratio, ratio_error : numpy.ndarray
        Observed / model and its error (NaN: unusable).
    clip : float
        Points more than ``clip`` errors below the current level are absorbed and left out.
    max_iterations : int
        The level only rises; it stops when the points kept no longer change.

    Returns
    -------
    float
    """
    usable = np.isfinite(ratio) & np.isfinite(ratio_error) & (ratio_error > 0)
    kept = usable
    level = np.median(ratio[kept])
    for _ in range(max_iterations):
        new = usable & (ratio > level - clip * ratio_error)
        level = np.median(ratio[new])
        if np.array_equal(new, kept):
            break
        kept = new
    return float(level)


def transmission(standard, temperature, resolution=None):
    """Return the atmosphere's transmission from a telluric standard's spectrum.

    Parameters
    ----------
    standard : numpy.ndarray
        The standard's ``EXTRACT1D`` table (``WAVELENGTH``, ``FLUX``, ``FLUX_ERROR``, ``DQ``).
    temperature : float
        The standard's blackbody temperature (K).
    resolution : float
        R of the spectrum.

    Returns
    -------
    transmission, variance : numpy.ndarray
        float64 on the standard's wavelengths (NaN where its flux is unusable).
    """
    wavelength = np.asarray(standard["WAVELENGTH"], dtype=np.float64)
    flux = np.where(standard["DQ"] & pixel["DO_NOT_USE"], np.nan, standard["FLUX"]).astype(np.float64)
    model = stellar_model(wavelength, temperature, resolution)
    ratio = flux / model
    error = np.asarray(standard["FLUX_ERROR"], dtype=np.float64) / model
    scale = continuum_scale(ratio, error)
    return ratio / scale, (error / scale) ** 2


def measure_shift(science_wavelength, science_flux, wavelength, transmission, max_shift=2.0, min_transmission=0.2):
    """Return the wavelength shift of the transmission that leaves the smoothest corrected science spectrum.

    As Spextool's ``xtellcor`` (Vacca et al. 2003, Cushing et al. 2004): the science is divided by the
    transmission read at its wavelengths plus trial shifts (steps of 0.05 bin up to ``max_shift``
    bins), where the transmission is at least ``min_transmission``; the shift kept is the one whose
    corrected spectrum has the smallest sum of squared second differences (relative to its median),
    refined by a parabola through the minimum.

    Parameters
    ----------
    science_wavelength, science_flux : numpy.ndarray
        The science spectrum.
    wavelength, transmission : numpy.ndarray
        The transmission on the standard's wavelengths.
    max_shift : float
        Largest shift looked for (science bins).
    min_transmission : float
        Deeper bins are left out (the science there is mostly noise).

    Returns
    -------
    float
        Shift (microns) to add to the science wavelengths where the transmission is read; 0 when the
        smoothest spectrum is at the end of the range (no minimum: nothing to line up).
    """
    step = (science_wavelength[-1] - science_wavelength[0]) / max(len(science_wavelength) - 1, 1)
    on_grid = np.interp(science_wavelength, wavelength, transmission, left=np.nan, right=np.nan)
    usable = (on_grid >= min_transmission) & np.isfinite(science_flux)
    if usable.sum() < 10:
        return 0.0
    trials = np.arange(-max_shift, max_shift + 0.025, 0.05)
    roughness = []
    for trial in trials:
        shifted = np.interp(science_wavelength + trial * step, wavelength, transmission, left=np.nan, right=np.nan)
        corrected = np.where(usable, science_flux / shifted, np.nan)
        corrected /= np.nanmedian(corrected)
        roughness.append(np.nansum(np.diff(corrected, 2) ** 2))
    roughness = np.array(roughness)
    best = int(np.argmin(roughness))
    if best in (0, len(trials) - 1):
        return 0.0
    below, low, above = roughness[best - 1 : best + 2]
    offset = 0.5 * (below - above) / (below - 2 * low + above)
    return float((trials[best] + offset * 0.05) * step)


def _check_standard(science_wavelength, standard, standard_model, science_filter):
    """Refuse a standard of another filter or one that does not cover the science's wavelengths."""
    wavelength = standard["WAVELENGTH"]
    filter_name = standard_model.meta.instrument.filter
    problem = None
    if science_filter and filter_name and filter_name != science_filter:
        problem = f"filter {filter_name}, the science's is {science_filter}"
    else:
        half = 0.5 * (wavelength[-1] - wavelength[0]) / max(len(wavelength) - 1, 1)
        if science_wavelength[0] < wavelength[0] - half or science_wavelength[-1] > wavelength[-1] + half:
            problem = (
                f"it covers {wavelength[0]:.4f}-{wavelength[-1]:.4f} um, the science "
                f"{science_wavelength[0]:.4f}-{science_wavelength[-1]:.4f} um"
            )
    if problem:
        raise ValueError(f"{file_label(standard_model)}: the telluric standard does not fit the science: {problem}")


def apply_transmission(model, science_wavelength, standard_model, temperature, resolution=None, **options):
    """Divide a cube or spectrum by the atmosphere's transmission measured on a telluric standard, in place.

    Parameters
    ----------
    model : IRISCubeModel or IRISSpectrumModel
        The science (cube planes or spectrum rows at ``science_wavelength``).
    science_wavelength : numpy.ndarray
        Its wavelengths (microns).
    standard_model : IRISSpectrumModel
        The telluric standard's spectrum.
    temperature : float
        The standard's blackbody temperature (K).
    resolution : float, optional
        R; None: `resolving_power` of the standard's filter.
    **options
        ``min_transmission`` (0.2): below it nothing is divided; ``max_shift`` (2.0 bins; 0: no
        cross-correlation).

    Returns
    -------
    dict
        ``shift`` (microns), ``transmission`` (float64 on the science wavelengths), ``flagged`` (bins).
    """
    min_transmission = options.get("min_transmission", 0.2)
    max_shift = options.get("max_shift", 2.0)
    standard = standard_model.spec_table
    _check_standard(science_wavelength, standard, standard_model, model.meta.instrument.filter)
    if resolution is None:
        resolution = resolving_power(standard_model.meta.instrument.filter)
    throughput, throughput_variance = transmission(standard, temperature, resolution)
    wavelength = np.asarray(standard["WAVELENGTH"], dtype=np.float64)
    from ..datamodels import IRISSpectrumModel

    is_cube = not isinstance(model, IRISSpectrumModel)
    if is_cube:
        collapsed = np.nansum(np.where(model.wmap > 0, model.data, np.nan), axis=(1, 2))
    else:
        collapsed = np.asarray(model.spec_table["FLUX"], dtype=np.float64)
    shift = 0.0
    if max_shift > 0:
        shift = measure_shift(science_wavelength, collapsed, wavelength, throughput, max_shift, min_transmission)
    where = science_wavelength + shift
    t = np.interp(where, wavelength, throughput, left=np.nan, right=np.nan)
    t_variance = np.interp(where, wavelength, throughput_variance, left=np.nan, right=np.nan)
    bad = ~(t >= min_transmission)
    t = np.where(bad, np.nan, t)
    if is_cube:
        _divide_cube(model, t, t_variance, bad)
    else:
        _divide_spectrum(model, t, t_variance, bad)
    return {"shift": shift, "transmission": t, "flagged": int(bad.sum())}


def _divided(flux, variances, t, t_variance):
    """The flux and variances after division by ``t`` (variance ``t_variance``): its own term goes to var_flat."""
    corrected = flux / t
    result = {name: variances[name] / t**2 for name in VARIANCE_ARRAYS}
    result["var_flat"] = result["var_flat"] + corrected**2 * t_variance / t**2
    return corrected, result


def _divide_cube(cube, t, t_variance, bad):
    shape = (-1, 1, 1)
    variances = {name: getattr(cube, name).astype(np.float64) for name in VARIANCE_ARRAYS}
    flux, variances = _divided(cube.data.astype(np.float64), variances, t.reshape(shape), t_variance.reshape(shape))
    cube.data = flux.astype(np.float32)
    for name, values in variances.items():
        setattr(cube, name, values.astype(np.float32))
    cube.err = np.sqrt(sum(variances.values())).astype(np.float32)
    cube.dq[bad] |= pixel["DO_NOT_USE"]


def _divide_spectrum(spectrum, t, t_variance, bad):
    table = spectrum.spec_table.copy()
    variances = {name: table[f"FLUX_{name.upper()}"].astype(np.float64) for name in VARIANCE_ARRAYS}
    flux, variances = _divided(table["FLUX"].astype(np.float64), variances, t, t_variance)
    table["FLUX"] = flux
    for name, values in variances.items():
        table[f"FLUX_{name.upper()}"] = values
    table["FLUX_ERROR"] = np.sqrt(sum(variances.values()))
    table["DQ"][bad] |= pixel["DO_NOT_USE"]
    spectrum.spec_table = table
