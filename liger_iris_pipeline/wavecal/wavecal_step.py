"""`WavecalStep`: the ``wavecal`` reference of the slicer IFS from an arc frame and the slice geometry."""

import logging

import numpy as np

from .. import dqflags
from ..ifs_flat.ifs_flat import check_geometry
from ..lib.models import file_label
from ..lib.references import REFERENCE_SPEC, describe_reference
from ..stpipe import TMTStep
from .arc_lines import arc_lines
from .wavecal import wavelength_solutions

__all__ = ["WavecalStep", "wavecal_reference"]

log = logging.getLogger(__name__)


class WavecalStep(TMTStep):
    """Fit the wavelength solution of every slice of a Level 1 arc frame (``SLI-IDP``).

    The slices come from the ``slicegeo`` reference (its mode and spaxel scale must be the
    frame's); the lines are identified against the pipeline's arc line list
    (`~liger_iris_pipeline.wavecal.arc_lines`) and ``lambda(s, y)`` is fitted per slice
    (`~liger_iris_pipeline.wavecal.wavecal`). The product is a `TMTWavecalModel` (suffix
    ``wavecal``) with one row per slice: COEFFS, NLINES, RMS_PIX, RMS_KMS.
    """

    class_alias = "wavecal"
    input_model = ("IRISIFSImageModel",)
    input_role = "arc frame"
    reference_file_types = ["slicegeo"]

    spec = (
        """
    wavelength_range = float_list(min=2, max=2, default=None)  # Band (vacuum um) the lines are looked for in; None: all
    detection_sigma = float(min=1, default=10.0)  # Prominence of an arc peak, in units of the spectrum's median error
    max_peaks = integer(min=4, default=25)  # Brightest peaks of each slice used to identify the lines
    tolerance = float(min=0.1, default=1.0)  # Largest distance (pixels) of an identified peak from its line
    clip_sigma = float(min=2, default=4.0)  # Outlier rejection of the 2-D fit (robust standard deviations)
    min_lines = integer(min=3, default=4)  # Fewest distinct lines per slice
    max_rms_pix = float(min=0, default=0.1)  # Largest rms (pixels) of a slice's fit taken as a right identification
    """
        + REFERENCE_SPEC
    )

    def apply(self, model, slicegeo):
        """Fit the solutions (see `TMTStep.apply`).

        Returns
        -------
        TMTWavecalModel

        Raises
        ------
        IFSFlatError
            A frame of another IFS mode, or a slice geometry of another mode or spaxel scale.
        WavecalError
            A slice whose lines cannot be identified or fitted.
        """
        name = file_label(model)
        # One check of the geometry for every slicer calibration (the IFS flat's).
        check_geometry(model, slicegeo, name, file_label(slicegeo))
        if model.meta.exposure.type and not model.meta.exposure.type.endswith("_ARC"):
            log.warning("%s: EXP_TYPE %s is not an arc exposure", name, model.meta.exposure.type)
        low, high = self.wavelength_range or (None, None)
        lines, _ = arc_lines(low, high)
        table = slicegeo.slices
        slices = [
            {
                "slice": int(row["SLICE"]),
                "ystart": int(row["YSTART"]),
                "ystop": int(row["YSTOP"]),
                "trace": row["TRACE"],
            }
            for row in table
        ]
        geometry = slicegeo.meta.slice_geometry
        good = (model.dq & dqflags.pixel["DO_NOT_USE"]) == 0
        options = {
            key: getattr(self, key)
            for key in ("detection_sigma", "max_peaks", "tolerance", "clip_sigma", "min_lines", "max_rms_pix")
        }
        solutions = wavelength_solutions(
            model.data, model.err, good, slices, geometry.n_spaxels, geometry.spaxel_pixels, lines, name=name, **options
        )
        for row in solutions:
            log.info(
                "%s: slice %d: %d lines, rms %.4f px, %.3f km/s",
                name,
                row["slice"],
                row["nlines"],
                row["rms_pix"],
                row["rms_kms"],
            )
        description = (
            f"Wavelength solution lambda(s, y) per slice from arc frame {name}, "
            f"{len(lines)} lines of the NIST arc list searched"
        )
        return wavecal_reference(model, solutions, description, self.useafter, self.pedigree, self.author)


def wavecal_reference(frame, solutions, description, useafter, pedigree, author):
    """Return a `TMTWavecalModel` of per-slice solutions with the arc frame's instrument metadata.

    Parameters
    ----------
    frame : IRISIFSImageModel
        The arc frame (telescope, instrument, detector, mode, scale and filter are copied).
    solutions : list of dict
        `~liger_iris_pipeline.wavecal.wavecal.slice_solution` results.
    description, useafter, pedigree, author : str
        DESCRIP, USEAFTER (``YYYY-MM-DDThh:mm:ss``), PEDIGREE and AUTHOR.

    Returns
    -------
    TMTWavecalModel
    """
    from ..datamodels import TMTWavecalModel

    table = np.zeros(
        len(solutions),
        dtype=[("SLICE", "i2"), ("COEFFS", "f8", (3, 3)), ("NLINES", "i4"), ("RMS_PIX", "f8"), ("RMS_KMS", "f8")],
    )
    for index, row in enumerate(solutions):
        table[index] = (row["slice"], row["coeffs"], row["nlines"], row["rms_pix"], row["rms_kms"])
    reference = TMTWavecalModel(solutions=table)
    keys = ("name", "detector", "detector_serial", "mode", "ifs_mode", "spaxel_scale", "filter")
    describe_reference(reference, frame, "WAVECAL", description, useafter, pedigree, author, keys)
    reference.meta.subarray.name = frame.meta.subarray.name  # the solutions are in the arc frame's pixels
    return reference
