"""The instruments the simulator knows: IRIS on TMT and Liger on Keck.

Values used (say where they come from, so they can be revised in one place):

- IRIS imager: 4096 x 4096 HAWAII-4RG-class detector, 0.004 arcsec/pixel; TMT: 30 m
  primary, ~630 m^2 collecting area (IRIS design papers, TMT project facts).
- Liger imager: 2048 x 2048 detector at 0.010 arcsec/pixel (the values the project was
  given for Liger's imager; not checked against a later design); Keck: 10 m primary of 36
  hexagonal segments of 0.9 m side, ~76 m^2.
- Read time: 1.47 s for a full-frame read of the IRIS detector (32 channels); no published
  Liger value was found, so the same time per read is assumed.
"""

from dataclasses import dataclass

__all__ = ["INSTRUMENTS", "InstrumentModel", "instrument_model"]


@dataclass(frozen=True)
class InstrumentModel:
    """Fixed facts of one instrument's imager and its telescope.

    Attributes
    ----------
    name : str
        INSTRUME value (``IRIS``, ``LIGER``).
    telescope : str
        TELESCOP value (``TMT``, ``KECK``).
    detector_shape : tuple of int
        ``(ny, nx)`` of the imager detector.
    plate_scale : float
        arcsec/pixel.
    telescope_diameter : float
        Primary mirror diameter (m), for the diffraction-limited PSF.
    collecting_area : float
        m^2, for the sky background.
    read_time : float
        Time between full-frame reads (s).
    serial_prefix : str
        Start of the simulated detectors' serial numbers (DETSERNO).
    """

    name: str
    telescope: str
    detector_shape: tuple
    plate_scale: float
    telescope_diameter: float
    collecting_area: float
    read_time: float
    serial_prefix: str


INSTRUMENTS = {
    "iris": InstrumentModel("IRIS", "TMT", (4096, 4096), 0.004, 30.0, 630.0, 1.47, "SIM"),
    "liger": InstrumentModel("LIGER", "KECK", (2048, 2048), 0.010, 10.0, 76.0, 1.47, "SIM-LIGER"),
}
"""Lower-case instrument name -> `InstrumentModel`."""


def instrument_model(name):
    """Return the facts of an instrument.

    Parameters
    ----------
    name : str
        ``iris`` or ``liger`` (any case).

    Returns
    -------
    InstrumentModel

    Raises
    ------
    ValueError
        An instrument the simulator does not know.
    """
    try:
        return INSTRUMENTS[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown instrument {name!r}; known: {', '.join(INSTRUMENTS)}") from None
