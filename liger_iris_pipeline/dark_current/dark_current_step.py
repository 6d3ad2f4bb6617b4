"""`DarkCurrentStep`: subtract the dark rate from a count-rate frame."""

from ..stpipe import TMTStep
from .dark_sub import subtract_dark

__all__ = ["DarkCurrentStep"]


class DarkCurrentStep(TMTStep):
    """Subtract the dark current (DARK reference) from a count-rate frame.

    A full-frame dark is cut to the frame's subarray; a dark in counts is divided by its
    integration time; the dark's variance goes into ``VAR_RNOISE``; non-finite dark pixels are
    flagged ``UNRELIABLE_DARK | DO_NOT_USE`` and keep their science value.
    """

    class_alias = "dark_current"
    reference_file_types = ["dark"]

    def apply(self, model, dark):
        subtract_dark(model, dark)
