"""Photometric calibration: DN/s -> MJy/sr with the PHOTOM reference."""

from .photom_step import PhotomStep

__all__ = ["PhotomStep"]
