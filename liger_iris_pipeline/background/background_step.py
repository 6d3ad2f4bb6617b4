"""`BackgroundStep`: subtract the sky, from background exposures or from the frame itself."""

import logging

import numpy as np

from ..lib.combine import combine_frames, sky_level
from ..lib.masks import good_pixels
from ..lib.subtract import subtract_image
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
            background, used = combine_frames(members, self.nsigma, self.maxiters, scale_to)
            median_level = _median_level(background)
            log.info(
                "Combined %d background members (median %d used per pixel); median background %.6g DN/s",
                len(members),
                _median_count(used),
                median_level,
            )
            if self.save_combined_background:
                self.save_model(background, suffix="combinedbackground", force=True)
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
            median_level = _median_level(background)
            model.meta.background.method = "sky_from_science"
            model.meta.background.n_members = 0
        else:
            raise StepSkipped("no background exposure was given and sky_from_science is off")
        if np.isfinite(median_level):
            model.meta.background.level = median_level
        lost = subtract_image(model, background)
        if lost:
            log.warning("%d good pixels have no valid background: flagged DO_NOT_USE", lost)
        return model


def _median_level(background):
    """Return the median of a background frame's good pixels (NaN without any)."""
    good = good_pixels(background.dq, background.data)
    # The selection is a copy of its own: the median may partition it in place.
    return float(np.median(background.data[good], overwrite_input=True)) if good.any() else float("nan")


def _median_count(used):
    """Return ``int(np.median(used))`` of small non-negative counts, from their histogram (no sort)."""
    cumulative = np.cumsum(np.bincount(used.ravel()))
    low, high = np.searchsorted(cumulative, [(used.size - 1) // 2 + 1, used.size // 2 + 1])
    return int((low + high) / 2)
