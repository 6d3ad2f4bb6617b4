"""Pointing -> ``meta.wcsinfo`` keywords -> `astropy.wcs.WCS`.

Conventions
-----------
- The pointing ``(ra, dec, pa)`` places sky position ``(ra, dec)`` (deg, ICRS) at the
  centre of the full detector, FITS pixel ``((nx + 1) / 2, (ny + 1) / 2)`` (1-based), and
  detector +y at position angle ``pa`` (deg, North through East). East is to the left
  at ``pa = 0`` (standard sky parity).
- Keywords: ``CTYPE = RA---TAN / DEC--TAN``, ``CDELT1 = CDELT2 = plate scale / 3600``
  (both positive) and the rotation plus parity flip in the PC matrix::

      PC = [[-cos(pa), sin(pa)],
            [ sin(pa), cos(pa)]]

- A subarray keeps the sky of the full frame: its CRPIX is the full-frame centre minus
  ``(xstart - 1, ystart - 1)``.
- A dither ``(dx, dy)`` (arcsec) moves the telescope pointing by ``dx`` along detector +x
  and ``dy`` along +y, so sources move by ``(-dx, -dy) / plate scale`` pixels.
- Pixel positions from `world_to_pixel` are 0-based numpy (x = column, y = row), the
  convention of ``all_world2pix(..., 0)``.
"""

import math

__all__ = ["dither_offsets", "make_wcs", "pixel_to_world", "wcsinfo_for_pointing", "world_to_pixel"]


def dither_offsets(n, pattern="box", step_arcsec=1.0, seed=0):
    """Return the pointing offsets of a dither pattern.

    Parameters
    ----------
    n : int
        Number of exposures.
    pattern : {'box', 'random'}
        ``box``: a square grid of ``k x k`` positions ``step_arcsec`` apart, centred on
        (0, 0), ``k`` the smallest with ``k^2 >= n``, the first ``n`` positions row by
        row; ``random``: uniform in ``[-step_arcsec, step_arcsec]`` along each axis.
    step_arcsec : float
        Grid step or random half-width (arcsec).
    seed : int
        Seed of the random pattern.

    Returns
    -------
    list of tuple
        ``n`` offsets ``(dx, dy)`` in arcsec along detector +x, +y (`wcsinfo_for_pointing`).
    """
    import numpy as np

    if n < 1:
        raise ValueError(f"a dither pattern needs at least one position, got {n}")
    if pattern == "box":
        side = math.isqrt(n - 1) + 1
        centred = (np.arange(side) - (side - 1) / 2.0) * step_arcsec
        return [(float(centred[index % side]), float(centred[index // side])) for index in range(n)]
    if pattern == "random":
        offsets = np.random.default_rng(seed).uniform(-step_arcsec, step_arcsec, (n, 2))
        return [(float(dx), float(dy)) for dx, dy in offsets]
    raise ValueError(f"dither pattern {pattern!r} is not 'box' or 'random'")


def wcsinfo_for_pointing(pointing, detector_shape, plate_scale, subarray=None, dither_arcsec=(0.0, 0.0)):
    """Return the ``meta.wcsinfo`` values of an exposure.

    Parameters
    ----------
    pointing : tuple of float
        ``(ra, dec, pa)`` in degrees.
    detector_shape : tuple of int
        ``(ny, nx)`` of the full detector.
    plate_scale : float
        Arcsec per pixel.
    subarray : tuple of int, optional
        ``(xstart, ystart, xsize, ysize)`` read out, 1-based starts; full frame if None.
    dither_arcsec : tuple of float
        Pointing offset along detector +x and +y (arcsec).

    Returns
    -------
    dict
        Keys of ``meta.wcsinfo`` (crpix1, crpix2, crval1, ...).
    """
    ra, dec, pa = (float(value) for value in pointing)
    ny, nx = detector_shape
    xstart, ystart = (1, 1) if subarray is None else (int(subarray[0]), int(subarray[1]))
    angle = math.radians(pa)
    cos_pa, sin_pa = math.cos(angle), math.sin(angle)
    scale = plate_scale / 3600.0
    wcsinfo = {
        "crpix1": (nx + 1) / 2.0 - (xstart - 1),
        "crpix2": (ny + 1) / 2.0 - (ystart - 1),
        "crval1": ra % 360.0,
        "crval2": dec,
        "cdelt1": scale,
        "cdelt2": scale,
        "ctype1": "RA---TAN",
        "ctype2": "DEC--TAN",
        "cunit1": "deg",
        "cunit2": "deg",
        "pc1_1": -cos_pa,
        "pc1_2": sin_pa,
        "pc2_1": sin_pa,
        "pc2_2": cos_pa,
        "position_angle": pa,
        "radesys": "ICRS",
    }
    dx, dy = (float(value) for value in dither_arcsec)
    if dx or dy:
        # The new pointing centre is the sky position that sat (dx, dy) arcsec away on the detector.
        x0, y0 = wcsinfo["crpix1"] - 1 + dx / plate_scale, wcsinfo["crpix2"] - 1 + dy / plate_scale
        ra_new, dec_new = pixel_to_world(wcsinfo, x0, y0)
        wcsinfo["crval1"], wcsinfo["crval2"] = float(ra_new) % 360.0, float(dec_new)
    return wcsinfo


def make_wcs(wcsinfo):
    """Build the `astropy.wcs.WCS` described by ``meta.wcsinfo`` values.

    Parameters
    ----------
    wcsinfo : dict or stdatamodels node
        Values with the keys of `wcsinfo_for_pointing`.

    Returns
    -------
    astropy.wcs.WCS
    """
    from astropy.wcs import WCS

    get = wcsinfo.get if isinstance(wcsinfo, dict) else lambda key: getattr(wcsinfo, key)
    header = {
        "NAXIS": 2,
        "CRPIX1": get("crpix1"),
        "CRPIX2": get("crpix2"),
        "CRVAL1": get("crval1"),
        "CRVAL2": get("crval2"),
        "CDELT1": get("cdelt1"),
        "CDELT2": get("cdelt2"),
        "CTYPE1": get("ctype1"),
        "CTYPE2": get("ctype2"),
        "CUNIT1": get("cunit1"),
        "CUNIT2": get("cunit2"),
        "PC1_1": get("pc1_1"),
        "PC1_2": get("pc1_2"),
        "PC2_1": get("pc2_1"),
        "PC2_2": get("pc2_2"),
        "RADESYS": get("radesys"),
    }
    return WCS(header)


def world_to_pixel(wcsinfo, ra, dec):
    """Return 0-based pixel positions ``(x, y)`` of sky positions (deg)."""
    return make_wcs(wcsinfo).all_world2pix(ra, dec, 0)


def pixel_to_world(wcsinfo, x, y):
    """Return sky positions ``(ra, dec)`` (deg) of 0-based pixel positions."""
    return make_wcs(wcsinfo).all_pix2world(x, y, 0)
