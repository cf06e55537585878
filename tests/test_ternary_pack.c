/* Tests of the packed ternary weight formats (src/ternary_pack.h):
 *  - every format's bytes equal an independent bit-by-bit reference packer written here from the
 *    format's definition (docs/formats.md), and unpack returns the codes, for many shapes
 *    including edge sizes (1-element rows, every TQ5 tail length, empty tensors, OC = 4, C = 128);
 *  - all 243 TQ5 byte values decode to their base-3 digits;
 *  - cross-format chains (A -> codes -> B -> codes ...) and bv_tpack_convert keep the codes;
 *  - 1 and 2 OpenMP threads give identical bytes and codes on tensors above the threading cutoff;
 *  - parity with the PyTorch fixture (tests/gen/gen_ternary_pack.py): HF bytes from transformers'
 *    pack_weights and the layer outputs of AutoBitLinear / BitLinear recomputed from our unpacked
 *    codes, I2_S bytes from bitnet.cpp's quantize_i2_s and its kernel's output, TQ5 bytes;
 *  - malformed inputs: wrong lengths, a 2-bit field of 3, TQ5 bytes > 242 and bad padding, bad
 *    headers and scales, shapes a format cannot hold, bad codes - each status and message. */
#include <math.h>
#include <string.h>

#include "src/ternary_pack.h"
#include "tests/util/testutil.h"

/* ---- helpers ---- */

/* Random codes: zeros with probability pz, the rest +-1 evenly. */
static void rand_codes(bv_rng *r, int8_t *c, int64_t n, double pz) {
    for (int64_t i = 0; i < n; i++) {
        double u = bv_rng_uniform(r);
        c[i] = u < pz ? 0 : (u < pz + (1 - pz) / 2 ? -1 : 1);
    }
}

static void check_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s: first differing byte at offset %zu: got %u (0x%02x) want %u (0x%02x); %zu bytes", what, i,
                     got[i], got[i], want[i], want[i], n);
}

static void check_codes(const char *what, const int8_t *got, const int8_t *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s: first differing code at index %lld: got %d want %d; %lld codes", what, (long long)i, got[i],
                     want[i], (long long)n);
}

static void le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void lef32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    le32(p, u);
}

/* ---- reference packers: one code at a time, straight from the definitions ---- */

/* HF: code (o, c) -> byte (o % R, c), bits 2*(o / R) .. +1, field w + 1 */
static size_t ref_hf(const int8_t *codes, int64_t rows, int64_t cols, uint8_t *out) {
    int64_t R = rows / 4;
    size_t n = (size_t)(R * cols);
    memset(out, 0, n);
    for (int64_t o = 0; o < rows; o++)
        for (int64_t c = 0; c < cols; c++)
            out[(o % R) * cols + c] |= (uint8_t)((codes[o * cols + c] + 1) << (2 * (o / R)));
    return n;
}

/* I2_S: flat code j -> byte 32*(j/128) + j%128%32, shift 6 - 2*(j%128/32); fp32 scale; 28 zeros */
static size_t ref_i2s(const int8_t *codes, int64_t numel, float scale, uint8_t *out) {
    size_t n = (size_t)(numel / 4) + 32;
    memset(out, 0, n);
    for (int64_t j = 0; j < numel; j++) {
        int64_t q = j % 128;
        out[32 * (j / 128) + q % 32] |= (uint8_t)((codes[j] + 1) << (6 - 2 * (q / 32)));
    }
    lef32(out + numel / 4, scale);
    return n;
}

/* TQ5: header; row r, code c -> byte ceil(C/5)*r + c/5, digit c%5 (3^(c%5)), value w + 1; padding 1 */
static size_t ref_tq5(const int8_t *codes, int64_t rows, int64_t cols, float scale, uint8_t *out) {
    int64_t bpr = (cols + 4) / 5;
    size_t n = 32 + (size_t)(rows * bpr);
    memcpy(out, "BVT5", 4);
    le32(out + 4, 1);
    le64(out + 8, (uint64_t)rows);
    le64(out + 16, (uint64_t)cols);
    lef32(out + 24, scale);
    le32(out + 28, 0);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t g = 0; g < bpr; g++) {
            int v = 0, p = 1;
            for (int k = 0; k < 5; k++, p *= 3) {
                int64_t c = 5 * g + k;
                v += (c < cols ? codes[r * cols + c] + 1 : 1) * p;
            }
            out[32 + r * bpr + g] = (uint8_t)v;
        }
    return n;
}

static size_t ref_pack(bv_tpack_format f, const int8_t *codes, int64_t rows, int64_t cols, float scale,
                       uint8_t *out) {
    switch (f) {
    case BV_TPACK_HF: return ref_hf(codes, rows, cols, out);
    case BV_TPACK_I2S: return ref_i2s(codes, rows * cols, scale, out);
    case BV_TPACK_TQ5: return ref_tq5(codes, rows, cols, scale, out);
    }
    return 0;
}

/* Pack with the library, compare with the reference, unpack, compare with the codes and scale. */
static void roundtrip(bv_tpack_format f, const int8_t *codes, int64_t rows, int64_t cols, float scale) {
    char what[160];
    snprintf(what, sizeof what, "%s (%lld, %lld)", bv_tpack_name(f), (long long)rows, (long long)cols);
    size_t nb;
    if (bv_tpack_nbytes(f, rows, cols, &nb) != BV_OK) fail_msg("%s: nbytes: %s", what, bv_error_msg());
    uint8_t *got = bv_xmalloc(nb + 1), *want = bv_xmalloc(nb + 1);
    size_t nref = ref_pack(f, codes, rows, cols, scale, want);
    if (nref != nb) fail_msg("%s: library says %zu bytes, reference %zu", what, nb, nref);
    if (bv_tpack_pack(f, codes, rows, cols, scale, got, nb) != BV_OK) fail_msg("%s: pack: %s", what, bv_error_msg());
    check_bytes(what, got, want, nb);
    int64_t n = rows * cols;
    int8_t *back = bv_xmalloc((size_t)n + 1);
    memset(back, 77, (size_t)n + 1);
    float s = -1;
    if (bv_tpack_unpack(f, got, nb, rows, cols, back, &s) != BV_OK) fail_msg("%s: unpack: %s", what, bv_error_msg());
    check_codes(what, back, codes, n);
    if (back[n] != 77) fail_msg("%s: unpack wrote past the end of the codes", what);
    if (f == BV_TPACK_HF) {
        if (!isnan(s)) fail_msg("%s: HF stores no scale, unpack should give NAN, got %g", what, s);
    } else if (s != scale) {
        fail_msg("%s: scale came back as %.9g, packed %.9g", what, s, scale);
    }
    free(got);
    free(want);
    free(back);
}

/* ---- tests ---- */

static void test_tq5_all_bytes(void **state) {
    /* one row of 5 codes per byte value: every v in 0..242 decodes to its base-3 digits minus 1 */
    uint8_t blob[33];
    int8_t codes[5];
    for (int v = 0; v < 243; v++) {
        int8_t want[5];
        for (int k = 0, x = v; k < 5; k++, x /= 3) want[k] = (int8_t)(x % 3 - 1);
        assert_int_equal(bv_tpack_pack(BV_TPACK_TQ5, want, 1, 5, 1.0f, blob, sizeof blob), BV_OK);
        if (blob[32] != v) fail_msg("TQ5 pack of digits of %d gave byte %u", v, blob[32]);
        memset(codes, 9, 5);
        assert_int_equal(bv_tpack_unpack(BV_TPACK_TQ5, blob, sizeof blob, 1, 5, codes, NULL), BV_OK);
        check_codes("TQ5 byte value", codes, want, 5);
    }
}

static void test_roundtrip_shapes(void **state) {
    bv_rng r = {11};
    static const int64_t hf_rows[] = {4, 8, 12, 36, 400}, hf_cols[] = {1, 2, 3, 7, 64, 129};
    static const int64_t i2_rows[] = {1, 2, 3, 5}, i2_cols[] = {128, 256, 384, 1280};
    static const int64_t t5_rows[] = {1, 2, 3, 7}, t5_cols[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 127, 128, 1001};
    static const double pz[] = {0.0, 0.33, 0.7, 1.0};
    int8_t *codes = bv_xmalloc(400 * 1280);
    int k = 0;
    for (size_t a = 0; a < BV_ARRAY_LEN(hf_rows); a++)
        for (size_t b = 0; b < BV_ARRAY_LEN(hf_cols); b++, k++) {
            rand_codes(&r, codes, hf_rows[a] * hf_cols[b], pz[k % 4]);
            roundtrip(BV_TPACK_HF, codes, hf_rows[a], hf_cols[b], 0.5f);
        }
    for (size_t a = 0; a < BV_ARRAY_LEN(i2_rows); a++)
        for (size_t b = 0; b < BV_ARRAY_LEN(i2_cols); b++, k++) {
            rand_codes(&r, codes, i2_rows[a] * i2_cols[b], pz[k % 4]);
            roundtrip(BV_TPACK_I2S, codes, i2_rows[a], i2_cols[b], 0.0123f * (float)(k + 1));
        }
    for (size_t a = 0; a < BV_ARRAY_LEN(t5_rows); a++)
        for (size_t b = 0; b < BV_ARRAY_LEN(t5_cols); b++, k++) {
            rand_codes(&r, codes, t5_rows[a] * t5_cols[b], pz[k % 4]);
            roundtrip(BV_TPACK_TQ5, codes, t5_rows[a], t5_cols[b], 1e-3f * (float)k);
        }
    /* all -1 and all +1 (the extreme fields 0 and 2 everywhere) */
    for (int sgn = -1; sgn <= 1; sgn += 2) {
        memset(codes, sgn, 8 * 256);
        roundtrip(BV_TPACK_HF, codes, 8, 256, 1.0f);
        roundtrip(BV_TPACK_I2S, codes, 8, 256, 1.0f);
        roundtrip(BV_TPACK_TQ5, codes, 8, 256, 1.0f);
    }
    /* empty tensors: (0, C) and (R, 0) */
    roundtrip(BV_TPACK_HF, codes, 0, 5, 1.0f);
    roundtrip(BV_TPACK_HF, codes, 8, 0, 1.0f);
    roundtrip(BV_TPACK_I2S, codes, 0, 128, 2.0f);
    roundtrip(BV_TPACK_I2S, codes, 3, 0, 2.0f);
    roundtrip(BV_TPACK_TQ5, codes, 0, 7, 3.0f);
    roundtrip(BV_TPACK_TQ5, codes, 3, 0, 3.0f);
    /* scale 0 (an all-zero layer) is legal */
    memset(codes, 0, 128);
    roundtrip(BV_TPACK_I2S, codes, 1, 128, 0.0f);
    roundtrip(BV_TPACK_TQ5, codes, 1, 128, 0.0f);
    free(codes);
}

static void test_nbytes(void **state) {
    size_t n;
    assert_int_equal(bv_tpack_nbytes(BV_TPACK_HF, 2560, 6912, &n), BV_OK);
    assert_int_equal(n, 640u * 6912u);
    assert_int_equal(bv_tpack_nbytes(BV_TPACK_I2S, 2560, 6912, &n), BV_OK);
    assert_int_equal(n, 2560u * 6912u / 4 + 32);
    assert_int_equal(bv_tpack_nbytes(BV_TPACK_TQ5, 2560, 6912, &n), BV_OK);
    assert_int_equal(n, 32 + 2560u * 1383u);
    assert_int_equal(bv_tpack_nbytes(BV_TPACK_TQ5, 1, 10, &n), BV_OK);
    assert_int_equal(n, 34u);
    assert_string_equal(bv_tpack_name(BV_TPACK_I2S), "I2_S");
    assert_string_equal(bv_tpack_name((bv_tpack_format)7), "?");
}

/* codes -> A -> codes -> B -> codes -> C -> codes, every order; and convert() gives the direct bytes. */
static void test_cross_format(void **state) {
    bv_rng r = {5};
    const int64_t rows = 12, cols = 384, n = rows * cols;
    const float scale = 0.037f;
    int8_t *orig = bv_xmalloc(n), *cur = bv_xmalloc(n);
    rand_codes(&r, orig, n, 0.4);
    uint8_t *direct[BV_TPACK_NFORMATS], *buf = bv_xmalloc(n + 64);
    size_t nb[BV_TPACK_NFORMATS];
    for (int f = 0; f < BV_TPACK_NFORMATS; f++) {
        assert_int_equal(bv_tpack_nbytes(f, rows, cols, &nb[f]), BV_OK);
        direct[f] = bv_xmalloc(nb[f]);
        assert_int_equal(bv_tpack_pack(f, orig, rows, cols, scale, direct[f], nb[f]), BV_OK);
    }
    static const int orders[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int o = 0; o < 6; o++) {
        memcpy(cur, orig, n);
        for (int s = 0; s < 3; s++) {
            int f = orders[o][s];
            assert_int_equal(bv_tpack_pack(f, cur, rows, cols, scale, buf, nb[f]), BV_OK);
            memset(cur, 0, n);
            if (bv_tpack_unpack(f, buf, nb[f], rows, cols, cur, NULL) != BV_OK) fail_msg("%s", bv_error_msg());
        }
        check_codes("cross-format chain", cur, orig, n);
    }
    for (int a = 0; a < BV_TPACK_NFORMATS; a++)
        for (int b = 0; b < BV_TPACK_NFORMATS; b++) {
            char what[64];
            snprintf(what, sizeof what, "convert %s -> %s", bv_tpack_name(a), bv_tpack_name(b));
            memset(buf, 0xee, nb[b]);
            if (bv_tpack_convert(a, direct[a], nb[a], b, rows, cols, scale, buf, nb[b]) != BV_OK)
                fail_msg("%s: %s", what, bv_error_msg());
            check_bytes(what, buf, direct[b], nb[b]);
        }
    /* the stored scale wins over the argument when the source has one */
    assert_int_equal(bv_tpack_convert(BV_TPACK_I2S, direct[1], nb[1], BV_TPACK_TQ5, rows, cols, 99.0f, buf, nb[2]),
                     BV_OK);
    check_bytes("convert I2_S -> TQ5 keeps the I2_S scale", buf, direct[2], nb[2]);
    for (int f = 0; f < BV_TPACK_NFORMATS; f++) free(direct[f]);
    free(buf);
    free(orig);
    free(cur);
}

/* Above the threading cutoff (2^18 codes): 1 and 2 threads give the same bytes and codes. */
static void test_threads(void **state) {
    bv_rng r = {99};
    const int64_t rows = 256, cols = 1280, n = rows * cols; /* 327680 codes */
    int8_t *codes = bv_xmalloc(n), *back = bv_xmalloc(n);
    rand_codes(&r, codes, n, 0.3);
    for (int f = 0; f < BV_TPACK_NFORMATS; f++) {
        size_t nb;
        assert_int_equal(bv_tpack_nbytes(f, rows, cols, &nb), BV_OK);
        uint8_t *b1 = bv_xmalloc(nb), *b2 = bv_xmalloc(nb), *ref = bv_xmalloc(nb);
        ref_pack(f, codes, rows, cols, 0.25f, ref);
        bv_set_num_threads(1);
        assert_int_equal(bv_tpack_pack(f, codes, rows, cols, 0.25f, b1, nb), BV_OK);
        bv_set_num_threads(2);
        assert_int_equal(bv_tpack_pack(f, codes, rows, cols, 0.25f, b2, nb), BV_OK);
        check_bytes("pack, 1 thread vs reference", b1, ref, nb);
        check_bytes("pack, 2 threads vs 1", b2, b1, nb);
        for (int t = 1; t <= 2; t++) {
            bv_set_num_threads(t);
            memset(back, 5, n);
            assert_int_equal(bv_tpack_unpack(f, b2, nb, rows, cols, back, NULL), BV_OK);
            check_codes(t == 1 ? "unpack, 1 thread" : "unpack, 2 threads", back, codes, n);
        }
        /* an error found by the threaded pass names the first bad byte */
        size_t bad_at = f == BV_TPACK_TQ5 ? 32 + (size_t)(n / 5) - 3 : (size_t)(n / 4) - 3;
        b2[bad_at] = 0xff;
        bv_set_num_threads(2);
        assert_int_equal(bv_tpack_unpack(f, b2, nb, rows, cols, back, NULL), BV_ERR_FORMAT);
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu has value 255", bad_at);
        bv_test_expect_in(bv_error_msg(), want);
        free(b1);
        free(b2);
        free(ref);
    }
    bv_set_num_threads(2);
    free(codes);
    free(back);
}

/* ---- PyTorch / reference-tool parity ---- */

static void test_fixture_hf(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "ternary_pack.safetensors");
    for (int k = 0; k < 2; k++) {
        char key[64], what[128];
#define GET(field, dt) (snprintf(key, sizeof key, "hf%d." field, k), bv_fx_get(&fx, key, dt))
        bv_tensor codes = GET("codes", BV_DTYPE_I8), packed = GET("packed", BV_DTYPE_U8);
        bv_tensor ws = GET("weight_scale", BV_DTYPE_F32), xc = GET("x_codes", BV_DTYPE_I8);
        bv_tensor xs = GET("x_scale", BV_DTYPE_F32), bias = GET("bias", BV_DTYPE_F32);
        bv_tensor y_ours = GET("y_ours", BV_DTYPE_F32), y_auto = GET("y_auto", BV_DTYPE_F32);
        bv_tensor y_bl = GET("y_bitlinear", BV_DTYPE_F32);
#undef GET
        int64_t OC = codes.shape[0], C = codes.shape[1], N = xc.shape[0];
        size_t nb;
        assert_int_equal(bv_tpack_nbytes(BV_TPACK_HF, OC, C, &nb), BV_OK);
        assert_int_equal(nb, (size_t)bv_tensor_numel(&packed));
        assert_int_equal(packed.shape[0], OC / 4);
        /* our bytes == transformers' pack_weights bytes */
        uint8_t *mine = bv_xmalloc(nb);
        assert_int_equal(bv_tpack_pack(BV_TPACK_HF, codes.data, OC, C, 1.0f, mine, nb), BV_OK);
        snprintf(what, sizeof what, "hf%d: our HF packing vs transformers' pack_weights", k);
        check_bytes(what, mine, packed.data, nb);
        /* our unpack of their bytes == their unpack (= the codes, asserted by the generator) */
        int8_t *w = bv_xmalloc((size_t)(OC * C));
        assert_int_equal(bv_tpack_unpack(BV_TPACK_HF, packed.data, nb, OC, C, w, NULL), BV_OK);
        check_codes("unpack of transformers' bytes", w, codes.data, OC * C);
        /* the layer output from our unpacked codes: y = (x_int8 . w) / x_scale * weight_scale + bias,
         * against AutoBitLinear (multiplicative weight_scale = mean|W|), HF BitLinear (divisor 1/mean|W|)
         * and our own BitLinear formula in PyTorch */
        float wsv = ((float *)ws.data)[0];
        float *y = bv_xmalloc((size_t)(N * OC) * sizeof(float));
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) {
                int32_t acc = 0;
                for (int64_t c = 0; c < C; c++) acc += ((int8_t *)xc.data)[n * C + c] * w[o * C + c];
                y[n * OC + o] = (float)((double)acc / ((float *)xs.data)[n] * wsv + ((float *)bias.data)[o]);
            }
        snprintf(what, sizeof what, "hf%d: output from our codes vs AutoBitLinear offline", k);
        bv_check_close_f32(what, y, y_auto.data, N * OC, 1e-6, 1e-5);
        snprintf(what, sizeof what, "hf%d: output from our codes vs HF BitLinear", k);
        bv_check_close_f32(what, y, y_bl.data, N * OC, 1e-6, 1e-5);
        snprintf(what, sizeof what, "hf%d: output from our codes vs our BitLinear in PyTorch", k);
        bv_check_close_f32(what, y, y_ours.data, N * OC, 1e-6, 1e-5);
        free(mine);
        free(w);
        free(y);
    }
    bv_fx_close(&fx);
}

static void test_fixture_i2s(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "ternary_pack.safetensors");
    for (int k = 0; k < 2; k++) {
        char key[64], what[128];
#define GET(field, dt) (snprintf(key, sizeof key, "i2s%d." field, k), bv_fx_get(&fx, key, dt))
        bv_tensor codes = GET("codes", BV_DTYPE_I8), bytes = GET("bytes", BV_DTYPE_U8);
        bv_tensor sc = GET("scale", BV_DTYPE_F32), xc = GET("x_codes", BV_DTYPE_I8);
        bv_tensor xs = GET("x_scale", BV_DTYPE_F32), yw = GET("y", BV_DTYPE_F64);
#undef GET
        int64_t R = codes.shape[0], C = codes.shape[1], N = xc.shape[0];
        float scale = ((float *)sc.data)[0];
        size_t nb;
        assert_int_equal(bv_tpack_nbytes(BV_TPACK_I2S, R, C, &nb), BV_OK);
        assert_int_equal(nb, (size_t)bv_tensor_numel(&bytes));
        uint8_t *mine = bv_xmalloc(nb);
        assert_int_equal(bv_tpack_pack(BV_TPACK_I2S, codes.data, R, C, scale, mine, nb), BV_OK);
        snprintf(what, sizeof what, "i2s%d: our I2_S bytes vs bitnet.cpp's quantize_i2_s", k);
        check_bytes(what, mine, bytes.data, nb);
        int8_t *w = bv_xmalloc((size_t)(R * C));
        float s = 0;
        assert_int_equal(bv_tpack_unpack(BV_TPACK_I2S, bytes.data, nb, R, C, w, &s), BV_OK);
        check_codes("unpack of bitnet.cpp's bytes", w, codes.data, R * C);
        assert_true(s == scale);
        double *y = bv_xmalloc((size_t)(N * R) * sizeof(double));
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < R; o++) {
                int32_t acc = 0;
                for (int64_t c = 0; c < C; c++) acc += ((int8_t *)xc.data)[n * C + c] * w[o * C + c];
                y[n * R + o] = (double)acc / ((float *)xs.data)[n] * s;
            }
        snprintf(what, sizeof what, "i2s%d: output from our codes vs bitnet.cpp's kernel arithmetic", k);
        bv_check_close_f64(what, y, yw.data, N * R, 1e-12, 1e-12);
        free(mine);
        free(w);
        free(y);
    }
    bv_fx_close(&fx);
}

static void test_fixture_tq5(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "ternary_pack.safetensors");
    for (int k = 0; k < 7; k++) {
        char key[64], what[128];
#define GET(field, dt) (snprintf(key, sizeof key, "tq5_%d." field, k), bv_fx_get(&fx, key, dt))
        bv_tensor codes = GET("codes", BV_DTYPE_I8), bytes = GET("bytes", BV_DTYPE_U8);
        bv_tensor sc = GET("scale", BV_DTYPE_F32);
#undef GET
        int64_t R = codes.shape[0], C = codes.shape[1];
        size_t nb;
        assert_int_equal(bv_tpack_nbytes(BV_TPACK_TQ5, R, C, &nb), BV_OK);
        assert_int_equal(nb, (size_t)bv_tensor_numel(&bytes));
        uint8_t *mine = bv_xmalloc(nb);
        assert_int_equal(bv_tpack_pack(BV_TPACK_TQ5, codes.data, R, C, ((float *)sc.data)[0], mine, nb), BV_OK);
        snprintf(what, sizeof what, "tq5_%d (%lld, %lld): our TQ5 bytes vs the Python definition", k, (long long)R,
                 (long long)C);
        check_bytes(what, mine, bytes.data, nb);
        int64_t hr, hc;
        float hs;
        assert_int_equal(bv_tpack_tq5_header(bytes.data, nb, &hr, &hc, &hs), BV_OK);
        assert_true(hr == R && hc == C && hs == ((float *)sc.data)[0]);
        int8_t *w = bv_xmalloc((size_t)(R * C) + 1);
        assert_int_equal(bv_tpack_unpack(BV_TPACK_TQ5, bytes.data, nb, R, C, w, NULL), BV_OK);
        check_codes(what, w, codes.data, R * C);
        free(mine);
        free(w);
    }
    bv_fx_close(&fx);
}

/* ---- malformed input ---- */

static void expect_err(bv_status got, bv_status want, const char *const *needles) {
    if (got != want)
        fail_msg("status %s, expected %s (message \"%s\")", bv_status_name(got), bv_status_name(want), bv_error_msg());
    for (; *needles; needles++) bv_test_expect_in(bv_error_msg(), *needles);
}
#define EXPECT_ERR(call, want, ...) expect_err((call), (want), (const char *const[]){__VA_ARGS__, NULL})

static void test_malformed_hf(void **state) {
    int8_t codes[8 * 3] = {0}, back[8 * 3];
    uint8_t buf[6 + 1];
    assert_int_equal(bv_tpack_pack(BV_TPACK_HF, codes, 8, 3, 1.0f, buf, 6), BV_OK);
    /* wrong length */
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_HF, buf, 7, 8, 3, back, NULL), BV_ERR_FORMAT, "HF-BitNet", "7 bytes",
               "takes 6");
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_HF, buf, 5, 8, 3, back, NULL), BV_ERR_FORMAT, "HF-BitNet", "5 bytes");
    /* field 2 (bits 4..5, code row 2*2 + 1 = 5) of byte 4 (packed row 1, col 1) is 3 */
    buf[4] = 0x35; /* 00 11 01 01 */
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_HF, buf, 6, 8, 3, back, NULL), BV_ERR_FORMAT, "HF-BitNet",
               "byte offset 4 has value 53 (0x35)", "field 2 (bits 4..5, code row 5, col 1) is 3");
    /* OC not a multiple of 4 */
    size_t n;
    EXPECT_ERR(bv_tpack_nbytes(BV_TPACK_HF, 6, 3, &n), BV_ERR_SHAPE, "HF-BitNet", "6 output rows",
               "not a multiple of 4");
    EXPECT_ERR(bv_tpack_pack(BV_TPACK_HF, codes, 6, 3, 1.0f, buf, 4), BV_ERR_SHAPE, "not a multiple of 4");
    /* bad codes */
    codes[13] = 2;
    EXPECT_ERR(bv_tpack_pack(BV_TPACK_HF, codes, 8, 3, 1.0f, buf, 6), BV_ERR_ARG, "HF-BitNet pack",
               "code 2 at index 13 (row 4, col 1)");
    codes[13] = 0;
    codes[2] = -2;
    EXPECT_ERR(bv_tpack_pack(BV_TPACK_HF, codes, 8, 3, 1.0f, buf, 6), BV_ERR_ARG, "code -2 at index 2 (row 0, col 2)");
    codes[2] = 0;
    /* wrong output buffer size */
    EXPECT_ERR(bv_tpack_pack(BV_TPACK_HF, codes, 8, 3, 1.0f, buf, 7), BV_ERR_ARG, "output buffer is 7 bytes");
    /* unknown format, negative shape */
    EXPECT_ERR(bv_tpack_nbytes((bv_tpack_format)3, 4, 4, &n), BV_ERR_ARG, "unknown format 3");
    EXPECT_ERR(bv_tpack_nbytes(BV_TPACK_TQ5, -1, 4, &n), BV_ERR_SHAPE, "TQ5", "negative");
    EXPECT_ERR(bv_tpack_nbytes(BV_TPACK_TQ5, (int64_t)1 << 40, (int64_t)1 << 40, &n), BV_ERR_SHAPE, "too large");
}

static void test_malformed_i2s(void **state) {
    int8_t codes[2 * 128] = {0}, back[2 * 128];
    uint8_t buf[64 + 32 + 1];
    size_t n;
    assert_int_equal(bv_tpack_pack(BV_TPACK_I2S, codes, 2, 128, 0.5f, buf, 96), BV_OK);
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_I2S, buf, 95, 2, 128, back, NULL), BV_ERR_FORMAT, "I2_S", "95 bytes",
               "takes 96");
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_I2S, buf, 97, 2, 128, back, NULL), BV_ERR_FORMAT, "I2_S", "97 bytes");
    /* byte 37 = block 1, position 5; 0x5d = 01 01 11 01: field at bits 2..3 (g = 2) is 3 -> code 128 + 64 + 5 */
    buf[37] = 0x5d;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_I2S, buf, 96, 2, 128, back, NULL), BV_ERR_FORMAT, "I2_S",
               "byte offset 37 has value 93 (0x5d)", "bits 2..3 (code 197) is 3");
    buf[37] = 0x55;
    /* bad scales in the trailer */
    float bad[] = {NAN, INFINITY, -1.0f};
    for (int i = 0; i < 3; i++) {
        lef32(buf + 64, bad[i]);
        EXPECT_ERR(bv_tpack_unpack(BV_TPACK_I2S, buf, 96, 2, 128, back, NULL), BV_ERR_FORMAT, "I2_S",
                   "scale at byte offset 64");
        EXPECT_ERR(bv_tpack_pack(BV_TPACK_I2S, codes, 2, 128, bad[i], buf, 96), BV_ERR_ARG, "I2_S pack: scale");
    }
    /* the 28 padding bytes are not checked (bitnet.cpp leaves them uninitialised) */
    lef32(buf + 64, 0.5f);
    memset(buf + 68, 0xab, 28);
    assert_int_equal(bv_tpack_unpack(BV_TPACK_I2S, buf, 96, 2, 128, back, NULL), BV_OK);
    /* rows not a multiple of 128 */
    EXPECT_ERR(bv_tpack_nbytes(BV_TPACK_I2S, 4, 100, &n), BV_ERR_SHAPE, "I2_S", "row length 100",
               "not a multiple of 128");
    EXPECT_ERR(bv_tpack_nbytes(BV_TPACK_I2S, 1, 129, &n), BV_ERR_SHAPE, "row length 129");
    codes[200] = 5;
    EXPECT_ERR(bv_tpack_pack(BV_TPACK_I2S, codes, 2, 128, 1.0f, buf, 96), BV_ERR_ARG,
               "I2_S pack: code 5 at index 200 (row 1, col 72)");
}

static void test_malformed_tq5(void **state) {
    int8_t codes[2 * 7] = {0}, back[2 * 7];
    uint8_t buf[32 + 4], ok[32 + 4];
    size_t n;
    assert_int_equal(bv_tpack_nbytes(BV_TPACK_TQ5, 2, 7, &n), BV_OK);
    assert_int_equal(n, 36u);
    assert_int_equal(bv_tpack_pack(BV_TPACK_TQ5, codes, 2, 7, 0.5f, ok, n), BV_OK);
#define RESET memcpy(buf, ok, sizeof ok)
    /* byte > 242 in a full group: payload byte 2 = row 1, codes 0..4, at offset 34 */
    RESET;
    buf[34] = 243;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "TQ5",
               "byte offset 34 has value 243 > 242", "(row 1, codes 0..4)");
    /* a tail byte (2 codes) whose padding digits are not 1: valid tail values are 117..125 */
    RESET;
    buf[33] = 116;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "TQ5",
               "byte offset 33 has value 116, the last byte of row 0 holds 2 codes", "117..125");
    RESET;
    buf[35] = 126;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "byte offset 35 has value 126");
    RESET;
    buf[35] = 250;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "byte offset 35 has value 250 > 242");
    /* every valid tail value decodes */
    for (int v = 117; v <= 125; v++) {
        RESET;
        buf[35] = (uint8_t)v;
        assert_int_equal(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_OK);
        assert_int_equal(back[12], (v - 117) % 3 - 1);
        assert_int_equal(back[13], (v - 117) / 3 - 1);
    }
    /* header */
    RESET;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, 35, 2, 7, back, NULL), BV_ERR_FORMAT, "TQ5", "35 bytes",
               "takes 36");
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, 20, 2, 7, back, NULL), BV_ERR_FORMAT, "shorter than the 32-byte");
    buf[2] = 'X';
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "TQ5",
               "magic is 42 56 58 35");
    RESET;
    buf[4] = 2;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "byte offset 4: version 2");
    RESET;
    buf[29] = 1;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT,
               "byte offset 28: reserved field is 256");
    RESET;
    lef32(buf + 24, NAN);
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 7, back, NULL), BV_ERR_FORMAT, "byte offset 24: scale nan");
    RESET;
    le64(buf + 8, (uint64_t)1 << 62);
    EXPECT_ERR(bv_tpack_tq5_header(buf, n, NULL, NULL, NULL), BV_ERR_FORMAT, "byte offset 8", "too large");
    /* header shape differs from the expected one (same byte count: (2, 7) vs (2, 6)) */
    RESET;
    EXPECT_ERR(bv_tpack_unpack(BV_TPACK_TQ5, buf, n, 2, 6, back, NULL), BV_ERR_SHAPE,
               "header says shape (2, 7); expected (2, 6)");
    /* header shape consistent, blob length not */
    RESET;
    le64(buf + 16, 12);
    EXPECT_ERR(bv_tpack_tq5_header(buf, n, NULL, NULL, NULL), BV_ERR_FORMAT, "36 bytes",
               "shape (2, 12) takes 38");
    codes[3] = 1;
    codes[9] = -1;
    codes[10] = 3;
    EXPECT_ERR(bv_tpack_pack(BV_TPACK_TQ5, codes, 2, 7, 0.5f, buf, n), BV_ERR_ARG,
               "TQ5 pack: code 3 at index 10 (row 1, col 3)");
#undef RESET
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tq5_all_bytes),    cmocka_unit_test(test_roundtrip_shapes),
        cmocka_unit_test(test_nbytes),           cmocka_unit_test(test_cross_format),
        cmocka_unit_test(test_threads),          cmocka_unit_test(test_fixture_hf),
        cmocka_unit_test(test_fixture_i2s),      cmocka_unit_test(test_fixture_tq5),
        cmocka_unit_test(test_malformed_hf),     cmocka_unit_test(test_malformed_i2s),
        cmocka_unit_test(test_malformed_tq5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
