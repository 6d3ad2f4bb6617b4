"""Calibration pipeline: the distortion reference, made from pinhole-grid exposures."""

from ..dark_current import DarkCurrentStep
from ..fit_distortion import FitDistortionStep
from ..lib.combine import combine_frames
from ..lib.models import open_image
from ..stpipe import TMTPipeline
from .inputs import input_products, name_after_first_product

__all__ = ["DistortionCalibrationPipeline"]


class DistortionCalibrationPipeline(TMTPipeline):
    """Pinhole-grid Level 1 frames -> distortion reference: dark subtraction, combination, fit.

    Several exposures of the pinhole mask are combined by a per-pixel sigma-clipped mean before
    the pinholes are measured (`FitDistortionStep`).
    """

    class_alias = "distortion_calibration"
    names_products_by_model = combines_inputs = True
    spec = """
    nsigma = float(min=0, default=3.0)  # Outlier threshold when combining exposures (units of their errors)
    """
    step_defs = {"dark_current": DarkCurrentStep, "fit_distortion": FitDistortionStep}

    def process(self, step_input):
        """Make the distortion reference.

        Parameters
        ----------
        step_input : str, IRISImageModel, list, or association (``.json``)
            Pinhole-grid Level 1 frames of one detector.

        Returns
        -------
        TMTDistortionModel
            Suffix ``distortion``.
        """
        products = input_products(step_input)
        frames = [self.dark_current.run(open_image(product.science, self.name)) for product in products]
        combined = frames[0] if len(frames) == 1 else combine_frames(frames, self.nsigma)[0]
        distortion = self.fit_distortion.run(combined)
        distortion.meta.filename = name_after_first_product(self, products)
        return distortion
