"""IFS cubes: the regular (x, y, wavelength) grid a cube is built on (`cube_wcs`) and `CubeBuildStep`."""

from .cube_build_step import CubeBuildStep

__all__ = ["CubeBuildStep"]
