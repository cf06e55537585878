/* profile.c - the accumulators of src/profile.h. */
#include "src/profile.h"

#include <string.h>

bool bv_prof_on = false;
double bv_prof_seconds[BV_PROF_KINDS];
double bv_prof_span_seconds[BV_PROF_SPANS];
double bv_prof_ternary_ops, bv_prof_ternary_bytes;
bv_prof_shape bv_prof_shapes[BV_PROF_MAX_SHAPES];
int bv_prof_n_shapes;

void bv_prof_enable(bool on) { bv_prof_on = on; }

void bv_prof_reset(void) {
    memset(bv_prof_seconds, 0, sizeof bv_prof_seconds);
    memset(bv_prof_span_seconds, 0, sizeof bv_prof_span_seconds);
    bv_prof_ternary_ops = bv_prof_ternary_bytes = 0;
    bv_prof_n_shapes = 0;
}

void bv_prof_ternary_count(int64_t N, int64_t C, int64_t OC, double bytes) {
    if (!bv_prof_on) return;
    bv_prof_ternary_ops += 2.0 * (double)N * (double)C * (double)OC;
    bv_prof_ternary_bytes += bytes;
    for (int i = 0; i < bv_prof_n_shapes; i++)
        if (bv_prof_shapes[i].N == N && bv_prof_shapes[i].C == C && bv_prof_shapes[i].OC == OC) {
            bv_prof_shapes[i].calls++;
            return;
        }
    if (bv_prof_n_shapes < BV_PROF_MAX_SHAPES) bv_prof_shapes[bv_prof_n_shapes++] = (bv_prof_shape){N, C, OC, 1};
}

const char *bv_prof_span_name(bv_prof_span s) {
    static const char *names[BV_PROF_SPANS] = {"vision", "llm", "ternary gemm"};
    return s >= 0 && s < BV_PROF_SPANS ? names[s] : "?";
}

const char *bv_prof_kind_name(bv_prof_kind k) {
    static const char *names[BV_PROF_KINDS] = {"gemm", "quant", "attention"};
    return k >= 0 && k < BV_PROF_KINDS ? names[k] : "?";
}
