"""`SkyMatchStep`: equalise the sky of overlapping calibrated frames."""

import functools
import logging
import tempfile
from pathlib import Path

import numpy as np

from ..datamodels.library import as_library
from ..stpipe import TMTStep
from .skymatch import SkyFrame, bin_frame, good_sky_pixels, match_sky

__all__ = ["SkyMatchStep"]

log = logging.getLogger(__name__)


class SkyMatchStep(TMTStep):
    """Match the sky levels of overlapping frames (stcal's skymatch, as jwst's step).

    Each frame records its sky (``meta.background.level``, ``BKGLEVEL``), the method
    (``BKGMETH``) and whether the level was subtracted (``BKGSUB``); with ``subtract`` the
    science array is lowered by it (ERR and variances unchanged: the sky is a constant).
    DQ-flagged pixels (``bad_flags``) are ignored. A frame whose sky cannot be computed (no
    overlap, no good pixel) is left as it is and marked ``SKIPPED``.
    """

    class_alias = "skymatch"
    reference_file_types = []

    spec = """
    skymethod = option('local', 'global', 'match', 'global+match', default='match')  # stcal's method
    match_down = boolean(default=True)  # match down to the lowest sky (else up to the highest)
    subtract = boolean(default=False)  # subtract the sky from the science array (else record it only)
    stepsize = integer(default=None)  # spacing of the bounding polygon's vertices (pixels); None: corners
    skystat = option('median', 'mode', 'mean', 'midpt', default='median')  # sky statistic
    lower = float(default=None)  # ignore pixel values below
    upper = float(default=None)  # ignore pixel values above
    nclip = integer(min=0, default=5)  # clipping iterations
    lsigma = float(min=0.0, default=4.0)  # lower clipping limit (sigma)
    usigma = float(min=0.0, default=4.0)  # upper clipping limit (sigma)
    binwidth = float(min=0.0, default=0.1)  # histogram bin of 'mode' and 'midpt' (science units)
    bad_flags = string(default='DO_NOT_USE')  # DQ flags of the pixels ignored
    binning = integer(min=1, default=4)  # sky statistics on blocks of binning x binning pixels (1: every pixel)
    in_memory = boolean(default=True)  # keep every frame in memory (False: one at a time from temporary files)
    """

    def planned_outputs(self, *args):
        """Return each frame's product, ``<frame>_skymatch.fits`` (see `TMTStep.planned_outputs`)."""
        from ..datamodels.library import library_outputs

        return library_outputs(self, args[0], self.suffix or self.default_suffix(), per_frame=True)

    def process(self, step_input):
        """Match the skies of a Level 3 association, a list of frames or a `ModelLibrary`.

        Returns
        -------
        ModelLibrary
            The frames, updated in place when the input is a library.
        """
        library = as_library(step_input, on_disk=not self.in_memory)
        # Saved frames are named after each frame (x_cal.fits -> x_skymatch.fits).
        self.output_use_model = True
        with tempfile.TemporaryDirectory(prefix="skymatch-", dir=".") as scratch:
            frames = self._sky_frames(library, Path(scratch))
            skies = match_sky(
                frames,
                skymethod=self.skymethod,
                match_down=self.match_down,
                skystat=self.skystat,
                lower=self.lower,
                upper=self.upper,
                nclip=self.nclip,
                lsigma=self.lsigma,
                usigma=self.usigma,
                binwidth=self.binwidth,
                stepsize=self.stepsize,
            )
            names = [frame.name for frame in frames]
            del frames  # release the memory maps before the scratch folder goes
        with library:
            for index, sky in enumerate(skies):
                self._log_sky(names[index], sky)
                # Metadata only (unless subtracted): written with the frame's next change, not read and
                # written now; the frame's summary and WCS (the library's facts) stay as they are.
                update = functools.partial(_record_sky, sky=sky, method=self.skymethod, subtract=self.subtract)
                library.update_later(index, update, keeps_facts=True)
        return library

    def _sky_frames(self, library, scratch):
        """One `SkyFrame` per frame; for an on-disk library the arrays are memory maps in ``scratch``."""
        frames = []
        with library:
            for index, model in enumerate(library):
                name = model.meta.filename or f"frame {index}"
                if model.meta.wcs is None:
                    library.shelve(model, index, modify=False)
                    raise ValueError(f"{name}: no gwcs (meta.wcs); run assign_wcs (image2) first")
                data = np.asarray(model.data, dtype=np.float32)
                data, mask = bin_frame(data, good_sky_pixels(data, model.dq, self.bad_flags), self.binning)
                if library.on_disk:
                    # Keep one frame in memory: stcal reads the overlaps of every frame several times.
                    np.save(scratch / f"{index}_data.npy", data)
                    np.save(scratch / f"{index}_mask.npy", mask)
                    data = np.load(scratch / f"{index}_data.npy", mmap_mode="r")
                    mask = np.load(scratch / f"{index}_mask.npy", mmap_mode="r")
                frames.append(SkyFrame(data, mask, model.meta.wcs, name, model.meta.group_id or name, self.binning))
                library.shelve(model, index, modify=False)
        return frames

    def _log_sky(self, name, sky):
        if sky is None:
            log.warning("%s: no sky value (no overlap or no good pixel); the frame is left as it is", name)
        else:
            log.info("%s: sky %.6g %s (%s)", name, sky, "subtracted" if self.subtract else "recorded", self.skymethod)


def _record_sky(model, sky, method, subtract):
    """Record (and with ``subtract`` subtract) a frame's sky level, or ``SKIPPED`` when it has none."""
    if sky is None:
        model.meta.cal_step.skymatch = "SKIPPED"
        return
    if subtract:
        model.data = model.data - np.float32(sky)
    model.meta.background.level = sky
    model.meta.background.method = method
    model.meta.background.subtracted = bool(subtract)
    model.meta.cal_step.skymatch = "COMPLETE"
