"""Subtraction of one frame from another."""

from .subtract_images_step import SubtractImagesStep

__all__ = ["SubtractImagesStep"]
