/* kernels/bitlinear.h - the BitLinear quantizers (BitNet b1.58 / BitVLA, spec section 2).
 *
 * What it is for: quantization-aware training of ternary-weight, int8-activation linear layers.
 *   weights, per tensor (absmean):   m = max(mean|W|, 1e-5), s = 1/m,
 *                                    code = clamp(round(W*s), -1, 1), Wq = code / s
 *   activations, per row (absmax):   m = max(max|x|, 1e-5) over the last dim, s = 127/m,
 *                                    code = clamp(round(x*s), -128, 127), xq = code / s
 * The BitLinear forward is then y = xq @ Wq^T + b (bv_k_linear_fwd on xq and Wq) and its backward,
 * a straight-through estimator for both quantizers, is bv_k_linear_bwd on (xq, Wq):
 * dx += dy @ Wq, dW += dy^T @ xq, db += sum dy. So this family has forward kernels only.
 *
 * Exact arithmetic of the fast (fp32) kernels, chosen to be bit-identical to PyTorch evaluating
 * the reference formulas (bench/peer/torch_peer.py, bitvla-repo) on fp32 tensors:
 * - round is round-half-to-even (torch.round), with the sign of zero kept (round(-0.3) = -0.0).
 * - `a / t` with a Python number a and a tensor t is t.reciprocal() * a in PyTorch, so
 *   s = fl(fl(1/m) * 127) for activations (two roundings; not fl(127/m)) and s = fl(1/m) for
 *   weights. code / s is a true fp32 division (for ternary codes it equals code * fl(1/s)).
 * - m is compared with the fp32 constant 1e-5f (torch's clamp converts its bound to the dtype).
 * - mean|W|: PyTorch's own fp32 sum has a vector-width and thread-count dependent order, so its
 *   last bit is not reproducible. Ours is defined as fl32(S / n) with S the sum of |W| accumulated
 *   in double (relative error <= n * 2^-53, far below fp32's 2^-24), divided by n in double: the
 *   value of `w.abs().double().mean().float()` whenever the two double sums round the same way to
 *   fp32. When every partial sum of |W| is exact in fp32 (e.g. multiples of 2^-10 of modest size),
 *   PyTorch's fp32 w.abs().mean() is fl32(S / n) too (double rounding is innocuous for a quotient
 *   of two floats computed in double), so ours is bit-identical to it.
 *   The double sum runs over a fixed number of blocks (each with 8 interleaved accumulators) whose
 *   partials are added in order, so it does not depend on the thread count or the vector ISA.
 * The _ref kernels evaluate the same formulas (same reciprocal-then-multiply, same clamps) in double
 * for the F64 autograd path.
 *
 * Owns: nothing (a call counter of the fast weight quantizer for tests and benchmarks).
 * Must not: allocate (no scratch needed), or depend on autograd.
 */
#ifndef BV_KERNELS_BITLINEAR_H
#define BV_KERNELS_BITLINEAR_H

#include <stdint.h>

/* The clamp applied to mean|W| and max|x| before taking reciprocals. */
#define BV_BITLINEAR_EPS 1e-5f

/* mean|w| as defined above: w (n) -> fl32(sum_double |w_i| / n); n == 0 gives 0. */
float bv_k_absmean(const float *w, int64_t n);

/* w (n) -> codes (n) in {-1, 0, 1} [may be NULL], wq (n) = codes / s [may be NULL]; returns s.
 * One parallel reduction for mean|w|, then one parallel sweep writing codes and wq together. */
float bv_k_quant_weight_fwd(int8_t *codes, float *wq, const float *w, int64_t n);
/* The same formulas in double: w (n) -> codes (n) [may be NULL], wq (n) [may be NULL]; returns s. */
double bv_k_quant_weight_fwd_ref(int8_t *codes, double *wq, const double *w, int64_t n);
/* Number of bv_k_quant_weight_fwd calls since the program started (tests count re-quantizations). */
uint64_t bv_k_quant_weight_calls(void);

/* x (N, C) -> xq (N, C) = codes / s [may be NULL], codes (N, C) int8 [may be NULL],
 * scale (N) = s per row [may be NULL]. Rows in parallel; each row is read for its absmax and then
 * quantized while it is still in cache. The integer path uses codes and scale:
 * y = (codes_x @ codes_w^T) / (s_x * s_w) + b up to float rounding. */
void bv_k_quant_act_fwd(float *xq, int8_t *codes, float *scale, const float *x, int64_t N, int64_t C);
void bv_k_quant_act_fwd_ref(double *xq, int8_t *codes, double *scale, const double *x, int64_t N, int64_t C);

#endif
