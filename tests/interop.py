"""The libraries astronomers open our products with (spectral-cube, specutils), from their own folder.

`make test` installs them into ``<venv>/interop`` (``tests/interop_requirements.txt``), apart from
the pipeline's environment: there their ASDF plug-ins would be imported by every process that reads
a model. The folder goes last on ``sys.path``, so the environment's numpy and astropy are the ones used.
"""

import sys
import warnings
from pathlib import Path

from astropy.utils.exceptions import AstropyPendingDeprecationWarning

INTEROP = Path(sys.prefix) / "interop"

if not INTEROP.is_dir():
    raise ImportError(
        f"{INTEROP} is missing: `make test` installs spectral-cube and specutils there "
        f"(pip install --target {INTEROP} --no-deps -r tests/interop_requirements.txt)"
    )
if str(INTEROP) not in sys.path:
    sys.path.append(str(INTEROP))

with warnings.catch_warnings():
    # spectral-cube 0.7 imports a name astropy 8 deprecates
    warnings.filterwarnings("ignore", "COPY_IF_NEEDED", AstropyPendingDeprecationWarning)
    from spectral_cube import SpectralCube
    from specutils import Spectrum

__all__ = ["INTEROP", "SpectralCube", "Spectrum"]
