"""Detector1Pipeline: Level 0 ramps -> Level 1 raw science frames (``_rate``)."""

from ..dq_init import DQInitStep
from ..lib.models import open_input
from ..lib.observation import observation_category
from ..ramp_fitting import RampFitStep
from ..stpipe import TMTPipeline

__all__ = ["Detector1Pipeline", "detector1_with_references"]


class Detector1Pipeline(TMTPipeline):
    """DQ initialisation then ramp fitting: a Level 0 ramp becomes a Level 1 rate frame."""

    class_alias = "detector1"
    step_defs = {"dq_init": DQInitStep, "ramp_fit": RampFitStep}

    def process(self, step_input):
        """Run the Level 1 steps.

        Parameters
        ----------
        step_input : str or TMTRampModel
            Level 0 ramp.

        Returns
        -------
        IRISImageModel
            Level 1 frame (suffix ``rate``).
        """
        # The pipeline's own ramp (a model passed in is copied shallowly): its steps work on it in place.
        ramp = open_input(step_input, self.dq_init.input_model, self.name)
        ramp = self.dq_init.run(ramp)
        frame = self.ramp_fit.run(ramp)
        frame.meta.obstype, frame.meta.obsname = observation_category(frame)
        return frame


def detector1_with_references(references):
    """Return a `Detector1Pipeline` that takes its references from a dict instead of CRDS.

    Parameters
    ----------
    references : dict
        Upper-case reference type -> model or file: ``MASK``, ``NONLIN``, ``SATURATION``,
        ``READNOISE`` and ``GAIN`` (e.g. a simulated detector's truth references).

    Returns
    -------
    Detector1Pipeline
    """
    ramp_fit = {f"override_{name.lower()}": references[name] for name in ("NONLIN", "SATURATION", "READNOISE", "GAIN")}
    return Detector1Pipeline(steps={"dq_init": {"override_mask": references["MASK"]}, "ramp_fit": ramp_fit})
