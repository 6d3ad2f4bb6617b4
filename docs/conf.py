"""Sphinx configuration for liger_iris_pipeline."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

import liger_iris_pipeline  # noqa: E402

project = "liger_iris_pipeline"
author = "liger_iris_pipeline developers"
release = liger_iris_pipeline.__version__
version = release
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "schema_tables"]
exclude_patterns = ["_build"]
html_theme = "sphinx_rtd_theme" if __import__("importlib").util.find_spec("sphinx_rtd_theme") else "alabaster"
