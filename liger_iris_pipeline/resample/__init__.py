"""Drizzle of Level 2 frames into a mosaic."""

from .resample_step import ResampleStep

__all__ = ["ResampleStep"]
