/* Memory-floor kernel and inverse-variance combination of integrations. */
#include <math.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

/* Pixels summed together: the accumulators stay in L1 while every read of
 * the chunk streams past. */
#define SUM_CHUNK 4096

iris_status iris_readout_sum_reads(const uint16_t *data, size_t nreads,
                                   size_t npix, uint32_t *out, int nthreads,
                                   iris_error *err)
{
    long ch, nchunks;
    if (!data) return iris_fail(err, IRIS_ERR_NULL_POINTER, "data is NULL");
    if (!out) return iris_fail(err, IRIS_ERR_NULL_POINTER, "out is NULL");
    if (nreads == 0 || npix == 0)
        return iris_fail(err, IRIS_ERR_BAD_SIZE,
                         "empty cube: nreads=%zu, npix=%zu", nreads, npix);
    if (nreads > 65537)
        return iris_fail(err, IRIS_ERR_BAD_SIZE,
                         "nreads=%zu would overflow the 32-bit sums", nreads);
    if (nthreads < 0)
        return iris_fail(err, IRIS_ERR_PARAM, "nthreads=%d is negative",
                         nthreads);
    nchunks = (long)((npix + SUM_CHUNK - 1) / SUM_CHUNK);
#ifdef _OPENMP
    if (nthreads == 0)
        nthreads = omp_get_max_threads();
#pragma omp parallel for num_threads(nthreads) schedule(static)
#endif
    for (ch = 0; ch < nchunks; ++ch) {
        size_t p0 = (size_t)ch * SUM_CHUNK, len = npix - p0, k, i;
        uint32_t *restrict o = out + p0;
        if (len > SUM_CHUNK)
            len = SUM_CHUNK;
        for (i = 0; i < len; ++i)
            o[i] = 0;
        for (k = 0; k < nreads; ++k) {
            const uint16_t *restrict d = data + k * npix + p0;
            for (i = 0; i < len; ++i)
                o[i] += d[i];
        }
    }
    return IRIS_OK;
}

/* Does element j enter the combination? */
static int usable(size_t j, const float *rate, const float *var_poisson,
                  const float *var_rnoise, const uint32_t *dq)
{
    return isfinite(rate[j]) && (!dq || !(dq[j] & IRIS_DQ_DO_NOT_USE)) &&
           (!var_poisson || isfinite(var_poisson[j])) &&
           (!var_rnoise || isfinite(var_rnoise[j]));
}

iris_status iris_readout_combine_integrations(
    size_t nints, size_t npix, const float *rate, const float *var_poisson,
    const float *var_rnoise, const uint32_t *dq, float *rate_out,
    float *var_poisson_out, float *var_rnoise_out, uint32_t *dq_out,
    iris_error *err)
{
    size_t p, i;
    if (!rate) return iris_fail(err, IRIS_ERR_NULL_POINTER, "rate is NULL");
    if (!rate_out)
        return iris_fail(err, IRIS_ERR_NULL_POINTER, "rate_out is NULL");
    if (nints == 0 || npix == 0)
        return iris_fail(err, IRIS_ERR_BAD_SIZE,
                         "nothing to combine: nints=%zu, npix=%zu", nints, npix);
    if (npix > SIZE_MAX / nints)
        return iris_fail(err, IRIS_ERR_BAD_SIZE, "nints x npix overflows");

    for (p = 0; p < npix; ++p) {
        double sw = 0.0, swr = 0.0, swp = 0.0, swn = 0.0;
        uint32_t flags = 0;
        size_t nused = 0;
        int equal = !var_poisson || !var_rnoise;
        /* first pass: which integrations are usable, and can they be
         * weighted (a zero total variance would get an infinite weight)? */
        for (i = 0; i < nints; ++i) {
            size_t j = i * npix + p;
            if (dq)
                flags |= dq[j];
            if (!usable(j, rate, var_poisson, var_rnoise, dq))
                continue;
            ++nused;
            if (!equal && !((double)var_poisson[j] + var_rnoise[j] > 0.0))
                equal = 1;
        }
        flags &= ~IRIS_DQ_DO_NOT_USE;
        for (i = 0; i < nints && nused; ++i) {
            size_t j = i * npix + p;
            double w;
            if (!usable(j, rate, var_poisson, var_rnoise, dq))
                continue;
            w = equal ? 1.0
                      : 1.0 / ((double)var_poisson[j] + var_rnoise[j]);
            sw += w;
            swr += w * rate[j];
            if (var_poisson) swp += w * w * var_poisson[j];
            if (var_rnoise) swn += w * w * var_rnoise[j];
        }
        if (!nused) {
            rate_out[p] = NAN;
            if (var_poisson_out) var_poisson_out[p] = NAN;
            if (var_rnoise_out) var_rnoise_out[p] = NAN;
            if (dq_out) dq_out[p] = flags | IRIS_DQ_DO_NOT_USE;
            continue;
        }
        rate_out[p] = (float)(swr / sw);
        if (var_poisson_out)
            var_poisson_out[p] = var_poisson ? (float)(swp / (sw * sw)) : NAN;
        if (var_rnoise_out)
            var_rnoise_out[p] = var_rnoise ? (float)(swn / (sw * sw)) : NAN;
        if (dq_out)
            dq_out[p] = flags;
    }
    return IRIS_OK;
}
