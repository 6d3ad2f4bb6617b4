"""Alignment of the WCS of Level 2 frames to each other and to a reference catalog (Level 3, ``image3``)."""

from .tweakreg import AlignmentResult, align_frames, detect_sources, header_from_gwcs
from .tweakreg_step import TweakRegStep

__all__ = ["AlignmentResult", "TweakRegStep", "align_frames", "detect_sources", "header_from_gwcs"]
