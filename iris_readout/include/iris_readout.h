/*
 * iris_readout: ramp combination for the TMT IRIS / Keck Liger detectors.
 *
 * The library turns the non-destructive reads of ONE integration into a count
 * rate (DN/s) per pixel, with Poisson and read-noise variances, a JWST-style
 * 32-bit data-quality (DQ) word and the number of reads used.  In a single pass
 * over the read-major (nreads, ny, nx) cube it applies, per pixel:
 *
 *   1. saturation: a read whose RAW value is >= the threshold is excluded,
 *      together with every later read of that pixel (DQ SATURATED);
 *   2. nonlinearity: corrected = z + c0 + c1*s + c2*s^2 + ...  with s = raw - z,
 *      z the zero level (reference or extrapolated from the first two usable
 *      reads to t = 0), evaluated by Horner (NaN coefficients: no correction,
 *      DQ NO_LIN_CORR);
 *   3. jumps: each two-point difference is compared with the mean of the
 *      others, in units of the exact noise of that comparison, against a
 *      threshold that grows with the number of differences so that the
 *      false-alarm probability per pixel stays at jump_false_alarm; the
 *      worst one above it is removed, repeatedly (DQ JUMP_DET).  Jumps split
 *      the ramp into segments;
 *   4. a slope per segment (UTR least squares, CDS or Fowler-N/MCDS), segments
 *      combined by inverse variance.
 *
 * Conventions
 *   - All buffers belong to the caller; the library never keeps a pointer
 *     after a call returns.  Only iris_workspace_create() allocates (its
 *     memory is released by iris_workspace_free()), and the convenience
 *     iris_readout_fit_once() which wraps create/fit/free.
 *   - No global state: every function is thread-safe.  A workspace may be used
 *     by one call at a time.
 *   - Functions return an iris_status; when `err` is not NULL it receives the
 *     same code and a human-readable message naming the offending argument.
 *     Nothing is printed and the process is never terminated.
 *   - Arrays are C-contiguous, the last index varying fastest.
 */
#ifndef IRIS_READOUT_H
#define IRIS_READOUT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IRIS_READOUT_VERSION_MAJOR 1
#define IRIS_READOUT_VERSION_MINOR 2
#define IRIS_READOUT_VERSION_PATCH 0

/* Data-quality bits: the names and values of liger_iris_pipeline.dqflags
 * (the JWST table, bit 29 being OUTSIDE_SUBARRAY). */
#define IRIS_DQ_GOOD             0u
#define IRIS_DQ_DO_NOT_USE       (1u << 0)
#define IRIS_DQ_SATURATED        (1u << 1)
#define IRIS_DQ_JUMP_DET         (1u << 2)
#define IRIS_DQ_DROPOUT          (1u << 3)
#define IRIS_DQ_OUTLIER          (1u << 4)
#define IRIS_DQ_PERSISTENCE      (1u << 5)
#define IRIS_DQ_AD_FLOOR         (1u << 6)
#define IRIS_DQ_CHARGELOSS       (1u << 7)
#define IRIS_DQ_UNRELIABLE_ERROR (1u << 8)
#define IRIS_DQ_NON_SCIENCE      (1u << 9)
#define IRIS_DQ_DEAD             (1u << 10)
#define IRIS_DQ_HOT              (1u << 11)
#define IRIS_DQ_WARM             (1u << 12)
#define IRIS_DQ_LOW_QE           (1u << 13)
#define IRIS_DQ_RC               (1u << 14)
#define IRIS_DQ_TELEGRAPH        (1u << 15)
#define IRIS_DQ_NONLINEAR        (1u << 16)
#define IRIS_DQ_BAD_REF_PIXEL    (1u << 17)
#define IRIS_DQ_NO_FLAT_FIELD    (1u << 18)
#define IRIS_DQ_NO_GAIN_VALUE    (1u << 19)
#define IRIS_DQ_NO_LIN_CORR      (1u << 20)
#define IRIS_DQ_NO_SAT_CHECK     (1u << 21)
#define IRIS_DQ_UNRELIABLE_BIAS  (1u << 22)
#define IRIS_DQ_UNRELIABLE_DARK  (1u << 23)
#define IRIS_DQ_UNRELIABLE_SLOPE (1u << 24)
#define IRIS_DQ_UNRELIABLE_FLAT  (1u << 25)
#define IRIS_DQ_OPEN             (1u << 26)
#define IRIS_DQ_ADJ_OPEN         (1u << 27)
#define IRIS_DQ_FLUX_ESTIMATED   (1u << 28)
#define IRIS_DQ_OUTSIDE_SUBARRAY (1u << 29) /* as dqflags.py; JWST: MSA_FAILED_OPEN */
#define IRIS_DQ_OTHER_BAD_PIXEL  (1u << 30)
#define IRIS_DQ_REFERENCE_PIXEL  (1u << 31)
/* the JWST name of bit 29, kept for source compatibility */
#define IRIS_DQ_MSA_FAILED_OPEN  IRIS_DQ_OUTSIDE_SUBARRAY

/* Status codes.  IRIS_OK is zero; every error is positive. */
typedef enum iris_status {
    IRIS_OK = 0,
    IRIS_ERR_NULL_POINTER = 1, /* a required pointer is NULL */
    IRIS_ERR_BAD_SIZE = 2,     /* a dimension is zero or the sizes overflow */
    IRIS_ERR_TOO_FEW_READS = 3, /* fewer than two reads */
    IRIS_ERR_READ_TIMES = 4,   /* read times not finite or not increasing */
    IRIS_ERR_GEOMETRY = 5,     /* reference shape / offset does not fit */
    IRIS_ERR_FOWLER_N = 6,     /* Fowler N < 1 or 2N > nreads */
    IRIS_ERR_MODE = 7,         /* unknown readout mode */
    IRIS_ERR_DTYPE = 8,        /* unknown sample dtype */
    IRIS_ERR_WEIGHTING = 9,    /* unknown weighting */
    IRIS_ERR_PARAM = 10,       /* a scalar parameter is out of range */
    IRIS_ERR_WORKSPACE = 11,   /* workspace too small for this call */
    IRIS_ERR_NO_MEMORY = 12    /* allocation failed (workspace creation) */
} iris_status;

/* Detailed error report filled by every call that fails (if non-NULL). */
typedef struct iris_error {
    iris_status code;
    char message[256];
} iris_error;

typedef enum iris_mode {
    IRIS_MODE_UTR = 0,  /* least-squares slope over all usable reads */
    IRIS_MODE_CDS = 1,  /* last usable minus first usable read */
    IRIS_MODE_MCDS = 2  /* Fowler-N: mean of last N minus mean of first N */
} iris_mode;

typedef enum iris_weighting {
    /* Fixsen et al. (2000) / JWST power-law weights chosen from the
     * signal-to-noise ratio of each segment: near read-noise-optimal at low
     * signal, near Poisson-optimal at high signal. UTR only. */
    IRIS_WEIGHT_OPTIMAL = 0,
    IRIS_WEIGHT_UNWEIGHTED = 1 /* ordinary least squares */
} iris_weighting;

typedef enum iris_dtype {
    IRIS_DTYPE_UINT16 = 0,
    IRIS_DTYPE_INT32 = 1,
    IRIS_DTYPE_FLOAT32 = 2 /* NaN samples are unusable reads */
} iris_dtype;

/* Processing parameters; initialise with iris_readout_params_default(). */
typedef struct iris_readout_params {
    iris_mode mode;           /* default IRIS_MODE_UTR */
    iris_weighting weighting; /* default IRIS_WEIGHT_OPTIMAL */
    int fowler_n;             /* N for MCDS, 1 <= N <= nreads/2; default 1 */
    /* Jump detection: a difference d_j is a jump when |d_j - mean of the
     * other K-1 differences| exceeds T_K times the noise of that comparison.
     * T_K = min(jump_threshold, z), z the two-sided normal quantile for which
     * K tests (1 for K = 2) give a false-alarm probability jump_false_alarm
     * per clean pixel (Bonferroni): 3.54 sigma at K = 2, 3.82 at K = 3,
     * 4.08 at K = 9, 4.35 at K = 29.  jump_threshold <= 0 disables jump
     * detection; default 5 (a cap that matters only beyond ~700 reads). */
    double jump_threshold;
    double read_noise;  /* DN per read where no read-noise map; default 0 */
    double gain;        /* e-/DN where no gain map; default 1 */
    double saturation;  /* DN where no saturation map; default 65535;
                           +INFINITY disables the check */
    int nthreads;       /* 0 = all threads of the workspace; default 0 */
    /* false-alarm probability of the jump test per clean pixel, in
     * (0, 0.5]; default 4e-4 */
    double jump_false_alarm;
} iris_readout_params;

/* One integration: samples laid out (nreads, ny, nx). */
typedef struct iris_ramp {
    const void *data;          /* samples of type `dtype` */
    iris_dtype dtype;
    size_t nreads, ny, nx;
    const double *read_times;  /* seconds since reset, strictly increasing */
} iris_ramp;

/*
 * Optional per-pixel references.  Every array pointer may be NULL (then the
 * scalar default of the params is used).  All arrays share the geometry
 * (ref_ny, ref_nx) and the science frame is the window starting at
 * (offset_y, offset_x) inside it (subarray readout); it must fit.
 */
typedef struct iris_refs {
    size_t ref_ny, ref_nx;      /* reference geometry */
    size_t offset_y, offset_x;  /* science window origin in the references */
    size_t ncoeffs;             /* nonlinearity coefficients, 2..16 */
    const float *nonlin;        /* (ncoeffs, ref_ny, ref_nx), c0 first */
    const float *zero_level;    /* (ref_ny, ref_nx) DN; NULL = extrapolate */
    const float *saturation;    /* (ref_ny, ref_nx) raw DN; NaN = no check */
    const float *read_noise;    /* (ref_ny, ref_nx) DN per read */
    const float *gain;          /* (ref_ny, ref_nx) e-/DN */
    const uint32_t *mask;       /* (ref_ny, ref_nx) DQ bits OR-ed into dq */
} iris_refs;

/* Caller-owned outputs, ny*nx elements each; all but `rate` may be NULL. */
typedef struct iris_outputs {
    float *rate;         /* DN/s; NaN where DO_NOT_USE */
    float *var_poisson;  /* (DN/s)^2 */
    float *var_rnoise;   /* (DN/s)^2 */
    uint32_t *dq;
    uint16_t *n_usable;  /* reads that entered the fit */
} iris_outputs;

/* Opaque per-thread scratch memory for iris_readout_fit(). */
typedef struct iris_workspace iris_workspace;

/* Version string "MAJOR.MINOR.PATCH" of the compiled library. */
const char *iris_readout_version(void);

/* Static description of a status code (never NULL). */
const char *iris_status_string(iris_status code);

/* Fill `p` with the defaults documented in iris_readout_params. */
void iris_readout_params_default(iris_readout_params *p);

/* Initialise `r` to "no references" (all pointers NULL, zero sizes). */
void iris_refs_default(iris_refs *r);

/*
 * Create scratch memory for ramps of at most `max_nreads` reads and rows of
 * at most `max_nx` pixels, for `nthreads` threads (0 = the OpenMP default).
 * Returns NULL on failure (err says why).  Create once, reuse for every
 * frame of the same or smaller size, free with iris_workspace_free().
 */
iris_workspace *iris_workspace_create(size_t max_nreads, size_t max_nx,
                                      int nthreads, iris_error *err);
void iris_workspace_free(iris_workspace *ws);
/* Number of threads the workspace was created for. */
int iris_workspace_nthreads(const iris_workspace *ws);

/*
 * Fit one integration.  `refs` may be NULL.  Allocates nothing.
 * Pixels with fewer than two usable reads get DO_NOT_USE and NaN rate and
 * variances.  Bad per-pixel reference values are flagged, not errors:
 * NaN saturation -> NO_SAT_CHECK (the pixel is fitted); non-finite
 * nonlinearity coefficients -> NO_LIN_CORR (fitted uncorrected); NaN, inf or
 * <= 0 gain -> NO_GAIN_VALUE + DO_NOT_USE; NaN, inf or negative read noise
 * -> UNRELIABLE_ERROR + DO_NOT_USE (no noise model: NaN rate and
 * variances).  An integer read at 0 DN (ADC floor) is not used (AD_FLOOR).
 * A nonlinearity reference needs 2..16 coefficients (IRIS_ERR_PARAM).
 */
iris_status iris_readout_fit(iris_workspace *ws, const iris_ramp *ramp,
                             const iris_refs *refs,
                             const iris_readout_params *params,
                             const iris_outputs *out, iris_error *err);

/* iris_readout_fit() with a temporary workspace (allocates per call). */
iris_status iris_readout_fit_once(const iris_ramp *ramp, const iris_refs *refs,
                                  const iris_readout_params *params,
                                  const iris_outputs *out, iris_error *err);

/*
 * Memory-bandwidth reference kernel: out[p] = sum over reads of
 * data[k*npix + p] for a uint16 (nreads, npix) cube, with `nthreads` threads
 * (0 = OpenMP default).  Used by benchmarks as the floor of any one-pass fit.
 */
iris_status iris_readout_sum_reads(const uint16_t *data, size_t nreads,
                                   size_t npix, uint32_t *out, int nthreads,
                                   iris_error *err);

/*
 * Combine `nints` integrations, stacked (nints, npix), by inverse variance.
 * Integration i of pixel p is used when its DQ lacks DO_NOT_USE and its rate
 * and variances are finite; its weight is 1/(var_poisson + var_rnoise)
 * (equal weights if any used variance is 0).  Variances are propagated
 * exactly for those weights.  dq_out is the OR of the inputs without
 * DO_NOT_USE, plus DO_NOT_USE (and NaN outputs) when no integration is used.
 * var_poisson, var_rnoise and dq inputs may be NULL (variances: equal
 * weights, outputs NaN), outputs other than rate_out may be NULL.
 */
iris_status iris_readout_combine_integrations(
    size_t nints, size_t npix, const float *rate, const float *var_poisson,
    const float *var_rnoise, const uint32_t *dq, float *rate_out,
    float *var_poisson_out, float *var_rnoise_out, uint32_t *dq_out,
    iris_error *err);

#ifdef __cplusplus
}
#endif

#endif /* IRIS_READOUT_H */
