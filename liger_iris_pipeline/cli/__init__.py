"""The package's commands, one module each: ``tmtrun`` (`tmtrun`), ``tmt-crds-cache``
(`crds_cache`) and ``liger-iris-demo`` (`demo`). ``tmt-asn`` lives with the associations it writes.

Imported only by the commands themselves: ``import liger_iris_pipeline`` does not load them.
"""
