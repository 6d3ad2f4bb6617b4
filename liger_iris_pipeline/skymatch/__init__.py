"""Sky matching of overlapping Level 2 frames (Level 3, ``image3``)."""

from .skymatch import SkyFrame, good_sky_pixels, match_sky
from .skymatch_step import SkyMatchStep

__all__ = ["SkyFrame", "SkyMatchStep", "good_sky_pixels", "match_sky"]
