"""32-bit pixel data-quality flags.

The bit assignments are JWST's, so that DQ arrays mean the same thing in both
pipelines, with one documented exception: bit 29, used by JWST only for failed-open
NIRSpec micro-shutters (``MSA_FAILED_OPEN``), is ``OUTSIDE_SUBARRAY`` here. IRIS has
no micro-shutter array, and a pixel of a full frame that no subarray covered is
marked ``OUTSIDE_SUBARRAY | DO_NOT_USE`` without overloading any other flag.
"""

import numpy as np

pixel = {
    "GOOD": 0,
    "DO_NOT_USE": 2**0,
    "SATURATED": 2**1,
    "JUMP_DET": 2**2,
    "DROPOUT": 2**3,
    "OUTLIER": 2**4,
    "PERSISTENCE": 2**5,
    "AD_FLOOR": 2**6,
    "CHARGELOSS": 2**7,
    "UNRELIABLE_ERROR": 2**8,
    "NON_SCIENCE": 2**9,
    "DEAD": 2**10,
    "HOT": 2**11,
    "WARM": 2**12,
    "LOW_QE": 2**13,
    "RC": 2**14,
    "TELEGRAPH": 2**15,
    "NONLINEAR": 2**16,
    "BAD_REF_PIXEL": 2**17,
    "NO_FLAT_FIELD": 2**18,
    "NO_GAIN_VALUE": 2**19,
    "NO_LIN_CORR": 2**20,
    "NO_SAT_CHECK": 2**21,
    "UNRELIABLE_BIAS": 2**22,
    "UNRELIABLE_DARK": 2**23,
    "UNRELIABLE_SLOPE": 2**24,
    "UNRELIABLE_FLAT": 2**25,
    "OPEN": 2**26,
    "ADJ_OPEN": 2**27,
    "FLUX_ESTIMATED": 2**28,
    "OUTSIDE_SUBARRAY": 2**29,
    "OTHER_BAD_PIXEL": 2**30,
    "REFERENCE_PIXEL": 2**31,
}
"""Flag name -> bit value for the 2-D (pixel) DQ arrays."""

descriptions = {
    "GOOD": "Good pixel",
    "DO_NOT_USE": "Bad pixel; do not use for science or calibration",
    "SATURATED": "Pixel saturated during the exposure",
    "JUMP_DET": "Jump (cosmic ray) detected during the exposure",
    "DROPOUT": "Data lost in transmission",
    "OUTLIER": "Flagged by outlier detection",
    "PERSISTENCE": "High persistence",
    "AD_FLOOR": "Below the A/D floor",
    "CHARGELOSS": "Charge migration",
    "UNRELIABLE_ERROR": "Uncertainty exceeds quoted error",
    "NON_SCIENCE": "Pixel not on the science portion of the detector",
    "DEAD": "Dead pixel",
    "HOT": "Hot pixel",
    "WARM": "Warm pixel",
    "LOW_QE": "Low quantum efficiency",
    "RC": "RC pixel",
    "TELEGRAPH": "Telegraph pixel",
    "NONLINEAR": "Pixel highly nonlinear",
    "BAD_REF_PIXEL": "Reference pixel cannot be used",
    "NO_FLAT_FIELD": "Flat field cannot be measured",
    "NO_GAIN_VALUE": "Gain cannot be measured",
    "NO_LIN_CORR": "Linearity correction not available",
    "NO_SAT_CHECK": "Saturation check not available",
    "UNRELIABLE_BIAS": "Bias variance large",
    "UNRELIABLE_DARK": "Dark variance large or dark undefined",
    "UNRELIABLE_SLOPE": "Slope variance large",
    "UNRELIABLE_FLAT": "Flat variance large",
    "OPEN": "Open pixel (counts move to an adjacent pixel)",
    "ADJ_OPEN": "Adjacent to an open pixel",
    "FLUX_ESTIMATED": "Pixel flux estimated from neighbours",
    "OUTSIDE_SUBARRAY": "Pixel outside every subarray that was read out",
    "OTHER_BAD_PIXEL": "A catch-all flag",
    "REFERENCE_PIXEL": "Pixel is a reference pixel",
}

group = {name: pixel[name] for name in ("GOOD", "DO_NOT_USE", "SATURATED", "JUMP_DET", "DROPOUT")}
"""Flag name -> bit value for the per-read (group) DQ arrays (uint8, JWST's first bits)."""


def flags_to_names(value):
    """Return the names of the flags set in one DQ value.

    Parameters
    ----------
    value : int
        A DQ value (any combination of bits).

    Returns
    -------
    list of str
        Flag names in bit order; ``["GOOD"]`` for 0.
    """
    value = int(value)
    if value < 0 or value >= 2**32:
        raise ValueError(f"DQ value {value} does not fit in 32 unsigned bits")
    if value == 0:
        return ["GOOD"]
    return [name for name, bit in pixel.items() if bit and value & bit]


def names_to_flags(names):
    """Return the DQ value that sets the named flags.

    Parameters
    ----------
    names : str or iterable of str
        Flag names, as a list or a comma/plus/space separated string
        (``"DO_NOT_USE, SATURATED"``); case-insensitive.

    Returns
    -------
    int
        The OR of the bits.
    """
    if isinstance(names, str):
        names = names.replace("+", ",").replace(" ", ",").split(",")
    value = 0
    for name in names:
        key = name.strip().upper()
        if not key:
            continue
        if key not in pixel:
            raise KeyError(f"unknown DQ flag name {name!r}; known flags: {', '.join(pixel)}")
        value |= pixel[key]
    return value


def dq_def_table():
    """Return the DQ_DEF table describing every flag, for reference files.

    Returns
    -------
    numpy.ndarray
        Structured array with BIT, VALUE, NAME, DESCRIPTION columns.
    """
    rows = [(int(bit).bit_length() - 1, bit, name, descriptions[name]) for name, bit in pixel.items() if bit]
    dtype = [("BIT", "<u4"), ("VALUE", "<u4"), ("NAME", "S40"), ("DESCRIPTION", "S80")]
    return np.array(rows, dtype=dtype)
