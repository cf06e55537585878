#include "src/kernels/norm.h"

#include <math.h>
#include <string.h>

#include "src/common.h"
#include "src/kernels/simd_math.h"

/* below this many elements the kernels run on one thread (the fork/join costs more) */
#define PAR_MIN 32768

/* ---- softmax ---- */

static void softmax_row(float *y, const float *x, int64_t D) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t i = 0; i < D; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < D; i++) {
        float e = bv_expf_simd(x[i] - m);
        y[i] = e;
        s += e;
    }
    float inv = (float)(1.0 / s);
#pragma omp simd
    for (int64_t i = 0; i < D; i++) y[i] *= inv;
}

void bv_k_softmax_fwd(float *out, const float *inp, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N * D >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) softmax_row(out + n * D, inp + n * D, D);
}

void bv_k_softmax_bwd(float *dinp, const float *dout, const float *out, int64_t N, int64_t D) {
#pragma omp parallel for schedule(static) if (N * D >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const float *y = out + n * D, *dy = dout + n * D;
        float *dx = dinp + n * D;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < D; i++) s += (double)dy[i] * y[i];
        float sf = (float)s;
#pragma omp simd
        for (int64_t i = 0; i < D; i++) dx[i] += y[i] * (dy[i] - sf);
    }
}

void bv_k_softmax_fwd_ref(double *out, const double *inp, int64_t N, int64_t D) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * D;
        double *y = out + n * D;
        double m = -INFINITY;
        for (int64_t i = 0; i < D; i++) m = x[i] > m ? x[i] : m;
        double s = 0;
        for (int64_t i = 0; i < D; i++) s += exp(x[i] - m);
        for (int64_t i = 0; i < D; i++) y[i] = exp(x[i] - m) / s;
    }
}

void bv_k_softmax_bwd_ref(double *dinp, const double *dout, const double *out, int64_t N, int64_t D) {
    for (int64_t n = 0; n < N; n++) {
        const double *y = out + n * D, *dy = dout + n * D;
        double s = 0;
        for (int64_t i = 0; i < D; i++) s += dy[i] * y[i];
        for (int64_t i = 0; i < D; i++) dinp[n * D + i] += y[i] * (dy[i] - s);
    }
}

/* ---- shared by the layernorm and rmsnorm backward ---- */

static int64_t n_chunks(int64_t N) { return (N + BV_K_NORM_CHUNK_ROWS - 1) / BV_K_NORM_CHUNK_ROWS; }

int64_t bv_k_norm_bwd_scratch(int64_t N, int64_t D) { return 2 * n_chunks(N) * D; }

/* dst (D) += sum over k of part (nch, D), k in increasing order whatever the thread count */
static void add_partials(float *dst, const float *part, int64_t nch, int64_t D) {
    enum { CB = 256 };
    int64_t nblk = (D + CB - 1) / CB;
#pragma omp parallel for schedule(static) if (nch * D >= PAR_MIN)
    for (int64_t blk = 0; blk < nblk; blk++) {
        int64_t c0 = blk * CB, nc = BV_MIN(D, c0 + CB) - c0;
        double acc[CB];
        for (int64_t c = 0; c < nc; c++) acc[c] = 0;
        for (int64_t k = 0; k < nch; k++) {
            const float *p = part + k * D + c0;
#pragma omp simd
            for (int64_t c = 0; c < nc; c++) acc[c] += p[c];
        }
        for (int64_t c = 0; c < nc; c++) dst[c0 + c] += (float)acc[c];
    }
}

/* ---- layernorm ---- */

void bv_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                        const float *bias, int64_t N, int64_t D, double eps) {
#pragma omp parallel for schedule(static) if (N * D >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * D;
        float *y = out + n * D;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < D; i++) s += x[i];
        double m = s / (double)D;
        double v = 0;
#pragma omp simd reduction(+ : v)
        for (int64_t i = 0; i < D; i++) {
            double d = (double)x[i] - m;
            v += d * d;
        }
        float mu = (float)m, rs = (float)(1.0 / sqrt(v / (double)D + eps));
        mean[n] = mu;
        rstd[n] = rs;
        if (bias) {
#pragma omp simd
            for (int64_t i = 0; i < D; i++) y[i] = (x[i] - mu) * rs * weight[i] + bias[i];
        } else {
#pragma omp simd
            for (int64_t i = 0; i < D; i++) y[i] = (x[i] - mu) * rs * weight[i];
        }
    }
}

void bv_k_layernorm_bwd(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd, int64_t N,
                        int64_t D) {
    int64_t nch = n_chunks(N);
    float *pw = NULL, *pb = NULL;
    if (dweight || dbias) {
        BV_ASSERT(scratch, "layernorm_bwd: weight/bias gradients need %lld floats of scratch",
                  (long long)bv_k_norm_bwd_scratch(N, D));
        pw = dweight ? scratch : NULL;
        pb = dbias ? scratch + nch * D : NULL;
    }
#pragma omp parallel for schedule(static) if (N * D >= PAR_MIN)
    for (int64_t k = 0; k < nch; k++) {
        float *cw = pw ? pw + k * D : NULL, *cb = pb ? pb + k * D : NULL;
        if (cw) memset(cw, 0, (size_t)D * sizeof(float));
        if (cb) memset(cb, 0, (size_t)D * sizeof(float));
        for (int64_t n = k * BV_K_NORM_CHUNK_ROWS; n < BV_MIN(N, (k + 1) * BV_K_NORM_CHUNK_ROWS); n++) {
            const float *x = inp + n * D, *dy = dout + n * D;
            const float mu = mean[n], rs = rstd[n];
            if (dinp) {
                /* dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * w */
                double sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
                for (int64_t i = 0; i < D; i++) {
                    float xh = (x[i] - mu) * rs, g = dy[i] * weight[i];
                    sg += g;
                    sgx += (double)g * xh;
                }
                const float mg = (float)(sg / (double)D), mgx = (float)(sgx / (double)D);
                float *dx = dinp + n * D;
#pragma omp simd
                for (int64_t i = 0; i < D; i++) {
                    float xh = (x[i] - mu) * rs;
                    dx[i] += rs * (dy[i] * weight[i] - mg - xh * mgx);
                }
            }
            if (cw) {
#pragma omp simd
                for (int64_t i = 0; i < D; i++) cw[i] += dy[i] * ((x[i] - mu) * rs);
            }
            if (cb) {
#pragma omp simd
                for (int64_t i = 0; i < D; i++) cb[i] += dy[i];
            }
        }
    }
    if (pw) add_partials(dweight, pw, nch, D);
    if (pb) add_partials(dbias, pb, nch, D);
}

void bv_k_layernorm_fwd_ref(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                            const double *bias, int64_t N, int64_t D, double eps) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * D;
        double m = 0, v = 0;
        for (int64_t i = 0; i < D; i++) m += x[i];
        m /= (double)D;
        for (int64_t i = 0; i < D; i++) v += (x[i] - m) * (x[i] - m);
        v /= (double)D;
        double rs = 1.0 / sqrt(v + eps);
        mean[n] = m;
        rstd[n] = rs;
        for (int64_t i = 0; i < D; i++) out[n * D + i] = (x[i] - m) * rs * weight[i] + (bias ? bias[i] : 0.0);
    }
}

void bv_k_layernorm_bwd_ref(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, const double *mean, const double *rstd, int64_t N, int64_t D) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * D, *dy = dout + n * D;
        double sg = 0, sgx = 0;
        for (int64_t i = 0; i < D; i++) {
            double xh = (x[i] - mean[n]) * rstd[n];
            sg += dy[i] * weight[i];
            sgx += dy[i] * weight[i] * xh;
            if (dweight) dweight[i] += dy[i] * xh;
            if (dbias) dbias[i] += dy[i];
        }
        if (!dinp) continue;
        for (int64_t i = 0; i < D; i++) {
            double xh = (x[i] - mean[n]) * rstd[n];
            dinp[n * D + i] += rstd[n] * (dy[i] * weight[i] - sg / (double)D - xh * sgx / (double)D);
        }
    }
}

/* ---- rmsnorm ---- */

void bv_k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int64_t D,
                      double eps) {
#pragma omp parallel for schedule(static) if (N * D >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const float *x = inp + n * D;
        float *y = out + n * D;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < D; i++) s += (double)x[i] * x[i];
        float rs = (float)(1.0 / sqrt(s / (double)D + eps));
        rstd[n] = rs;
#pragma omp simd
        for (int64_t i = 0; i < D; i++) y[i] = weight[i] * (x[i] * rs);
    }
}

void bv_k_rmsnorm_bwd(float *dinp, float *dweight, float *scratch, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int64_t N, int64_t D) {
    int64_t nch = n_chunks(N);
    if (dweight)
        BV_ASSERT(scratch, "rmsnorm_bwd: weight gradients need %lld floats of scratch",
                  (long long)bv_k_norm_bwd_scratch(N, D));
    float *pw = dweight ? scratch : NULL;
#pragma omp parallel for schedule(static) if (N * D >= PAR_MIN)
    for (int64_t k = 0; k < nch; k++) {
        float *cw = pw ? pw + k * D : NULL;
        if (cw) memset(cw, 0, (size_t)D * sizeof(float));
        for (int64_t n = k * BV_K_NORM_CHUNK_ROWS; n < BV_MIN(N, (k + 1) * BV_K_NORM_CHUNK_ROWS); n++) {
            const float *x = inp + n * D, *dy = dout + n * D;
            const float rs = rstd[n];
            if (dinp) {
                /* dx = rstd * (g - xhat * mean(g * xhat)), g = dy * w, xhat = x * rstd */
                double sgx = 0;
#pragma omp simd reduction(+ : sgx)
                for (int64_t i = 0; i < D; i++) sgx += (double)(dy[i] * weight[i]) * (x[i] * rs);
                const float mgx = (float)(sgx / (double)D);
                float *dx = dinp + n * D;
#pragma omp simd
                for (int64_t i = 0; i < D; i++) dx[i] += rs * (dy[i] * weight[i] - (x[i] * rs) * mgx);
            }
            if (cw) {
#pragma omp simd
                for (int64_t i = 0; i < D; i++) cw[i] += dy[i] * (x[i] * rs);
            }
        }
    }
    if (pw) add_partials(dweight, pw, nch, D);
}

void bv_k_rmsnorm_fwd_ref(double *out, double *rstd, const double *inp, const double *weight, int64_t N, int64_t D,
                          double eps) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * D;
        double s = 0;
        for (int64_t i = 0; i < D; i++) s += x[i] * x[i];
        double rs = 1.0 / sqrt(s / (double)D + eps);
        rstd[n] = rs;
        for (int64_t i = 0; i < D; i++) out[n * D + i] = weight[i] * (x[i] * rs);
    }
}

void bv_k_rmsnorm_bwd_ref(double *dinp, double *dweight, const double *dout, const double *inp,
                          const double *weight, const double *rstd, int64_t N, int64_t D) {
    for (int64_t n = 0; n < N; n++) {
        const double *x = inp + n * D, *dy = dout + n * D;
        double sgx = 0;
        for (int64_t i = 0; i < D; i++) {
            sgx += dy[i] * weight[i] * x[i] * rstd[n];
            if (dweight) dweight[i] += dy[i] * x[i] * rstd[n];
        }
        if (!dinp) continue;
        for (int64_t i = 0; i < D; i++)
            dinp[n * D + i] += rstd[n] * (dy[i] * weight[i] - x[i] * rstd[n] * sgx / (double)D);
    }
}
