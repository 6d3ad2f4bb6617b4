"""`ResampleStep`: drizzle the frames of a Level 3 association into one mosaic (``_i2d``)."""

import logging
import math

import numpy as np

from ..datamodels.library import as_library, library_outputs
from ..stpipe import TMTStep
from .resample import Resampler, fill_value, output_grid, resample_library, summarize_library

__all__ = ["ResampleStep"]

log = logging.getLogger(__name__)


class ResampleStep(TMTStep):
    """Drizzle Level 2 frames onto one TAN grid (``IRISMosaicModel``, suffix ``i2d``).

    SCI, WHT (total drizzle weight), CON (context: which frames contributed), the three variance
    arrays and ERR; DO_NOT_USE pixels (``good_bits``) are left out. One frame is in memory at a
    time (``in_memory=False``). See ``docs/steps/resample.rst``.
    """

    class_alias = "resample"

    spec = """
    pixfrac = float(min=0.0, max=1.0, default=1.0)  # Drop size, fraction of an input pixel's side
    kernel = option('square', 'point', 'turbo', 'gaussian', 'lanczos2', 'lanczos3', default='square')  # Drizzle kernel
    fillval = string(default='NAN')  # Output value where no frame contributes
    weight_type = option('ivm', 'exptime', default='ivm')  # Frame weights: 1/VAR_RNOISE per pixel, or exposure time
    pixel_scale = float(default=None)  # Output pixel scale (arcsec); overrides pixel_scale_ratio
    pixel_scale_ratio = float(default=1.0)  # Output / input pixel scale, when pixel_scale is not given
    rotation = float(default=0.0)  # Position angle of the output +y axis (deg, North through East); 0: North up
    output_shape = int_list(min=2, max=2, default=None)  # Output size [nx, ny]; default: the frames' footprint
    crpix = float_list(min=2, max=2, default=None)  # Reference pixel [x, y] (FITS, 1-based); default: the centre
    crval = float_list(min=2, max=2, default=None)  # Sky position [RA, Dec] (deg) of crpix; default: the centre
    good_bits = string(default='~DO_NOT_USE')  # DQ bits that do not exclude a pixel ('~DO_NOT_USE': only it excludes)
    pixmap_stepsize = integer(min=1, default=4)  # Evaluate the WCS every N pixels and interpolate (1: every pixel)
    in_memory = boolean(default=False)  # Keep all frames in memory instead of one at a time
    """

    def planned_outputs(self, *args):
        """Return ``<product>_i2d.fits`` of the association (see `TMTStep.planned_outputs`)."""
        return library_outputs(self, args[0], self.suffix or "i2d", per_frame=False)

    def process(self, step_input):
        """Drizzle the frames.

        Parameters
        ----------
        step_input : ModelLibrary, str, list
            The frames: a library, a Level 3 association, or a list of frame files or models.

        Returns
        -------
        IRISMosaicModel
        """
        library = as_library(step_input, on_disk=not self.in_memory)
        product_name = _product_name(library)
        if self.parent is None and not self.output_file and product_name:
            self.output_file = product_name  # <product>_i2d.fits, as image3 names it
        summaries = summarize_library(library)
        output_shape = tuple(reversed(self.output_shape)) if self.output_shape else None
        wcs, info, pixel_scale, ratio = output_grid(
            summaries,
            pixel_scale=self.pixel_scale,
            pixel_scale_ratio=self.pixel_scale_ratio,
            rotation=self.rotation,
            output_shape=output_shape,
            crval=self.crval,
            crpix=self.crpix,
        )
        resampler = Resampler(
            wcs,
            pixel_scale_ratio=ratio,
            pixfrac=self.pixfrac,
            kernel=self.kernel,
            weight_type=self.weight_type,
            good_bits=self.good_bits,
            fillval=fill_value(self.fillval),
            pixmap_stepsize=self.pixmap_stepsize,
        )
        names = []
        arrays = resample_library(library, resampler, names)
        product = make_mosaic_model(library, arrays, wcs, info, pixel_scale, summaries)
        resample_meta = {
            "pixfrac": self.pixfrac,
            "kernel": self.kernel,
            "weight_type": self.weight_type,
            "pixel_scale_ratio": ratio,
            "pixel_scale": pixel_scale,
            "rotation": self.rotation,
            "n_inputs": len(summaries),
            "pointings": len({summary.group or summary.name for summary in summaries}),
            "product_exposure_time": float(sum(summary.exposure_time for summary in summaries)),
        }
        record_resample_meta(product, resample_meta, names)
        product.meta.cal_step.resample = "COMPLETE"
        return product


def _product_name(library):
    try:
        return library.product_name()
    except (AttributeError, KeyError, IndexError):
        return None


def make_mosaic_model(library, arrays, wcs, info, pixel_scale, summaries):
    """Return the ``IRISMosaicModel`` of drizzled arrays, with the first frame's metadata.

    Parameters
    ----------
    library : ModelLibrary
        The frames; the first one's metadata is copied.
    arrays : dict
        `Resampler.finish`'s output.
    wcs : gwcs.WCS
        The grid.
    info : dict
        The grid's FITS WCS keywords (``meta.wcsinfo``).
    pixel_scale : float
        arcsec.
    summaries : list of FrameSummary
        The frames.

    Returns
    -------
    IRISMosaicModel
    """
    from ..datamodels import IRISMosaicModel

    product = IRISMosaicModel(data=arrays["data"])
    with library:
        first = library.borrow(0)
        try:
            product.update(first)
        finally:
            library.shelve(first, 0, modify=False)
        del first
    product.wht = arrays["wht"]
    if arrays.get("con") is not None:
        context = arrays["con"].astype(np.int32)
        product.con = context[np.newaxis] if context.ndim == 2 else context
    for name in ("err", "var_poisson", "var_rnoise", "var_flat"):
        if arrays.get(name) is not None:
            setattr(product, name, arrays[name])
    product.meta.wcs = wcs
    # The grid's keywords replace the first frame's (its SIP error among them) as a whole.
    product.meta.wcsinfo = dict(info)
    product.meta.bunit_data = summaries[0].bunit
    area_arcsec2 = pixel_scale * pixel_scale
    product.meta.photometry.pixelarea_arcsecsq = area_arcsec2
    product.meta.photometry.pixelarea_steradians = area_arcsec2 * (math.pi / 180.0 / 3600.0) ** 2
    product.meta.exposure.exposure_time = float(sum(summary.exposure_time for summary in summaries))
    product.meta.filename = None
    return product


def record_resample_meta(product, values, names):
    """Write ``meta.resample.*``: the drizzle parameters and the input frames' names."""
    for key, value in {**values, "members": ",".join(names)}.items():
        setattr(product.meta.resample, key, value)
