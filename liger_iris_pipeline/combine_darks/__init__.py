"""Combining dark exposures into a dark reference."""

from .combine_darks_step import CombineDarksStep

__all__ = ["CombineDarksStep"]
