"""`BackgroundStep`: subtract the sky, from background exposures or from the frame itself."""

import itertools
import logging

import numpy as np

from ..datamodels.frame_file import FrameFile
from ..lib.combine import combined_blocks, empty_combined_frame, sky_level
from ..lib.masks import good_pixels
from ..lib.models import open_frame_rows
from ..lib.subtract import check_same_region, subtract_image, subtract_rows
from ..lib.variance import update_err
from ..stpipe import StepSkipped, TMTStep
from .background_sub import constant_frame

__all__ = ["BackgroundStep"]

log = logging.getLogger(__name__)


class BackgroundStep(TMTStep):
    """Subtract the background from a frame.

    Call as ``BackgroundStep.call(science, [background, ...])`` with the background members of
    a level-2 association (paths or models): they are combined by a per-pixel sigma-clipped
    mean over their good pixels, optionally each scaled to the science frame's sky level, and
    subtracted with their variances. Without members, ``sky_from_science`` subtracts the
    sigma-clipped median of the science frame's own good pixels.
    """

    class_alias = "background"
    more_inputs_role = "background member"

    spec = """
    nsigma = float(default=3.0)  # Clipping threshold (member errors when combining, std for sky levels)
    maxiters = integer(default=5)  # Maximum number of sigma-clipping iterations
    scale_to_science = boolean(default=False)  # Scale each member to the science frame's sky level before combining
    sky_from_science = boolean(default=False)  # Without background members, subtract the science frame's own sky level
    save_combined_background = boolean(default=False)  # Save the combined background (suffix combinedbackground)
    """

    def apply(self, model, *members):
        """Subtract the background from the step's copy of the science frame (see `TMTStep.apply`).

        The background members are the inputs after the science frame, same shape and detector
        region (``tmtrun background sci_rate.fits sky1_rate.fits sky2_rate.fits``, or one list).
        """
        if members:
            scale_to = sky_level(model, self.nsigma, self.maxiters).value if self.scale_to_science else None
            try:
                lost, median_level, _ = self._subtract_members(model, members, scale_to)
            finally:
                for member in members:
                    if isinstance(member, FrameFile):
                        member.close()
            model.meta.background.method = "members"
            model.meta.background.n_members = len(members)
            model.meta.background.members = ",".join(member.meta.filename or "<model>" for member in members)
        elif self.sky_from_science:
            level = sky_level(model, self.nsigma, self.maxiters)
            log.info(
                "Sky level of the science frame: %.6g +- %.2g DN/s (sigma-clipped median of %d pixels)",
                level.value,
                level.error,
                level.count,
            )
            background = constant_frame(model, level)
            median_level = _median_level(background.data[good_pixels(background.dq, background.data)])
            lost = subtract_image(model, background)
            model.meta.background.method = "sky_from_science"
            model.meta.background.n_members = 0
        else:
            raise StepSkipped("no background exposure was given and sky_from_science is off")
        if np.isfinite(median_level):
            model.meta.background.level = median_level
        if lost:
            log.warning("%d good pixels have no valid background: flagged DO_NOT_USE", lost)
        return model

    def open_more_input(self, init):
        """Open a background member given as a file by rows (`FrameFile`): only its rows are read, a block at a time."""
        return open_frame_rows(init, self.name, self.more_inputs_role)

    def _subtract_members(self, model, members, scale_to, keep_combined=False):
        """Combine the members and subtract them from the frame, a block of rows at a time.

        The combined background is never held whole (unless it is saved or ``keep_combined``):
        only its values, for its median level.

        Returns
        -------
        tuple
            ``(pixels lost, median level of the combined background, combined background or None)``.
        """
        check_same_region(model, members[0])
        blocks = combined_blocks(members, self.nsigma, self.maxiters, scale_to)
        first_block = next(blocks)  # members checked before anything is allocated
        values = np.empty(model.data.shape, dtype=np.float32)
        counts = np.zeros(len(members) + 1, dtype=np.int64)
        saved = empty_combined_frame(members[0]) if self.save_combined_background or keep_combined else None
        lost = 0
        for block in itertools.chain([first_block], blocks):
            values[block.rows] = block.data
            counts += np.bincount(block.used.ravel(), minlength=counts.size)
            if saved is not None:
                block.store(*saved)
            lost += subtract_rows(model, block.rows, block.data, block.variances, block.dq)
        update_err(model)
        # Where no member is usable the combined value is NaN: the finite values are its good pixels.
        median_level = _finite_median(values)
        log.info(
            "Combined %d background members (median %d used per pixel); median background %.6g DN/s",
            len(members),
            _median_count(counts),
            median_level,
        )
        if saved is None:
            return lost, median_level, None
        update_err(saved[0])
        if self.save_combined_background:
            self.save_model(saved[0], suffix="combinedbackground", force=True)
        return lost, median_level, saved[0]


def _median_level(values):
    """Return the median of a background's good values (a copy of its own, partitioned in place; NaN if empty)."""
    return float(np.median(values, overwrite_input=True)) if values.size else float("nan")


def _finite_median(values):
    """Return the median of the finite values of a float array, partitioning it in place (NaN if none).

    ``numpy.partition`` orders NaNs last, so the median of the ``n`` finite values is found among
    the first ``n`` without a copy of them.
    """
    values = values.ravel()
    count = int(np.count_nonzero(np.isfinite(values)))
    if not count:
        return float("nan")
    middle = [(count - 1) // 2, count // 2]
    values.partition(middle)
    return float((values[middle[0]] + np.float64(values[middle[1]])) / 2)


def _median_count(counts):
    """Return ``int(np.median(used))`` from the histogram of the small counts ``used`` (no sort)."""
    cumulative = np.cumsum(counts)
    total = int(cumulative[-1])
    low, high = np.searchsorted(cumulative, [(total - 1) // 2 + 1, total // 2 + 1])
    return int((low + high) / 2)
