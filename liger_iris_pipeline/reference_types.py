"""The reference-file types of the pipeline: one table that everything else reads.

The CRDS plugin (instruments, type specs, certify rules, rmap parkeys, header keywords), the
schemas' ``meta.ref_file.<type>`` blocks and REFTYPE enum, the steps (the model class a
reference opens as), ``tmt-crds-cache`` and the documentation all take their facts from
`REFERENCE_TYPES`. Adding a type is one entry here plus its model's schema
(``datamodels/schemas/tmt_<name>.schema.yaml``), then
``python -m liger_iris_pipeline.crds_plugin.generate`` (see ``docs/developer.rst``).

Plain data only: the CRDS plugin imports this module at interpreter start-up.
"""

from dataclasses import dataclass

__all__ = [
    "DETECTOR_PARKEYS",
    "IFS_PARKEYS",
    "INSTRUMENTS",
    "REFERENCE_TYPES",
    "UNTYPED_REF_FILES",
    "ReferenceType",
    "instrument_types",
    "reference_type",
]


@dataclass(frozen=True)
class ReferenceType:
    """What the pipeline knows about one reference-file type.

    Attributes
    ----------
    name : str
        CRDS filekind, lower case (``dark``); the ``override_<name>`` step parameter and
        ``meta.ref_file.<name>``.
    model : str
        Class in `liger_iris_pipeline.datamodels` the reference opens as.
    keyword : str
        FITS keyword recording the file used in a product's primary header (8 characters).
    parkeys : tuple of str
        Datamodel paths CRDS matches on (the rmap's Match parkeys; every type also selects by
        its USEAFTER date).
    description : str
        One line for the CRDS type spec and the documentation.
    instruments : tuple of str
        Instruments (lower case) with a reference of this type.
    """

    name: str
    model: str
    keyword: str
    parkeys: tuple
    description: str
    instruments: tuple = ("iris", "liger")


DETECTOR_PARKEYS = ("META.INSTRUMENT.DETECTOR",)

IFS_PARKEYS = (*DETECTOR_PARKEYS, "META.INSTRUMENT.IFS_MODE", "META.INSTRUMENT.SPAXEL_SCALE")
"""Selection keys of the IFS calibrations: the detector, the IFS mode and the spaxel scale (``docs/ifs_design.rst``)."""

REFERENCE_TYPES = {
    entry.name: entry
    for entry in (
        ReferenceType(
            "dark",
            "TMTDarkModel",
            "R_DARK",
            (*DETECTOR_PARKEYS, "META.SUBARRAY.NAME", "META.EXPOSURE.READOUT_MODE"),
            "Dark current of the imager detector",
        ),
        ReferenceType(
            "flat",
            "TMTFlatModel",
            "R_FLAT",
            (*DETECTOR_PARKEYS, "META.INSTRUMENT.FILTER", "META.INSTRUMENT.PUPIL"),
            "Flat field of the imager detector",
        ),
        ReferenceType("mask", "TMTMaskModel", "R_MASK", DETECTOR_PARKEYS, "Bad pixel mask of the imager detector"),
        ReferenceType(
            "nonlin", "TMTNonlinModel", "R_NONLIN", DETECTOR_PARKEYS, "Nonlinearity coefficients of the imager detector"
        ),
        ReferenceType(
            "saturation", "TMTSaturationModel", "R_SATURA", DETECTOR_PARKEYS, "Saturation level of the imager detector"
        ),
        ReferenceType(
            "readnoise", "TMTReadnoiseModel", "R_READNO", DETECTOR_PARKEYS, "Read noise of the imager detector"
        ),
        ReferenceType("gain", "TMTGainModel", "R_GAIN", DETECTOR_PARKEYS, "Gain of the imager detector"),
        ReferenceType(
            "distortion",
            "TMTDistortionModel",
            "R_DISTOR",
            DETECTOR_PARKEYS,
            "Geometric distortion of the imager: detector pixels to the undistorted focal plane",
        ),
        ReferenceType(
            "photom",
            "TMTPhotomModel",
            "R_PHOTOM",
            DETECTOR_PARKEYS,
            "Photometric conversion of the imager from DN/s to MJy/sr, one row per filter",
        ),
        ReferenceType(
            "slicegeo",
            "TMTSliceGeometryModel",
            "R_SLCGEO",
            IFS_PARKEYS,
            "Slice geometry of the slicer IFS: rows and left-edge trace of each slice on the detector",
        ),
        ReferenceType(
            "wavecal",
            "TMTWavecalModel",
            "R_WAVCAL",
            (*IFS_PARKEYS, "META.INSTRUMENT.FILTER"),
            "Wavelength solution of the slicer IFS: a 2-D polynomial per slice, from arc lamps",
        ),
    )
}
"""Reference type name -> `ReferenceType`, in the order steps use them."""


INSTRUMENTS = tuple(sorted({instrument for entry in REFERENCE_TYPES.values() for instrument in entry.instruments}))
"""Instruments (lower case) with references in CRDS: each has its own imap and rmaps."""

UNTYPED_REF_FILES = {}
"""``meta.ref_file.<name>`` entries (-> FITS keyword) steps record although CRDS has no such type yet;
a registry entry of the same name replaces one."""


def instrument_types(instrument):
    """Return the registry entries of the types an instrument has references of, in registry order.

    Parameters
    ----------
    instrument : str
        Instrument name, any case.

    Returns
    -------
    list of ReferenceType
    """
    return [entry for entry in REFERENCE_TYPES.values() if instrument.lower() in entry.instruments]


def reference_type(name):
    """Return the registry entry of a reference type.

    Parameters
    ----------
    name : str
        Type name, any case (``DARK`` or ``dark``).

    Returns
    -------
    ReferenceType

    Raises
    ------
    KeyError
        Not a type of this pipeline; the message lists the known ones.
    """
    try:
        return REFERENCE_TYPES[name.lower()]
    except KeyError:
        raise KeyError(f"unknown reference type {name!r}; known: {', '.join(REFERENCE_TYPES)}") from None
