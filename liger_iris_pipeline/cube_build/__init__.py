"""IFS cubes: the regular (x, y, wavelength) grid a cube is built on (`cube_wcs`)."""
