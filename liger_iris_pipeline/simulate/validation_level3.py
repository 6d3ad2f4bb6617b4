"""Compare Level 3 products (aligned frames, mosaic, catalog) with the simulator's truth.

Used by the Level 3 end-to-end test and ``liger-iris-demo --level3``, so both judge a reduction
the same way. The products are read through `liger_iris_pipeline.datamodels` and astropy only:
the simulator does not import pipeline code.

- Pointing: the mean offset, along detector +x/+y in mas, between where each frame's WCS puts
  the truth's stars and where they are on the detector (the truth's noise-free ``x, y``): the
  header WCS of a `_cal` frame shows the simulated pointing error (``PNTERR_X/Y``), that of an
  aligned (tweakreg, `_crf`) frame what alignment left of it.
- Astrometry: catalog centroids of bright isolated stars against the truth's RA/Dec through the
  mosaic WCS (pixels). Their scatter about the mean is the mosaic's own astrometry (target
  0.02 px); the mean offset is the absolute alignment to a reference catalog of 2 mas errors,
  judged in mas with the pointing (target 1 mas, about 0.25 px).
- Photometry: the catalog's total fluxes of isolated stars (not on an input frame's edge, when
  the catalog says: ``on_frame_edge``) against the truth (``flux_jy`` for
  a mosaic in MJy/sr, ``flux`` in DN/s otherwise): the weighted mean ratio (the calibration's
  bias) and the pulls about it (the catalog errors' scale).
- Outliers: the truth's residual defects (``DEFECT_MASK``) flagged OUTLIER in the `_crf`
  frames, and the clean pixels flagged.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..dqflags import pixel as FLAGS
from . import filters
from .validation import common_flux_ratio, pull_std_about_common_ratio

__all__ = ["MosaicComparison", "compare_mosaic_with_truth", "wcs_pointing_error"]

TARGETS = {
    "pointing_mas": 1.0,
    "position_rms_px": 0.02,
    "flux_bias": 0.01,
    "pull_std": 0.10,
    "defects_flagged": 0.99,
    "clean_flagged": 1e-3,
}
"""The issue's targets: pointing residual (mas), mosaic position rms (px), flux bias (fraction),
|pull std - 1|, fraction of defects flagged (at least), fraction of clean pixels flagged (below)."""


@dataclass
class MosaicComparison:
    """How the Level 3 products agree with the truth.

    Attributes
    ----------
    pointing_errors : numpy.ndarray
        (n, 2) the truth's pointing error of each frame (``PNTERR_X, PNTERR_Y``, mas).
    pointing_residuals : numpy.ndarray
        (n, 2) pointing error left in each aligned frame's WCS (mas, `wcs_pointing_error`); the
        recovered pointing error is ``pointing_errors - pointing_residuals``.
    position_offsets : numpy.ndarray
        (m, 2) catalog centroid minus the truth's position through the mosaic WCS (pixels) of
        the bright isolated stars.
    flux_ratios : numpy.ndarray
        Catalog total flux over the true flux of each isolated star.
    flux_ratio_errors : numpy.ndarray
        Their errors (the catalog's flux error over the true flux).
    flux_unit : str
        Unit of the catalog fluxes compared (``Jy``: against ``flux_jy``).
    defects_flagged : float
        Fraction of the detectable residual defects flagged OUTLIER (NaN without frames): those
        off the stars, where at least ``min_coverage`` frames overlap.
    defects_flagged_all : float
        Fraction of all residual defect pixels flagged OUTLIER.
    n_defects : int
        Detectable defect pixels.
    clean_flagged : float
        Fraction of the pixels without a residual defect flagged OUTLIER.
    mosaic_pixel_scale : float
        Of the mosaic (arcsec).
    """

    pointing_errors: np.ndarray
    pointing_residuals: np.ndarray
    position_offsets: np.ndarray
    flux_ratios: np.ndarray
    flux_ratio_errors: np.ndarray
    flux_unit: str
    defects_flagged: float = math.nan
    defects_flagged_all: float = math.nan
    n_defects: int = 0
    clean_flagged: float = math.nan
    mosaic_pixel_scale: float = math.nan
    notes: list = field(default_factory=list)

    @property
    def pointing_residual_max(self):
        """Largest |residual| of any frame along either axis (mas); NaN without frames."""
        return float(np.abs(self.pointing_residuals).max()) if self.pointing_residuals.size else math.nan

    @property
    def position_rms(self):
        """RMS per axis of the star position offsets (pixels)."""
        offsets = self.position_offsets
        return float(np.sqrt(np.mean(offsets**2))) if offsets.size else math.nan

    @property
    def position_scatter(self):
        """RMS per axis about their mean (pixels): the mosaic's relative astrometry."""
        offsets = self.position_offsets
        return float(np.sqrt(np.mean((offsets - offsets.mean(axis=0)) ** 2))) if len(offsets) > 1 else math.nan

    @property
    def flux_bias(self):
        """Inverse-variance weighted mean of the flux ratios minus 1: the photometric calibration's error."""
        return common_flux_ratio(self.flux_ratios, self.flux_ratio_errors)[0]

    @property
    def flux_bias_error(self):
        """Statistical error of `flux_bias`."""
        return common_flux_ratio(self.flux_ratios, self.flux_ratio_errors)[1]

    @property
    def flux_pulls(self):
        """``(measured - true) / error`` of each star."""
        return (self.flux_ratios - 1.0) / self.flux_ratio_errors

    @property
    def pull_std(self):
        """Standard deviation of the pulls about the common ratio ``1 + flux_bias``: the errors' scale."""
        return pull_std_about_common_ratio(self.flux_ratios, self.flux_ratio_errors)

    def checks(self):
        """Return ``{name: (value, target, met)}`` for each of the issue's targets that was measured."""
        results = {}

        def check(name, value, target, met):
            if np.isfinite(value):
                results[name] = (value, target, bool(met))

        check("pointing residual (mas)", self.pointing_residual_max, TARGETS["pointing_mas"],
              self.pointing_residual_max <= TARGETS["pointing_mas"])  # fmt: skip
        check("mosaic position rms (px)", self.position_scatter, TARGETS["position_rms_px"],
              self.position_scatter <= TARGETS["position_rms_px"])  # fmt: skip
        offset = (
            float(np.abs(self.position_offsets.mean(axis=0)).max()) * self.mosaic_pixel_scale * 1e3
            if self.position_offsets.size
            else math.nan
        )
        check("mosaic mean offset (mas)", offset, TARGETS["pointing_mas"], offset <= TARGETS["pointing_mas"])
        check("flux bias", self.flux_bias, TARGETS["flux_bias"], abs(self.flux_bias) <= TARGETS["flux_bias"])
        check("flux pull std", self.pull_std, 1.0, abs(self.pull_std - 1.0) <= TARGETS["pull_std"])
        check("defects flagged", self.defects_flagged, TARGETS["defects_flagged"],
              self.defects_flagged >= TARGETS["defects_flagged"])  # fmt: skip
        check("defects flagged (all)", self.defects_flagged_all, TARGETS["defects_flagged"],
              self.defects_flagged_all >= TARGETS["defects_flagged"])  # fmt: skip
        check("clean pixels flagged", self.clean_flagged, TARGETS["clean_flagged"],
              self.clean_flagged < TARGETS["clean_flagged"])  # fmt: skip
        return results

    def summary(self):
        """Return a few lines describing the comparison, each with its target."""
        lines = []
        if self.pointing_residuals.size:
            recovered = self.pointing_errors - self.pointing_residuals
            pairs = ", ".join(
                f"({t[0]:+.1f}, {t[1]:+.1f}) -> ({r[0]:+.1f}, {r[1]:+.1f})"
                for t, r in zip(self.pointing_errors, recovered, strict=True)
            )
            lines.append(f"tweakreg: pointing errors (x, y mas) true -> recovered: {pairs}")
            lines.append(
                f"  residual max {self.pointing_residual_max:.2f} mas, rms "
                f"{np.sqrt(np.mean(self.pointing_residuals**2)):.2f} mas (target <= {TARGETS['pointing_mas']} mas)"
            )
        else:
            lines.append("tweakreg: no aligned frame to compare")
        if self.position_offsets.size:
            mean = self.position_offsets.mean(axis=0)
            lines.append(
                f"mosaic astrometry: {len(self.position_offsets)} bright isolated stars, "
                f"rms per axis about their mean {self.position_scatter:.4f} px (target {TARGETS['position_rms_px']}); "
                f"mean offset ({mean[0]:+.4f}, {mean[1]:+.4f}) px = "
                f"({mean[0] * self.mosaic_pixel_scale * 1e3:+.2f}, {mean[1] * self.mosaic_pixel_scale * 1e3:+.2f}) mas "
                f"(the alignment to the reference catalog, target <= {TARGETS['pointing_mas']} mas); "
                f"rms {self.position_rms:.4f} px"
            )
        else:
            lines.append("mosaic astrometry: no bright isolated star matched")
        if self.flux_ratios.size:
            lines.append(
                f"catalog fluxes ({self.flux_unit}): {self.flux_ratios.size} isolated stars, bias "
                f"{100 * self.flux_bias:+.2f} +- {100 * self.flux_bias_error:.2f} % (target within "
                f"{100 * TARGETS['flux_bias']:.0f} %), pulls about it: std {self.pull_std:.3f} "
                f"(target 1 +- {TARGETS['pull_std']}; about 1: mean {self.flux_pulls.mean():+.2f}, "
                f"std {np.std(self.flux_pulls):.2f})"
            )
        else:
            lines.append("catalog fluxes: no isolated star matched")
        if np.isfinite(self.defects_flagged):
            lines.append(
                f"outliers: {100 * self.defects_flagged:.2f} % of {self.n_defects} residual defect pixels flagged "
                f"(off the stars, >= 2 frames; all: {100 * self.defects_flagged_all:.2f} %; target >= 99 %), "
                f"{100 * self.clean_flagged:.4f} % of clean pixels (target < 0.1 %)"
            )
        else:
            lines.append("outliers: no _crf frame to compare")
        lines.extend(self.notes)
        return "\n".join(lines)


def _open(item):
    from .. import datamodels

    return (datamodels.open(item), True) if isinstance(item, (str, Path)) else (item, False)


def _truth(item):
    from .exposure import ExposureTruth

    return ExposureTruth.load(item) if isinstance(item, (str, Path)) else item


def _plate_scale_mas(model):
    return float(model.meta.instrument.plate_scale) * 1e3


def wcs_pointing_error(model, truth, margin=5.0):
    """Return the pointing error (mas, along detector +x, +y) of a frame's WCS.

    The mean over the truth's stars on the frame of ``(x_true - x_wcs, y_true - y_wcs)`` times
    the plate scale, where ``x_wcs, y_wcs`` is where ``meta.wcs`` puts the star's true RA/Dec:
    the truth's ``PNTERR_X/Y`` for the header WCS of an unaligned frame (the sign convention of
    `~liger_iris_pipeline.simulate.ExposureTruth`), zero for a perfect one. The truth's ``x, y``
    carry no noise, so this measures the WCS alone.

    Parameters
    ----------
    model : IRISImageModel
        A Level 2 frame with ``meta.wcs``.
    truth : ExposureTruth
        Its truth.
    margin : float
        Stars closer than this to an edge are left out (pixels).

    Returns
    -------
    numpy.ndarray
        ``(ex, ey)`` in mas.
    """
    ny, nx = model.data.shape
    sources = truth.sources
    x, y = np.asarray(sources["x"], float), np.asarray(sources["y"], float)
    inside = (x > margin) & (x < nx - 1 - margin) & (y > margin) & (y < ny - 1 - margin)
    if not inside.any():
        raise ValueError(f"{model.meta.filename}: no truth star on the frame")
    xw, yw = model.meta.wcs.invert(
        np.asarray(sources["ra"], float)[inside], np.asarray(sources["dec"], float)[inside], with_bounding_box=False
    )
    offsets = np.column_stack([x[inside] - xw, y[inside] - yw])
    return offsets.mean(axis=0) * _plate_scale_mas(model)


def _coverage(points_world, frames, margin=3.0):
    """Number of frames (``(wcs, shape)``) whose detector covers each sky position."""
    ra, dec = points_world
    count = np.zeros(ra.shape, int)
    for wcs, (ny, nx) in frames:
        x, y = wcs.invert(ra, dec, with_bounding_box=False)
        count += (x > margin) & (x < nx - 1 - margin) & (y > margin) & (y < ny - 1 - margin)
    return count


def _outliers(frames, truths, min_coverage, star_sigmas):
    """Return ``(detectable found, detectable total, all found, all total, clean flagged, clean total)``."""
    geometry = []
    for item in frames:
        model, close = _open(item)
        geometry.append((model.meta.wcs, model.data.shape))
        if close:
            model.close()
    counts = np.zeros(6, np.int64)
    for item, truth_item in zip(frames, truths, strict=True):
        truth = _truth(truth_item)  # one truth in memory at a time: full-frame truths are ~250 MB each
        if truth.defect_mask is None:
            continue
        model, close = _open(item)
        try:
            flagged = (model.dq & FLAGS["OUTLIER"]) != 0
            defects = truth.defect_mask.astype(bool)
            # Off the stars: the truth's source signal below star_sigmas times the sky noise, in the frame's units.
            scale = 1.0
            if (model.meta.bunit_data or "").replace(" ", "").lower() == "mjy/sr":
                scale = float(model.meta.photometry.conversion_megajanskys or 1.0)
            good = (model.dq & FLAGS["DO_NOT_USE"]) == 0
            good &= np.isfinite(model.err) & (model.err > 0) & ~flagged
            sky_noise = float(np.median(model.err[good])) / scale if good.any() else 0.0
            star = (truth.scene_rate - truth.sky_rate) >= star_sigmas * sky_noise
            yy, xx = np.nonzero(defects)
            ra, dec = model.meta.wcs(xx.astype(float), yy.astype(float), with_bounding_box=False)
            detectable = np.zeros_like(defects)
            detectable[yy, xx] = _coverage((np.asarray(ra), np.asarray(dec)), geometry) >= min_coverage
            detectable &= ~star
            counts += [
                np.count_nonzero(flagged & detectable),
                np.count_nonzero(detectable),
                np.count_nonzero(flagged & defects),
                np.count_nonzero(defects),
                np.count_nonzero(flagged & ~defects),
                np.count_nonzero(~defects),
            ]
        finally:
            if close:
                model.close()
    return counts


def _catalog_table(catalog):
    from astropy.table import QTable

    return QTable.read(catalog, format="ascii.ecsv") if isinstance(catalog, (str, Path)) else catalog


def _values(column):
    return np.asarray(getattr(column, "value", column), dtype=float)


def compare_mosaic_with_truth(
    mosaic,
    catalog,
    frames=(),
    truths=(),
    *,
    match_radius=1.0,
    bright_snr=200.0,
    isolation_fwhm=6.0,
    min_coverage=2,
    star_sigmas=20.0,
):
    """Measure the Level 3 products against the truth.

    Parameters
    ----------
    mosaic : str, os.PathLike or IRISMosaicModel
        The ``_i2d`` mosaic (its WCS; its pixel scale).
    catalog : str, os.PathLike or astropy.table.Table
        The ``_cat.ecsv`` catalog: ``xcentroid, ycentroid, aper_total_flux, aper_total_flux_err``.
    frames : list of str, os.PathLike or IRISImageModel
        The aligned frames (``_crf``: tweakreg's WCS, outlier_detection's DQ), one per truth.
    truths : list of ExposureTruth or str
        The truth of each frame (files are read with `ExposureTruth.load`); the first one's
        sources are the scene (RA/Dec, fluxes) the catalog is compared with.
    match_radius : float
        Catalog sources farther than this from a truth star (mosaic pixels) do not match it.
    bright_snr : float
        Minimum flux signal-to-noise of the stars whose positions are compared.
    isolation_fwhm : float
        A star with another truth source (or a galaxy's reach) within this many PSF FWHM is not isolated.
    min_coverage : int
        A defect is detectable where at least this many frames overlap.
    star_sigmas : float
        A defect is on a star where the star's signal exceeds this many sky sigmas.

    Returns
    -------
    MosaicComparison
    """
    truths = list(truths)
    if not truths:
        raise ValueError("compare_mosaic_with_truth needs at least one truth (the scene)")
    notes = []

    # (a) pointing errors left in the aligned frames' WCS
    errors, residuals = [], []
    for item, truth_item in zip(frames, truths, strict=True):
        truth = _truth(truth_item)
        model, close = _open(item)
        try:
            residuals.append(wcs_pointing_error(model, truth))
            errors.append(truth.pointing_error_mas)
        finally:
            if close:
                model.close()

    # (b, c) the catalog against the scene through the mosaic's WCS
    mosaic_model, close = _open(mosaic)
    try:
        wcs = mosaic_model.meta.wcs
        area = mosaic_model.meta.photometry.pixelarea_arcsecsq
        pixel_scale = math.sqrt(area) if area else abs(mosaic_model.meta.wcsinfo.cdelt1 or math.nan) * 3600.0
        instrument = (mosaic_model.meta.instrument.name or "IRIS").lower()
    finally:
        if close:
            mosaic_model.close()
    first = _truth(truths[0])
    scene, extended, filter_name = first.sources, first.extended_sources, first.filter_name
    del first
    table = _catalog_table(catalog)
    fwhm = filters.psf_fwhm(filter_name, instrument) / pixel_scale
    xt, yt = wcs.invert(np.asarray(scene["ra"], float), np.asarray(scene["dec"], float), with_bounding_box=False)
    xt, yt = np.asarray(xt), np.asarray(yt)
    offsets, ratios, ratio_errors = [], [], []
    flux_unit = ""
    if len(table):
        xc, yc = _values(table["xcentroid"]), _values(table["ycentroid"])
        flux, flux_err = _values(table["aper_total_flux"]), _values(table["aper_total_flux_err"])
        flux_unit = str(getattr(table["aper_total_flux"], "unit", "") or "")
        jansky = flux_unit == "Jy"
        true_flux = np.asarray(scene["flux_jy" if jansky else "flux"], float)
        if not jansky:
            notes.append(f"the catalog's fluxes are in {flux_unit or 'no unit'}: compared with the truth's DN/s")
        isolated_in_catalog = (
            np.asarray(table["is_isolated"], bool) if "is_isolated" in table.colnames else np.ones(len(table), bool)
        )
        # Fluxes across an input frame's edge carry drizzle's edge error, which ERR does not describe.
        if "on_frame_edge" in table.colnames:
            isolated_in_catalog &= ~np.asarray(table["on_frame_edge"], bool)
        if len(extended):
            gx, gy = wcs.invert(
                np.asarray(extended["ra"], float), np.asarray(extended["dec"], float), with_bounding_box=False
            )
            galaxy_reach = isolation_fwhm * fwhm + 10.0 * np.asarray(extended["r_eff"], float) / pixel_scale
        for index in range(len(scene)):
            others = np.hypot(xt - xt[index], yt - yt[index])
            others[index] = np.inf
            if np.any(others < isolation_fwhm * fwhm):
                continue
            if len(extended) and np.any(np.hypot(gx - xt[index], gy - yt[index]) < galaxy_reach):
                continue
            distance = np.hypot(xc - xt[index], yc - yt[index])
            nearest = int(np.argmin(distance))
            if distance[nearest] > match_radius or not isolated_in_catalog[nearest]:
                continue
            if not (np.isfinite(flux[nearest]) and flux_err[nearest] > 0):
                continue
            ratios.append(flux[nearest] / true_flux[index])
            ratio_errors.append(flux_err[nearest] / true_flux[index])
            if flux[nearest] / flux_err[nearest] >= bright_snr:
                offsets.append((xc[nearest] - xt[index], yc[nearest] - yt[index]))
    else:
        notes.append("the catalog is empty")

    # (d) outliers in the _crf frames
    defects = {}
    if frames:
        found, total, found_all, total_all, false, clean = _outliers(frames, truths, min_coverage, star_sigmas)
        defects = {
            "defects_flagged": found / total if total else math.nan,
            "defects_flagged_all": found_all / total_all if total_all else math.nan,
            "n_defects": int(total),
            "clean_flagged": false / clean if clean else math.nan,
        }
    return MosaicComparison(
        pointing_errors=np.array(errors, float).reshape(-1, 2),
        pointing_residuals=np.array(residuals, float).reshape(-1, 2),
        position_offsets=np.array(offsets, float).reshape(-1, 2),
        flux_ratios=np.array(ratios, float),
        flux_ratio_errors=np.array(ratio_errors, float),
        flux_unit=flux_unit,
        mosaic_pixel_scale=pixel_scale,
        notes=notes,
        **defects,
    )
