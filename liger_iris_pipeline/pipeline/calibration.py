"""Calibration pipelines: the flat-field and dark references, made from calibration exposures."""

from ..combine_darks import CombineDarksStep
from ..dark_current import DarkCurrentStep
from ..datamodels import TMTFlatModel
from ..lib.combine import combine_frames
from ..lib.models import open_image
from ..lib.observation import observation_category
from ..lib.references import REFERENCE_SPEC, reference_from_frame
from ..normalize import NormalizeStep
from ..stpipe import TMTPipeline
from .inputs import input_products, name_after_first_product

__all__ = ["MasterDarkPipeline", "ProcessFlatfieldL2"]


class ProcessFlatfieldL2(TMTPipeline):
    """Flat-lamp Level 1 frames -> flat reference: dark subtraction, combination, normalization.

    Several exposures are combined by a per-pixel sigma-clipped mean before normalizing.
    """

    class_alias = "preprocess_flatfield"
    names_products_by_model = combines_inputs = True
    spec = (
        """
    nsigma = float(min=0, default=3.0)  # Outlier threshold when combining exposures (units of their errors)
    """
        + REFERENCE_SPEC
    )
    step_defs = {"dark_current": DarkCurrentStep, "normalize": NormalizeStep}

    def process(self, step_input):
        """Make the flat.

        Parameters
        ----------
        step_input : str, IRISImageModel, list, or association (``.json``)
            Flat-lamp Level 1 frames of one filter.

        Returns
        -------
        TMTFlatModel
            Suffix ``flat``.
        """
        products = input_products(step_input)
        frames = [self.dark_current.run(open_image(product.science, self.name)) for product in products]
        combined = frames[0] if len(frames) == 1 else combine_frames(frames, self.nsigma)[0]
        normalized = self.normalize.run(combined)
        description = (
            f"Flat field: {len(frames)} lamp exposure(s), dark subtracted, normalized by the {self.normalize.method}"
        )
        flat = reference_from_frame(
            normalized, TMTFlatModel, "FLAT", description, self.useafter, self.pedigree, self.author
        )
        obstype, obsname = observation_category(combined)
        if obsname:  # inputs without EXP_TYPE have no category
            flat.meta.obstype, flat.meta.obsname = obstype, obsname
        flat.meta.filename = name_after_first_product(self, products)
        return flat


class MasterDarkPipeline(TMTPipeline):
    """Dark Level 1 frames -> dark reference (rate in DN/s), with outlier rejection."""

    class_alias = "master_dark"
    names_products_by_model = combines_inputs = True
    step_defs = {"combine_darks": CombineDarksStep}

    def process(self, step_input):
        """Make the dark.

        Parameters
        ----------
        step_input : str, IRISImageModel, list, or association (``.json``)
            Dark Level 1 frames of one detector region and readout mode.

        Returns
        -------
        TMTDarkModel
            Suffix ``dark``.
        """
        products = input_products(step_input)
        dark = self.combine_darks.run([product.science for product in products])
        dark.meta.filename = name_after_first_product(self, products)
        return dark
