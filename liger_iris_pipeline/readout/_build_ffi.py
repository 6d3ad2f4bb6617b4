"""cffi (API mode) build of the iris_readout C library for Python.

``setup.py`` declares ``cffi_modules=["liger_iris_pipeline/readout/_build_ffi.py:ffibuilder"]``;
running this file as a script compiles the extension in place, next to this
file, for development::

    python liger_iris_pipeline/readout/_build_ffi.py
"""

import os
import shutil
import tempfile
from pathlib import Path

from cffi import FFI

_ROOT = Path(__file__).resolve().parents[2]
_C = _ROOT / "iris_readout"


CDEF = """
typedef enum iris_status {
    IRIS_OK = 0, IRIS_ERR_NULL_POINTER = 1, IRIS_ERR_BAD_SIZE = 2,
    IRIS_ERR_TOO_FEW_READS = 3, IRIS_ERR_READ_TIMES = 4, IRIS_ERR_GEOMETRY = 5,
    IRIS_ERR_FOWLER_N = 6, IRIS_ERR_MODE = 7, IRIS_ERR_DTYPE = 8,
    IRIS_ERR_WEIGHTING = 9, IRIS_ERR_PARAM = 10, IRIS_ERR_WORKSPACE = 11,
    IRIS_ERR_NO_MEMORY = 12
} iris_status;
typedef struct iris_error { iris_status code; char message[256]; } iris_error;
typedef enum iris_mode { IRIS_MODE_UTR = 0, IRIS_MODE_CDS = 1, IRIS_MODE_MCDS = 2 } iris_mode;
typedef enum iris_weighting { IRIS_WEIGHT_OPTIMAL = 0, IRIS_WEIGHT_UNWEIGHTED = 1 } iris_weighting;
typedef enum iris_dtype { IRIS_DTYPE_UINT16 = 0, IRIS_DTYPE_INT32 = 1, IRIS_DTYPE_FLOAT32 = 2 } iris_dtype;
typedef struct iris_readout_params {
    iris_mode mode; iris_weighting weighting; int fowler_n; double jump_threshold;
    double read_noise; double gain; double saturation; int nthreads;
    double jump_false_alarm;
} iris_readout_params;
typedef struct iris_ramp {
    const void *data; iris_dtype dtype; size_t nreads, ny, nx; const double *read_times;
} iris_ramp;
typedef struct iris_refs {
    size_t ref_ny, ref_nx, offset_y, offset_x, ncoeffs;
    const float *nonlin, *zero_level, *saturation, *read_noise, *gain;
    const uint32_t *mask;
} iris_refs;
typedef struct iris_outputs {
    float *rate, *var_poisson, *var_rnoise; uint32_t *dq; uint16_t *n_usable;
} iris_outputs;
typedef struct iris_workspace iris_workspace;

const char *iris_readout_version(void);
const char *iris_status_string(iris_status code);
void iris_readout_params_default(iris_readout_params *p);
void iris_refs_default(iris_refs *r);
iris_workspace *iris_workspace_create(size_t max_nreads, size_t max_nx, int nthreads, iris_error *err);
void iris_workspace_free(iris_workspace *ws);
iris_status iris_readout_fit(iris_workspace *ws, const iris_ramp *ramp, const iris_refs *refs,
                             const iris_readout_params *params, const iris_outputs *out,
                             iris_error *err);
iris_status iris_readout_sum_reads(const uint16_t *data, size_t nreads, size_t npix,
                                   uint32_t *out, int nthreads, iris_error *err);
iris_status iris_readout_combine_integrations(
    size_t nints, size_t npix, const float *rate, const float *var_poisson,
    const float *var_rnoise, const uint32_t *dq, float *rate_out,
    float *var_poisson_out, float *var_rnoise_out, uint32_t *dq_out, iris_error *err);
"""


def make_ffi(absolute=False):
    """FFI builder; source paths relative to the working directory (as
    setuptools wants them) unless ``absolute``."""

    def path(p):
        return str(p) if absolute else os.path.relpath(p, os.getcwd())

    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        "liger_iris_pipeline.readout._iris_readout_ffi",
        '#include "iris_readout.h"',
        sources=sorted(path(p) for p in (_C / "src").glob("*.c")),
        include_dirs=[path(_C / "include")],
        depends=[
            path(_C / "include" / "iris_readout.h"),
            path(_C / "src" / "internal.h"),
            path(_C / "src" / "kernel.inc"),
        ],
        # -fno-math-errno lets sqrtf vectorise (the library never reads errno);
        # -ffp-contract=fast gives fused multiply-adds in the AVX2+FMA kernel
        extra_compile_args=["-O3", "-fopenmp", "-std=c11", "-fno-math-errno", "-ffp-contract=fast"],
        extra_link_args=["-fopenmp"],
        libraries=["m"],
    )
    return ffi


ffibuilder = make_ffi()

if __name__ == "__main__":
    # build in a scratch directory, then put the module next to this file
    with tempfile.TemporaryDirectory() as tmp:
        built = make_ffi(absolute=True).compile(tmpdir=tmp, verbose=False)
        shutil.copy(built, Path(__file__).resolve().parent)
