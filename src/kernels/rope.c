#include "src/kernels/rope.h"

#include <math.h>

#include "src/common.h"

/* inv_freq[i] = 1 / theta^(2i/hd) in fp32, as HF computes it:
 * 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim)). The exponent is an fp32 division; the
 * power is evaluated in double and rounded once (the correctly rounded fp32 value, which PyTorch's
 * 1-ulp powf gives in all but rare cases), then the fp32 reciprocal. */
static void inv_freq_f32(float *inv, int64_t hd, double theta) {
    float th = (float)theta;
    for (int64_t i = 0; i < hd / 2; i++) {
        float e = (float)(2 * i) / (float)hd;
        float p = (float)pow((double)th, (double)e);
        inv[i] = 1.0f / p;
    }
}

/* One rotation kernel for both directions: sgn = +1 forward (out = R x), -1 backward (dx += R^T dout). */
static void rope_apply(float *out, const float *x, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                       int64_t H, int64_t hd, double theta, float sgn, int accumulate) {
    BV_ASSERT(hd % 2 == 0 && hd > 0 && hd <= BV_ROPE_MAX_HD, "rope: head dim %lld must be even and <= %d",
              (long long)hd, BV_ROPE_MAX_HD);
    const int64_t half = hd / 2;
    float inv[BV_ROPE_MAX_HD / 2];
    inv_freq_f32(inv, hd, theta);
#pragma omp parallel for schedule(static) if (B * T * H * hd > 16384)
    for (int64_t bt = 0; bt < B * T; bt++) {
        int64_t b = bt / T, t = bt % T;
        float c[BV_ROPE_MAX_HD / 2], s[BV_ROPE_MAX_HD / 2];
        float p = (float)pos[b * pos_bstride + t];
        for (int64_t i = 0; i < half; i++) {
            float a = p * inv[i]; /* fp32 product, as HF's fp32 matmul of inv_freq and positions */
            c[i] = cosf(a);
            s[i] = sgn * sinf(a);
        }
        for (int64_t h = 0; h < H; h++) {
            const float *xr = x + (bt * H + h) * hd;
            float *o = out + (bt * H + h) * hd;
            if (accumulate) {
                for (int64_t i = 0; i < half; i++) {
                    float x1 = xr[i], x2 = xr[i + half];
                    o[i] += x1 * c[i] - x2 * s[i];
                    o[i + half] += x2 * c[i] + x1 * s[i];
                }
            } else {
                for (int64_t i = 0; i < half; i++) {
                    float x1 = xr[i], x2 = xr[i + half];
                    o[i] = x1 * c[i] - x2 * s[i];
                    o[i + half] = x2 * c[i] + x1 * s[i];
                }
            }
        }
    }
}

void bv_k_rope_fwd(float *out, const float *x, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                   int64_t H, int64_t hd, double theta) {
    rope_apply(out, x, pos, pos_bstride, B, T, H, hd, theta, 1.0f, 0);
}

void bv_k_rope_bwd(float *dx, const float *dout, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                   int64_t H, int64_t hd, double theta) {
    rope_apply(dx, dout, pos, pos_bstride, B, T, H, hd, theta, -1.0f, 1);
}

void bv_k_rope_fwd_ref(double *out, const double *x, const int64_t *pos, int64_t pos_bstride, int64_t B, int64_t T,
                       int64_t H, int64_t hd, double theta) {
    BV_ASSERT(hd % 2 == 0 && hd > 0, "rope: head dim %lld must be even", (long long)hd);
    int64_t half = hd / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++) {
                const double *xr = x + ((b * T + t) * H + h) * hd;
                double *o = out + ((b * T + t) * H + h) * hd;
                for (int64_t i = 0; i < half; i++) {
                    double a = (double)pos[b * pos_bstride + t] * pow(theta, -2.0 * (double)i / (double)hd);
                    double x1 = xr[i], x2 = xr[i + half];
                    o[i] = x1 * cos(a) - x2 * sin(a);
                    o[i + half] = x2 * cos(a) + x1 * sin(a);
                }
            }
}

void bv_k_rope_bwd_ref(double *dx, const double *dout, const int64_t *pos, int64_t pos_bstride, int64_t B,
                       int64_t T, int64_t H, int64_t hd, double theta) {
    BV_ASSERT(hd % 2 == 0 && hd > 0, "rope: head dim %lld must be even", (long long)hd);
    int64_t half = hd / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++)
            for (int64_t h = 0; h < H; h++) {
                const double *g = dout + ((b * T + t) * H + h) * hd;
                double *d = dx + ((b * T + t) * H + h) * hd;
                for (int64_t i = 0; i < half; i++) {
                    double a = (double)pos[b * pos_bstride + t] * pow(theta, -2.0 * (double)i / (double)hd);
                    double g1 = g[i], g2 = g[i + half];
                    /* transpose of [[c, -s], [s, c]] */
                    d[i] += g1 * cos(a) + g2 * sin(a);
                    d[i + half] += g2 * cos(a) - g1 * sin(a);
                }
            }
}
