"""Level 0 exposures (`TMTRampModel`) with their truth (`ExposureTruth`).

Signal chain of one pixel (units DN and seconds, electrons where stated)
-----------------------------------------------------------------------
1. ``detector_rate = scene_rate * flat + dark_rate`` (DN/s): what a Level 1 rate image
   should measure after nonlinearity correction. Reference and dead pixels have
   ``flat = dark = 0`` and collect nothing.
2. Charge: the detector is reset at t = 0 and read ``nreads`` times, read ``k`` (0-based)
   at ``t_k = (k + 1) * read_time``. Between reads the pixel collects a Poisson number
   of electrons of mean ``detector_rate * gain * read_time``; where that mean exceeds
   `NORMAL_APPROXIMATION` electrons a normal draw of the same mean and variance is used
   (it is ~20x cheaper and indistinguishable at that level). A cosmic ray adds its
   charge (100-5000 e-) from its read on.
3. Linear signal ``q = charge / gain`` (DN); measured signal ``s = P^-1(q)`` with the
   truth nonlinearity polynomial ``P`` (see `~liger_iris_pipeline.simulate.detector`).
4. ``raw = bias + s + read noise``, rounded to integers. Once ``raw`` reaches the
   pixel's saturation level it stays at that level for the rest of the integration.

Memory: the uint16 cube is written read by read, in blocks of rows, straight into the
model's preallocated array; only 2-D float accumulators of one block are kept, never a
float copy of the ramp.
"""

import math
from dataclasses import dataclass

import numpy as np

from .defects import draw_residual_defects, empty_defects
from .detector import NO_RESPONSE
from .distortion import Distortion, instrument_distortion
from .filters import FILTERS, abmag, dn_per_jy, psf_fwhm
from .geometry import region_slices
from .instruments import instrument_model
from .pointing import wcsinfo_for_pointing, world_to_pixel
from .scene import _SIGMA_PER_FWHM, Scene

__all__ = [
    "DEFAULT_COSMIC_RAY_RATE",
    "ExposureTruth",
    "simulate_dark_exposure",
    "simulate_exposure",
    "simulate_flat_exposure",
    "illuminated_rate",
    "simulate_pinhole_exposure",
    "simulate_ramps",
    "simulate_sky_exposure",
    "simulate_standard_exposure",
    "subarray_map",
]

DEFAULT_COSMIC_RAY_RATE = 1.0e-7
"""Cosmic-ray events per pixel per second (0.1 per cm^2 per s for 10 micron pixels)."""

NORMAL_APPROXIMATION = 25.0
"""Expected electrons per read above which the Poisson draw is replaced by a normal one."""

COSMIC_RAY_CHARGE = (100.0, 5000.0)
"""Range of the log-uniform cosmic-ray charge (e-)."""

_NEWTON_ITERATIONS = 2
_BLOCK_PIXELS = 2**18  # ~1 MB float32 per block array: the per-read work stays in cache

_OBSERVATION_KINDS = {
    "IMAGE": ("SCI", "IMG1-SCI"),
    "SKY": ("SCI", "IMG1-SKY"),
    "DARK": ("CAL", "IMG1-DRK"),
    "FLAT": ("CAL", "IMG1-NFF"),
    "PINHOLE": ("CAL", "IMG1-DMP"),
    "STANDARD": ("CAL", "IMG1-STD"),
}
"""Exposure kind (EXP_TYPE after the instrument's prefix) -> (OBSTYPE, OBSNAME)."""

_MAX_SUBARRAYS = 10

INSTRUMENT_DISTORTION = "instrument"
"""Default of ``simulate_exposure(distortion=...)``: the instrument's `instrument_distortion`."""


@dataclass
class ExposureTruth:
    """What an exposure should reduce to.

    Attributes
    ----------
    detector_rate : numpy.ndarray
        float32 (ny, nx) DN/s: ``scene_rate * flat + dark_rate``, what a Level 1 rate
        image should measure.
    scene_rate : numpy.ndarray
        float32 (ny, nx) DN/s: sky plus sources, what a calibrated Level 2 frame should show.
    sky_rate : float
        Uniform background in ``scene_rate`` (DN/s per pixel; the lamp rate of a flat).
    sources : astropy.table.Table
        Point sources: ``id, ra, dec`` (deg), ``x, y`` (0-based detector pixel position in
        this exposure, x = column, y = row: where the distorted PSF centre lies), ``u, v``
        (0-based undistorted focal-plane position in the full-frame system, where the true
        TAN WCS puts the source), ``flux`` (total DN/s), ``flux_jy`` (flux density in
        Jy, flat in F_nu over the filter, `filters.dn_per_jy`) and ``abmag`` (AB magnitude).
    extended_sources : astropy.table.Table
        Extended sources: ``id, ra, dec, x, y, u, v, flux, flux_jy, abmag, r_eff`` (arcsec),
        ``sersic_n, axis_ratio, position_angle`` (deg).
    cosmic_rays : astropy.table.Table
        ``integration, y, x, read`` (first read showing the jump, 0-based),
        ``charge`` (e-) and ``amplitude`` (linear DN, ``charge / gain``).
    first_saturated_read : numpy.ndarray
        int16 (nints, ny, nx): first saturated read of each pixel, -1 if none.
    mask : numpy.ndarray
        uint32 (ny, nx) bad-pixel flags of the exposed pixels.
    read_times : numpy.ndarray
        float64 (nreads,) seconds since the reset.
    filter_name : str
        Filter of the exposure.
    exposure_type : str
        EXP_TYPE of the exposure.
    subarray : tuple of int
        ``(xstart, ystart, xsize, ysize)`` on the detector, 1-based starts.
    seed : int or None
        Seed of the exposure's noise.
    distortion : Distortion or None
        The distortion the sources were drawn with (None: none).
    pointing_error_mas : tuple of float
        ``(ex, ey)``: the header WCS is the true pointing moved by this much (mas) along
        detector +x, +y (header keywords ``PNTERR_X, PNTERR_Y``).
    true_crval : tuple of float or None
        ``(CRVAL1, CRVAL2)`` (deg) of the true pointing, the WCS the scene was drawn with
        (header keywords ``TRUE_CRV1, TRUE_CRV2``).
    defects : astropy.table.Table or None
        Residual defects (`~liger_iris_pipeline.simulate.defects`), one row per affected
        pixel: ``defect, kind`` (hot, cosmic, trail), ``x, y``, ``rate`` (DN/s added to
        ``detector_rate``), ``sigma`` (that change in units of the pixel's noise).
        ``scene_rate`` does not contain them.
    defect_mask : numpy.ndarray or None
        uint8 (ny, nx): 1 where a residual defect changed the pixel.
    """

    detector_rate: np.ndarray
    scene_rate: np.ndarray
    sky_rate: float
    sources: object
    extended_sources: object
    cosmic_rays: object
    first_saturated_read: np.ndarray
    mask: np.ndarray
    read_times: np.ndarray
    filter_name: str
    exposure_type: str
    subarray: tuple
    seed: int | None = None
    distortion: Distortion | None = None
    pointing_error_mas: tuple = (0.0, 0.0)
    true_crval: tuple | None = None
    defects: object = None
    defect_mask: np.ndarray | None = None

    _IMAGES = (
        ("DETECTOR_RATE", "detector_rate"),
        ("SCENE_RATE", "scene_rate"),
        ("FIRST_SAT", "first_saturated_read"),
        ("MASK", "mask"),
        ("READ_TIMES", "read_times"),
    )
    _TABLES = (("SOURCES", "sources"), ("EXTENDED", "extended_sources"), ("COSMIC_RAYS", "cosmic_rays"))

    def save(self, path, overwrite=True):
        """Write the truth to a FITS file (image and binary-table extensions).

        Parameters
        ----------
        path : str or os.PathLike
            Output file.
        overwrite : bool
            Replace an existing file.
        """
        from astropy.io import fits

        primary = fits.PrimaryHDU()
        header = primary.header
        header["ORIGIN"] = ("liger_iris_pipeline.simulate", "truth of a simulated exposure")
        header["SKY_RATE"] = (float(self.sky_rate), "uniform background (DN/s/pixel)")
        header["FILTER"] = self.filter_name
        header["EXP_TYPE"] = self.exposure_type
        for index, key in enumerate(("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")):
            header[key] = int(self.subarray[index])
        if self.seed is not None:
            header["SEED"] = int(self.seed)
        header["PNTERR_X"] = (float(self.pointing_error_mas[0]), "header WCS minus true pointing along +x (mas)")
        header["PNTERR_Y"] = (float(self.pointing_error_mas[1]), "header WCS minus true pointing along +y (mas)")
        if self.true_crval is not None:
            # Nine characters: a HIERARCH card, written explicitly so that astropy does not warn.
            header["HIERARCH TRUE_CRV1"] = (float(self.true_crval[0]), "true CRVAL1 (deg)")
            header["HIERARCH TRUE_CRV2"] = (float(self.true_crval[1]), "true CRVAL2 (deg)")
        hdus = [primary]
        hdus += [fits.ImageHDU(getattr(self, attribute), name=name) for name, attribute in self._IMAGES]
        if self.defects is not None:
            hdus.append(table_hdu(self.defects, "DEFECTS"))
        if self.defect_mask is not None:
            hdus.append(fits.ImageHDU(self.defect_mask, name="DEFECT_MASK"))
        if self.distortion is not None:
            for name, coefficients in (("DIST_AX", self.distortion.ax), ("DIST_AY", self.distortion.ay)):
                hdu = fits.ImageHDU(np.array(coefficients), name=name)
                hdu.header["DIS_CX"] = (self.distortion.cx, "distortion centre x (0-based full frame)")
                hdu.header["DIS_CY"] = (self.distortion.cy, "distortion centre y (0-based full frame)")
                hdu.header["DIS_SCL"] = (self.distortion.scale, "distortion normalisation R (pixels)")
                hdus.append(hdu)
        hdus += [table_hdu(getattr(self, attribute), name) for name, attribute in self._TABLES]
        fits.HDUList(hdus).writeto(path, overwrite=overwrite)

    @classmethod
    def load(cls, path):
        """Read a truth file written by `save`.

        Parameters
        ----------
        path : str or os.PathLike
            Truth FITS file.

        Returns
        -------
        ExposureTruth
        """
        from astropy.io import fits
        from astropy.table import Table

        with fits.open(path) as hdulist:
            header = hdulist[0].header
            values = read_truth_extensions(hdulist, cls._IMAGES, cls._TABLES)
            defects = Table.read(hdulist["DEFECTS"]) if "DEFECTS" in hdulist else None
            defect_mask = np.array(hdulist["DEFECT_MASK"].data, dtype=np.uint8) if "DEFECT_MASK" in hdulist else None
            distortion = None
            if "DIST_AX" in hdulist:
                dist = hdulist["DIST_AX"].header
                distortion = Distortion(
                    np.array(hdulist["DIST_AX"].data, dtype=np.float64),
                    np.array(hdulist["DIST_AY"].data, dtype=np.float64),
                    dist["DIS_CX"],
                    dist["DIS_CY"],
                    dist["DIS_SCL"],
                )
        return cls(
            **values,
            sky_rate=header["SKY_RATE"],
            filter_name=header["FILTER"],
            exposure_type=header["EXP_TYPE"],
            subarray=tuple(header[key] for key in ("SUBSTRT1", "SUBSTRT2", "SUBSIZE1", "SUBSIZE2")),
            seed=header.get("SEED"),
            distortion=distortion,
            pointing_error_mas=(header.get("PNTERR_X", 0.0), header.get("PNTERR_Y", 0.0)),
            true_crval=(header["TRUE_CRV1"], header["TRUE_CRV2"]) if "TRUE_CRV1" in header else None,
            defects=defects,
            defect_mask=defect_mask,
        )


def table_hdu(table, name):
    """Return a binary-table extension of an astropy table, named."""
    from astropy.io import fits

    hdu = fits.table_to_hdu(table)
    hdu.name = name
    return hdu


def read_truth_extensions(hdulist, images, tables):
    """Return ``{attribute: array or Table}`` of a truth file's ``(EXTNAME, attribute)`` images and tables.

    FITS stores big-endian; the arrays come back in native byte order, like the ones that were saved.
    """
    from astropy.table import Table

    values = {
        attribute: hdulist[name].data.astype(hdulist[name].data.dtype.newbyteorder("=")) for name, attribute in images
    }
    values.update({attribute: Table.read(hdulist[name]) for name, attribute in tables})
    return values


def simulate_exposure(
    scene,
    detector,
    nreads=10,
    nints=1,
    read_time=None,
    readout_mode="UTR",
    nfowler=1,
    subarray=None,
    filter="Kbb",  # noqa: A002 - the FITS keyword's name
    exposure_type="IMAGE",
    pointing=None,
    dither_arcsec=(0.0, 0.0),
    cosmic_ray_rate=None,
    seed=0,
    date="2025-06-01T10:00:00",
    *,
    subarray_id=None,
    subarrays=None,
    noiseless=False,
    linear=False,
    plate_scale=None,
    program_id="SIM-0001",
    observation_id="001",
    exposure_number=1,
    target_name="SIMULATED FIELD",
    distortion=INSTRUMENT_DISTORTION,
    pointing_error_mas=(0.0, 0.0),
    residual_defects=False,
):
    """Simulate the Level 0 ramps of one exposure.

    Parameters
    ----------
    scene : Scene
        Sky and sources.
    detector : DetectorTruth
        The detector (normally full frame, from `make_detector`).
    nreads : int
        Non-destructive reads per integration; read ``k`` happens at ``(k + 1) * read_time``.
    nints : int
        Integrations (each starts with a reset).
    read_time : float, optional
        Time between reads (s); the instrument's by default.
    readout_mode : {'UTR', 'CDS', 'MCDS'}
        Sampling the ramp is meant for (READPATT); all reads are stored in every mode.
    nfowler : int
        Fowler pairs of MCDS (``2 * nfowler <= nreads``).
    subarray : tuple of int, optional
        ``(xstart, ystart, xsize, ysize)`` to read out, 1-based starts on ``detector``.
    filter : str
        Filter name (``'DARK'`` only for a scene without sources and with ``sky`` set).
    exposure_type : {'IMAGE', 'SKY', 'DARK', 'FLAT'}
        Kind of exposure; EXP_TYPE is ``<INSTRUME>_<kind>`` (a full ``IRIS_IMAGE`` is accepted).
    pointing : tuple of float, optional
        ``(ra, dec, pa)`` in degrees; default ``(*scene.center, 0)``.
    dither_arcsec : tuple of float
        Pointing offset along detector +x, +y (arcsec).
    cosmic_ray_rate : float, optional
        Events per pixel per second; default `DEFAULT_COSMIC_RAY_RATE`, or 0 if
        ``noiseless``. Pass a rate to get cosmic rays in a noiseless exposure.
    seed : int
        Seed of the noise and cosmic rays.
    date : str
        Exposure start (ISO 8601 UTC).
    subarray_id : int, optional
        With ``subarray``: the index (1-10) of this subarray in the SUBARR_MAP of the
        matching full-frame readout (SUBARRAY name ``SUBARRAY<k>``); without it the
        subarray is ``CUSTOM``.
    subarrays : list of tuple, optional
        Full frame only: up to 10 non-overlapping ``(xstart, ystart, xsize, ysize)``
        rectangles read out as subarrays, written to the SUBARR_MAP extension
        (value k inside rectangle k, 0 elsewhere).
    noiseless : bool
        No Poisson noise and no read noise (and no cosmic rays unless a rate is given).
    linear : bool
        No nonlinearity: the raw signal is the linear signal.
    plate_scale : float, optional
        Arcsec per pixel; the instrument's by default.
    program_id, observation_id : str
        PROGID and OBS_ID.
    exposure_number : int
        EXPOSURE.
    target_name : str
        TARGNAME.
    distortion : Distortion or None
        Field distortion the sources are drawn with: by default the instrument's
        (`instrument_distortion` centred on the full frame of ``detector``); None for none.
        The sky and lamps stay uniform per pixel.
    pointing_error_mas : tuple of float
        ``(ex, ey)`` mas: the header WCS (``meta.wcsinfo``) reports the pointing moved by
        this much along detector +x, +y (as a dither would); the scene is drawn with the
        true pointing, recorded in the truth.
    residual_defects : bool or dict
        Add defects Level 1 and 2 cannot see (new hot pixels, missed cosmic rays, sometimes a
        satellite trail; `~liger_iris_pipeline.simulate.defects`), each >= 10 sigma of the
        pixel noise, recorded in the truth (``defects``, ``defect_mask``). A dict sets the
        counts (``{"hot": 4, "cosmic": 4, "trail": 0.3}``, the last a probability).

    Returns
    -------
    model : TMTRampModel
        uint16 ramps (nints, nreads, ny, nx) with read times and full metadata.
    truth : ExposureTruth
        The rates, sources, cosmic rays and saturation behind the ramps.
    """
    instrument = instrument_model(detector.instrument)
    read_time = instrument.read_time if read_time is None else read_time
    plate_scale = instrument.plate_scale if plate_scale is None else plate_scale
    exposure_type = _exposure_type(exposure_type, instrument.name)
    _check_readout(nreads, nints, read_time, readout_mode, nfowler)
    det = detector if subarray is None else detector.cut(subarray)
    if subarrays and not det.is_full_frame:
        raise ValueError("a SUBARR_MAP (subarrays=...) belongs to a full-frame readout")
    if subarray_id is not None and (subarray is None or not 1 <= int(subarray_id) <= _MAX_SUBARRAYS):
        raise ValueError(f"subarray_id must be 1-{_MAX_SUBARRAYS} and needs a subarray")
    if pointing is None:
        pointing = (*scene.center, 0.0)
    if cosmic_ray_rate is None:
        cosmic_ray_rate = 0.0 if noiseless else DEFAULT_COSMIC_RAY_RATE

    if isinstance(distortion, str) and distortion == INSTRUMENT_DISTORTION:
        distortion = instrument_distortion(det.instrument, det.detector_shape)
    elif distortion is not None and not isinstance(distortion, Distortion):
        raise TypeError(f"distortion must be a Distortion or None, got {type(distortion).__name__}")
    wcsinfo = wcsinfo_for_pointing(pointing, det.detector_shape, plate_scale, det.subarray, dither_arcsec)
    error_x, error_y = (float(value) for value in pointing_error_mas)
    reported = wcsinfo
    if error_x or error_y:
        reported_offset = (dither_arcsec[0] + error_x / 1000.0, dither_arcsec[1] + error_y / 1000.0)
        reported = wcsinfo_for_pointing(pointing, det.detector_shape, plate_scale, det.subarray, reported_offset)
    to_detector, star_uv, galaxy_uv = _focal_plane(scene, wcsinfo, det.subarray, distortion)
    scene_rate, star_xy, galaxy_xy = scene.render(
        wcsinfo, det.shape, filter, plate_scale, det.instrument, to_detector=to_detector
    )
    detector_rate = illuminated_rate(det, scene_rate)
    if residual_defects:
        # A stream of its own: the same seed gives the same noise with and without defects.
        defect_rng = np.random.default_rng(None if seed is None else [int(seed), 7919])
        counts = residual_defects if isinstance(residual_defects, dict) else None
        extra_rate, defects, defect_mask = draw_residual_defects(
            defect_rng, det, detector_rate, nreads, read_time, counts
        )
        detector_rate += extra_rate
    else:
        _, defects, defect_mask = empty_defects(det.shape)

    model, cosmic_rays, first_saturated = simulate_ramps(
        det, detector_rate, nints, nreads, read_time, cosmic_ray_rate, seed, noiseless=noiseless, linear=linear
    )
    if subarrays:
        model.subarr_map = subarray_map(subarrays, det.shape)
    _set_metadata(
        model.meta,
        det=det,
        subarray_id=subarray_id,
        wcsinfo=reported,
        pointing=pointing,
        filter_name=filter,
        exposure_type=exposure_type,
        readout_mode=readout_mode,
        nints=nints,
        nreads=nreads,
        nfowler=nfowler,
        read_time=read_time,
        date=date,
        plate_scale=plate_scale,
        program_id=program_id,
        observation_id=observation_id,
        exposure_number=exposure_number,
        target_name=target_name,
    )
    truth = ExposureTruth(
        detector_rate=detector_rate,
        scene_rate=scene_rate,
        sky_rate=scene.sky_rate(filter, plate_scale, det.instrument),
        sources=_source_table(scene, star_xy, star_uv, filter, det.instrument),
        extended_sources=_extended_table(scene, galaxy_xy, galaxy_uv, filter, det.instrument),
        cosmic_rays=cosmic_rays,
        first_saturated_read=first_saturated,
        mask=det.mask,
        read_times=model.read_times,
        filter_name=filter,
        exposure_type=exposure_type,
        subarray=det.subarray,
        seed=seed,
        distortion=distortion,
        pointing_error_mas=(error_x, error_y),
        true_crval=(wcsinfo["crval1"], wcsinfo["crval2"]),
        defects=defects,
        defect_mask=defect_mask,
    )
    return model, truth


def illuminated_rate(detector, scene_rate):
    """Return what a Level 1 rate image should measure: ``scene_rate * flat + dark_rate`` (DN/s).

    Parameters
    ----------
    detector : DetectorTruth
        The detector (or the subarray) the light falls on.
    scene_rate : numpy.ndarray
        float32 (ny, nx) DN/s reaching each pixel.

    Returns
    -------
    numpy.ndarray
        float32 (ny, nx) DN/s.
    """
    detector_rate = scene_rate * detector.flat
    detector_rate += detector.dark_rate
    return detector_rate


def simulate_ramps(detector, detector_rate, nints, nreads, read_time, cosmic_ray_rate, seed, *, noiseless, linear):
    """Turn a detector rate image into Level 0 ramps: the detector model every exposure goes through.

    Charge with Poisson noise, cosmic rays, non-linearity, bias, read noise and saturation (see the
    module's signal chain); the imager's and the IFS's exposures share it.

    Parameters
    ----------
    detector : DetectorTruth
        The detector (or the subarray) read out.
    detector_rate : numpy.ndarray
        float32 (ny, nx) DN/s, `illuminated_rate` (plus any defects).
    nints, nreads : int
        Integrations and reads per integration.
    read_time : float
        Time between reads (s).
    cosmic_ray_rate : float
        Events per pixel per second.
    seed : int or None
        Seed of the noise and cosmic rays.
    noiseless, linear : bool
        No Poisson and read noise; no non-linearity.

    Returns
    -------
    model : TMTRampModel
        uint16 ramps (nints, nreads, ny, nx) with ``read_times``; no metadata yet.
    cosmic_rays : astropy.table.Table
        The hits (`ExposureTruth.cosmic_rays`).
    first_saturated : numpy.ndarray
        int16 (nints, ny, nx) first saturated read, -1 if none.
    """
    from .. import datamodels

    rng = np.random.default_rng(seed)
    cosmic_rays = _draw_cosmic_rays(rng, detector, nints, nreads, read_time, cosmic_ray_rate)
    # np.empty: every sample is written below, so the cube is touched only once.
    model = datamodels.TMTRampModel(np.empty((nints, nreads, *detector.shape), dtype=np.uint16))
    first_saturated = _fill_ramps(
        model.data, detector, detector_rate, read_time, cosmic_rays, rng, noiseless=noiseless, linear=linear
    )
    model.read_times = (np.arange(nreads) + 1.0) * read_time
    return model, cosmic_rays, first_saturated


def simulate_dark_exposure(detector, **kwargs):
    """Simulate a dark: no light, EXP_TYPE ``<INSTRUME>_DARK``, filter ``DARK``.

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    **kwargs
        Other `simulate_exposure` parameters (nreads, seed, subarray, ...).

    Returns
    -------
    model : TMTRampModel
    truth : ExposureTruth
    """
    kwargs.setdefault("target_name", "DARK")
    return simulate_exposure(Scene(sky=0.0), detector, filter="DARK", exposure_type="DARK", **kwargs)


def simulate_flat_exposure(detector, lamp_rate=1000.0, filter="Kbb", **kwargs):  # noqa: A002
    """Simulate a flat-lamp exposure: a uniform ``lamp_rate`` seen through the flat.

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    lamp_rate : float
        Lamp illumination (DN/s per pixel before the flat).
    filter : str
        Filter.
    **kwargs
        Other `simulate_exposure` parameters.

    Returns
    -------
    model : TMTRampModel
    truth : ExposureTruth
        ``sky_rate`` holds the lamp rate.
    """
    kwargs.setdefault("target_name", "FLAT LAMP")
    return simulate_exposure(Scene(sky=lamp_rate), detector, filter=filter, exposure_type="FLAT", **kwargs)


def simulate_sky_exposure(detector, filter="Kbb", sky=None, center=(0.0, 0.0), **kwargs):  # noqa: A002
    """Simulate a sky exposure: the filter's sky background and no sources (``<INSTRUME>_SKY``).

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    filter : str
        Filter; sets the sky level unless ``sky`` is given.
    sky : float, optional
        Sky rate (DN/s per pixel).
    center : tuple of float
        ``(ra, dec)`` of the blank field (deg), the default pointing.
    **kwargs
        Other `simulate_exposure` parameters.

    Returns
    -------
    model : TMTRampModel
    truth : ExposureTruth
    """
    kwargs.setdefault("target_name", "SKY")
    return simulate_exposure(Scene(center=center, sky=sky), detector, filter=filter, exposure_type="SKY", **kwargs)


PINHOLE_MIN_PITCH = 12.0
"""Smallest default pinhole pitch (pixels): ~3 FWHM of the widest imager PSF (Liger Kbb), isolated centroids."""

PINHOLE_PEAK_FRACTION = 0.5
"""Default pinhole brightness: the brightest pixel reaches this fraction of the mean full well at the last read."""

_MEAN_FULL_WELL = 52000.0  # DN, make_detector's default


def _peak_pixel_fraction(filter_name, instrument, plate_scale):
    """Fraction of a point source's flux in its brightest pixel when centred on it (PSF core only)."""
    sigma = psf_fwhm(filter_name, instrument) / plate_scale * _SIGMA_PER_FWHM
    return math.erf(0.5 / (sigma * math.sqrt(2.0))) ** 2


def _last_read_time(kwargs, instrument):
    """Time of the last read (s) of an exposure made with these `simulate_exposure` keywords."""
    return kwargs.get("nreads", 10) * (kwargs.get("read_time") or instrument.read_time)


def pinhole_grid(detector_shape, pitch=None):
    """Return the focal-plane positions of a pinhole mask's holes.

    Parameters
    ----------
    detector_shape : tuple of int
        ``(ny, nx)`` of the full frame.
    pitch : float, optional
        Hole spacing (focal-plane pixels); default ``max(side / 32, PINHOLE_MIN_PITCH)``,
        about 30 x 30 holes on a full IRIS frame and at least 5 x 5 on a 64-pixel one.

    Returns
    -------
    u, v : numpy.ndarray
        float64 0-based full-frame focal-plane positions ``(cx + i pitch, cy + j pitch)``
        (a hole exactly at the centre ``cx = (nx - 1) / 2``), covering the whole frame.
    pitch : float
    """
    ny, nx = detector_shape
    pitch = max(min(nx, ny) / 32.0, PINHOLE_MIN_PITCH) if pitch is None else float(pitch)
    if not pitch > 0:
        raise ValueError(f"pinhole pitch must be positive, got {pitch}")
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    i = np.arange(-math.floor(cx / pitch), math.floor(cx / pitch) + 1)
    j = np.arange(-math.floor(cy / pitch), math.floor(cy / pitch) + 1)
    jj, ii = np.meshgrid(j, i, indexing="ij")
    return cx + ii.ravel() * pitch, cy + jj.ravel() * pitch, pitch


def simulate_pinhole_exposure(detector, pitch=None, rate=None, filter="Kbb", **kwargs):  # noqa: A002
    """Simulate a backlit pinhole-mask exposure (the distortion map, "Pinhole Grid (D-Map)").

    A regular square grid of point sources in the focal plane (`pinhole_grid`), seen through
    the distortion, without sky: EXP_TYPE ``<INSTRUME>_PINHOLE``, OBSTYPE CAL, OBSNAME
    ``IMG1-DMP``. Holes whose PSF core (1.5 FWHM) would not lie inside the exposure are left out.

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    pitch : float, optional
        Hole spacing (focal-plane pixels), see `pinhole_grid`.
    rate : float, optional
        Total rate of each hole (DN/s); by default the brightest pixel reaches
        `PINHOLE_PEAK_FRACTION` of the full well at the last read, which gives centroids
        good to ~0.003 px (IRIS Kbb, first-to-last read difference; measured).
    filter : str
        Filter (sets the PSF width).
    **kwargs
        Other `simulate_exposure` parameters (nreads, seed, subarray, distortion...);
        ``pointing`` only labels the exposure: the mask lies in the focal plane.

    Returns
    -------
    model : TMTRampModel
    truth : ExposureTruth
        ``sources`` holds ``u, v`` (focal plane, full frame) and ``x, y`` (detector) of each hole.
    """
    from .pointing import pixel_to_world

    for name in ("dither_arcsec", "exposure_type", "scene"):
        if name in kwargs:
            raise ValueError(f"a pinhole exposure takes no {name}: the mask is fixed in the focal plane")
    instrument = instrument_model(detector.instrument)
    plate_scale = kwargs.get("plate_scale") or instrument.plate_scale
    pointing = kwargs.pop("pointing", None) or (0.0, 0.0, 0.0)
    kwargs.setdefault("target_name", "PINHOLE MASK")
    u, v, pitch = pinhole_grid(detector.detector_shape, pitch)
    fwhm = psf_fwhm(filter, detector.instrument) / plate_scale
    distortion = kwargs.get("distortion", INSTRUMENT_DISTORTION)
    if isinstance(distortion, str) and distortion == INSTRUMENT_DISTORTION:
        distortion = instrument_distortion(detector.instrument, detector.detector_shape)
    kwargs["distortion"] = distortion
    x, y = (u, v) if distortion is None else distortion.to_detector(u, v)
    xstart, ystart, xsize, ysize = kwargs.get("subarray") or (1, 1, detector.shape[1], detector.shape[0])
    margin = 1.5 * fwhm
    inside = (
        (x - (xstart - 1) >= margin - 0.5)
        & (x - (xstart - 1) <= xsize - 0.5 - margin)
        & (y - (ystart - 1) >= margin - 0.5)
        & (y - (ystart - 1) <= ysize - 0.5 - margin)
    )
    if not inside.any():
        raise ValueError(f"no pinhole of pitch {pitch} px falls inside the exposure")
    if rate is None:
        peak = _peak_pixel_fraction(filter, detector.instrument, plate_scale)
        rate = PINHOLE_PEAK_FRACTION * _MEAN_FULL_WELL / (peak * _last_read_time(kwargs, instrument))
    # The holes as sky positions of the full-frame WCS of this (nominal) pointing.
    full_wcs = wcsinfo_for_pointing(pointing, detector.detector_shape, plate_scale)
    ra, dec = pixel_to_world(full_wcs, u[inside], v[inside])
    scene = Scene(center=tuple(pointing[:2]), ra=ra, dec=dec, flux=np.full(ra.size, float(rate)), sky=0.0)
    return simulate_exposure(scene, detector, filter=filter, exposure_type="PINHOLE", pointing=pointing, **kwargs)


STANDARD_PEAK_FRACTION = 0.5
"""Default standard: the brightest whose brightest pixel stays below this fraction of the full well."""


def simulate_standard_exposure(detector, filter="Kbb", name=None, flux_jy=None, **kwargs):  # noqa: A002
    """Simulate a photometric standard-star exposure: one isolated star at the field centre, plus sky.

    EXP_TYPE ``<INSTRUME>_STANDARD``, OBSTYPE CAL, OBSNAME ``IMG1-STD``, TARGNAME the star's name.

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    filter : str
        Filter.
    name : str, optional
        A star of `standards_catalog`; by default the brightest one whose brightest pixel
        stays below `STANDARD_PEAK_FRACTION` of the full well at the last read.
    flux_jy : float, optional
        Flux density (Jy); the catalog's value for ``name`` in ``filter`` by default.
    **kwargs
        Other `simulate_exposure` parameters; ``pointing`` is ``(ra, dec, pa)`` of the star
        (default ``(0, 0, 0)``).

    Returns
    -------
    model : TMTRampModel
    truth : ExposureTruth
        ``sources`` holds the star (``flux`` DN/s, ``flux_jy``, ``abmag``).
    """
    from .catalogs import standards_catalog

    instrument = instrument_model(detector.instrument)
    plate_scale = kwargs.get("plate_scale") or instrument.plate_scale
    catalog = standards_catalog()
    catalog = catalog[catalog["filter"] == filter]
    if name is None:
        peak_rate_per_jy = _peak_pixel_fraction(filter, detector.instrument, plate_scale) * dn_per_jy(
            filter, detector.instrument
        )
        limit = STANDARD_PEAK_FRACTION * _MEAN_FULL_WELL / (peak_rate_per_jy * _last_read_time(kwargs, instrument))
        catalog.sort("flux_jy")
        fitting = catalog[catalog["flux_jy"] <= limit]
        name = str((fitting if len(fitting) else catalog)[-1 if len(fitting) else 0]["name"])
    if flux_jy is None:
        rows = catalog[catalog["name"] == name]
        if not len(rows):
            raise ValueError(f"standard {name!r} is not in the standards catalog (filter {filter}); give flux_jy")
        flux_jy = float(rows[0]["flux_jy"])
    pointing = kwargs.pop("pointing", None) or (0.0, 0.0, 0.0)
    kwargs.setdefault("target_name", name)
    rate = float(flux_jy) * dn_per_jy(filter, detector.instrument)
    scene = Scene(center=tuple(pointing[:2]), ra=[pointing[0]], dec=[pointing[1]], flux=[rate])
    return simulate_exposure(scene, detector, filter=filter, exposure_type="STANDARD", pointing=pointing, **kwargs)


def subarray_map(subarrays, shape):
    """Return the SUBARR_MAP of a full-frame readout.

    Parameters
    ----------
    subarrays : list of tuple
        Up to 10 ``(xstart, ystart, xsize, ysize)`` rectangles (1-based starts).
    shape : tuple of int
        ``(ny, nx)`` of the frame.

    Returns
    -------
    numpy.ndarray
        uint16 map: k inside rectangle k (1-based, in list order), 0 elsewhere.

    Raises
    ------
    ValueError
        More than 10 rectangles, a rectangle off the frame, or overlapping rectangles.
    """
    if len(subarrays) > _MAX_SUBARRAYS:
        raise ValueError(f"at most {_MAX_SUBARRAYS} subarrays fit in a SUBARR_MAP, got {len(subarrays)}")
    result = np.zeros(shape, dtype=np.uint16)
    for index, rectangle in enumerate(subarrays, start=1):
        rows, cols = region_slices(rectangle, shape)
        if result[rows, cols].any():
            raise ValueError(f"subarray {index} {tuple(rectangle)} overlaps an earlier one")
        result[rows, cols] = index
    return result


def _check_readout(nreads, nints, read_time, readout_mode, nfowler):
    if nreads < 1 or nints < 1 or not read_time > 0:
        raise ValueError(f"need nreads >= 1, nints >= 1, read_time > 0 (got {nreads}, {nints}, {read_time})")
    if readout_mode == "CDS" and nreads < 2:
        raise ValueError("CDS needs at least 2 reads")
    if readout_mode == "MCDS" and not (nfowler >= 1 and 2 * nfowler <= nreads):
        raise ValueError(f"MCDS with {nfowler} Fowler pairs needs at least {2 * nfowler} reads, got {nreads}")
    if readout_mode not in ("UTR", "CDS", "MCDS"):
        raise ValueError(f"readout_mode {readout_mode!r} is not UTR, CDS or MCDS")


def _draw_cosmic_rays(rng, det, nints, nreads, read_time, rate):
    """Draw the cosmic-ray hits of an exposure as a truth table (pixels without response dropped)."""
    from astropy.table import Table

    ny, nx = det.shape
    columns = {name: [] for name in ("integration", "y", "x", "read", "charge")}
    for integration in range(nints):
        count = rng.poisson(rate * ny * nx * nreads * read_time) if rate > 0 else 0
        y = rng.integers(0, ny, count)
        x = rng.integers(0, nx, count)
        read = rng.integers(0, nreads, count)
        low, high = (math.log(value) for value in COSMIC_RAY_CHARGE)
        charge = np.exp(rng.uniform(low, high, count))
        keep = (det.mask[y, x] & NO_RESPONSE) == 0
        for name, values in zip(columns, (np.full(count, integration), y, x, read, charge), strict=True):
            columns[name].append(values[keep])
    table = Table(
        {name: np.concatenate(values) for name, values in columns.items()},
        dtype=(np.int32, np.int32, np.int32, np.int32, np.float64),
    )
    table["amplitude"] = table["charge"] / det.gain[table["y"], table["x"]].astype(np.float64)
    table.sort(["integration", "read", "y", "x"])
    return table


def _charge_sampler(expected, rng, noiseless):
    """Return a function drawing the electrons collected between two reads.

    Poisson where the mean is below `NORMAL_APPROXIMATION`, normal above it. The normal
    draw is made for every pixel and the few low-mean pixels (dark, reference and dead
    pixels under a bright sky) are overwritten, which is cheaper than gathering the
    high-mean ones.
    """
    if noiseless:
        return lambda: expected
    small = np.flatnonzero(expected.ravel() < NORMAL_APPROXIMATION)
    if small.size == expected.size:
        return lambda: rng.poisson(expected)
    sigma = np.sqrt(expected).astype(np.float32)
    mean_small = expected.ravel()[small]

    def draw():
        electrons = rng.standard_normal(expected.shape, dtype=np.float32)
        electrons *= sigma
        electrons = electrons + expected
        if small.size:
            electrons.ravel()[small] = rng.poisson(mean_small)
        return electrons

    return draw


def _measured_signal(linear_signal, c2, c3, series_c3):
    """Invert ``q = s + c2 s^2 + c3 s^3`` for s (float32 2-D arrays).

    Starts from the third-order series inverse ``s = q - c2 q^2 + (2 c2^2 - c3) q^3``
    (``series_c3`` is ``2 c2^2 - c3``), accurate to ~1e-3 for deficits of up to ~10 %;
    two Newton iterations then reach float32 precision. ``linear_signal`` is capped by the
    caller, so the series stays in its accurate range.
    """
    signal = series_c3 * linear_signal
    signal -= c2
    signal *= linear_signal
    signal += 1.0
    signal *= linear_signal
    for _ in range(_NEWTON_ITERATIONS):
        residual = c3 * signal
        residual += c2
        derivative = 3.0 * residual - c2  # 2 c2 + 3 c3 s
        residual *= signal
        residual += 1.0
        residual *= signal
        residual -= linear_signal  # P(s) - q
        derivative *= signal
        derivative += 1.0
        residual /= derivative
        signal -= residual
    return signal


def _fill_ramps(data, det, detector_rate, read_time, cosmic_rays, rng, *, noiseless, linear):
    """Write the uint16 ramps into ``data`` (nints, nreads, ny, nx) and return the first saturated reads."""
    nints, nreads, ny, nx = data.shape
    first_saturated = np.full((nints, ny, nx), -1, dtype=np.int16)
    hit_integration = np.asarray(cosmic_rays["integration"])
    hit_y, hit_x = np.asarray(cosmic_rays["y"]), np.asarray(cosmic_rays["x"])
    hit_read, hit_charge = np.asarray(cosmic_rays["read"]), np.asarray(cosmic_rays["charge"])
    block_rows = max(1, _BLOCK_PIXELS // nx)
    for start in range(0, ny, block_rows):
        rows = slice(start, min(start + block_rows, ny))
        inverse_gain = 1.0 / det.gain[rows].astype(np.float64)
        bias, saturation = det.bias[rows], det.saturation[rows]
        c2, c3, read_noise = det.nonlin_c2[rows], det.nonlin_c3[rows], det.read_noise[rows]
        series_c3 = 2.0 * c2 * c2 - c3
        expected = detector_rate[rows] / inverse_gain
        expected *= read_time
        draw = _charge_sampler(expected, rng, noiseless)
        # Any linear signal above P(headroom) reads saturated; capping there keeps the
        # nonlinearity inversion of hugely saturated pixels (bright stars) accurate and finite.
        headroom = saturation - bias + np.float32(1000.0)
        cap = headroom * (1.0 + headroom * (c2 + headroom * c3))
        in_block = (hit_y >= rows.start) & (hit_y < rows.stop)
        for integration in range(nints):
            charge = np.zeros(expected.shape)
            saturated = np.zeros(expected.shape, dtype=bool)
            any_saturated = False
            newly = np.empty(expected.shape, dtype=bool)
            hits = in_block & (hit_integration == integration)
            for read in range(nreads):
                charge += draw()
                now = np.flatnonzero(hits & (hit_read == read))
                if now.size:
                    np.add.at(charge, (hit_y[now] - rows.start, hit_x[now]), hit_charge[now])
                signal = (charge * inverse_gain).astype(np.float32)
                np.minimum(signal, cap, out=signal)
                if not linear:
                    signal = _measured_signal(signal, c2, c3, series_c3)
                signal += bias
                if not noiseless:
                    noise = rng.standard_normal(signal.shape, dtype=np.float32)
                    noise *= read_noise
                    signal += noise
                # Round first: the saturation level is an integer, and a read that rounds
                # up to it is saturated.
                np.rint(signal, out=signal)
                np.greater_equal(signal, saturation, out=newly)
                if any_saturated:
                    newly &= ~saturated
                if newly.any():
                    first_saturated[integration, rows][newly] = read
                    saturated |= newly
                    any_saturated = True
                if any_saturated:
                    np.copyto(signal, saturation, where=saturated)
                # A user-chosen low bias plus read noise could go negative; uint16 would wrap.
                np.maximum(signal, 0.0, out=signal)
                data[integration, read, rows] = signal
    return first_saturated


def _set_metadata(
    meta,
    *,
    det,
    subarray_id,
    wcsinfo,
    pointing,
    filter_name,
    exposure_type,
    readout_mode,
    nints,
    nreads,
    nfowler,
    read_time,
    date,
    plate_scale,
    program_id,
    observation_id,
    exposure_number,
    target_name,
    detector="IMG1",
    mode="IMAGER",
    observation=None,
):
    """Fill the Level 0 metadata of a ramp model (one validated assignment per group).

    ``observation`` is the (OBSTYPE, OBSNAME) pair, by default the imager's of the exposure type.
    """
    from astropy.time import Time, TimeDelta

    start = Time(date, format="isot", scale="utc")
    duration = nints * nreads * read_time  # each integration: reset, then nreads reads
    end = start + TimeDelta(duration, format="sec")
    mid = start + TimeDelta(duration / 2.0, format="sec")

    instrument = instrument_model(det.instrument)
    meta.telescope = instrument.telescope
    meta.processing_level = 0
    meta.obstype, meta.obsname = observation or _OBSERVATION_KINDS[exposure_type.split("_", 1)[1]]
    meta.program = {"id": program_id}
    meta.target = {"name": target_name, "ra": float(pointing[0]) % 360.0, "dec": float(pointing[1])}
    meta.instrument = {
        "name": instrument.name,
        "detector": detector,
        "detector_serial": det.serial,
        "mode": mode,
        "filter": filter_name,
        "plate_scale": plate_scale,
    }
    meta.exposure = {
        "type": exposure_type,
        "readout_mode": readout_mode,
        "nints": nints,
        "nreads": nreads,
        "nfowler": nfowler,
        "read_time": read_time,
        "integration_time": (nreads - 1) * read_time,
        "exposure_time": nints * (nreads - 1) * read_time,
        "start_time": float(start.mjd),
        "mid_time": float(mid.mjd),
        "end_time": float(end.mjd),
        "start_time_iso": start.isot,
        "mid_time_iso": mid.isot,
        "end_time_iso": end.isot,
    }
    date_obs, time_obs = start.isot.split("T")
    meta.observation = {
        "date": date_obs,
        "time": time_obs,
        "observation_id": observation_id,
        "exposure_number": exposure_number,
    }
    meta.wcsinfo = dict(wcsinfo)
    meta.subarray = det.subarray_metadata(subarray_id)


def _exposure_type(requested, instrument_name):
    """Return the EXP_TYPE of an exposure kind (``IMAGE``) or check a full one (``IRIS_IMAGE``)."""
    prefix, _, kind = requested.rpartition("_")
    if kind not in _OBSERVATION_KINDS or prefix not in ("", instrument_name):
        known = ", ".join(f"{instrument_name}_{name}" for name in _OBSERVATION_KINDS)
        raise ValueError(f"exposure_type {requested!r} is not one of {', '.join(_OBSERVATION_KINDS)} or {known}")
    return f"{instrument_name}_{kind}"


def _focal_plane(scene, wcsinfo, subarray, distortion):
    """Return the exposure's focal plane -> detector map and the full-frame focal-plane positions of the sources.

    The WCS pixels of a subarray are subarray-relative (its CRPIX is shifted), while the
    distortion is defined on the full frame: shift, distort, shift back.
    """
    x0, y0 = subarray[0] - 1.0, subarray[1] - 1.0

    def to_detector(u, v):
        if distortion is None:
            return u, v
        x, y = distortion.to_detector(u + x0, v + y0)
        return x - x0, y - y0

    def full_frame_uv(ra, dec):
        u, v = world_to_pixel(wcsinfo, ra, dec)
        return np.asarray(u, dtype=np.float64).reshape(-1) + x0, np.asarray(v, dtype=np.float64).reshape(-1) + y0

    star_uv = full_frame_uv(scene.ra, scene.dec) if scene.ra.size else (np.zeros(0), np.zeros(0))
    if scene.extended:
        galaxy_uv = full_frame_uv([g.ra for g in scene.extended], [g.dec for g in scene.extended])
    else:
        galaxy_uv = (np.zeros(0), np.zeros(0))
    return to_detector, star_uv, galaxy_uv


def _flux_jy(flux, filter_name, instrument):
    """Flux densities (Jy) of rates (DN/s) in a filter; NaN for a filter without a passband (DARK)."""
    flux = np.asarray(flux, dtype=np.float64)
    if filter_name not in FILTERS:
        return np.full(flux.shape, np.nan)
    return flux / dn_per_jy(filter_name, instrument)


def _source_table(scene, star_xy, star_uv, filter_name, instrument):
    from astropy.table import Table

    flux_jy = _flux_jy(scene.flux, filter_name, instrument)
    return Table(
        {
            "id": np.arange(1, scene.ra.size + 1, dtype=np.int32),
            "ra": scene.ra,
            "dec": scene.dec,
            "x": star_xy[0],
            "y": star_xy[1],
            "u": star_uv[0],
            "v": star_uv[1],
            "flux": scene.flux,
            "flux_jy": flux_jy,
            "abmag": abmag(flux_jy),
        }
    )


def _extended_table(scene, galaxy_xy, galaxy_uv, filter_name, instrument):
    from astropy.table import Table

    names = ("ra", "dec", "flux", "r_eff", "sersic_n", "axis_ratio", "position_angle")
    table = Table({"id": np.arange(1, len(scene.extended) + 1, dtype=np.int32)})
    for name in names:
        table[name] = np.array([getattr(galaxy, name) for galaxy in scene.extended], dtype=np.float64)
    table["x"], table["y"] = galaxy_xy
    table["u"], table["v"] = galaxy_uv
    table["flux_jy"] = _flux_jy(table["flux"], filter_name, instrument)
    table["abmag"] = abmag(table["flux_jy"])
    return table[["id", "ra", "dec", "x", "y", "u", "v", "flux", "flux_jy", "abmag", *names[3:]]]
