/*
 * Unit tests of iris_readout: known answers for every mode, saturation,
 * jumps, nonlinearity, degenerate and NaN cases, subarrays, bad arguments
 * and thread-count invariance.  Prints "N passed, M failed" and exits
 * non-zero on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iris_readout.h"

static int n_pass, n_fail;

#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (cond) {                                                          \
            ++n_pass;                                                        \
        } else {                                                             \
            ++n_fail;                                                        \
            printf("FAIL %s:%d: ", __func__, __LINE__);                      \
            printf(__VA_ARGS__);                                             \
            printf("\n");                                                    \
        }                                                                    \
    } while (0)

#define CLOSE(a, b, rtol, atol) (fabs((double)(a) - (double)(b)) <=         \
                                 (atol) + (rtol) * fabs((double)(b)))

/* Frame with every output, for up to MAXPIX pixels. */
#define MAXPIX 4096
typedef struct frame {
    float rate[MAXPIX], vp[MAXPIX], vr[MAXPIX];
    uint32_t dq[MAXPIX];
    uint16_t nu[MAXPIX];
    iris_outputs out;
} frame;

static frame *frame_new(void)
{
    frame *f = calloc(1, sizeof *f);
    f->out.rate = f->rate;
    f->out.var_poisson = f->vp;
    f->out.var_rnoise = f->vr;
    f->out.dq = f->dq;
    f->out.n_usable = f->nu;
    return f;
}

static iris_status fit(const void *data, iris_dtype dt, size_t n, size_t ny,
                       size_t nx, const double *t, const iris_refs *refs,
                       const iris_readout_params *p, frame *f, iris_error *e)
{
    iris_ramp r;
    r.data = data;
    r.dtype = dt;
    r.nreads = n;
    r.ny = ny;
    r.nx = nx;
    r.read_times = t;
    return iris_readout_fit_once(&r, refs, p, &f->out, e);
}

/* deterministic pseudo-random numbers (xorshift) and Gaussian deviates */
static uint64_t rng_state = 88172645463325252ull;
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}
static double grand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void test_version(void)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%d.%d.%d", IRIS_READOUT_VERSION_MAJOR,
             IRIS_READOUT_VERSION_MINOR, IRIS_READOUT_VERSION_PATCH);
    CHECK(strcmp(buf, iris_readout_version()) == 0, "version %s",
          iris_readout_version());
    CHECK(strcmp(iris_status_string(IRIS_OK), "success") == 0, "ok string");
    CHECK(strlen(iris_status_string(IRIS_ERR_READ_TIMES)) > 0, "err string");
    CHECK(strlen(iris_status_string((iris_status)999)) > 0, "unknown code");
}

/* Noiseless linear ramps: every mode recovers the exact slope. */
static void check_linear(const double *t, size_t n, double rate, int fowler)
{
    enum { NY = 3, NX = 5 };
    static uint16_t d16[128 * NY * NX];
    static float d32[128 * NY * NX];
    frame *f = frame_new();
    iris_readout_params p;
    iris_error e;
    size_t k, i;
    int mode, wt, dtype;
    for (k = 0; k < n; ++k)
        for (i = 0; i < NY * NX; ++i) {
            double v = 1000.0 + 10.0 * (double)i + (rate + 2.0 * (double)i) * t[k];
            d16[k * NY * NX + i] = (uint16_t)v;
            d32[k * NY * NX + i] = (float)v;
        }
    for (dtype = 0; dtype < 2; ++dtype)
        for (mode = 0; mode < 3; ++mode)
            for (wt = 0; wt < 2; ++wt) {
                iris_readout_params_default(&p);
                p.mode = (iris_mode)mode;
                p.weighting = (iris_weighting)wt;
                p.fowler_n = fowler;
                p.read_noise = 5.0;
                CHECK(fit(dtype ? (const void *)d32 : (const void *)d16,
                          dtype ? IRIS_DTYPE_FLOAT32 : IRIS_DTYPE_UINT16, n,
                          NY, NX, t, NULL, &p, f, &e) == IRIS_OK,
                      "fit: %s", e.message);
                for (i = 0; i < NY * NX; ++i) {
                    double truth = rate + 2.0 * (double)i;
                    CHECK(CLOSE(f->rate[i], truth, 2e-5, 1e-4),
                          "n=%zu mode=%d wt=%d dtype=%d pix %zu: %.7g != %.7g",
                          n, mode, wt, dtype, i, f->rate[i], truth);
                    CHECK(f->dq[i] == 0, "dq %u", f->dq[i]);
                    CHECK(f->nu[i] == n, "n_usable %u", f->nu[i]);
                }
            }
    free(f);
}

static void test_linear_modes(void)
{
    double even[12], uneven[7] = {2.0, 3.0, 5.0, 6.0, 9.0, 10.0, 14.0};
    double two[2] = {1.0, 3.0}, hundred[100];
    size_t k;
    for (k = 0; k < 12; ++k)
        even[k] = 1.5 * (double)(k + 1); /* t0 > 0 */
    for (k = 0; k < 100; ++k)
        hundred[k] = 0.5 * (double)(k + 1);
    check_linear(even, 12, 40.0, 3);
    check_linear(uneven, 7, 20.0, 2);
    check_linear(two, 2, 100.0, 1);
    check_linear(hundred, 100, 10.0, 10);
}

/* CDS and Fowler-N closed forms on arbitrary data. */
static void test_cds_mcds_closed_form(void)
{
    enum { N = 10, NP = 64 };
    static uint16_t d[N * NP];
    double t[N];
    frame *f = frame_new();
    iris_readout_params p;
    iris_error e;
    size_t k, i;
    for (k = 0; k < N; ++k)
        t[k] = 0.7 + 1.3 * (double)k + 0.2 * (double)(k % 3);
    for (k = 0; k < N; ++k)
        for (i = 0; i < NP; ++i)
            d[k * NP + i] = (uint16_t)(5000 + 300 * k + (urand() * 200.0));
    iris_readout_params_default(&p);
    p.jump_threshold = 0.0;
    p.mode = IRIS_MODE_CDS;
    p.read_noise = 3.0;
    CHECK(fit(d, IRIS_DTYPE_UINT16, N, 8, 8, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    for (i = 0; i < NP; ++i) {
        double cds = ((double)d[(N - 1) * NP + i] - d[i]) / (t[N - 1] - t[0]);
        CHECK(CLOSE(f->rate[i], cds, 1e-5, 1e-4), "cds %g != %g", f->rate[i], cds);
        CHECK(CLOSE(f->vr[i], 2.0 * 9.0 / pow(t[N - 1] - t[0], 2), 1e-5, 0),
              "cds var_rnoise %g", f->vr[i]);
        CHECK(CLOSE(f->vp[i], cds / (t[N - 1] - t[0]), 1e-5, 1e-6),
              "cds var_poisson %g", f->vp[i]);
    }
    p.mode = IRIS_MODE_MCDS;
    p.fowler_n = 3;
    CHECK(fit(d, IRIS_DTYPE_UINT16, N, 8, 8, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    for (i = 0; i < NP; ++i) {
        double lo = 0, hi = 0, tlo = 0, thi = 0, m;
        for (k = 0; k < 3; ++k) {
            lo += d[k * NP + i];
            hi += d[(N - 3 + k) * NP + i];
            tlo += t[k];
            thi += t[N - 3 + k];
        }
        m = (hi - lo) / (thi - tlo);
        CHECK(CLOSE(f->rate[i], m, 1e-5, 1e-4), "mcds %g != %g", f->rate[i], m);
        CHECK(CLOSE(f->vr[i], 2.0 * 9.0 / 3.0 / pow((thi - tlo) / 3.0, 2), 1e-5, 0),
              "mcds var_rnoise %g", f->vr[i]);
    }
    free(f);
}

/* var_rnoise = 12 R^2 / ((n^3 - n) dt^2) for unweighted UTR, even reads. */
static void test_rnoise_formula(void)
{
    enum { N = 17 };
    static uint16_t d[N * 4];
    double t[N], dt = 2.5, rn = 7.0, expect;
    frame *f = frame_new();
    iris_readout_params p;
    iris_error e;
    size_t k, i;
    for (k = 0; k < N; ++k) {
        t[k] = dt * (double)(k + 1);
        for (i = 0; i < 4; ++i)
            d[k * 4 + i] = (uint16_t)(2000 + 40 * k);
    }
    iris_readout_params_default(&p);
    p.weighting = IRIS_WEIGHT_UNWEIGHTED;
    p.read_noise = rn;
    p.gain = 2.0;
    CHECK(fit(d, IRIS_DTYPE_UINT16, N, 2, 2, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    expect = 12.0 * rn * rn / ((double)(N * N * N - N) * dt * dt);
    CHECK(CLOSE(f->vr[0], expect, 1e-5, 0), "var_rnoise %g != %g", f->vr[0],
          expect);
    /* exact Poisson variance of the unweighted slope:
     * 6 (n^2 + 1) / (5 n (n^2 - 1) dt) * rate / gain */
    expect = 6.0 * (N * N + 1) / (5.0 * N * (N * N - 1) * dt) * 16.0 / 2.0;
    CHECK(CLOSE(f->vp[0], expect, 1e-5, 0), "var_poisson %g != %g", f->vp[0],
          expect);
    free(f);
}

static void test_saturation(void)
{
    enum { N = 20 };
    static uint16_t d[N * 2];
    double t[N];
    frame *f = frame_new();
    iris_readout_params p;
    iris_error e;
    size_t k;
    int mode;
    for (k = 0; k < N; ++k) {
        t[k] = (double)(k + 1);
        /* pixel 0 saturates at read 12 (25000 + 1000*12 >= 36500);
         * pixel 1 is saturated from the first read */
        d[k * 2] = (uint16_t)(25000 + 1000 * k);
        d[k * 2 + 1] = 40000;
    }
    for (mode = 0; mode < 3; ++mode) {
        iris_readout_params_default(&p);
        p.saturation = 36500.0;
        p.mode = (iris_mode)mode;
        p.fowler_n = 2;
        p.read_noise = 4.0;
        CHECK(fit(d, IRIS_DTYPE_UINT16, N, 1, 2, t, NULL, &p, f, &e) == IRIS_OK,
              "%s", e.message);
        CHECK(CLOSE(f->rate[0], 1000.0, 1e-6, 0), "mode %d sat rate %g", mode,
              f->rate[0]);
        CHECK(f->dq[0] == IRIS_DQ_SATURATED, "dq %u", f->dq[0]);
        CHECK(f->nu[0] == 12, "n_usable %u", f->nu[0]);
        CHECK(isnan(f->rate[1]) && isnan(f->vp[1]) && isnan(f->vr[1]),
              "all saturated rate %g", f->rate[1]);
        CHECK(f->dq[1] == (IRIS_DQ_SATURATED | IRIS_DQ_DO_NOT_USE), "dq %u",
              f->dq[1]);
        CHECK(f->nu[1] == 0, "n_usable %u", f->nu[1]);
    }
    /* only the first read below saturation: DO_NOT_USE */
    for (k = 0; k < N; ++k)
        d[k * 2] = (uint16_t)(k == 0 ? 100 : 50000);
    iris_readout_params_default(&p);
    p.saturation = 36500.0;
    CHECK(fit(d, IRIS_DTYPE_UINT16, N, 1, 2, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    CHECK((f->dq[0] & IRIS_DQ_DO_NOT_USE) && f->nu[0] == 1, "one read dq %u",
          f->dq[0]);
    free(f);
}

static void test_jump(void)
{
    enum { N = 15, NP = 3 };
    static uint16_t d[N * NP];
    double t[N];
    frame *f = frame_new();
    iris_readout_params p;
    iris_error e;
    size_t k, i;
    int mode;
    for (k = 0; k < N; ++k) {
        t[k] = 2.0 * (double)(k + 1);
        for (i = 0; i < NP; ++i)
            d[k * NP + i] = (uint16_t)(1000 + 30 * 2 * (k + 1) +
                                        (i == 1 && k >= 6 ? 800 : 0) +
                                        (i == 2 && k >= 13 ? 800 : 0));
    }
    for (mode = 0; mode < 3; ++mode) {
        iris_readout_params_default(&p);
        p.mode = (iris_mode)mode;
        p.read_noise = 5.0;
        p.fowler_n = 2;
        CHECK(fit(d, IRIS_DTYPE_UINT16, N, 1, NP, t, NULL, &p, f, &e) == IRIS_OK,
              "%s", e.message);
        CHECK(f->dq[0] == 0 && CLOSE(f->rate[0], 30.0, 1e-6, 0),
              "clean pixel dq %u rate %g", f->dq[0], f->rate[0]);
        for (i = 1; i < NP; ++i) {
            CHECK(f->dq[i] == IRIS_DQ_JUMP_DET, "mode %d pix %zu dq %u", mode, i,
                  f->dq[i]);
            CHECK(CLOSE(f->rate[i], 30.0, 1e-5, 0), "mode %d pix %zu rate %g",
                  mode, i, f->rate[i]);
            CHECK(f->nu[i] == N, "n_usable %u", f->nu[i]);
        }
    }
    /* threshold <= 0 disables detection */
    p.jump_threshold = 0.0;
    p.mode = IRIS_MODE_UTR;
    CHECK(fit(d, IRIS_DTYPE_UINT16, N, 1, NP, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    CHECK(f->dq[1] == 0 && f->rate[1] > 31.0, "disabled: dq %u rate %g",
          f->dq[1], f->rate[1]);
    free(f);
}

/* Few reads: 10 sigma jumps are found, clean pixels rarely flagged; the
 * false-alarm parameter, one-coefficient references and the ADC floor. */
static void test_jump_few_reads(void)
{
    enum { NP = 4000 };
    static uint16_t d[3 * NP];
    static float coeffs[NP];
    double t[3] = {1.5, 3.0, 4.5};
    /* sigma of a difference: read noise and 30 DN of signal (gain 1) */
    const double rn = 6.0, sig = sqrt(2.0 * rn * rn + 20.0 * 1.5);
    frame *f = frame_new();
    iris_readout_params p;
    iris_refs r;
    iris_error e;
    size_t i, k, njump = 0, nclean = 0, tried = 0;
    float *big_rate;
    /* half clean, half with a 10 sigma jump before read 1 or read 2 */
    for (i = 0; i < NP; ++i) {
        size_t at = 1 + i % 2;
        for (k = 0; k < 3; ++k) {
            double v = 2000.0 + 20.0 * t[k] + rn * grand();
            if (i % 4 >= 2 && k >= at)
                v += 10.0 * sig;
            d[k * NP + i] = (uint16_t)lround(v);
        }
    }
    /* both kernels see all of them: 4000 pixels in rows of 1000 */
    iris_readout_params_default(&p);
    p.read_noise = rn;
    big_rate = calloc(NP, sizeof *big_rate);
    {
        static uint32_t dq[NP];
        iris_outputs out = {big_rate, NULL, NULL, dq, NULL};
        iris_ramp ramp = {d, IRIS_DTYPE_UINT16, 3, 4, NP / 4, t};
        CHECK(iris_readout_fit_once(&ramp, NULL, &p, &out, &e) == IRIS_OK,
              "%s", e.message);
        for (i = 0; i < NP; ++i) {
            int jump = i % 4 >= 2;
            tried += jump;
            njump += jump && (dq[i] & IRIS_DQ_JUMP_DET);
            nclean += !jump && (dq[i] & IRIS_DQ_JUMP_DET);
        }
    }
    /* the comparison has sd sqrt(3) sigma: 5.8 sd against 3.54 -> 98.8 % */
    CHECK(njump >= tried * 96 / 100, "3 reads: %zu of %zu jumps", njump, tried);
    CHECK(nclean <= 3, "3 reads: %zu of %zu clean pixels flagged", nclean,
          NP - tried);
    free(big_rate);

    /* the false-alarm probability must be a probability */
    p.jump_false_alarm = 0.0;
    CHECK(fit(d, IRIS_DTYPE_UINT16, 3, 1, 8, t, NULL, &p, f, &e) ==
              IRIS_ERR_PARAM && strstr(e.message, "jump_false_alarm"),
          "false alarm 0: %s", e.message);
    p.jump_false_alarm = 0.7;
    CHECK(fit(d, IRIS_DTYPE_UINT16, 3, 1, 8, t, NULL, &p, f, &e) ==
              IRIS_ERR_PARAM, "false alarm 0.7 accepted");
    iris_readout_params_default(&p);
    p.read_noise = rn;

    /* one nonlinearity coefficient is a broken reference */
    iris_refs_default(&r);
    r.ref_ny = 1;
    r.ref_nx = 8;
    r.ncoeffs = 1;
    r.nonlin = coeffs;
    CHECK(fit(d, IRIS_DTYPE_UINT16, 3, 1, 8, t, &r, &p, f, &e) ==
              IRIS_ERR_PARAM && strstr(e.message, "ncoeffs=1"),
          "ncoeffs 1: %s", e.message);

    /* reads at 0 DN: not used, AD_FLOOR; a 16-pixel row reaches the vector
     * kernel */
    for (i = 0; i < 16; ++i)
        for (k = 0; k < 3; ++k)
            d[k * 16 + i] = (uint16_t)(100 + 40 * k);
    d[0 * 16 + 3] = 0;
    d[1 * 16 + 9] = 0;
    d[0 * 16 + 12] = d[1 * 16 + 12] = d[2 * 16 + 12] = 0;
    p.jump_threshold = 0.0;
    CHECK(fit(d, IRIS_DTYPE_UINT16, 3, 1, 16, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    for (i = 0; i < 16; ++i) {
        if (i == 3 || i == 9) {
            CHECK(f->dq[i] == IRIS_DQ_AD_FLOOR && f->nu[i] == 2 &&
                      CLOSE(f->rate[i], 40.0 / 1.5, 1e-5, 0),
                  "floor pixel %zu: dq %x nu %u rate %g", i, f->dq[i],
                  f->nu[i], f->rate[i]);
        } else if (i == 12) {
            CHECK(f->dq[i] == (IRIS_DQ_AD_FLOOR | IRIS_DQ_DO_NOT_USE) &&
                      isnan(f->rate[i]), "all floor: dq %x", f->dq[i]);
        } else {
            CHECK(f->dq[i] == 0 && CLOSE(f->rate[i], 40.0 / 1.5, 1e-5, 0),
                  "pixel %zu: dq %x rate %g", i, f->dq[i], f->rate[i]);
        }
    }
    free(f);
}

static void test_nan_samples(void)
{
    enum { N = 8 };
    static float d[N * 2];
    double t[N];
    frame *f = frame_new();
    iris_readout_params p;
    iris_error e;
    size_t k;
    for (k = 0; k < N; ++k) {
        t[k] = (double)(k + 1);
        d[k * 2] = k == 3 ? NAN : (float)(100.0 + 25.0 * t[k]);
        d[k * 2 + 1] = k == 0 ? 5.0f : NAN;
    }
    iris_readout_params_default(&p);
    p.read_noise = 2.0;
    CHECK(fit(d, IRIS_DTYPE_FLOAT32, N, 2, 1, t, NULL, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    CHECK(CLOSE(f->rate[0], 25.0, 1e-6, 0) && f->nu[0] == N - 1 && f->dq[0] == 0,
          "nan read: rate %g nu %u dq %u", f->rate[0], f->nu[0], f->dq[0]);
    CHECK(isnan(f->rate[1]) && f->dq[1] == IRIS_DQ_DO_NOT_USE && f->nu[1] == 1,
          "all nan: dq %u", f->dq[1]);
    free(f);
}

/* A ramp made nonlinear with known coefficients is linear after correction. */
static void test_nonlinearity(void)
{
    enum { N = 10, NP = 6 };
    static float d[N * NP], coef[3 * NP], zero[NP];
    double t[N], a2 = -2e-6, rate = 300.0;
    frame *f = frame_new();
    iris_readout_params p;
    iris_refs r;
    iris_error e;
    size_t k, i;
    for (i = 0; i < NP; ++i) {
        coef[i] = 0.0f;
        coef[NP + i] = 1.0f;
        coef[2 * NP + i] = (float)a2;
        zero[i] = 1000.0f + (float)i;
    }
    coef[2 * NP + 5] = NAN; /* pixel 5: no correction */
    for (k = 0; k < N; ++k) {
        t[k] = 3.0 * (double)(k + 1);
        for (i = 0; i < NP; ++i) {
            /* raw signal s with s + a2 s^2 = rate * t */
            double lin = rate * t[k];
            double s = (-1.0 + sqrt(1.0 + 4.0 * a2 * lin)) / (2.0 * a2);
            d[k * NP + i] = (float)(zero[i] + s);
        }
    }
    iris_readout_params_default(&p);
    p.read_noise = 5.0;
    iris_refs_default(&r);
    r.ref_ny = 2;
    r.ref_nx = 3;
    r.ncoeffs = 3;
    r.nonlin = coef;
    r.zero_level = zero;
    CHECK(fit(d, IRIS_DTYPE_FLOAT32, N, 2, 3, t, &r, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    for (i = 0; i < 5; ++i)
        CHECK(CLOSE(f->rate[i], rate, 1e-4, 0) && f->dq[i] == 0,
              "pix %zu corrected rate %g dq %u", i, f->rate[i], f->dq[i]);
    CHECK(f->dq[5] == IRIS_DQ_NO_LIN_CORR && f->rate[5] > rate * 1.01,
          "NaN coefficients: dq %u rate %g", f->dq[5], f->rate[5]);
    /* zero level extrapolated from the first two reads: close, not exact */
    r.zero_level = NULL;
    CHECK(fit(d, IRIS_DTYPE_FLOAT32, N, 2, 3, t, &r, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    for (i = 0; i < 5; ++i)
        CHECK(CLOSE(f->rate[i], rate, 1e-3, 0), "extrapolated zero: %g",
              f->rate[i]);
    free(f);
}

/* Non-square frame cut out of larger references at an offset. */
static void test_subarray_refs(void)
{
    enum { N = 6, RY = 7, RX = 9, NY = 3, NX = 4, OY = 2, OX = 5 };
    static uint16_t d[N * NY * NX];
    static float rn[RY * RX], gain[RY * RX], sat[RY * RX];
    static uint32_t mask[RY * RX];
    double t[N];
    frame *f = frame_new();
    iris_readout_params p;
    iris_refs r;
    iris_error e;
    size_t k, y, x;
    for (y = 0; y < RY; ++y)
        for (x = 0; x < RX; ++x) {
            rn[y * RX + x] = (float)(1.0 + (double)y + 0.1 * (double)x);
            gain[y * RX + x] = (float)(1.0 + 0.5 * (double)x);
            sat[y * RX + x] = 60000.0f;
            mask[y * RX + x] = (uint32_t)(y * RX + x) << 12;
        }
    sat[(OY + 1) * RX + OX + 2] = NAN; /* science pixel (1, 2) */
    for (k = 0; k < N; ++k) {
        t[k] = (double)(k + 1);
        for (y = 0; y < NY * NX; ++y)
            d[k * NY * NX + y] = (uint16_t)(500 + 100 * k);
    }
    iris_readout_params_default(&p);
    p.weighting = IRIS_WEIGHT_UNWEIGHTED;
    iris_refs_default(&r);
    r.ref_ny = RY;
    r.ref_nx = RX;
    r.offset_y = OY;
    r.offset_x = OX;
    r.read_noise = rn;
    r.gain = gain;
    r.saturation = sat;
    r.mask = mask;
    CHECK(fit(d, IRIS_DTYPE_UINT16, N, NY, NX, t, &r, &p, f, &e) == IRIS_OK,
          "%s", e.message);
    for (y = 0; y < NY; ++y)
        for (x = 0; x < NX; ++x) {
            size_t i = y * NX + x, ref = (y + OY) * RX + x + OX;
            double vr = 12.0 * rn[ref] * rn[ref] / (double)(N * N * N - N);
            double vp = 6.0 * (N * N + 1) / (5.0 * N * (N * N - 1)) * 100.0 /
                        gain[ref];
            uint32_t dq = mask[ref] | (y == 1 && x == 2 ? IRIS_DQ_NO_SAT_CHECK : 0);
            CHECK(CLOSE(f->rate[i], 100.0, 1e-6, 0), "rate %g", f->rate[i]);
            CHECK(CLOSE(f->vr[i], vr, 1e-5, 0), "(%zu,%zu) var_rnoise %g != %g",
                  y, x, f->vr[i], vr);
            CHECK(CLOSE(f->vp[i], vp, 1e-5, 0), "(%zu,%zu) var_poisson %g != %g",
                  y, x, f->vp[i], vp);
            CHECK(f->dq[i] == dq, "(%zu,%zu) dq %x != %x", y, x, f->dq[i], dq);
        }
    /* bad per-pixel gain and read noise are flagged, not errors; without a
     * noise model the pixel is not fitted */
    {
        const float badg[] = {0.0f, NAN, -1.0f, INFINITY};
        const float badr[] = {NAN, -1.0f, INFINITY};
        size_t b;
        for (b = 0; b < 4; ++b) {
            gain[OY * RX + OX] = badg[b];
            if (b < 3)
                rn[OY * RX + OX + 1] = badr[b];
            CHECK(fit(d, IRIS_DTYPE_UINT16, N, NY, NX, t, &r, &p, f, &e) ==
                      IRIS_OK, "%s", e.message);
            CHECK((f->dq[0] & IRIS_DQ_NO_GAIN_VALUE) &&
                      (f->dq[0] & IRIS_DQ_DO_NOT_USE) && isnan(f->vp[0]) &&
                      isnan(f->rate[0]) && isnan(f->vr[0]),
                  "bad gain %g: dq %x vp %g", badg[b], f->dq[0], f->vp[0]);
            CHECK((f->dq[1] & IRIS_DQ_UNRELIABLE_ERROR) &&
                      (f->dq[1] & IRIS_DQ_DO_NOT_USE) && isnan(f->vr[1]) &&
                      isnan(f->rate[1]),
                  "bad read noise: dq %x", f->dq[1]);
            CHECK(!(f->dq[2] & IRIS_DQ_DO_NOT_USE) && isfinite(f->rate[2]),
                  "neighbour of bad references: dq %x", f->dq[2]);
        }
    }
    free(f);
}

/* The vector path and the scalar reference agree on the same ramps. */
static void test_fast_matches_scalar(void)
{
    enum { N = 25, NP = 256 };
    static uint16_t d[N * NP];
    static float sat[NP];
    double t[N];
    frame *f = frame_new();
    iris_readout_params p;
    iris_refs r;
    iris_error e;
    size_t k, i;
    int wt;
    for (k = 0; k < N; ++k)
        t[k] = 1.2 * (double)(k + 1) + (k > 10 ? 0.4 : 0.0);
    for (i = 0; i < NP / 2; ++i) {
        double rate = 5.0 + 40.0 * (double)i, bias = 3000.0 + 100.0 * urand();
        for (k = 0; k < N; ++k) {
            double v = bias + rate * t[k] + 6.0 * grand();
            d[k * NP + 2 * i] = d[k * NP + 2 * i + 1] = (uint16_t)lround(v);
        }
        sat[2 * i] = 65535.0f;
        sat[2 * i + 1] = NAN; /* NO_SAT_CHECK pixels take the scalar path */
    }
    iris_refs_default(&r);
    r.ref_ny = 1;
    r.ref_nx = NP;
    r.saturation = sat;
    for (wt = 0; wt < 2; ++wt) {
        iris_readout_params_default(&p);
        p.read_noise = 6.0;
        p.weighting = (iris_weighting)wt;
        CHECK(fit(d, IRIS_DTYPE_UINT16, N, 1, NP, t, &r, &p, f, &e) == IRIS_OK,
              "%s", e.message);
        for (i = 0; i < NP; i += 2) {
            CHECK(CLOSE(f->rate[i], f->rate[i + 1], 1e-5, 1e-4),
                  "wt %d pix %zu: %.8g vs %.8g", wt, i, f->rate[i],
                  f->rate[i + 1]);
            CHECK(CLOSE(f->vp[i], f->vp[i + 1], 1e-4, 1e-6) &&
                      CLOSE(f->vr[i], f->vr[i + 1], 1e-5, 0),
                  "variances %g/%g %g/%g", f->vp[i], f->vp[i + 1], f->vr[i],
                  f->vr[i + 1]);
            CHECK(f->dq[i + 1] == (f->dq[i] | IRIS_DQ_NO_SAT_CHECK), "dq");
        }
    }
    free(f);
}

/* Multithreaded result == single-threaded result, bit for bit. */
static void test_threads_bitwise(void)
{
    enum { N = 12, NY = 37, NX = 61, NPIX = NY * NX };
    static uint16_t d[N * NPIX];
    static float coef[3 * NPIX], sat[NPIX], rn[NPIX];
    double t[N];
    frame *a = frame_new(), *b = frame_new();
    iris_readout_params p;
    iris_refs r;
    iris_error e;
    iris_workspace *ws = iris_workspace_create(N, NX, 2, &e);
    iris_ramp ramp;
    size_t k, i;
    for (k = 0; k < N; ++k)
        t[k] = 1.0 + 1.7 * (double)k;
    for (i = 0; i < NPIX; ++i) {
        double rate = 1000.0 * urand();
        coef[i] = 0.0f;
        coef[NPIX + i] = 1.0f;
        coef[2 * NPIX + i] = (float)(1e-6 * urand());
        sat[i] = 15000.0f;
        rn[i] = (float)(5.0 + 5.0 * urand());
        for (k = 0; k < N; ++k) {
            double v = 2000.0 + rate * t[k] + 8.0 * grand() +
                       (urand() < 0.02 ? 3000.0 : 0.0) * (k > 5);
            d[k * NPIX + i] = (uint16_t)(v > 65535 ? 65535 : v);
        }
    }
    CHECK(ws != NULL, "workspace: %s", e.message);
    iris_readout_params_default(&p);
    iris_refs_default(&r);
    r.ref_ny = NY;
    r.ref_nx = NX;
    r.ncoeffs = 3;
    r.nonlin = coef;
    r.saturation = sat;
    r.read_noise = rn;
    ramp.data = d;
    ramp.dtype = IRIS_DTYPE_UINT16;
    ramp.nreads = N;
    ramp.ny = NY;
    ramp.nx = NX;
    ramp.read_times = t;
    p.nthreads = 1;
    CHECK(iris_readout_fit(ws, &ramp, &r, &p, &a->out, &e) == IRIS_OK, "%s",
          e.message);
    p.nthreads = 2;
    CHECK(iris_readout_fit(ws, &ramp, &r, &p, &b->out, &e) == IRIS_OK, "%s",
          e.message);
    CHECK(memcmp(a->rate, b->rate, NPIX * sizeof(float)) == 0 &&
              memcmp(a->vp, b->vp, NPIX * sizeof(float)) == 0 &&
              memcmp(a->vr, b->vr, NPIX * sizeof(float)) == 0 &&
              memcmp(a->dq, b->dq, NPIX * sizeof(uint32_t)) == 0 &&
              memcmp(a->nu, b->nu, NPIX * sizeof(uint16_t)) == 0,
          "1 and 2 threads differ");
    {
        size_t njump = 0, nsat = 0;
        for (i = 0; i < NPIX; ++i) {
            njump += (a->dq[i] & IRIS_DQ_JUMP_DET) != 0;
            nsat += (a->dq[i] & IRIS_DQ_SATURATED) != 0;
        }
        CHECK(njump > 20 && nsat > 100, "test data exercise jumps (%zu) and "
              "saturation (%zu)", njump, nsat);
    }
    iris_workspace_free(ws);
    free(a);
    free(b);
}

static void expect_error(iris_status got, iris_status want, const iris_error *e,
                         const char *needle, const char *what)
{
    CHECK(got == want && e->code == want, "%s: status %d, want %d", what,
          (int)got, (int)want);
    CHECK(strlen(e->message) > 0 && (!needle || strstr(e->message, needle)),
          "%s: message '%s' lacks '%s'", what, e->message, needle ? needle : "");
}

static void test_bad_arguments(void)
{
    enum { N = 4 };
    static uint16_t d[N * 6];
    static float ref[4 * 4];
    double t[N + 1] = {1.0, 2.0, 3.0, 4.0, 5.0};
    frame *f = frame_new();
    iris_readout_params p;
    iris_refs r;
    iris_error e;
    iris_ramp ramp = {d, IRIS_DTYPE_UINT16, N, 2, 3, t};
    iris_outputs out = f->out;
    iris_workspace *ws = iris_workspace_create(N, 3, 1, &e);
    iris_readout_params_default(&p);

    expect_error(iris_readout_fit(NULL, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_NULL_POINTER, &e, "workspace", "null ws");
    expect_error(iris_readout_fit(ws, NULL, NULL, &p, &out, &e),
                 IRIS_ERR_NULL_POINTER, &e, "ramp", "null ramp");
    expect_error(iris_readout_fit(ws, &ramp, NULL, NULL, &out, &e),
                 IRIS_ERR_NULL_POINTER, &e, "params", "null params");
    ramp.data = NULL;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_NULL_POINTER, &e, "data", "null data");
    ramp.data = d;
    ramp.read_times = NULL;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_NULL_POINTER, &e, "read_times", "null times");
    ramp.read_times = t;
    out.rate = NULL;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_NULL_POINTER, &e, "rate", "null rate");
    out.rate = f->rate;
    ramp.nreads = 1;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_TOO_FEW_READS, &e, "nreads=1", "one read");
    ramp.nreads = N;
    ramp.ny = 0;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_BAD_SIZE, &e, "ny=0", "zero size");
    ramp.ny = 2;
    t[3] = 3.0;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_READ_TIMES, &e,
                 "read_times[3]=3 is not greater than read_times[2]=3",
                 "non-increasing times");
    t[3] = NAN;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_READ_TIMES, &e, "not finite", "nan time");
    t[3] = 4.0;
    ramp.dtype = (iris_dtype)7;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_DTYPE, &e, "dtype", "bad dtype");
    ramp.dtype = IRIS_DTYPE_UINT16;
    p.mode = (iris_mode)5;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e), IRIS_ERR_MODE,
                 &e, "mode", "bad mode");
    p.mode = IRIS_MODE_UTR;
    p.weighting = (iris_weighting)5;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_WEIGHTING, &e, "weighting", "bad weighting");
    p.weighting = IRIS_WEIGHT_OPTIMAL;
    p.mode = IRIS_MODE_MCDS;
    p.fowler_n = 3;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_FOWLER_N, &e, "N=3", "fowler too large");
    p.fowler_n = 0;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_FOWLER_N, &e, "N=0", "fowler zero");
    iris_readout_params_default(&p);
    p.gain = 0.0;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e), IRIS_ERR_PARAM,
                 &e, "gain", "zero gain");
    iris_readout_params_default(&p);
    p.read_noise = NAN;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e), IRIS_ERR_PARAM,
                 &e, "read_noise", "nan read noise");
    iris_readout_params_default(&p);
    p.nthreads = 3;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e), IRIS_ERR_PARAM,
                 &e, "nthreads", "too many threads");
    iris_readout_params_default(&p);
    iris_refs_default(&r);
    r.ref_ny = 4;
    r.ref_nx = 4;
    r.offset_x = 2;
    r.gain = ref;
    expect_error(iris_readout_fit(ws, &ramp, &r, &p, &out, &e),
                 IRIS_ERR_GEOMETRY, &e, "offset (0, 2)", "subarray off the edge");
    r.offset_x = 0;
    r.nonlin = ref;
    r.ncoeffs = 0;
    expect_error(iris_readout_fit(ws, &ramp, &r, &p, &out, &e), IRIS_ERR_PARAM,
                 &e, "ncoeffs", "no coefficients");
    r.nonlin = NULL;
    CHECK(iris_readout_fit(ws, &ramp, &r, &p, &out, &e) == IRIS_OK,
          "subarray fits: %s", e.message);
    ramp.nreads = 5;
    expect_error(iris_readout_fit(ws, &ramp, NULL, &p, &out, &e),
                 IRIS_ERR_WORKSPACE, &e, "max_nreads", "workspace too small");
    CHECK(iris_workspace_create(1, 3, 1, &e) == NULL &&
              e.code == IRIS_ERR_TOO_FEW_READS,
          "workspace with one read");
    CHECK(iris_workspace_nthreads(ws) == 1, "workspace threads");
    iris_workspace_free(ws);
    iris_workspace_free(NULL);
    free(f);
}

static void test_combine(void)
{
    float rate[6] = {10.0f, 1.0f, 5.0f, 20.0f, 3.0f, NAN};
    float vp[6] = {1.0f, 1.0f, 1.0f, 3.0f, 1.0f, 1.0f};
    float vr[6] = {1.0f, 1.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    uint32_t dq[6] = {0, IRIS_DQ_DO_NOT_USE, IRIS_DQ_DO_NOT_USE | 4, 8, 0,
                      IRIS_DQ_DO_NOT_USE};
    float r[3], p[3], n[3];
    uint32_t q[3];
    iris_error e;
    /* two integrations (rows) of three pixels */
    CHECK(iris_readout_combine_integrations(2, 3, rate, vp, vr, dq, r, p, n, q,
                                            &e) == IRIS_OK,
          "%s", e.message);
    /* pixel 0: weights 1/2 and 1/4 */
    CHECK(CLOSE(r[0], (10.0 / 2 + 20.0 / 4) / (0.5 + 0.25), 1e-6, 0), "r0 %g", r[0]);
    CHECK(CLOSE(p[0], (1.0 / 4 + 3.0 / 16) / (0.75 * 0.75), 1e-6, 0), "p0 %g", p[0]);
    CHECK(CLOSE(n[0], (1.0 / 4 + 1.0 / 16) / (0.75 * 0.75), 1e-6, 0), "n0 %g", n[0]);
    CHECK(q[0] == 8, "q0 %u", q[0]);
    CHECK(r[1] == 3.0f && q[1] == 0, "pixel 1 uses integration 2 only");
    CHECK(isnan(r[2]) && q[2] == (IRIS_DQ_DO_NOT_USE | 4), "pixel 2 unusable");
    CHECK(iris_readout_combine_integrations(0, 3, rate, vp, vr, dq, r, p, n, q,
                                            &e) == IRIS_ERR_BAD_SIZE,
          "no integrations");
}

static void test_sum_reads(void)
{
    static uint16_t d[3 * 5000];
    static uint32_t out[5000];
    iris_error e;
    size_t i;
    for (i = 0; i < 3 * 5000; ++i)
        d[i] = (uint16_t)(i % 65536);
    CHECK(iris_readout_sum_reads(d, 3, 5000, out, 2, &e) == IRIS_OK, "%s",
          e.message);
    for (i = 0; i < 5000; ++i)
        CHECK(out[i] == d[i] + (uint32_t)d[5000 + i] + d[10000 + i], "sum %zu", i);
    CHECK(iris_readout_sum_reads(NULL, 3, 5000, out, 2, &e) ==
              IRIS_ERR_NULL_POINTER, "null data");
}

int main(void)
{
    test_version();
    test_linear_modes();
    test_cds_mcds_closed_form();
    test_rnoise_formula();
    test_saturation();
    test_jump();
    test_jump_few_reads();
    test_nan_samples();
    test_nonlinearity();
    test_subarray_refs();
    test_fast_matches_scalar();
    test_threads_bitwise();
    test_bad_arguments();
    test_combine();
    test_sum_reads();
    printf("%d passed, %d failed\n", n_pass, n_fail);
    return n_fail ? 1 : 0;
}
