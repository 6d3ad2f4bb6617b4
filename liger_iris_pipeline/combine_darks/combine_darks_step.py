"""CombineDarksStep: several Level 1 dark frames -> a dark reference (``_dark``)."""

import logging

from ..lib.models import file_label
from ..lib.observation import exposure_kind
from ..lib.references import REFERENCE_SPEC
from ..stpipe import TMTStep
from .combine_darks import combine_darks

__all__ = ["CombineDarksStep"]

log = logging.getLogger(__name__)


class CombineDarksStep(TMTStep):
    """Combine dark frames with outlier rejection into a `TMTDarkModel`."""

    class_alias = "combine_darks"
    input_role = "dark frame"
    frames_input = True
    spec = (
        """
    nsigma = float(min=0, default=3.0)  # Outlier threshold in units of each frame's error
    maxiters = integer(min=1, default=5)  # Clipping iterations
    """
        + REFERENCE_SPEC
    )

    def apply(self, models):
        """Combine Level 1 dark frames of one detector region and readout mode (see `TMTStep.apply`)."""
        for model in models:
            if model.meta.exposure.type is not None and exposure_kind(model) != "DARK":
                raise ValueError(
                    f"{file_label(model)}: {self.name} combines dark exposures, this one has EXP_TYPE "
                    f"{model.meta.exposure.type}"
                )
        log.info("Combining %d dark frames", len(models))
        dark = combine_darks(
            models,
            self.nsigma,
            self.maxiters,
            useafter=self.useafter,
            pedigree=self.pedigree,
            author=self.author,
        )
        return dark
