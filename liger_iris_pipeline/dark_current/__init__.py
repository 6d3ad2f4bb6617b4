"""Dark current subtraction."""

from .dark_current_step import DarkCurrentStep

__all__ = ["DarkCurrentStep"]
