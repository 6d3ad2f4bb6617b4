"""stpipe integration: the base classes of every liger_iris_pipeline step and pipeline."""

from .core import ReferenceFileError, TMTPipeline, TMTStep

__all__ = ["ReferenceFileError", "TMTPipeline", "TMTStep"]
