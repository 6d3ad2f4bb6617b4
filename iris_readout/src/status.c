/* Version, status strings, error reporting and parameter defaults. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define IRIS_STR2(x) #x
#define IRIS_STR(x) IRIS_STR2(x)

const char *iris_readout_version(void)
{
    return IRIS_STR(IRIS_READOUT_VERSION_MAJOR) "." IRIS_STR(
        IRIS_READOUT_VERSION_MINOR) "." IRIS_STR(IRIS_READOUT_VERSION_PATCH);
}

const char *iris_status_string(iris_status code)
{
    switch (code) {
    case IRIS_OK: return "success";
    case IRIS_ERR_NULL_POINTER: return "null pointer";
    case IRIS_ERR_BAD_SIZE: return "bad array size";
    case IRIS_ERR_TOO_FEW_READS: return "fewer than two reads";
    case IRIS_ERR_READ_TIMES: return "read times not strictly increasing";
    case IRIS_ERR_GEOMETRY: return "reference geometry does not fit";
    case IRIS_ERR_FOWLER_N: return "Fowler N out of range";
    case IRIS_ERR_MODE: return "unknown readout mode";
    case IRIS_ERR_DTYPE: return "unknown sample dtype";
    case IRIS_ERR_WEIGHTING: return "unknown weighting";
    case IRIS_ERR_PARAM: return "parameter out of range";
    case IRIS_ERR_WORKSPACE: return "workspace too small";
    case IRIS_ERR_NO_MEMORY: return "out of memory";
    }
    return "unknown status code";
}

iris_status iris_fail(iris_error *err, iris_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

void iris_readout_params_default(iris_readout_params *p)
{
    if (!p)
        return;
    p->mode = IRIS_MODE_UTR;
    p->weighting = IRIS_WEIGHT_OPTIMAL;
    p->fowler_n = 1;
    p->jump_threshold = 5.0;
    p->read_noise = 0.0;
    p->gain = 1.0;
    p->saturation = 65535.0;
    p->nthreads = 0;
    p->jump_false_alarm = 4e-4;
}

void iris_refs_default(iris_refs *r)
{
    if (r)
        memset(r, 0, sizeof *r);
}
