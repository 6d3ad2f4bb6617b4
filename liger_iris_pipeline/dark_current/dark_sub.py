"""Dark current subtraction on models, without stpipe.

``data -= dark rate``; the dark's variance (``err**2``) is added to ``var_rnoise``, which carries
the signal-independent detector variance (read noise and dark uncertainty); ``ERR`` is
recomputed; the dark's DQ is OR-ed in. Pixels where the dark is not finite keep their science
value and are flagged ``UNRELIABLE_DARK | DO_NOT_USE``.
"""

import logging

import numpy as np

from ..dqflags import pixel as FLAGS
from ..lib.models import model_name
from ..lib.subarray import reference_slices
from ..lib.variance import update_err

__all__ = ["dark_rate", "subtract_dark"]

log = logging.getLogger(__name__)

DO_NOT_USE = FLAGS["DO_NOT_USE"]
NAN_DARK_FLAGS = FLAGS["UNRELIABLE_DARK"] | DO_NOT_USE


def dark_rate(dark):
    """Return the dark rate and its error (DN/s) of a dark reference.

    A dark in counts (``BUNIT = 'DN'``, counts per integration) is divided by its own
    integration time (``meta.exposure.integration_time``).

    Parameters
    ----------
    dark : TMTDarkModel
        The reference.

    Returns
    -------
    rate, rate_err : numpy.ndarray
        float32 arrays of the reference's shape.

    Raises
    ------
    ValueError
        A dark in DN without a positive integration time.
    """
    if dark.meta.bunit_data != "DN":
        return dark.data, dark.err
    integration_time = dark.meta.exposure.integration_time
    if not integration_time or integration_time <= 0:
        raise ValueError(
            f"{model_name(dark)} is in DN (counts per integration) but has no positive "
            f"integration time (EFFINTTM = {integration_time!r}) to turn it into a rate"
        )
    log.info("Dark %s in DN: divided by its integration time %g s", model_name(dark), integration_time)
    scale = np.float32(1.0 / integration_time)
    return dark.data * scale, dark.err * scale


def subtract_dark(science, dark):
    """Subtract a dark reference from a frame, in place.

    Parameters
    ----------
    science : IRISImageModel
        Count-rate frame (DN/s), full frame or subarray.
    dark : TMTDarkModel
        Full-frame dark, or a subarray containing the science frame's region.

    Returns
    -------
    int
        Number of usable science pixels flagged for a non-finite dark (pixels already flagged
        DO_NOT_USE, such as the reference-pixel border, where the dark is not measured, are
        not counted).

    Raises
    ------
    liger_iris_pipeline.lib.subarray.SubarrayError
        The science frame is not inside the dark's region.
    """
    rows, cols = reference_slices(science, dark)
    rate, rate_err = dark_rate(dark)
    rate, rate_err, dark_dq = rate[rows, cols], rate_err[rows, cols], dark.dq[rows, cols]
    usable = np.isfinite(rate) & np.isfinite(rate_err)
    was_usable = (science.dq & DO_NOT_USE) == 0
    np.subtract(science.data, rate, out=science.data, where=usable)
    np.add(science.var_rnoise, np.square(rate_err), out=science.var_rnoise, where=usable)
    science.dq |= dark_dq
    science.dq[~usable] |= NAN_DARK_FLAGS
    update_err(science)
    lost = int(np.count_nonzero(was_usable & ~usable))
    if lost:
        log.warning("%d good pixels have a non-finite dark: flagged UNRELIABLE_DARK | DO_NOT_USE", lost)
    return lost
