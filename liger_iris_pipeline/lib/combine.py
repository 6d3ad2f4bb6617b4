"""Combining frames: a per-pixel sigma-clipped mean with error propagation.

At each pixel, the members whose value is finite and not flagged DO_NOT_USE are sigma-clipped
(values further than ``nsigma`` times their own ERR from the median of the values kept, up to
``maxiters`` iterations; see `liger_iris_pipeline.lib.stats.clipped_stack_mask`) and the values
kept are averaged. Each variance component of the result is the mean of the members'
components divided by the number ``n`` of members used (``sum(var_i) / n**2``: the variance of
a mean of independent frames). Pixels where no member is usable are NaN in the combined
combined frame and flagged DO_NOT_USE (with the OR of the members' flags there).

The sky level of a frame (`sky_level`) is the sigma-clipped median of its good pixels (finite,
no DO_NOT_USE); its variance, per component, is ``(pi / 2) * mean(var) / n`` over the ``n``
pixels kept (the variance of the median of ``n`` Gaussian values).

Optionally each member is first scaled to a reference sky level: ``f_i = sky_sci /
sky_i`` multiplies its data and ``f_i**2`` its variances.

"""

import math
from dataclasses import dataclass

import numpy as np

from ..datamodels import IRISImageModel
from .masks import DO_NOT_USE, good_pixels
from .models import model_name
from .stats import clipped_stack_mask, sigma_clip_mask
from .subarray import SubarrayError, subarray_bounds
from .variance import VARIANCE_ARRAYS, update_err

__all__ = ["SkyLevel", "combine_frames", "sky_level"]


@dataclass
class SkyLevel:
    """The sky level of a frame and the variance components of that estimate.

    Attributes
    ----------
    value : float
        Sky level (data units, DN/s).
    variances : dict
        ``{var_poisson: ..., var_rnoise: ..., var_flat: ...}`` of ``value``.
    count : int
        Pixels the level was computed from.
    """

    value: float
    variances: dict
    count: int

    @property
    def error(self):
        """1-sigma uncertainty of ``value``."""
        return math.sqrt(sum(self.variances.values()))


def sky_level(model, nsigma=3.0, maxiters=5):
    """Return the sigma-clipped median sky level of a frame over its good pixels.

    Parameters
    ----------
    model : IRISImageModel
        The frame.
    nsigma : float
        Clipping threshold in standard deviations.
    maxiters : int
        Maximum number of clipping iterations.

    Returns
    -------
    SkyLevel

    Raises
    ------
    ValueError
        The frame has no good pixel.
    """
    good = good_pixels(model.dq, model.data, *(getattr(model, name) for name in VARIANCE_ARRAYS))
    values = model.data[good].astype(np.float64)
    if values.size == 0:
        raise ValueError(f"{model_name(model)} has no good pixel to measure the sky on")
    kept = sigma_clip_mask(values, nsigma, maxiters)
    count = int(np.count_nonzero(kept))
    variances = {
        name: math.pi / 2.0 * float(np.mean(getattr(model, name)[good][kept], dtype=np.float64)) / count
        for name in VARIANCE_ARRAYS
    }
    return SkyLevel(float(np.median(values[kept])), variances, count)


def combine_frames(members, nsigma=3.0, maxiters=5, scale_to=None):
    """Combine frames into one by a per-pixel sigma-clipped mean.

    Parameters
    ----------
    members : list of IRISImageModel
        Frames of the same shape and detector region (not modified).
    nsigma : float
        Clipping threshold in units of each member's error at a pixel.
    maxiters : int
        Maximum number of clipping iterations.
    scale_to : float, optional
        Sky level to scale every member to (by its own `sky_level`) before combining.

    Returns
    -------
    combined : IRISImageModel
        The combined frame, with the first member's metadata.
    used : numpy.ndarray
        int (ny, nx): number of members averaged at each pixel.

    Raises
    ------
    ValueError
        No member, members that differ in shape or region, or a member whose sky level is not
        positive when scaling.
    """
    if not members:
        raise ValueError("no frame to combine")
    first = members[0]
    for member in members[1:]:
        if member.data.shape != first.data.shape or subarray_bounds(member) != subarray_bounds(first):
            raise SubarrayError(
                f"frames to combine differ: {model_name(member)} is {subarray_bounds(member)}, "
                f"{model_name(first)} is {subarray_bounds(first)} (xstart, ystart, xsize, ysize)"
            )
    factors = np.ones(len(members))
    if scale_to is not None:
        for index, member in enumerate(members):
            level = sky_level(member, nsigma, maxiters).value
            if not level > 0:
                raise ValueError(f"cannot scale {model_name(member)} to the science sky: its sky level is {level}")
            factors[index] = scale_to / level

    stack = np.stack([member.data * np.float32(factor) for member, factor in zip(members, factors, strict=True)])
    errors = np.stack([member.err * np.float32(factor) for member, factor in zip(members, factors, strict=True)])
    valid = np.stack(
        [good_pixels(m.dq, m.data, m.err, *(getattr(m, name) for name in VARIANCE_ARRAYS)) for m in members]
    )
    used = clipped_stack_mask(stack, errors, valid, nsigma, maxiters)
    count = used.sum(axis=0)
    none = count == 0
    with np.errstate(invalid="ignore", divide="ignore"):
        combined = IRISImageModel((np.where(used, stack, 0.0).sum(axis=0, dtype=np.float64) / count).astype(np.float32))
        for name in VARIANCE_ARRAYS:
            total = np.zeros(first.data.shape)
            for index, member in enumerate(members):
                total += np.where(used[index], getattr(member, name) * factors[index] ** 2, 0.0)
            setattr(combined, name, (total / np.square(count)).astype(np.float32))
    combined.update(first)
    for member in members:
        combined.dq[none] |= member.dq[none]
    combined.dq[none] |= DO_NOT_USE
    update_err(combined)
    return combined, count
