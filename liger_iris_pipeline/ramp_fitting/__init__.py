"""Ramp fitting: Level 0 ramps to a Level 1 count-rate frame through the iris_readout C library."""

from .ramp_fit_step import RampFitStep

__all__ = ["RampFitStep"]
