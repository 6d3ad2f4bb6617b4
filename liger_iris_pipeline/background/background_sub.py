"""A constant background frame from a sky level, without stpipe.

Background members are combined by `liger_iris_pipeline.lib.combine.combine_frames`; the sky
level of a single frame is `liger_iris_pipeline.lib.combine.sky_level` (a sigma-clipped median:
one number for the whole frame, so it suits frames where the sky is uniform, such as
flat-fielded frames; structure such as the flat's illumination pattern is not modelled).
"""

import numpy as np

from ..datamodels import IRISImageModel
from ..lib.variance import update_err

__all__ = ["constant_frame"]


def constant_frame(like, level):
    """Return a frame of ``like``'s shape and region holding a constant level with its variances.

    Parameters
    ----------
    like : IRISImageModel
        The frame whose shape and metadata the result takes.
    level : SkyLevel
        The value and variance components.

    Returns
    -------
    IRISImageModel
    """
    frame = IRISImageModel(np.full(like.data.shape, level.value, dtype=np.float32))
    frame.update(like)
    for name, variance in level.variances.items():
        getattr(frame, name)[...] = variance
    update_err(frame)
    return frame
