"""ASDF entry point that makes the datamodel schemas resolvable by URI."""

import importlib.resources

SCHEMA_URI_PREFIX = "asdf://tmt.org/schemas/liger_iris_pipeline/"


def get_resource_mappings():
    """Return the resource mapping of the package's schema folder.

    Registered with the ``asdf.resource_mappings`` entry point.

    Returns
    -------
    list of asdf.resource.DirectoryResourceMapping
        One mapping from ``SCHEMA_URI_PREFIX`` to ``datamodels/schemas``.
    """
    from asdf.resource import DirectoryResourceMapping

    schemas = importlib.resources.files("liger_iris_pipeline.datamodels") / "schemas"
    return [DirectoryResourceMapping(schemas, SCHEMA_URI_PREFIX)]
