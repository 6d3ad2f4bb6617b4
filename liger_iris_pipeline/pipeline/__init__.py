"""Pipelines: ordered sequences of steps for each processing level."""

from .detector1 import Detector1Pipeline

__all__ = ["Detector1Pipeline"]
