"""`SliceGeometryStep`: the ``slicegeo`` reference of the slicer IFS from a lamp flat."""

import logging

import numpy as np

from ..lib.models import file_label
from ..lib.references import REFERENCE_SPEC, describe_reference
from ..stpipe import TMTStep
from .edges import SliceGeometryError, fit_edges, trace_edges

__all__ = ["SliceGeometryStep", "slice_geometry_reference"]

log = logging.getLogger(__name__)

_INSTRUMENT_KEYS = ("name", "detector", "detector_serial", "filter", "ifs_mode", "spaxel_scale")
"""What the reference takes from the lamp flat's instrument metadata."""


class SliceGeometryStep(TMTStep):
    """Trace the slices of a Level 1 lamp flat (``SLI-NFF``) and fit their edges.

    Each slice's left and right edges are measured row by row (`~.edges.trace_edges`) and fitted
    with a polynomial in y (`~.edges.fit_edges`). The product is a `TMTSliceGeometryModel`
    (suffix ``slicegeo``): per slice its bank, lit rows, left-edge polynomial (TRACE) and width.
    """

    class_alias = "slice_geometry"
    input_model = ("IRISIFSImageModel",)
    input_role = "lamp flat"

    spec = (
        """
    n_slices = integer(min=1, default=88)  # Slices expected on the detector (all banks)
    n_spaxels = integer(min=1, default=45)  # Spaxels along a slice (NSPAXEL)
    degree = integer(min=1, max=3, default=2)  # Degree of the edge polynomials
    nsigma = float(min=1, default=4.0)  # Clipping threshold of the edge fits (standard deviations)
    """
        + REFERENCE_SPEC
    )

    def apply(self, model):
        """Measure the slice geometry (see `TMTStep.apply`).

        Returns
        -------
        TMTSliceGeometryModel

        Raises
        ------
        SliceGeometryError
            Not a slicer frame, not the expected number of slices, or a slice too short to fit.
        """
        name = file_label(model)
        if model.meta.instrument.ifs_mode != "SLICER":
            raise SliceGeometryError(f"{name}: IFSMODE {model.meta.instrument.ifs_mode!r}, not a slicer frame")
        exposure_type = model.meta.exposure.type or ""
        if exposure_type and not exposure_type.endswith("_IFS_FLAT"):
            log.warning("%s: EXP_TYPE %s is not a lamp flat", name, exposure_type)
        left, right, level, banks = trace_edges(model.data, model.dq, n_slices=self.n_slices, name=name)
        traces, widths, rows, rms = fit_edges(left, right, level, degree=self.degree, nsigma=self.nsigma, name=name)
        log.info("%s: left-edge fit rms %.4f px (median over slices), widths %.3f-%.3f px", name,
                 np.median(rms), widths.min(), widths.max())  # fmt: skip
        reference = slice_geometry_reference(traces, widths, rows, banks, self.n_spaxels)
        description = f"Slice geometry: degree-{self.degree} edges of {len(widths)} slices traced on lamp flat {name}"
        describe_reference(
            reference, model, "SLICEGEO", description, self.useafter, self.pedigree, self.author, _INSTRUMENT_KEYS
        )
        reference.meta.subarray.name = model.meta.subarray.name  # the traces are in the lamp flat's pixels
        for key, value in model.meta.cal_step.instance.items():
            setattr(
                reference.meta.cal_step, key, value
            )  # the lamp flat's calibration (dark_current) is the reference's
        return reference


def slice_geometry_reference(traces, widths, rows, banks, n_spaxels):
    """Return a `TMTSliceGeometryModel` (without metadata) of measured slices.

    Parameters
    ----------
    traces : numpy.ndarray
        (n_slices, 4) left-edge polynomials.
    widths : numpy.ndarray
        (n_slices,) widths (pixels).
    rows : numpy.ndarray
        (n_slices, 2) ``(ystart, ystop)``.
    banks : numpy.ndarray
        (n_slices,) bank of each slice.
    n_spaxels : int
        Spaxels along a slice; SPAXPIX is the median width over it.

    Returns
    -------
    TMTSliceGeometryModel
    """
    from ..datamodels import TMTSliceGeometryModel

    reference = TMTSliceGeometryModel()
    table = np.zeros(len(widths), dtype=reference.get_dtype("slices"))
    table["SLICE"] = np.arange(len(widths))
    table["BANK"] = banks
    table["YSTART"], table["YSTOP"] = rows.T
    table["TRACE"] = traces
    table["WIDTH"] = widths
    reference.slices = table
    reference.meta.slice_geometry.n_spaxels = int(n_spaxels)
    reference.meta.slice_geometry.spaxel_pixels = float(np.median(widths) / n_spaxels)
    return reference
