"""Pipelines: ordered sequences of steps for each processing level."""

from .calibration import MasterDarkPipeline, ProcessFlatfieldL2
from .detector1 import Detector1Pipeline
from .distortion_calibration import DistortionCalibrationPipeline
from .image2 import ProcessImagerL2Pipeline

__all__ = [
    "Detector1Pipeline",
    "DistortionCalibrationPipeline",
    "MasterDarkPipeline",
    "ProcessFlatfieldL2",
    "ProcessImagerL2Pipeline",
]
