"""`TelluricStep`: divide a science cube or spectrum by the atmosphere's transmission seen on a telluric standard."""

import logging

import numpy as np

from ..stpipe import TMTStep
from .telluric import apply_transmission

__all__ = ["TelluricStep"]

log = logging.getLogger(__name__)


class TelluricStep(TMTStep):
    """Correct a cube or spectrum for telluric absorption with a standard star's spectrum (Vacca et al. 2003).

    Call as ``TelluricStep.call(science, standard_x1d)``. The transmission is the standard's spectrum
    over a blackbody of ``standard_temperature`` at the instrument's resolution, scaled to 1 where
    nothing absorbs, optionally shifted (``max_shift`` > 0) to leave the smoothest science; below
    ``min_transmission`` the science is NaN and flagged ``DO_NOT_USE``. The transmission's variance
    is added to ``var_flat``.
    """

    class_alias = "telluric"
    input_model = ("IRISCubeModel", "IRISSpectrumModel")
    more_inputs_role = "telluric standard spectrum"

    spec = """
    standard_temperature = float(min=1000, default=9600.0)  # Blackbody temperature of the standard (K; A0V: 9600)
    resolution = float(min=0, default=None)  # Resolving power R; None: 4000 for broad filters, 8000 for narrow
    min_transmission = float(min=0, max=1, default=0.2)  # Below it the science is flagged, not divided
    max_shift = float(min=0, default=0.0)  # Largest standard-to-science shift looked for (bins); 0: none
    """

    def open_more_input(self, init):
        """Open the standard's spectrum (an ``IRISSpectrumModel``, read only)."""
        from ..lib.models import open_input

        return open_input(init, ("IRISSpectrumModel",), self.name, self.more_inputs_role, copy=False)

    def apply(self, model, standard=None):
        """Divide the step's copy of the science by the standard's transmission (see `TMTStep.apply`).

        Raises
        ------
        ValueError
            No standard, or one of another filter or wavelength range (one line naming it).
        """
        if standard is None:
            raise ValueError(f"{self.name} needs the telluric standard's spectrum as its second input")
        from ..datamodels import IRISSpectrumModel
        from ..extract_1d.extract import cube_wavelengths

        if isinstance(model, IRISSpectrumModel):
            wavelength = np.asarray(model.spec_table["WAVELENGTH"], dtype=np.float64)
        else:
            wavelength = cube_wavelengths(model)
        result = apply_transmission(
            model,
            wavelength,
            standard,
            self.standard_temperature,
            self.resolution,
            min_transmission=self.min_transmission,
            max_shift=self.max_shift,
        )
        log.info(
            "Telluric standard %s: shift %.3g um, %d of %d bins below transmission %.2f flagged DO_NOT_USE",
            standard.meta.filename,
            result["shift"],
            result["flagged"],
            len(wavelength),
            self.min_transmission,
        )
        return model
