"""DS9 region files of detected sources, written with the ``regions`` package."""

import os

import numpy as np

__all__ = ["CUBE_RADIUS_SPAXELS", "DEFAULT_RADIUS_PIXELS", "write_ds9_regions"]

DEFAULT_RADIUS_PIXELS = 6.0
"""Circle radius: about 1.5 FWHM of IRIS's Kbb core, the size a marker needs to be seen around a star."""

CUBE_RADIUS_SPAXELS = 1.5
"""Circle radius on a cube's white-light image: a spaxel is 6 to 12 imager pixels, a star's core about one."""


def write_ds9_regions(sources, wcs, path, radius_pixels=DEFAULT_RADIUS_PIXELS):
    """Write a DS9 region file with a circle on each source.

    Parameters
    ----------
    sources : astropy.table.Table
        Columns ``x`` and ``y`` (0-based pixels), as `liger_iris_pipeline.operations.qa.detected_sources`.
    wcs : gwcs.WCS, astropy.wcs.WCS or None
        Pixel -> sky. With one, the circles are ``fk5`` (J2000 RA/Dec, radius in arcsec);
        without, ``image`` circles (DS9's 1-based pixels, which ``regions`` converts to).
    path : str or os.PathLike
        The ``.reg`` file; written under a temporary name and renamed, so it is complete or absent.
    radius_pixels : float
        Circle radius in pixels of the image.

    Returns
    -------
    str
        ``path``.
    """
    from astropy import units as u
    from regions import CirclePixelRegion, CircleSkyRegion, PixCoord, Regions

    from ..lib.output import writing

    x = np.asarray(sources["x"], dtype=float)
    y = np.asarray(sources["y"], dtype=float)
    if wcs is None or len(x) == 0:
        shapes = [CirclePixelRegion(PixCoord(xi, yi), radius_pixels) for xi, yi in zip(x, y, strict=True)]
    else:
        from ..quicklook.render import sky_orientation

        scale = sky_orientation(wcs, float(np.median(x)), float(np.median(y)))[2]
        centres = wcs.pixel_to_world(x, y).transform_to("fk5")
        shapes = [CircleSkyRegion(centre, radius_pixels * scale * u.arcsec) for centre in centres]
    with writing(path) as temporary:
        Regions(shapes).write(temporary, format="ds9", overwrite=True)
    return os.fspath(path)
