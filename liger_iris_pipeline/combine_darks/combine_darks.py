"""Combine Level 1 dark frames into a `TMTDarkModel` (dark rate in DN/s)."""

from ..datamodels import TMTDarkModel
from ..lib.combine import combine_frames
from ..lib.observation import observation_category
from ..lib.references import reference_from_frame

__all__ = ["combine_darks"]


def combine_darks(frames, nsigma=3.0, maxiters=5, **metadata):
    """Combine dark frames (DN/s) by a per-pixel sigma-clipped mean into a dark reference.

    Parameters
    ----------
    frames : list of IRISImageModel
        Level 1 dark frames of one detector region and readout mode.
    nsigma, maxiters : float, int
        Outlier rejection (cosmic rays, jumps) against each frame's own error.
    **metadata
        ``useafter``, ``pedigree``, ``author`` for `reference_from_frame`.

    Returns
    -------
    TMTDarkModel
        ``BUNIT = 'DN/s'``; ERR is the error of the mean.
    """
    combined, used = combine_frames(frames, nsigma, maxiters)
    description = f"Master dark: clipped mean of {len(frames)} dark exposures"
    dark = reference_from_frame(combined, TMTDarkModel, "DARK", description, **metadata)
    dark.meta.bunit_data = "DN/s"
    obstype, obsname = observation_category(combined)
    if obsname:  # inputs without EXP_TYPE have no category
        dark.meta.obstype, dark.meta.obsname = obstype, obsname
    dark.meta.instrument.filter = "DARK"
    return dark
