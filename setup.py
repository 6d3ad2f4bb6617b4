"""Build hooks: compile the cffi extension of the iris_readout C library; install the CRDS plugin's .pth."""

import re
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).parent
FFI_BUILDER = HERE / "liger_iris_pipeline" / "readout" / "_build_ffi.py"
CRDS_PTH = HERE / "liger_iris_pipeline" / "crds_plugin" / "liger_iris_pipeline_crds.pth"


def library_version():
    """Return the version of the package: the iris_readout C library's, from its header.

    One number for both, so the version the Python package reports is the version of the C
    library it was built with.
    """
    header = (HERE / "iris_readout" / "include" / "iris_readout.h").read_text()
    parts = [
        re.search(rf"#define IRIS_READOUT_VERSION_{name} (\d+)", header).group(1)
        for name in ("MAJOR", "MINOR", "PATCH")
    ]
    return ".".join(parts)


class BuildPyWithPth(build_py):
    """Also install ``liger_iris_pipeline_crds.pth`` at the top of site-packages.

    It registers the tmt CRDS observatory in every process that imports crds (the stock ``crds``
    command, multiprocessing workers). A regular wheel takes site-packages files from
    ``build_lib``; an editable wheel (``pip install -e``) from the install directory.
    """

    def run(self):
        super().run()
        root = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        self.copy_file(str(CRDS_PTH), str(Path(root) / CRDS_PTH.name))


setup(
    version=library_version(),
    cmdclass={"build_py": BuildPyWithPth},
    cffi_modules=[f"{FFI_BUILDER.relative_to(HERE)}:ffibuilder"] if FFI_BUILDER.exists() else [],
)
