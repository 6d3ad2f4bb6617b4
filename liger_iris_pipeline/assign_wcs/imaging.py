"""Imager WCS from the pointing metadata (``meta.wcsinfo``), without stpipe.

The gwcs pipeline is the FITS WCS of the same keywords (Calabretta & Greisen 2002), term by
term, on 0-based pixel positions (numpy ``x = column, y = row``):

1. ``Shift(-(CRPIX1 - 1)) & Shift(-(CRPIX2 - 1))``: FITS pixel ``CRPIX`` is 1-based, so the
   reference pixel is ``(CRPIX1 - 1, CRPIX2 - 1)`` in 0-based positions;
2. ``AffineTransformation2D(diag(CDELT) @ PC)``: rotation, parity and scale to intermediate
   world coordinates (deg);
3. ``Pix2Sky_TAN``: the gnomonic projection;
4. ``RotateNative2Celestial(CRVAL1, CRVAL2, LONPOLE = 180)``: the native pole of a zenithal
   projection at the reference point.

Conventions of the pointing (shared with the simulator): ``PC = [[-cos PA, sin PA], [sin PA,
cos PA]]`` puts detector +y at position angle PA (North through East) with East to the left at
PA = 0. When the PC keywords are present they define the WCS; PA is checked against them.
"""

import math

import numpy as np

from ..lib.models import model_name

__all__ = ["WcsInfoError", "assign_wcs", "complete_wcsinfo", "make_gwcs", "pc_matrix"]

_PC_KEYS = ("pc1_1", "pc1_2", "pc2_1", "pc2_2")
_TOLERANCE = 1.0e-9
"""Agreement required between the PC matrix and the position angle."""


class WcsInfoError(ValueError):
    """The pointing metadata cannot define a WCS, or contradicts itself."""


def pc_matrix(position_angle):
    """Return the PC matrix of a position angle (rotation and sky parity).

    Parameters
    ----------
    position_angle : float
        Detector +y from North through East (deg).

    Returns
    -------
    numpy.ndarray
        (2, 2): ``[[-cos PA, sin PA], [sin PA, cos PA]]``.
    """
    angle = math.radians(position_angle)
    return np.array([[-math.cos(angle), math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def complete_wcsinfo(wcsinfo, plate_scale=None, name="frame"):
    """Return a complete, self-consistent set of ``meta.wcsinfo`` values.

    Parameters
    ----------
    wcsinfo : dict
        Values present in ``meta.wcsinfo`` (lower-case keys, None or absent when unset).
        CRPIX1/2 and CRVAL1/2 are required.
    plate_scale : float, optional
        Arcsec per pixel (``meta.instrument.plate_scale``), used when CDELT1/2 are absent.
    name : str
        The model, for messages.

    Returns
    -------
    dict
        All of crpix1/2, crval1/2, cdelt1/2, ctype1/2, cunit1/2, pc1_1..pc2_2, radesys, and
        position_angle when the PC matrix has the pointing convention's form.

    Raises
    ------
    WcsInfoError
        A required value is missing, the projection or units are not supported, or the PC
        matrix contradicts the position angle.
    """
    info = {key: value for key, value in wcsinfo.items() if value is not None}
    missing = [key for key in ("crpix1", "crpix2", "crval1", "crval2") if key not in info]
    if missing:
        raise WcsInfoError(f"{name}: meta.wcsinfo lacks {', '.join(key.upper() for key in missing)}")
    for axis in ("1", "2"):
        if "cdelt" + axis not in info:
            if plate_scale is None:
                raise WcsInfoError(f"{name}: no CDELT{axis} and no plate scale (PIXSCALE) to derive it from")
            info["cdelt" + axis] = plate_scale / 3600.0
        info.setdefault("cunit" + axis, "deg")
        if info["cunit" + axis] != "deg":
            raise WcsInfoError(f"{name}: CUNIT{axis} = {info['cunit' + axis]!r}; only 'deg' is supported")
    info.setdefault("ctype1", "RA---TAN")
    info.setdefault("ctype2", "DEC--TAN")
    if (info["ctype1"], info["ctype2"]) != ("RA---TAN", "DEC--TAN"):
        raise WcsInfoError(
            f"{name}: CTYPE1/2 = {info['ctype1']}/{info['ctype2']}; only the TAN projection (RA---TAN, DEC--TAN) "
            "is supported"
        )
    info.setdefault("radesys", "ICRS")

    has_pc = all(key in info for key in _PC_KEYS)
    if has_pc:
        pc = np.array([[info["pc1_1"], info["pc1_2"]], [info["pc2_1"], info["pc2_2"]]])
        convention_pa = math.degrees(math.atan2(pc[0, 1], pc[1, 1]))
        if "position_angle" in info:
            if not np.allclose(pc, pc_matrix(info["position_angle"]), rtol=0, atol=_TOLERANCE):
                raise WcsInfoError(
                    f"{name}: the PC matrix {pc.tolist()} does not match the position angle "
                    f"PA_APER = {info['position_angle']} deg"
                )
        elif np.allclose(pc, pc_matrix(convention_pa), rtol=0, atol=_TOLERANCE):
            info["position_angle"] = convention_pa
    elif "position_angle" in info:
        pc = pc_matrix(info["position_angle"])
        info.update({key: float(value) for key, value in zip(_PC_KEYS, pc.ravel(), strict=True)})
    else:
        raise WcsInfoError(f"{name}: meta.wcsinfo has neither the PC matrix nor a position angle (PA_APER)")
    return info


def make_gwcs(wcsinfo, shape):
    """Build the gwcs of complete ``meta.wcsinfo`` values.

    Parameters
    ----------
    wcsinfo : dict
        Output of `complete_wcsinfo`.
    shape : tuple of int
        ``(ny, nx)`` of the frame; sets the bounding box (pixel edges).

    Returns
    -------
    gwcs.WCS
        ``detector`` (0-based pixels) -> ``world`` (celestial frame of RADESYS, deg).
    """
    from astropy import coordinates
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs import wcs

    pc = np.array([[wcsinfo["pc1_1"], wcsinfo["pc1_2"]], [wcsinfo["pc2_1"], wcsinfo["pc2_2"]]])
    matrix = np.array([[wcsinfo["cdelt1"]], [wcsinfo["cdelt2"]]]) * pc
    transform = (
        (models.Shift(-(wcsinfo["crpix1"] - 1.0)) & models.Shift(-(wcsinfo["crpix2"] - 1.0)))
        | models.AffineTransformation2D(matrix=matrix, translation=[0.0, 0.0])
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(wcsinfo["crval1"], wcsinfo["crval2"], 180.0)
    )
    reference_frame = coordinates.ICRS() if wcsinfo["radesys"] == "ICRS" else coordinates.FK5(equinox="J2000")
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(reference_frame=reference_frame, name="world", unit=(u.deg, u.deg))
    result = wcs.WCS([(detector, transform), (world, None)])
    ny, nx = shape
    result.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return result


def assign_wcs(model):
    """Complete ``meta.wcsinfo`` and store the gwcs in ``meta.wcs``, in place.

    Parameters
    ----------
    model : IRISImageModel
        A frame with pointing metadata; a subarray's CRPIX is relative to its own first pixel.

    Raises
    ------
    WcsInfoError
        See `complete_wcsinfo`.
    """
    info = complete_wcsinfo(dict(model.meta.wcsinfo.instance), model.meta.instrument.plate_scale, model_name(model))
    model.meta.wcsinfo = info
    model.meta.wcs = make_gwcs(info, model.data.shape)
