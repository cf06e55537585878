/* test_augment.c - the loader's image preprocessing (data/augment.h):
 *  - crop-and-resize against Pillow's bicubic resize with a box (float images; committed fixture
 *    from tests/gen/gen_augment.py): downscale at 256 -> 224's ratio and at the tiny preset's,
 *    upscale, a fractional box with a non-square output, the identity;
 *  - the evaluation transform (centre crop of 90% area, resized, x*2-1, channel-major) against
 *    the same reference;
 *  - brightness, contrast, saturation, hue against Python's colorsys / numpy formulas (the
 *    fixture), and their edge cases (greys, clipping, a full hue turn);
 *  - the random draws: box area and position ranges, jitter ranges, determinism per key,
 *    independent x and y offsets; configuration checks.
 */
#include <math.h>
#include <string.h>

#include "data/augment.h"
#include "tests/util/testutil.h"

/* (n, 3) interleaved <-> (3, n) planes */
static void to_planes(const float *hwc, int64_t n, float *chw) {
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) chw[c * n + i] = hwc[3 * i + c];
}
static void to_pixels(const float *chw, int64_t n, float *hwc) {
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) hwc[3 * i + c] = chw[c * n + i];
}

static void check_resize_case(bv_fx *fx, const char *name) {
    char key[64];
    snprintf(key, sizeof key, "%s.img", name);
    bv_tensor img = bv_fx_get(fx, key, BV_DTYPE_U8);
    snprintf(key, sizeof key, "%s.box", name);
    bv_tensor box = bv_fx_get(fx, key, BV_DTYPE_F64);
    snprintf(key, sizeof key, "%s.out", name);
    bv_tensor want = bv_fx_get(fx, key, BV_DTYPE_F32);
    const double *b = box.data;
    int h = (int)img.shape[0], w = (int)img.shape[1], oh = (int)want.shape[0], ow = (int)want.shape[1];
    float *got = bv_xmalloc((size_t)oh * ow * 3 * sizeof(float)), *px = bv_xmalloc((size_t)oh * ow * 3 * sizeof(float));
    bv_aug_scratch s = {0};
    bv_aug_resize_bicubic(img.data, w, h, b[0], b[1], b[2], b[3], ow, oh, got, &s);
    to_pixels(got, (int64_t)oh * ow, px);
    /* Pillow accumulates in double, this in float: a few float ulps of values in [0, 1] */
    char what[96];
    snprintf(what, sizeof what, "bicubic resize %s (%dx%d -> %dx%d) vs Pillow", name, w, h, ow, oh);
    bv_check_close_f32(what, px, want.data, (int64_t)oh * ow * 3, 2e-6, 0);
    free(px);
    /* a second call with the scratch already grown gives the same bits */
    float *again = bv_xmalloc((size_t)oh * ow * 3 * sizeof(float));
    bv_aug_resize_bicubic(img.data, w, h, b[0], b[1], b[2], b[3], ow, oh, again, &s);
    assert_memory_equal(got, again, (size_t)oh * ow * 3 * sizeof(float));
    bv_aug_scratch_free(&s);
    free(got);
    free(again);
}

static void test_resize_vs_pillow(void **state) {
    (void)state;
    bv_fx fx;
    bv_fx_open(&fx, "augment.safetensors");
    const char *cases[] = {"center_down", "center_tiny", "center_up", "box_rect", "identity"};
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) check_resize_case(&fx, cases[i]);
    /* the identity is exact: bicubic weights at integer offsets are 1, 0, 0 */
    bv_tensor img = bv_fx_get(&fx, "identity.img", BV_DTYPE_U8);
    int h = (int)img.shape[0], w = (int)img.shape[1];
    float *got = bv_xmalloc((size_t)h * w * 3 * sizeof(float));
    bv_aug_scratch s = {0};
    bv_aug_resize_bicubic(img.data, w, h, 0, 0, w, h, w, h, got, &s);
    const uint8_t *px = img.data;
    for (int i = 0; i < h * w; i++)
        for (int c = 0; c < 3; c++)
            if (fabsf(got[c * h * w + i] * 255.0f - px[3 * i + c]) > 1e-3f)
                fail_msg("identity resize: pixel %d channel %d is %g, want %d", i, c, got[c * h * w + i] * 255.0f,
                         px[3 * i + c]);
    bv_aug_scratch_free(&s);
    free(got);
    bv_fx_close(&fx);
}

/* Evaluation: centre crop of 90% of the area, resized, clipped, x*2-1, (3, S, S). */
static void test_eval_center_crop(void **state) {
    (void)state;
    bv_fx fx;
    bv_fx_open(&fx, "augment.safetensors");
    bv_aug_cfg cfg;
    bv_aug_cfg_default(&cfg);
    bv_aug_params p;
    bv_aug_center(&cfg, &p);
    assert_false(p.jitter);
    const char *cases[] = {"center_down", "center_tiny", "center_up"};
    for (size_t k = 0; k < BV_ARRAY_LEN(cases); k++) {
        char key[64];
        snprintf(key, sizeof key, "%s.img", cases[k]);
        bv_tensor img = bv_fx_get(&fx, key, BV_DTYPE_U8);
        snprintf(key, sizeof key, "%s.box", cases[k]);
        const double *box = bv_fx_get(&fx, key, BV_DTYPE_F64).data;
        snprintf(key, sizeof key, "%s.out", cases[k]);
        bv_tensor want = bv_fx_get(&fx, key, BV_DTYPE_F32);
        int h = (int)img.shape[0], w = (int)img.shape[1], S = (int)want.shape[0];
        /* the box the loader uses is the generator's centre box */
        double exp_box[4] = {p.x0 * w, p.y0 * h, (p.x0 + p.w) * w, (p.y0 + p.h) * h};
        bv_check_close_f64("centre box", exp_box, box, 4, 1e-12, 1e-12);
        float *got = bv_xmalloc((size_t)3 * S * S * sizeof(float)),
              *ref = bv_xmalloc((size_t)3 * S * S * sizeof(float));
        const float *wv = want.data;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < S * S; i++) {
                float v = wv[3 * i + c];
                ref[(size_t)c * S * S + i] = (v < 0 ? 0 : v > 1 ? 1 : v) * 2.0f - 1.0f;
            }
        bv_aug_scratch s = {0};
        bv_aug_apply(img.data, w, h, &p, S, got, &s);
        char what[96];
        snprintf(what, sizeof what, "eval transform %s vs Pillow centre crop", cases[k]);
        bv_check_close_f32(what, got, ref, 3 * S * S, 4e-6, 0);
        bv_aug_scratch_free(&s);
        free(got);
        free(ref);
    }
    bv_fx_close(&fx);
}

static void test_colour_vs_colorsys(void **state) {
    (void)state;
    bv_fx fx;
    bv_fx_open(&fx, "augment.safetensors");
    bv_tensor x = bv_fx_get(&fx, "colour.x", BV_DTYPE_F32);
    const double *prm = bv_fx_get(&fx, "colour.params", BV_DTYPE_F64).data;
    int64_t n = x.shape[0];
    float *y = bv_xmalloc((size_t)n * 3 * sizeof(float)), *yp = bv_xmalloc((size_t)n * 3 * sizeof(float));
    struct {
        const char *name;
        void (*fn)(float *, int64_t, float);
        float arg;
    } ops[] = {{"brightness", bv_aug_brightness, (float)prm[0]},
               {"contrast", bv_aug_contrast, (float)prm[1]},
               {"saturation", bv_aug_saturation, (float)prm[2]},
               {"hue", bv_aug_hue, (float)prm[3]}};
    for (size_t k = 0; k < BV_ARRAY_LEN(ops); k++) {
        to_planes(x.data, n, yp);
        ops[k].fn(yp, n, ops[k].arg);
        to_pixels(yp, n, y);
        char key[64], what[96];
        snprintf(key, sizeof key, "colour.%s.out", ops[k].name);
        bv_tensor want = bv_fx_get(&fx, key, BV_DTYPE_F64);
        snprintf(what, sizeof what, "%s(%g) vs colorsys/numpy", ops[k].name, ops[k].arg);
        /* float arithmetic on values in [0, 1] against double */
        bv_check_close_f32_f64(what, y, want.data, n * 3, 2e-6, 0);
    }
    /* the fused saturation + hue pass against the two passes */
    float *a = bv_xmalloc((size_t)n * 3 * sizeof(float));
    to_planes(x.data, n, yp);
    to_planes(x.data, n, a);
    bv_aug_saturation(yp, n, (float)prm[2]);
    bv_aug_hue(yp, n, (float)prm[3]);
    bv_aug_saturation_hue(a, n, (float)prm[2], (float)prm[3]);
    bv_check_close_f32("saturation+hue fused vs in turn", a, yp, n * 3, 1e-6, 0);
    free(a);
    free(y);
    free(yp);
    bv_fx_close(&fx);
}

static void test_colour_edge_cases(void **state) {
    (void)state;
    const float pix[6 * 3] = {0.3f, 0.3f, 0.3f, 1.0f, 0.0f, 0.0f, 0.2f,  0.5f, 0.9f,
                              0.0f, 0.0f, 0.0f, 1.0f, 1.0f, 1.0f, 0.95f, 0.9f, 0.05f};
    float px[18], y[18]; /* planes: px[c * 6 + i] */
    to_planes(pix, 6, px);
    /* brightness clips */
    memcpy(y, px, sizeof y);
    bv_aug_brightness(y, 6, 0.2f);
    assert_true(y[1] == 1.0f && y[4] == 1.0f && y[16] == 1.0f && fabsf(y[0] - 0.5f) < 1e-7f);
    memcpy(y, px, sizeof y);
    bv_aug_brightness(y, 6, -0.2f);
    assert_true(y[7] == 0.0f && y[3] == 0.0f && y[15] == 0.0f);
    /* contrast 1 is the identity; a constant image is unchanged by any factor */
    memcpy(y, px, sizeof y);
    bv_aug_contrast(y, 6, 1.0f);
    bv_check_close_f32("contrast 1", y, px, 18, 1e-7, 0);
    float grey[4 * 3];
    for (int i = 0; i < 12; i++) grey[i] = 0.42f;
    bv_aug_contrast(grey, 4, 1.2f);
    for (int i = 0; i < 12; i++) assert_true(fabsf(grey[i] - 0.42f) < 1e-7f);
    /* saturation: greys stay grey, 0 makes grey at the max channel, 1 is the identity (up to
     * the rounding of the trip through HSV, as in TensorFlow: a few float ulps of 1) */
    memcpy(y, px, sizeof y);
    bv_aug_saturation(y, 6, 1.0f);
    bv_check_close_f32("saturation 1", y, px, 18, 5e-7, 0);
    memcpy(y, px, sizeof y);
    bv_aug_saturation(y, 6, 0.0f);
    for (int i = 0; i < 6; i++) {
        float v = fmaxf(px[i], fmaxf(px[6 + i], px[12 + i]));
        for (int c = 0; c < 3; c++) assert_true(fabsf(y[c * 6 + i] - v) < 1e-7f);
    }
    /* hue: a third of a turn sends red to green, a full turn (and 0) changes nothing, greys stay */
    float red[3] = {1.0f, 0.0f, 0.0f};
    bv_aug_hue(red, 1, 1.0f / 3.0f);
    assert_true(fabsf(red[0]) < 1e-6f && fabsf(red[1] - 1.0f) < 1e-6f && fabsf(red[2]) < 1e-6f);
    memcpy(y, px, sizeof y);
    bv_aug_hue(y, 6, 0.0f);
    bv_check_close_f32("hue 0", y, px, 18, 1e-6, 0);
    memcpy(y, px, sizeof y);
    bv_aug_hue(y, 6, 0.5f);
    bv_aug_hue(y, 6, -0.5f);
    bv_check_close_f32("hue +1/2 then -1/2", y, px, 18, 1e-6, 0);
    for (int c = 0; c < 3; c++) assert_true(y[c * 6] == 0.3f); /* the grey */
    /* the vector path (4 pixels at a time where there is one) and the scalar path agree bit for bit */
    bv_rng rg = {9};
    const int n = 1003;
    float *a = bv_test_rand_f32(&rg, 3 * n, 0, 1), *one = bv_xmalloc(3 * sizeof(float));
    for (int i = 0; i < 40; i++) a[i] = a[n + i] = a[2 * n + i]; /* greys */
    for (int i = 40; i < 80; i++) a[n + i] = a[i];               /* two equal channels */
    float *v = bv_test_copy_f32(a, 3 * n);
    bv_aug_saturation_hue(v, n, 1.13f, -0.037f);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < 3; c++) one[c] = a[c * n + i];
        bv_aug_saturation_hue(one, 1, 1.13f, -0.037f);
        for (int c = 0; c < 3; c++)
            if (memcmp(&one[c], &v[c * n + i], sizeof(float)))
                fail_msg("pixel %d channel %d: %.9g alone, %.9g in a run", i, c, one[c], v[c * n + i]);
    }
    free(a);
    free(v);
    free(one);
}

/* The random draws stay in their ranges, cover them, and depend only on the key. */
static void test_draw_ranges(void **state) {
    (void)state;
    bv_aug_cfg cfg;
    bv_aug_cfg_default(&cfg);
    const int n = 20000;
    double lo[6] = {1e9, 1e9, 1e9, 1e9, 1e9, 1e9}, hi[6] = {-1e9, -1e9, -1e9, -1e9, -1e9, -1e9};
    double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (int i = 0; i < n; i++) {
        bv_aug_params p, q;
        uint64_t key = bv_aug_key(7, 3, (uint64_t)i, 1);
        bv_aug_draw(&cfg, key, &p);
        bv_aug_draw(&cfg, key, &q);
        assert_memory_equal(&p, &q, sizeof p);
        assert_true(p.jitter);
        /* the box: 90% of the area, square, inside the image */
        if (fabs(p.w * p.h - 0.9) > 1e-7 || p.w != p.h)
            fail_msg("draw %d: box %g x %g, area %.9f (want 0.9, square)", i, p.w, p.h, p.w * p.h);
        if (p.x0 < 0 || p.y0 < 0 || p.x0 + p.w > 1.0 || p.y0 + p.h > 1.0)
            fail_msg("draw %d: box (%g, %g) + %g leaves the image", i, p.x0, p.y0, p.w);
        double v[6] = {p.x0, p.y0, p.brightness, p.contrast, p.saturation, p.hue};
        for (int k = 0; k < 6; k++) lo[k] = fmin(lo[k], v[k]), hi[k] = fmax(hi[k], v[k]);
        sx += p.x0, sy += p.y0, sxx += p.x0 * p.x0, syy += p.y0 * p.y0, sxy += p.x0 * p.y0;
    }
    const double side = sqrt(0.9);
    double want_lo[6] = {0, 0, -0.2, 0.8, 0.8, -0.05}, want_hi[6] = {1 - side, 1 - side, 0.2, 1.2, 1.2, 0.05};
    const char *names[6] = {"x0", "y0", "brightness", "contrast", "saturation", "hue"};
    for (int k = 0; k < 6; k++) {
        double span = want_hi[k] - want_lo[k];
        if (lo[k] < want_lo[k] - 1e-7 || hi[k] > want_hi[k] + 1e-7)
            fail_msg("%s drawn in [%g, %g], outside [%g, %g]", names[k], lo[k], hi[k], want_lo[k], want_hi[k]);
        if (lo[k] > want_lo[k] + 0.01 * span || hi[k] < want_hi[k] - 0.01 * span)
            fail_msg("%s drawn in [%g, %g]: does not cover [%g, %g]", names[k], lo[k], hi[k], want_lo[k], want_hi[k]);
    }
    /* x and y offsets independent (dlimp's shared seed would make them equal) */
    double cov = sxy / n - (sx / n) * (sy / n), vx = sxx / n - (sx / n) * (sx / n), vy = syy / n - (sy / n) * (sy / n);
    double corr = cov / sqrt(vx * vy);
    if (fabs(corr) > 0.05) fail_msg("crop offsets correlated: %g", corr);
    /* other keys give other draws */
    bv_aug_params a, b;
    bv_aug_draw(&cfg, bv_aug_key(7, 3, 0, 1), &a);
    bv_aug_draw(&cfg, bv_aug_key(7, 3, 0, 2), &b);
    assert_true(a.x0 != b.x0 && a.brightness != b.brightness);
    bv_aug_draw(&cfg, bv_aug_key(7, 4, 0, 1), &b);
    assert_true(a.x0 != b.x0);
    bv_aug_draw(&cfg, bv_aug_key(8, 3, 0, 1), &b);
    assert_true(a.x0 != b.x0);
}

/* A random crop shows the part of the image its box says: on an image whose red channel is the
 * column and green the row, the output's corners read the box corners. */
static void test_crop_geometry(void **state) {
    (void)state;
    const int W = 200, H = 160, S = 50;
    uint8_t *img = bv_xmalloc((size_t)W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = img + 3 * ((size_t)y * W + x);
            p[0] = (uint8_t)(x * 255 / (W - 1)), p[1] = (uint8_t)(y * 255 / (H - 1)), p[2] = 128;
        }
    bv_aug_cfg cfg;
    bv_aug_cfg_default(&cfg);
    cfg.brightness = 0, cfg.contrast_lo = cfg.contrast_hi = 1, cfg.saturation_lo = cfg.saturation_hi = 1, cfg.hue = 0;
    float *out = bv_xmalloc((size_t)3 * S * S * sizeof(float));
    bv_aug_scratch s = {0};
    for (int i = 0; i < 20; i++) {
        bv_aug_params p;
        bv_aug_draw(&cfg, bv_aug_key(1, 2, (uint64_t)i, 0), &p);
        bv_aug_apply(img, W, H, &p, S, out, &s);
        /* centre of output pixel (j, i) samples x = x0 + (i + 0.5) / S * w of the image */
        for (int cy = 0; cy < 2; cy++)
            for (int cx = 0; cx < 2; cx++) {
                int oi = cx ? S - 1 : 0, oj = cy ? S - 1 : 0;
                double fx = (p.x0 + (oi + 0.5) / S * p.w) * W - 0.5, fy = (p.y0 + (oj + 0.5) / S * p.h) * H - 0.5;
                double want_r = fx * 255.0 / (W - 1) / 255.0 * 2 - 1, want_g = fy * 255.0 / (H - 1) / 255.0 * 2 - 1;
                float r = out[(size_t)oj * S + oi], g = out[(size_t)S * S + (size_t)oj * S + oi];
                /* within the rounding of the 8-bit ramp (about 2 levels in [-1, 1] units) */
                if (fabs(r - want_r) > 0.02 || fabs(g - want_g) > 0.02)
                    fail_msg("crop %d corner (%d, %d): got (%g, %g), want (%g, %g)", i, oi, oj, r, g, want_r, want_g);
                assert_true(fabsf(out[2 * (size_t)S * S + (size_t)oj * S + oi] - (128.0f / 255.0f * 2 - 1)) < 1e-5f);
            }
    }
    bv_aug_scratch_free(&s);
    free(out);
    free(img);
}

/* Jittered images stay in [-1, 1]; the jitter changes the image; draws with the same key give
 * the same pixels. */
static void test_apply_train(void **state) {
    (void)state;
    bv_fx fx;
    bv_fx_open(&fx, "augment.safetensors");
    bv_tensor img = bv_fx_get(&fx, "center_down.img", BV_DTYPE_U8);
    int h = (int)img.shape[0], w = (int)img.shape[1], S = 56;
    bv_aug_cfg cfg;
    bv_aug_cfg_default(&cfg);
    float *a = bv_xmalloc((size_t)3 * S * S * sizeof(float)), *b = bv_xmalloc((size_t)3 * S * S * sizeof(float));
    bv_aug_scratch s1 = {0}, s2 = {0};
    for (int i = 0; i < 8; i++) {
        bv_aug_params p;
        bv_aug_draw(&cfg, bv_aug_key(5, 0, (uint64_t)i, 0), &p);
        bv_aug_apply(img.data, w, h, &p, S, a, &s1);
        bv_aug_apply(img.data, w, h, &p, S, b, &s2);
        assert_memory_equal(a, b, (size_t)3 * S * S * sizeof(float));
        for (int j = 0; j < 3 * S * S; j++)
            if (!(a[j] >= -1.0f && a[j] <= 1.0f)) fail_msg("draw %d: value %d is %g, outside [-1, 1]", i, j, a[j]);
        bv_aug_params q = p;
        q.jitter = false;
        bv_aug_apply(img.data, w, h, &q, S, b, &s2);
        double diff = 0;
        for (int j = 0; j < 3 * S * S; j++) diff += fabs(a[j] - b[j]);
        if (diff / (3 * S * S) < 1e-3)
            fail_msg("draw %d: jitter changed nothing (mean |diff| %g)", i, diff / (3 * S * S));
    }
    bv_aug_scratch_free(&s1);
    bv_aug_scratch_free(&s2);
    free(a);
    free(b);
    bv_fx_close(&fx);
}

static void test_cfg_check(void **state) {
    (void)state;
    bv_aug_cfg c;
    bv_aug_cfg_default(&c);
    assert_int_equal(bv_aug_cfg_check(&c), BV_OK);
    c.crop_scale = 1.5;
    assert_int_equal(bv_aug_cfg_check(&c), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "crop_scale"));
    bv_aug_cfg_default(&c);
    c.contrast_lo = 1.3;
    assert_int_equal(bv_aug_cfg_check(&c), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "contrast"));
    bv_aug_cfg_default(&c);
    c.hue = 0.7;
    assert_int_equal(bv_aug_cfg_check(&c), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "hue"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resize_vs_pillow),   cmocka_unit_test(test_eval_center_crop),
        cmocka_unit_test(test_colour_vs_colorsys), cmocka_unit_test(test_colour_edge_cases),
        cmocka_unit_test(test_draw_ranges),        cmocka_unit_test(test_crop_geometry),
        cmocka_unit_test(test_apply_train),        cmocka_unit_test(test_cfg_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
