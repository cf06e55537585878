/* ternary_gemm_avx2.c - the AVX2 tile of the ternary GEMM (see ternary_gemm.h), and the AVX2 row
 * sum of int8 activations that every SIMD kernel's u = w + 1 correction uses.
 *
 * Compiled for AVX2 + FMA by the pragma below whatever the build flags; the driver calls it only
 * when the CPU has them.
 *
 * A tile is MR <= 2 rows x 64 output channels, done as four sub-tiles of 16 channels (two ymm
 * accumulators per row; more rows spill: there are 16 ymm registers). _mm256_maddubs_epi16(u, x)
 * multiplies the unsigned codes by the signed activations and adds adjacent pairs into int16:
 * |pair| <= 2*128*2 = 512, so the four steps of a 16-input block are summed in int16
 * (|sum| <= 2048) before _mm256_madd_epi16 with ones widens to int32. */
#if defined(__x86_64__)
#pragma GCC target("avx2,fma")

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "src/kernels/ternary_gemm_impl.h"

#define AI static inline __attribute__((always_inline))
#define MR_MAX BV_TG_MR_AVX2

AI __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

AI __m256i unpack(const uint8_t *p, int t, __m256i m3) {
    __m256i v = _mm256_load_si256((const __m256i *)p);
    return _mm256_and_si256(t ? _mm256_srli_epi16(v, 2 * t) : v, m3);
}

/* acc[r][h] += codes of chunk (16 channels; h = 8-channel half) . x[r][0..16): per half, the four
 * operands t = 0..3 are unpacked once and used by every row; a row's four maddubs products are
 * summed in int16 (|sum| <= 4 * 512) and widened once. */
AI void kblock(const int MR, __m256i acc[MR_MAX][2], const uint8_t *chunk, const int8_t *const *xp, int64_t off) {
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
#pragma GCC unroll 2
    for (int h = 0; h < 2; h++) {
        __m256i w[4];
#pragma GCC unroll 4
        for (int t = 0; t < 4; t++) w[t] = unpack(chunk + 32 * h, t, m3);
#pragma GCC unroll 4
        for (int r = 0; r < MR; r++) {
            const int8_t *x = xp[r] + off;
            __m256i s = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bcast4(x)), _mm256_maddubs_epi16(w[1], bcast4(x + 4)));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[2], bcast4(x + 8)));
            s = _mm256_add_epi16(s, _mm256_maddubs_epi16(w[3], bcast4(x + 12)));
            acc[r][h] = _mm256_add_epi32(acc[r][h], _mm256_madd_epi16(s, ones));
        }
    }
}

AI void subtile(const int MR, const bv_tg_args *a, int64_t og, int b, int64_t n0, const int32_t *rowsum) {
    const bv_ternary_mat *w = a->w;
    const int64_t C = w->C, OC = w->OC, nkb = w->Cp / BV_TG_KBLK, nfull = C / BV_TG_KBLK;
    const uint8_t *wg = w->packed + og * nkb * BV_TG_BLKBYTES + 64 * b;
    const int8_t *xp[MR_MAX];
    __m256i acc[MR_MAX][2];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        xp[r] = a->x + (n0 + r) * C;
        acc[r][0] = acc[r][1] = _mm256_setzero_si256();
    }
    for (int64_t kb = 0; kb < nfull; kb++) kblock(MR, acc, wg + kb * BV_TG_BLKBYTES, xp, kb * BV_TG_KBLK);
    if (C % BV_TG_KBLK) {
        int8_t xt[MR_MAX][BV_TG_KBLK] __attribute__((aligned(16)));
        const int8_t *tp[MR_MAX];
        memset(xt, 0, sizeof xt);
        for (int r = 0; r < MR; r++) {
            memcpy(xt[r], xp[r] + nfull * BV_TG_KBLK, (size_t)(C % BV_TG_KBLK));
            tp[r] = xt[r];
        }
        kblock(MR, acc, wg + nfull * BV_TG_BLKBYTES, tp, 0);
    }
    const int64_t oc0 = og * BV_TG_GROUP + 16 * b;
    if (oc0 >= OC) return;
    const int ocn = (int)(OC - oc0 < 16 ? OC - oc0 : 16);
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
        const int64_t n = n0 + r;
        const __m256i rs = _mm256_set1_epi32(rowsum[r]);
        int32_t v[16] __attribute__((aligned(32)));
        _mm256_store_si256((__m256i *)v, _mm256_sub_epi32(acc[r][0], rs));
        _mm256_store_si256((__m256i *)(v + 8), _mm256_sub_epi32(acc[r][1], rs));
        if (a->out_i32) {
            memcpy(a->out_i32 + n * OC + oc0, v, (size_t)ocn * sizeof(int32_t));
        } else {
            float *o = a->out_f32 + n * OC + oc0, f = bv_tg_row_factor(a, n);
            if (ocn == 16) {
                const __m256 fv = _mm256_set1_ps(f);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    __m256 bv = a->bias ? _mm256_loadu_ps(a->bias + oc0 + 8 * h) : _mm256_setzero_ps();
                    __m256 y = _mm256_cvtepi32_ps(_mm256_load_si256((const __m256i *)(v + 8 * h)));
                    _mm256_storeu_ps(o + 8 * h, _mm256_fmadd_ps(y, fv, bv));
                }
            } else {
                for (int j = 0; j < ocn; j++) o[j] = fmaf((float)v[j], f, a->bias ? a->bias[oc0 + j] : 0.0f);
            }
        }
    }
}

void bv_tg_tile_avx2(const bv_tg_args *a, int64_t og, int64_t n0, int nr, const int32_t *rowsum) {
    BV_ASSERT(nr >= 1 && nr <= MR_MAX, "avx2 tile: %d rows (expected 1..%d)", nr, MR_MAX);
    for (int b = 0; b < 4; b++) {
        if (nr == 2) subtile(2, a, og, b, n0, rowsum);
        else subtile(1, a, og, b, n0, rowsum);
    }
}

int32_t bv_tg_rowsum_avx2(const int8_t *x, int64_t C) {
    /* sum (x ^ 0x80) = sum (x + 128) with _mm256_sad_epu8 against zero, then subtract 128 C */
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    int64_t c = 0;
    for (; c + 32 <= C; c += 32) {
        __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + c)), flip);
        acc = _mm256_add_epi64(acc, _mm256_sad_epu8(v, zero));
    }
    int64_t lanes[4];
    _mm256_storeu_si256((__m256i *)lanes, acc);
    int64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3] - 128 * c;
    for (; c < C; c++) s += x[c];
    return (int32_t)s;
}

#endif
