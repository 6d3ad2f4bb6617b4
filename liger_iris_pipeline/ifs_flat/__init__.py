"""The slicer IFS's flat (pixel response times slice throughput) from lamp flats and the slice geometry."""

from .ifs_flat_step import IFSFlatStep

__all__ = ["IFSFlatStep"]
