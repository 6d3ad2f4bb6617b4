"""RampFitStep: Level 0 ramp -> Level 1 rate frame (the iris_readout C library)."""

import logging

import numpy as np

from ..lib.models import file_label
from ..stpipe import TMTStep
from .ramp_fit import READOUT_MODES, fit_exposure

__all__ = ["RampFitStep"]

log = logging.getLogger(__name__)


class RampFitStep(TMTStep):
    """Combine the reads of each integration into a count rate, with errors and DQ.

    One pass of the C library per integration applies the nonlinearity correction, flags and
    excludes saturated reads, detects jumps, fits the slope and computes the Poisson and
    read-noise variances; integrations are combined by inverse variance.
    """

    class_alias = "ramp_fit"
    reference_file_types = ["nonlin", "saturation", "readnoise", "gain"]
    # Without read noise and gain there are no errors: apply refuses rather than skipping the step.
    optional_reference_types = ("nonlin", "saturation", "readnoise", "gain")
    input_model = ("TMTRampModel",)

    spec = """
    readout_mode = option('header', 'UTR', 'CDS', 'MCDS', default='header')  # Sampling: 'header' uses READPATT
    nfowler = integer(min=0, default=0)  # Reads averaged at each end in MCDS mode; 0 uses NFOWLER
    jump_threshold = float(default=5.0)  # Largest jump threshold (sigma of a leave-one-out test); <= 0 disables
    jump_false_alarm = float(min=1e-12, max=0.5, default=4e-4)  # False-alarm probability of the jump test per pixel
    weighting = option('optimal', 'unweighted', default='optimal')  # UTR weighting of the reads
    nthreads = integer(min=0, default=0)  # Threads of the C pass; 0 uses all cores
    """

    def apply(self, ramp, nonlin, saturation, readnoise, gain):
        """Fit the ramp, normally after `DQInitStep` (see `TMTStep.apply`); returns the Level 1 frame."""
        check_ramp(ramp)
        for reftype, reference in (("readnoise", readnoise), ("gain", gain)):
            if reference is None:
                raise ValueError(
                    f"{file_label(ramp)}: {self.name} needs a {reftype} reference to compute the errors; "
                    f"override_{reftype} is N/A"
                )
        references = {"readnoise": readnoise, "gain": gain}
        for reftype, reference in (("nonlin", nonlin), ("saturation", saturation)):
            if reference is None:
                log.info("%s: no %s reference (N/A): that correction is not applied", self.name, reftype)
            else:
                references[reftype] = reference
        if nonlin is not None:
            check_nonlin(nonlin)
        nints, nreads = ramp.data.shape[:2]
        mode = self.readout_mode if self.readout_mode != "header" else ramp.meta.exposure.readout_mode or "UTR"
        nfowler = self.nfowler or ramp.meta.exposure.nfowler or 1
        log.info("Fitting %d integration(s) of %d reads (%s, %s weighting)", nints, nreads, mode, self.weighting)
        frame = fit_exposure(
            ramp,
            references,
            READOUT_MODES[mode],
            fowler_n=nfowler,
            jump_threshold=self.jump_threshold,
            jump_false_alarm=self.jump_false_alarm,
            weighting=self.weighting,
            nthreads=self.nthreads,
        )
        frame.meta.exposure.readout_mode = mode
        if mode == "MCDS":
            frame.meta.exposure.nfowler = nfowler
        return frame


def check_nonlin(reference):
    """Raise unless a nonlinearity reference has 2..16 coefficients per pixel (message starts with its file).

    Parameters
    ----------
    reference : TMTNonlinModel
        The reference.
    """
    shape = np.shape(reference.coeffs)
    # one coefficient is an offset only: the corrected ramp would hold no signal
    if len(shape) != 3 or not 2 <= shape[0] <= 16:
        raise ValueError(
            f"{file_label(reference)}: a nonlinearity reference needs COEFFS of shape (ncoeffs, ny, nx) with "
            f"2..16 coefficients (c0 + c1 s + ...), this one has shape {shape}"
        )


def check_ramp(ramp):
    """Raise unless a Level 0 ramp can be fitted: its message starts with the file.

    Parameters
    ----------
    ramp : TMTRampModel
        The input.
    """
    where = file_label(ramp)
    nints, nreads = ramp.data.shape[:2]
    if nreads < 2:
        raise ValueError(f"{where}: a ramp needs at least 2 reads per integration to measure a rate, it has {nreads}")
    times = ramp.read_times
    if times is None or times.shape != (nreads,):
        found = "none" if times is None else f"shape {times.shape}"
        raise ValueError(f"{where}: READ_TIMES must hold one time per read ({nreads}), found {found}")
    if not (np.all(np.isfinite(times)) and np.all(np.diff(times) > 0) and times[0] >= 0):
        raise ValueError(
            f"{where}: READ_TIMES must be finite, non-negative and strictly increasing, found {times.tolist()}"
        )
