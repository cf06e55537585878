#include "src/kernels/matmul.h"

#include <cblas.h>
#include <string.h>

#include "src/common.h"

void bv_k_sum_rows(float *dst, const float *src, int64_t N, int64_t C) {
    /* columns in blocks of 64 so each thread writes a disjoint slice and reads rows contiguously */
    const int64_t CB = 64;
    int64_t nblk = (C + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (N * C > 32768)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * CB, c1 = BV_MIN(C, c0 + CB);
        float acc[64];
        for (int64_t c = c0; c < c1; c++) acc[c - c0] = 0.0f;
        for (int64_t n = 0; n < N; n++) {
            const float *row = src + n * C;
            for (int64_t c = c0; c < c1; c++) acc[c - c0] += row[c];
        }
        for (int64_t c = c0; c < c1; c++) dst[c] += acc[c - c0];
    }
}

void bv_k_linear_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C,
                     int64_t OC) {
    if (N == 0 || OC == 0) return;
    float beta = 0.0f;
    if (bias) {
#pragma omp parallel for schedule(static) if (N * OC > 65536)
        for (int64_t n = 0; n < N; n++) memcpy(out + n * OC, bias, (size_t)OC * sizeof(float));
        beta = 1.0f;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)N, (int)OC, (int)C, 1.0f, inp, (int)C, w, (int)C,
                beta, out, (int)OC);
}

void bv_k_linear_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int64_t N, int64_t C, int64_t OC) {
    if (N == 0) return;
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)N, (int)C, (int)OC, 1.0f, dout, (int)OC, w,
                    (int)C, 1.0f, dinp, (int)C);
    if (dw)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)OC, (int)C, (int)N, 1.0f, dout, (int)OC, inp,
                    (int)C, 1.0f, dw, (int)C);
    if (dbias) bv_k_sum_rows(dbias, dout, N, OC);
}

void bv_k_linear_fwd_ref(double *out, const double *inp, const double *w, const double *bias, int64_t N,
                         int64_t C, int64_t OC) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int64_t c = 0; c < C; c++) acc += inp[n * C + c] * w[o * C + c];
            out[n * OC + o] = acc;
        }
}

void bv_k_linear_bwd_ref(double *dinp, double *dw, double *dbias, const double *dout, const double *inp,
                         const double *w, int64_t N, int64_t C, int64_t OC) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double d = dout[n * OC + o];
            if (dbias) dbias[o] += d;
            for (int64_t c = 0; c < C; c++) {
                if (dinp) dinp[n * C + c] += d * w[o * C + c];
                if (dw) dw[o * C + c] += d * inp[n * C + c];
            }
        }
}

/* ---- batched GEMM ---- */

static inline CBLAS_TRANSPOSE tr(bool t) { return t ? CblasTrans : CblasNoTrans; }

void bv_k_gemm_batched(float *c, const float *a, const float *b, const bv_gemm_shape *s, float alpha, float beta) {
    int M = (int)s->M, N = (int)s->N, K = (int)s->K;
    int lda = s->ta ? M : K, ldb = s->tb ? K : N;
    if (s->nb == 0 || M == 0 || N == 0) return;
    /* Small matrices: one single-threaded sgemm per batch entry, batch entries in parallel (OpenBLAS
     * runs single-threaded inside an OpenMP region). Large ones: threaded sgemm per entry. */
    if (s->nb > 1 && (double)M * N * K < 64.0 * 64 * 64 * 8) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < s->nb; i++)
            cblas_sgemm(CblasRowMajor, tr(s->ta), tr(s->tb), M, N, K, alpha, a + i * s->sa, lda, b + i * s->sb, ldb,
                        beta, c + i * s->sc, N);
    } else {
        for (int64_t i = 0; i < s->nb; i++)
            cblas_sgemm(CblasRowMajor, tr(s->ta), tr(s->tb), M, N, K, alpha, a + i * s->sa, lda, b + i * s->sb, ldb,
                        beta, c + i * s->sc, N);
    }
}

void bv_k_gemm_batched_ref(double *c, const double *a, const double *b, const bv_gemm_shape *s, double alpha,
                           double beta) {
    int64_t M = s->M, N = s->N, K = s->K;
    for (int64_t i = 0; i < s->nb; i++) {
        const double *ai = a + i * s->sa, *bi = b + i * s->sb;
        double *ci = c + i * s->sc;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++) {
                    double av = s->ta ? ai[k * M + m] : ai[m * K + k];
                    double bv = s->tb ? bi[n * K + k] : bi[k * N + n];
                    acc += av * bv;
                }
                ci[m * N + n] = alpha * acc + (beta == 0.0 ? 0.0 : beta * ci[m * N + n]);
            }
    }
}

void bv_k_gemm_batched_bwd(float *da, float *db, const float *dc, const float *a, const float *b,
                           const bv_gemm_shape *s) {
    int M = (int)s->M, N = (int)s->N, K = (int)s->K;
    int lda = s->ta ? M : K, ldb = s->tb ? K : N;
    if (s->nb == 0) return;
    bool par = s->nb > 1 && (double)M * N * K < 64.0 * 64 * 64 * 8;
    if (da) {
#pragma omp parallel for schedule(static) if (par)
        for (int64_t i = 0; i < s->nb; i++) {
            const float *dci = dc + i * s->sc, *bi = b + i * s->sb;
            float *dai = da + i * s->sa;
            if (!s->ta) /* dA (M,K) += dC (M,N) op(B)^T */
                cblas_sgemm(CblasRowMajor, CblasNoTrans, s->tb ? CblasNoTrans : CblasTrans, M, K, N, 1.0f, dci, N,
                            bi, ldb, 1.0f, dai, lda);
            else /* dA (K,M) += op(B) dC^T */
                cblas_sgemm(CblasRowMajor, s->tb ? CblasTrans : CblasNoTrans, CblasTrans, K, M, N, 1.0f, bi, ldb,
                            dci, N, 1.0f, dai, lda);
        }
    }
    if (db) {
        /* with a shared b (sb == 0) every batch entry adds into the same db: run them in order */
#pragma omp parallel for schedule(static) if (par && s->sb != 0)
        for (int64_t i = 0; i < s->nb; i++) {
            const float *dci = dc + i * s->sc, *ai = a + i * s->sa;
            float *dbi = db + i * s->sb;
            if (!s->tb) /* dB (K,N) += op(A)^T dC */
                cblas_sgemm(CblasRowMajor, s->ta ? CblasNoTrans : CblasTrans, CblasNoTrans, K, N, M, 1.0f, ai, lda,
                            dci, N, 1.0f, dbi, ldb);
            else /* dB (N,K) += dC^T op(A) */
                cblas_sgemm(CblasRowMajor, CblasTrans, s->ta ? CblasTrans : CblasNoTrans, N, K, M, 1.0f, dci, N, ai,
                            lda, 1.0f, dbi, ldb);
        }
    }
}

void bv_k_gemm_batched_bwd_ref(double *da, double *db, const double *dc, const double *a, const double *b,
                               const bv_gemm_shape *s) {
    int64_t M = s->M, N = s->N, K = s->K;
    for (int64_t i = 0; i < s->nb; i++) {
        const double *ai = a + i * s->sa, *bi = b + i * s->sb, *dci = dc + i * s->sc;
        double *dai = da ? da + i * s->sa : NULL, *dbi = db ? db + i * s->sb : NULL;
        for (int64_t m = 0; m < M; m++)
            for (int64_t n = 0; n < N; n++) {
                double d = dci[m * N + n];
                for (int64_t k = 0; k < K; k++) {
                    int64_t ia = s->ta ? k * M + m : m * K + k;
                    int64_t ib = s->tb ? n * K + k : k * N + n;
                    if (dai) dai[ia] += d * bi[ib];
                    if (dbi) dbi[ib] += d * ai[ia];
                }
            }
    }
}
