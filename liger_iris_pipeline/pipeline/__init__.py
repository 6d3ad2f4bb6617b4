"""Pipelines: ordered sequences of steps for each processing level.

Each pipeline's module is imported on first use: ``tmtrun detector1`` or ``image2`` does not pay
for importing image3's steps (photutils, scipy.stats...), which would double its start-up time.
"""

import importlib

_PIPELINES = {
    "Detector1Pipeline": "detector1",
    "DistortionCalibrationPipeline": "distortion_calibration",
    "IFSFlatCalibrationPipeline": "slicer_calibration",
    "MasterDarkPipeline": "calibration",
    "PhotomCalibrationPipeline": "photom_calibration",
    "ProcessFlatfieldL2": "calibration",
    "ProcessIFSL2Pipeline": "spec2",
    "ProcessImagerL2Pipeline": "image2",
    "ProcessImagerL3Pipeline": "image3",
    "SliceGeometryCalibrationPipeline": "slicer_calibration",
    "WavecalCalibrationPipeline": "wavecal_calibration",
}

__all__ = sorted(_PIPELINES)


def __getattr__(name):
    module = _PIPELINES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__():
    return sorted([*globals(), *_PIPELINES])
