"""`FlatFieldStep`: divide a count-rate frame by the flat field."""

import logging

from ..datamodels import TMTFlatModel
from ..lib.models import open_image
from ..lib.status import mark_skipped
from ..stpipe import TMTStep
from .flat_field import apply_flat

__all__ = ["FlatFieldStep"]

log = logging.getLogger(__name__)


class FlatFieldStep(TMTStep):
    """Flat-field a frame with the FLAT reference (JWST semantics).

    Bad flat pixels get ``NO_FLAT_FIELD | DO_NOT_USE`` and a flat of 1; the Poisson and
    read-noise variances are divided by ``flat**2``; ``VAR_FLAT`` comes from the flat's error.
    """

    class_alias = "flat_field"
    reference_file_types = ["flat"]

    def process(self, input):  # noqa: A002 - stpipe's argument name
        """Flat-field the frame.

        Parameters
        ----------
        input : str or IRISImageModel
            The frame (not modified: the step works on a copy).

        Returns
        -------
        IRISImageModel
        """
        model = open_image(input, self.name)
        flat = self.reference_model(model, "flat", TMTFlatModel)
        if flat is None:
            return mark_skipped(model, self, "the flat reference is N/A")
        bad = apply_flat(model, flat)
        if bad:
            log.info("%d pixels have no valid flat value: flagged NO_FLAT_FIELD | DO_NOT_USE, not divided", bad)
        model.meta.cal_step.flat_field = "COMPLETE"
        return model
