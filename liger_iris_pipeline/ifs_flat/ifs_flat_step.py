"""`IFSFlatStep`: the IFS detector's ``flat`` reference from a lamp flat and the slice geometry."""

import logging

from ..datamodels import TMTFlatModel
from ..lib.models import file_label
from ..lib.references import REFERENCE_SPEC, reference_from_frame
from ..stpipe import TMTStep
from .ifs_flat import check_geometry, ifs_flat

__all__ = ["IFSFlatStep"]

log = logging.getLogger(__name__)


class IFSFlatStep(TMTStep):
    """Make the IFS flat from a dark-subtracted Level 1 lamp flat (``SLI-NFF``).

    The slices come from the ``slicegeo`` reference (its IFS mode and spaxel scale must be the
    frame's). The lamp's spectrum, the same in every slice, is divided out (`~.ifs_flat.ifs_flat`):
    the flat holds the pixel response times the slice throughput, median 1 over the lit pixels of
    the slices, and 1 with ``NO_FLAT_FIELD`` elsewhere. The product is a `TMTFlatModel` (suffix
    ``flat``) for ``DETECTOR = 'IFU'``.
    """

    class_alias = "ifs_flat"
    input_model = ("IRISIFSImageModel",)
    input_role = "lamp flat"
    reference_file_types = ["slicegeo"]

    spec = (
        """
    smoothing = integer(min=5, default=21)  # Rows of the filter smoothing the lamp spectrum along y
    min_level = float(min=0, max=1, default=0.8)  # Rows fainter than this fraction of the lamp's median get no flat
    max_slope = float(min=0, default=0.01)  # Rows where the lamp changes faster (fraction per row) get no flat
    """
        + REFERENCE_SPEC
    )

    def apply(self, model, slicegeo):
        """Make the flat (see `TMTStep.apply`).

        Returns
        -------
        TMTFlatModel

        Raises
        ------
        IFSFlatError
            A slice geometry of another IFS mode or spaxel scale, or a frame the lamp does not light.
        """
        name = file_label(model)
        check_geometry(model, slicegeo, name, file_label(slicegeo))
        exposure_type = model.meta.exposure.type or ""
        if exposure_type and not exposure_type.endswith("_IFS_FLAT"):
            log.warning("%s: EXP_TYPE %s is not a lamp flat", name, exposure_type)
        model.data, model.err, model.dq = ifs_flat(
            model.data,
            model.err,
            model.dq,
            slicegeo.slices,
            smoothing=self.smoothing,
            min_level=self.min_level,
            max_slope=self.max_slope,
            name=name,
        )
        description = (
            f"IFS flat: pixel response times slice throughput from lamp flat {name}, lamp spectrum divided out"
        )
        return reference_from_frame(model, TMTFlatModel, "FLAT", description, self.useafter, self.pedigree, self.author)
