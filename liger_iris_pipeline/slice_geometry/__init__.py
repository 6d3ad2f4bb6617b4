"""Slice geometry of the slicer IFS (traces, slice edges) from a lamp flat."""

from .slice_geometry_step import SliceGeometryStep

__all__ = ["SliceGeometryStep"]
