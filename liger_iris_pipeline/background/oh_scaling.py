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
3. Per band, ``b = sum(w R T) / sum(w T**2)`` over the band's good pixels, ``w = 1 / var(R)``,
   iterated with pixels further than ``nsigma`` errors from ``b T`` rejected: the source's own
   emission lines are clipped. The band's factor (science over sky) is ``1 + b``.
4. ``b T`` is subtracted at the band's pixels and each variance component of the sky frame,
   times ``(1 + b)**2 - 1``, is added to the science frame's there (the sky's lines now enter
   with the factor ``1 + b``).
"""

from dataclasses import dataclass

import numpy as np

from ..assign_wcs.slicer import slicer_transforms
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
    from scipy import ndimage

    labels, transforms = slicer_transforms(wcs)
    wavelength = np.full(shape, np.nan)
    for index, box in enumerate(ndimage.find_objects(labels)):
        if box is None:
            continue
        y, x = np.nonzero(labels[box] == index + 1)
        _, _, values = transforms[index + 1](x + box[1].start, y + box[0].start)
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
    on_slice = labels > 0
    band_index = np.full(labels.shape, -2, dtype=np.int16)
    band_index[on_slice] = -1
    line_wavelength, line_band = oh_lines(np.nanmin(wavelength), np.nanmax(wavelength))
    if line_wavelength.size == 0:
        return band_index, []
    bands = sorted(set(line_band))
    line_band_index = np.array([bands.index(band) for band in line_band])
    # Dispersion per slice: the median step between rows (the wavelength runs along the rows).
    step = np.abs(np.diff(wavelength, axis=0))
    same_slice = labels[1:] == labels[:-1]
    dispersion = np.zeros(labels.max() + 1)
    for label in range(1, labels.max() + 1):
        steps = step[same_slice & (labels[1:] == label)]
        dispersion[label] = np.median(steps) if steps.size else np.nan
    values = wavelength[on_slice]
    after = np.minimum(np.searchsorted(line_wavelength, values), line_wavelength.size - 1)
    before = np.maximum(after - 1, 0)
    nearest = np.where(
        np.abs(values - line_wavelength[before]) <= np.abs(values - line_wavelength[after]), before, after
    )
    near_line = np.abs(values - line_wavelength[nearest]) <= window * dispersion[labels[on_slice]]
    band_index[on_slice] = np.where(near_line, line_band_index[nearest], -1)
    return band_index, bands


def _column_continuum(data, labels, band_index, good):
    """Return the median of the continuum pixels of each column of each slice, at every slice pixel (NaN if none)."""
    on_slice = labels > 0
    columns = np.broadcast_to(np.arange(labels.shape[1]), labels.shape)
    groups = (labels.astype(np.int64) * labels.shape[1] + columns)[on_slice]
    use = ((band_index == -1) & good)[on_slice]
    values = data[on_slice][use].astype(np.float64)
    used_groups = groups[use]
    continuum = np.full(labels.shape, np.nan)
    if values.size == 0:
        return continuum
    order = np.lexsort((values, used_groups))
    values, used_groups = values[order], used_groups[order]
    unique, first, counts = np.unique(used_groups, return_index=True, return_counts=True)
    medians = (values[first + (counts - 1) // 2] + values[first + counts // 2]) / 2.0
    position = np.minimum(np.searchsorted(unique, groups), unique.size - 1)
    continuum[on_slice] = np.where(unique[position] == groups, medians[position], np.nan)
    return continuum


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
    template = sky.data - _column_continuum(sky.data, labels, band_index, good_sky)
    residual = model.data - _column_continuum(model.data, labels, band_index, good_science)
    results = []
    for index, band in enumerate(bands):
        in_band = band_index == index
        use = in_band & good_science & good_sky & np.isfinite(template) & np.isfinite(residual)
        if not use.any():
            continue
        r, t, w = residual[use], template[use], 1.0 / science_variance[use]
        kept = np.ones(r.size, dtype=bool)
        for _ in range(maxiters):
            b = np.sum(w[kept] * r[kept] * t[kept]) / np.sum(w[kept] * t[kept] ** 2)
            clipped = np.abs(r - b * t) * np.sqrt(w) <= nsigma
            if np.array_equal(clipped, kept):
                break
            kept = clipped
        b = np.sum(w[kept] * r[kept] * t[kept]) / np.sum(w[kept] * t[kept] ** 2)
        correct = in_band & np.isfinite(template)
        model.data[correct] -= (b * template[correct]).astype(model.data.dtype)
        for name in VARIANCE_ARRAYS:
            getattr(model, name)[correct] += (((1.0 + b) ** 2 - 1.0) * getattr(sky, name)[correct]).astype(np.float32)
        results.append(
            BandScale(band, 1.0 + float(b), float(np.sqrt(1.0 / np.sum(w[kept] * t[kept] ** 2))), int(kept.sum()))
        )
    update_err(model)
    return results
