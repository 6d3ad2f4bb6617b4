"""Flat fielding."""

from .flat_field_step import FlatFieldStep

__all__ = ["FlatFieldStep"]
