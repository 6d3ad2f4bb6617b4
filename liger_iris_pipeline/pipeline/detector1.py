"""Detector1Pipeline: Level 0 ramps -> Level 1 raw science frames (``_rate``)."""

from ..dq_init import DQInitStep
from ..ramp_fitting import RampFitStep
from ..stpipe import TMTPipeline

__all__ = ["Detector1Pipeline"]


class Detector1Pipeline(TMTPipeline):
    """DQ initialisation then ramp fitting: a Level 0 ramp becomes a Level 1 rate frame."""

    class_alias = "detector1"
    step_defs = {"dq_init": DQInitStep, "ramp_fit": RampFitStep}

    def process(self, input):  # noqa: A002 - stpipe's argument name
        """Run the Level 1 steps.

        Parameters
        ----------
        input : str or TMTRampModel
            Level 0 ramp.

        Returns
        -------
        IRISImageModel
            Level 1 frame (suffix ``rate``).
        """
        from .. import datamodels

        self.suffix = "rate"
        ramp = datamodels.open(input) if not isinstance(input, datamodels.TMTDataModel) else input
        ramp = self.dq_init.run(ramp)
        frame = self.ramp_fit.run(ramp)
        frame.meta.obstype, frame.meta.obsname = observation_category(frame)
        return frame


def observation_category(model):
    """Return ``(OBSTYPE, OBSNAME)`` of a processed frame from its exposure type and detector.

    Parameters
    ----------
    model : IRISImageModel
        A processed frame.

    Returns
    -------
    tuple of str or None
        E.g. ``("SCI", "IMG1-SCI")`` for an imager science exposure; ``(None, None)`` when
        the exposure type has no category.
    """
    categories = {
        "IRIS_IMAGE": ("SCI", "SCI"),
        "IRIS_SKY": ("SCI", "SKY"),
        "IRIS_DARK": ("CAL", "DRK"),
        "IRIS_FLAT": ("CAL", "NFF"),
        "IRIS_TELLURIC": ("CAL", "TEL"),
    }
    obstype, kind = categories.get(model.meta.exposure.type, (None, None))
    if obstype is None or model.meta.instrument.mode == "IFS":
        return None, None
    return obstype, f"IMG1-{kind}"
