"""`FlatFieldStep`: divide a count-rate frame by the flat field."""

from ..stpipe import TMTStep
from .flat_field import apply_flat

__all__ = ["FlatFieldStep"]


class FlatFieldStep(TMTStep):
    """Flat-field a frame with the FLAT reference (JWST semantics).

    Bad flat pixels get ``NO_FLAT_FIELD | DO_NOT_USE`` and a flat of 1; the Poisson and
    read-noise variances are divided by ``flat**2``; ``VAR_FLAT`` comes from the flat's error.
    """

    class_alias = "flat_field"
    reference_file_types = ["flat"]

    def apply(self, model, flat):
        apply_flat(model, flat)
