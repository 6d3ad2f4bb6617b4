"""Truth reference files: the calibration data a perfect calibration program would derive.

Every model carries the metadata CRDS selects on (telescope and instrument of the detector,
detector IMG1, imager mode, subarray) plus REFTYPE, USEAFTER, PEDIGREE ``SIMULATION``,
DESCRIP and AUTHOR, and the DQ_DEF table.

- DARK: dark rate (DN/s) with a small error (1e-3 DN/s plus 1 %), DQ = bad-pixel mask.
- FLAT: flat (0 at reference and dead pixels, flagged NO_FLAT_FIELD | DO_NOT_USE) with a
  small error (0.2 %), DQ = bad-pixel mask plus NO_FLAT_FIELD.
- MASK: the bad-pixel mask (REFERENCE_PIXEL, DEAD, HOT, DO_NOT_USE).
- NONLIN: coefficients ``(c0, c1, c2, c3) = (0, 1, c2, c3)`` of ``P(s)``; pixels
  without response flagged NO_LIN_CORR.
- SATURATION: raw-DN saturation level; pixels without response flagged NO_SAT_CHECK.
- READNOISE: single-read noise (DN). GAIN: e-/DN. Both with DQ = bad-pixel mask.
"""

from ..dqflags import pixel as _FLAGS
from ..reference_types import REFERENCE_TYPES as _REGISTRY
from .detector import DO_NOT_USE, NO_RESPONSE
from .instruments import instrument_model

__all__ = ["REFERENCE_TYPES", "reference_model", "reference_models"]

AUTHOR = "liger_iris_pipeline.simulate"

_NO_FLAT_FIELD = _FLAGS["NO_FLAT_FIELD"]
_NO_LIN_CORR = _FLAGS["NO_LIN_CORR"]
_NO_SAT_CHECK = _FLAGS["NO_SAT_CHECK"]


_DESCRIPTIONS = {
    "DARK": "Simulated dark current rate (truth)",
    "FLAT": "Simulated flat field: illumination x pixel response (truth)",
    "MASK": "Simulated bad-pixel mask: reference, dead and hot pixels (truth)",
    "NONLIN": "Simulated nonlinearity correction s + c2 s^2 + c3 s^3 (truth)",
    "SATURATION": "Simulated saturation level in raw DN (truth)",
    "READNOISE": "Simulated single-read noise in DN (truth)",
    "GAIN": "Simulated gain in e-/DN (truth)",
}

REFERENCE_TYPES = tuple(name.upper() for name in _REGISTRY if name.upper() in _DESCRIPTIONS)
"""The registered reference types (`liger_iris_pipeline.reference_types`) the simulator has a truth for."""


def reference_models(detector, subarray=None, useafter="2024-01-01T00:00:00", filter="Kbb"):  # noqa: A002
    """Return the truth reference models of a detector.

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    subarray : tuple of int, optional
        ``(xstart, ystart, xsize, ysize)`` (1-based starts) to cut the references to;
        full frame if None.
    useafter : str
        USEAFTER (``YYYY-MM-DDThh:mm:ss``).
    filter : str
        FILTER of the flat (the simulated flat is the same in every filter).

    Returns
    -------
    dict
        REFTYPE -> model (`TMTDarkModel`, `TMTFlatModel`, `TMTMaskModel`,
        `TMTNonlinModel`, `TMTSaturationModel`, `TMTReadnoiseModel`, `TMTGainModel`).
    """
    return {
        reftype: reference_model(detector, reftype, subarray=subarray, useafter=useafter, filter=filter)
        for reftype in REFERENCE_TYPES
    }


def reference_model(detector, reftype, subarray=None, useafter="2024-01-01T00:00:00", filter="Kbb"):  # noqa: A002
    """Return one truth reference model of a detector (see `reference_models`).

    Parameters
    ----------
    detector : DetectorTruth
        The detector.
    reftype : str
        One of `REFERENCE_TYPES`.
    subarray : tuple of int, optional
        ``(xstart, ystart, xsize, ysize)`` (1-based starts); full frame if None.
    useafter : str
        USEAFTER (``YYYY-MM-DDThh:mm:ss``).
    filter : str
        FILTER of a flat.

    Returns
    -------
    TMTReferenceFileModel
    """
    import numpy as np

    from .. import datamodels

    if reftype not in REFERENCE_TYPES:
        raise ValueError(f"unknown reference type {reftype!r}; simulated types: {', '.join(REFERENCE_TYPES)}")
    det = detector if subarray is None else detector.cut(subarray)
    mask = np.array(det.mask)

    def flagged(bits):
        # Pixels that collect no charge cannot be flat-fielded, linearised or saturation-checked.
        return np.where((mask & NO_RESPONSE) != 0, mask | bits, mask).astype(np.uint32)

    if reftype == "DARK":
        model = datamodels.TMTDarkModel(data=np.array(det.dark_rate), err=1.0e-3 + 0.01 * det.dark_rate, dq=mask)
        model.meta.bunit_data = "DN/s"
    elif reftype == "FLAT":
        err = np.full(det.shape, 0.002, dtype=np.float32)
        model = datamodels.TMTFlatModel(data=np.array(det.flat), err=err, dq=flagged(_NO_FLAT_FIELD | DO_NOT_USE))
        model.meta.instrument.filter = filter
    elif reftype == "MASK":
        model = datamodels.TMTMaskModel(dq=mask)
    elif reftype == "NONLIN":
        model = datamodels.TMTNonlinModel(coeffs=det.nonlin_coefficients(), dq=flagged(_NO_LIN_CORR))
    elif reftype == "SATURATION":
        model = datamodels.TMTSaturationModel(data=np.array(det.saturation), dq=flagged(_NO_SAT_CHECK))
    elif reftype == "READNOISE":
        model = datamodels.TMTReadnoiseModel(data=np.array(det.read_noise), dq=mask)
    else:
        model = datamodels.TMTGainModel(data=np.array(det.gain), dq=mask)

    meta = model.meta
    instrument = instrument_model(det.instrument)
    meta.telescope = instrument.telescope
    meta.instrument.name = instrument.name
    meta.instrument.detector = "IMG1"
    meta.instrument.detector_serial = det.serial
    meta.instrument.mode = "IMAGER"
    meta.reftype = reftype
    meta.useafter = useafter
    meta.pedigree = "SIMULATION"
    meta.description = _DESCRIPTIONS[reftype]
    meta.author = AUTHOR
    meta.subarray = det.subarray_metadata()
    model.dq_def = datamodels.dqflags.dq_def_table()
    return model
