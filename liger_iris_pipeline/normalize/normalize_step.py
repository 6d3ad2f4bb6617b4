"""`NormalizeStep`: divide a frame by its own mean, median or mode."""

import logging

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

    def apply(self, model):
        """Normalize the step's copy of the frame (see `TMTStep.apply`)."""
        value, count = normalization_value(model, self.method)
        log.info("Normalizing by the %s of %d good pixels: %.8g", self.method, count, value)
        normalize(model, value)
        model.meta.normalization.method = self.method
        model.meta.normalization.value = float(value)
        return model
