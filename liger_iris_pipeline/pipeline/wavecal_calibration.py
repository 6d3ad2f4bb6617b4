"""Calibration pipeline: the wavecal reference of the slicer IFS, made from an arc frame."""

from ..lib.models import open_input
from ..stpipe import TMTPipeline
from ..wavecal import WavecalStep
from .inputs import input_products

__all__ = ["WavecalCalibrationPipeline"]


class WavecalCalibrationPipeline(TMTPipeline):
    """Level 1 arc frame (``SLI-IDP``, after ``detector1``) + slice geometry -> wavecal reference.

    The arc lines are bright and narrow: the fit of each line has its own constant background, so
    the frame needs no dark subtraction or flat field. `WavecalStep` identifies the lines of each
    slice (``slicegeo`` reference) and fits its ``lambda(s, y)``.
    """

    class_alias = "wavecal_calibration"
    input_model = ("IRISIFSImageModel",)
    names_products_by_model = combines_inputs = True
    step_defs = {"wavecal": WavecalStep}

    def process(self, step_input):
        """Make the wavecal reference.

        Parameters
        ----------
        step_input : str, IRISIFSImageModel, or association (``.json``)
            The Level 1 arc frame (its first product's, for an association).

        Returns
        -------
        TMTWavecalModel
            Suffix ``wavecal``.
        """
        products = input_products(step_input)
        arc = open_input(products[0].science, self.input_model, self.name, "arc frame")
        wavecal = self.wavecal.run(arc)
        self.output_use_model = True
        wavecal.meta.filename = f"{products[0].name}.fits"
        return wavecal
