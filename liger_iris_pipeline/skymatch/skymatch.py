"""Sky matching of overlapping frames with ``stcal.skymatch``, without stpipe.

stcal computes the sky of each frame (``local``, ``global``) or the sky differences in the
overlaps of the frames (``match``, ``global+match``: matched down to the lowest sky); the frames
of one exposure form one `~stcal.skymatch.SkyGroup` and get one value. stcal never subtracts
here (the arrays it reads may be read-only memory maps of an on-disk library): the caller
subtracts the values it returns, or records them only.

The statistics can run on frames block-averaged over ``binning x binning`` pixels (`bin_frame`):
a sky level needs no resolution, and stcal rasterises every overlap polygon onto a whole frame for
each pair of frames, so the cost of matching N frames (N * (N - 1) overlaps) falls by
``binning**2``. The binned frame keeps the WCS through the block centres.
"""

import logging

import numpy as np

from .. import dqflags

__all__ = ["SkyFrame", "bin_frame", "good_sky_pixels", "match_sky"]

log = logging.getLogger(__name__)


def good_sky_pixels(data, dq, bad_flags="DO_NOT_USE"):
    """Return the mask of pixels usable for sky statistics: finite and without any of ``bad_flags``.

    Parameters
    ----------
    data : numpy.ndarray
        The frame.
    dq : numpy.ndarray or None
        Its DQ flags.
    bad_flags : str or int
        DQ flag names (``"DO_NOT_USE, SATURATED"``) or bits of the pixels to ignore.

    Returns
    -------
    numpy.ndarray
        bool, True where the pixel is used.
    """
    good = np.isfinite(data)
    if dq is not None:
        bits = bad_flags if isinstance(bad_flags, int) else dqflags.names_to_flags(bad_flags)
        good &= (dq & bits) == 0
    return good


def bin_frame(data, mask, binning):
    """Return the mean of the good pixels of each ``binning x binning`` block, and the blocks' mask.

    Parameters
    ----------
    data : numpy.ndarray
        The frame (pixels beyond a whole number of blocks at the top and right are left out).
    mask : numpy.ndarray
        `good_sky_pixels`.
    binning : int
        Block side (pixels); 1 returns the inputs.

    Returns
    -------
    tuple of numpy.ndarray
        float32 block means and the bool mask of the blocks with at least half their pixels good.
    """
    if binning == 1:
        return data, mask
    ny, nx = (size // binning * binning for size in data.shape)
    shape = (ny // binning, binning, nx // binning, binning)
    good = np.asarray(mask[:ny, :nx]).reshape(shape)
    total = np.where(good, np.asarray(data[:ny, :nx]).reshape(shape), 0.0).sum(axis=(1, 3), dtype=np.float64)
    count = good.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (total / count).astype(np.float32)
    return means, count >= binning * binning / 2


class SkyFrame:
    """What stcal needs of one frame: its data, the good-pixel mask, its WCS and its group.

    Parameters
    ----------
    data : numpy.ndarray
        The frame's science array (a read-only memory map is fine).
    mask : numpy.ndarray
        `good_sky_pixels`.
    wcs : gwcs.WCS
        detector -> world, with an inverse.
    name : str
        For the log.
    group_id : str
        Frames with the same id get one sky value.
    binning : int
        ``data`` and ``mask`` are blocks of ``binning x binning`` pixels of the frame (`bin_frame`);
        ``wcs`` is the frame's.
    """

    def __init__(self, data, mask, wcs, name, group_id, binning=1):
        self.data = data
        self.mask = mask
        self.wcs = wcs
        self.name = name
        self.group_id = group_id
        self.binning = binning

    def world(self, x, y, **kwargs):
        """Block (x, y) -> world (through the centre of the block's pixels)."""
        offset = (self.binning - 1) / 2.0
        return self.wcs(np.asarray(x) * self.binning + offset, np.asarray(y) * self.binning + offset, **kwargs)

    def pixel(self, ra, dec, **kwargs):
        """World -> block (x, y)."""
        x, y = self.wcs.invert(ra, dec, **kwargs)
        offset = (self.binning - 1) / 2.0
        return (np.asarray(x) - offset) / self.binning, (np.asarray(y) - offset) / self.binning


def match_sky(frames, skymethod="match", match_down=True, skystat="median", lower=None, upper=None, nclip=5,
              lsigma=4.0, usigma=4.0, binwidth=0.1, stepsize=None):  # fmt: skip
    """Compute the sky of each frame.

    Parameters
    ----------
    frames : list of SkyFrame
        The frames.
    skymethod : {'local', 'global', 'match', 'global+match'}
        stcal's method.
    match_down : bool
        Match the skies down to the lowest (else up to the highest).
    skystat : {'median', 'mode', 'mean', 'midpt'}
        Statistic of the sky pixels (stcal's `~stcal.skymatch.SkyStats`).
    lower, upper : float, optional
        Pixel values ignored below / above.
    nclip, lsigma, usigma : int, float
        Sigma clipping of the statistic.
    binwidth : float
        Bin width of the ``mode`` and ``midpt`` histograms (science units).
    stepsize : int, optional
        Spacing of the vertices of a frame's bounding polygon (None: its corners), in the
        frames' (binned) pixels.

    Returns
    -------
    list of float or None
        Per frame, the sky (``local``/``global``) or the sky above the matched level (``match``),
        or None when it could not be computed (no overlap, no good pixels).
    """
    from stcal.skymatch import SkyGroup, SkyImage, SkyStats, skymatch

    statistic = SkyStats(skystat=skystat, lower=lower, upper=upper, nclip=nclip, lsig=lsigma, usig=usigma,
                         binwidth=binwidth)  # fmt: skip
    images = []
    groups = {}
    for index, frame in enumerate(frames):
        image = SkyImage(
            image=frame.data,
            mask=frame.mask,
            wcs_fwd=frame.world,
            wcs_inv=frame.pixel,
            skystat=statistic,
            sky_id=frame.name,
            stepsize=stepsize,
            meta={"index": index},
        )
        groups.setdefault(frame.group_id, []).append(image)
    for group_id, members in groups.items():
        images.append(members[0] if len(members) == 1 else SkyGroup(members, sky_id=group_id))
    skymatch(images, skymethod=skymethod, match_down=match_down, subtract=False)

    skies = [None] * len(frames)
    for item in images:
        for image in item if isinstance(item, SkyGroup) else [item]:
            skies[image.meta["index"]] = float(image.sky) if image.is_sky_valid else None
    return skies
