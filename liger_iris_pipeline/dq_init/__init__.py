"""Data quality initialisation from the bad-pixel mask reference."""

from .dq_init_step import DQInitStep

__all__ = ["DQInitStep"]
