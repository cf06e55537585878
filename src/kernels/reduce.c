#include "src/kernels/reduce.h"

#include "src/common.h"

void bv_k_reduce_fwd(float *out, const float *inp, int64_t outer, int64_t n, int64_t inner, double scale) {
    if (outer == 1 && inner == 1) {
        /* full reduction: 64 fixed chunks summed in double, then combined in order, so the
         * result does not depend on the thread count (and nothing is allocated) */
        enum { NCH = 64 };
        double part[NCH];
        int64_t ch = (n + NCH - 1) / NCH;
#pragma omp parallel for schedule(static) if (n > 65536)
        for (int c = 0; c < NCH; c++) {
            double acc = 0;
            for (int64_t j = c * ch; j < BV_MIN(n, (c + 1) * ch); j++) acc += inp[j];
            part[c] = acc;
        }
        double acc = 0;
        for (int c = 0; c < NCH; c++) acc += part[c];
        out[0] = (float)(acc * scale);
        return;
    }
#pragma omp parallel for schedule(static) if (outer * n * inner > 65536)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0;
            for (int64_t j = 0; j < n; j++) acc += inp[(o * n + j) * inner + i];
            out[o * inner + i] = (float)(acc * scale);
        }
}

void bv_k_reduce_bwd(float *dinp, const float *dout, int64_t outer, int64_t n, int64_t inner, double scale) {
#pragma omp parallel for schedule(static) if (outer * n * inner > 65536)
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < inner; i++) dinp[(o * n + j) * inner + i] += (float)(scale * dout[o * inner + i]);
}

void bv_k_reduce_fwd_ref(double *out, const double *inp, int64_t outer, int64_t n, int64_t inner, double scale) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double acc = 0;
            for (int64_t j = 0; j < n; j++) acc += inp[(o * n + j) * inner + i];
            out[o * inner + i] = acc * scale;
        }
}

void bv_k_reduce_bwd_ref(double *dinp, const double *dout, int64_t outer, int64_t n, int64_t inner, double scale) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t i = 0; i < inner; i++) dinp[(o * n + j) * inner + i] += scale * dout[o * inner + i];
}
