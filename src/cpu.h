/* cpu.h - run-time CPU feature detection, so fast kernels are chosen on the user's machine rather
 * than at build time, and the BLAS kernel choice is sane on CPUs OpenBLAS does not recognise.
 * Owns: nothing (cached flags). */
#ifndef BV_CPU_H
#define BV_CPU_H

#include <stdbool.h>

typedef struct {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni;
} bv_cpu_features;

const bv_cpu_features *bv_cpu(void);
/* One line "avx2 fma avx512f ..." (static buffer). */
const char *bv_cpu_describe(void);

/* OpenBLAS 0.3.21 (Debian 12) falls back to its SSE3 "Prescott" kernels on CPUs it does not know
 * (recent Xeons under a hypervisor, for instance), about 3x slower than its AVX2 kernels. When
 * that happened, OPENBLAS_CORETYPE is unset, BV_KEEP_BLAS_CORE is unset and the CPU has AVX2+FMA,
 * this sets OPENBLAS_CORETYPE=Haswell and re-executes the program (the variable is only read when
 * OpenBLAS loads). Returns only if nothing was done or the re-exec failed. */
void bv_cpu_fix_blas_core(char **argv);

#endif
