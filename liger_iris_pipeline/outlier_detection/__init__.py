"""Outlier detection of dithered frames."""

from .outlier_detection_step import OutlierDetectionStep

__all__ = ["OutlierDetectionStep"]
