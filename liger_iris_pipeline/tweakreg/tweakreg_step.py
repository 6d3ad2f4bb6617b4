"""`TweakRegStep`: align the WCS of calibrated frames to each other and to a reference catalog."""

import copy
import logging

import numpy as np

from ..datamodels.library import as_library
from ..stpipe import TMTStep
from .tweakreg import align_frames, detect_sources, header_from_gwcs

__all__ = ["TweakRegStep"]

log = logging.getLogger(__name__)


class TweakRegStep(TMTStep):
    """Detect stars in each frame, fit WCS corrections with tweakwcs, record them in the frames.

    The frames of one exposure (one ``group_id``) move together. A frame that cannot be aligned
    (too few sources, no match) keeps its original WCS, is marked ``SKIPPED`` and the log says
    so; a reference catalog that matches nothing falls back, logged, to the relative alignment.
    The corrected gwcs is authoritative and the FITS WCS keywords follow it (a new CRVAL and PC,
    the SIP polynomials refitted for a distorted frame), so that DS9 shows the aligned sky.
    """

    class_alias = "tweakreg"
    reference_file_types = []

    spec = """
    starfinder = option('dao', 'iraf', default='dao')  # photutils star finder
    kernel_fwhm = float(default=3.9)  # FWHM of the star finder's kernel (pixels), about the PSF's
    snr_threshold = float(default=10.0)  # detection threshold (sky noise units)
    brightest = integer(default=500)  # keep the brightest sources of each frame
    sharplo = float(default=0.2)  # smallest sharpness of a star
    sharphi = float(default=1.0)  # largest sharpness of a star
    roundlo = float(default=-1.0)  # smallest roundness of a star
    roundhi = float(default=1.0)  # largest roundness of a star
    bad_flags = string(default='DO_NOT_USE')  # DQ flags of the pixels ignored by the detection
    fitgeometry = option('shift', 'rshift', 'rscale', 'general', default='rshift')  # relative correction
    minobj = integer(default=15)  # fewest sources a fit needs
    searchrad = float(default=0.25)  # search radius of the offset (arcsec)
    separation = float(default=0.05)  # smallest separation of sources within a catalog (arcsec)
    tolerance = float(default=0.02)  # matching tolerance (arcsec)
    use2dhist = boolean(default=True)  # find the initial offset with a 2D histogram
    nclip = integer(default=3)  # clipping iterations of the fit
    sigma = float(default=3.0)  # clipping threshold (rms)
    abs_refcat = string(default='')  # reference catalog (ECSV with ra, dec in deg); empty: relative only
    abs_fitgeometry = option('shift', 'rshift', 'rscale', 'general', default='rshift')
    abs_minobj = integer(default=15)
    abs_searchrad = float(default=0.25)
    abs_separation = float(default=0.05)
    abs_tolerance = float(default=0.02)
    abs_use2dhist = boolean(default=True)
    abs_nclip = integer(default=3)
    abs_sigma = float(default=3.0)
    in_memory = boolean(default=True)  # keep every frame in memory (False: one at a time from temporary files)
    """

    def planned_outputs(self, *args):
        """Return each frame's product, ``<frame>_tweakreg.fits`` (see `TMTStep.planned_outputs`)."""
        from ..datamodels.library import library_outputs

        return library_outputs(self, args[0], self.suffix or self.default_suffix(), per_frame=True)

    def process(self, step_input):
        """Align the frames of a Level 3 association, a list of frames or a `ModelLibrary`.

        Returns
        -------
        ModelLibrary
            The frames, corrected in place when the input is a library.
        """
        library = as_library(step_input, on_disk=not self.in_memory)
        # Saved frames are named after each frame (x_cal.fits -> x_tweakreg.fits).
        self.output_use_model = True
        frames = []
        with library:
            for index, model in enumerate(library):
                name = model.meta.filename or f"frame {index}"
                if model.meta.wcs is None:
                    library.shelve(model, index, modify=False)
                    raise ValueError(f"{name}: no gwcs (meta.wcs); run assign_wcs (image2) first")
                catalog = detect_sources(
                    model.data,
                    model.dq,
                    kernel_fwhm=self.kernel_fwhm,
                    snr_threshold=self.snr_threshold,
                    starfinder=self.starfinder,
                    brightest=self.brightest,
                    sharplo=self.sharplo,
                    sharphi=self.sharphi,
                    roundlo=self.roundlo,
                    roundhi=self.roundhi,
                    bad_flags=self.bad_flags,
                )
                log.info("%s: %d sources detected", name, len(catalog))
                info = model.meta.wcsinfo
                frames.append(
                    {
                        "name": name,
                        "wcs": model.meta.wcs,
                        "catalog": catalog,
                        "group_id": model.meta.group_id or f"frame{index}",
                        "reference_point": _reference_point(model),
                        "shape": model.data.shape,
                        "sip": str(info.ctype1 or "").endswith("-SIP"),
                    }
                )
                library.shelve(model, index, modify=False)

        results = align_frames(
            frames,
            fitgeometry=self.fitgeometry,
            minobj=self.minobj,
            searchrad=self.searchrad,
            separation=self.separation,
            tolerance=self.tolerance,
            use2dhist=self.use2dhist,
            nclip=self.nclip,
            sigma=self.sigma,
            abs_refcat=self.abs_refcat.strip() or None,
            abs_fitgeometry=self.abs_fitgeometry,
            abs_minobj=self.abs_minobj,
            abs_searchrad=self.abs_searchrad,
            abs_separation=self.abs_separation,
            abs_tolerance=self.abs_tolerance,
            abs_use2dhist=self.abs_use2dhist,
            abs_nclip=self.abs_nclip,
            abs_sigma=self.abs_sigma,
        )

        fitgeometry = {"relative": self.fitgeometry, "absolute": self.abs_fitgeometry}
        with library:
            for index, result in enumerate(results):
                _log_result(result, frames[index])
                # Metadata only: written with the frame's next change, not read and written now.
                frame = {key: frames[index][key] for key in ("shape", "sip")}
                library.update_later(index, _AlignmentUpdate(result, frame, fitgeometry))
        return library


def _reference_point(model):
    """The sky position of the frame's reference pixel (CRPIX), where its tangent plane touches the sky."""
    info = model.meta.wcsinfo
    if info.crpix1 is not None and info.crpix2 is not None:
        return tuple(float(value) for value in model.meta.wcs(info.crpix1 - 1.0, info.crpix2 - 1.0))
    ny, nx = model.data.shape
    return tuple(float(value) for value in model.meta.wcs((nx - 1) / 2.0, (ny - 1) / 2.0))


def _log_result(result, frame):
    if result.status != "COMPLETE":
        log.warning("%s: tweakreg SKIPPED (%s); the original WCS is kept", frame["name"], result.reason)
    elif result.wcs is not None:
        log.info(
            "%s: aligned to %s, %d matches, rms %.3f mas, correction (%.2f E, %.2f N) mas",
            frame["name"],
            result.reference,
            result.n_matched,
            result.rms_mas,
            *result.shift_mas,
        )


class _AlignmentUpdate:
    """`_record` as a frame update applied at each borrow (`ModelLibrary.update_later`).

    The FITS keywords (a SIP or TAN fit to the corrected gwcs) are computed at the first call
    and copied at the next ones: the frame they are computed from, its temporary file, is the
    same until the update is written to it. The corrected gwcs is validated as a ``meta.wcs`` at
    the first call only (36 ms for a distorted frame's); each borrow still gets a copy of its own.
    """

    def __init__(self, result, frame, fitgeometry):
        self.result = result
        self.frame = frame
        self.fitgeometry = fitgeometry
        self._keywords = None

    def __call__(self, model):
        if self._keywords is None:
            _record(model, self.result, self.frame, self.fitgeometry)
            extra = model.instance.get("extra_fits", {}).get("SCI", {}).get("header")
            self._keywords = copy.deepcopy((dict(model.meta.wcsinfo.instance), extra))
            return
        _record(model, self.result, self.frame, self.fitgeometry, keywords=False, validated=True)
        if self.result.status == "COMPLETE" and self.result.wcs is not None:
            wcsinfo, extra = copy.deepcopy(self._keywords)
            model.meta.wcsinfo = wcsinfo
            if extra is not None:
                model.instance.setdefault("extra_fits", {}).setdefault("SCI", {})["header"] = extra


def _record(model, result, frame, fitgeometry, keywords=True, validated=False):
    """Store the corrected WCS (gwcs and FITS keywords) and the fit's figures in a frame.

    ``frame``: the frame's ``shape`` and whether its header WCS has SIP polynomials (``sip``);
    ``fitgeometry``: the step's ``relative`` and ``absolute`` fit geometries; ``keywords``: also
    fit the FITS WCS keywords (``meta.wcsinfo``, SIP cards) to the corrected gwcs; ``validated``:
    an earlier call validated the corrected gwcs as a ``meta.wcs``, its copy is stored without.
    """
    model.meta.cal_step.tweakreg = result.status
    tweak = model.meta.tweakreg
    tweak.reference = result.reference
    tweak.n_sources = result.n_sources
    if result.status != "COMPLETE" or result.wcs is None:
        return
    tweak.fitgeometry = fitgeometry["absolute" if result.reference not in ("relative", "none") else "relative"]
    tweak.n_matched = result.n_matched
    if np.isfinite(result.rms_mas):
        tweak.rms_mas = result.rms_mas
    tweak.shift_east_mas, tweak.shift_north_mas = result.shift_mas
    tweak.rotation_deg = result.rotation_deg
    tweak.scale = result.scale
    # A copy for each frame model: the update is applied again at each borrow of an on-disk frame.
    if validated:
        model.meta.instance["wcs"] = copy.deepcopy(result.wcs)
    else:
        model.meta.wcs = copy.deepcopy(result.wcs)
    if not keywords:
        return
    if frame["sip"]:
        from ..assign_wcs.imaging import _remove_sip_cards, update_fits_wcsinfo

        _remove_sip_cards(model)
        update_fits_wcsinfo(model)
    else:
        info = dict(model.meta.wcsinfo.instance)
        header = header_from_gwcs(info, result.wcs, frame["shape"])
        from ..assign_wcs.imaging import pc_matrix

        pc = np.array([[header["pc1_1"], header["pc1_2"]], [header["pc2_1"], header["pc2_2"]]])
        if not np.allclose(pc, pc_matrix(header["position_angle"]), rtol=0, atol=1e-9):
            # A scale or skew correction: the PC matrix no longer is a pure rotation of the convention.
            header["position_angle"] = None
        info.update(header)
        model.meta.wcsinfo = {key: value for key, value in info.items() if value is not None}
