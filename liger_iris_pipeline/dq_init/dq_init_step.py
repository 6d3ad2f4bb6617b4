"""DQInitStep: initialise the pixel DQ from the bad-pixel mask reference."""

from ..stpipe import TMTStep
from .dq_initialization import apply_mask

__all__ = ["DQInitStep"]


class DQInitStep(TMTStep):
    """OR the ``mask`` reference into the pixel DQ (``PIXELDQ`` of a ramp, ``DQ`` of a frame)."""

    class_alias = "dq_init"
    reference_file_types = ["mask"]
    # A ramp is copied shallowly: its (large) science array is shared, its DQ replaced, never modified.
    input_model = ("TMTRampModel", "IRISImageModel")

    def apply(self, model, mask):
        """OR the mask into the pixel DQ of the step's copy of the input (see `TMTStep.apply`)."""
        apply_mask(model, mask)
        return model
