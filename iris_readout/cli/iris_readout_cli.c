/*
 * iris_readout: Level 0 ramp FITS file -> Level 1 rate image.
 *
 *   iris_readout -s utr|cds|mcds [-n N] [-j threshold] [-a false_alarm]
 *                [-t threads] [-u] [-r read_noise] [-g gain] [-S saturation]
 *                [--nonlin F] [--saturation F] [--readnoise F] [--gain F]
 *                [--mask F]
 *                [-f] in.fits -o out.fits
 *
 * Input: primary HDU (header), image HDU SCI of unsigned 16-bit samples
 * (BITPIX 16, BZERO 32768) shaped (nints, nreads, ny, nx) or (nreads, ny,
 * nx), READ_TIMES (float64, nreads) or else the keyword TFRAME (read k at
 * (k+1)*TFRAME), and optionally PIXELDQ (OR-ed into the output DQ).
 *
 * Output: a Level 1 product as the pipeline's IRISImageModel writes it:
 * the primary header of the ramp with DATAMODL, PROCLEVL = 1, READPATT,
 * NFOWLER, S_RAMP; SCI (DN/s, with the ramp's WCS keywords), ERR (DN/s),
 * VAR_POISSON, VAR_RNOISE, VAR_FLAT ((DN/s)**2), DQ (uint32) and the
 * ramp's SUBARR_MAP if it has one, each HDU with CHECKSUM and DATASUM.  Integrations are combined by inverse variance.
 *
 * Safety: no input or reference file is ever written.  The output must not
 * be any of them (same path, symbolic or hard link: compared by device and
 * inode and by resolved path), which is checked before any work.  Every FITS
 * file read must have exactly the size its headers declare.  The output is
 * written to a temporary file in the output's folder and renamed at the end,
 * so a failure leaves no output.  Every failure prints one line,
 * "iris_readout: error: <file or option>: <problem>", and exits non-zero.
 */
#define _XOPEN_SOURCE 700 /* realpath, mkstemp */
#include <errno.h>
#include <fitsio.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "iris_readout.h"

static const char *usage =
    "usage: iris_readout -s utr|cds|mcds [options] in.fits -o out.fits\n"
    "  -s MODE          readout: up-the-ramp, correlated double, Fowler-N\n"
    "  -n N             Fowler N for mcds (default 1)\n"
    "  -j SIGMA         largest jump threshold, <= 0 disables (default 5)\n"
    "  -a P             false-alarm probability of the jump test per pixel\n"
    "                   (default 4e-4)\n"
    "  -t N             threads, 0 = all (default 0)\n"
    "  -u               unweighted least squares for utr (default: optimal)\n"
    "  -r DN            read noise per read (default 0)\n"
    "  -g E/DN          gain (default 1)\n"
    "  -S DN            saturation threshold (default 65535, inf: none)\n"
    "  --nonlin F       nonlinearity reference (COEFFS: ncoeffs x ny x nx)\n"
    "  --saturation F   saturation reference (SCI, raw DN)\n"
    "  --readnoise F    read-noise reference (SCI, DN per read)\n"
    "  --gain F         gain reference (SCI, e-/DN)\n"
    "  --mask F         bad-pixel mask (DQ, OR-ed into the output DQ)\n"
    "  -f               replace an existing out.fits (also --clobber)\n"
    "Reference files cover the ramp's region (SUBSTRT1/2 of both files).\n";

enum { REF_NONLIN, REF_SAT, REF_RN, REF_GAIN, REF_MASK, NREF };
static const char *ref_option[NREF] = {"--nonlin", "--saturation",
                                       "--readnoise", "--gain", "--mask"};
static const char *ref_ext[NREF] = {"COEFFS", "SCI", "SCI", "SCI", "DQ"};

/* Everything allocated or opened, released by cleanup(). */
typedef struct job {
    const char *in_path, *out_path, *ref_path[NREF];
    char tmp_path[PATH_MAX + 32];
    fitsfile *in, *out;
    uint16_t *ramp;
    double *times;
    float *rate, *vp, *vr, *err, *zeros;
    uint32_t *dq, *pixeldq;
    float *crate, *cvp, *cvr;
    uint32_t *cdq;
    float *ref[NREF];
    long ref_nx, ref_ny, ref_nc, ref_x0, ref_y0;
    iris_workspace *ws;
} job;

/* The one line of every failure; returns the exit status. */
static int fail(const char *what, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];
    size_t i;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (i = 0; msg[i]; ++i) /* one line whatever a message holds */
        if (msg[i] == '\n' || msg[i] == '\r')
            msg[i] = ' ';
    fprintf(stderr, "iris_readout: error: %s: %s\n", what, msg);
    return 1;
}

static int fits_fail(const char *path, const char *what, int status)
{
    char text[FLEN_STATUS];
    fits_get_errstatus(status, text);
    fits_clear_errmsg();
    return fail(path, "%s: %s", what, text);
}

static void cleanup(job *j, int failed)
{
    int st = 0, k;
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
    free(j->zeros);
    free(j->dq);
    free(j->pixeldq);
    free(j->crate);
    free(j->cvp);
    free(j->cvr);
    free(j->cdq);
    for (k = 0; k < NREF; ++k)
        free(j->ref[k]);
    iris_workspace_free(j->ws);
}

/* ------------------------------------------------------------ numbers */

/* A whole number in [lo, hi], nothing else (no blanks, no overflow). */
static int parse_long(const char *opt, const char *v, long lo, long hi,
                      long *out)
{
    char *end = NULL;
    long x;
    errno = 0;
    x = strtol(v, &end, 10);
    if (end == v || *end || v[0] == ' ' || v[0] == '\t')
        return fail(opt, "'%s' is not a whole number", v);
    if (errno == ERANGE || x < lo || x > hi)
        return fail(opt, "%s is out of range: use %ld..%ld", v, lo, hi);
    *out = x;
    return 0;
}

/* A real number, finite unless allow_inf (then +inf is accepted too). */
static int parse_double(const char *opt, const char *v, int allow_inf,
                        double *out)
{
    char *end = NULL;
    double x;
    errno = 0;
    x = strtod(v, &end);
    if (end == v || *end || v[0] == ' ' || v[0] == '\t' || isnan(x))
        return fail(opt, "'%s' is not a number", v);
    if (isinf(x) && !(allow_inf && x > 0.0 && errno != ERANGE))
        return fail(opt, "%s is out of range (not a finite number)", v);
    if (errno == ERANGE && !isinf(x) && x != 0.0)
        return fail(opt, "%s is out of range", v);
    *out = x;
    return 0;
}

/* -------------------------------------------------------- file safety */

/*
 * Refuse an output that is one of the inputs: the same file by device and
 * inode (catches hard and symbolic links) or by resolved path (catches a
 * dangling or not yet existing name resolving to an input's path).
 */
static int check_not_input(const char *out, const char *in)
{
    struct stat so, si;
    char ro[PATH_MAX], ri[PATH_MAX], dir[PATH_MAX], rd[PATH_MAX];
    char joined[2 * PATH_MAX + 2];
    const char *base, *slash;
    if (stat(in, &si) != 0)
        return fail(in, "cannot open: %s", strerror(errno));
    if (stat(out, &so) == 0 && so.st_dev == si.st_dev &&
        so.st_ino == si.st_ino)
        return fail(out, "is the input file %s (the same file): choose "
                    "another output name", in);
    if (lstat(out, &so) == 0 && so.st_dev == si.st_dev &&
        so.st_ino == si.st_ino)
        return fail(out, "is the input file %s (the same file): choose "
                    "another output name", in);
    if (!realpath(in, ri))
        return fail(in, "cannot resolve the path: %s", strerror(errno));
    if (realpath(out, ro) && !strcmp(ro, ri))
        return fail(out, "is the input file %s (the same file): choose "
                    "another output name", in);
    /* a name that does not exist yet: its folder resolved + its name */
    slash = strrchr(out, '/');
    base = slash ? slash + 1 : out;
    if (slash) {
        size_t n = (size_t)(slash - out);
        if (n == 0)
            n = 1; /* "/name" */
        if (n >= sizeof dir)
            return fail(out, "%s", "path too long");
        memcpy(dir, out, n);
        dir[n] = '\0';
    } else {
        strcpy(dir, ".");
    }
    if (realpath(dir, rd)) {
        size_t len = strlen(rd);
        snprintf(joined, sizeof joined, "%s%s%.*s", rd,
                 rd[len - 1] == '/' ? "" : "/", PATH_MAX, base);
        if (!strcmp(joined, ri))
            return fail(out, "is the input file %s (the same file): "
                        "choose another output name", in);
    }
    return 0;
}

/*
 * Every HDU must be complete and the file must end with the last one: a
 * truncated (or padded) file is refused before its data are used.
 */
static int check_fits_size(fitsfile *f, const char *path)
{
    struct stat s;
    int nhdu = 0, st = 0, k;
    LONGLONG head = 0, data = 0, end = 0;
    if (stat(path, &s) != 0)
        return fail(path, "cannot open: %s", strerror(errno));
    if (fits_get_num_hdus(f, &nhdu, &st) || nhdu < 1)
        return fits_fail(path, "reading the headers", st);
    for (k = 1; k <= nhdu; ++k) {
        if (fits_movabs_hdu(f, k, NULL, &st) ||
            fits_get_hduaddrll(f, &head, &data, &end, &st)) {
            fits_clear_errmsg();
            return fail(path, "truncated or corrupt FITS file: HDU %d of %d "
                        "cannot be read (file size %lld bytes)", k, nhdu,
                        (long long)s.st_size);
        }
    }
    /* FITS pads every HDU to a multiple of 2880 bytes */
    end = (end + 2879) / 2880 * 2880;
    if ((LONGLONG)s.st_size < end)
        return fail(path, "truncated: the headers declare %lld bytes, the "
                    "file has %lld", (long long)end, (long long)s.st_size);
    if ((LONGLONG)s.st_size > end)
        return fail(path, "size mismatch: the headers declare %lld bytes, "
                    "the file has %lld (trailing data or a damaged header)",
                    (long long)end, (long long)s.st_size);
    return 0;
}

/* Open read-only, without cfitsio's extended file-name syntax (a name
 * holding '[' or '(' is just a name), and check its size. */
static int open_input(fitsfile **f, const char *path)
{
    int st = 0;
    struct stat s;
    if (stat(path, &s) != 0)
        return fail(path, "cannot open: %s", strerror(errno));
    if (!S_ISREG(s.st_mode))
        return fail(path, "%s", "not a regular file");
    if (fits_open_diskfile(f, path, READONLY, &st)) {
        *f = NULL;
        return fits_fail(path, "not a readable FITS file", st);
    }
    return check_fits_size(*f, path);
}

/* --------------------------------------------------------------- input */

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
        if (naxis != 1 || len != nreads)
            return fail(j->in_path, "READ_TIMES has %d axes and %ld values, "
                        "expected 1 axis of %ld (one per read)", naxis, len,
                        nreads);
        fits_read_img(j->in, TDOUBLE, 1, nreads, NULL, j->times, NULL, &st);
        return st ? fits_fail(j->in_path, "READ_TIMES", st) : 0;
    }
    st = 0;
    fits_clear_errmsg();
    fits_movnam_hdu(j->in, IMAGE_HDU, "SCI", 0, &st);
    fits_read_key(j->in, TDOUBLE, "TFRAME", &tframe, NULL, &st);
    if (st) {
        st = 0;
        fits_movabs_hdu(j->in, 1, NULL, &st);
        fits_read_key(j->in, TDOUBLE, "TFRAME", &tframe, NULL, &st);
    }
    fits_clear_errmsg();
    if (st || !(tframe > 0.0) || !isfinite(tframe))
        return fail(j->in_path, "%s", "no READ_TIMES extension and no "
                    "positive TFRAME keyword (add one of them)");
    for (k = 0; k < nreads; ++k)
        j->times[k] = (double)(k + 1) * tframe;
    return 0;
}

/* PIXELDQ (ny, nx), if the ramp has one. */
static int read_pixeldq(job *j, long nx, long ny)
{
    int st = 0, naxis = 0, bitpix = 0;
    long naxes[2] = {0, 0};
    if (fits_movnam_hdu(j->in, IMAGE_HDU, "PIXELDQ", 0, &st)) {
        fits_clear_errmsg();
        return 0;
    }
    fits_get_img_param(j->in, 2, &bitpix, &naxis, naxes, &st);
    if (st)
        return fits_fail(j->in_path, "PIXELDQ", st);
    if (naxis != 2 || naxes[0] != nx || naxes[1] != ny)
        return fail(j->in_path, "PIXELDQ is %ld x %ld, SCI frames are %ld x "
                    "%ld", naxes[1], naxes[0], ny, nx);
    j->pixeldq = malloc((size_t)nx * (size_t)ny * sizeof *j->pixeldq);
    if (!j->pixeldq)
        return fail(j->in_path, "%s", "out of memory");
    fits_read_img(j->in, TUINT, 1, (LONGLONG)nx * ny, NULL, j->pixeldq, NULL,
                  &st);
    return st ? fits_fail(j->in_path, "PIXELDQ", st) : 0;
}

static long key_long(fitsfile *f, const char *key, long def)
{
    int st = 0;
    long v = def;
    if (fits_read_key(f, TLONG, key, &v, NULL, &st)) {
        fits_clear_errmsg();
        return def;
    }
    return v;
}

/*
 * One reference file: its COEFFS or SCI array as float, shape checked
 * against the other references, window of the ramp inside it from the
 * SUBSTRT1/2 keywords of both files.
 */
static int read_reference(job *j, int k, long nx, long ny, long sx, long sy)
{
    fitsfile *f = NULL;
    const char *path = j->ref_path[k];
    int st = 0, naxis = 0, rc = 1, bitpix = 0;
    long naxes[3] = {1, 1, 1}, nc, rx, ry, x0, y0;
    size_t count;
    if (open_input(&f, path))
        goto out;
    fits_movabs_hdu(f, 1, NULL, &st);
    rx = key_long(f, "SUBSTRT1", 1);
    ry = key_long(f, "SUBSTRT2", 1);
    if (fits_movnam_hdu(f, IMAGE_HDU, (char *)ref_ext[k], 0, &st)) {
        fits_clear_errmsg();
        fail(path, "no image extension %s: is this a %s reference?",
             ref_ext[k], ref_option[k] + 2);
        goto out;
    }
    fits_get_img_param(f, 3, &bitpix, &naxis, naxes, &st);
    if (st) {
        fits_fail(path, ref_ext[k], st);
        goto out;
    }
    if (k == REF_NONLIN) {
        if (naxis != 3) {
            fail(path, "COEFFS has %d axes, expected 3 (ncoeffs, ny, nx)",
                 naxis);
            goto out;
        }
        nc = naxes[2];
        if (nc < 2 || nc > 16) {
            fail(path, "COEFFS holds %ld coefficient(s): a nonlinearity "
                 "reference needs 2..16 (c0 + c1 s + ...)", nc);
            goto out;
        }
    } else {
        if (naxis != 2) {
            fail(path, "SCI has %d axes, expected 2 (ny, nx)", naxis);
            goto out;
        }
        nc = 1;
    }
    if (j->ref_nx && (naxes[0] != j->ref_nx || naxes[1] != j->ref_ny ||
                      sx - rx != j->ref_x0 || sy - ry != j->ref_y0)) {
        fail(path, "covers another region (%ld x %ld from SUBSTRT %ld, %ld) "
             "than the other reference files: give references of one "
             "geometry", naxes[1], naxes[0], rx, ry);
        goto out;
    }
    x0 = sx - rx;
    y0 = sy - ry;
    if (x0 < 0 || y0 < 0 || x0 + nx > naxes[0] || y0 + ny > naxes[1]) {
        fail(path, "does not cover the ramp: %ld x %ld pixels from SUBSTRT "
             "(%ld, %ld), the ramp is %ld x %ld from (%ld, %ld)", naxes[1],
             naxes[0], rx, ry, ny, nx, sx, sy);
        goto out;
    }
    j->ref_nx = naxes[0];
    j->ref_ny = naxes[1];
    j->ref_x0 = x0;
    j->ref_y0 = y0;
    if (k == REF_NONLIN)
        j->ref_nc = nc;
    count = (size_t)naxes[0] * (size_t)naxes[1] * (size_t)nc;
    /* 4 bytes per value: float, or uint32 for the mask */
    j->ref[k] = malloc(count * sizeof(float));
    if (!j->ref[k]) {
        fail(path, "%s", "out of memory");
        goto out;
    }
    if (fits_read_img(f, k == REF_MASK ? TUINT : TFLOAT, 1, (LONGLONG)count,
                      NULL, j->ref[k], NULL, &st)) {
        fits_fail(path, ref_ext[k], st);
        goto out;
    }
    rc = 0;
out:
    st = 0;
    if (f)
        fits_close_file(f, &st);
    return rc;
}

/* -------------------------------------------------------------- output */

/* Copy the non-structural cards of the current HDU of `in` (WCS and the
 * like); structure, scaling and checksums are the output's own. */
static int copy_cards(job *j)
{
    int st = 0, n = 0, k;
    char card[FLEN_CARD];
    fits_get_hdrspace(j->in, &n, NULL, &st);
    for (k = 1; k <= n && !st; ++k) {
        int cls;
        fits_read_record(j->in, k, card, &st);
        cls = fits_get_keyclass(card);
        if (cls == TYP_STRUC_KEY || cls == TYP_CMPRS_KEY ||
            cls == TYP_SCAL_KEY || cls == TYP_CKSUM_KEY ||
            cls == TYP_NULL_KEY || !strncmp(card, "EXTNAME ", 8) ||
            !strncmp(card, "EXTVER  ", 8) || !strncmp(card, "BUNIT   ", 8) ||
            !strncmp(card, "END", 3))
            continue;
        fits_write_record(j->out, card, &st);
    }
    return st;
}

static int write_image(job *j, int bitpix, int datatype, long nx, long ny,
                       void *data, const char *extname, const char *bunit,
                       int wcs)
{
    long naxes[2];
    int st = 0;
    naxes[0] = nx;
    naxes[1] = ny;
    fits_create_img(j->out, bitpix, 2, naxes, &st);
    fits_update_key(j->out, TSTRING, "EXTNAME", (void *)extname,
                    "extension name", &st);
    if (wcs && !st) {
        fits_movnam_hdu(j->in, IMAGE_HDU, "SCI", 0, &st);
        if (!st)
            st = copy_cards(j);
    }
    if (bunit)
        fits_update_key(j->out, TSTRING, "BUNIT", (void *)bunit,
                        "unit of the array", &st);
    fits_write_img(j->out, datatype, 1, (LONGLONG)nx * ny, data, &st);
    return st ? fits_fail(j->out_path, extname, st) : 0;
}

static int write_primary(job *j, const iris_readout_params *p, long nints)
{
    int st = 0, k;
    const char *patt = p->mode == IRIS_MODE_UTR   ? "UTR"
                       : p->mode == IRIS_MODE_CDS ? "CDS" : "MCDS";
    const char *model = "IRISImageModel", *done = "COMPLETE";
    const char *refkey[NREF] = {"R_NONLIN", "R_SATURA", "R_READNO", "R_GAIN",
                                "R_MASK"};
    const char *base = strrchr(j->out_path, '/');
    long fowler = p->mode == IRIS_MODE_MCDS ? p->fowler_n : 1, level = 1;
    base = base ? base + 1 : j->out_path;
    fits_create_img(j->out, BYTE_IMG, 0, NULL, &st);
    fits_movabs_hdu(j->in, 1, NULL, &st);
    if (!st)
        st = copy_cards(j);
    fits_update_key(j->out, TSTRING, "FILENAME", (void *)base,
                    "Name of the file", &st);
    fits_update_key(j->out, TSTRING, "DATAMODL", (void *)model,
                    "Data model class that reads and writes this file", &st);
    fits_update_key(j->out, TLONG, "PROCLEVL", &level,
                    "Processing level (1: raw science frame)", &st);
    fits_update_key(j->out, TSTRING, "READPATT", (void *)patt,
                    "Readout sampling used for the rate", &st);
    fits_update_key(j->out, TLONG, "NFOWLER", &fowler,
                    "Reads averaged at each end (MCDS)", &st);
    fits_update_key(j->out, TLONG, "NINTS", &nints,
                    "Number of integrations in the exposure", &st);
    fits_update_key(j->out, TSTRING, "S_RAMP", (void *)done,
                    "Ramp fitting (iris_readout command)", &st);
    if (j->ref_path[REF_MASK])
        fits_update_key(j->out, TSTRING, "S_DQINIT", (void *)done,
                        "Data quality initialisation (iris_readout --mask)",
                        &st);
    for (k = 0; k < NREF; ++k) {
        const char *name;
        if (!j->ref_path[k])
            continue;
        name = strrchr(j->ref_path[k], '/');
        name = name ? name + 1 : j->ref_path[k];
        fits_update_key(j->out, TSTRING, refkey[k], (void *)name,
                        "reference file used by iris_readout", &st);
    }
    return st ? fits_fail(j->out_path, "primary header", st) : 0;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    job j;
    iris_readout_params p;
    iris_refs refs;
    iris_error e;
    const char *mode = NULL;
    int clobber = 0, i, k, st = 0, naxis = 0, eqtype = 0, rc = 1, nhdu = 0;
    int bitpix = 0;
    long naxes[4] = {1, 1, 1, 1}, nints, nreads, ny, nx, it, sx, sy, lv;
    size_t npix, q;

    memset(&j, 0, sizeof j);
    iris_readout_params_default(&p);
    for (i = 1; i < argc; ++i) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
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
                return fail(a, "a second input file (the first is %s): give "
                            "one input", j.in_path);
            j.in_path = a;
            continue;
        }
        for (k = 0; k < NREF; ++k)
            if (!strcmp(a, ref_option[k]))
                break;
        if (k < NREF) {
            if (!v)
                return fail(a, "%s", "needs a reference file name");
            j.ref_path[k] = v;
            ++i;
            continue;
        }
        if (strlen(a) != 2 || !strchr("snjatrgSo", a[1]))
            return fail(a, "%s", "unknown option (see iris_readout --help)");
        if (!v)
            return fail(a, "%s", "needs a value (see iris_readout --help)");
        ++i;
        switch (a[1]) {
        case 's': mode = v; break;
        case 'o': j.out_path = v; break;
        case 'n':
            if (parse_long(a, v, 1, INT_MAX / 2, &lv)) return 2;
            p.fowler_n = (int)lv;
            break;
        case 't':
            if (parse_long(a, v, 0, 4096, &lv)) return 2;
            p.nthreads = (int)lv;
            break;
        case 'j':
            if (parse_double(a, v, 0, &p.jump_threshold)) return 2;
            break;
        case 'a':
            if (parse_double(a, v, 0, &p.jump_false_alarm)) return 2;
            if (!(p.jump_false_alarm > 0.0 && p.jump_false_alarm <= 0.5))
                return fail(a, "%s is out of range: use a probability in "
                            "(0, 0.5]", v) + 1;
            break;
        case 'r':
            if (parse_double(a, v, 0, &p.read_noise)) return 2;
            if (p.read_noise < 0.0)
                return fail(a, "%s: the read noise must be >= 0", v) + 1;
            break;
        case 'g':
            if (parse_double(a, v, 0, &p.gain)) return 2;
            if (!(p.gain > 0.0))
                return fail(a, "%s: the gain must be > 0", v) + 1;
            break;
        case 'S':
            if (parse_double(a, v, 1, &p.saturation)) return 2;
            break;
        }
    }
    if (!mode)
        return fail("-s", "%s", "the readout mode is required: -s utr, -s "
                    "cds or -s mcds") + 1;
    if (!j.in_path)
        return fail("iris_readout", "%s", "no input file given "
                    "(iris_readout -s MODE in.fits -o out.fits)") + 1;
    if (!j.out_path)
        return fail("-o", "%s", "the output file is required: -o "
                    "out.fits") + 1;
    if (!strcmp(mode, "utr")) p.mode = IRIS_MODE_UTR;
    else if (!strcmp(mode, "cds")) p.mode = IRIS_MODE_CDS;
    else if (!strcmp(mode, "mcds")) p.mode = IRIS_MODE_MCDS;
    else
        return fail("-s", "unknown mode '%s': use utr, cds or mcds", mode) + 1;

    /* ---- never write over an input, before any work */
    if (check_not_input(j.out_path, j.in_path))
        return 1;
    for (k = 0; k < NREF; ++k)
        if (j.ref_path[k] && check_not_input(j.out_path, j.ref_path[k]))
            return 1;
    if (!clobber && access(j.out_path, F_OK) == 0)
        return fail(j.out_path, "%s", "exists (use -f to replace it)");

    /* ---- input */
    if (open_input(&j.in, j.in_path))
        goto done;
    if (fits_movnam_hdu(j.in, IMAGE_HDU, "SCI", 0, &st)) {
        fits_clear_errmsg();
        fail(j.in_path, "%s", "no image extension EXTNAME='SCI' (is this a "
             "Level 0 ramp?)");
        goto done;
    }
    fits_get_img_equivtype(j.in, &eqtype, &st);
    fits_get_img_param(j.in, 4, &bitpix, &naxis, naxes, &st);
    if (st) {
        fits_fail(j.in_path, "SCI", st);
        goto done;
    }
    if (eqtype != USHORT_IMG) {
        fail(j.in_path, "%s", "SCI must hold unsigned 16-bit samples "
             "(BITPIX=16, BZERO=32768)");
        goto done;
    }
    if (naxis != 3 && naxis != 4) {
        fail(j.in_path, "SCI has %d axes, expected 3 (nreads, ny, nx) or 4 "
             "(nints, nreads, ny, nx)", naxis);
        goto done;
    }
    nx = naxes[0];
    ny = naxes[1];
    nreads = naxes[2];
    nints = naxis == 4 ? naxes[3] : 1;
    if (nx < 1 || ny < 1 || nreads < 2 || nints < 1) {
        fail(j.in_path, "SCI is %ld x %ld x %ld x %ld: a ramp needs at least "
             "two reads of a non-empty frame", nints, nreads, ny, nx);
        goto done;
    }
    npix = (size_t)nx * (size_t)ny;
    if (read_times(&j, nreads) || read_pixeldq(&j, nx, ny))
        goto done;
    st = 0;
    fits_movabs_hdu(j.in, 1, NULL, &st);
    sx = key_long(j.in, "SUBSTRT1", 1);
    sy = key_long(j.in, "SUBSTRT2", 1);
    iris_refs_default(&refs);
    for (k = 0; k < NREF; ++k)
        if (j.ref_path[k] && read_reference(&j, k, nx, ny, sx, sy))
            goto done;
    if (j.ref_nx) {
        refs.ref_nx = (size_t)j.ref_nx;
        refs.ref_ny = (size_t)j.ref_ny;
        refs.offset_x = (size_t)j.ref_x0;
        refs.offset_y = (size_t)j.ref_y0;
        refs.ncoeffs = (size_t)j.ref_nc;
        refs.nonlin = j.ref[REF_NONLIN];
        refs.saturation = j.ref[REF_SAT];
        refs.read_noise = j.ref[REF_RN];
        refs.gain = j.ref[REF_GAIN];
    }
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
    j.zeros = calloc(npix, sizeof(float));
    j.cdq = malloc(npix * sizeof(uint32_t));
    if (!j.ramp || !j.rate || !j.vp || !j.vr || !j.dq || !j.crate || !j.cvp ||
        !j.cvr || !j.err || !j.zeros || !j.cdq) {
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
        if (iris_readout_fit(j.ws, &r, j.ref_nx ? &refs : NULL, &p, &out,
                             &e) != IRIS_OK) {
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
    for (q = 0; q < npix; ++q) {
        j.err[q] = sqrtf(j.cvp[q] + j.cvr[q]);
        if (j.pixeldq)
            j.cdq[q] |= j.pixeldq[q];
    }
    /* the mask as the pipeline's dq_init applies it: OR-ed into the DQ */
    if (j.ref[REF_MASK]) {
        const uint32_t *m = (const uint32_t *)(void *)j.ref[REF_MASK];
        long yy, xx;
        for (yy = 0; yy < ny; ++yy)
            for (xx = 0; xx < nx; ++xx)
                j.cdq[(size_t)yy * (size_t)nx + (size_t)xx] |=
                    m[(size_t)(yy + j.ref_y0) * (size_t)j.ref_nx +
                      (size_t)(xx + j.ref_x0)];
    }

    /* ---- output, via a temporary file in the output's folder */
    {
        int fd;
        if (strlen(j.out_path) + 16 > sizeof j.tmp_path) {
            fail(j.out_path, "%s", "path too long");
            goto done;
        }
        snprintf(j.tmp_path, sizeof j.tmp_path, "%s.tmpXXXXXX", j.out_path);
        fd = mkstemp(j.tmp_path);
        if (fd < 0) {
            j.tmp_path[0] = '\0';
            fail(j.out_path, "cannot create a temporary file next to it: %s",
                 strerror(errno));
            goto done;
        }
        close(fd);
        unlink(j.tmp_path); /* cfitsio creates the file itself */
    }
    if (fits_create_diskfile(&j.out, j.tmp_path, &st)) {
        j.out = NULL;
        fits_fail(j.out_path, "cannot create the temporary file", st);
        goto done;
    }
    if (write_primary(&j, &p, nints) ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.crate, "SCI", "DN/s", 1) ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.err, "ERR", "DN/s", 0) ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.cvp, "VAR_POISSON",
                    "(DN/s)**2", 0) ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.cvr, "VAR_RNOISE",
                    "(DN/s)**2", 0) ||
        write_image(&j, FLOAT_IMG, TFLOAT, nx, ny, j.zeros, "VAR_FLAT",
                    "(DN/s)**2", 0) ||
        write_image(&j, ULONG_IMG, TUINT, nx, ny, j.cdq, "DQ", NULL, 0))
        goto done;
    /* the subarray map travels with the frame (image2's parse_subarray_map
     * reads it) */
    if (fits_movnam_hdu(j.in, IMAGE_HDU, "SUBARR_MAP", 0, &st) == 0) {
        if (fits_copy_hdu(j.in, j.out, 0, &st)) {
            fits_fail(j.out_path, "SUBARR_MAP", st);
            goto done;
        }
    } else {
        st = 0;
        fits_clear_errmsg();
    }
    /* CHECKSUM and DATASUM of every HDU, last, over the final contents */
    fits_get_num_hdus(j.out, &nhdu, &st);
    for (k = 1; k <= nhdu && !st; ++k) {
        fits_movabs_hdu(j.out, k, NULL, &st);
        fits_write_chksum(j.out, &st);
    }
    if (st) {
        fits_fail(j.out_path, "checksums", st);
        goto done;
    }
    if (fits_close_file(j.out, &st)) {
        j.out = NULL;
        fits_fail(j.out_path, "writing", st);
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
