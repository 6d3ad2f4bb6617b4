/*
 * How the detector software (HCD) uses iris_readout on in-memory frames.
 *
 * The HCD knows its readout configuration before an exposure starts, so it
 * creates the workspace and its output buffers once, then calls
 * iris_readout_fit() for every integration as the last read of the ramp
 * arrives: no allocation happens on the per-frame path.  Here a 64 x 48
 * subarray of a 4096 x 4096 detector is simulated for three integrations;
 * the references are full-frame maps and the subarray offset selects the
 * right window, and the integrations are combined by inverse variance.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iris_readout.h"

enum { NREADS = 16, NY = 48, NX = 64, NINTS = 3 };
enum { DET = 256, OFF_Y = 100, OFF_X = 40 }; /* reference maps (cut down) */

int main(void)
{
    static uint16_t ramp[NREADS * NY * NX];
    static float rate[NINTS][NY * NX], vp[NINTS][NY * NX], vr[NINTS][NY * NX];
    static uint32_t dq[NINTS][NY * NX];
    static float rn_map[DET * DET], gain_map[DET * DET], sat_map[DET * DET];
    static float out_rate[NY * NX], out_vp[NY * NX], out_vr[NY * NX];
    static uint32_t out_dq[NY * NX];
    double read_times[NREADS];
    iris_readout_params params;
    iris_refs refs;
    iris_error err;
    iris_workspace *ws;
    size_t k, i;
    int it, status = 0;
    unsigned seed = 12345u;

    /* --- once per configuration --------------------------------------- */
    for (k = 0; k < NREADS; ++k)
        read_times[k] = 1.47 * (double)(k + 1); /* seconds since reset */
    for (i = 0; i < DET * DET; ++i) {
        rn_map[i] = 9.0f;
        gain_map[i] = 1.0f;
        sat_map[i] = 60000.0f;
    }
    iris_readout_params_default(&params);
    params.mode = IRIS_MODE_UTR;
    params.nthreads = 0; /* every thread the workspace has */
    iris_refs_default(&refs);
    refs.ref_ny = DET;
    refs.ref_nx = DET;
    refs.offset_y = OFF_Y;
    refs.offset_x = OFF_X;
    refs.read_noise = rn_map;
    refs.gain = gain_map;
    refs.saturation = sat_map;

    ws = iris_workspace_create(NREADS, NX, 0, &err);
    if (!ws) {
        fprintf(stderr, "workspace: %s\n", err.message);
        return 1;
    }

    /* --- per integration ---------------------------------------------- */
    for (it = 0; it < NINTS; ++it) {
        iris_ramp r;
        iris_outputs out;
        /* stand-in for the frames arriving from the detector */
        for (k = 0; k < NREADS; ++k)
            for (i = 0; i < NY * NX; ++i) {
                seed = seed * 1103515245u + 12345u;
                ramp[k * NY * NX + i] =
                    (uint16_t)(1000.0 + 50.0 * read_times[k] +
                               (double)((seed >> 16) % 19) - 9.0);
            }
        r.data = ramp;
        r.dtype = IRIS_DTYPE_UINT16;
        r.nreads = NREADS;
        r.ny = NY;
        r.nx = NX;
        r.read_times = read_times;
        out.rate = rate[it];
        out.var_poisson = vp[it];
        out.var_rnoise = vr[it];
        out.dq = dq[it];
        out.n_usable = NULL; /* not needed by the HCD */
        if (iris_readout_fit(ws, &r, &refs, &params, &out, &err) != IRIS_OK) {
            fprintf(stderr, "integration %d: %s (%s)\n", it,
                    iris_status_string(err.code), err.message);
            status = 1;
            break;
        }
    }

    /* --- end of exposure ---------------------------------------------- */
    if (!status &&
        iris_readout_combine_integrations(NINTS, NY * NX, &rate[0][0], &vp[0][0],
                                          &vr[0][0], &dq[0][0], out_rate,
                                          out_vp, out_vr, out_dq,
                                          &err) != IRIS_OK) {
        fprintf(stderr, "combine: %s\n", err.message);
        status = 1;
    }
    if (!status) {
        double mean = 0.0;
        for (i = 0; i < NY * NX; ++i)
            mean += out_rate[i];
        mean /= NY * NX;
        printf("iris_readout %s: %d integrations of %d x %d x %d, mean rate "
               "%.3f DN/s (truth 50), err %.3f DN/s\n",
               iris_readout_version(), NINTS, NREADS, NY, NX, mean,
               sqrt(out_vp[0] + out_vr[0]));
        if (fabs(mean - 50.0) > 0.5)
            status = 1;
    }
    iris_workspace_free(ws);
    return status;
}
