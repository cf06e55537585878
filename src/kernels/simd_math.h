/* kernels/simd_math.h - internal math helpers shared by the kernels (not public API).
 *
 * bv_expf_simd: exp(x) written without branches or library calls, so that a loop over it marked
 * `#pragma omp simd` is vectorised at -O2 (glibc's expf is a scalar call there, which keeps the
 * whole loop scalar). Cephes single-precision algorithm: x = n ln2 + r with a two-part ln2,
 * degree-6 polynomial for e^r, 2^n put into the exponent bits. Measured error <= 1.4 ulp over
 * [-87.3, 0] (tests/test_norm.c checks it against exp()).
 * Domain: x <= 88 (arguments here are x - max or x - logsumexp, always <= 0); x < -87.3365
 * (below the smallest normal result, including -inf) gives exactly 0; NaN gives NaN; x > 88
 * gives exp(88).
 * Must not: be used where denormal results matter.
 *
 * bv_f2i_bits_ / bv_i2f_bits_: the bits of a float as int32_t and back (memcpy, no aliasing UB),
 * for branch-free selects and the 1.5*2^23 rounding trick (also used by kernels/bitlinear.c).
 */
#ifndef BV_KERNELS_SIMD_MATH_H
#define BV_KERNELS_SIMD_MATH_H

#include <stdint.h>
#include <string.h>

static inline int32_t bv_f2i_bits_(float f) {
    int32_t i;
    memcpy(&i, &f, 4);
    return i;
}
static inline float bv_i2f_bits_(int32_t i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}

static inline float bv_expf_simd(float x) {
    const float lo = -87.33654475f, hi = 88.0f;
    /* clamps as bit selects: a ?: would be control flow, which -O2 does not if-convert */
    int32_t below = -(int32_t)(x < lo), above = -(int32_t)(x > hi);
    int32_t xi = bv_f2i_bits_(x);
    xi = (xi & ~below) | (bv_f2i_bits_(lo) & below);
    xi = (xi & ~above) | (bv_f2i_bits_(hi) & above);
    float xc = bv_i2f_bits_(xi);
    /* n = round(x / ln2) with the 1.5*2^23 trick (round to nearest even, no rintf call) */
    float t = xc * 1.44269504088896341f + 12582912.0f;
    /* exponent arithmetic in uint32_t: NaN inputs give junk bits here, which must not be UB */
    uint32_t n = (uint32_t)bv_f2i_bits_(t) - 0x4B400000u;
    float fn = t - 12582912.0f;
    float r = xc - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    float res = p * bv_i2f_bits_((int32_t)((n + 127u) << 23)); /* n in [-126, 127] after the clamps */
    return bv_i2f_bits_(bv_f2i_bits_(res) & ~below);
}

#endif
