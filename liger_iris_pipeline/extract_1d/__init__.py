"""Point-source spectra from IFS cubes (`Extract1dStep`)."""

from .extract_1d_step import Extract1dStep

__all__ = ["Extract1dStep"]
