"""Source catalog of a mosaic."""

from .source_catalog_step import SourceCatalogStep

__all__ = ["SourceCatalogStep"]
