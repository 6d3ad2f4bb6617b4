"""`ParseSubarrayMapStep`: SUBARR_MAP extension -> ``meta.subarray_map`` and DQ flags."""

import logging

from ..lib.models import model_name
from ..lib.subarray import SubarrayError, subarray_bounds
from ..stpipe import StepSkipped, TMTStep
from .subarray_map import flag_subarray_pixels, subarray_regions

__all__ = ["ParseSubarrayMapStep"]

log = logging.getLogger(__name__)


class ParseSubarrayMapStep(TMTStep):
    """Record the subarrays of a full-frame readout and flag their pixels.

    Each non-zero id ``k`` of the SUBARR_MAP extension must cover a rectangle; it becomes an
    entry ``{id, xstart, ystart, xsize, ysize}`` (1-based detector pixels) of
    ``meta.subarray_map``, and its pixels are flagged ``NON_SCIENCE | DO_NOT_USE``.
    """

    class_alias = "parse_subarray_map"

    def apply(self, model):
        """Parse the subarray map of the step's copy of the frame (see `TMTStep.apply`)."""
        subarr_map = model.subarr_map
        if subarr_map is None or not subarr_map.any():
            raise StepSkipped(f"{model_name(model)} has no subarray in a SUBARR_MAP extension")
        if subarr_map.shape != model.data.shape:
            raise SubarrayError(
                f"{model_name(model)}: SUBARR_MAP is {subarr_map.shape[1]}x{subarr_map.shape[0]}, "
                f"SCI is {model.data.shape[1]}x{model.data.shape[0]}"
            )
        xstart, ystart, _, _ = subarray_bounds(model)
        regions = subarray_regions(subarr_map, (xstart, ystart), f"{model_name(model)} SUBARR_MAP")
        model.meta.subarray_map = regions
        flagged = flag_subarray_pixels(model.dq, subarr_map)
        for region in regions:
            log.info("Subarray %(id)d: xstart %(xstart)d, ystart %(ystart)d, %(xsize)d x %(ysize)d", region)
        log.info("%d pixels inside subarrays flagged NON_SCIENCE | DO_NOT_USE", flagged)
        return model
