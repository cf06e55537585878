/* kernels/ternary_gemm.h - the integer forward path of BitLinear: int8 activation codes times
 * ternary weight codes with exact int32 accumulation, and the fused dequantisation to fp32
 * (spec section 2: y = (int8 codes @ ternary codes^T) * (mean|W| / s_x) + bias).
 *
 * Owns: bv_ternary_mat, the compute layout of one ternary weight matrix (2 bits per weight; see
 * the layout note below), and the run-time choice of kernel (reference / AVX2 / AVX-512 VNNI).
 * Must not: quantize weights (the codes and scale come from the BitLinear quantizer), allocate in
 * the kernels, or depend on anything but common.h and cpu.h.
 *
 * Kernels. out (N, OC) = x (N, C) @ codes (OC, C)^T in int32, exact (no saturation anywhere):
 *  - ref:        portable scalar loops over the packed matrix (also the fallback off x86);
 *  - avx2:       _mm256_maddubs_epi16 + _mm256_madd_epi16 (needs AVX2 and FMA);
 *  - avx512vnni: _mm512_dpbusd_epi32, register-blocked 6 rows x 64 output channels, and a
 *                one-row variant for GEMV that reads four weight streams at once (needs AVX-512 F,
 *                BW and VNNI).
 * All give bit-identical results, int32 and fused fp32, for any thread count. The default is the
 * best one the CPU supports; the environment variable BV_TERNARY_KERNEL=ref|avx2|avx512vnni
 * overrides it (read once, at the first call). Threads: OpenMP over groups of 64 output channels
 * (disjoint outputs).
 *
 * The unsigned-times-signed trick: both SIMD instructions multiply unsigned bytes by signed bytes.
 * The packed codes are stored as u = w + 1 in {0, 1, 2} (the encoding of HF BitNet and bitnet.cpp
 * I2_S) and used as the unsigned operand with the raw int8 activations as the signed one, so
 *   sum_c w*x = sum_c u*x - sum_c x,
 * and the correction is one row sum of x per activation row. maddubs cannot saturate: a pair sum
 * lies in [2*(-128)*2, 2*127*2] = [-512, 508].
 *
 * Layout of bv_ternary_mat.packed (OCp = OC rounded up to 64, Cp = C rounded up to 16):
 *   groups of 64 output channels (og), each a run of Cp/16 blocks of 256 bytes, one per 16 input
 *   channels (kb); a block is 4 chunks of 64 bytes (b = 0..3, output channels og*64 + b*16 + j,
 *   j = 0..15); byte 4*j + i of a chunk holds, in bits 2t..2t+1, u = w + 1 of
 *     w[og*64 + b*16 + j][kb*16 + 4*t + i]     (t, i = 0..3).
 *   So (chunk >> 2t) & 3 is one 512-bit VNNI operand: 16 output channels x 4 consecutive inputs.
 *   Padding (oc >= OC or c >= C) holds w = 0. Bytes: OCp * Cp / 4.
 */
#ifndef BV_KERNELS_TERNARY_GEMM_H
#define BV_KERNELS_TERNARY_GEMM_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

typedef struct {
    int64_t OC, C;   /* logical shape (out_features, in_features) */
    int64_t OCp, Cp; /* padded: OCp multiple of 64, Cp multiple of 16 */
    uint8_t *packed; /* OCp * Cp / 4 bytes, 64-byte aligned (layout above); owned */
    float scale;     /* s_w = 1 / max(mean|W|, 1e-5): weight = code / s_w. The divisor, as in
                      * bv_qweight.scale; the storage formats of ternary_pack.h keep 1 / s_w */
} bv_ternary_mat;

/* codes (OC, C) in {-1, 0, 1}, scale s_w -> m (initialised; free with bv_ternary_mat_free).
 * Returns BV_ERR_ARG (message names the offending code and its position) on a code outside
 * {-1, 0, 1} or C > 2^18 (int32 accumulators could overflow beyond); m is then left empty. */
bv_status bv_ternary_mat_pack(bv_ternary_mat *m, const int8_t *codes, int64_t OC, int64_t C, float scale);
void bv_ternary_mat_free(bv_ternary_mat *m);
/* m -> codes (OC, C) in {-1, 0, 1}: the inverse of pack */
void bv_ternary_mat_unpack(const bv_ternary_mat *m, int8_t *codes);
/* bytes of packed weights a forward pass reads */
int64_t bv_ternary_mat_bytes(const bv_ternary_mat *m);

typedef enum {
    BV_TERNARY_KERNEL_REF = 0,
    BV_TERNARY_KERNEL_AVX2 = 1,
    BV_TERNARY_KERNEL_AVX512VNNI = 2,
    BV_TERNARY_KERNEL_COUNT
} bv_ternary_kernel;

const char *bv_ternary_kernel_name(bv_ternary_kernel k); /* "ref", "avx2", "avx512vnni" */
bool bv_ternary_kernel_supported(bv_ternary_kernel k);   /* by this CPU */
/* name -> kernel; BV_ERR_ARG with a message naming the value and the choices if unknown */
bv_status bv_ternary_kernel_parse(const char *name, bv_ternary_kernel *out);
/* The kernel BV_TERNARY_KERNEL asks for, or the best supported one if it is unset. If the value is
 * unknown or the CPU lacks the instructions, prints a message naming the variable, the value and
 * why to stderr, and returns the best supported kernel. Reads the environment on every call. */
bv_ternary_kernel bv_ternary_kernel_from_env(void);
/* The kernel the unsuffixed entry points use: bv_ternary_kernel_from_env() at the first call. */
bv_ternary_kernel bv_ternary_kernel_active(void);
const char *bv_ternary_kernel_active_name(void);

/* x (N, C) int8, w (OC, C) ternary -> out (N, OC) int32 = x @ codes^T (exact) */
void bv_k_ternary_gemm_fwd(int32_t *out, const int8_t *x, const bv_ternary_mat *w, int64_t N);
/* x (N, C) int8, s_x (N), w (OC, C), bias (OC) or NULL ->
 * y (N, OC) = fmaf((float)(x @ codes^T), 1 / (s_x[n] * s_w), bias[oc])
 * which is the fp32 fake-quant forward (x_codes / s_x) @ (w_codes / s_w)^T + b to float rounding. */
void bv_k_ternary_linear_fwd(float *y, const int8_t *x, const float *s_x, const bv_ternary_mat *w,
                             const float *bias, int64_t N);
/* the same with an explicit kernel (tests, benchmarks); k must be supported */
void bv_k_ternary_gemm_fwd_with(bv_ternary_kernel k, int32_t *out, const int8_t *x, const bv_ternary_mat *w,
                                int64_t N);
void bv_k_ternary_linear_fwd_with(bv_ternary_kernel k, float *y, const int8_t *x, const float *s_x,
                                  const bv_ternary_mat *w, const float *bias, int64_t N);

/* Plain single-threaded references on unpacked codes, written for clarity.
 * x (N, C) int8, codes (OC, C) in {-1, 0, 1} -> out (N, OC) = x @ codes^T */
void bv_k_ternary_gemm_fwd_ref(int32_t *out, const int8_t *x, const int8_t *codes, int64_t N, int64_t C,
                               int64_t OC);
/* -> y (N, OC) = sum_c (x[n,c] / s_x[n]) * (codes[oc,c] / s_w) + bias[oc], in double */
void bv_k_ternary_linear_fwd_ref(double *y, const int8_t *x, const float *s_x, const int8_t *codes, float s_w,
                                 const float *bias, int64_t N, int64_t C, int64_t OC);

/* Activations are quantized by bv_k_quant_act_fwd (kernels/bitlinear.h): codes (N, C) and the per-row
 * scales s_x (N) this path takes, bit-identical to PyTorch's BitLinear. */

#endif
