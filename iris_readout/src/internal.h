/* Internal declarations shared by the iris_readout sources (not installed). */
#ifndef IRIS_READOUT_INTERNAL_H
#define IRIS_READOUT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "iris_readout.h"

/* Number of power-law exponents of the optimal (Fixsen) weighting. */
#define IRIS_NPOWER 6
/* SNR above which each successive Fixsen power applies (as JWST). */
#define IRIS_POWER_SNR {5.0f, 10.0f, 20.0f, 50.0f, 100.0f}
/* Row length of the read-major weight table wtab_t (>= IRIS_NPOWER). */
#define IRIS_WT_STRIDE 8
/* Largest number of nonlinearity coefficients accepted. */
#define IRIS_MAX_NCOEFFS 16
/* Pixels processed together by the vectorised inner loops. */
#define IRIS_CHUNK 16

/* printf-style error report; returns `code` so callers can `return fail(...)`. */
iris_status iris_fail(iris_error *err, iris_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Exponent of the power-law weights for a segment signal-to-noise ratio. */
int iris_power_index(double snr);
double iris_power_value(int index);

/* Signal-to-noise ratio of a segment: signal S (DN) over sqrt(rn^2 + S/g);
 * inv_gain = 0 means "no Poisson term". */
double iris_segment_snr(double signal, double rn, double inv_gain);

/*
 * Weights c[0..m-1] of the rate estimator over one segment with read times
 * t[0..m-1] (rate = sum c_i y_i).  `power` is the Fixsen exponent (UTR only).
 * On return *sum_c2 = sum c_i^2 (read-noise variance per rn^2) and *q is
 * the Poisson variance per unit rate/gain:
 *   q = sum_{i,j} c_i c_j min(t_i, t_j) = sum_i (t_i - t_{i-1}) (sum_{j>=i} c_j)^2.
 */
void iris_segment_weights(iris_mode mode, int fowler_n, double power,
                          const double *t, size_t m, double *c,
                          double *sum_c2, double *q);

/*
 * Jump thresholds thr[K] for K = 2..n-1 active differences (thr[0], thr[1]
 * = +inf): min(cap, z) with z the two-sided normal quantile of
 * alpha / n_K, n_K = 1 for K = 2 (both comparisons are one) else K.
 */
void iris_jump_thresholds(double cap, double alpha, size_t n, double *thr);

/* Median of a[0..n-1] (n >= 1); reorders a. */
double iris_median(double *a, size_t n);

/* Scratch for the scalar per-pixel path, nreads elements each. */
typedef struct iris_pixel_scratch {
    double *x, *t, *y, *d, *dt, *tmp, *c;
    unsigned char *brk;
} iris_pixel_scratch;

/* Everything the scalar per-pixel path needs to know about one pixel. */
typedef struct iris_pixel_in {
    const void *data;       /* first sample of the pixel */
    iris_dtype dtype;
    size_t stride;          /* elements between consecutive reads */
    size_t nreads;
    const double *read_times;
    const iris_readout_params *params;
    double read_noise, gain, saturation, zero_level; /* NaN = none/bad */
    const float *coeffs;    /* ncoeffs values with stride coeff_stride */
    size_t ncoeffs, coeff_stride;
    uint32_t mask;
    const double *jump_thr; /* threshold per number of active differences */
    /* estimator weights of the whole ramp (all nreads usable, no jump) per
     * power index, nreads apart, with their sum_c2 and q; computing them is
     * most of the cost of an ordinary pixel that takes the scalar path */
    const double *full_c, *full_sc2, *full_q;
} iris_pixel_in;

typedef struct iris_pixel_out {
    float rate, var_poisson, var_rnoise;
    uint32_t dq;
    uint16_t n_usable;
} iris_pixel_out;

/* The complete reference algorithm for one pixel, in double precision. */
void iris_fit_pixel(const iris_pixel_in *in, iris_pixel_scratch *s,
                    iris_pixel_out *out);


/* Block geometry: blocks are padded to a multiple of this (>= any CW). */
#define IRIS_BLOCK_ALIGN 16

/* Per-thread scratch of the block kernel (kernel.inc); allocated by
 * alloc_scratch() in fit.c, which gives the sizes. */
typedef struct iris_thread_scratch {
    float *y;      /* nreads x block, chunk-major; uint16 for uint16 input */
    float *coef;   /* IRIS_MAX_NCOEFFS x block; NaN rows replaced by identity */
    float *thr;    /* saturation threshold (+inf = none) */
    float *rn, *gain, *zero;  /* raw per-pixel reference values */
    int32_t *vbad;  /* nonlinearity coefficients not finite */
    int32_t *nbad; /* unusable reads, or a reason for the scalar path */
    size_t *slow;  /* block pixels queued for the scalar path */
    iris_pixel_scratch px;
} iris_thread_scratch;

struct iris_workspace {
    size_t max_nreads, block;
    int nthreads;
    double *wtab_d;  /* IRIS_NPOWER x max_nreads full-ramp estimator weights */
    float *wtab;     /* the same in single precision */
    float *wtab_t;   /* the same, max_nreads x IRIS_WT_STRIDE (per-lane lookup) */
    float *invdt;    /* max_nreads: 1 / (t[k+1] - t[k]) */
    double *jump_thr; /* max_nreads: thresholds by active differences */
    double sum_c2[IRIS_NPOWER], q[IRIS_NPOWER];
    /* the same in single precision, padded for per-lane lookup */
    float sum_c2_f[IRIS_WT_STRIDE], q_f[IRIS_WT_STRIDE];
    iris_thread_scratch *ts;
};

/* Everything a block needs, set up once per call by iris_readout_fit() (fit.c)
 * and read by the block kernel (kernel.inc). */
typedef struct iris_fit_ctx {
    const iris_ramp *ramp;
    const iris_refs *refs; /* NULL or with at least one array */
    const iris_readout_params *p;
    const iris_outputs *out;
    const iris_workspace *ws;
    size_t n, npix, ref_plane, ncoeffs, block;
    int jumps, optimal;
    float zratio;          /* t0 / (t1 - t0): zero-level extrapolation */
    float inv_span;        /* 1 / (t_last - t_0) */
    float invdt_min, invdt_max;
    /* jump screen of the block kernel (all n-1 differences active): the
     * threshold T_{n-1}, and lower bounds over j of the variance of
     * K d_j - S per unit read variance (fvar) and per unit rate/gain (gvar) */
    float jthr, fvar, gvar;
} iris_fit_ctx;

/* Fit pixels [x0, x0+len) of row y (kernel.inc, one build per ISA). */
void iris_process_block_base(const iris_fit_ctx *c, iris_thread_scratch *s,
                             size_t y, size_t x0, size_t len);
/* IRIS_BASE_KERNEL_ONLY: build without the AVX2 kernel (tests use it to
 * exercise the portable kernel on AVX2 machines). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(IRIS_BASE_KERNEL_ONLY)
#define IRIS_HAVE_AVX2_KERNEL 1
void iris_process_block_avx2(const iris_fit_ctx *c, iris_thread_scratch *s,
                             size_t y, size_t x0, size_t len);
#endif

#endif
