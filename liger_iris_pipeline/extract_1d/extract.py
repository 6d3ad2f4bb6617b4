"""Point-source spectra from IFS cubes: photutils apertures in every wavelength plane, without stpipe.

The aperture's weights on the spaxels (`photutils.aperture.CircularAperture`, exact overlap) are
computed once and applied to all planes at once; a local background per plane is the weighted
mean of an annulus (`photutils.aperture.CircularAnnulus`) around the source, subtracted times the
aperture's area. Voxels without data (NaN, ``WMAP = 0``) are left out of both sums; ``NPIXELS``
is the aperture area actually summed (spaxels), so a plane that lost voxels shows it. The
variances follow each sum with the weights squared.
"""

import math

import numpy as np

from ..lib.models import file_label
from ..lib.variance import VARIANCE_ARRAYS

__all__ = ["SPECTRUM_DTYPE", "cube_wavelengths", "extract_point_source", "source_position"]

SPECTRUM_DTYPE = np.dtype(
    [
        ("WAVELENGTH", "f8"),
        ("FLUX", "f8"),
        ("FLUX_ERROR", "f8"),
        ("FLUX_VAR_POISSON", "f8"),
        ("FLUX_VAR_RNOISE", "f8"),
        ("FLUX_VAR_FLAT", "f8"),
        ("DQ", "u4"),
        ("NPIXELS", "f8"),
    ]
)
"""Columns of ``EXTRACT1D`` (``iris_spectrum.schema.yaml``)."""


def cube_wavelengths(cube):
    """Return the wavelength of every plane of a cube, checking its spectral WCS.

    The FITS keywords (``CTYPE3 = 'WAVE'``, ``CUNIT3 = 'um'``, linear ``CRVAL3``, ``CDELT3``,
    ``CRPIX3``) and the gwcs must describe the same increasing wavelengths.

    Parameters
    ----------
    cube : IRISCubeModel
        The cube.

    Returns
    -------
    numpy.ndarray
        float64 (nwave,) microns.

    Raises
    ------
    ValueError
        One line naming the cube and what is wrong with its spectral axis.
    """
    info = cube.meta.wcsinfo
    nwave = cube.data.shape[0]
    problem = None
    values = {key: getattr(info, key, None) for key in ("crval3", "cdelt3", "crpix3")}
    if info.ctype3 != "WAVE" or info.cunit3 != "um":
        problem = f"CTYPE3 = {info.ctype3!r}, CUNIT3 = {info.cunit3!r} (expected 'WAVE' in 'um')"
    elif not all(isinstance(value, (int, float)) and math.isfinite(value) for value in values.values()):
        problem = f"CRVAL3, CDELT3, CRPIX3 = {values['crval3']}, {values['cdelt3']}, {values['crpix3']}"
    elif not (values["cdelt3"] > 0 and values["crval3"] > 0):
        problem = f"CRVAL3 = {values['crval3']}, CDELT3 = {values['cdelt3']} (both must be positive)"
    elif cube.meta.wcs is None:
        problem = "no gwcs (meta.wcs)"
    if problem is None:
        planes = np.arange(nwave, dtype=np.float64)
        keywords = values["crval3"] + values["cdelt3"] * (planes + 1.0 - values["crpix3"])
        wavelengths = np.asarray(cube.meta.wcs(np.zeros(nwave), np.zeros(nwave), planes)[2], dtype=np.float64)
        difference = np.max(np.abs(wavelengths - keywords)) / values["cdelt3"] if nwave else 0.0
        if not difference < 1e-3:
            problem = f"the gwcs and the FITS keywords differ by {difference:.3g} planes"
        else:
            return wavelengths
    raise ValueError(f"{file_label(cube)}: the cube's spectral WCS is broken: {problem}")


def source_position(cube, ra=None, dec=None, box_size=5):
    """Return the source's ``(x, y)`` spaxel position in a cube.

    Parameters
    ----------
    cube : IRISCubeModel
        The cube.
    ra, dec : float, optional
        The source (deg); None: the centroid (photutils' centre of mass in a box) around the
        brightest spaxel of the cube summed over wavelength.
    box_size : int
        Side of the centroid box (spaxels).

    Returns
    -------
    tuple of float
    """
    if ra is not None and dec is not None:
        x, y, _ = cube.meta.wcs.invert(ra, dec, cube.meta.wcsinfo.crval3)
        return float(x), float(y)
    from photutils.centroids import centroid_com, centroid_sources

    image = np.nansum(np.where(cube.wmap > 0, cube.data, np.nan), axis=0)
    image -= np.median(image)
    peak_y, peak_x = np.unravel_index(np.argmax(image), image.shape)
    size = min(box_size, *image.shape)
    size -= 1 - size % 2  # photutils wants an odd box
    x, y = centroid_sources(image, peak_x, peak_y, box_size=size, centroid_func=centroid_com)
    return float(x[0]), float(y[0])


def _sums(weights, data, variances, usable):
    """Weighted sums over the spaxels of every plane: value, variances, weight summed."""
    w = np.where(usable, weights[None], 0.0)
    total = np.einsum("kyx,kyx->k", w, np.where(usable, data, 0.0))
    summed = {name: np.einsum("kyx,kyx->k", w * w, np.where(usable, values, 0.0)) for name, values in variances.items()}
    return total, summed, w.sum(axis=(1, 2))


def extract_point_source(cube, position, radius, annulus=None):
    """Return the spectrum of a point source in a cube.

    Parameters
    ----------
    cube : IRISCubeModel
        The cube (checked by `cube_wavelengths`).
    position : tuple of float
        ``(x, y)`` of the source (spaxels, 0-based).
    radius : float
        Aperture radius (spaxels).
    annulus : tuple of float, optional
        ``(inner, outer)`` radii of the background annulus (spaxels); None: no background.

    Returns
    -------
    numpy.ndarray
        `SPECTRUM_DTYPE`, one row per plane, in the cube's unit (summed over the aperture).
    """
    from photutils.aperture import CircularAnnulus, CircularAperture

    wavelengths = cube_wavelengths(cube)
    shape = cube.data.shape[1:]
    data = cube.data.astype(np.float64)
    variances = {name: getattr(cube, name).astype(np.float64) for name in VARIANCE_ARRAYS}
    usable = np.isfinite(data) & (cube.wmap > 0)
    for values in variances.values():
        usable &= np.isfinite(values)
    weights = CircularAperture(position, r=radius).to_mask(method="exact").to_image(shape)
    flux, flux_variances, area = _sums(weights, data, variances, usable)
    if annulus is not None:
        ring = CircularAnnulus(position, r_in=annulus[0], r_out=annulus[1]).to_mask(method="exact").to_image(shape)
        background, background_variances, ring_area = _sums(ring, data, variances, usable)
        with np.errstate(invalid="ignore", divide="ignore"):
            flux -= area * background / ring_area
            for name in VARIANCE_ARRAYS:
                flux_variances[name] += area**2 * background_variances[name] / ring_area**2
    spectrum = np.zeros(len(wavelengths), dtype=SPECTRUM_DTYPE)
    spectrum["WAVELENGTH"] = wavelengths
    spectrum["FLUX"] = np.where(area > 0, flux, np.nan)
    for name in VARIANCE_ARRAYS:
        spectrum[f"FLUX_{name.upper()}"] = np.where(area > 0, flux_variances[name], np.nan)
    spectrum["FLUX_ERROR"] = np.sqrt(sum(spectrum[f"FLUX_{name.upper()}"] for name in VARIANCE_ARRAYS))
    inside = weights > 0
    spectrum["DQ"] = np.bitwise_or.reduce(cube.dq[:, inside], axis=1) if inside.any() else 0
    spectrum["NPIXELS"] = area
    return spectrum
