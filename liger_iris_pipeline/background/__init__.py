"""Background (sky) subtraction."""

from .background_step import BackgroundStep

__all__ = ["BackgroundStep"]
