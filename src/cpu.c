#include "src/cpu.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bv_cpu_features g_cpu;
static int g_cpu_init;

const bv_cpu_features *bv_cpu(void) {
    if (!g_cpu_init) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_cpu_init();
        g_cpu.avx2 = __builtin_cpu_supports("avx2");
        g_cpu.fma = __builtin_cpu_supports("fma");
        g_cpu.avx512f = __builtin_cpu_supports("avx512f");
        g_cpu.avx512bw = __builtin_cpu_supports("avx512bw");
        g_cpu.avx512dq = __builtin_cpu_supports("avx512dq");
        g_cpu.avx512vl = __builtin_cpu_supports("avx512vl");
        g_cpu.avx512vnni = __builtin_cpu_supports("avx512vnni");
        g_cpu.f16c = __builtin_cpu_supports("f16c");
#endif
        g_cpu_init = 1;
    }
    return &g_cpu;
}

const char *bv_cpu_describe(void) {
    static char buf[128];
    const bv_cpu_features *c = bv_cpu();
    snprintf(buf, sizeof buf, "%s%s%s%s%s%s%s%s", c->avx2 ? "avx2 " : "", c->fma ? "fma " : "", c->f16c ? "f16c " : "",
             c->avx512f ? "avx512f " : "", c->avx512bw ? "avx512bw " : "", c->avx512dq ? "avx512dq " : "",
             c->avx512vl ? "avx512vl " : "",
             c->avx512vnni ? "avx512vnni" : "");
    return buf;
}

const char *bv_cpu_blas_core_choice(void) {
    const bv_cpu_features *c = bv_cpu();
    if (c->avx512f && c->avx512bw && c->avx512dq && c->avx512vl) return "SkylakeX";
    if (c->avx2 && c->fma) return "Haswell";
    return NULL;
}

void bv_cpu_fix_blas_core(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("BV_KEEP_BLAS_CORE")) return;
    const char *core = openblas_get_corename();
    if (!core || strcmp(core, "Prescott") != 0) return;
    const char *choice = bv_cpu_blas_core_choice();
    if (!choice || setenv("OPENBLAS_CORETYPE", choice, 1) != 0) return;
    execv("/proc/self/exe", argv);
    unsetenv("OPENBLAS_CORETYPE"); /* exec failed: carry on with the slow kernels */
}
