"""Combining frames: a per-pixel sigma-clipped mean with error propagation.

At each pixel, the members whose value is finite and not flagged DO_NOT_USE are sigma-clipped
(values further than ``nsigma`` times their own ERR from the median of the values kept, up to
``maxiters`` iterations) and the values kept are averaged. The errors are known, so a single
outlier among a handful of frames is rejected; a standard deviation estimated from those few
values would be inflated by the outlier itself (with four frames no value can lie 3 sample
standard deviations from the median). A pixel whose values would all be rejected keeps the
previous set rather than none. Each variance component of the result is the mean of the members'
components divided by the number ``n`` of members used (``sum(var_i) / n**2``: the variance of
a mean of independent frames). Pixels where no member is usable are NaN in the combined
frame and flagged DO_NOT_USE (with the OR of the members' flags there).

The sky level of a frame (`sky_level`) is the sigma-clipped median of its good pixels (finite,
no DO_NOT_USE); its variance, per component, is ``(pi / 2) * mean(var) / n`` over the ``n``
pixels kept (the variance of the median of ``n`` Gaussian values).

The per-pixel work is one compiled loop (numba): the median of the few values kept is an
insertion sort of at most ``n`` values (none for one or two), and the members are read a block of
rows at a time, so combining costs a pass over the members and no whole-frame temporary; members
given as `FrameFile` (the background step's, from files) are read from their files a block at a
time, so they are never whole in memory.

Optionally each member is first scaled to a reference sky level: ``f_i = sky_sci /
sky_i`` multiplies its data and ``f_i**2`` its variances.

"""

import functools
import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..datamodels.frame_file import FrameFile
from .blocks import row_blocks
from .masks import DO_NOT_USE, good_pixels
from .models import model_name
from .stats import sigma_clip_mask
from .subarray import SubarrayError, subarray_bounds
from .variance import VARIANCE_ARRAYS, update_err

__all__ = ["CombinedRows", "SkyLevel", "combine_frames", "combined_blocks", "empty_combined_frame", "sky_level"]


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
    members : list of IRISImageModel or FrameFile
        Frames of the same shape and detector region (not modified); a `FrameFile` is read a
        block of rows at a time, and its sums verified after the last block.
    nsigma : float
        Clipping threshold in units of each member's error at a pixel.
    maxiters : int
        Maximum number of clipping iterations.
    scale_to : float, optional
        Sky level to scale every member to (by its own `sky_level`) before combining.

    Returns
    -------
    combined : IRISImageModel or IRISIFSImageModel
        The combined frame, of the first member's class, with its metadata.
    used : numpy.ndarray
        uint16 (ny, nx): number of members averaged at each pixel.

    Raises
    ------
    ValueError
        No member, members that differ in shape or region, or a member whose sky level is not
        positive when scaling.
    """
    blocks = combined_blocks(members, nsigma, maxiters, scale_to)
    first_block = next(blocks)  # the members are checked before anything is allocated
    combined, used = empty_combined_frame(members[0])
    for block in itertools.chain([first_block], blocks):
        block.store(combined, used)
    update_err(combined)
    return combined, used


def empty_combined_frame(first):
    """Return the frame and the ``used`` counts that `CombinedRows.store` fills, with ``first``'s metadata.

    Parameters
    ----------
    first : IRISImageModel or FrameFile
        The first member.

    Returns
    -------
    tuple
        ``(frame of first's class, uint16 array)``.
    """
    shape = first.data.shape
    template = first.header_model if isinstance(first, FrameFile) else first
    # The first member's class (an imager or an IFS frame); arrays made here rather than the
    # schema's defaults, which stdatamodels fills value by value.
    combined = type(template)()
    combined.data = np.empty(shape, dtype=np.float32)
    combined.dq = np.zeros(shape, dtype=np.uint32)
    combined.err = np.empty(shape, dtype=np.float32)
    for name in VARIANCE_ARRAYS:
        setattr(combined, name, np.empty(shape, dtype=np.float32))
    combined.update(template)
    return combined, np.empty(shape, dtype=np.uint16)


@dataclass
class CombinedRows:
    """A block of rows of the combined frame (`combined_blocks`).

    Attributes
    ----------
    rows : slice
        The rows of the frame.
    data : numpy.ndarray
        float32 clipped mean (NaN where no member is usable).
    variances : dict
        Variance component name -> float32 array.
    dq : numpy.ndarray
        uint32: 0, or the members' flags and DO_NOT_USE where no member is usable.
    used : numpy.ndarray
        uint16 number of members averaged.
    """

    rows: slice
    data: np.ndarray
    variances: dict
    dq: np.ndarray
    used: np.ndarray

    def store(self, combined, used):
        """Copy the block into a whole frame and its counts (`empty_combined_frame`)."""
        combined.data[self.rows] = self.data
        for name, variance in self.variances.items():
            getattr(combined, name)[self.rows] = variance
        combined.dq[self.rows] = self.dq
        used[self.rows] = self.used


def combined_blocks(members, nsigma=3.0, maxiters=5, scale_to=None):
    """Yield the combination of `combine_frames` a block of rows at a time, as `CombinedRows`.

    A caller that uses each block at once (the background step subtracts it from the science
    frame) never holds a whole combined frame. The members are checked, and scaled when asked,
    before the first block.

    Parameters
    ----------
    members, nsigma, maxiters, scale_to
        As for `combine_frames`.

    Yields
    ------
    CombinedRows

    Raises
    ------
    ValueError
        As `combine_frames`.
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
    factors = np.ones(len(members), dtype=np.float32)
    if scale_to is not None:
        for index, member in enumerate(members):
            if isinstance(member, FrameFile):  # the median of a whole frame needs every pixel at once
                with member.load() as whole:
                    level = sky_level(whole, nsigma, maxiters).value
            else:
                level = sky_level(member, nsigma, maxiters).value
            if not level > 0:
                raise ValueError(f"cannot scale {model_name(member)} to the science sky: its sky level is {level}")
            factors[index] = scale_to / level
    kernel = _clipped_mean_kernel()
    arrays = ("data", "err", "dq", *VARIANCE_ARRAYS)
    # The members' rows are stacked (in native byte order, as the kernel needs) one block at a
    # time, so the combine holds no whole-frame copy of any member.
    for rows in row_blocks(first.data.shape):
        stacks = [_stack_rows(members, name, rows) for name in arrays]
        shape = stacks[0].shape[1:]
        data = np.empty(shape, dtype=np.float32)
        variances = {name: np.empty(shape, dtype=np.float32) for name in VARIANCE_ARRAYS}
        used = np.empty(shape, dtype=np.uint16)
        kernel(*stacks, factors, np.float32(nsigma), int(maxiters), data, *variances.values(), used)
        dq = np.zeros(shape, dtype=np.uint32)
        none = used == 0
        if none.any():
            for member_dq in stacks[2]:
                dq[none] |= member_dq[none]
            dq[none] |= DO_NOT_USE
        yield CombinedRows(rows, data, variances, dq, used)
    for member in members:
        if isinstance(member, FrameFile):  # summed as its rows were read
            member.verify_sums()


_STACK_DTYPES = {"dq": np.uint32}


def _stack_rows(members, name, rows):
    """Return ``(n, rows, nx)`` of one array of every member, native byte order, C-contiguous."""
    dtype = _STACK_DTYPES.get(name, np.float32)
    return np.stack([np.asarray(getattr(member, name)[rows], dtype=dtype) for member in members])


@functools.cache
def _clipped_mean_kernel():
    """Compile (or load from numba's cache) the per-pixel clipped-mean kernel.

    Compiled on first use, so that importing the package does not import numba.
    """
    import numba

    do_not_use = np.uint32(DO_NOT_USE)

    @numba.njit(cache=True, nogil=True)
    def kernel(data, err, dq, var_poisson, var_rnoise, var_flat, factors, nsigma, maxiters, mean, out_poisson,
               out_rnoise, out_flat, used):  # fmt: skip
        n, ny, nx = data.shape
        values = np.empty(n, dtype=np.float32)
        errors = np.empty(n, dtype=np.float32)
        valid = np.empty(n, dtype=np.bool_)
        kept = np.empty(n, dtype=np.bool_)
        trial = np.empty(n, dtype=np.bool_)
        ordered = np.empty(n, dtype=np.float32)
        half = np.float32(0.5)
        for y in range(ny):
            for x in range(nx):
                for i in range(n):
                    values[i] = data[i, y, x] * factors[i]
                    errors[i] = err[i, y, x] * factors[i]
                    valid[i] = (
                        (dq[i, y, x] & do_not_use) == 0
                        and np.isfinite(data[i, y, x])
                        and np.isfinite(err[i, y, x])
                        and np.isfinite(var_poisson[i, y, x])
                        and np.isfinite(var_rnoise[i, y, x])
                        and np.isfinite(var_flat[i, y, x])
                    )
                    kept[i] = valid[i]
                for _ in range(maxiters):
                    # Median of the values kept: an insertion sort of at most n values (no sort for
                    # one or two).
                    count = 0
                    for i in range(n):
                        if kept[i]:
                            value = values[i]
                            j = count
                            while j > 0 and ordered[j - 1] > value:
                                ordered[j] = ordered[j - 1]
                                j -= 1
                            ordered[j] = value
                            count += 1
                    if count == 0:
                        break
                    if count % 2:
                        center = ordered[count // 2]
                    else:
                        center = (ordered[count // 2 - 1] + ordered[count // 2]) * half
                    survivors = 0
                    for i in range(n):
                        trial[i] = valid[i] and abs(values[i] - center) <= nsigma * errors[i]
                        survivors += trial[i]
                    if survivors == 0:
                        break  # every value rejected: keep the previous set rather than none
                    changed = False
                    for i in range(n):
                        changed |= trial[i] != kept[i]
                        kept[i] = trial[i]
                    if not changed:
                        break
                total = 0.0
                total_poisson = 0.0
                total_rnoise = 0.0
                total_flat = 0.0
                count = 0
                for i in range(n):
                    if kept[i]:
                        square = np.float64(factors[i]) ** 2
                        total += values[i]
                        total_poisson += var_poisson[i, y, x] * square
                        total_rnoise += var_rnoise[i, y, x] * square
                        total_flat += var_flat[i, y, x] * square
                        count += 1
                used[y, x] = count
                if count == 0:
                    mean[y, x] = out_poisson[y, x] = out_rnoise[y, x] = out_flat[y, x] = np.nan
                else:
                    mean[y, x] = total / count
                    out_poisson[y, x] = total_poisson / count**2
                    out_rnoise[y, x] = total_rnoise / count**2
                    out_flat[y, x] = total_flat / count**2

    return kernel
