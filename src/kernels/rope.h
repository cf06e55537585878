/* kernels/rope.h - rotary position embedding, HF Llama/BitNet "rotate halves" (NeoX) layout.
 *
 * For head dim hd (even) and half = hd/2, frequency i < half: inv_freq[i] = theta^(-2i/hd) and
 * angle = pos * inv_freq[i]. With x1 = x[:half], x2 = x[half:] of one head row:
 *   out[:half] = x1*cos - x2*sin,  out[half:] = x2*cos + x1*sin
 * which is HF's x*cos + rotate_half(x)*sin with emb = cat(angle, angle), rotate_half(x) = cat(-x2, x1).
 * The fast fp32 kernels compute inv_freq, the angle, cos and sin in fp32 as PyTorch does (the fp32
 * angle of a large position carries a rounding error that HF has too); the _ref kernels do all of
 * it in double. Backward is the inverse rotation (cos, -sin) and accumulates (+=).
 *
 * Owns: nothing. Must not: allocate (cos/sin live on the stack, hd <= BV_ROPE_MAX_HD).
 * Positions: pos[b * pos_bstride + t]; pos_bstride = T for per-sequence positions (B, T), 0 for
 * one row of positions (T) shared by the batch.
 */
#ifndef BV_KERNELS_ROPE_H
#define BV_KERNELS_ROPE_H

#include <stdint.h>

#define BV_ROPE_MAX_HD 1024

// x (B, T, H, hd), pos (B, T) or (T) -> out (B, T, H, hd); out may equal x (in place)
void bv_k_rope_fwd(float *out, const float *x, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                   int64_t H, int64_t hd, double theta);
// dout (B, T, H, hd) -> dx (B, T, H, hd) += rotation by -angle of dout
void bv_k_rope_bwd(float *dx, const float *dout, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                   int64_t H, int64_t hd, double theta);
void bv_k_rope_fwd_ref(double *out, const double *x, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                       int64_t H, int64_t hd, double theta);
void bv_k_rope_bwd_ref(double *dx, const double *dout, const int64_t *pos, int64_t pos_bstride, int64_t B,
                       int64_t T, int64_t H, int64_t hd, double theta);

#endif
