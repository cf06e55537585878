/* ternary_gemm_avx512.c - the AVX-512 VNNI tile of the ternary GEMM (see ternary_gemm.h).
 *
 * Compiled for AVX-512 F/BW/VL/VNNI by the pragma below whatever the build flags; the driver calls
 * it only when bv_ternary_kernel_supported() says the CPU has them.
 *
 * A tile is MR <= 6 activation rows x 64 output channels: 24 zmm accumulators. Per block of 16
 * input channels it loads the 256-byte packed block once, unpacks each 64-byte chunk into four
 * operands (16 channels x 4 inputs, u = w + 1) with a shift and a mask, and reuses each operand
 * across the MR rows; an activation row contributes 4 bytes broadcast to all 16 lanes. */
#if defined(__x86_64__)
#pragma GCC target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")

#include <immintrin.h>
#include <string.h>

#include "src/kernels/ternary_gemm_impl.h"

#define AI static inline __attribute__((always_inline))
#define MR_MAX BV_TG_MR_AVX512VNNI

AI __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

/* acc[r][b] += u(block, chunk b) . x[r][4t .. 4t+3] over t = 0..3 */
AI void kblock(const int MR, __m512i acc[MR_MAX][4], const uint8_t *blk, const int8_t *const *xp, int64_t off) {
    const __m512i m3 = _mm512_set1_epi8(3);
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++) {
        __m512i w[4];
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) {
            __m512i p = _mm512_load_si512((const void *)(blk + 64 * b));
            w[b] = _mm512_and_si512(t ? _mm512_srli_epi16(p, 2 * t) : p, m3);
        }
#pragma GCC unroll 6
        for (int r = 0; r < MR; r++) {
            __m512i xb = bcast4(xp[r] + off + 4 * t);
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++) acc[r][b] = _mm512_dpbusd_epi32(acc[r][b], w[b], xb);
        }
    }
}

/* One row (GEMV, the decoding case): bound by how fast the packed weights are consumed, so the
 * shifts go: field t is masked in place, (chunk & 3 << 2t) = 4^t u, and accumulated in its own
 * register, acc[t][b] = 4^t sum(u x), then folded with exact arithmetic shifts. That is one ALU op
 * per operand instead of two, and 16 independent accumulators hide the dpbusd latency.
 * |acc[3]| <= 64 * 2 * 128 * C / 4 = 4096 C < 2^31 for C <= 2^19: pack allows C <= 2^18. */

AI void kblock_gemv(__m512i acc[4][4], const uint8_t *blk, const int8_t *xp) {
#pragma GCC unroll 4
    for (int t = 0; t < 4; t++) {
        const __m512i xb = bcast4(xp + 4 * t), mt = _mm512_set1_epi8((char)(3 << (2 * t)));
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++)
            acc[t][b] = _mm512_dpbusd_epi32(acc[t][b], _mm512_and_si512(_mm512_load_si512((const void *)(blk + 64 * b)), mt), xb);
    }
}

/* noinline and no tree-PRE: inlined into the tile, or with PRE, GCC 12 at -O2 copies and spills the
 * 16 accumulators every iteration (1.5x slower); alone it keeps them in registers. */
static __attribute__((noinline, optimize("no-tree-pre"))) void gemv_acc(__m512i tot[4], const uint8_t *wg, const int8_t *x, int64_t C) {
    const int64_t nfull = C / BV_TG_KBLK, nkb = (C + BV_TG_KBLK - 1) / BV_TG_KBLK;
    int8_t xt[BV_TG_KBLK] __attribute__((aligned(16)));
    memset(xt, 0, sizeof xt);
    memcpy(xt, x + nfull * BV_TG_KBLK, (size_t)(C % BV_TG_KBLK));
    __m512i acc[4][4];
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++)
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) acc[t][b] = _mm512_setzero_si512();
    /* four quarters of the block range side by side: four concurrent read streams, which draw
     * more memory bandwidth than one (a core keeps more misses in flight) */
    const int64_t q = nkb / 4;
    for (int64_t j = 0; j < q; j++) {
#pragma GCC unroll 4
        for (int s = 0; s < 4; s++) {
            const int64_t kb = j + s * q;
            kblock_gemv(acc, wg + kb * BV_TG_BLKBYTES, x + kb * BV_TG_KBLK);
        }
    }
    for (int64_t kb = 4 * q; kb < nkb; kb++) /* the last, partial block reads x zero-padded from xt */
        kblock_gemv(acc, wg + kb * BV_TG_BLKBYTES, kb < nfull ? x + kb * BV_TG_KBLK : xt);
#pragma GCC unroll 4
    for (int b = 0; b < 4; b++) {
        __m512i s = _mm512_add_epi32(acc[0][b], _mm512_srai_epi32(acc[1][b], 2));
        tot[b] = _mm512_add_epi32(s, _mm512_add_epi32(_mm512_srai_epi32(acc[2][b], 4), _mm512_srai_epi32(acc[3][b], 6)));
    }
}

AI void tile(const int MR, const bv_tg_args *a, int64_t og, int64_t n0, const int32_t *rowsum) {
    const bv_ternary_mat *w = a->w;
    const int64_t C = w->C, OC = w->OC, nkb = w->Cp / BV_TG_KBLK, nfull = C / BV_TG_KBLK;
    const uint8_t *wg = w->packed + og * nkb * BV_TG_BLKBYTES;
    const int8_t *xp[MR_MAX];
    __m512i acc[MR_MAX][4];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        xp[r] = a->x + (n0 + r) * C;
#pragma GCC unroll 4
        for (int b = 0; b < 4; b++) acc[r][b] = _mm512_setzero_si512();
    }
    if (MR == 1) {
        gemv_acc(acc[0], wg, xp[0], C);
    } else {
        for (int64_t kb = 0; kb < nfull; kb++) kblock(MR, acc, wg + kb * BV_TG_BLKBYTES, xp, kb * BV_TG_KBLK);
    }
    if (MR > 1 && C % BV_TG_KBLK) { /* the last, partial block: x zero-padded to 16 on the stack */
        int8_t xt[MR_MAX][BV_TG_KBLK] __attribute__((aligned(16)));
        const int8_t *tp[MR_MAX];
        memset(xt, 0, sizeof xt);
        for (int r = 0; r < MR; r++) {
            memcpy(xt[r], xp[r] + nfull * BV_TG_KBLK, (size_t)(C % BV_TG_KBLK));
            tp[r] = xt[r];
        }
        kblock(MR, acc, wg + nfull * BV_TG_BLKBYTES, tp, 0);
    }
    /* epilogue: subtract the row sums (u = w + 1), then store int32 or dequantize */
    const int64_t oc0 = og * BV_TG_GROUP;
    const int ocn = (int)(OC - oc0 < BV_TG_GROUP ? OC - oc0 : BV_TG_GROUP);
    __mmask16 mk[4];
    for (int b = 0; b < 4; b++) {
        int v = ocn - 16 * b;
        mk[b] = v >= 16 ? (__mmask16)0xFFFF : v <= 0 ? (__mmask16)0 : (__mmask16)((1u << v) - 1);
    }
    __m512i bias[4];
    if (a->out_f32)
        for (int b = 0; b < 4; b++)
            bias[b] = a->bias && mk[b] ? _mm512_castps_si512(_mm512_maskz_loadu_ps(mk[b], a->bias + oc0 + 16 * b))
                                       : _mm512_setzero_si512();
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
        const int64_t n = n0 + r;
        const __m512i rs = _mm512_set1_epi32(rowsum[r]);
        if (a->out_i32) {
            int32_t *o = a->out_i32 + n * OC + oc0;
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++)
                if (mk[b]) _mm512_mask_storeu_epi32(o + 16 * b, mk[b], _mm512_sub_epi32(acc[r][b], rs));
        } else {
            float *o = a->out_f32 + n * OC + oc0;
            const __m512 f = _mm512_set1_ps(bv_tg_row_factor(a, n));
#pragma GCC unroll 4
            for (int b = 0; b < 4; b++)
                if (mk[b]) {
                    __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc[r][b], rs));
                    _mm512_mask_storeu_ps(o + 16 * b, mk[b], _mm512_fmadd_ps(v, f, _mm512_castsi512_ps(bias[b])));
                }
        }
    }
}

void bv_tg_tile_avx512vnni(const bv_tg_args *a, int64_t og, int64_t n0, int nr, const int32_t *rowsum) {
    switch (nr) {
    case 6: tile(6, a, og, n0, rowsum); break;
    case 5: tile(5, a, og, n0, rowsum); break;
    case 4: tile(4, a, og, n0, rowsum); break;
    case 3: tile(3, a, og, n0, rowsum); break;
    case 2: tile(2, a, og, n0, rowsum); break;
    case 1: tile(1, a, og, n0, rowsum); break;
    default: BV_ASSERT(0, "avx512vnni tile: %d rows (expected 1..%d)", nr, MR_MAX);
    }
}

#endif
