/* cpu.h - run-time CPU feature detection, so fast kernels are chosen on the user's machine rather
 * than at build time, and the BLAS kernel choice is sane on CPUs OpenBLAS does not recognise.
 * Owns: nothing (cached flags). */
#ifndef BV_CPU_H
#define BV_CPU_H

#include <stdbool.h>

typedef struct {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512dq, avx512vl, avx512vnni;
} bv_cpu_features;

const bv_cpu_features *bv_cpu(void);
/* One line "avx2 fma avx512f ..." (static buffer). */
const char *bv_cpu_describe(void);

/* OpenBLAS 0.3.21 (Debian 12) falls back to its SSE3 "Prescott" kernels on CPUs it does not know
 * (recent Xeons under a hypervisor, for instance): 3x slower than its AVX2 ("Haswell") kernels and
 * 7-8x slower than its AVX-512 ("SkylakeX") ones on such a machine. When that happened (and
 * neither OPENBLAS_CORETYPE nor BV_KEEP_BLAS_CORE is set), this picks the best kernel set the CPU
 * supports (SkylakeX: AVX-512 F/BW/DQ/VL; Haswell: AVX2+FMA), sets OPENBLAS_CORETYPE and
 * re-executes the program (OpenBLAS reads the variable only when it loads). Returns only if
 * nothing was done or the re-exec failed. The kernel choice changes results only by float
 * rounding; the test suite passes with each. */
const char *bv_cpu_blas_core_choice(void); /* "SkylakeX", "Haswell" or NULL */
void bv_cpu_fix_blas_core(char **argv);

#endif
