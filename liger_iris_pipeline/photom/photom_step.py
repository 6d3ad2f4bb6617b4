"""`PhotomStep`: convert a count-rate frame (DN/s) to surface brightness (MJy/sr)."""

from ..stpipe import StepSkipped, TMTStep
from .photom import apply_photom

__all__ = ["PhotomStep"]


class PhotomStep(TMTStep):
    """Convert a flat-fielded frame from DN/s to MJy/sr with the PHOTOM reference (JWST keywords).

    SCI and ERR are multiplied by the PHOTMJSR of the frame's filter and the variances by its
    square; BUNIT becomes ``MJy/sr`` and PHOTMJSR, PHOTUJA2, PHOTUNC, PIXAR_SR and PIXAR_A2 are
    recorded. Without a PHOTOM reference (N/A, or a CRDS context older than the type) the step
    is skipped and the frame stays in DN/s.
    """

    class_alias = "photom"
    reference_file_types = ["photom"]
    optional_reference_types = ("photom",)

    def apply(self, model, photom):
        if photom is None:
            raise StepSkipped("no PHOTOM reference (N/A): the frame stays in DN/s")
        apply_photom(model, photom)
