"""`MergeSubarraysStep`: paste reduced subarray frames into a full frame."""

import logging

from ..stpipe import TMTStep
from .merge import merge_subarrays

__all__ = ["MergeSubarraysStep"]

log = logging.getLogger(__name__)


class MergeSubarraysStep(TMTStep):
    """Merge subarray frames (and optionally the full-frame readout they belong to) into a full frame.

    Call as ``MergeSubarraysStep.call([frame, ...])`` or ``MergeSubarraysStep.call(frame, frame, ...)``.
    Frames are placed by their subarray metadata, not by their order; overlapping subarrays are
    an error; without a full-frame input, uncovered pixels are NaN and flagged
    ``OUTSIDE_SUBARRAY | DO_NOT_USE``.
    """

    class_alias = "merge_subarrays"
    input_role = "frame to merge"
    frames_input = True

    def apply(self, models):
        """Merge the frames into a full frame (see `TMTStep.apply`)."""
        merged = merge_subarrays(models)
        for region in merged.meta.subarray_map.instance:
            log.info("Merged subarray %(id)d at xstart %(xstart)d, ystart %(ystart)d (%(xsize)dx%(ysize)d)", region)
        return merged
