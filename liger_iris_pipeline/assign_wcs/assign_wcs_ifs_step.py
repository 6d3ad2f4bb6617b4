"""`AssignWcsIFSStep`: the slicer IFS frame's gwcs from its slice geometry and wavelength solution."""

import logging

from ..stpipe import TMTStep
from .slicer import SlicerGeometry, assign_slicer_wcs, check_slicer_references

__all__ = ["AssignWcsIFSStep"]

log = logging.getLogger(__name__)


class AssignWcsIFSStep(TMTStep):
    """Store a slicer IFS frame's gwcs in ``meta.wcs``: detector -> (slice, s, wavelength) -> (RA, Dec, wavelength).

    The imager's `AssignWcsStep` for the IFS (jwst has one step with a module per mode; here the
    modes take different references, so each has its step, both recorded as ``assign_wcs``). The
    ``slicegeo`` reference gives each pixel's slice and position ``s`` along it, ``wavecal`` its
    wavelength, and the frame's ``meta.wcsinfo`` (the TAN WCS of its spaxel grid) the sky position
    of each ``(slice, s)`` (`liger_iris_pipeline.assign_wcs.slicer`).
    """

    class_alias = "assign_wcs"
    input_model = ("IRISIFSImageModel",)
    reference_file_types = ["slicegeo", "wavecal"]

    def apply(self, model, slicegeo, wavecal):
        """Assign the WCS to the step's copy of the frame (see `TMTStep.apply`).

        Raises
        ------
        ValueError
            A reference of another mode, scale or filter, or references that disagree on the slices.
        """
        check_slicer_references(model, slicegeo, wavecal)
        geometry = SlicerGeometry.from_references(slicegeo, wavecal)
        assign_slicer_wcs(model, geometry)
        log.info(
            "Slicer WCS: %d slices of %d spaxels (%.3g px each), spaxel scale %s arcsec",
            geometry.n_slices,
            geometry.n_spaxels,
            geometry.spaxel_pixels,
            model.meta.instrument.spaxel_scale,
        )
        return model
