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

With a ``distortion`` reference (``docs/level3_design.rst``) the pipeline has an intermediate
frame: ``detector`` (the frame's 0-based pixels) -> subarray offset -> distortion polynomials
-> ``focal`` (undistorted full-frame pixels) -> the TAN pipeline above -> ``world``. The FITS
header then carries a SIP approximation of the whole (`update_fits_wcsinfo`), as jwst's
assign_wcs writes one: ``CTYPE = RA---TAN-SIP``, the PC matrix of the fitted linear part and
the ``A_p_q, B_p_q, AP_p_q, BP_p_q`` polynomials in the SCI header; ``meta.wcsinfo``'s
position angle keeps the nominal rotation, from which a re-run rebuilds the TAN part.
"""

import math

import numpy as np

from ..lib.models import model_name

__all__ = [
    "WcsInfoError",
    "assign_wcs",
    "complete_wcsinfo",
    "distortion_transform",
    "make_gwcs",
    "pc_matrix",
    "update_fits_wcsinfo",
]

_SIP_PREFIXES = ("A_", "B_", "AP_", "BP_")
"""Header keywords of the SIP polynomials (A_ORDER, A_0_2, ..., BP_ORDER, BP_3_0)."""

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
    info.pop("sip_max_error", None)
    if str(info.get("ctype1", "")).endswith("-SIP") or str(info.get("ctype2", "")).endswith("-SIP"):
        # A header written with a distortion: its PC matrix is the SIP fit's linear part, the
        # nominal TAN rotation is the position angle's.
        if "position_angle" not in info:
            raise WcsInfoError(f"{name}: a SIP header (CTYPE ...-TAN-SIP) without PA_APER: the nominal WCS is unknown")
        info["ctype1"], info["ctype2"] = info["ctype1"].removesuffix("-SIP"), info["ctype2"].removesuffix("-SIP")
        for key in _PC_KEYS:
            info.pop(key, None)
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


def make_gwcs(wcsinfo, shape, distortion=None, offset=(0, 0)):
    """Build the gwcs of complete ``meta.wcsinfo`` values.

    Parameters
    ----------
    wcsinfo : dict
        Output of `complete_wcsinfo`.
    shape : tuple of int
        ``(ny, nx)`` of the frame; sets the bounding box (pixel edges).
    distortion : astropy.modeling.Model, optional
        Full-frame detector pixels -> undistorted focal-plane pixels, with its inverse
        (`distortion_transform`); None: the frame is undistorted.
    offset : tuple of int
        ``(SUBSTRT1 - 1, SUBSTRT2 - 1)``: the frame's first pixel on the full frame.

    Returns
    -------
    gwcs.WCS
        ``detector`` (0-based pixels) -> [``focal``] -> ``world`` (celestial frame of RADESYS, deg).
    """
    from astropy import coordinates
    from astropy import units as u
    from astropy.modeling import models
    from gwcs import coordinate_frames as cf
    from gwcs import wcs

    pc = np.array([[wcsinfo["pc1_1"], wcsinfo["pc1_2"]], [wcsinfo["pc2_1"], wcsinfo["pc2_2"]]])
    matrix = np.array([[wcsinfo["cdelt1"]], [wcsinfo["cdelt2"]]]) * pc
    tangent_plane = (
        (models.Shift(-(wcsinfo["crpix1"] - 1.0)) & models.Shift(-(wcsinfo["crpix2"] - 1.0)))
        | models.AffineTransformation2D(matrix=matrix, translation=[0.0, 0.0])
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(wcsinfo["crval1"], wcsinfo["crval2"], 180.0)
    )
    reference_frame = coordinates.ICRS() if wcsinfo["radesys"] == "ICRS" else coordinates.FK5(equinox="J2000")
    detector = cf.Frame2D(name="detector", axes_order=(0, 1), unit=(u.pix, u.pix))
    world = cf.CelestialFrame(reference_frame=reference_frame, name="world", unit=(u.deg, u.deg))
    if distortion is None:
        pipeline = [(detector, tangent_plane), (world, None)]
    else:
        # CRPIX is relative to the frame's first pixel; the focal plane is full-frame.
        to_full = models.Shift(float(offset[0])) & models.Shift(float(offset[1]))
        from_full = models.Shift(-float(offset[0])) & models.Shift(-float(offset[1]))
        focal = cf.Frame2D(name="focal", axes_order=(0, 1), unit=(u.pix, u.pix))
        pipeline = [(detector, to_full | distortion), (focal, from_full | tangent_plane), (world, None)]
    result = wcs.WCS(pipeline)
    ny, nx = shape
    result.bounding_box = ((-0.5, nx - 0.5), (-0.5, ny - 0.5))
    return result


def _polynomial(matrix, name):
    """Polynomial2D of a coefficient matrix ``c[i, j]`` of ``s^i t^j``."""
    from astropy.modeling import models

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or not np.isfinite(matrix).all():
        raise WcsInfoError(f"{name}: a square, finite coefficient matrix is expected, got shape {matrix.shape}")
    degree = matrix.shape[0] - 1
    total = np.add.outer(np.arange(degree + 1), np.arange(degree + 1))
    if np.any(matrix[total > degree] != 0):
        raise WcsInfoError(f"{name}: terms of total degree above {degree} (c[i, j] with i + j > {degree})")
    coefficients = {f"c{i}_{j}": matrix[i, j] for i in range(degree + 1) for j in range(degree + 1 - i)}
    return models.Polynomial2D(degree, **coefficients)


def _corrected(cx, cy, scale, matrix_x, matrix_y, name):
    """``(x, y) -> (x + Px(s, t), y + Py(s, t))`` with ``s, t = (x - cx) / scale, (y - cy) / scale``."""
    from astropy.modeling import models

    normalise = (models.Shift(-cx) | models.Scale(1.0 / scale)) & (models.Shift(-cy) | models.Scale(1.0 / scale))
    along_x = models.Mapping((0,), n_inputs=2) + (normalise | _polynomial(matrix_x, name))
    along_y = models.Mapping((1,), n_inputs=2) + (normalise | _polynomial(matrix_y, name))
    return models.Mapping((0, 1, 0, 1)) | (along_x & along_y)


def distortion_transform(reference):
    """Return the distortion of a reference as a model with its inverse.

    Parameters
    ----------
    reference : TMTDistortionModel
        The ``distortion`` reference (``COEFF_X/Y``, ``ICOEFF_X/Y``, ``DIS_CX/CY/SCL``).

    Returns
    -------
    astropy.modeling.Model
        Full-frame detector pixels -> undistorted focal-plane pixels; ``.inverse`` the other way.

    Raises
    ------
    WcsInfoError
        The reference lacks its normalisation or has malformed coefficients.
    """
    name = model_name(reference)
    info = reference.meta.distortion
    if info.center_x is None or info.center_y is None or not (info.scale or 0) > 0:
        raise WcsInfoError(f"{name}: the distortion reference lacks DIS_CX, DIS_CY or a positive DIS_SCL")
    cx, cy, scale = float(info.center_x), float(info.center_y), float(info.scale)
    forward = _corrected(cx, cy, scale, reference.coeffs_x, reference.coeffs_y, name)
    forward.inverse = _corrected(cx, cy, scale, reference.inverse_coeffs_x, reference.inverse_coeffs_y, name)
    forward.name = "distortion"
    return forward


def assign_wcs(model, distortion=None, sip_degree=None, sip_max_pix_error=0.001, sip_npoints=32):
    """Complete ``meta.wcsinfo`` and store the gwcs in ``meta.wcs``, in place.

    Parameters
    ----------
    model : IRISImageModel
        A frame with pointing metadata; a subarray's CRPIX is relative to its own first pixel.
    distortion : TMTDistortionModel, optional
        The ``distortion`` reference; None: a pure TAN WCS (and no SIP keywords).
    sip_degree, sip_max_pix_error, sip_npoints
        See `update_fits_wcsinfo`.

    Returns
    -------
    float or None
        The largest SIP-vs-gwcs difference over the frame (pixels), None without distortion.

    Raises
    ------
    WcsInfoError
        See `complete_wcsinfo`; a malformed distortion reference.
    """
    from ..lib.subarray import subarray_bounds

    info = complete_wcsinfo(dict(model.meta.wcsinfo.instance), model.meta.instrument.plate_scale, model_name(model))
    model.meta.wcsinfo = info
    _remove_sip_cards(model)
    if distortion is None:
        model.meta.wcs = make_gwcs(info, model.data.shape)
        return None
    xstart, ystart, _, _ = subarray_bounds(model)
    model.meta.wcs = make_gwcs(info, model.data.shape, distortion_transform(distortion), (xstart - 1, ystart - 1))
    return update_fits_wcsinfo(model, sip_degree, sip_max_pix_error, sip_npoints)


def update_fits_wcsinfo(model, degree=None, max_pix_error=0.001, npoints=32):
    """Write a SIP approximation of the frame's gwcs into its FITS WCS keywords.

    ``gwcs.WCS.to_fits_sip`` fits the SIP polynomials about the nominal CRPIX over the frame;
    ``meta.wcsinfo`` gets ``CTYPE = RA---TAN-SIP`` and the fitted PC matrix (CDELT kept), the
    SCI header the ``A_p_q, B_p_q, AP_p_q, BP_p_q`` polynomials, and ``SIPMXERR`` the largest
    difference between the header WCS (as astropy.wcs reads it) and the gwcs over the frame.

    Parameters
    ----------
    model : IRISImageModel
        A frame with its gwcs (``meta.wcs``) and complete ``meta.wcsinfo``.
    degree : int, optional
        SIP degree; None: the lowest (up to 9) that meets `max_pix_error`.
    max_pix_error : float
        Accuracy asked of the SIP fit, forward and inverse (pixels).
    npoints : int
        Fit grid points along each axis.

    Returns
    -------
    float
        The largest SIP-vs-gwcs difference over the frame (pixels).
    """
    info = dict(model.meta.wcsinfo.instance)
    gwcs = model.meta.wcs
    header = gwcs.to_fits_sip(
        max_pix_error=max_pix_error,
        degree=degree,
        max_inv_pix_error=max_pix_error,
        inv_degree=degree,
        npoints=npoints,
        crpix=[info["crpix1"], info["crpix2"]],
    )
    cd = np.array([[header["CD1_1"], header["CD1_2"]], [header["CD2_1"], header["CD2_2"]]])
    pc = cd / np.array([[info["cdelt1"]], [info["cdelt2"]]])
    info.update(
        ctype1=header["CTYPE1"],
        ctype2=header["CTYPE2"],
        crval1=float(header["CRVAL1"]),
        crval2=float(header["CRVAL2"]),
        **{key: float(value) for key, value in zip(_PC_KEYS, pc.ravel(), strict=True)},
    )
    cards = [(key, header[key], header.comments[key]) for key in header if key.startswith(_SIP_PREFIXES)]
    # Cards outside the schema go to the SCI header through stdatamodels' extra_fits (read back there too).
    sci = model.instance.setdefault("extra_fits", {}).setdefault("SCI", {})
    sci["header"] = [list(card) for card in sci.get("header", [])] + [list(card) for card in cards]
    info["sip_max_error"] = sip_difference(gwcs, _header_wcs(info, cards), model.data.shape)
    model.meta.wcsinfo = info
    return info["sip_max_error"]


def _header_wcs(info, cards):
    """astropy.wcs.WCS of the FITS keywords ``meta.wcsinfo`` and the SIP cards write."""
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.Header()
    header["NAXIS"] = 2
    for key in ("crpix1", "crpix2", "crval1", "crval2", "cdelt1", "cdelt2", "ctype1", "ctype2", "cunit1", "cunit2",
                *_PC_KEYS, "radesys"):  # fmt: skip
        header[key.upper()] = info[key]
    for key, value, _ in cards:
        header[key] = value
    return WCS(header)


def sip_difference(gwcs, header_wcs, shape, npoints=65):
    """Return the largest distance (pixels) between two WCSs' sky positions over a frame.

    Parameters
    ----------
    gwcs : gwcs.WCS
        The frame's WCS.
    header_wcs : astropy.wcs.WCS
        Its FITS approximation.
    shape : tuple of int
        ``(ny, nx)``.
    npoints : int
        Grid points along each axis (the frame's edges and corners included).

    Returns
    -------
    float
        In pixels of the header's nominal scale.
    """
    ny, nx = shape
    x, y = np.meshgrid(np.linspace(-0.5, nx - 0.5, npoints), np.linspace(-0.5, ny - 0.5, npoints))
    ra, dec = gwcs(x, y, with_bounding_box=False)
    ra_header, dec_header = header_wcs.all_pix2world(x, y, 0)
    dra = (ra_header - ra + 180.0) % 360.0 - 180.0
    separation = np.hypot(dra * np.cos(np.radians(dec)), dec_header - dec)
    from astropy.wcs.utils import proj_plane_pixel_area

    scale = float(np.sqrt(proj_plane_pixel_area(header_wcs)))
    return float(separation.max() / scale)


def _remove_sip_cards(model):
    """Drop SIP polynomial cards a previous run left in the SCI header."""
    sci = model.instance.get("extra_fits", {}).get("SCI", {})
    if "header" in sci:
        sci["header"] = [list(card) for card in sci["header"] if not str(card[0]).startswith(_SIP_PREFIXES)]
