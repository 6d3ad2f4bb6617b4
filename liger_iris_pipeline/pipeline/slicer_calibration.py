"""Calibration pipelines of the slicer IFS from lamp flats: the slice geometry and the IFS flat."""

from ..ifs_flat import IFSFlatStep
from ..lib.combine import combine_frames
from ..lib.models import open_input
from ..slice_geometry import SliceGeometryStep
from ..stpipe import TMTPipeline
from .inputs import input_products, name_after_first_product
from .spec2 import IFSDarkCurrentStep

__all__ = ["IFSFlatCalibrationPipeline", "SliceGeometryCalibrationPipeline"]

_SPEC = """
    nsigma = float(min=0, default=3.0)  # Outlier threshold when combining exposures (units of their errors)
"""


def _combined_lamp_flat(pipeline, step_input):
    """Open, dark-subtract and combine the lamp flats of a pipeline's input; return it and the input's products."""
    products = input_products(step_input)
    frames = [
        pipeline.dark_current.run(open_input(product.science, ("IRISIFSImageModel",), pipeline.name, "lamp flat"))
        for product in products
    ]
    return (frames[0] if len(frames) == 1 else combine_frames(frames, pipeline.nsigma)[0]), products


class SliceGeometryCalibrationPipeline(TMTPipeline):
    """Lamp-flat Level 1 frames (``SLI-NFF``) -> slicegeo reference: dark, combination, edge tracing."""

    class_alias = "slicegeo_calibration"
    input_model = ("IRISIFSImageModel",)
    names_products_by_model = combines_inputs = True
    spec = _SPEC
    step_defs = {"dark_current": IFSDarkCurrentStep, "slice_geometry": SliceGeometryStep}

    def process(self, step_input):
        """Make the slicegeo reference.

        Parameters
        ----------
        step_input : str, IRISIFSImageModel, list, or association (``.json``)
            Lamp-flat Level 1 frames of one IFS mode and spaxel scale.

        Returns
        -------
        TMTSliceGeometryModel
            Suffix ``slicegeo``.
        """
        frame, products = _combined_lamp_flat(self, step_input)
        geometry = self.slice_geometry.run(frame)
        geometry.meta.filename = name_after_first_product(self, products)
        return geometry


class IFSFlatCalibrationPipeline(TMTPipeline):
    """Lamp-flat Level 1 frames (``SLI-NFF``) + slicegeo -> IFS flat: dark, combination, lamp spectrum divided out."""

    class_alias = "ifs_flat_calibration"
    input_model = ("IRISIFSImageModel",)
    names_products_by_model = combines_inputs = True
    spec = _SPEC
    step_defs = {"dark_current": IFSDarkCurrentStep, "ifs_flat": IFSFlatStep}

    def process(self, step_input):
        """Make the IFS flat.

        Parameters
        ----------
        step_input : str, IRISIFSImageModel, list, or association (``.json``)
            Lamp-flat Level 1 frames of one filter, IFS mode and spaxel scale.

        Returns
        -------
        TMTFlatModel
            Suffix ``flat``.
        """
        frame, products = _combined_lamp_flat(self, step_input)
        flat = self.ifs_flat.run(frame)
        flat.meta.filename = name_after_first_product(self, products)
        return flat
