/* kernels/ternary_gemm_impl.h - internals shared by ternary_gemm.c and its per-ISA translation
 * units (ternary_gemm_avx2.c, ternary_gemm_avx512.c). Not public API.
 *
 * The driver (ternary_gemm.c) splits the output into tiles of up to `mr` activation rows x one
 * group of 64 output channels and calls the ISA's tile function on each; tiles write disjoint
 * outputs. rowsum[r] = sum_c x[n0 + r, c] is the correction of the u = w + 1 encoding. */
#ifndef BV_KERNELS_TERNARY_GEMM_IMPL_H
#define BV_KERNELS_TERNARY_GEMM_IMPL_H

#include "src/kernels/ternary_gemm.h"

#define BV_TG_GROUP 64     /* output channels per group */
#define BV_TG_KBLK 16      /* input channels per block */
#define BV_TG_BLKBYTES 256 /* packed bytes per (group, block) */
#define BV_TG_MR_MAX 8     /* the most rows a tile function takes */

typedef struct {
    const int8_t *x;          /* (N, C) */
    const bv_ternary_mat *w;
    int32_t *out_i32;         /* (N, OC), or NULL when out_f32 is set */
    float *out_f32;           /* (N, OC): fused dequant */
    const float *s_x;         /* (N), with out_f32 */
    const float *bias;        /* (OC) or NULL, with out_f32 */
} bv_tg_args;

/* rows n0 .. n0+nr-1 (nr <= the ISA's mr) x output channels og*64 .. og*64+63 (clipped to OC) */
typedef void (*bv_tg_tile_fn)(const bv_tg_args *a, int64_t og, int64_t n0, int nr, const int32_t *rowsum);

void bv_tg_tile_avx2(const bv_tg_args *a, int64_t og, int64_t n0, int nr, const int32_t *rowsum);
void bv_tg_tile_avx512vnni(const bv_tg_args *a, int64_t og, int64_t n0, int nr, const int32_t *rowsum);
#define BV_TG_MR_AVX2 2
#define BV_TG_MR_AVX512VNNI 6

/* sum of x[0..C) (AVX2; only called where the CPU has it) */
int32_t bv_tg_rowsum_avx2(const int8_t *x, int64_t C);

/* the dequant factor of row n, computed the same way by every kernel */
static inline float bv_tg_row_factor(const bv_tg_args *a, int64_t n) {
    return 1.0f / (a->s_x[n] * a->w->scale);
}

#endif
