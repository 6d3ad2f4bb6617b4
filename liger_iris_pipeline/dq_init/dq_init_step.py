"""DQInitStep: initialise the pixel DQ from the bad-pixel mask reference."""

from ..lib.models import file_label
from ..lib.status import mark_skipped
from ..stpipe import TMTStep
from .dq_initialization import apply_mask

__all__ = ["DQInitStep"]


class DQInitStep(TMTStep):
    """OR the ``mask`` reference into the pixel DQ (``PIXELDQ`` of a ramp, ``DQ`` of a frame)."""

    class_alias = "dq_init"
    reference_file_types = ["mask"]

    def process(self, input):  # noqa: A002 - stpipe's argument name
        """Return a copy of the input with the mask's flags OR-ed into its pixel DQ.

        Parameters
        ----------
        input : str or TMTRampModel or IRISImageModel
            Level 0 ramp (or a Level 1/2 frame).

        Returns
        -------
        TMTRampModel or IRISImageModel
        """
        from .. import datamodels

        # A shallow copy: the (large) science array is shared, the DQ array is replaced, never modified.
        model = datamodels.open(input) if not isinstance(input, datamodels.TMTDataModel) else type(input)(input)
        if not isinstance(model, (datamodels.TMTRampModel, datamodels.IRISImageModel)):
            raise TypeError(
                f"{file_label(model)}: the input of {self.name} must be a TMTRampModel or IRISImageModel, "
                f"this is a {type(model).__name__}"
            )
        mask = self.reference_model(model, "mask", datamodels.TMTMaskModel)
        if mask is None:
            return mark_skipped(model, self, "the mask reference is N/A")
        apply_mask(model, mask)
        model.meta.cal_step.dq_init = "COMPLETE"
        return model
