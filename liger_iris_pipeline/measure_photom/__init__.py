"""Photometry of standard stars: the PHOTOM reference's conversions."""

from .measure_photom_step import MeasurePhotomStep

__all__ = ["MeasurePhotomStep"]
