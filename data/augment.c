/* augment.c - crop-and-resize (Pillow's bicubic), TensorFlow-style colour jitter, SigLIP
 * normalisation. See augment.h for the semantics and their sources. */
#include "data/augment.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

void bv_aug_cfg_default(bv_aug_cfg *c) {
    *c = (bv_aug_cfg){.crop_scale = 0.9,
                      .crop_ratio = 1.0,
                      .brightness = 0.2,
                      .contrast_lo = 0.8,
                      .contrast_hi = 1.2,
                      .saturation_lo = 0.8,
                      .saturation_hi = 1.2,
                      .hue = 0.05};
}

bv_status bv_aug_cfg_check(const bv_aug_cfg *c) {
    if (!(c->crop_scale > 0 && c->crop_scale <= 1))
        return bv_error_set(BV_ERR_ARG, "augmentation: crop_scale must be in (0, 1], got %g", c->crop_scale);
    if (!(c->crop_ratio > 0 && isfinite(c->crop_ratio)))
        return bv_error_set(BV_ERR_ARG, "augmentation: crop_ratio must be > 0, got %g", c->crop_ratio);
    if (!(c->brightness >= 0 && c->brightness <= 1))
        return bv_error_set(BV_ERR_ARG, "augmentation: brightness must be in [0, 1], got %g", c->brightness);
    if (!(c->contrast_lo >= 0 && c->contrast_lo <= c->contrast_hi && isfinite(c->contrast_hi)))
        return bv_error_set(BV_ERR_ARG, "augmentation: contrast range must satisfy 0 <= lo <= hi, got [%g, %g]",
                            c->contrast_lo, c->contrast_hi);
    if (!(c->saturation_lo >= 0 && c->saturation_lo <= c->saturation_hi && isfinite(c->saturation_hi)))
        return bv_error_set(BV_ERR_ARG, "augmentation: saturation range must satisfy 0 <= lo <= hi, got [%g, %g]",
                            c->saturation_lo, c->saturation_hi);
    if (!(c->hue >= 0 && c->hue <= 0.5))
        return bv_error_set(BV_ERR_ARG, "augmentation: hue must be in [0, 0.5], got %g", c->hue);
    return BV_OK;
}

/* ---- random draws ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint64_t bv_aug_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d) {
    uint64_t s = 0x6a09e667f3bcc909ull, k;
    s ^= a, k = splitmix64(&s);
    s = k ^ b, k = splitmix64(&s);
    s = k ^ c, k = splitmix64(&s);
    s = k ^ d, k = splitmix64(&s);
    return k;
}

static double uniform(uint64_t *s) { return (double)(splitmix64(s) >> 11) * 0x1.0p-53; } /* [0, 1) */

static void crop_box(const bv_aug_cfg *c, double *w, double *h) {
    *w = fmin(1.0, sqrt(c->crop_scale * c->crop_ratio));
    *h = fmin(1.0, sqrt(c->crop_scale / c->crop_ratio));
}

void bv_aug_draw(const bv_aug_cfg *c, uint64_t key, bv_aug_params *p) {
    uint64_t s = key;
    memset(p, 0, sizeof *p);
    crop_box(c, &p->w, &p->h);
    /* independent offsets (dlimp draws both from one seed, so its crops lie on the diagonal) */
    p->x0 = uniform(&s) * (1.0 - p->w);
    p->y0 = uniform(&s) * (1.0 - p->h);
    p->jitter = true;
    p->brightness = (float)((2.0 * uniform(&s) - 1.0) * c->brightness);
    p->contrast = (float)(c->contrast_lo + uniform(&s) * (c->contrast_hi - c->contrast_lo));
    p->saturation = (float)(c->saturation_lo + uniform(&s) * (c->saturation_hi - c->saturation_lo));
    p->hue = (float)((2.0 * uniform(&s) - 1.0) * c->hue);
}

void bv_aug_center(const bv_aug_cfg *c, bv_aug_params *p) {
    memset(p, 0, sizeof *p);
    crop_box(c, &p->w, &p->h);
    p->x0 = 0.5 * (1.0 - p->w);
    p->y0 = 0.5 * (1.0 - p->h);
    p->contrast = p->saturation = 1.0f;
}

void bv_aug_scratch_free(bv_aug_scratch *s) {
    free(s->tmp);
    free(s->kx);
    free(s->ky);
    free(s->bx);
    free(s->by);
    memset(s, 0, sizeof *s);
}

static void *grow(void *p, size_t *cap, size_t need) {
    if (need <= *cap) return p;
    free(p);
    *cap = need + need / 4;
    return bv_xmalloc(*cap);
}

/* GCC clones the hot loops for AVX2 and picks at run time (results do not depend on the choice:
 * no FMA contraction, no reassociation). */
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define BV_AUG_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define BV_AUG_CLONES
#endif

/* ---- Pillow's bicubic resampling (libImaging/Resample.c) ---- */

static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Taps of `out` outputs over input [in0, in1) of an axis of `in` samples (precompute_coeffs):
 * output i reads inputs first[i] .. first[i] + ksize - 1 with weights k[i * ksize + j]
 * (normalised to sum 1, times `gain`; zero past the taps Pillow uses, which stop at the image
 * edge). Returns ksize. */
static int coeffs(int in, double in0_d, double in1_d, int out, double gain, float **k, size_t *kcap, int **first,
                  size_t *fcap) {
    /* Pillow passes the box as C floats and subtracts them in float; doing the same keeps the
     * sample positions identical to its (they move by up to ~1e-5 pixel otherwise) */
    float in0 = (float)in0_d, in1 = (float)in1_d;
    double scale = (double)(in1 - in0) / out, fscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    *k = grow(*k, kcap, (size_t)out * ksize * sizeof **k);
    *first = grow(*first, fcap, (size_t)out * sizeof **first);
    for (int i = 0; i < out; i++) {
        double center = in0 + (i + 0.5) * scale, ss = 1.0 / fscale, ww = 0.0;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) ww += bicubic((x + xmin - center + 0.5) * ss);
        float *kk = *k + (size_t)i * ksize;
        for (int x = 0; x < ksize; x++)
            kk[x] = x < xmax && ww != 0.0 ? (float)(bicubic((x + xmin - center + 0.5) * ss) / ww * gain) : 0.0f;
        (*first)[i] = xmin;
    }
    return ksize;
}

/* dst[x] = sum_j k[j] * src[j * stride + x] for x < n, j < taps (the rows a filter reads) */
BV_AUG_CLONES static void vpass(const float *src, size_t stride, const float *k, int taps, int64_t n, float *dst) {
    float k0 = k[0];
#pragma omp simd
    for (int64_t x = 0; x < n; x++) dst[x] = k0 * src[x];
    for (int j = 1; j < taps; j++) {
        float kj = k[j];
        if (kj == 0.0f) continue;
        const float *sj = src + (size_t)j * stride;
#pragma omp simd
        for (int64_t x = 0; x < n; x++) dst[x] += kj * sj[x];
    }
}

/* dst (cols, rows) = src (rows, cols) transposed, in 16 x 16 blocks */
static void transpose(const float *src, int rows, int cols, float *dst) {
    for (int i0 = 0; i0 < rows; i0 += 16)
        for (int j0 = 0; j0 < cols; j0 += 16)
            for (int i = i0; i < BV_MIN(rows, i0 + 16); i++)
                for (int j = j0; j < BV_MIN(cols, j0 + 16); j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

/* Both passes run as row passes vectorised along the image (the horizontal one on the transposed
 * image): vertical first, then horizontal. Pillow runs horizontal first; the filter is separable,
 * so the order changes only float rounding (about 1e-7 of values in [0, 1]). */
void bv_aug_resize_bicubic(const uint8_t *rgb, int w, int h, double bx0, double by0, double bx1, double by1, int ow,
                           int oh, float *out, bv_aug_scratch *s) {
    BV_ASSERT(w > 0 && h > 0 && ow > 0 && oh > 0, "sizes %dx%d -> %dx%d", w, h, ow, oh);
    BV_ASSERT(bx0 >= 0 && bx0 < bx1 && bx1 <= w && by0 >= 0 && by0 < by1 && by1 <= h,
              "box (%g, %g, %g, %g) outside a %dx%d image", bx0, by0, bx1, by1, w, h);
    int kxs = coeffs(w, bx0, bx1, ow, 1.0 / 255.0, &s->kx, &s->kx_cap, &s->bx, &s->bx_cap);
    int kys = coeffs(h, by0, by1, oh, 1.0, &s->ky, &s->ky_cap, &s->by, &s->by_cap);
    /* the input rows and columns the filters read (first taps are nondecreasing) */
    int r0 = s->by[0], r1 = BV_MIN(h, s->by[oh - 1] + kys), c0 = s->bx[0], c1 = BV_MIN(w, s->bx[ow - 1] + kxs);
    int rows = r1 - r0, cols = c1 - c0;
    size_t n_in = (size_t)rows * cols, n_v = (size_t)oh * cols, n_h = (size_t)ow * oh;
    s->tmp = grow(s->tmp, &s->tmp_cap, (n_in + 2 * n_v + n_h) * sizeof(float));
    float *in = s->tmp, *v = in + n_in, *vt = v + n_v, *ht = vt + n_v;
    for (int c = 0; c < 3; c++) {
        /* channel c of the rows and columns used, as floats (rows, cols) */
        for (int y = 0; y < rows; y++) {
            const uint8_t *src = rgb + ((size_t)(r0 + y) * w + c0) * 3 + c;
            float *d = in + (size_t)y * cols;
            for (int x = 0; x < cols; x++) d[x] = src[3 * x];
        }
        /* vertical: (oh, cols) */
        for (int i = 0; i < oh; i++)
            vpass(in + (size_t)(s->by[i] - r0) * cols, (size_t)cols, s->ky + (size_t)i * kys,
                  BV_MIN(kys, r1 - s->by[i]), cols, v + (size_t)i * cols);
        /* horizontal, on the transpose: (cols, oh) -> (ow, oh) */
        transpose(v, oh, cols, vt);
        for (int i = 0; i < ow; i++)
            vpass(vt + (size_t)(s->bx[i] - c0) * oh, (size_t)oh, s->kx + (size_t)i * kxs, BV_MIN(kxs, c1 - s->bx[i]),
                  oh, ht + (size_t)i * oh);
        transpose(ht, ow, oh, out + (size_t)c * oh * ow);
    }
}

/* ---- colour (TensorFlow's adjust_* ops on float images, then dlimp's clip) ---- */

static inline float clip01(float v) { return v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v); }
/* fmaxf / fminf are library calls at -O2 (NaN rules); these compile to max/min instructions */
static inline float max2(float a, float b) { return a > b ? a : b; }
static inline float min2(float a, float b) { return a < b ? a : b; }

BV_AUG_CLONES void bv_aug_clip01(float *x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < 3 * n; i++) x[i] = clip01(x[i]);
}

BV_AUG_CLONES void bv_aug_brightness(float *x, int64_t n, float delta) {
#pragma omp simd
    for (int64_t i = 0; i < 3 * n; i++) x[i] = clip01(x[i] + delta);
}

BV_AUG_CLONES void bv_aug_contrast(float *x, int64_t n, float factor) {
    for (int c = 0; c < 3; c++) {
        float *p = x + (size_t)c * n;
        double m = 0.0;
        for (int64_t i = 0; i < n; i++) m += p[i];
        float mf = n ? (float)(m / (double)n) : 0.0f;
#pragma omp simd
        for (int64_t i = 0; i < n; i++) p[i] = clip01((p[i] - mf) * factor + mf);
    }
}

/* HSV with TensorFlow's definitions (adjust_saturation_op.cc, adjust_hue_op.cc): v = max,
 * chroma = max - min, hue in [0, 6) = the standard sector formula (TF's min/mid/max form is the
 * same function). Saturation s = chroma / v scaled by f and clipped to 1 gives chroma
 * min(v, chroma * f); the hue moves by 6 * delta, wrapped. Back to RGB, branch-free:
 * channel = v - chroma * clamp(min(k, 4 - k), 0, 1), k = (n + h) mod 6 with n = 5, 3, 1 for
 * r, g, b. Greys (chroma 0) stay as they are (their hue terms are 0 / tiny = 0).
 * GCC does not vectorise this loop at -O2 (it will not if-convert the selects under
 * -ftrapping-math), so x86 gets the same operations in SSE2 intrinsics; the scalar code does them
 * in the same order (no FMA), so every pixel gets the same bits either way. */
static inline void hsv_pixel(float *pr, float *pg, float *pb, float factor, float dh) {
    float r = *pr, g = *pg, b = *pb;
    float v = max2(r, max2(g, b)), mn = min2(r, min2(g, b)), ch = v - mn;
    float inv = 1.0f / max2(ch, 1e-30f);
    float hr = (g - b) * inv, hg = 2.0f + (b - r) * inv, hb = 4.0f + (r - g) * inv;
    float h = v == r ? hr : (v == g ? hg : hb);
    h += dh;
    h = h < 0.0f ? h + 6.0f : h;
    h = h >= 6.0f ? h - 6.0f : h;
    float c2 = min2(v, ch * factor);
    float kr = h + 5.0f, kg = h + 3.0f, kb = h + 1.0f;
    kr = kr >= 6.0f ? kr - 6.0f : kr;
    kg = kg >= 6.0f ? kg - 6.0f : kg;
    kb = kb >= 6.0f ? kb - 6.0f : kb;
    *pr = clip01(v - c2 * clip01(min2(kr, 4.0f - kr)));
    *pg = clip01(v - c2 * clip01(min2(kg, 4.0f - kg)));
    *pb = clip01(v - c2 * clip01(min2(kb, 4.0f - kb)));
}

#ifdef __SSE2__
static inline __m128 sel(__m128 m, __m128 a, __m128 b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
static inline __m128 clip01_4(__m128 x) { return _mm_min_ps(_mm_max_ps(x, _mm_setzero_ps()), _mm_set1_ps(1.0f)); }
static inline __m128 wrap6(__m128 k, __m128 six) { return sel(_mm_cmpge_ps(k, six), _mm_sub_ps(k, six), k); }
#endif

void bv_aug_saturation_hue(float *x, int64_t n, float factor, float delta) {
    float *R = x, *G = x + n, *B = x + 2 * n;
    const float dh = 6.0f * (delta - floorf(delta)); /* a turn in [0, 1): h + dh in [-1, 11) */
    int64_t i = 0;
#ifdef __SSE2__
    const __m128 zero = _mm_setzero_ps(), one = _mm_set1_ps(1.0f), two = _mm_set1_ps(2.0f), four = _mm_set1_ps(4.0f),
                 six = _mm_set1_ps(6.0f), tiny = _mm_set1_ps(1e-30f), f4 = _mm_set1_ps(factor), d4 = _mm_set1_ps(dh);
    for (; i + 4 <= n; i += 4) {
        __m128 r = _mm_loadu_ps(R + i), g = _mm_loadu_ps(G + i), b = _mm_loadu_ps(B + i);
        /* same operand order as max2(r, max2(g, b)): _mm_max_ps(a, b) is a > b ? a : b */
        __m128 v = _mm_max_ps(r, _mm_max_ps(g, b)), mn = _mm_min_ps(r, _mm_min_ps(g, b)), ch = _mm_sub_ps(v, mn);
        __m128 inv = _mm_div_ps(one, _mm_max_ps(ch, tiny));
        __m128 hr = _mm_mul_ps(_mm_sub_ps(g, b), inv), hg = _mm_add_ps(two, _mm_mul_ps(_mm_sub_ps(b, r), inv)),
               hb = _mm_add_ps(four, _mm_mul_ps(_mm_sub_ps(r, g), inv));
        __m128 h = sel(_mm_cmpeq_ps(v, r), hr, sel(_mm_cmpeq_ps(v, g), hg, hb));
        h = _mm_add_ps(h, d4);
        h = sel(_mm_cmplt_ps(h, zero), _mm_add_ps(h, six), h);
        h = wrap6(h, six);
        __m128 c2 = _mm_min_ps(v, _mm_mul_ps(ch, f4));
        __m128 kr = wrap6(_mm_add_ps(h, _mm_set1_ps(5.0f)), six), kg = wrap6(_mm_add_ps(h, _mm_set1_ps(3.0f)), six),
               kb = wrap6(_mm_add_ps(h, one), six);
        __m128 tr = clip01_4(_mm_min_ps(kr, _mm_sub_ps(four, kr))), tg = clip01_4(_mm_min_ps(kg, _mm_sub_ps(four, kg))),
               tb = clip01_4(_mm_min_ps(kb, _mm_sub_ps(four, kb)));
        _mm_storeu_ps(R + i, clip01_4(_mm_sub_ps(v, _mm_mul_ps(c2, tr))));
        _mm_storeu_ps(G + i, clip01_4(_mm_sub_ps(v, _mm_mul_ps(c2, tg))));
        _mm_storeu_ps(B + i, clip01_4(_mm_sub_ps(v, _mm_mul_ps(c2, tb))));
    }
#endif
    for (; i < n; i++) hsv_pixel(R + i, G + i, B + i, factor, dh);
}

void bv_aug_saturation(float *x, int64_t n, float factor) { bv_aug_saturation_hue(x, n, factor, 0.0f); }
void bv_aug_hue(float *x, int64_t n, float delta) { bv_aug_saturation_hue(x, n, 1.0f, delta); }

BV_AUG_CLONES static void to_siglip(float *x, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] = x[i] * 2.0f - 1.0f;
}

void bv_aug_apply(const uint8_t *rgb, int w, int h, const bv_aug_params *p, int size, float *out, bv_aug_scratch *s) {
    int64_t n = (int64_t)size * size;
    double bx0 = p->x0 * w, by0 = p->y0 * h;
    double bx1 = fmin((p->x0 + p->w) * w, (double)w), by1 = fmin((p->y0 + p->h) * h, (double)h);
    bv_aug_resize_bicubic(rgb, w, h, bx0, by0, bx1, by1, size, size, out, s);
    bv_aug_clip01(out, n);
    if (p->jitter) {
        bv_aug_brightness(out, n, p->brightness);
        bv_aug_contrast(out, n, p->contrast);
        bv_aug_saturation_hue(out, n, p->saturation, p->hue);
    }
    to_siglip(out, 3 * n); /* SigLIP: (x - 0.5) / 0.5 */
}
