"""Build hook: compiles the cffi extension of the iris_readout C library."""

from pathlib import Path

from setuptools import setup

ffi_builder = Path(__file__).parent / "liger_iris_pipeline" / "readout" / "_build_ffi.py"

setup(
    cffi_modules=[f"{ffi_builder.relative_to(Path(__file__).parent)}:ffibuilder"] if ffi_builder.exists() else [],
)
