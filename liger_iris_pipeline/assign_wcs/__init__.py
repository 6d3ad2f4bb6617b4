"""World coordinate system of imager frames."""

from .assign_wcs_step import AssignWcsStep

__all__ = ["AssignWcsStep"]
