/* kernels/matmul.h - GEMM-based kernels: linear layers and (batched, strided) matmul.
 *
 * Fast versions are fp32 and go through cblas_sgemm (OpenBLAS, OpenMP build). The _ref versions
 * are plain double-precision loops: the reference the fast ones are tested against and the kernels
 * the F64 autograd path (gradient checks) runs.
 * Backward functions accumulate (+=) into every gradient pointer that is not NULL.
 */
#ifndef BV_KERNELS_MATMUL_H
#define BV_KERNELS_MATMUL_H

#include <stdbool.h>
#include <stdint.h>

/* out (N, OC) = inp (N, C) @ w (OC, C)^T + bias (OC) [bias may be NULL] */
void bv_k_linear_fwd(float *out, const float *inp, const float *w, const float *bias, int64_t N, int64_t C,
                     int64_t OC);
/* dinp (N, C) += dout @ w; dw (OC, C) += dout^T @ inp; dbias (OC) += sum_n dout[n] */
void bv_k_linear_bwd(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int64_t N, int64_t C, int64_t OC);
void bv_k_linear_fwd_ref(double *out, const double *inp, const double *w, const double *bias, int64_t N,
                         int64_t C, int64_t OC);
void bv_k_linear_bwd_ref(double *dinp, double *dw, double *dbias, const double *dout, const double *inp,
                         const double *w, int64_t N, int64_t C, int64_t OC);

/* Batched strided GEMM: for each batch i < nb,
 *   c_i (M, N) = alpha * op(a_i) @ op(b_i) + beta * c_i
 * with op(a_i) (M, K) stored as (M, K) row-major (lda = K) or, if ta, as (K, M) (lda = M), and
 * op(b_i) (K, N) stored as (K, N) (ldb = N) or, if tb, as (N, K) (ldb = K).
 * a_i = a + i*sa, b_i = b + i*sb, c_i = c + i*sc (sb = 0 shares b across the batch). */
typedef struct {
    int64_t nb, M, N, K;
    bool ta, tb;
    int64_t sa, sb, sc;
} bv_gemm_shape;
void bv_k_gemm_batched(float *c, const float *a, const float *b, const bv_gemm_shape *s, float alpha, float beta);
void bv_k_gemm_batched_ref(double *c, const double *a, const double *b, const bv_gemm_shape *s, double alpha,
                           double beta);
/* Backward of c = op(a) @ op(b) (alpha 1): da += ..., db += ... (either may be NULL). When sb == 0
 * the batch shares b and db sums over the batch. */
void bv_k_gemm_batched_bwd(float *da, float *db, const float *dc, const float *a, const float *b,
                           const bv_gemm_shape *s);
void bv_k_gemm_batched_bwd_ref(double *da, double *db, const double *dc, const double *a, const double *b,
                               const bv_gemm_shape *s);

/* dst (C) += sum over rows of src (N, C); OpenMP over columns. */
void bv_k_sum_rows(float *dst, const float *src, int64_t N, int64_t C);

#endif
