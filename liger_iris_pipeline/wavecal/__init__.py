"""The slicer IFS's wavelength solution from arc frames (the ``wavecal`` reference)."""

from .wavecal import WavecalError
from .wavecal_step import WavecalStep

__all__ = ["WavecalError", "WavecalStep"]
