"""Recording a step's outcome in ``meta.cal_step``."""

import logging

__all__ = ["mark_skipped"]

log = logging.getLogger(__name__)


def mark_skipped(model, step, reason):
    """Record ``SKIPPED`` for a step and log why.

    Parameters
    ----------
    model : TMTDataModel
        The step's output (its input, unchanged).
    step : stpipe.Step
        The step; its ``class_alias`` is the ``meta.cal_step`` key.
    reason : str
        Why the step did nothing.

    Returns
    -------
    TMTDataModel
        ``model``.
    """
    log.info("%s skipped: %s", step.name, reason)
    setattr(model.meta.cal_step, step.class_alias, "SKIPPED")
    return model
