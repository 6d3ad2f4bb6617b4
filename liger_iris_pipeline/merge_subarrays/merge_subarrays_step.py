"""`MergeSubarraysStep`: paste reduced subarray frames into a full frame."""

import logging

from ..lib.models import open_image
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

    def process(self, input, *more):  # noqa: A002 - stpipe's argument name
        """Merge the frames.

        Parameters
        ----------
        input : str, IRISImageModel or list of them
            The frames (not modified).
        *more : str or IRISImageModel
            More frames.

        Returns
        -------
        IRISImageModel
            The full frame.
        """
        frames = [*(input if isinstance(input, list | tuple) else [input]), *more]
        models = [open_image(frame, self.name, "frame to merge", copy=False) for frame in frames]
        merged = merge_subarrays(models)
        for region in merged.meta.subarray_map.instance:
            log.info("Merged subarray %(id)d at xstart %(xstart)d, ystart %(ystart)d (%(xsize)dx%(ysize)d)", region)
        merged.meta.cal_step.merge_subarrays = "COMPLETE"
        return merged
