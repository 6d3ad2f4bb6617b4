"""Level 2 associations: JSON files grouping a science exposure with its background exposures."""

from .asn import AssociationError, Level2Product, load_asn, make_asn

__all__ = ["AssociationError", "Level2Product", "load_asn", "make_asn"]
