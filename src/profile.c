/* profile.c - the accumulators of src/profile.h. */
#include "src/profile.h"

#include <string.h>

bool bv_prof_on = false;
double bv_prof_seconds[BV_PROF_KINDS];

void bv_prof_enable(bool on) { bv_prof_on = on; }

void bv_prof_reset(void) { memset(bv_prof_seconds, 0, sizeof bv_prof_seconds); }

const char *bv_prof_kind_name(bv_prof_kind k) {
    static const char *names[BV_PROF_KINDS] = {"gemm", "quant", "attention"};
    return k >= 0 && k < BV_PROF_KINDS ? names[k] : "?";
}
