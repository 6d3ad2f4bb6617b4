/*
 * iris_readout_fit(): argument checking, the workspace (creation, per-call
 * weight and threshold tables), the jump-screen constants, and the split of
 * the frame into blocks and their dispatch to the block kernel.
 *
 * The frame is cut into blocks (a run of pixels of one row) handed to the
 * threads.  The block kernel itself is kernel.inc, compiled once per
 * instruction set (kernel_base.c, kernel_avx2.c; the widest one the CPU runs
 * is chosen here at run time); the pixels it cannot finish go to the scalar
 * reference algorithm of pixel.c.  Each pixel's result depends on
 * that pixel only, so the output is identical for any number of threads.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

/* Bytes of read-major block scratch per thread (half of a Zen 3 L2). */
#define BLOCK_BYTES (256u * 1024u)
#define BLOCK_MIN 64u
#define BLOCK_MAX 4096u

/* ---------------------------------------------------------------- memory */

static void *alloc_floats(size_t count, size_t size)
{
    /* 64-byte aligned, rounded up as aligned_alloc requires */
    size_t bytes = count * size;
    bytes = (bytes + 63u) & ~(size_t)63u;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static void free_scratch(iris_thread_scratch *s)
{
    free(s->y);
    free(s->coef);
    free(s->thr);
    free(s->rn);
    free(s->gain);
    free(s->zero);
    free(s->vbad);
    free(s->nbad);
    free(s->slow);
    free(s->px.x);
    free(s->px.t);
    free(s->px.y);
    free(s->px.d);
    free(s->px.dt);
    free(s->px.tmp);
    free(s->px.c);
    free(s->px.brk);
}

static int alloc_scratch(iris_thread_scratch *s, size_t n, size_t b)
{
    memset(s, 0, sizeof *s);
    s->y = alloc_floats(n * b, sizeof(float)); /* or uint16 (kernel.inc) */
    s->coef = alloc_floats((size_t)IRIS_MAX_NCOEFFS * b, sizeof(float));
    s->thr = alloc_floats(b, sizeof(float));
    s->rn = alloc_floats(b, sizeof(float));
    s->gain = alloc_floats(b, sizeof(float));
    s->zero = alloc_floats(b, sizeof(float));
    s->vbad = alloc_floats(b, sizeof(int32_t));
    s->nbad = alloc_floats(b, sizeof(int32_t));
    s->slow = alloc_floats(b, sizeof(size_t));
    s->px.x = alloc_floats(n, sizeof(double));
    s->px.t = alloc_floats(n, sizeof(double));
    s->px.y = alloc_floats(n, sizeof(double));
    s->px.d = alloc_floats(n, sizeof(double));
    s->px.dt = alloc_floats(n, sizeof(double));
    s->px.tmp = alloc_floats(n, sizeof(double));
    s->px.c = alloc_floats(n, sizeof(double));
    s->px.brk = alloc_floats(n, 1);
    return s->y && s->coef && s->thr && s->rn && s->gain && s->zero &&
           s->vbad && s->nbad && s->slow &&
           s->px.x && s->px.t && s->px.y && s->px.d && s->px.dt &&
           s->px.tmp && s->px.c && s->px.brk;
}

static size_t round_up(size_t v, size_t m) { return (v + m - 1) / m * m; }

iris_workspace *iris_workspace_create(size_t max_nreads, size_t max_nx,
                                      int nthreads, iris_error *err)
{
    iris_workspace *ws;
    size_t b;
    int i;
    if (max_nreads < 2) {
        iris_fail(err, IRIS_ERR_TOO_FEW_READS,
                  "max_nreads=%zu: a ramp needs at least two reads", max_nreads);
        return NULL;
    }
    if (max_nx == 0 || max_nreads > ((size_t)1 << 24)) {
        iris_fail(err, IRIS_ERR_BAD_SIZE,
                  "workspace sizes max_nreads=%zu, max_nx=%zu out of range",
                  max_nreads, max_nx);
        return NULL;
    }
    if (nthreads < 0) {
        iris_fail(err, IRIS_ERR_PARAM, "nthreads=%d is negative", nthreads);
        return NULL;
    }
#ifdef _OPENMP
    if (nthreads == 0)
        nthreads = omp_get_max_threads();
#else
    nthreads = 1;
#endif
    b = BLOCK_BYTES / sizeof(float) / max_nreads;
    b = b / IRIS_BLOCK_ALIGN * IRIS_BLOCK_ALIGN;
    if (b < BLOCK_MIN) b = BLOCK_MIN;
    if (b > BLOCK_MAX) b = BLOCK_MAX;
    if (b > round_up(max_nx, IRIS_BLOCK_ALIGN))
        b = round_up(max_nx, IRIS_BLOCK_ALIGN);

    ws = calloc(1, sizeof *ws);
    if (!ws) {
        iris_fail(err, IRIS_ERR_NO_MEMORY, "cannot allocate the workspace");
        return NULL;
    }
    ws->max_nreads = max_nreads;
    ws->block = b;
    ws->nthreads = nthreads;
    ws->wtab_d = alloc_floats((size_t)IRIS_NPOWER * max_nreads, sizeof(double));
    ws->wtab = alloc_floats((size_t)IRIS_NPOWER * max_nreads, sizeof(float));
    ws->wtab_t = alloc_floats(IRIS_WT_STRIDE * max_nreads, sizeof(float));
    ws->invdt = alloc_floats(max_nreads, sizeof(float));
    ws->jump_thr = alloc_floats(max_nreads, sizeof(double));
    ws->ts = calloc((size_t)nthreads, sizeof *ws->ts);
    if (!ws->wtab_d || !ws->wtab || !ws->wtab_t || !ws->invdt ||
        !ws->jump_thr || !ws->ts) {
        iris_workspace_free(ws);
        iris_fail(err, IRIS_ERR_NO_MEMORY, "cannot allocate the workspace");
        return NULL;
    }
    /* lanes past the powers in use are loaded but never selected */
    memset(ws->wtab_t, 0, IRIS_WT_STRIDE * max_nreads * sizeof(float));
    for (i = 0; i < nthreads; ++i) {
        if (!alloc_scratch(&ws->ts[i], max_nreads, b)) {
            /* count the partial scratch so that free() releases it too */
            ws->nthreads = i + 1;
            iris_workspace_free(ws);
            iris_fail(err, IRIS_ERR_NO_MEMORY,
                      "cannot allocate %zu bytes of scratch for thread %d",
                      max_nreads * b * sizeof(float), i);
            return NULL;
        }
    }
    return ws;
}

void iris_workspace_free(iris_workspace *ws)
{
    int i;
    if (!ws)
        return;
    if (ws->ts)
        for (i = 0; i < ws->nthreads; ++i)
            free_scratch(&ws->ts[i]);
    free(ws->ts);
    free(ws->wtab_d);
    free(ws->wtab);
    free(ws->wtab_t);
    free(ws->invdt);
    free(ws->jump_thr);
    free(ws);
}

int iris_workspace_nthreads(const iris_workspace *ws)
{
    return ws ? ws->nthreads : 0;
}

/* ------------------------------------------------------------ validation */

static int refs_present(const iris_refs *r)
{
    return r && (r->nonlin || r->zero_level || r->saturation ||
                 r->read_noise || r->gain || r->mask);
}

static iris_status check_args(const iris_workspace *ws, const iris_ramp *ramp,
                              const iris_refs *refs,
                              const iris_readout_params *p,
                              const iris_outputs *out, iris_error *err)
{
    size_t k, n;
    if (!ws) return iris_fail(err, IRIS_ERR_NULL_POINTER, "workspace is NULL");
    if (!ramp) return iris_fail(err, IRIS_ERR_NULL_POINTER, "ramp is NULL");
    if (!p) return iris_fail(err, IRIS_ERR_NULL_POINTER, "params is NULL");
    if (!out) return iris_fail(err, IRIS_ERR_NULL_POINTER, "outputs is NULL");
    if (!ramp->data)
        return iris_fail(err, IRIS_ERR_NULL_POINTER, "ramp->data is NULL");
    if (!ramp->read_times)
        return iris_fail(err, IRIS_ERR_NULL_POINTER, "ramp->read_times is NULL");
    if (!out->rate)
        return iris_fail(err, IRIS_ERR_NULL_POINTER, "outputs->rate is NULL");
    if (ramp->dtype != IRIS_DTYPE_UINT16 && ramp->dtype != IRIS_DTYPE_INT32 &&
        ramp->dtype != IRIS_DTYPE_FLOAT32)
        return iris_fail(err, IRIS_ERR_DTYPE, "unknown sample dtype %d",
                         (int)ramp->dtype);
    if (p->mode != IRIS_MODE_UTR && p->mode != IRIS_MODE_CDS &&
        p->mode != IRIS_MODE_MCDS)
        return iris_fail(err, IRIS_ERR_MODE, "unknown readout mode %d",
                         (int)p->mode);
    if (p->weighting != IRIS_WEIGHT_OPTIMAL &&
        p->weighting != IRIS_WEIGHT_UNWEIGHTED)
        return iris_fail(err, IRIS_ERR_WEIGHTING, "unknown weighting %d",
                         (int)p->weighting);
    n = ramp->nreads;
    if (n < 2)
        return iris_fail(err, IRIS_ERR_TOO_FEW_READS,
                         "nreads=%zu: a ramp needs at least two reads", n);
    if (ramp->ny == 0 || ramp->nx == 0)
        return iris_fail(err, IRIS_ERR_BAD_SIZE, "empty frame: ny=%zu, nx=%zu",
                         ramp->ny, ramp->nx);
    if (ramp->nx > SIZE_MAX / ramp->ny ||
        ramp->nx * ramp->ny > SIZE_MAX / 4 / n)
        return iris_fail(err, IRIS_ERR_BAD_SIZE,
                         "ramp size %zu x %zu x %zu overflows", n, ramp->ny,
                         ramp->nx);
    for (k = 0; k < n; ++k) {
        double t = ramp->read_times[k];
        if (!isfinite(t))
            return iris_fail(err, IRIS_ERR_READ_TIMES,
                             "read_times[%zu]=%g is not finite", k, t);
        if (k > 0 && !(t > ramp->read_times[k - 1]))
            return iris_fail(err, IRIS_ERR_READ_TIMES,
                             "read_times[%zu]=%.9g is not greater than "
                             "read_times[%zu]=%.9g",
                             k, t, k - 1, ramp->read_times[k - 1]);
    }
    if (p->mode == IRIS_MODE_MCDS &&
        (p->fowler_n < 1 || 2 * (size_t)p->fowler_n > n))
        return iris_fail(err, IRIS_ERR_FOWLER_N,
                         "Fowler N=%d needs 1 <= N and 2N <= nreads=%zu",
                         p->fowler_n, n);
    if (!(p->read_noise >= 0.0) || isinf(p->read_noise))
        return iris_fail(err, IRIS_ERR_PARAM,
                         "params.read_noise=%g must be finite and >= 0",
                         p->read_noise);
    if (!(p->gain > 0.0) || isinf(p->gain))
        return iris_fail(err, IRIS_ERR_PARAM,
                         "params.gain=%g must be finite and > 0", p->gain);
    if (isnan(p->saturation))
        return iris_fail(err, IRIS_ERR_PARAM,
                         "params.saturation is NaN (use +inf for no check)");
    if (isnan(p->jump_threshold))
        return iris_fail(err, IRIS_ERR_PARAM,
                         "params.jump_threshold is NaN (use 0 to disable)");
    if (p->jump_threshold > 0.0 &&
        !(p->jump_false_alarm > 0.0 && p->jump_false_alarm <= 0.5))
        return iris_fail(err, IRIS_ERR_PARAM,
                         "params.jump_false_alarm=%g must be in (0, 0.5]",
                         p->jump_false_alarm);
    if (p->nthreads < 0 || p->nthreads > ws->nthreads)
        return iris_fail(err, IRIS_ERR_PARAM,
                         "params.nthreads=%d: must be 0..%d (the workspace's "
                         "threads)", p->nthreads, ws->nthreads);
    if (n > ws->max_nreads)
        return iris_fail(err, IRIS_ERR_WORKSPACE,
                         "nreads=%zu exceeds the workspace's max_nreads=%zu",
                         n, ws->max_nreads);
    if (refs_present(refs)) {
        if (refs->ref_ny == 0 || refs->ref_nx == 0)
            return iris_fail(err, IRIS_ERR_GEOMETRY,
                             "reference geometry %zu x %zu is empty",
                             refs->ref_ny, refs->ref_nx);
        if (refs->offset_y > refs->ref_ny ||
            ramp->ny > refs->ref_ny - refs->offset_y ||
            refs->offset_x > refs->ref_nx ||
            ramp->nx > refs->ref_nx - refs->offset_x)
            return iris_fail(err, IRIS_ERR_GEOMETRY,
                             "science frame %zu x %zu at offset (%zu, %zu) "
                             "does not fit in references of %zu x %zu",
                             ramp->ny, ramp->nx, refs->offset_y,
                             refs->offset_x, refs->ref_ny, refs->ref_nx);
        /* one coefficient would be an offset only: the corrected ramp would
         * have no signal, so such a reference is a broken file */
        if (refs->nonlin &&
            (refs->ncoeffs < 2 || refs->ncoeffs > IRIS_MAX_NCOEFFS))
            return iris_fail(err, IRIS_ERR_PARAM,
                             "ncoeffs=%zu: a nonlinearity reference needs "
                             "2..%d coefficients (c0 + c1 s + ...)",
                             refs->ncoeffs, IRIS_MAX_NCOEFFS);
        if (refs->ref_nx > SIZE_MAX / refs->ref_ny ||
            (refs->nonlin &&
             refs->ref_nx * refs->ref_ny > SIZE_MAX / 4 / refs->ncoeffs))
            return iris_fail(err, IRIS_ERR_BAD_SIZE,
                             "reference size overflows");
    }
    return IRIS_OK;
}

static void setup_tables(iris_workspace *ws, const iris_ramp *ramp,
                         const iris_readout_params *p)
{
    size_t n = ramp->nreads, k;
    int pw, npw = p->mode == IRIS_MODE_UTR && p->weighting == IRIS_WEIGHT_OPTIMAL
                      ? IRIS_NPOWER : 1;
    for (pw = 0; pw < npw; ++pw) {
        float *dst = ws->wtab + (size_t)pw * ws->max_nreads;
        double *c = ws->wtab_d + (size_t)pw * n;
        iris_segment_weights(p->mode, p->fowler_n, iris_power_value(pw),
                             ramp->read_times, n, c, &ws->sum_c2[pw],
                             &ws->q[pw]);
        ws->q_f[pw] = (float)ws->q[pw];
        ws->sum_c2_f[pw] = (float)ws->sum_c2[pw];
        for (k = 0; k < n; ++k) {
            dst[k] = (float)c[k];
            ws->wtab_t[k * IRIS_WT_STRIDE + (size_t)pw] = (float)c[k];
        }
    }
    for (k = 0; k + 1 < n; ++k)
        ws->invdt[k] =
            (float)(1.0 / (ramp->read_times[k + 1] - ramp->read_times[k]));
    if (p->jump_threshold > 0.0)
        iris_jump_thresholds(p->jump_threshold, p->jump_false_alarm, n,
                             ws->jump_thr);
}

/*
 * Constants of the kernel's jump screen for K = n-1 active differences:
 * Var(K d_j - S) = R F_j + (rate/gain) G_j (pixel.c) with
 *   F_j = K^2 a_j - 2K (a_j - b_{j-1} - b_j) + sum a - 2 sum b,
 *   G_j = (K^2 - 2K) / dt_j + sum 1/dt,
 * a_j = 2/dt_j^2, b_j = 1/(dt_j dt_{j+1}) (0 outside).  Returns the minima
 * over j, so that the screen bounds every difference at once.
 */
static void jump_screen(const double *t, size_t n, float *fvar, float *gvar)
{
    size_t k, nd = n - 1;
    double kk = (double)nd, sa = 0.0, sb = 0.0, sinv = 0.0;
    double fmin = HUGE_VAL, gmin = HUGE_VAL;
    for (k = 0; k < nd; ++k) {
        double dt = t[k + 1] - t[k];
        sa += 2.0 / (dt * dt);
        sinv += 1.0 / dt;
        if (k + 1 < nd)
            sb += 1.0 / (dt * (t[k + 2] - t[k + 1]));
    }
    for (k = 0; k < nd; ++k) {
        double dt = t[k + 1] - t[k], a = 2.0 / (dt * dt), b = 0.0, f, g;
        if (k > 0)
            b += 1.0 / ((t[k] - t[k - 1]) * dt);
        if (k + 1 < nd)
            b += 1.0 / (dt * (t[k + 2] - t[k + 1]));
        f = kk * kk * a - 2.0 * kk * (a - b) + sa - 2.0 * sb;
        g = (kk * kk - 2.0 * kk) / dt + sinv;
        fmin = f < fmin ? f : fmin;
        gmin = g < gmin ? g : gmin;
    }
    *fvar = (float)fmin;
    *gvar = (float)gmin;
}

iris_status iris_readout_fit(iris_workspace *ws, const iris_ramp *ramp,
                             const iris_refs *refs,
                             const iris_readout_params *params,
                             const iris_outputs *out, iris_error *err)
{
    /* the widest kernel this CPU runs */
    void (*kernel)(const iris_fit_ctx *, iris_thread_scratch *, size_t,
                   size_t, size_t) = iris_process_block_base;
    iris_fit_ctx c;
    size_t nbpr, nblocks, k;
    long blk;
#ifdef _OPENMP
    int nt;
#endif
    iris_status st = check_args(ws, ramp, refs, params, out, err);
    if (st != IRIS_OK)
        return st;

    setup_tables(ws, ramp, params);
    memset(&c, 0, sizeof c);
    c.ramp = ramp;
    c.refs = refs_present(refs) ? refs : NULL;
    c.p = params;
    c.out = out;
    c.ws = ws;
    c.n = ramp->nreads;
    c.npix = ramp->ny * ramp->nx;
    c.ncoeffs = c.refs && c.refs->nonlin ? c.refs->ncoeffs : 0;
    c.ref_plane = c.refs ? c.refs->ref_ny * c.refs->ref_nx : 0;
    c.jumps = params->jump_threshold > 0.0;
    c.optimal = params->mode == IRIS_MODE_UTR &&
                params->weighting == IRIS_WEIGHT_OPTIMAL;
    c.zratio = (float)(ramp->read_times[0] /
                       (ramp->read_times[1] - ramp->read_times[0]));
    c.inv_span = (float)(1.0 / (ramp->read_times[c.n - 1] - ramp->read_times[0]));
    if (c.jumps) {
        c.jthr = (float)ws->jump_thr[c.n - 1];
        jump_screen(ramp->read_times, c.n, &c.fvar, &c.gvar);
    }
    c.invdt_min = c.invdt_max = ws->invdt[0];
    for (k = 1; k + 1 < c.n; ++k) {
        c.invdt_min = fminf(c.invdt_min, ws->invdt[k]);
        c.invdt_max = fmaxf(c.invdt_max, ws->invdt[k]);
    }
    /* equal blocks per row, each at most the workspace block */
#ifdef IRIS_HAVE_AVX2_KERNEL
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        kernel = iris_process_block_avx2;
#endif
    nbpr = (ramp->nx + ws->block - 1) / ws->block;
    c.block = round_up((ramp->nx + nbpr - 1) / nbpr, IRIS_BLOCK_ALIGN);
    nblocks = ramp->ny * nbpr;
#ifdef _OPENMP
    nt = params->nthreads ? params->nthreads : ws->nthreads;
#pragma omp parallel num_threads(nt)
#endif
    {
#ifdef _OPENMP
        iris_thread_scratch *s = &ws->ts[omp_get_thread_num()];
#else
        iris_thread_scratch *s = &ws->ts[0];
#endif
#pragma omp for schedule(dynamic, 1)
        for (blk = 0; blk < (long)nblocks; ++blk) {
            size_t y = (size_t)blk / nbpr, j = (size_t)blk % nbpr;
            size_t x0 = j * c.block;
            size_t len = ramp->nx - x0 < c.block ? ramp->nx - x0 : c.block;
            kernel(&c, s, y, x0, len);
        }
    }
    return IRIS_OK;
}

iris_status iris_readout_fit_once(const iris_ramp *ramp, const iris_refs *refs,
                                  const iris_readout_params *params,
                                  const iris_outputs *out, iris_error *err)
{
    iris_workspace *ws;
    iris_status st;
    if (!ramp) return iris_fail(err, IRIS_ERR_NULL_POINTER, "ramp is NULL");
    if (!params) return iris_fail(err, IRIS_ERR_NULL_POINTER, "params is NULL");
    if (params->nthreads < 0)
        return iris_fail(err, IRIS_ERR_PARAM, "params.nthreads=%d is negative",
                         params->nthreads);
    /* sizes are validated by iris_readout_fit(); keep creation valid */
    ws = iris_workspace_create(ramp->nreads > 2 ? ramp->nreads : 2,
                               ramp->nx ? ramp->nx : 1, params->nthreads, err);
    if (!ws)
        return err ? err->code : IRIS_ERR_NO_MEMORY;
    st = iris_readout_fit(ws, ramp, refs, params, out, err);
    iris_workspace_free(ws);
    return st;
}
