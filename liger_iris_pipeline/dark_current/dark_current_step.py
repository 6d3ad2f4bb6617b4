"""`DarkCurrentStep`: subtract the dark rate from a count-rate frame."""

import logging

from ..datamodels import TMTDarkModel
from ..lib.models import open_image
from ..lib.status import mark_skipped
from ..stpipe import TMTStep
from .dark_sub import subtract_dark

__all__ = ["DarkCurrentStep"]

log = logging.getLogger(__name__)


class DarkCurrentStep(TMTStep):
    """Subtract the dark current (DARK reference) from a count-rate frame.

    A full-frame dark is cut to the frame's subarray; a dark in counts is divided by its
    integration time; the dark's variance goes into ``VAR_RNOISE``; non-finite dark pixels are
    flagged ``UNRELIABLE_DARK | DO_NOT_USE`` and keep their science value.
    """

    class_alias = "dark_current"
    reference_file_types = ["dark"]

    def process(self, input):  # noqa: A002 - stpipe's argument name
        """Subtract the dark.

        Parameters
        ----------
        input : str or IRISImageModel
            The frame (not modified: the step works on a copy).

        Returns
        -------
        IRISImageModel
        """
        model = open_image(input, self.name)
        dark = self.reference_model(model, "dark", TMTDarkModel)
        if dark is None:
            return mark_skipped(model, self, "the dark reference is N/A")
        flagged = subtract_dark(model, dark)
        if flagged:
            log.warning("%d good pixels have a non-finite dark: flagged UNRELIABLE_DARK | DO_NOT_USE", flagged)
        model.meta.cal_step.dark_current = "COMPLETE"
        return model
