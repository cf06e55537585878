#include "src/kernels/bitlinear.h"

#include <math.h>
#include <string.h>

#include "src/common.h"
#include "src/kernels/simd_math.h"

/* The sweeps are built for AVX-512, AVX2 and the baseline on x86-64 with GCC and picked at load
 * time. Every variant does the same fp32 operations per element (no reassociation), so results
 * are identical whichever runs. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BV_QUANT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BV_QUANT_CLONES
#endif

/* round-half-to-even of |v| <= 2^22 by the 1.5*2^23 trick: v + MAGIC lands in [2^23, 2^24) where
 * the fp32 spacing is 1, so the addition itself rounds (to nearest even in the default mode). The
 * integer is also read from the bits of the sum, which avoids a float->int conversion (UB on NaN). */
#define MAGIC 12582912.0f
#define MAGIC_BITS 0x4B400000

/* clamp(round(v), lo, hi) for integer lo <= hi (= round(clamp(v, lo, hi))), keeping the sign of
 * zero as torch.round does, NaN passing through. *code gets the integer (junk for NaN). */
static inline float round_clamp(float v, float lo, float hi, int32_t *code) {
    /* the clamps as bit blends: a float ?: is control flow that -O2 (with the default
     * -ftrapping-math) does not if-convert, which would keep the loop scalar */
    int32_t below = -(int32_t)(v < lo), above = -(int32_t)(v > hi);
    int32_t cb = (bv_f2i_bits_(v) & ~(below | above)) | (bv_f2i_bits_(lo) & below) | (bv_f2i_bits_(hi) & above);
    float c = bv_i2f_bits_(cb);
    float t = c + MAGIC;
    *code = bv_f2i_bits_(t) - MAGIC_BITS;
    float r = t - MAGIC;
    /* copysign(r, v) as bit operations: r is +0 for -0.5 <= v <= -0 */
    return bv_i2f_bits_((bv_f2i_bits_(r) & 0x7fffffff) | (bv_f2i_bits_(v) & (int32_t)0x80000000));
}

/* ---- weights ---- */

/* Number of fixed blocks of the |w| reduction (block partials live on the stack). */
#define ABSMEAN_BLOCKS 256

/* sum of |w[0..n)| in double with 8 interleaved accumulators combined in a fixed order */
BV_QUANT_CLONES static double abssum_block(const float *w, int64_t n) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) acc[j] += (double)fabsf(w[i + j]);
    for (int j = 0; i + j < n; j++) acc[j] += (double)fabsf(w[i + j]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

float bv_k_absmean(const float *w, int64_t n) {
    if (n <= 0) return 0.0f;
    /* block size from n alone (a multiple of 64), so the partials and their sum do not depend on
     * the thread count */
    int64_t bs = (n + ABSMEAN_BLOCKS - 1) / ABSMEAN_BLOCKS;
    bs = (bs + 63) & ~(int64_t)63;
    int64_t nb = (n + bs - 1) / bs;
    double part[ABSMEAN_BLOCKS];
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t b = 0; b < nb; b++) {
        int64_t i0 = b * bs, i1 = BV_MIN(n, i0 + bs);
        part[b] = abssum_block(w + i0, i1 - i0);
    }
    double sum = 0.0;
    for (int64_t b = 0; b < nb; b++) sum += part[b];
    return (float)(sum / (double)n);
}

/* Ternary rounding needs no rounding instruction: with v = w*s, clamp(round(v), -1, 1) is
 * (v > 0.5) - (v < -0.5) (ties +-0.5 go to the even 0, +-1.5 to +-2 and then +-1), and its value
 * keeps the sign of v, zero included. code / s is then |code| * fl(1/s) with v's sign: for codes
 * in {-1, 0, 1} that equals the fp32 division exactly, and a NaN or infinite mean|W| still makes
 * every element NaN through fl(1/s) (0 * inf) as it does in PyTorch. */
BV_QUANT_CLONES static void wquant_sweep(int8_t *codes, float *wq, const float *w, int64_t n, float s, float inv) {
    if (wq) {
        const int32_t one = bv_f2i_bits_(inv) & 0x7fffffff, zero = bv_f2i_bits_(0.0f * inv) & 0x7fffffff;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = w[i] * s;
            int32_t nz = -(int32_t)((v > 0.5f) | (v < -0.5f)); /* bit blends: no control flow */
            wq[i] = bv_i2f_bits_((one & nz) | (zero & ~nz) | (bv_f2i_bits_(v) & (int32_t)0x80000000));
        }
    }
    /* codes in a second loop over the same (L2-resident) chunk: int8 stores in the float loop make
     * GCC pick 16-byte vectors for everything and spill (2x slower) */
    if (codes) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            float v = w[i] * s;
            codes[i] = (int8_t)((v > 0.5f) - (v < -0.5f));
        }
    }
}

static uint64_t g_quant_weight_calls;

uint64_t bv_k_quant_weight_calls(void) { return __atomic_load_n(&g_quant_weight_calls, __ATOMIC_RELAXED); }

float bv_k_quant_weight_fwd(int8_t *codes, float *wq, const float *w, int64_t n) {
    __atomic_fetch_add(&g_quant_weight_calls, 1, __ATOMIC_RELAXED);
    float m = bv_k_absmean(w, n);
    m = m < BV_BITLINEAR_EPS ? BV_BITLINEAR_EPS : m; /* NaN stays NaN, as with torch.clamp */
    float s = (1.0f / m) * 1.0f;
    float inv = 1.0f / s;
    const int64_t CH = 16384; /* elements per parallel chunk: a multiple of 64 keeps outputs aligned */
    int64_t nch = (n + CH - 1) / CH;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t k = 0; k < nch; k++) {
        int64_t i0 = k * CH, len = BV_MIN(n - i0, CH);
        wquant_sweep(codes ? codes + i0 : NULL, wq ? wq + i0 : NULL, w + i0, len, s, inv);
    }
    return s;
}

double bv_k_quant_weight_fwd_ref(int8_t *codes, double *wq, const double *w, int64_t n) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += fabs(w[i]);
    double m = n > 0 ? sum / (double)n : 0.0;
    if (m < (double)BV_BITLINEAR_EPS) m = (double)BV_BITLINEAR_EPS;
    double s = (1.0 / m) * 1.0;
    for (int64_t i = 0; i < n; i++) {
        double r = rint(w[i] * s);
        r = r < -1.0 ? -1.0 : (r > 1.0 ? 1.0 : r);
        if (codes) codes[i] = r == r ? (int8_t)r : 0; /* NaN has no code */
        if (wq) wq[i] = r / s;
    }
    return s;
}

/* ---- activations ---- */

BV_QUANT_CLONES static float act_row(float *xq, int8_t *codes, const float *x, int64_t C) {
    float m = 0.0f;
    int nan = 0;
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int64_t j = 0; j < C; j++) {
        float a = fabsf(x[j]);
        m = a > m ? a : m; /* a max idiom: vectorised as maxps */
        nan |= a != a;
    }
    if (nan) m = NAN; /* torch's max propagates NaN: the whole row becomes NaN */
    m = m < BV_BITLINEAR_EPS ? BV_BITLINEAR_EPS : m;
    float s = (1.0f / m) * 127.0f; /* PyTorch's 127.0 / t */
    if (xq && codes) {
#pragma omp simd
        for (int64_t j = 0; j < C; j++) {
            int32_t c;
            float r = round_clamp(x[j] * s, -128.0f, 127.0f, &c);
            codes[j] = (int8_t)c;
            xq[j] = r / s;
        }
    } else if (xq) {
#pragma omp simd
        for (int64_t j = 0; j < C; j++) {
            int32_t c;
            xq[j] = round_clamp(x[j] * s, -128.0f, 127.0f, &c) / s;
        }
    } else if (codes) {
#pragma omp simd
        for (int64_t j = 0; j < C; j++) {
            int32_t c;
            (void)round_clamp(x[j] * s, -128.0f, 127.0f, &c);
            codes[j] = (int8_t)c;
        }
    }
    return s;
}

void bv_k_quant_act_fwd(float *xq, int8_t *codes, float *scale, const float *x, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t n = 0; n < N; n++) {
        float s = act_row(xq ? xq + n * C : NULL, codes ? codes + n * C : NULL, x + n * C, C);
        if (scale) scale[n] = s;
    }
}

void bv_k_quant_act_fwd_ref(double *xq, int8_t *codes, double *scale, const double *x, int64_t N, int64_t C) {
    for (int64_t n = 0; n < N; n++) {
        const double *xr = x + n * C;
        double m = 0.0;
        for (int64_t j = 0; j < C; j++)
            if (!(fabs(xr[j]) <= m)) m = fabs(xr[j]); /* NaN wins */
        if (m < (double)BV_BITLINEAR_EPS) m = (double)BV_BITLINEAR_EPS;
        double s = (1.0 / m) * 127.0;
        for (int64_t j = 0; j < C; j++) {
            double r = rint(xr[j] * s);
            r = r < -128.0 ? -128.0 : (r > 127.0 ? 127.0 : r);
            if (codes) codes[n * C + j] = r == r ? (int8_t)r : 0;
            if (xq) xq[n * C + j] = r / s;
        }
        if (scale) scale[n] = s;
    }
}
