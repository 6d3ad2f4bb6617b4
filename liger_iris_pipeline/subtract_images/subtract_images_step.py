"""`SubtractImagesStep`: subtract one frame from another."""

import logging

from ..lib.models import open_image
from ..stpipe import TMTStep
from .subtract import subtract_image

__all__ = ["SubtractImagesStep"]

log = logging.getLogger(__name__)


class SubtractImagesStep(TMTStep):
    """Subtract a second frame from the science frame, propagating variances and DQ.

    Call as ``SubtractImagesStep.call(science, other)``.
    """

    class_alias = "subtract_images"

    def process(self, input, other):  # noqa: A002 - stpipe's argument name
        """Return ``input - other``.

        Parameters
        ----------
        input : str or IRISImageModel
            The science frame (not modified: the step works on a copy).
        other : str or IRISImageModel
            The frame to subtract, same shape and detector region.

        Returns
        -------
        IRISImageModel
        """
        model = open_image(input, self.name)
        subtrahend = open_image(other, self.name, role="frame to subtract", copy=False)
        lost = subtract_image(model, subtrahend)
        if lost:
            log.warning("%d good pixels are not usable in the subtracted frame: flagged DO_NOT_USE", lost)
        model.meta.cal_step.subtract_images = "COMPLETE"
        return model
