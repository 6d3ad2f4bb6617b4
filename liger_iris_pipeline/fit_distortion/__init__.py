"""Field distortion of the imager from a pinhole-grid exposure."""

from .fit_distortion_step import FitDistortionStep

__all__ = ["FitDistortionStep"]
