"""`OutlierDetectionStep`: flag the pixels of each frame that disagree with the median of all."""

import functools
import logging
import os

from ..datamodels.library import as_library, library_outputs
from ..resample.resample import fill_value, library_pixel_area, library_pixel_map, output_grid, summarize_library
from ..stpipe import TMTStep
from .outlier_detection import OutlierDetector

__all__ = ["OutlierDetectionStep"]

log = logging.getLogger(__name__)


class OutlierDetectionStep(TMTStep):
    """Flag outliers (``OUTLIER | DO_NOT_USE``) in dithered frames, as jwst's imaging mode does.

    Each frame is drizzled alone onto the mosaic grid, the median of those is blotted back onto
    each frame, and pixels that differ from it by more than the thresholds are flagged. Returns
    the library of flagged frames (saved with the suffix ``crf`` when ``save_results``). See
    ``docs/steps/outlier_detection.rst``.
    """

    class_alias = "outlier_detection"

    spec = """
    weight_type = option('ivm', 'exptime', default='ivm')  # Weights of the single drizzles
    pixfrac = float(min=0.0, max=1.0, default=1.0)  # Drop size of the single drizzles
    kernel = option('square', 'point', 'turbo', 'gaussian', 'lanczos2', 'lanczos3', default='turbo')  # Drizzle kernel
    fillval = string(default='NAN')  # Single-drizzle value where the frame does not contribute
    pixel_scale_ratio = float(default=1.0)  # Grid pixel scale / frame pixel scale
    maskpt = float(default=0.7)  # Single-drizzle pixels below maskpt x the typical weight are ignored
    snr = string(default='5.0 4.0')  # Thresholds (multiples of ERR) before and after the 3x3 smoothing
    scale = string(default='1.2 0.7')  # Multiples of the blot's derivative added to the thresholds
    backg = float(default=0.0)  # Background subtracted from the differences
    blot_interp = option('nearest', 'linear', 'poly3', 'poly5', default='poly5')  # blot_image's interpolation
    two_frame_minimum = boolean(default=True)  # Where two frames overlap, their minimum, not their mean, as the median
    good_bits = string(default='~DO_NOT_USE')  # DQ bits that do not exclude a pixel from the drizzles
    in_memory = boolean(default=False)  # Keep frames and single drizzles in memory (else on disk)
    pixmap_stepsize = integer(min=1, default=4)  # Evaluate the WCS every N pixels and interpolate (1: every pixel)
    save_intermediate_results = boolean(default=False)  # Save the single drizzles, the median and the blots
    """

    def planned_outputs(self, *args):
        """Return each frame's ``_crf`` file (see `TMTStep.planned_outputs`)."""
        return library_outputs(self, args[0], self.suffix or "crf", per_frame=True)

    def process(self, step_input):
        """Flag the outliers of the frames.

        Parameters
        ----------
        step_input : ModelLibrary, str, list
            The frames: a library, a Level 3 association, or a list of frame files or models.

        Returns
        -------
        ModelLibrary
            The frames with their DQ updated.
        """
        library = as_library(step_input, on_disk=not self.in_memory)
        # Saved frames are named after each frame (x_cal.fits -> x_crf.fits).
        self.output_use_model = True
        if len(library) < 2:
            log.warning("%s skipped: outlier detection needs at least 2 frames, got %d", self.name, len(library))
            list(library.map_function(lambda model, index: self._mark(model, "SKIPPED")))
            return library
        summaries = summarize_library(library)
        wcs, _info, _scale, ratio = output_grid(summaries, pixel_scale_ratio=self.pixel_scale_ratio)
        detector = OutlierDetector(
            wcs,
            len(library),
            pixel_scale_ratio=ratio,
            snr=self.snr,
            scale=self.scale,
            backg=self.backg,
            maskpt=self.maskpt,
            pixfrac=self.pixfrac,
            kernel=self.kernel,
            weight_type=self.weight_type,
            good_bits=self.good_bits,
            in_memory=self.in_memory,
            tempdir=self.output_dir or os.getcwd(),
            pixmap_stepsize=self.pixmap_stepsize,
            two_frame_minimum=self.two_frame_minimum,
            blot_interp=self.blot_interp,
        )
        fill = fill_value(self.fillval)
        with library:
            for index in range(len(library)):
                model = library.borrow(index)
                try:
                    pixmap = library_pixel_map(library, index, model, wcs, self.pixmap_stepsize)
                    area = library_pixel_area(library, index, model, wcs, self.pixmap_stepsize, pixmap)
                    image, weight = detector.add(model, pixmap, area)
                    del pixmap, area
                    if self.save_intermediate_results:
                        image[weight == 0] = fill
                        self._save_grid(image, wcs, summaries[index].name, "outlier_i2d", weight)
                finally:
                    library.shelve(model, index, modify=False)
                del model
        median = detector.median()
        if self.save_intermediate_results:
            self._save_grid(median, wcs, summaries[0].name, "median")
        total = 0
        with library:
            for index in range(len(library)):
                model = library.borrow(index)
                pixmap = library_pixel_map(library, index, model, wcs, self.pixmap_stepsize)
                area = library_pixel_area(library, index, model, wcs, self.pixmap_stepsize, pixmap)
                count, blotted = detector.flag(model, median, index, pixmap, area)
                del pixmap, area
                total += count
                if self.save_intermediate_results:
                    self._save_blot(model, blotted)
                # Only DQ and the status change: an on-disk library keeps the new DQ beside the frame
                # instead of writing the whole frame back (a quarter of the arrays at most).
                dq = model.dq
                library.shelve(model, index, modify=False)
                del model
                library.update_arrays_later(index, {"dq": dq}, functools.partial(self._mark, status="COMPLETE"))
                del dq
        detector.close()
        log.info("%d outlier pixels flagged in %d frames", total, len(library))
        return library

    @staticmethod
    def _mark(model, status):
        model.meta.cal_step.outlier_detection = status

    def _save_grid(self, image, wcs, frame_name, suffix, weight=None):
        from ..datamodels import IRISMosaicModel

        model = IRISMosaicModel(data=image)
        if weight is not None:
            model.wht = weight
        model.meta.wcs = wcs
        path = self.make_output_path(basepath=frame_name, suffix=suffix)
        log.info("Saving %s", path)
        model.save(path)
        model.close()

    def _save_blot(self, frame, blotted):
        from ..datamodels import IRISImageModel

        model = IRISImageModel(data=blotted)
        model.update(frame)
        model.meta.wcs = frame.meta.wcs
        path = self.make_output_path(basepath=frame.meta.filename or "frame", suffix="blot")
        log.info("Saving %s", path)
        model.save(path)
        model.close()
