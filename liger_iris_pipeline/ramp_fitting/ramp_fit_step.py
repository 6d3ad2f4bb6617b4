"""RampFitStep: Level 0 ramp -> Level 1 rate frame (the iris_readout C library)."""

import logging

from ..stpipe import TMTStep
from .ramp_fit import READOUT_MODES, fit_exposure

__all__ = ["RampFitStep"]

log = logging.getLogger(__name__)

_REFERENCE_MODELS = {
    "nonlin": "TMTNonlinModel",
    "saturation": "TMTSaturationModel",
    "readnoise": "TMTReadnoiseModel",
    "gain": "TMTGainModel",
}


class RampFitStep(TMTStep):
    """Combine the reads of each integration into a count rate, with errors and DQ.

    One pass of the C library per integration applies the nonlinearity correction, flags and
    excludes saturated reads, detects jumps, fits the slope and computes the Poisson and
    read-noise variances; integrations are combined by inverse variance.
    """

    class_alias = "ramp_fit"
    reference_file_types = ["nonlin", "saturation", "readnoise", "gain"]

    spec = """
    readout_mode = option('header', 'UTR', 'CDS', 'MCDS', default='header')  # Sampling: 'header' uses READPATT
    nfowler = integer(min=0, default=0)  # Reads averaged at each end in MCDS mode; 0 uses NFOWLER
    jump_threshold = float(default=5.0)  # Jump threshold in sigma of a two-point difference; <= 0 disables
    weighting = option('optimal', 'unweighted', default='optimal')  # UTR weighting of the reads
    nthreads = integer(min=0, default=0)  # Threads of the C pass; 0 uses all cores
    """

    def process(self, input):  # noqa: A002 - stpipe's argument name
        """Fit the ramp.

        Parameters
        ----------
        input : str or TMTRampModel
            Level 0 ramp, normally after `DQInitStep`.

        Returns
        -------
        IRISImageModel
            Level 1 frame (suffix ``rate``).
        """
        from .. import datamodels

        ramp = datamodels.open(input) if not isinstance(input, datamodels.TMTDataModel) else input
        if not isinstance(ramp, datamodels.TMTRampModel):
            raise TypeError(f"{self.name}: input must be a TMTRampModel (Level 0 ramp), got {type(ramp).__name__}")
        nints, nreads = ramp.data.shape[:2]
        if ramp.read_times is None or ramp.read_times.shape != (nreads,):
            raise ValueError(
                f"{self.name}: {ramp.meta.filename or 'the ramp'} needs READ_TIMES with {nreads} values, "
                f"found {None if ramp.read_times is None else ramp.read_times.shape}"
            )
        mode = self.readout_mode if self.readout_mode != "header" else ramp.meta.exposure.readout_mode or "UTR"
        nfowler = self.nfowler or ramp.meta.exposure.nfowler or 1
        references = {}
        for reftype, class_name in _REFERENCE_MODELS.items():
            reference = self.reference_model(ramp, reftype, getattr(datamodels, class_name))
            if reference is None:
                if reftype in ("readnoise", "gain"):
                    raise ValueError(f"{self.name}: a {reftype} reference is required to compute the errors")
                log.info("%s: no %s reference (N/A): that correction is not applied", self.name, reftype)
                continue
            references[reftype] = reference
        log.info(
            "Fitting %d integration(s) of %d reads (%s, %s weighting)",
            nints,
            nreads,
            mode,
            self.weighting,
        )
        frame = fit_exposure(
            ramp,
            references,
            READOUT_MODES[mode],
            fowler_n=nfowler,
            jump_threshold=self.jump_threshold,
            weighting=self.weighting,
            nthreads=self.nthreads,
        )
        frame.meta.exposure.readout_mode = mode
        if mode == "MCDS":
            frame.meta.exposure.nfowler = nfowler
        frame.meta.cal_step.ramp_fit = "COMPLETE"
        return frame
