"""Pipelines: ordered sequences of steps for each processing level."""

from .calibration import MasterDarkPipeline, ProcessFlatfieldL2
from .detector1 import Detector1Pipeline
from .distortion_calibration import DistortionCalibrationPipeline
from .image2 import ProcessImagerL2Pipeline
from .image3 import ProcessImagerL3Pipeline
from .photom_calibration import PhotomCalibrationPipeline

__all__ = [
    "Detector1Pipeline",
    "DistortionCalibrationPipeline",
    "MasterDarkPipeline",
    "PhotomCalibrationPipeline",
    "ProcessFlatfieldL2",
    "ProcessImagerL2Pipeline",
    "ProcessImagerL3Pipeline",
]
