"""World coordinate system of imager frames (`AssignWcsStep`) and slicer IFS frames (`AssignWcsIFSStep`)."""

from .assign_wcs_ifs_step import AssignWcsIFSStep
from .assign_wcs_step import AssignWcsStep

__all__ = ["AssignWcsIFSStep", "AssignWcsStep"]
