"""Scaling of a sky frame's OH lines per vibrational band to the science frame (Davies 2007), without stpipe.

The OH lines of one vibrational band (``"v'-v''"``) come from one upper level and vary together;
different bands vary independently, by a few to 10-20 % in minutes (Davies 2007, MNRAS 375,
1099). A sky frame taken minutes before or after the science frame therefore leaves residuals at
the bright lines that no single factor removes. After the sky frame is subtracted, each band's
residual is fitted with one factor:

1. Every slice pixel gets the wavelength of its centre (the frame's slicer WCS) and the band of the
   nearest OH line (`oh_lines`) if it lies within ``window`` pixels of it along the dispersion;
   the other slice pixels are continuum pixels.
2. Each frame's continuum is removed per detector column of each slice: the median of its
   continuum pixels. In the sky frame this leaves the OH lines ``T``; in the sky-subtracted science
   frame ``R`` it removes the source's continuum (which would otherwise bias the factor).
3. Per band, ``b = (sum(w R T) + sum(w V)) / (sum(w T**2) - sum(w V))`` over the band's good
   pixels, ``w = 1 / var(R)``, ``V`` the sky frame's variance (the least-squares slope, corrected for
   the sky's noise, which is in both ``T`` and ``R``), iterated with pixels further than ``nsigma``
   errors from ``b T`` rejected: the source's own emission lines are clipped. The band's factor
   (science over sky) is ``1 + b``.
4. ``b T`` is subtracted at the band's pixels and each variance component of the sky frame,
   times ``(1 + b)**2 - 1``, is added to the science frame's there (the sky's lines now enter
   with the factor ``1 + b``).
"""

from dataclasses import dataclass

import numpy as np

from ..assign_wcs.slicer import slice_boxes, slicer_transforms
from ..lib.masks import good_pixels
from ..lib.variance import VARIANCE_ARRAYS, update_err
from .oh_lines import oh_lines

__all__ = ["BandScale", "oh_band_map", "pixel_wavelengths", "scale_oh_bands"]


@dataclass(frozen=True)
class BandScale:
    """The fitted factor of one vibrational band.

    Attributes
    ----------
    band : str
        ``"v'-v''"``.
    scale : float
        The band's lines in the science frame over those in the sky frame.
    error : float
        Its standard error (from the variances of the pixels used).
    n_pixels : int
        Pixels used in the fit (after clipping).
    """

    band: str
    scale: float
    error: float
    n_pixels: int


def pixel_wavelengths(wcs, shape):
    """Return the slice label map and the wavelength of every pixel centre (NaN off the slices).

    Parameters
    ----------
    wcs : gwcs.WCS
        The frame's slicer WCS (``assign_wcs``).
    shape : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    labels : numpy.ndarray
        int32 ``shape``: slice + 1, 0 off the slices.
    wavelength : numpy.ndarray
        float64 ``shape`` (microns).
    """
    labels, transforms = slicer_transforms(wcs)
    wavelength = np.full(shape, np.nan)
    for label, box in slice_boxes(labels):
        y, x = np.nonzero(labels[box] == label)
        _, _, values = transforms[label](x + box[1].start, y + box[0].start)
        wavelength[y + box[0].start, x + box[1].start] = values
    return labels, wavelength


def oh_band_map(labels, wavelength, window):
    """Return the OH band of every pixel: its index in ``bands``, -1 for continuum pixels, -2 off the slices.

    Parameters
    ----------
    labels, wavelength : numpy.ndarray
        `pixel_wavelengths`.
    window : float
        Half width, in pixels along the dispersion, of a line's pixels.

    Returns
    -------
    band_index : numpy.ndarray
        int16, the shape of ``labels``.
    bands : list of str
        The bands of the lines reaching the frame.
    """
    band_index = np.where(labels > 0, -1, -2).astype(np.int16)
    line_wavelength, line_band = oh_lines(np.nanmin(wavelength), np.nanmax(wavelength))
    bands = sorted(set(line_band))
    if not bands:
        return band_index, bands
    line_band_index = np.array([bands.index(band) for band in line_band], dtype=np.int16)
    for label, box in slice_boxes(labels):
        inside = labels[box] == label
        slice_wavelength = wavelength[box]
        # The slice's dispersion: the median step between rows (the wavelength runs along the rows).
        steps = np.abs(np.diff(slice_wavelength, axis=0))[inside[1:] & inside[:-1]]
        if steps.size == 0:
            continue
        values = slice_wavelength[inside]
        after = np.minimum(np.searchsorted(line_wavelength, values), line_wavelength.size - 1)
        before = np.maximum(after - 1, 0)
        closer_before = np.abs(values - line_wavelength[before]) <= np.abs(values - line_wavelength[after])
        nearest = np.where(closer_before, before, after)
        near_line = np.abs(values - line_wavelength[nearest]) <= window * np.median(steps)
        band_index[box][inside] = np.where(near_line, line_band_index[nearest], -1)
    return band_index, bands


def _column_continuum(data, labels, band_index, good):
    """Return the median of the continuum pixels of each column of each slice, at every slice pixel (NaN if none)."""
    continuum = np.full(labels.shape, np.nan)
    for label, box in slice_boxes(labels):
        inside = labels[box] == label
        use = inside & (band_index[box] == -1) & good[box]
        columns = use.any(axis=0)
        column_median = np.full(use.shape[1], np.nan)
        column_median[columns] = np.nanmedian(np.where(use, data[box], np.nan)[:, columns], axis=0)
        continuum[box] = np.where(inside, column_median[None, :], continuum[box])
    return continuum


def _band_factor(residual, template, weight, sky_variance):
    """Return ``b`` of ``residual = b * template`` by weighted least squares, without the bias of the sky's noise.

    The sky frame's noise ``n`` is in the template (``+n``) and, subtracted, in the residual
    (``-n``): ``E[R T] = b T_true**2 - var(n)`` and ``E[T**2] = T_true**2 + var(n)``, so the plain
    estimate ``sum(w R T) / sum(w T**2)`` is pulled towards ``-var / T**2``; both sums are corrected.
    """
    correction = np.sum(weight * sky_variance)
    return (np.sum(weight * residual * template) + correction) / (np.sum(weight * template**2) - correction)


def scale_oh_bands(model, sky, window=2.5, nsigma=3.0, maxiters=5):
    """Fit and subtract the residual of each OH band of a sky-subtracted frame, in place.

    Parameters
    ----------
    model : IRISIFSImageModel
        The science frame after the sky frame's subtraction, with its slicer WCS; changed in place
        (SCI, variances, ERR).
    sky : IRISIFSImageModel
        The sky frame that was subtracted (the combined background members), same shape.
    window : float
        Half width of a line's pixels along the dispersion (pixels).
    nsigma : float
        Clipping threshold (errors of the science frame).
    maxiters : int
        Maximum clipping iterations.

    Returns
    -------
    list of BandScale
        One per band with lines on the frame; bands without usable pixels are left out.
    """
    labels, wavelength = pixel_wavelengths(model.meta.wcs, model.data.shape)
    band_index, bands = oh_band_map(labels, wavelength, window)
    science_variance = sum(getattr(model, name).astype(np.float64) for name in VARIANCE_ARRAYS)
    good_science = good_pixels(model.dq, model.data) & (science_variance > 0)
    good_sky = good_pixels(sky.dq, sky.data)
    sky_variance = sum(getattr(sky, name).astype(np.float64) for name in VARIANCE_ARRAYS)
    template = sky.data - _column_continuum(sky.data, labels, band_index, good_sky)
    residual = model.data - _column_continuum(model.data, labels, band_index, good_science)
    results = []
    for index, band in enumerate(bands):
        in_band = band_index == index
        use = in_band & good_science & good_sky & np.isfinite(template) & np.isfinite(residual)
        if not use.any():
            continue
        r, t, w, v = residual[use], template[use], 1.0 / science_variance[use], sky_variance[use]
        kept = np.ones(r.size, dtype=bool)
        for _ in range(maxiters):
            b = _band_factor(r[kept], t[kept], w[kept], v[kept])
            clipped = np.abs(r - b * t) * np.sqrt(w) <= nsigma
            if np.array_equal(clipped, kept):
                break
            kept = clipped
        b = _band_factor(r[kept], t[kept], w[kept], v[kept])
        correct = in_band & np.isfinite(template)
        model.data[correct] -= (b * template[correct]).astype(model.data.dtype)
        for name in VARIANCE_ARRAYS:
            getattr(model, name)[correct] += (((1.0 + b) ** 2 - 1.0) * getattr(sky, name)[correct]).astype(np.float32)
        results.append(
            BandScale(band, 1.0 + float(b), float(np.sqrt(1.0 / np.sum(w[kept] * t[kept] ** 2))), int(kept.sum()))
        )
    update_err(model)
    return results
