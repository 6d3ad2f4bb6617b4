/*
 * The reference algorithm for one pixel, in double precision.
 *
 * The block kernel (kernel.inc, dispatched by fit.c) handles the common case
 * (every read usable, no jump candidate, valid references) with vectorised
 * single-precision loops; every other pixel comes here.  This file is
 * therefore the definition of the processing; the block kernel is an exact
 * shortcut of it for ordinary pixels.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* Quantisation noise of an integer ADC (1/12 DN^2) keeps the jump test
 * meaningful for noiseless (read noise 0) data. */
#define QUANT_VAR (1.0 / 12.0)

static double sample_at(const iris_pixel_in *in, size_t k)
{
    size_t i = k * in->stride;
    switch (in->dtype) {
    case IRIS_DTYPE_UINT16: return ((const uint16_t *)in->data)[i];
    case IRIS_DTYPE_INT32: return ((const int32_t *)in->data)[i];
    case IRIS_DTYPE_FLOAT32: return ((const float *)in->data)[i];
    }
    return NAN;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the sorted s[0..k-1] without one element of value v (k >= 2). */
static double median_without(const double *s, size_t k, double v)
{
    size_t m = k - 1, h;
    if (m % 2) {
        h = (m - 1) / 2;
        return v <= s[h] ? s[h + 1] : s[h];
    }
    h = m / 2 - 1; /* the remaining middle pair is rem[h], rem[h + 1] */
    if (v <= s[h])
        return 0.5 * (s[h + 1] + s[h + 2]);
    if (v <= s[h + 1])
        return 0.5 * (s[h] + s[h + 2]);
    return 0.5 * (s[h] + s[h + 1]);
}

/*
 * Leave-one-out jump test on the m usable corrected reads.  Each active
 * two-point difference d_j is compared with the mean of the other K-1
 * active ones: e_j = (K d_j - S) / (K - 1), S the sum of the K active
 * differences.  Its variance is exact for the noise model (read noise R
 * per read, shared by neighbouring differences; Poisson noise of the rate
 * on each interval), so e_j / sigma_j is a standard normal under the null.
 * The rate of the Poisson term is the median of the OTHER differences,
 * clipped at 0: a jump must not inflate the noise it is compared with
 * (for K = 2 that is the smaller difference when testing the larger).  The
 * worst |e_j| / sigma_j above thr[K] (see iris_jump_thresholds) is removed
 * and the test repeated.  brk[j] = 1 marks a jump between reads j and j+1.
 * Returns the number of jumps; *rate_out receives the median of the
 * differences left.
 */
static size_t detect_jumps(const double *y, const double *t, size_t m,
                           double rn2eff, double inv_gain, const double *thr,
                           iris_pixel_scratch *s, double *rate_out)
{
    size_t nd = m - 1, j, njump = 0;
    double *d = s->d, *dt = s->dt, *tmp = s->tmp, med = 0.0;
    for (j = 0; j < nd; ++j) {
        dt[j] = t[j + 1] - t[j];
        d[j] = (y[j + 1] - y[j]) / dt[j];
        s->brk[j] = 0;
    }
    for (;;) {
        size_t na = 0, worst = nd, prev = nd;
        double sum = 0.0, worst_score = 0.0, kk, ra = 0.0, rb = 0.0, rc = 0.0;
        for (j = 0; j < nd; ++j)
            if (!s->brk[j]) {
                tmp[na++] = d[j];
                sum += d[j];
            }
        if (na < 2)
            break;
        if (na <= 64) {
            /* insertion sort: few values, nearly in order (a ramp's
             * differences scatter about one rate) */
            size_t a, b;
            for (a = 1; a < na; ++a) {
                double v = tmp[a];
                for (b = a; b > 0 && tmp[b - 1] > v; --b)
                    tmp[b] = tmp[b - 1];
                tmp[b] = v;
            }
        } else {
            qsort(tmp, na, sizeof *tmp, cmp_double);
        }
        med = na % 2 ? tmp[na / 2] : 0.5 * (tmp[na / 2 - 1] + tmp[na / 2]);
        /* Var(S) = ra + r * rb: read-noise part (variances plus twice the
         * covariance -R / (dt_i dt_{i+1}) of active neighbours) and the
         * Poisson part per unit rate/gain */
        for (j = 0; j < nd; ++j) {
            if (s->brk[j])
                continue;
            ra += 2.0 * rn2eff / (dt[j] * dt[j]);
            rb += 1.0 / dt[j];
            rc += 1.0 / (dt[j] * dt[j]);
            if (prev + 1 == j)
                ra -= 2.0 * rn2eff / (dt[prev] * dt[j]);
            prev = j;
        }
        kk = (double)na;
        for (j = 0; j < nd; ++j) {
            double r, a_j, c_j, var_e, score, z, k3, thr_up;
            if (s->brk[j])
                continue;
            r = median_without(tmp, na, d[j]);
            r = r > 0.0 ? r : 0.0;
            /* The rate estimate is noisy, and low exactly when d_j stands
             * out from the others by chance: raise it by its own standard
             * error (median of K-1 differences: 1.25 sd / sqrt(K-1)) so
             * that pixels with signal keep the false-alarm probability.
             * Not for K = 2, where the one other difference is the rate. */
            if (na > 2)
                r += 1.2533 * sqrt(r * inv_gain / dt[j] / (kk - 1.0));
            r *= inv_gain;
            /* Var(d_j) and Cov(d_j, S), read-noise parts */
            a_j = 2.0 * rn2eff / (dt[j] * dt[j]);
            c_j = a_j;
            if (j > 0 && !s->brk[j - 1])
                c_j -= rn2eff / (dt[j - 1] * dt[j]);
            if (j + 1 < nd && !s->brk[j + 1])
                c_j -= rn2eff / (dt[j] * dt[j + 1]);
            /* Var(K d_j - S); the Poisson parts of Var(d_j) and
             * Cov(d_j, S) are both r / dt_j */
            var_e = kk * kk * a_j - 2.0 * kk * c_j + ra +
                    r * ((kk * kk - 2.0 * kk) / dt[j] + rb);
            if (!(var_e > 0.0))
                continue;
            /* (K d_j - S) / sd is the same ratio as e_j / sigma_j */
            z = (kk * d[j] - sum) / sqrt(var_e);
            score = fabs(z);
            if (z > 0.0 && r > 0.0) {
                /* Poisson counts are skewed: their upper tail is longer
                 * than a normal one, and few counts per interval flag
                 * clean pixels.  Raise the threshold of upward deviations
                 * by the Cornish-Fisher term gamma (T^2 - 1) / 6, gamma the
                 * skewness of K d_j - S (third cumulant: r/g^2 per interval
                 * per dt^2); the downward tail is shorter, so the two-sided
                 * false-alarm probability stays at most alpha.  Zero for
                 * dark pixels and for K = 2. */
                const double t = thr[na];
                k3 = r * inv_gain *
                     ((kk - 1.0) * (kk - 1.0) * (kk - 1.0) / (dt[j] * dt[j]) -
                      (rc - 1.0 / (dt[j] * dt[j])));
                if (k3 > 0.0 && isfinite(t)) {
                    thr_up = t + k3 / (var_e * sqrt(var_e)) * (t * t - 1.0) / 6.0;
                    score = z * t / thr_up; /* > t exactly when z > thr_up */
                }
            }
            if (score > worst_score) {
                worst_score = score;
                worst = j;
            }
        }
        if (worst == nd || worst_score <= thr[na])
            break;
        s->brk[worst] = 1;
        ++njump;
    }
    *rate_out = med;
    return njump;
}

static void set_unusable(iris_pixel_out *out, uint32_t dq, size_t nuse)
{
    out->rate = out->var_poisson = out->var_rnoise = NAN;
    out->dq = dq | IRIS_DQ_DO_NOT_USE;
    out->n_usable = (uint16_t)nuse;
}

void iris_fit_pixel(const iris_pixel_in *in, iris_pixel_scratch *s,
                    iris_pixel_out *out)
{
    const iris_readout_params *p = in->params;
    size_t n = in->nreads, k, m = 0, i;
    uint32_t dq = in->mask;
    double rn = in->read_noise, inv_gain = 0.0, med_rate = 0.0;
    int sat_check = !isnan(in->saturation), jumps, bad_ref = 0;

    /* 1. saturation on raw values; NaN samples are unusable reads */
    if (!sat_check)
        dq |= IRIS_DQ_NO_SAT_CHECK;
    for (k = 0; k < n; ++k) {
        double v = sample_at(in, k);
        if (sat_check && v >= in->saturation) {
            dq |= IRIS_DQ_SATURATED;
            break;
        }
        /* an integer read at 0 DN sits on the ADC floor: its true value is
         * unknown, so it is not used */
        if (in->dtype != IRIS_DTYPE_FLOAT32 && v <= 0.0) {
            dq |= IRIS_DQ_AD_FLOOR;
            continue;
        }
        if (!isnan(v)) {
            s->x[m] = v;
            s->t[m] = in->read_times[k];
            ++m;
        }
    }

    /* 2. reference validity: without a valid read noise or gain neither the
     * jump test nor the variances have a noise model, so the pixel is not
     * fitted (a wrong model flags false jumps and gives wrong errors) */
    jumps = p->jump_threshold > 0.0;
    if (!(rn >= 0.0) || isinf(rn)) {
        dq |= IRIS_DQ_UNRELIABLE_ERROR;
        bad_ref = 1;
    }
    if (in->gain > 0.0 && isfinite(in->gain)) {
        inv_gain = 1.0 / in->gain;
    } else {
        dq |= IRIS_DQ_NO_GAIN_VALUE;
        bad_ref = 1;
    }
    if (m < 2 || bad_ref) {
        set_unusable(out, dq, m);
        return;
    }

    /* 3. nonlinearity on the signal above the zero level */
    if (in->ncoeffs > 0) {
        int ok = 1;
        for (i = 0; i < in->ncoeffs; ++i)
            if (!isfinite(in->coeffs[i * in->coeff_stride]))
                ok = 0;
        if (!ok) {
            dq |= IRIS_DQ_NO_LIN_CORR;
            for (i = 0; i < m; ++i)
                s->y[i] = s->x[i];
        } else {
            double z = in->zero_level;
            if (!isfinite(z))
                z = s->x[0] - (s->x[1] - s->x[0]) * s->t[0] / (s->t[1] - s->t[0]);
            for (i = 0; i < m; ++i) {
                double sig = s->x[i] - z, acc = 0.0;
                size_t j = in->ncoeffs;
                while (j-- > 0)
                    acc = acc * sig + (double)in->coeffs[j * in->coeff_stride];
                s->y[i] = z + acc;
            }
        }
    } else {
        for (i = 0; i < m; ++i)
            s->y[i] = s->x[i];
    }

    /* 4. jumps */
    for (i = 0; i + 1 < m; ++i)
        s->brk[i] = 0;
    if (jumps && m >= 3) {
        if (detect_jumps(s->y, s->t, m, rn * rn + QUANT_VAR, inv_gain,
                         in->jump_thr, s, &med_rate) > 0)
            dq |= IRIS_DQ_JUMP_DET;
    }

    /* 5. one estimate per segment (>= 2 reads), combined by inverse variance.
     * Pass 1 gathers per-segment results into d[] (rate), dt[] (sum c^2),
     * tmp[] (q); pass 2 combines. */
    {
        size_t nseg = 0, start = 0, nuse = 0, g;
        double sw = 0.0, swr = 0.0, sw2r = 0.0, sw2q = 0.0, rate;
        for (i = 0; i < m; ++i) {
            if (i + 1 < m && !s->brk[i])
                continue;
            /* segment [start, i] */
            if (i - start + 1 >= 2) {
                size_t len = i - start + 1;
                double sc2, q, r = 0.0;
                const double *c = s->c;
                int pw = 0;
                if (p->mode == IRIS_MODE_UTR &&
                    p->weighting == IRIS_WEIGHT_OPTIMAL)
                    pw = iris_power_index(iris_segment_snr(
                        s->y[i] - s->y[start], rn, inv_gain));
                if (len == n) {
                    /* the whole ramp: t is read_times */
                    c = in->full_c + (size_t)pw * n;
                    sc2 = in->full_sc2[pw];
                    q = in->full_q[pw];
                } else {
                    iris_segment_weights(p->mode, p->fowler_n,
                                         iris_power_value(pw), s->t + start,
                                         len, s->c, &sc2, &q);
                }
                for (k = 0; k < len; ++k)
                    r += c[k] * (s->y[start + k] - s->y[start]);
                s->d[nseg] = r;
                s->dt[nseg] = sc2;
                s->tmp[nseg] = q;
                ++nseg;
                nuse += len;
            }
            start = i + 1;
        }
        if (nseg == 0) {
            set_unusable(out, dq, 0);
            return;
        }
        if (nseg == 1) {
            rate = s->d[0];
            sw = 1.0;
            sw2r = s->dt[0];
            sw2q = s->tmp[0];
        } else {
            /* weights from the median difference rate (robust to the
             * noise of the individual short segments) */
            double rest = med_rate > 0.0 ? med_rate : 0.0;
            int equal = 0;
            for (g = 0; g < nseg; ++g)
                if (!(rn * rn * s->dt[g] + rest * inv_gain * s->tmp[g] > 0.0))
                    equal = 1;
            for (g = 0; g < nseg; ++g) {
                double w = equal ? 1.0
                                 : 1.0 / (rn * rn * s->dt[g] +
                                          rest * inv_gain * s->tmp[g]);
                sw += w;
                swr += w * s->d[g];
                sw2r += w * w * s->dt[g];
                sw2q += w * w * s->tmp[g];
            }
            rate = swr / sw;
        }
        out->rate = (float)rate;
        out->var_rnoise = (float)(rn * rn * sw2r / (sw * sw));
        out->var_poisson =
            (float)((rate > 0.0 ? rate : 0.0) * inv_gain * sw2q / (sw * sw));
        out->dq = dq;
        out->n_usable = (uint16_t)(nuse > 65535 ? 65535 : nuse);
    }
}
