"""Data models of TMT/IRIS products, defined by the YAML schemas in ``schemas/``."""

from .. import dqflags
from .model_base import DataModelError, TMTDataModel, TMTReferenceFileModel, header_metadata
from .models import (
    IRISImageModel,
    TMTDarkModel,
    TMTFlatModel,
    TMTGainModel,
    TMTMaskModel,
    TMTNonlinModel,
    TMTRampModel,
    TMTReadnoiseModel,
    TMTSaturationModel,
)
from .open_model import MODEL_CLASSES, open  # noqa: A004

# Reference types registered without a class of their own (see models._registered_reference_models).
globals().update({name: MODEL_CLASSES[name] for name in MODEL_CLASSES if name not in globals()})

__all__ = [
    "MODEL_CLASSES",
    "DataModelError",
    "IRISImageModel",
    "TMTDarkModel",
    "TMTDataModel",
    "TMTFlatModel",
    "TMTGainModel",
    "TMTMaskModel",
    "TMTNonlinModel",
    "TMTRampModel",
    "TMTReadnoiseModel",
    "TMTReferenceFileModel",
    "TMTSaturationModel",
    "dqflags",
    "header_metadata",
    "open",
]
