"""Merging of reduced subarray frames into a full frame."""

from .merge_subarrays_step import MergeSubarraysStep

__all__ = ["MergeSubarraysStep"]
