"""ProcessIFSL2Pipeline (``spec2``): Level 1 slicer IFS frames -> cubes (``_s3d``) and spectra (``_x1d``)."""

import logging

from ..assign_wcs import AssignWcsIFSStep
from ..background import BackgroundStep
from ..background.oh_scaling import scale_oh_bands
from ..cube_build import CubeBuildStep
from ..dark_current import DarkCurrentStep
from ..extract_1d import Extract1dStep
from ..flat_field import FlatFieldStep
from ..lib.models import open_input
from ..lib.observation import observation_category
from ..stpipe import TMTPipeline
from .inputs import input_products, subtract_background_members, subtract_dark_unless_cancelled

__all__ = ["IFSBackgroundStep", "IFSDarkCurrentStep", "IFSFlatFieldStep", "ProcessIFSL2Pipeline"]

log = logging.getLogger(__name__)

_IFS_FRAME = ("IRISIFSImageModel",)


class IFSBackgroundStep(BackgroundStep):
    """`BackgroundStep` for IFS frames: combining and subtracting members is per pixel, as for the imager.

    With ``sky_scaling = 'oh_family'`` the residual of each OH vibrational band left by the sky
    members is then fitted and subtracted (`~liger_iris_pipeline.background.oh_scaling`, Davies
    2007): the frame needs its slicer WCS (``assign_wcs`` first, as in ``spec2``).
    """

    input_model = _IFS_FRAME
    spec = (
        BackgroundStep.spec
        + """
    sky_scaling = option('none', 'oh_family', default='none')  # Scale the sky's OH bands to the science frame
    oh_window = float(default=2.5)  # oh_family: half width of an OH line along the dispersion (pixels)
    """
    )

    def _subtract_members(self, model, members, scale_to, keep_combined=False):
        """Subtract the members (`BackgroundStep`), then with ``oh_family`` each OH band's residual."""
        scaling = self.sky_scaling == "oh_family"
        if scaling and (model.meta.wcs is None or "slicer" not in model.meta.wcs.available_frames):
            raise ValueError(
                f"{model.meta.filename or '<model>'}: sky_scaling = 'oh_family' needs the frame's slicer WCS "
                "(run assign_wcs first)"
            )
        lost, median_level, combined = super()._subtract_members(model, members, scale_to, keep_combined or scaling)
        model.meta.background.sky_scaling = self.sky_scaling
        if scaling:
            scales = scale_oh_bands(model, combined, self.oh_window, self.nsigma, self.maxiters)
            for scale in scales:
                log.info(
                    "OH band %s: science / sky = %.4f +- %.4f (%d pixels)",
                    scale.band,
                    scale.scale,
                    scale.error,
                    scale.n_pixels,
                )
            model.meta.background.oh_band_scales = ",".join(f"{scale.band}={scale.scale:.4f}" for scale in scales)
        return lost, median_level, combined

    def open_more_input(self, init):
        """Open a background member whole, as an IFS frame (the imager's row reader takes imager frames)."""
        return self.open_input(init, self.more_inputs_role, copy=False)


class IFSDarkCurrentStep(DarkCurrentStep):
    """`DarkCurrentStep` for IFS frames (the dark of the IFS detector, ``DETECTOR = 'IFU'``)."""

    input_model = _IFS_FRAME


class IFSFlatFieldStep(FlatFieldStep):
    """`FlatFieldStep` for IFS frames: the IFS flat (``DETECTOR = 'IFU'``) holds the pixel and slice responses."""

    input_model = _IFS_FRAME


class ProcessIFSL2Pipeline(TMTPipeline):
    """Calibrate slicer IFS frames, build their cubes and extract a point source: jwst's calwebb_spec2 steps.

    The order is jwst's ``calwebb_spec2`` and ``docs/ifs_design.rst``'s: assign_wcs first (it only
    attaches the WCS, which the sky scaling needs). With sky frames (background members of a Level 2
    ``spec2`` association) the sky is subtracted next, pixel by pixel on the Level 1 frames, where
    the dark rate cancels too, so the dark step is then skipped (as in ``image2``); with
    ``steps.background.sky_scaling = 'oh_family'`` each OH band of the sky is scaled to the science
    frame. Then dark, flat, cube_build and extract_1d. The product is the cube
    (suffix ``s3d``), saved with the spectrum of its point source (``x1d``; skip ``extract_1d`` for
    extended sources); ``save_cal`` also saves the calibrated detector frame (``cal``).
    """

    class_alias = "spec2"
    input_model = _IFS_FRAME
    spec = """
    save_bsub = boolean(default=False)  # Save the sky-subtracted frame (suffix bsub)
    save_cal = boolean(default=False)  # Save the calibrated detector frame with its WCS (suffix cal)
    """
    intermediate_products = {"save_bsub": "bsub", "save_cal": "cal"}
    names_products_by_model = True
    step_defs = {
        "background": IFSBackgroundStep,
        "dark_current": IFSDarkCurrentStep,
        "flat_field": IFSFlatFieldStep,
        "assign_wcs": AssignWcsIFSStep,
        "cube_build": CubeBuildStep,
        "extract_1d": Extract1dStep,
    }

    def process(self, step_input):
        """Reduce every product of the input.

        Parameters
        ----------
        step_input : str, IRISIFSImageModel, list, or association (``.json``)
            Level 1 IFS frames; a ``spec2`` association adds sky members to each science frame.

        Returns
        -------
        IRISCubeModel or list of IRISCubeModel
            One cube (suffix ``s3d``) per product; their spectra are saved beside them (``x1d``).
        """
        self.output_use_model = self.names_products_by_model
        products = input_products(step_input)
        # Every science frame is checked before any is reduced: no partial products.
        for product in products:
            open_input(product.science, self.input_model, self.name, copy=False)
        results = [self.reduce(product) for product in products]
        return results[0] if len(results) == 1 else results

    def reduce(self, product):
        """Calibrate one science frame with its sky members and build its cube.

        Parameters
        ----------
        product : Level2Product
            Science frame and sky members.

        Returns
        -------
        IRISCubeModel
        """
        model = self.assign_wcs.run(open_input(product.science, self.input_model, self.name))
        model = subtract_background_members(self, model, product)
        model = subtract_dark_unless_cancelled(self, model, product, "sky")
        model = self.flat_field.run(model)
        model.meta.processing_level = 2
        model.meta.obstype, model.meta.obsname = observation_category(model)
        model.meta.filename = f"{product.name}.fits"
        if self.save_cal:
            self.save_model(model, suffix="cal", force=True)
        cube = self.cube_build.run(model)
        if product.asn_table:
            cube.meta.asn.table_name = product.asn_table
        if product.asn_pool:
            cube.meta.asn.pool_name = product.asn_pool
        cube.meta.filename = f"{product.name}.fits"
        spectrum = self.extract_1d.run(cube)
        if spectrum is not cube:
            cube.meta.cal_step.extract_1d = spectrum.meta.cal_step.extract_1d
            spectrum.meta.filename = cube.meta.filename
            self.save_model(spectrum, suffix="x1d")
        return cube
