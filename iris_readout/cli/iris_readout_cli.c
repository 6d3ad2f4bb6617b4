/*
 * iris_readout: Level 0 ramp FITS file -> Level 1 rate image.
 *
 *   iris_readout -s utr|cds|mcds [-n N] [-j threshold] [-t threads]
 *                [-u] [-r read_noise] [-g gain] [-S saturation] [-f]
 *                in.fits -o out.fits
 *
 * Input: primary HDU (header), image HDU SCI of unsigned 16-bit samples
 * (BITPIX 16, BZERO 32768) shaped (nints, nreads, ny, nx) or (nreads, ny,
 * nx), and READ_TIMES (float64, nreads) or else the keyword TFRAME (read k
 * at (k+1)*TFRAME).  Output: the primary header with DATAMODL and READPATT,
 * then SCI, ERR, DQ, VAR_POISSON, VAR_RNOISE.  Integrations are combined by
 * inverse variance.  The output is written to a temporary file renamed at
 * the end, so a failure leaves no output behind.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fitsio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "iris_readout.h"

static const char *usage =
    "usage: iris_readout -s utr|cds|mcds [-n N] [-j threshold] [-t threads]\n"
    "                    [-u] [-r read_noise] [-g gain] [-S saturation] [-f]\n"
    "                    in.fits -o out.fits\n"
    "  -s MODE   readout: up-the-ramp, correlated double, Fowler-N sampling\n"
    "  -n N      Fowler N for mcds (default 1)\n"
    "  -j SIGMA  jump threshold, <= 0 disables (default 5)\n"
    "  -t N      threads, 0 = all (default 0)\n"
    "  -u        unweighted least squares for utr (default: optimal)\n"
    "  -r DN     read noise per read (default 0)\n"
    "  -g E/DN   gain (default 1)\n"
    "  -S DN     saturation threshold (default 65535)\n"
    "  -f        overwrite out.fits (also --clobber)\n";

/* Everything allocated or opened, released by cleanup(). */
typedef struct job {
    const char *in_path, *out_path;
    char tmp_path[4096];
    fitsfile *in, *out;
    uint16_t *ramp;
    double *times;
    float *rate, *vp, *vr, *err;
    uint32_t *dq;
    float *crate, *cvp, *cvr;
    uint32_t *cdq;
    iris_workspace *ws;
} job;

static int fits_fail(const char *path, const char *what, int status)
{
    char text[FLEN_STATUS];
    fits_get_errstatus(status, text);
    fprintf(stderr, "iris_readout: %s: %s: %s\n", path, what, text);
    return 1;
}

static int fail(const char *path, const char *fmt, const char *detail)
{
    fprintf(stderr, "iris_readout: %s: ", path);
    fprintf(stderr, fmt, detail);
    fprintf(stderr, "\n");
    return 1;
}

static void cleanup(job *j, int failed)
{
    int st = 0;
    if (j->in)
        fits_close_file(j->in, &st);
    st = 0;
    if (j->out)
        fits_close_file(j->out, &st);
    if (failed && j->tmp_path[0])
        unlink(j->tmp_path);
    free(j->ramp);
    free(j->times);
    free(j->rate);
    free(j->vp);
    free(j->vr);
    free(j->err);
    free(j->dq);
    free(j->crate);
    free(j->cvp);
    free(j->cvr);
    free(j->cdq);
    iris_workspace_free(j->ws);
}

static int write_image(job *j, int bitpix, int datatype, long nx, long ny,
                       void *data, const char *extname)
{
    long naxes[2];
    int st = 0;
    naxes[0] = nx;
    naxes[1] = ny;
    fits_create_img(j->out, bitpix, 2, naxes, &st);
    fits_update_key(j->out, TSTRING, "EXTNAME", (void *)extname, NULL, &st);
    fits_write_img(j->out, datatype, 1, nx * ny, data, &st);
    return st ? fits_fail(j->tmp_path, extname, st) : 0;
}

/* Read times: READ_TIMES extension, else TFRAME from SCI or primary. */
static int read_times(job *j, long nreads)
{
    int st = 0, naxis = 0;
    long len = 0;
    double tframe = 0.0;
    long k;
    j->times = malloc((size_t)nreads * sizeof *j->times);
    if (!j->times)
        return fail(j->in_path, "%s", "out of memory");
    if (fits_movnam_hdu(j->in, IMAGE_HDU, "READ_TIMES", 0, &st) == 0) {
        fits_get_img_dim(j->in, &naxis, &st);
        fits_get_img_size(j->in, 1, &len, &st);
        if (st)
            return fits_fail(j->in_path, "READ_TIMES", st);
        if (naxis != 1 || len != nreads) {
            fprintf(stderr,
                    "iris_readout: %s: READ_TIMES has %d axes and %ld "
                    "values, expected 1 axis of %ld\n",
                    j->in_path, naxis, len, nreads);
            return 1;
        }
        fits_read_img(j->in, TDOUBLE, 1, nreads, NULL, j->times, NULL, &st);
        return st ? fits_fail(j->in_path, "READ_TIMES", st) : 0;
    }
    st = 0;
    fits_movnam_hdu(j->in, IMAGE_HDU, "SCI", 0, &st);
    fits_read_key(j->in, TDOUBLE, "TFRAME", &tframe, NULL, &st);
    if (st) {
        st = 0;
        fits_movabs_hdu(j->in, 1, NULL, &st);
        fits_read_key(j->in, TDOUBLE, "TFRAME", &tframe, NULL, &st);
    }
    if (st || !(tframe > 0.0))
        return fail(j->in_path, "%s",
                    "no READ_TIMES extension and no positive TFRAME keyword");
    for (k = 0; k < nreads; ++k)
        j->times[k] = (double)(k + 1) * tframe;
    return 0;
}

int main(int argc, char **argv)
{
    job j;
    iris_readout_params p;
    iris_error e;
    const char *mode = NULL;
    int clobber = 0, i, st = 0, naxis = 0, eqtype = 0, bitpix = 0, rc = 1;
    long naxes[4] = {1, 1, 1, 1}, nints, nreads, ny, nx, it;
    size_t npix;

    memset(&j, 0, sizeof j);
    iris_readout_params_default(&p);
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "-f") || !strcmp(a, "--clobber")) {
            clobber = 1;
            continue;
        }
        if (!strcmp(a, "-u")) {
            p.weighting = IRIS_WEIGHT_UNWEIGHTED;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (j.in_path)
                return fail(a, "%s", "more than one input file given");
            j.in_path = a;
            continue;
        }
        if (!v || strlen(a) != 2 || !strchr("snjtrgSo", a[1])) {
            fprintf(stderr, "iris_readout: bad option %s\n%s", a, usage);
            return 2;
        }
        ++i;
        errno = 0;
        switch (a[1]) {
        case 's': mode = v; break;
        case 'o': j.out_path = v; break;
        case 'n': p.fowler_n = (int)strtol(v, &end, 10); break;
        case 't': p.nthreads = (int)strtol(v, &end, 10); break;
        case 'j': p.jump_threshold = strtod(v, &end); break;
        case 'r': p.read_noise = strtod(v, &end); break;
        case 'g': p.gain = strtod(v, &end); break;
        case 'S': p.saturation = strtod(v, &end); break;
        }
        if (end && (*end || errno)) {
            fprintf(stderr, "iris_readout: option %s: '%s' is not a number\n",
                    a, v);
            return 2;
        }
    }
    if (!mode || !j.in_path || !j.out_path) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(mode, "utr")) p.mode = IRIS_MODE_UTR;
    else if (!strcmp(mode, "cds")) p.mode = IRIS_MODE_CDS;
    else if (!strcmp(mode, "mcds")) p.mode = IRIS_MODE_MCDS;
    else {
        fprintf(stderr, "iris_readout: unknown mode '%s' (utr, cds, mcds)\n",
                mode);
        return 2;
    }
    if (!clobber && access(j.out_path, F_OK) == 0)
        return fail(j.out_path, "%s", "exists (use -f / --clobber to overwrite)");

    /* ---- input */
    if (fits_open_file(&j.in, j.in_path, READONLY, &st))
        return fits_fail(j.in_path, "cannot open", st);
    if (fits_movnam_hdu(j.in, IMAGE_HDU, "SCI", 0, &st)) {
        fail(j.in_path, "%s", "no image extension EXTNAME='SCI'");
        goto done;
    }
    fits_get_img_equivtype(j.in, &eqtype, &st);
    fits_get_img_param(j.in, 4, &bitpix, &naxis, naxes, &st);
    if (st) {
        fits_fail(j.in_path, "SCI", st);
        goto done;
    }
    if (eqtype != USHORT_IMG) {
        fail(j.in_path, "%s",
             "SCI must hold unsigned 16-bit samples (BITPIX=16, BZERO=32768)");
        goto done;
    }
    if (naxis != 3 && naxis != 4) {
        char msg[64];
        snprintf(msg, sizeof msg, "%d", naxis);
        fail(j.in_path, "SCI has %s axes, expected 3 (nreads, ny, nx) or 4 "
             "(nints, nreads, ny, nx)", msg);
        goto done;
    }
    nx = naxes[0];
    ny = naxes[1];
    nreads = naxes[2];
    nints = naxis == 4 ? naxes[3] : 1;
    npix = (size_t)nx * (size_t)ny;
    if (read_times(&j, nreads))
        goto done;
    st = 0;
    fits_movnam_hdu(j.in, IMAGE_HDU, "SCI", 0, &st);

    j.ramp = malloc((size_t)nreads * npix * sizeof *j.ramp);
    j.rate = malloc((size_t)nints * npix * sizeof(float));
    j.vp = malloc((size_t)nints * npix * sizeof(float));
    j.vr = malloc((size_t)nints * npix * sizeof(float));
    j.dq = malloc((size_t)nints * npix * sizeof(uint32_t));
    j.crate = malloc(npix * sizeof(float));
    j.cvp = malloc(npix * sizeof(float));
    j.cvr = malloc(npix * sizeof(float));
    j.err = malloc(npix * sizeof(float));
    j.cdq = malloc(npix * sizeof(uint32_t));
    if (!j.ramp || !j.rate || !j.vp || !j.vr || !j.dq || !j.crate || !j.cvp ||
        !j.cvr || !j.err || !j.cdq) {
        fail(j.in_path, "%s", "out of memory");
        goto done;
    }
    j.ws = iris_workspace_create((size_t)nreads, (size_t)nx, p.nthreads, &e);
    if (!j.ws) {
        fail(j.in_path, "%s", e.message);
        goto done;
    }
    for (it = 0; it < nints; ++it) {
        long first[4] = {1, 1, 1, 1};
        iris_ramp r;
        iris_outputs out;
        first[3] = it + 1;
        if (fits_read_pix(j.in, TUSHORT, first, (LONGLONG)nreads * (LONGLONG)npix,
                          NULL, j.ramp, NULL, &st)) {
            fits_fail(j.in_path, "reading SCI", st);
            goto done;
        }
        r.data = j.ramp;
        r.dtype = IRIS_DTYPE_UINT16;
        r.nreads = (size_t)nreads;
        r.ny = (size_t)ny;
        r.nx = (size_t)nx;
        r.read_times = j.times;
        out.rate = j.rate + (size_t)it * npix;
        out.var_poisson = j.vp + (size_t)it * npix;
        out.var_rnoise = j.vr + (size_t)it * npix;
        out.dq = j.dq + (size_t)it * npix;
        out.n_usable = NULL;
        if (iris_readout_fit(j.ws, &r, NULL, &p, &out, &e) != IRIS_OK) {
            fail(j.in_path, "%s", e.message);
            goto done;
        }
    }
    if (iris_readout_combine_integrations((size_t)nints, npix, j.rate, j.vp,
                                          j.vr, j.dq, j.crate, j.cvp, j.cvr,
                                          j.cdq, &e) != IRIS_OK) {
        fail(j.in_path, "%s", e.message);
        goto done;
    }
    for (i = 0; (size_t)i < npix; ++i)
        j.err[i] = sqrtf(j.cvp[i] + j.cvr[i]);

    /* ---- output, via a temporary file in the same directory */
    {
        int fd;
        snprintf(j.tmp_path, sizeof j.tmp_path, "%s.tmpXXXXXX", j.out_path);
        fd = mkstemp(j.tmp_path);
        if (fd < 0) {
            j.tmp_path[0] = '\0';
            fail(j.out_path, "cannot create a temporary file: %s",
                 strerror(errno));
            goto done;
        }
        close(fd);
        unlink(j.tmp_path); /* cfitsio creates the file itself */
    }
    if (fits_create_file(&j.out, j.tmp_path, &st)) {
        fits_fail(j.tmp_path, "cannot create", st);
        goto done;
    }
    {
        const char *patt = p.mode == IRIS_MODE_UTR   ? "UTR"
                           : p.mode == IRIS_MODE_CDS ? "CDS" : "MCDS";
        const char *model = "IRISImageModel";
        long fowler = p.fowler_n;
        fits_movabs_hdu(j.in, 1, NULL, &st);
        fits_copy_header(j.in, j.out, &st);
        fits_update_key(j.out, TSTRING, "DATAMODL", (void *)model,
                        "type of data model", &st);
        fits_update_key(j.out, TSTRING, "READPATT", (void *)patt,
                        "readout sampling used for the rate", &st);
        if (p.mode == IRIS_MODE_MCDS)
            fits_update_key(j.out, TLONG, "FOWLERN", &fowler,
                            "Fowler N: reads averaged at each end", &st);
        fits_update_key(j.out, TLONG, "NINTS", &nints,
                        "integrations combined", &st);
        if (st) {
            fits_fail(j.tmp_path, "primary header", st);
            goto done;
        }
    }
    if (write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.crate, "SCI") ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.err, "ERR") ||
        write_image(&j, ULONG_IMG, TUINT, nx, ny, j.cdq, "DQ") ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.cvp, "VAR_POISSON") ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.cvr, "VAR_RNOISE"))
        goto done;
    if (fits_close_file(j.out, &st)) {
        j.out = NULL;
        fits_fail(j.tmp_path, "writing", st);
        goto done;
    }
    j.out = NULL;
    if (rename(j.tmp_path, j.out_path) != 0) {
        fail(j.out_path, "cannot rename the temporary file: %s",
             strerror(errno));
        goto done;
    }
    j.tmp_path[0] = '\0';
    rc = 0;
done:
    cleanup(&j, rc != 0);
    return rc;
}
