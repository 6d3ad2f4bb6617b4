"""`NormalizeStep`: divide a frame by its own mean, median or mode."""

import logging

from ..lib.models import open_image
from ..stpipe import TMTStep
from .normalize import normalization_value, normalize

__all__ = ["NormalizeStep"]

log = logging.getLogger(__name__)


class NormalizeStep(TMTStep):
    """Divide a frame by the mean, median or mode of its good pixels (finite, no DO_NOT_USE)."""

    class_alias = "normalize"

    spec = """
    method = option('median', 'mean', 'mode', default='median')  # Statistic of the good pixels to divide by
    """

    def process(self, input):  # noqa: A002 - stpipe's argument name
        """Normalize the frame.

        Parameters
        ----------
        input : str or IRISImageModel
            The frame (not modified: the step works on a copy).

        Returns
        -------
        IRISImageModel
        """
        model = open_image(input, self.name)
        value, count = normalization_value(model, self.method)
        log.info("Normalizing by the %s of %d good pixels: %.8g", self.method, count, value)
        normalize(model, value)
        model.meta.normalization.method = self.method
        model.meta.normalization.value = float(value)
        model.meta.cal_step.normalize = "COMPLETE"
        return model
