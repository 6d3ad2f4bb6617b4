"""The ``crds.tmt`` observatory package (reached as ``crds.tmt`` once the plugin is registered).

crds reads the module attributes below by name; the type definitions come from ``specs/``.
"""

import os.path

from crds.core import reftypes

HERE = os.path.dirname(__file__) or "."

TYPES = reftypes.from_package_file("tmt", __file__)

OBSERVATORY = TYPES.observatory
INSTRUMENTS = TYPES.instruments
EXTENSIONS = TYPES.extensions
TEXT_DESCR = TYPES.text_descr
FILEKINDS = TYPES.filekinds

INSTRUMENT_FIXERS = {}
TYPE_FIXERS = {}

PROVENANCE_KEYWORDS = ("META.DESCRIPTION", "META.PEDIGREE", "META.USEAFTER", "META.AUTHOR")
USEAFTER_KEYWORDS = ("META.OBSERVATION.DATE", "META.OBSERVATION.TIME")
DEFAULT_SELECTORS = ("Match", "UseAfter")
