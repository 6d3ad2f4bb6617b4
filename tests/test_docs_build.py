"""The Sphinx documentation builds without a warning."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("sphinx")


def test_sphinx_build_is_clean(tmp_path):
    docs = Path(__file__).parents[1] / "docs"
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(docs), str(tmp_path / "html")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "html" / "steps" / "ramp_fitting" / "index.html").exists()
