"""The WCS of an IFS cube: gwcs and FITS keywords of a regular (x, y, wavelength) grid.

The celestial axes are the imager's TAN projection (`liger_iris_pipeline.assign_wcs.imaging`:
``PC`` from the position angle, CDELT the spaxel scale); the spectral axis is linear in vacuum
wavelength (FITS ``CTYPE3 = 'WAVE'``, ``CUNIT3 = 'um'``; Greisen et al. 2006, FITS WCS paper
III). Cube pixels are 0-based ``(x, y, k)``, numpy order ``(k, y, x)``; plane ``k`` is at
``CRVAL3 + CDELT3 * (k + 1 - CRPIX3)``. jwst keeps the grid of its cubes in ``cube_build``; so
does this package, for the ``cube_build`` step and anything that writes an `IRISCubeModel`.
"""

from ..assign_wcs.imaging import complete_wcsinfo, make_gwcs

__all__ = ["cube_gwcs", "cube_wcs", "cube_wcsinfo", "fits_wcs", "world_frame"]

SPECTRAL_KEYS = ("crpix3", "crval3", "cdelt3", "ctype3", "cunit3", "pc3_3", "specsys")
"""``meta.wcsinfo`` keys of the spectral axis (the celestial ones are the imager's)."""


def cube_wcsinfo(center, spaxel_scale, position_angle, wavelength_start, wavelength_step, shape, specsys="TOPOCENT"):
    """Return the ``meta.wcsinfo`` values of a cube grid.

    Parameters
    ----------
    center : tuple of float
        ``(RA, Dec)`` (deg, ICRS) of the centre of the spatial grid.
    spaxel_scale : float
        Spaxel size (arcsec), along x and y.
    position_angle : float
        Position angle of the cube's +y axis, North through East (deg); 0 is North up, East left.
    wavelength_start : float
        Vacuum wavelength (um) of the centre of plane 0.
    wavelength_step : float
        Wavelength step between planes (um), positive.
    shape : tuple of int
        ``(nwave, ny, nx)``.
    specsys : str
        Standard of rest of the wavelengths (``SPECSYS``).

    Returns
    -------
    dict
        Complete celestial keys (`complete_wcsinfo`) and `SPECTRAL_KEYS`; ``CRPIX1/2`` at the
        centre of the spatial grid, ``CRPIX3 = 1`` at ``wavelength_start``.

    Raises
    ------
    ValueError
        A non-positive scale, wavelength or step, or a shape that is not three positive sizes.
    """
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"a cube shape is (nwave, ny, nx) of positive sizes, got {tuple(shape)}")
    for name, value in (("spaxel scale", spaxel_scale), ("wavelength", wavelength_start), ("step", wavelength_step)):
        if not value > 0:
            raise ValueError(f"the {name} of a cube must be positive, got {value}")
    _, ny, nx = shape
    info = complete_wcsinfo(
        {
            "crpix1": (nx + 1) / 2.0,
            "crpix2": (ny + 1) / 2.0,
            "crval1": float(center[0]) % 360.0,
            "crval2": float(center[1]),
            "position_angle": float(position_angle),
        },
        plate_scale=spaxel_scale,
        name="cube",
    )
    info.update(
        crpix3=1.0,
        crval3=float(wavelength_start),
        cdelt3=float(wavelength_step),
        ctype3="WAVE",
        cunit3="um",
        pc3_3=1.0,
        specsys=specsys,
    )
    return info


def cube_gwcs(wcsinfo, shape):
    """Return the gwcs of a cube's ``meta.wcsinfo`` values.

    Parameters
    ----------
    wcsinfo : dict
        Output of `cube_wcsinfo` (or a cube's ``meta.wcsinfo``, complete).
    shape : tuple of int
        ``(nwave, ny, nx)``; sets the bounding box (voxel edges) and ``array_shape``.

    Returns
    -------
    gwcs.WCS
        ``detector`` (0-based ``x, y, k``) -> ``world`` (RA, Dec in deg, wavelength in um).
    """
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs import wcs

    nwave, ny, nx = shape
    celestial = make_gwcs(wcsinfo, (ny, nx))
    spectral = (
        models.Shift(-(wcsinfo["crpix3"] - 1.0)) | models.Scale(wcsinfo["cdelt3"]) | models.Shift(wcsinfo["crval3"])
    )
    detector = cf.CoordinateFrame(
        naxes=3,
        axes_type=("SPATIAL", "SPATIAL", "SPECTRAL"),
        axes_order=(0, 1, 2),
        axes_names=("x", "y", "k"),
        unit=(u.pix, u.pix, u.pix),
        name="detector",
    )
    world = world_frame(celestial.output_frame.reference_frame)
    result = wcs.WCS([(detector, celestial.forward_transform & spectral), (world, None)])
    result.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5), (-0.5, nwave - 0.5))
    result.array_shape = (nwave, ny, nx)
    return result


def world_frame(reference_frame):
    """Return the ``world`` frame of IFS products: (RA, Dec) in deg in ``reference_frame``, then wavelength in um.

    Parameters
    ----------
    reference_frame : astropy.coordinates.BaseCoordinateFrame
        ICRS or FK5 (the pointing's ``RADESYS``).

    Returns
    -------
    gwcs.coordinate_frames.CompositeFrame
    """
    from astropy import units as u
    from gwcs import coordinate_frames as cf

    sky = cf.CelestialFrame(reference_frame=reference_frame, axes_order=(0, 1), unit=(u.deg, u.deg), name="sky")
    wavelength = cf.SpectralFrame(axes_order=(2,), unit=(u.um,), axes_names=("wavelength",), name="wavelength")
    return cf.CompositeFrame([sky, wavelength], name="world")


def cube_wcs(center, spaxel_scale, position_angle, wavelength_start, wavelength_step, shape, specsys="TOPOCENT"):
    """Return the gwcs and the matching ``meta.wcsinfo`` of a cube grid.

    Parameters
    ----------
    center, spaxel_scale, position_angle, wavelength_start, wavelength_step, shape, specsys
        See `cube_wcsinfo`.

    Returns
    -------
    tuple
        ``(gwcs.WCS, wcsinfo dict)``: store them in ``meta.wcs`` and ``meta.wcsinfo`` of an
        `IRISCubeModel`, which writes the keywords to its SCI header.
    """
    info = cube_wcsinfo(center, spaxel_scale, position_angle, wavelength_start, wavelength_step, shape, specsys)
    return cube_gwcs(info, shape), info


def fits_wcs(wcsinfo):
    """Return the `astropy.wcs.WCS` the SCI header of a cube with these ``meta.wcsinfo`` values has.

    Parameters
    ----------
    wcsinfo : dict
        A cube's complete ``meta.wcsinfo`` values.

    Returns
    -------
    astropy.wcs.WCS
        Three axes: RA, Dec (deg), wavelength (um).
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header()
    header["WCSAXES"] = 3
    for key, value in wcsinfo.items():
        if key not in ("position_angle", "sip_max_error"):
            header[key.upper()] = value
    header.setdefault("CUNIT1", "deg")
    header.setdefault("CUNIT2", "deg")
    return WCS(header)
