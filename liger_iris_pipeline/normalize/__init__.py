"""Normalization of a frame by its own mean, median or mode."""

from .normalize_step import NormalizeStep

__all__ = ["NormalizeStep"]
