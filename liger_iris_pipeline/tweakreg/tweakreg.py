"""Source detection and WCS alignment of calibrated frames, without stpipe.

Detection is photutils' ``DAOStarFinder`` or ``IRAFStarFinder`` on the frame minus its
sigma-clipped median sky, DQ-flagged and non-finite pixels masked. Alignment is tweakwcs, driven
by ``stcal.tweakreg`` (the functions jwst's tweakreg calls): ``relative_align`` matches the
frames' catalogs to each other, ``absolute_align`` to a reference catalog.

tweakwcs' gwcs corrector (``JWSTWCSCorrector``) corrects a gwcs in its ``v2v3`` frame
(telescope angles, arcsec). Our frames' gwcs have no such frame (``detector`` -> [``focal``]
-> ``world``), so each frame gets a stand-in for the fit (`_alignment_wcs`): ``detector`` ->
``v2v3`` -> ``world`` whose ``v2v3`` is the gnomonic projection (standard coordinates, arcsec,
East and North) about the frame's reference point. The tangent-plane correction tweakwcs fits
there is then appended to the last transform of the frame's own gwcs (`_corrected_wcs`): the
frames keep their names and any distortion, whatever gwcs they carry.
"""

import copy
import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from .. import dqflags

__all__ = ["AlignmentResult", "align_frames", "detect_sources", "header_from_gwcs"]

log = logging.getLogger(__name__)

_ARCSEC_TO_MAS = 1000.0


def detect_sources(
    data,
    dq=None,
    *,
    kernel_fwhm=3.9,
    snr_threshold=10.0,
    starfinder="dao",
    brightest=500,
    sharplo=0.2,
    sharphi=1.0,
    roundlo=-1.0,
    roundhi=1.0,
    bad_flags="DO_NOT_USE",
):
    """Detect point sources in a frame.

    Parameters
    ----------
    data : numpy.ndarray
        The frame (any unit; the sky need not be subtracted).
    dq : numpy.ndarray, optional
        Its DQ flags; pixels with any of ``bad_flags`` are masked.
    kernel_fwhm : float
        FWHM of the star finder's Gaussian kernel (pixels): about the PSF's.
    snr_threshold : float
        Detection threshold in units of the sky noise (sigma-clipped standard deviation).
    starfinder : {'dao', 'iraf'}
        photutils' ``DAOStarFinder`` or ``IRAFStarFinder``.
    brightest : int
        Keep that many of the brightest sources (None: all).
    sharplo, sharphi, roundlo, roundhi : float
        Shape limits of the star finder (reject cosmic rays and extended sources).
    bad_flags : str or int
        DQ flags of pixels to ignore.

    Returns
    -------
    astropy.table.Table
        ``x, y`` (0-based pixels), ``flux`` (sky-subtracted, the finder's), sorted by decreasing flux.
    """
    from astropy.stats import sigma_clipped_stats
    from astropy.table import Table
    from photutils.detection import DAOStarFinder, IRAFStarFinder
    from photutils.utils.exceptions import NoDetectionsWarning

    mask = ~np.isfinite(data)
    if dq is not None:
        bits = bad_flags if isinstance(bad_flags, int) else dqflags.names_to_flags(bad_flags)
        mask |= (dq & bits) != 0
    if mask.all():
        return Table({"x": [], "y": [], "flux": []}, dtype=[float, float, float])
    # The sky statistics need no more than ~2.5e5 pixels (the noise to 0.3 %): a regular subsample is
    # as good and much faster.
    stride = max(1, int(math.sqrt(data.size / 2.5e5)))
    _, median, std = sigma_clipped_stats(
        data[::stride, ::stride], mask=mask[::stride, ::stride], sigma=3.0, maxiters=10
    )
    if not std > 0:
        return Table({"x": [], "y": [], "flux": []}, dtype=[float, float, float])
    finders = {"dao": DAOStarFinder, "iraf": IRAFStarFinder}
    if starfinder not in finders:
        raise ValueError(f"starfinder {starfinder!r}: use 'dao' or 'iraf'")
    finder = finders[starfinder](
        threshold=snr_threshold * std,
        fwhm=kernel_fwhm,
        n_brightest=brightest,
        sharpness_range=(sharplo, sharphi),
        roundness_range=(roundlo, roundhi),
        exclude_border=True,
    )
    # Masked pixels are set to the sky so that no source is found on (or centred by) them.
    sky = np.float32(median)  # float32 arithmetic: a full frame's working copy stays at 64 MB
    image = np.where(mask, sky, data).astype(np.float32, copy=False) - sky
    with warnings.catch_warnings():
        # No source is an answer here (the caller decides what too few means), not a warning.
        warnings.simplefilter("ignore", NoDetectionsWarning)
        sources = finder(image, mask=mask)
    if sources is None:
        return Table({"x": [], "y": [], "flux": []}, dtype=[float, float, float])
    table = Table(
        {
            "x": np.asarray(sources["x_centroid"], dtype=float),
            "y": np.asarray(sources["y_centroid"], dtype=float),
            "flux": np.asarray(sources["flux"], dtype=float),
        }
    )
    table.sort("flux", reverse=True)
    return table


@dataclass
class AlignmentResult:
    """The outcome of the alignment for one frame.

    Attributes
    ----------
    wcs : gwcs.WCS or None
        The corrected gwcs, or None when the frame keeps its original WCS.
    status : str
        ``COMPLETE`` (corrected, or the reference of the relative alignment) or ``SKIPPED``.
    reference : str
        What the frame was aligned to: ``relative``, the reference catalog's name, or ``none``.
    n_sources : int
        Sources detected in the frame.
    n_matched : int
        Sources used by the last successful fit of its group (0 when none).
    rms_mas : float
        RMS of that fit's residuals (mas), NaN when none.
    shift_mas : tuple of float
        Total correction at the frame's reference point (mas, East and North).
    rotation_deg : float
        Rotation of the correction (deg).
    scale : float
        Scale of the correction.
    reason : str
        Why the frame was skipped (empty otherwise).
    """

    wcs: object = None
    status: str = "SKIPPED"
    reference: str = "none"
    n_sources: int = 0
    n_matched: int = 0
    rms_mas: float = math.nan
    shift_mas: tuple = (0.0, 0.0)
    rotation_deg: float = 0.0
    scale: float = 1.0
    reason: str = ""
    fit_info: dict = field(default_factory=dict, repr=False)


def _alignment_wcs(wcs, reference_point):
    """The frame's gwcs as ``detector`` -> ``v2v3`` -> ``world`` for tweakwcs' gwcs corrector.

    ``v2v3`` is the gnomonic projection about ``reference_point`` (arcsec, East and North).
    """
    from astropy import units as u
    from gwcs import coordinate_frames as cf
    from gwcs import wcs as gwcs_wcs

    to_plane, from_plane = _standard_coordinates(reference_point)
    detector = copy.deepcopy(wcs.input_frame)
    world = copy.deepcopy(wcs.output_frame)
    v2v3 = cf.Frame2D(name="v2v3", axes_order=(0, 1), unit=(u.arcsec, u.arcsec), axes_names=("v2", "v3"))
    forward = wcs.forward_transform | to_plane
    forward.inverse = from_plane | wcs.backward_transform
    stand_in = gwcs_wcs.WCS([(detector, forward), (v2v3, from_plane), (world, None)])
    stand_in.bounding_box = wcs.bounding_box
    return stand_in


def _standard_coordinates(reference_point):
    """Transforms sky (deg) <-> standard coordinates (arcsec, East and North) about ``reference_point``."""
    from astropy.modeling import models

    ra0, dec0 = reference_point
    # RotateCelestial2Native with LONPOLE 180 then Pix2Sky's plane: x points West; flip it to East.
    to_plane = (
        models.RotateCelestial2Native(ra0, dec0, 180.0)
        | models.Sky2Pix_TAN()
        | (models.Scale(-3600.0) & models.Scale(3600.0))
    )
    from_plane = (
        (models.Scale(-1.0 / 3600.0) & models.Scale(1.0 / 3600.0))
        | models.Pix2Sky_TAN()
        | models.RotateNative2Celestial(ra0, dec0, 180.0)
    )
    to_plane.inverse = from_plane
    from_plane.inverse = to_plane
    return to_plane, from_plane


def _corrected_wcs(wcs, stand_in, reference_point):
    """Append the correction tweakwcs put in ``stand_in`` (``v2v3`` -> ``v2v3corr``) to the frame's gwcs."""
    if "v2v3corr" not in stand_in.available_frames:
        return None
    correction = stand_in.get_transform("v2v3", "v2v3corr")
    to_plane, from_plane = _standard_coordinates(reference_point)
    corrected = copy.deepcopy(wcs)
    steps = corrected.pipeline
    last = steps[-2]
    transform = last.transform | to_plane | correction | from_plane
    transform.inverse = to_plane | correction.inverse | from_plane | last.transform.inverse
    steps[-2] = type(last)(last.frame, transform)
    result = type(wcs)(steps)
    result.bounding_box = wcs.bounding_box
    return result


def align_frames(
    frames,
    *,
    fitgeometry="rshift",
    minobj=15,
    searchrad=0.25,
    separation=0.05,
    tolerance=0.02,
    use2dhist=True,
    nclip=3,
    sigma=3.0,
    abs_refcat=None,
    abs_fitgeometry="rshift",
    abs_minobj=15,
    abs_searchrad=0.25,
    abs_separation=0.05,
    abs_tolerance=0.02,
    abs_use2dhist=True,
    abs_nclip=3,
    abs_sigma=3.0,
):
    """Align frames to each other and, with ``abs_refcat``, to a reference catalog.

    Parameters
    ----------
    frames : list of dict
        Per frame: ``name``, ``wcs`` (gwcs, detector -> world), ``catalog`` (`detect_sources`),
        ``group_id`` (frames of one exposure move together) and ``reference_point`` ((ra, dec),
        deg: where its tangent plane touches the sky, e.g. CRVAL).
    fitgeometry : {'shift', 'rshift', 'rscale', 'general'}
        Correction fitted to each group in the relative alignment.
    minobj : int
        Fewest matched sources a fit needs; a frame with fewer detected sources keeps its WCS.
    searchrad, separation, tolerance : float
        tweakwcs' ``XYXYMatch`` parameters (arcsec): search radius of the 2D histogram, smallest
        separation between sources of one catalog, matching tolerance.
    use2dhist : bool
        Find the initial offset with a 2D histogram of the pairwise offsets.
    nclip, sigma : int, float
        Clipping iterations and their threshold (in rms) of the fit.
    abs_refcat : str, optional
        Reference catalog file (ECSV or any astropy-readable table with ``ra, dec`` in deg).
    abs_fitgeometry, abs_minobj, abs_searchrad, abs_separation, abs_tolerance, abs_use2dhist, abs_nclip, abs_sigma
        The same parameters for the alignment to ``abs_refcat``.

    Returns
    -------
    list of AlignmentResult
        One per frame, in order.
    """
    from stcal.tweakreg.tweakreg import (
        TweakregError,
        absolute_align,
        construct_wcs_corrector,
        relative_align,
    )

    results = [AlignmentResult(n_sources=len(frame["catalog"])) for frame in frames]
    usable = []
    for index, frame in enumerate(frames):
        if len(frame["catalog"]) < minobj:
            results[index].reason = f"{len(frame['catalog'])} sources detected, fewer than minobj={minobj}"
            log.warning("%s: %s; it keeps its original WCS", frame["name"], results[index].reason)
            continue
        stand_in = _alignment_wcs(frame["wcs"], frame["reference_point"])
        catalog = frame["catalog"].copy()
        catalog.meta["name"] = frame["name"]
        corrector = construct_wcs_corrector(
            stand_in, {"v2_ref": 0.0, "v3_ref": 0.0, "roll_ref": 0.0}, catalog, str(frame["group_id"])
        )
        usable.append((index, corrector))
    if not usable:
        return results
    correctors = [corrector for _, corrector in usable]

    aligned_relative = False
    if len({frames[index]["group_id"] for index, _ in usable}) > 1:
        try:
            relative_align(
                correctors,
                searchrad=searchrad,
                separation=separation,
                use2dhist=use2dhist,
                tolerance=tolerance,
                minobj=minobj,
                fitgeometry=fitgeometry,
                nclip=nclip,
                sigma=sigma,
            )
            aligned_relative = True
        except (TweakregError, ValueError, RuntimeError) as exc:
            log.warning("Relative alignment failed (%s); the frames keep their original WCS", _one_line(exc))
            for corrector in correctors:
                corrector.meta.pop("fit_info", None)
                _reset(corrector)
        else:
            for index, corrector in usable:
                _record(results[index], corrector, "relative")
    else:
        log.info("One exposure group: no relative alignment")

    if abs_refcat and aligned_relative:
        # A frame whose relative fit failed is off by its whole pointing error: fitted with the
        # others as one group it would spoil the match of all; it keeps its original WCS.
        usable = [(index, corrector) for index, corrector in usable if results[index].status == "COMPLETE"]
        correctors = [corrector for _, corrector in usable]
    if abs_refcat and usable:
        relative_state = [copy.deepcopy(corrector) for corrector in correctors]
        try:
            absolute_align(
                correctors,
                str(abs_refcat),
                ref_wcs=None,
                ref_wcsinfo=None,
                epoch=None,
                abs_searchrad=abs_searchrad,
                abs_separation=abs_separation,
                abs_use2dhist=abs_use2dhist,
                abs_tolerance=abs_tolerance,
                abs_minobj=abs_minobj,
                abs_fitgeometry=abs_fitgeometry,
                abs_nclip=abs_nclip,
                abs_sigma=abs_sigma,
            )
            failed = [
                frames[index]["name"]
                for index, corrector in usable
                if corrector.meta.get("fit_info", {}).get("status") != "SUCCESS"
            ]
            if failed:
                raise TweakregError(f"no fit to the catalog for {', '.join(failed)}")
        except (TweakregError, ValueError, RuntimeError, KeyError) as exc:
            fallback = "the relative alignment" if aligned_relative else "their original WCS"
            log.warning(
                "Alignment to the reference catalog %s failed (%s); the frames keep %s",
                abs_refcat,
                _one_line(exc),
                fallback,
            )
            correctors[:] = relative_state
            usable = [(index, corrector) for (index, _), corrector in zip(usable, relative_state, strict=True)]
        else:
            from pathlib import Path

            for index, corrector in usable:
                _record(results[index], corrector, Path(str(abs_refcat)).name)

    for index, corrector in usable:
        result = results[index]
        if result.status != "COMPLETE":
            continue
        frame = frames[index]
        result.wcs = _corrected_wcs(frame["wcs"], corrector.wcs, frame["reference_point"])
        if result.wcs is not None:
            result.shift_mas = _total_shift_mas(frame["wcs"], result.wcs, frame["reference_point"])
    for index, _ in usable:
        if results[index].status == "SKIPPED" and not results[index].reason:
            results[index].reason = "no alignment succeeded"
            log.warning("%s: no alignment succeeded; it keeps its original WCS", frames[index]["name"])
    return results


def _total_shift_mas(original, corrected, reference_point):
    """Sky offset (mas, East and North) of the corrected WCS from the original at the reference point."""
    x, y = original.invert(*reference_point, with_bounding_box=False)
    ra, dec = corrected(x, y, with_bounding_box=False)
    ra0, dec0 = reference_point
    east = ((ra - ra0 + 180.0) % 360.0 - 180.0) * math.cos(math.radians(dec0)) * 3.6e6
    return (float(east), float((dec - dec0) * 3.6e6))


def _reset(corrector):
    """Undo a corrector's correction (after a failed relative alignment)."""
    corrector._wcs = copy.deepcopy(corrector.original_wcs)


def _record(result, corrector, reference):
    """Copy a corrector's fit information into ``result``."""
    info = corrector.meta.get("fit_info", {})
    status = info.get("status")
    if status == "SUCCESS":
        result.status = "COMPLETE"
        result.reference = reference
        result.reason = ""
        result.n_matched = int(info.get("nmatches", 0))
        result.rms_mas = float(info.get("rmse", math.nan)) * _ARCSEC_TO_MAS
        shift = np.asarray(info.get("shift", (0.0, 0.0)), dtype=float)
        result.shift_mas = (float(shift[0]) * _ARCSEC_TO_MAS, float(shift[1]) * _ARCSEC_TO_MAS)
        rotation = info.get("proper_rot", info.get("rot", 0.0))
        result.rotation_deg = float(np.mean(rotation))
        result.scale = float(np.mean(info.get("scale", 1.0)))
        result.fit_info = dict(info)
    elif status == "REFERENCE":
        # The frame the others were aligned to: its WCS is the reference, by definition.
        result.status = "COMPLETE"
        result.reference = reference
        result.reason = ""
        result.fit_info = dict(info)
    else:
        result.status = "SKIPPED"
        result.reason = f"{reference} fit {status or 'not done'}"


def header_from_gwcs(wcsinfo, wcs, shape, npoints=16):
    """Return FITS TAN keywords (CRVAL, PC, PA_APER) that follow a corrected gwcs, CRPIX and CDELT kept.

    For a frame without a SIP header: the corrected gwcs is TAN up to the correction (shift,
    rotation, scale, skew), which a new CRVAL and PC represent exactly.

    Parameters
    ----------
    wcsinfo : dict
        The frame's ``meta.wcsinfo``.
    wcs : gwcs.WCS
        The corrected gwcs.
    shape : tuple of int
        ``(ny, nx)``.
    npoints : int
        Grid points per axis of the linear fit.

    Returns
    -------
    dict
        ``crval1, crval2, pc1_1, pc1_2, pc2_1, pc2_2, position_angle``.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    crpix = np.array([wcsinfo["crpix1"], wcsinfo["crpix2"]]) - 1.0
    crval = wcs(*crpix, with_bounding_box=False)
    header = fits.Header()
    header["NAXIS"] = 2
    for key in ("crpix1", "crpix2", "cdelt1", "cdelt2", "pc1_1", "pc1_2", "pc2_1", "pc2_2"):
        header[key.upper()] = wcsinfo[key]
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["CRVAL1"], header["CRVAL2"] = float(crval[0]), float(crval[1])
    linear = WCS(header)
    ny, nx = shape
    x, y = np.meshgrid(np.linspace(0, nx - 1, npoints), np.linspace(0, ny - 1, npoints))
    ra, dec = wcs(x, y, with_bounding_box=False)
    px, py = linear.all_world2pix(ra, dec, 0)
    # (px, py) - crpix = L ((x, y) - crpix): the correction's linear part, in pixels.
    design = np.column_stack([(x - crpix[0]).ravel(), (y - crpix[1]).ravel()])
    target = np.column_stack([(px - crpix[0]).ravel(), (py - crpix[1]).ravel()])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    pc = np.array([[wcsinfo["pc1_1"], wcsinfo["pc1_2"]], [wcsinfo["pc2_1"], wcsinfo["pc2_2"]]]) @ solution.T
    # PA of detector +y, North through East, with the convention PC = [[-cos, sin], [sin, cos]].
    position_angle = math.degrees(math.atan2(pc[0, 1], pc[1, 1])) % 360.0
    return {
        "crval1": float(crval[0]) % 360.0,
        "crval2": float(crval[1]),
        "pc1_1": float(pc[0, 0]),
        "pc1_2": float(pc[0, 1]),
        "pc2_1": float(pc[1, 0]),
        "pc2_2": float(pc[1, 1]),
        "position_angle": position_angle,
    }


def _one_line(exc):
    return " ".join(str(exc).split()) or type(exc).__name__
