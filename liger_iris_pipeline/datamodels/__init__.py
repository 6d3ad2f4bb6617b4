"""Data models of TMT/IRIS products, defined by the YAML schemas in ``schemas/``."""

from .. import dqflags
from . import models
from .model_base import DataModelError, TMTDataModel, TMTReferenceFileModel, header_metadata
from .models import *  # noqa: F403 - models.__all__ (with the registry's reference models) is the list
from .open_model import MODEL_CLASSES, open  # noqa: A004

__all__ = [
    "MODEL_CLASSES",
    "DataModelError",
    "TMTDataModel",
    "TMTReferenceFileModel",
    "dqflags",
    "header_metadata",
    "open",
    *models.__all__,
]
