"""Parsing of the SUBARR_MAP extension into subarray metadata and DQ flags."""

from .parse_subarray_map_step import ParseSubarrayMapStep

__all__ = ["ParseSubarrayMapStep"]
