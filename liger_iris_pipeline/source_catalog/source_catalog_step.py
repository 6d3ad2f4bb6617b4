"""`SourceCatalogStep`: detect and measure the sources of a mosaic (``_cat.ecsv``, ``_segm.fits``)."""

import logging
import os

import numpy as np

from ..stpipe import TMTStep
from .source_catalog import make_catalog

__all__ = ["SourceCatalogStep"]

log = logging.getLogger(__name__)


class SourceCatalogStep(TMTStep):
    """Catalog of a mosaic: photutils background, segmentation, centroids, aperture photometry.

    Returns the catalog (an astropy ``QTable`` with units); with ``save_results`` (or an
    ``output_file``) writes ``<product>_cat.ecsv`` and the segmentation image
    ``<product>_segm.fits``. See ``docs/steps/source_catalog.rst``.
    """

    class_alias = "source_catalog"
    input_model = ("IRISMosaicModel",)
    input_role = "mosaic"

    spec = """
    psf_fwhm = float(default=None)  # PSF FWHM (arcsec); measured on the mosaic when not given
    snr_threshold = float(default=3.0)  # Detection threshold, multiples of the background RMS
    npixels = integer(min=1, default=5)  # Minimum connected pixels of a source
    deblend = boolean(default=True)  # Deblend overlapping sources
    bkg_boxsize = integer(min=4, default=64)  # Background box (pixels)
    bkg_filter_size = integer(min=1, default=3)  # Median filter of the background boxes
    aperture_radii = float_list(min=1, default=list(1.0, 1.5, 2.5))  # Aperture radii, in units of the PSF FWHM
    apcorr_radius = float(default=4.0)  # Radius (PSF FWHMs) taken as the total flux by the aperture corrections
    """

    def process(self, step_input):
        """Catalog the mosaic.

        Parameters
        ----------
        step_input : str, os.PathLike or IRISMosaicModel
            The mosaic (``_i2d``).

        Returns
        -------
        astropy.table.QTable
        """
        mosaic = self.open_input(step_input, copy=False)
        name = mosaic.meta.filename or (os.fspath(step_input) if isinstance(step_input, (str, os.PathLike)) else None)
        pixel_scale = _pixel_scale(mosaic)
        fwhm = self.psf_fwhm / pixel_scale if self.psf_fwhm else None
        mask = None
        if getattr(mosaic, "wht", None) is not None and mosaic.wht.shape == mosaic.data.shape:
            mask = ~(mosaic.wht > 0)
        catalog, segmentation = make_catalog(
            mosaic.data,
            mosaic.err,
            wcs=mosaic.meta.wcs,
            mask=mask,
            bunit=mosaic.meta.bunit_data or "DN/s",
            pixel_area_sr=mosaic.meta.photometry.pixelarea_steradians,
            psf_fwhm=fwhm,
            snr_threshold=self.snr_threshold,
            npixels=self.npixels,
            deblend=self.deblend,
            bkg_boxsize=self.bkg_boxsize,
            bkg_filter_size=self.bkg_filter_size,
            aperture_radii=tuple(self.aperture_radii),
            apcorr_radius=self.apcorr_radius,
            context=mosaic.instance.get("con"),
        )
        catalog.meta["mosaic"] = name or ""
        if self.save_results or self.output_file:
            base = self.output_file or name or "mosaic.fits"
            self.write_products(catalog, segmentation, mosaic, base)
        mosaic.meta.cal_step.source_catalog = "COMPLETE"
        return catalog

    def write_products(self, catalog, segmentation, mosaic, base):
        """Write ``<base>_cat.ecsv`` and ``<base>_segm.fits``; return their paths.

        Both are products of the run: written under temporary names and renamed with the run's
        other products, so a run that fails later leaves neither behind.
        """
        from astropy.io import fits

        from ..lib.output import writing

        catalog_path = self.make_output_path(basepath=base, suffix="cat", ext="ecsv")
        segmentation_path = self.make_output_path(basepath=base, suffix="segm")
        with writing(catalog_path) as temporary:
            catalog.write(temporary, format="ascii.ecsv", overwrite=True)
        header = fits.Header()
        for key, value in (mosaic.meta.wcsinfo.instance or {}).items():
            if isinstance(value, (int, float, str)) and len(key) <= 8:
                header[key.upper()] = value
        header["BUNIT"] = ""
        header["EXTNAME"] = "SCI"
        hdus = fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(segmentation.astype(np.int32), header=header)])
        with writing(segmentation_path) as temporary:
            hdus.writeto(temporary, overwrite=True, checksum=True)
        log.info("Saved %s (%d sources) and %s", catalog_path, len(catalog), segmentation_path)
        return catalog_path, segmentation_path


def _pixel_scale(mosaic):
    """The mosaic's pixel scale (arcsec), from PIXAR_A2 or CDELT."""
    area = mosaic.meta.photometry.pixelarea_arcsecsq
    if area:
        return float(np.sqrt(area))
    cdelt = mosaic.meta.wcsinfo.cdelt1
    if cdelt:
        return abs(cdelt) * 3600.0
    raise ValueError(f"{mosaic.meta.filename or 'mosaic'}: no pixel scale (PIXAR_A2 or CDELT1)")
