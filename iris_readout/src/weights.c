/* Rate estimators, their variances, and the median used by jump detection. */
#include <math.h>

#include "internal.h"

#define M_PI_VALUE 3.14159265358979323846

/* Fixsen et al. (2000) exponents and the SNR at which each starts (as JWST). */
static const double power_values[IRIS_NPOWER] = {0.0, 0.4, 1.0, 3.0, 6.0, 10.0};
static const float power_snr[IRIS_NPOWER - 1] = IRIS_POWER_SNR;

int iris_power_index(double snr)
{
    int i = 0;
    while (i < IRIS_NPOWER - 1 && snr > power_snr[i])
        ++i;
    return i;
}

double iris_power_value(int index) { return power_values[index]; }

/* Upper-tail normal quantile: t with Q(t) = p, 0 < p < 0.5.  Newton on
 * log Q (concave, so the iterates from above converge monotonically). */
static double normal_isf(double p)
{
    double t = sqrt(-2.0 * log(p)), lp = log(p);
    int i;
    for (i = 0; i < 60; ++i) {
        double q = 0.5 * erfc(t / sqrt(2.0));
        double phi = exp(-0.5 * t * t) / sqrt(2.0 * M_PI_VALUE);
        double step;
        if (!(q > 0.0) || !(phi > 0.0))
            break;
        step = (log(q) - lp) * q / phi;
        t += step;
        if (fabs(step) < 1e-12 * t)
            break;
    }
    return t;
}

void iris_jump_thresholds(double cap, double alpha, size_t n, double *thr)
{
    size_t k;
    for (k = 0; k < n; ++k) {
        double z;
        if (k < 2) {
            thr[k] = HUGE_VAL;
            continue;
        }
        z = normal_isf(0.5 * alpha / (k == 2 ? 1.0 : (double)k));
        thr[k] = z < cap ? z : cap;
    }
}

double iris_segment_snr(double signal, double rn, double inv_gain)
{
    double s = signal > 0.0 ? signal : 0.0;
    double noise = sqrt(rn * rn + s * inv_gain);
    if (noise > 0.0)
        return s / noise;
    return s > 0.0 ? HUGE_VAL : 0.0;
}

void iris_segment_weights(iris_mode mode, int fowler_n, double power,
                          const double *t, size_t m, double *c,
                          double *sum_c2, double *q)
{
    size_t i;
    for (i = 0; i < m; ++i)
        c[i] = 0.0;
    if (mode == IRIS_MODE_UTR && m > 2) {
        /* Weighted least squares about the segment midpoint (well
         * conditioned for any t0); weights grow towards the ends for P > 0. */
        double tm = 0.5 * (t[0] + t[m - 1]), th = 0.5 * (t[m - 1] - t[0]);
        double sw = 0.0, swt = 0.0, tb, den = 0.0;
        for (i = 0; i < m; ++i) {
            double w = power == 0.0 ? 1.0 : pow(fabs(t[i] - tm) / th, power);
            c[i] = w;
            sw += w;
            swt += w * (t[i] - tm);
        }
        tb = tm + swt / sw;
        for (i = 0; i < m; ++i)
            den += c[i] * (t[i] - tb) * (t[i] - tb);
        for (i = 0; i < m; ++i)
            c[i] = c[i] * (t[i] - tb) / den;
    } else if (mode == IRIS_MODE_MCDS && m > 2) {
        /* Fowler-N; a segment shorter than 2N uses N' = m/2. */
        size_t n = (size_t)fowler_n <= m / 2 ? (size_t)fowler_n : m / 2;
        double t_lo = 0.0, t_hi = 0.0, scale;
        for (i = 0; i < n; ++i) {
            t_lo += t[i];
            t_hi += t[m - n + i];
        }
        scale = 1.0 / (double)n / ((t_hi - t_lo) / (double)n);
        for (i = 0; i < n; ++i) {
            c[i] = -scale;
            c[m - n + i] = scale;
        }
    } else {
        /* CDS, and every mode on a two-read segment. */
        c[0] = -1.0 / (t[m - 1] - t[0]);
        c[m - 1] = -c[0];
    }
    {
        double s2 = 0.0, tail = 0.0, qq = 0.0;
        for (i = m; i-- > 0;) {
            s2 += c[i] * c[i];
            tail += c[i];
            if (i > 0)
                qq += (t[i] - t[i - 1]) * tail * tail;
        }
        *sum_c2 = s2;
        *q = qq;
    }
}

static void swap_d(double *a, double *b)
{
    double t = *a;
    *a = *b;
    *b = t;
}

/* k-th smallest element (0-based) of a[0..n-1], by Hoare selection. */
static double select_kth(double *a, size_t n, size_t k)
{
    size_t lo = 0, hi = n - 1;
    while (hi > lo) {
        size_t mid = lo + (hi - lo) / 2, i, j;
        double pivot;
        /* median of three as pivot, moved to a[lo] */
        if (a[mid] < a[lo]) swap_d(&a[mid], &a[lo]);
        if (a[hi] < a[lo]) swap_d(&a[hi], &a[lo]);
        if (a[hi] < a[mid]) swap_d(&a[hi], &a[mid]);
        swap_d(&a[lo], &a[mid]);
        pivot = a[lo];
        i = lo;
        j = hi + 1;
        for (;;) {
            do ++i; while (i <= hi && a[i] < pivot);
            do --j; while (a[j] > pivot);
            if (i >= j)
                break;
            swap_d(&a[i], &a[j]);
        }
        swap_d(&a[lo], &a[j]);
        if (j == k)
            return a[j];
        if (j < k)
            lo = j + 1;
        else
            hi = j - 1;
    }
    return a[k];
}

double iris_median(double *a, size_t n)
{
    size_t h = n / 2, i;
    double upper = select_kth(a, n, h), lower;
    if (n % 2)
        return upper;
    /* after selection a[0..h-1] are <= a[h]: the lower middle is their max */
    lower = a[0];
    for (i = 1; i < h; ++i)
        if (a[i] > lower)
            lower = a[i];
    return 0.5 * (lower + upper);
}
