/* kernels/attention.h - scaled-dot-product attention, blockwise (flash-attention style) on the
 * (B, T, H, hd) layout that linear projections produce, so no transposes are needed.
 *
 * Semantics (PyTorch: softmax(q k^T * scale + mask) v, per head):
 *  - grouped-query attention: query head h reads kv head h / (H / Hkv);
 *  - causal: query t sees keys s <= t + (S - T) (the queries are the last T of S positions);
 *  - key padding (B, S) u8: 1 = real key, 0 = padding, never attended;
 *  - a query row whose keys are all masked outputs 0 and passes 0 gradient (PyTorch gives NaN).
 *
 * Fast fp32 kernels: per (b, h, block of BV_SDPA_BLOCK queries) one (block, S) score tile made with
 * cblas_sgemm (leading dimensions H*hd and Hkv*hd), a row softmax, and the tile times V. The
 * forward saves only the output and the per-row log-sum-exp lse (B, H, T) (+inf for a fully
 * masked row). The backward recomputes each tile from q, k and lse: P = exp(S - lse),
 * dV += P^T dO, dP = dO V^T, dS = P * (dP - D) with D = rowsum(dO * O), dQ += scale dS K,
 * dK += scale dS^T Q. OpenMP over disjoint outputs: forward over (b, h, query block), backward
 * over (b, kv head, key chunk) (dK/dV rows of a chunk belong to one task; the dQ of key chunk c > 0
 * goes to its own partial buffer and the partials are summed in a fixed order). Each task's
 * arithmetic is independent of the thread count, so results are bitwise the same for any count.
 * Scratch comes from the caller (size from the _scratch functions); no allocation in here.
 * The _ref kernels are plain double loops over full score rows, for the F64 autograd path and as
 * the reference of the fast ones. Backward functions accumulate (+=) into non-NULL gradients.
 */
#ifndef BV_KERNELS_ATTENTION_H
#define BV_KERNELS_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BV_SDPA_BLOCK 128 /* query rows per tile */

typedef struct {
    int64_t B, T, S, H, Hkv, hd;
    bool causal;
    const uint8_t *key_padding; /* (B, S) or NULL */
    double scale;               /* resolved (never 0 here) */
} bv_sdpa_shape;

/* Floats of scratch the fast kernels need when run with `nthreads` OpenMP threads. */
size_t bv_k_sdpa_fwd_scratch(const bv_sdpa_shape *s, int nthreads);
size_t bv_k_sdpa_bwd_scratch(const bv_sdpa_shape *s, int nthreads);

// q (B, T, H, hd), k v (B, S, Hkv, hd) -> out (B, T, H, hd), lse (B, H, T)
// scratch: bv_k_sdpa_fwd_scratch(s, nthreads) floats; runs on at most nthreads threads
void bv_k_sdpa_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const bv_sdpa_shape *s,
                   float *scratch, int nthreads);
// dout, out (B, T, H, hd), lse (B, H, T) -> dq (B, T, H, hd) +=, dk dv (B, S, Hkv, hd) += (each may be NULL)
void bv_k_sdpa_bwd(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                   const float *v, const float *out, const float *lse, const bv_sdpa_shape *s, float *scratch,
                   int nthreads);

// q (B, T, H, hd), k v (B, S, Hkv, hd) -> out (B, T, H, hd)
void bv_k_sdpa_fwd_ref(double *out, const double *q, const double *k, const double *v, const bv_sdpa_shape *s);
// dout (B, T, H, hd) -> dq +=, dk dv += (each may be NULL); recomputes the scores
void bv_k_sdpa_bwd_ref(double *dq, double *dk, double *dv, const double *dout, const double *q, const double *k,
                       const double *v, const bv_sdpa_shape *s);

#endif
