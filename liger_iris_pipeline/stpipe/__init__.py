"""stpipe integration: the base classes of every liger_iris_pipeline step and pipeline."""

from .core import ReferenceFileError, StepSkipped, TMTPipeline, TMTStep

__all__ = ["ReferenceFileError", "StepSkipped", "TMTPipeline", "TMTStep"]
