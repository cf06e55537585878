/* kernels/norm.h - normalisations over the last dimension: softmax, LayerNorm, RMSNorm.
 *
 * Every kernel sees its input as N rows of D (N = product of the leading dims).
 * Fast versions: fp32 data, row statistics accumulated in double, OpenMP over rows (each thread
 * writes whole rows), inner loops marked `omp simd` so -O2 vectorises them. Weight and bias
 * gradients are column sums over rows: each fixed chunk of BV_K_NORM_CHUNK_ROWS rows writes its
 * own partial sums into caller-provided scratch, and the partials are then added in chunk order,
 * so every result is bit-identical for any thread count (no atomics).
 * _ref versions: plain single-threaded double loops, the reference for the fast ones and the
 * kernels of the F64 autograd path.
 * Backward functions accumulate (+=) into every gradient pointer that is not NULL.
 *
 * Definitions (PyTorch / HF):
 *   softmax:   out = exp(x - max) / sum exp(x - max)
 *   layernorm: out = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps), var biased (/D)
 *   rmsnorm:   out = x * rstd * w, rstd = 1 / sqrt(mean(x^2) + eps)   (HF Llama/BitNet, fp32)
 *
 * Owns: nothing. Must not: allocate (scratch comes from the caller), or give results that
 * depend on the number of threads.
 */
#ifndef BV_KERNELS_NORM_H
#define BV_KERNELS_NORM_H

#include <stdint.h>

/* Rows per chunk of the weight/bias-gradient partial sums (fixed: determinism). */
#define BV_K_NORM_CHUNK_ROWS 16

/* ---- softmax ---- */
/* inp (N, D) -> out (N, D) */
void bv_k_softmax_fwd(float *out, const float *inp, int64_t N, int64_t D);
/* out (N, D) (the forward's output), dout (N, D) -> dinp (N, D) += out * (dout - sum_d dout * out) */
void bv_k_softmax_bwd(float *dinp, const float *dout, const float *out, int64_t N, int64_t D);
void bv_k_softmax_fwd_ref(double *out, const double *inp, int64_t N, int64_t D);
void bv_k_softmax_bwd_ref(double *dinp, const double *dout, const double *out, int64_t N, int64_t D);

/* Floats of scratch that bv_k_layernorm_bwd / bv_k_rmsnorm_bwd need when dweight or dbias is not
 * NULL (2 partial rows of D per chunk of BV_K_NORM_CHUNK_ROWS rows); none otherwise. */
int64_t bv_k_norm_bwd_scratch(int64_t N, int64_t D);

/* ---- layernorm ---- */
/* inp (N, D), weight (D), bias (D) or NULL -> out (N, D), mean (N), rstd (N) */
void bv_k_layernorm_fwd(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                        const float *bias, int64_t N, int64_t D, double eps);
/* dout (N, D), inp (N, D), weight (D), mean (N), rstd (N) ->
 * dinp (N, D) +=, dweight (D) +=, dbias (D) += (any may be NULL; scratch: bv_k_norm_bwd_scratch floats) */
void bv_k_layernorm_bwd(float *dinp, float *dweight, float *dbias, float *scratch, const float *dout,
                        const float *inp, const float *weight, const float *mean, const float *rstd, int64_t N,
                        int64_t D);
void bv_k_layernorm_fwd_ref(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                            const double *bias, int64_t N, int64_t D, double eps);
void bv_k_layernorm_bwd_ref(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, const double *mean, const double *rstd, int64_t N, int64_t D);

/* ---- rmsnorm ---- */
/* inp (N, D), weight (D) -> out (N, D), rstd (N) */
void bv_k_rmsnorm_fwd(float *out, float *rstd, const float *inp, const float *weight, int64_t N, int64_t D,
                      double eps);
/* dout (N, D), inp (N, D), weight (D), rstd (N) -> dinp (N, D) +=, dweight (D) += (either may be
 * NULL; scratch: bv_k_norm_bwd_scratch floats) */
void bv_k_rmsnorm_bwd(float *dinp, float *dweight, float *scratch, const float *dout, const float *inp,
                      const float *weight, const float *rstd, int64_t N, int64_t D);
void bv_k_rmsnorm_fwd_ref(double *out, double *rstd, const double *inp, const double *weight, int64_t N, int64_t D,
                          double eps);
void bv_k_rmsnorm_bwd_ref(double *dinp, double *dweight, const double *dout, const double *inp,
                          const double *weight, const double *rstd, int64_t N, int64_t D);

#endif
