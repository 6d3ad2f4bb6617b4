"""ProcessImagerL2Pipeline (``image2``): Level 1 imager frames -> calibrated Level 2 frames (``_cal``)."""

from ..assign_wcs import AssignWcsStep
from ..background import BackgroundStep
from ..dark_current import DarkCurrentStep
from ..flat_field import FlatFieldStep
from ..lib.models import open_image
from ..lib.observation import observation_category
from ..parse_subarray_map import ParseSubarrayMapStep
from ..photom import PhotomStep
from ..stpipe import TMTPipeline
from .inputs import input_products, subtract_background_members, subtract_dark_unless_cancelled

__all__ = ["ProcessImagerL2Pipeline"]


class ProcessImagerL2Pipeline(TMTPipeline):
    """Calibrate imager frames: background, WCS, subarray map, dark, flat (the seeds' order), photom.

    With background exposures (members of a Level 2 association) the background subtraction
    comes first, on Level 1 frames: the sky and the dark rate of the detector cancel in the
    difference, so the dark step is then skipped (subtracting the dark again would remove it
    twice). Without them, the dark is subtracted, and with ``steps.background.sky_from_science``
    the frame's own sky is removed after flat fielding, where it is uniform. ``photom`` comes
    last (the background steps work in DN/s) and converts the frame to MJy/sr; without a PHOTOM
    reference it is skipped and the frame stays in DN/s.
    """

    class_alias = "image2"
    input_model = ("IRISImageModel",)
    spec = """
    save_bsub = boolean(default=False)  # Save the background-subtracted frame (suffix bsub)
    """
    intermediate_products = {"save_bsub": "bsub"}
    names_products_by_model = True
    step_defs = {
        "background": BackgroundStep,
        "assign_wcs": AssignWcsStep,
        "parse_subarray_map": ParseSubarrayMapStep,
        "dark_current": DarkCurrentStep,
        "flat_field": FlatFieldStep,
        "photom": PhotomStep,
    }

    def process(self, step_input):
        """Calibrate every product of the input.

        Parameters
        ----------
        step_input : str, IRISImageModel, list, or association (``.json``)
            Level 1 frames; an association adds background members to each science frame.

        Returns
        -------
        IRISImageModel or list of IRISImageModel
            Level 2 frames (suffix ``cal``), one per product.
        """
        self.output_use_model = self.names_products_by_model
        results = [self.calibrate(product) for product in input_products(step_input)]
        return results[0] if len(results) == 1 else results

    def calibrate(self, product):
        """Calibrate one science frame with its background members.

        Parameters
        ----------
        product : Level2Product
            Science frame and background members.

        Returns
        -------
        IRISImageModel
        """
        model = subtract_background_members(self, open_image(product.science, self.name), product)
        model = self.assign_wcs.run(model)
        model = self.parse_subarray_map.run(model)
        model = subtract_dark_unless_cancelled(self, model, product, "background")
        model = self.flat_field.run(model)
        if not product.background and self.background.sky_from_science:
            model = self.background.run(model)
        model = self.photom.run(model)
        model.meta.processing_level = 2
        model.meta.obstype, model.meta.obsname = observation_category(model)
        if product.asn_table:
            model.meta.asn.table_name = product.asn_table
        if product.asn_pool:
            model.meta.asn.pool_name = product.asn_pool
        model.meta.filename = f"{product.name}.fits"
        return model
