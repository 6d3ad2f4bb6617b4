"""Data model classes, one per schema."""

from .model_base import TMTDataModel, TMTReferenceFileModel, column_units, schema_uri

__all__ = [
    "IRISCubeModel",
    "IRISIFSImageModel",
    "IRISImageModel",
    "IRISMosaicModel",
    "IRISSpectrumModel",
    "TMTDarkModel",
    "TMTFlatModel",
    "TMTGainModel",
    "TMTMaskModel",
    "TMTNonlinModel",
    "TMTRampModel",
    "TMTReadnoiseModel",
    "TMTSaturationModel",
    "TMTSliceGeometryModel",
    "TMTWavecalModel",
]


class TMTRampModel(TMTDataModel):
    """Level 0: raw non-destructive readouts of one exposure.

    Attributes
    ----------
    data : numpy.ndarray
        uint16 samples (nints, nreads, ny, nx), DN.
    read_times : numpy.ndarray
        float64 (nreads,), seconds since the detector reset.
    pixeldq : numpy.ndarray
        uint32 (ny, nx) pixel flags.
    groupdq : numpy.ndarray
        uint8 (nints, nreads, ny, nx) per-read flags.
    """

    schema_url = schema_uri("tmt_ramp")
    default_arrays = ("pixeldq",)


class _ScienceArrays(TMTDataModel):
    """A science array with its error and variances, whose units follow the science unit."""

    def on_save(self, init):
        """Derive the units of ERR and the variance arrays from the science unit before writing."""
        super().on_save(init)
        _derive_error_units(self)


class IRISImageModel(_ScienceArrays):
    """Level 1 ("raw science frame") and Level 2 (calibrated) imager frame.

    Attributes
    ----------
    data : numpy.ndarray
        float32 (ny, nx) count rate.
    err : numpy.ndarray
        float32 total 1-sigma uncertainty, ``sqrt(var_poisson + var_rnoise + var_flat)``.
    dq : numpy.ndarray
        uint32 data quality flags.
    var_poisson, var_rnoise, var_flat : numpy.ndarray
        float32 variance components.
    subarr_map : numpy.ndarray
        uint16 subarray map (0 outside every subarray, k inside subarray k).
    """

    schema_url = schema_uri("iris_image")
    default_arrays = ("err", "dq", "var_poisson", "var_rnoise", "var_flat")


class IRISIFSImageModel(_ScienceArrays):
    """Level 1 and Level 2 frame of the integral-field spectrograph's detector.

    The imager frame's arrays (`IRISImageModel`), with the spectra of the slices or lenslets on
    the detector; ``meta.instrument.ifs_mode`` and ``spaxel_scale`` say how they were formed.
    Not an `IRISImageModel`, so that no imager step takes one for an image.

    Attributes
    ----------
    data, err, dq, var_poisson, var_rnoise, var_flat, subarr_map : numpy.ndarray
        (ny, nx), those of `IRISImageModel`.
    """

    schema_url = schema_uri("iris_ifs_image")
    default_arrays = ("err", "dq", "var_poisson", "var_rnoise", "var_flat")


class IRISCubeModel(_ScienceArrays):
    """IFS cube: a regular (x, y, wavelength) grid on the sky, numpy axes ``(nwave, ny, nx)``.

    ``meta.wcs`` maps ``(x, y, wavelength index)`` to ``(ra, dec, wavelength)``; the SCI header
    carries the same WCS as FITS keywords (``meta.wcsinfo``: TAN celestial axes 1 and 2, a linear
    vacuum wavelength axis 3 in microns) for spectral_cube, specutils and cubeviz. A voxel without
    data has ``WMAP = 0`` and NaN in SCI, ERR and the variances.

    Attributes
    ----------
    data : numpy.ndarray
        float32 (nwave, ny, nx) flux per spaxel and wavelength bin (``BUNIT``).
    err : numpy.ndarray
        float32 total 1-sigma uncertainty, ``sqrt(var_poisson + var_rnoise + var_flat)``.
    dq : numpy.ndarray
        uint32 data quality flags.
    wmap : numpy.ndarray
        float32 weight map: summed weight of the detector pixels in each voxel.
    var_poisson, var_rnoise, var_flat : numpy.ndarray
        float32 variance components.
    """

    schema_url = schema_uri("iris_cube")
    default_arrays = ("err", "dq", "wmap", "var_poisson", "var_rnoise", "var_flat")


class IRISSpectrumModel(TMTDataModel):
    """1-D spectrum extracted from an IFS cube, a binary table ``EXTRACT1D``.

    Columns ``WAVELENGTH`` (um, vacuum), ``FLUX`` and ``FLUX_ERROR`` (Jy), the variances
    ``FLUX_VAR_POISSON``, ``FLUX_VAR_RNOISE``, ``FLUX_VAR_FLAT`` (Jy2), ``DQ`` (uint32) and
    ``NPIXELS`` (pixels summed). The column units of the schema are written as ``TUNITn``, so that
    astropy and specutils read the columns as quantities.

    Attributes
    ----------
    spec_table : numpy.ndarray
        Structured array, one row per wavelength bin.
    """

    schema_url = schema_uri("iris_spectrum")

    def get_primary_array_name(self):
        """Return ``"spec_table"``: a spectrum has no SCI array."""
        return "spec_table"

    def to_fits(self, init, *args, **kwargs):
        """Write the model, then the column units of the schema into the table header (``TUNITn``).

        stdatamodels writes no ``TUNITn`` (a keyword astropy manages), so the units are set in the
        written file (astropy updates its checksums).

        Parameters
        ----------
        init : str or os.PathLike
            Output file.
        *args, **kwargs
            Passed to `TMTDataModel.to_fits`.
        """
        from astropy.io import fits

        super().to_fits(init, *args, **kwargs)
        units = column_units(type(self))
        flux_unit = self.meta.flux_unit
        if flux_unit and flux_unit != units["FLUX"]:
            # A spectrum of a cube not yet flux calibrated (DN/s): its flux columns in that unit.
            squared = _squared_unit(flux_unit)
            units.update(FLUX=flux_unit, FLUX_ERROR=flux_unit)
            units.update({name: squared for name in ("FLUX_VAR_POISSON", "FLUX_VAR_RNOISE", "FLUX_VAR_FLAT")})
        with fits.open(init, mode="update") as hdulist:
            table = hdulist["EXTRACT1D"]
            for index, name in enumerate(table.columns.names, start=1):
                if name in units:
                    table.header[f"TUNIT{index}"] = units[name]


def _squared_unit(unit):
    """Return the square of a unit string, as variances carry it (``DN/s`` -> ``(DN/s)**2``)."""
    return f"({unit})**2" if any(character in unit for character in "/* ") else f"{unit}**2"


def _derive_error_units(model):
    """Set ``BUNIT`` of ERR (the science unit) and of the variance arrays (its square)."""
    unit = model.meta.bunit_data
    if unit:
        model.meta.bunit_err = unit
        squared = _squared_unit(unit)
        for name in ("var_poisson", "var_rnoise", "var_flat"):
            if getattr(model, name, None) is not None:
                setattr(model.meta, f"bunit_{name}", squared)


class IRISMosaicModel(_ScienceArrays):
    """Level 3 imager mosaic (``_i2d``), drizzled from calibrated frames.

    No DQ array (as jwst's ``i2d``): a pixel without data has ``WHT = 0`` and NaN in SCI, ERR
    and the variances; the inputs' DQ flags excluded their pixels from the drizzle.

    Attributes
    ----------
    data : numpy.ndarray
        float32 (ny, nx) surface brightness (``BUNIT``, MJy/sr after ``photom``).
    err : numpy.ndarray
        float32 total 1-sigma uncertainty, ``sqrt(var_poisson + var_rnoise + var_flat)``.
    wht : numpy.ndarray
        float32 drizzle weight.
    con : numpy.ndarray
        int32 (nplanes, ny, nx) context: bit ``k % 32`` of plane ``k // 32`` marks input ``k``.
    var_poisson, var_rnoise, var_flat : numpy.ndarray
        float32 variance components.
    """

    schema_url = schema_uri("iris_mosaic")
    default_arrays = ("err", "wht", "var_poisson", "var_rnoise", "var_flat")


class TMTDarkModel(TMTReferenceFileModel):
    """Dark reference: dark rate (``BUNIT='DN/s'``) or counts per integration (``'DN'``)."""

    schema_url = schema_uri("tmt_dark")
    default_arrays = ("err", "dq")


class TMTFlatModel(TMTReferenceFileModel):
    """Flat-field reference: pixel response normalised to one, with its error."""

    schema_url = schema_uri("tmt_flat")
    default_arrays = ("err", "dq")


class TMTMaskModel(TMTReferenceFileModel):
    """Bad-pixel mask reference: DQ flags to OR into science frames, with DQ_DEF."""

    schema_url = schema_uri("tmt_mask")
    default_arrays = ()

    def get_primary_array_name(self):
        """Return ``"dq"``: a mask has no SCI array."""
        return "dq"


class TMTNonlinModel(TMTReferenceFileModel):
    """Nonlinearity reference: per-pixel polynomial coefficients (ncoeffs, ny, nx)."""

    schema_url = schema_uri("tmt_nonlin")
    default_arrays = ()

    def get_primary_array_name(self):
        """Return ``"coeffs"``, the (ncoeffs, ny, nx) coefficient cube."""
        return "coeffs"


class TMTSaturationModel(TMTReferenceFileModel):
    """Saturation reference: raw-DN threshold per pixel."""

    schema_url = schema_uri("tmt_saturation")
    default_arrays = ("dq",)


class TMTReadnoiseModel(TMTReferenceFileModel):
    """Read-noise reference: noise of a single read per pixel (DN)."""

    schema_url = schema_uri("tmt_readnoise")
    default_arrays = ("dq",)


class TMTGainModel(TMTReferenceFileModel):
    """Gain reference: electrons per DN per pixel."""

    schema_url = schema_uri("tmt_gain")
    default_arrays = ("dq",)


class TMTSliceGeometryModel(TMTReferenceFileModel):
    """Slice geometry reference of the slicer IFS: a binary table ``SLICES``, one row per slice.

    Columns ``SLICE``, ``BANK``, ``YSTART``/``YSTOP`` (the slice's rows), ``TRACE`` (4 coefficients
    of the left edge ``x_left(y)``, `numpy.polynomial.polynomial.polyval`) and ``WIDTH`` (pixels);
    ``meta.slice_geometry.n_spaxels`` (NSPAXEL) and ``spaxel_pixels`` (SPAXPIX). See
    ``docs/ifs_design.rst``.

    Attributes
    ----------
    slices : numpy.ndarray
        Structured array, one row per slice.
    """

    schema_url = schema_uri("tmt_slicegeo")
    default_arrays = ()

    def get_primary_array_name(self):
        """Return ``"slices"``: the geometry has no SCI array."""
        return "slices"


class TMTWavecalModel(TMTReferenceFileModel):
    """Wavelength solution reference of the slicer IFS: a binary table ``SOLUTIONS``, one row per slice.

    Columns ``SLICE``, ``COEFFS`` ((3, 3): ``lambda(s, y)`` in vacuum microns,
    `numpy.polynomial.polynomial.polyval2d`), ``NLINES``, ``RMS_PIX`` and ``RMS_KMS``. See
    ``docs/ifs_design.rst``.

    Attributes
    ----------
    solutions : numpy.ndarray
        Structured array, one row per slice.
    """

    schema_url = schema_uri("tmt_wavecal")
    default_arrays = ()

    def get_primary_array_name(self):
        """Return ``"solutions"``: the wavelength solution has no SCI array."""
        return "solutions"


def _registered_reference_models():
    """Return the model classes of registered reference types that have no class above.

    A reference type in `liger_iris_pipeline.reference_types` needs only its schema,
    ``schemas/tmt_<type>.schema.yaml``: its class is made here.
    """
    from ..reference_types import REFERENCE_TYPES

    made = {}
    for entry in REFERENCE_TYPES.values():
        if entry.model not in globals():
            made[entry.model] = type(
                entry.model,
                (TMTReferenceFileModel,),
                {
                    "__doc__": f"{entry.description} (``{entry.name}`` reference).",
                    "__module__": __name__,
                    "schema_url": schema_uri(f"tmt_{entry.name}"),
                    "default_arrays": (),
                },
            )
    return made


_REGISTERED = _registered_reference_models()
globals().update(_REGISTERED)
__all__ += sorted(_REGISTERED)
