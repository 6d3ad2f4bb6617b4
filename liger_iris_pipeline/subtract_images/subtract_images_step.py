"""`SubtractImagesStep`: subtract one frame from another."""

import logging

from ..lib.subtract import subtract_image
from ..stpipe import TMTStep

__all__ = ["SubtractImagesStep"]

log = logging.getLogger(__name__)


class SubtractImagesStep(TMTStep):
    """Subtract a second frame from the science frame, propagating variances and DQ.

    Call as ``SubtractImagesStep.call(science, other)``.
    """

    class_alias = "subtract_images"
    more_inputs_role = "frame to subtract"

    def apply(self, model, subtrahend):
        """Subtract the second input (same shape and detector region) from the step's copy of the first."""
        lost = subtract_image(model, subtrahend)
        if lost:
            log.warning("%d good pixels are not usable in the subtracted frame: flagged DO_NOT_USE", lost)
        return model
