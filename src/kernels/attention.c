#include "src/kernels/attention.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <string.h>

#include "src/common.h"
#include "src/kernels/simd_math.h"

/* ---- helpers ---- */

/* The row loops (exp, softmax, dS) are built twice on x86-64 with GCC, for AVX2 and for the
 * baseline, and picked at load time (the build itself targets the baseline ISA). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BV_ROW_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BV_ROW_CLONES
#endif

/* keep ? v : other as a bit blend: a float ?: around arithmetic is control flow that -O2 (with the
 * default -ftrapping-math) does not if-convert, which would keep the loop scalar */
static inline float select_keep(uint8_t keep, float v, float other) {
    int32_t m = -(int32_t)(keep != 0);
    return bv_i2f_bits_((bv_f2i_bits_(v) & m) | (bv_f2i_bits_(other) & ~m));
}

/* End (exclusive) of the keys query t may see; <= 0 when it sees none. */
static inline int64_t key_end(const bv_sdpa_shape *s, int64_t t) {
    if (!s->causal) return s->S;
    int64_t e = t + (s->S - s->T) + 1;
    return e > s->S ? s->S : e;
}

static void check_shape(const bv_sdpa_shape *s) {
    BV_ASSERT(s->B >= 0 && s->T >= 0 && s->S >= 0 && s->hd > 0 && s->H > 0 && s->Hkv > 0 && s->H % s->Hkv == 0,
              "sdpa: bad shape B %lld T %lld S %lld H %lld Hkv %lld hd %lld", (long long)s->B, (long long)s->T,
              (long long)s->S, (long long)s->H, (long long)s->Hkv, (long long)s->hd);
    BV_ASSERT(s->scale != 0.0, "sdpa: scale must be resolved before the kernel");
}

/* Number of key chunks the backward splits each (b, kv head) into: enough tasks (>= 8) to keep a
 * few threads busy when B * Hkv is small, chunks of whole BV_SDPA_BLOCK-key blocks. Depends only on the shape,
 * so the arithmetic (and the result) is the same for any thread count. */
static int64_t bwd_chunks(const bv_sdpa_shape *s) {
    int64_t nkb = (s->S + BV_SDPA_BLOCK - 1) / BV_SDPA_BLOCK;
    int64_t units = s->B * s->Hkv;
    int64_t nc = units >= 8 ? 1 : (8 + units - 1) / (units ? units : 1);
    if (nc > nkb) nc = nkb;
    return nc < 1 ? 1 : nc;
}

size_t bv_k_sdpa_fwd_scratch(const bv_sdpa_shape *s, int nthreads) {
    return (size_t)(nthreads < 1 ? 1 : nthreads) * BV_SDPA_BLOCK * (size_t)(s->S ? s->S : 1);
}

size_t bv_k_sdpa_bwd_scratch(const bv_sdpa_shape *s, int nthreads) {
    int64_t nc = bwd_chunks(s);
    size_t d = (size_t)(s->B * s->H * s->T);
    size_t partial = (size_t)(nc - 1) * (size_t)(s->B * s->T * s->H * s->hd);
    size_t tiles = (size_t)(nthreads < 1 ? 1 : nthreads) * 2 * BV_SDPA_BLOCK * (size_t)(s->S ? s->S : 1);
    return d + partial + tiles;
}

/* ---- fast forward ---- */

/* Softmax in place over x[0, n) where only keys j < lim with kp[j] != 0 (kp may be NULL) count;
 * masked entries become 0. Returns the log-sum-exp, +inf when no key is visible (row all 0). A NaN
 * score makes the row NaN. */
BV_ROW_CLONES static float softmax_row(float *x, int64_t n, int64_t lim, const uint8_t *kp) {
    if (lim > n) lim = n;
    if (lim <= 0) {
        memset(x, 0, (size_t)n * sizeof *x);
        return INFINITY;
    }
    if (kp) {
#pragma omp simd
        for (int64_t j = 0; j < lim; j++) x[j] = select_keep(kp[j], x[j], -INFINITY);
    }
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < lim; j++) m = x[j] > m ? x[j] : m;
    if (m == -INFINITY) { /* every visible score is -inf (all keys masked) or NaN */
        for (int64_t j = 0; j < lim; j++)
            if (isnan(x[j])) { /* keep a NaN visible, as PyTorch does */
                for (int64_t i = 0; i < n; i++) x[i] = NAN;
                return NAN;
            }
        memset(x, 0, (size_t)n * sizeof *x);
        return INFINITY;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < lim; j++) {
        float e = bv_expf_simd(x[j] - m);
        x[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int64_t j = 0; j < lim; j++) x[j] *= inv;
    for (int64_t j = lim; j < n; j++) x[j] = 0.0f;
    return m + logf(sum);
}

void bv_k_sdpa_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const bv_sdpa_shape *s,
                   float *scratch, int nthreads) {
    check_shape(s);
    const int64_t B = s->B, T = s->T, S = s->S, H = s->H, Hkv = s->Hkv, hd = s->hd, G = H / Hkv;
    const int64_t nqb = (T + BV_SDPA_BLOCK - 1) / BV_SDPA_BLOCK;
    const int ldq = (int)(H * hd), ldk = (int)(Hkv * hd);
    const float scale = (float)s->scale;
    if (nthreads < 1) nthreads = 1;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t task = 0; task < B * H * nqb; task++) {
        int64_t b = task / (H * nqb), h = (task / nqb) % H, qb = task % nqb;
        int64_t kvh = h / G, t0 = qb * BV_SDPA_BLOCK, nr = BV_MIN(BV_SDPA_BLOCK, T - t0);
        float *tile = scratch + (size_t)omp_get_thread_num() * BV_SDPA_BLOCK * (size_t)S;
        float *o = out + ((b * T + t0) * H + h) * hd;
        float *l = lse + (b * H + h) * T + t0;
        int64_t ne = key_end(s, t0 + nr - 1); /* keys any row of the block may see */
        if (ne <= 0) {
            for (int64_t r = 0; r < nr; r++) {
                memset(o + r * ldq, 0, (size_t)hd * sizeof *o);
                l[r] = INFINITY;
            }
            continue;
        }
        const float *qp = q + ((b * T + t0) * H + h) * hd;
        const float *kp = k + (b * S * Hkv + kvh) * hd, *vp = v + (b * S * Hkv + kvh) * hd;
        /* tile (nr, ne) = scale * Q K^T */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)ne, (int)hd, scale, qp, ldq, kp, ldk, 0.0f,
                    tile, (int)ne);
        const uint8_t *pad = s->key_padding ? s->key_padding + b * S : NULL;
        for (int64_t r = 0; r < nr; r++) l[r] = softmax_row(tile + r * ne, ne, key_end(s, t0 + r), pad);
        /* out rows (nr, hd) = P V */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)hd, (int)ne, 1.0f, tile, (int)ne, vp, ldk,
                    0.0f, o, ldq);
    }
}

/* ---- fast backward ---- */

/* Scores x[0, n) -> probabilities exp(x - lse) where key j < lim and kp[j] != 0 (kp may be NULL), 0
 * elsewhere; all 0 for a row without visible keys (lse = +inf). */
BV_ROW_CLONES static void probs_row(float *x, int64_t n, int64_t lim, const uint8_t *kp, float lse) {
    if (lim > n) lim = n;
    if (lim <= 0 || lse == INFINITY) {
        memset(x, 0, (size_t)n * sizeof *x);
        return;
    }
    if (kp) {
#pragma omp simd
        for (int64_t j = 0; j < lim; j++) x[j] = select_keep(kp[j], bv_expf_simd(x[j] - lse), 0.0f);
    } else {
#pragma omp simd
        for (int64_t j = 0; j < lim; j++) x[j] = bv_expf_simd(x[j] - lse);
    }
    for (int64_t j = lim; j < n; j++) x[j] = 0.0f;
}

/* dS = P * (dP - D), in place over dP */
BV_ROW_CLONES static void ds_row(float *dp, const float *p, int64_t n, float D) {
#pragma omp simd
    for (int64_t j = 0; j < n; j++) dp[j] = p[j] * (dp[j] - D);
}

void bv_k_sdpa_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                   const float *v, const float *out, const float *lse, const bv_sdpa_shape *s, float *scratch,
                   int nthreads) {
    check_shape(s);
    if (!dq && !dk && !dv) return;
    const int64_t B = s->B, T = s->T, S = s->S, H = s->H, Hkv = s->Hkv, hd = s->hd, G = H / Hkv;
    const int64_t nqb = (T + BV_SDPA_BLOCK - 1) / BV_SDPA_BLOCK, nkb = (S + BV_SDPA_BLOCK - 1) / BV_SDPA_BLOCK;
    const int64_t NC = bwd_chunks(s);
    const int ldq = (int)(H * hd), ldk = (int)(Hkv * hd);
    const float scale = (float)s->scale;
    const size_t nq = (size_t)(B * T * H * hd);
    if (nthreads < 1) nthreads = 1;
    float *D = scratch;                          /* (B, H, T) rowsum(dO * O) */
    float *partial = D + (size_t)(B * H * T);    /* (NC - 1) dQ partials, (B, T, H, hd) each */
    float *tiles = partial + (size_t)(NC - 1) * nq;

    const bool need_ds = dq || dk;
    if (need_ds) {
#pragma omp parallel for schedule(static) num_threads(nthreads)
        for (int64_t row = 0; row < B * T * H; row++) { /* row = (b, t, h) */
            const float *a = dout + row * hd, *o = out + row * hd;
            float acc = 0.0f;
            for (int64_t d = 0; d < hd; d++) acc += a[d] * o[d];
            int64_t b = row / (T * H), t = (row / H) % T, h = row % H;
            D[(b * H + h) * T + t] = acc;
        }
    }
    if (dq && NC > 1) {
#pragma omp parallel for schedule(static) num_threads(nthreads)
        for (int64_t c = 0; c < NC - 1; c++) memset(partial + (size_t)c * nq, 0, nq * sizeof(float));
    }

    /* task = (key chunk c, b, kv head): the dK/dV rows of the chunk are written by this task only;
     * chunk-major order so the heavy first chunks of a causal mask start first. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
    for (int64_t task = 0; task < NC * B * Hkv; task++) {
        int64_t c = task / (B * Hkv), b = (task / Hkv) % B, kvh = task % Hkv;
        int64_t kc0 = (c * nkb / NC) * BV_SDPA_BLOCK, kc1 = BV_MIN(S, ((c + 1) * nkb / NC) * BV_SDPA_BLOCK);
        float *P = tiles + (size_t)omp_get_thread_num() * 2 * BV_SDPA_BLOCK * (size_t)S;
        float *dP = P + (size_t)BV_SDPA_BLOCK * (size_t)S;
        float *dqt = dq ? (c == 0 ? dq : partial + (size_t)(c - 1) * nq) : NULL;
        const float *kp = k + ((b * S + kc0) * Hkv + kvh) * hd, *vp = v + ((b * S + kc0) * Hkv + kvh) * hd;
        float *dkp = dk ? dk + ((b * S + kc0) * Hkv + kvh) * hd : NULL;
        float *dvp = dv ? dv + ((b * S + kc0) * Hkv + kvh) * hd : NULL;
        const uint8_t *pad = s->key_padding ? s->key_padding + b * S + kc0 : NULL;
        for (int64_t h = kvh * G; h < (kvh + 1) * G; h++) {
            for (int64_t qb = 0; qb < nqb; qb++) {
                int64_t t0 = qb * BV_SDPA_BLOCK, nr = BV_MIN(BV_SDPA_BLOCK, T - t0);
                int64_t hi = BV_MIN(kc1, key_end(s, t0 + nr - 1));
                if (hi <= kc0) continue; /* no row of this block sees a key of this chunk */
                int64_t n = hi - kc0;
                const int64_t off = ((b * T + t0) * H + h) * hd;
                const float *qp = q + off, *dop = dout + off;
                const float *l = lse + (b * H + h) * T + t0, *Dr = D + (b * H + h) * T + t0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n, (int)hd, scale, qp, ldq, kp, ldk,
                            0.0f, P, (int)n);
                for (int64_t r = 0; r < nr; r++) probs_row(P + r * n, n, key_end(s, t0 + r) - kc0, pad, l[r]);
                /* dV (n, hd) += P^T dO */
                if (dvp)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hd, (int)nr, 1.0f, P, (int)n, dop,
                                ldq, 1.0f, dvp, ldk);
                if (!need_ds) continue;
                /* dP (nr, n) = dO V^T; dS = P * (dP - D) */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nr, (int)n, (int)hd, 1.0f, dop, ldq, vp, ldk,
                            0.0f, dP, (int)n);
                for (int64_t r = 0; r < nr; r++) ds_row(dP + r * n, P + r * n, n, Dr[r]);
                /* dQ (nr, hd) += scale dS K; dK (n, hd) += scale dS^T Q */
                if (dqt)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nr, (int)hd, (int)n, scale, dP, (int)n,
                                kp, ldk, 1.0f, dqt + off, ldq);
                if (dkp)
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)n, (int)hd, (int)nr, scale, dP, (int)n, qp,
                                ldq, 1.0f, dkp, ldk);
            }
        }
    }

    if (dq && NC > 1) { /* dq += partials, in chunk order */
#pragma omp parallel for schedule(static) num_threads(nthreads)
        for (int64_t i = 0; i < (int64_t)nq; i++) {
            float acc = 0.0f;
            for (int64_t c = 0; c < NC - 1; c++) acc += partial[(size_t)c * nq + (size_t)i];
            dq[i] += acc;
        }
    }
}

/* ---- double reference ---- */

/* Probabilities of query row (b, h, t) over all S keys into p; returns false when no key is visible. */
static bool ref_probs(double *p, const double *q, const double *k, const bv_sdpa_shape *s, int64_t b, int64_t h,
                      int64_t t) {
    int64_t S = s->S, hd = s->hd, kvh = h / (s->H / s->Hkv);
    int64_t lim = key_end(s, t);
    const double *qr = q + ((b * s->T + t) * s->H + h) * hd;
    double m = -INFINITY;
    for (int64_t j = 0; j < S; j++) {
        bool visible = j < lim && (!s->key_padding || s->key_padding[b * S + j]);
        if (!visible) {
            p[j] = -INFINITY;
            continue;
        }
        const double *kr = k + ((b * S + j) * s->Hkv + kvh) * hd;
        double acc = 0;
        for (int64_t d = 0; d < hd; d++) acc += qr[d] * kr[d];
        p[j] = acc * s->scale;
        if (p[j] > m) m = p[j];
    }
    if (m == -INFINITY) {
        for (int64_t j = 0; j < S; j++) p[j] = 0;
        return false;
    }
    double sum = 0;
    for (int64_t j = 0; j < S; j++) {
        p[j] = p[j] == -INFINITY ? 0.0 : exp(p[j] - m);
        sum += p[j];
    }
    for (int64_t j = 0; j < S; j++) p[j] /= sum;
    return true;
}

void bv_k_sdpa_fwd_ref(double *out, const double *q, const double *k, const double *v, const bv_sdpa_shape *s) {
    check_shape(s);
    int64_t S = s->S, hd = s->hd, G = s->H / s->Hkv;
    double *p = bv_xmalloc((size_t)(S ? S : 1) * sizeof *p);
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t t = 0; t < s->T; t++)
            for (int64_t h = 0; h < s->H; h++) {
                double *o = out + ((b * s->T + t) * s->H + h) * hd;
                for (int64_t d = 0; d < hd; d++) o[d] = 0;
                if (!ref_probs(p, q, k, s, b, h, t)) continue;
                for (int64_t j = 0; j < S; j++) {
                    const double *vr = v + ((b * S + j) * s->Hkv + h / G) * hd;
                    for (int64_t d = 0; d < hd; d++) o[d] += p[j] * vr[d];
                }
            }
    free(p);
}

void bv_k_sdpa_bwd_ref(double *dq, double *dk, double *dv, const double *dout, const double *q, const double *k,
                       const double *v, const bv_sdpa_shape *s) {
    check_shape(s);
    int64_t S = s->S, hd = s->hd, G = s->H / s->Hkv;
    double *p = bv_xmalloc((size_t)(S ? S : 1) * sizeof *p);
    double *dp = bv_xmalloc((size_t)(S ? S : 1) * sizeof *dp);
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t t = 0; t < s->T; t++)
            for (int64_t h = 0; h < s->H; h++) {
                if (!ref_probs(p, q, k, s, b, h, t)) continue; /* fully masked row: zero gradient */
                int64_t kvh = h / G;
                const int64_t off = ((b * s->T + t) * s->H + h) * hd;
                const double *g = dout + off, *qr = q + off;
                /* dP_j = dO . v_j; D = sum_j P_j dP_j */
                double D = 0;
                for (int64_t j = 0; j < S; j++) {
                    const double *vr = v + ((b * S + j) * s->Hkv + kvh) * hd;
                    double acc = 0;
                    for (int64_t d = 0; d < hd; d++) acc += g[d] * vr[d];
                    dp[j] = acc;
                    D += p[j] * acc;
                }
                for (int64_t j = 0; j < S; j++) {
                    if (p[j] == 0.0) continue; /* masked key (or exact underflow): no gradient */
                    const int64_t koff = ((b * S + j) * s->Hkv + kvh) * hd;
                    double ds = p[j] * (dp[j] - D) * s->scale;
                    for (int64_t d = 0; d < hd; d++) {
                        if (dq) dq[off + d] += ds * k[koff + d];
                        if (dk) dk[koff + d] += ds * qr[d];
                        if (dv) dv[koff + d] += p[j] * g[d];
                    }
                }
            }
    free(p);
    free(dp);
}
