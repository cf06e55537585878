/* Tests of bv_qweight_set_packed (autograd/autograd.h): a BitLinear weight cache filled from
 * packed ternary codes (src/ternary_pack.h: HF BitNet offline, I2_S, TQ5) and the multiplicative
 * scale m = max(mean|W|, 1e-5), as the export runtime will load it.
 *
 * Round trip with exact expectations: quantize a random fp32 weight the normal way (the op's own
 * cache), pack its codes with each format and m, fill a second cache from the bytes, and require
 * the BitLinear forward (fp32 and integer paths) and backward to be bit-identical, with no
 * re-quantization of the fp32 weight the second layer is given (zeros: it must not be read), at any
 * params version. Then every size and scale error: its status, a message naming the format and the
 * shape, and the cache left as it was. */
#include <math.h>
#include <string.h>

#include "src/kernels/bitlinear.h"
#include "tests/util/testutil.h"

/* fp32 bits equal (memcmp semantics), naming the first difference */
static void check_bits(const char *what, const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &got[i], 4);
        memcpy(&b, &want[i], 4);
        if (a != b)
            fail_msg("%s: first difference at %lld: got %.9g (0x%08x), want %.9g (0x%08x)", what, (long long)i,
                     (double)got[i], a, (double)want[i], b);
    }
}

typedef struct {
    float *y, *dx, *db;
} layer_out;

/* y = bitlinear(x, w, b) with cache q at `version`, and its backward with seed dy; copies out. */
static layer_out run_layer(bv_qweight *q, uint64_t version, const float *w, const float *x, const float *bias,
                           const float *dy, int64_t N, int64_t C, int64_t OC) {
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_tensor xt = bv_tensor_make2((void *)x, BV_DTYPE_F32, N, C), wt = bv_tensor_make2((void *)w, BV_DTYPE_F32, OC, C);
    bv_tensor bt = bv_tensor_make1((void *)bias, BV_DTYPE_F32, OC);
    bv_var *xv = bv_var_leaf(&g, &xt, BV_DTYPE_F32, true);
    bv_var *bv = bv_var_leaf(&g, &bt, BV_DTYPE_F32, true);
    bv_bitlinear_cfg cfg = {1, 8};
    bv_var *y = bv_op_bitlinear(&g, xv, bv_var_wrap(&g, &wt, false), bv, &cfg, q, version);
    bv_graph_backward_seed(&g, y, dy);
    layer_out o = {bv_test_copy_f32(bv_var_f32(y), N * OC), bv_test_copy_f32(xv->grad, N * C),
                   bv_test_copy_f32(bv->grad, OC)};
    bv_graph_free(&g);
    return o;
}

/* y = bitlinear(x, w, b) without a graph (no_grad: evaluation, the runtime), copied out */
static float *run_layer_nograd(bv_qweight *q, uint64_t version, const float *w, const float *x, const float *bias,
                               int64_t N, int64_t C, int64_t OC) {
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_tensor xt = bv_tensor_make2((void *)x, BV_DTYPE_F32, N, C), wt = bv_tensor_make2((void *)w, BV_DTYPE_F32, OC, C);
    bv_tensor bt = bv_tensor_make1((void *)bias, BV_DTYPE_F32, OC);
    bv_graph_no_grad_begin(&g);
    bv_bitlinear_cfg cfg = {1, 8};
    bv_var *y = bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_wrap(&g, &wt, false),
                                bv_var_wrap(&g, &bt, false), &cfg, q, version);
    float *out = bv_test_copy_f32(bv_var_f32(y), N * OC);
    bv_graph_no_grad_end(&g);
    bv_graph_free(&g);
    return out;
}

static void layer_out_free(layer_out *o) { free(o->y), free(o->dx), free(o->db); }

/* One shape through every format that holds it, both forward paths. */
static void round_trip(int64_t OC, int64_t C, double wstd, uint64_t seed) {
    const int64_t N = 5;
    bool was = bv_bitlinear_integer_forward();
    bv_rng r = {seed};
    float *w = malloc((size_t)(OC * C) * sizeof *w), *zeros = bv_test_zeros_f32(OC * C);
    bv_rng_fill_normal_f32(&r, w, OC * C, wstd);
    float *x = bv_test_rand_f32(&r, N * C, -3, 3), *bias = bv_test_rand_f32(&r, OC, -1, 1);
    float *dy = bv_test_rand_f32(&r, N * OC, -1, 1);
    /* the scale the formats carry: the quantizer's clamped mean|W| */
    float m = bv_k_absmean(w, OC * C);
    m = m < BV_BITLINEAR_EPS ? BV_BITLINEAR_EPS : m;
    for (int integer = 0; integer < 2; integer++) {
        bv_bitlinear_set_integer_forward(integer);
        bv_qweight qa;
        memset(&qa, 0, sizeof qa);
        layer_out a = run_layer(&qa, 7, w, x, bias, dy, N, C, OC); /* quantizes w into qa */
        for (int f = 0; f < BV_TPACK_NFORMATS; f++) {
            size_t nb;
            if (bv_tpack_nbytes((bv_tpack_format)f, OC, C, &nb) != BV_OK) continue; /* shape not held */
            uint8_t *bytes = malloc(nb);
            assert_int_equal(bv_tpack_pack((bv_tpack_format)f, qa.codes, OC, C, m, bytes, nb), BV_OK);
            bv_qweight qb;
            memset(&qb, 0, sizeof qb);
            /* HF keeps the scale outside the bytes; I2_S and TQ5 carry it (NAN: use theirs) */
            float sc = f == BV_TPACK_HF ? m : NAN;
            if (bv_qweight_set_packed(&qb, OC, C, (bv_tpack_format)f, bytes, nb, sc) != BV_OK)
                fail_msg("%s (%lld, %lld): %s", bv_tpack_name((bv_tpack_format)f), (long long)OC, (long long)C,
                         bv_error_msg());
            assert_true(qb.version == BV_QWEIGHT_PACKED);
            char what[96];
            snprintf(what, sizeof what, "%s (%lld, %lld) %s: ", bv_tpack_name((bv_tpack_format)f), (long long)OC,
                     (long long)C, integer ? "integer" : "fp32");
            uint32_t sa, sb;
            memcpy(&sa, &qa.scale, 4), memcpy(&sb, &qb.scale, 4);
            if (sa != sb) fail_msg("%sscale %.9g vs the quantizer's %.9g", what, (double)qb.scale, (double)qa.scale);
            /* filled from packed bytes, the cache holds the 2-bit form alone: no int8 codes, no fp32 copy */
            if (qb.codes || qb.wq || qb.held || !qb.tmat.packed)
                fail_msg("%sthe filled cache holds codes %p, wq %p (held %u), tmat %p: expected the 2-bit form alone",
                         what, (void *)qb.codes, (void *)qb.wq, qb.held, (void *)qb.tmat.packed);
            int8_t *tc = malloc((size_t)(OC * C));
            bv_ternary_mat_unpack(&qb.tmat, tc);
            assert_memory_equal(tc, qa.codes, (size_t)(OC * C));
            free(tc);
            /* without a graph the integer path runs on the 2-bit form alone, as in the recorded
             * integer forward, and nothing else is made */
            float *yn = run_layer_nograd(&qb, 7, zeros, x, bias, N, C, OC);
            if (integer) {
                char w1[160];
                snprintf(w1, sizeof w1, "%sno_grad y", what);
                check_bits(w1, yn, a.y, N * OC);
            }
            free(yn);
            if (integer && (qb.codes || qb.wq || qb.held)) fail_msg("%sa no_grad forward made codes or wq", what);
            /* the layer is given a zero weight and other versions: the cache is used as it is */
            uint64_t c0 = bv_k_quant_weight_calls();
            for (uint64_t version = 7; version <= 9; version++) {
                layer_out b = run_layer(&qb, version, zeros, x, bias, dy, N, C, OC);
                char w2[160];
                snprintf(w2, sizeof w2, "%sy", what);
                check_bits(w2, b.y, a.y, N * OC);
                snprintf(w2, sizeof w2, "%sdx", what);
                check_bits(w2, b.dx, a.dx, N * C);
                snprintf(w2, sizeof w2, "%sdb", what);
                check_bits(w2, b.db, a.db, OC);
                layer_out_free(&b);
            }
            assert_int_equal(bv_k_quant_weight_calls(), c0);
            assert_true(qb.version == BV_QWEIGHT_PACKED);
            assert_non_null(qb.tmat.packed);
            /* the recorded forwards made the fp32 copy the backward needs, from the packed codes */
            assert_true((qb.held & BV_QWEIGHT_WQ) && (qb.held & BV_QWEIGHT_CODES));
            assert_memory_equal(qb.codes, qa.codes, (size_t)(OC * C));
            for (int64_t i = 0; i < OC * C; i++) /* as numbers: a zero may be -0 in the quantizer's copy */
                if (!(qb.wq[i] == qa.wq[i])) fail_msg("%swq[%lld] %.9g vs %.9g", what, (long long)i, qb.wq[i], qa.wq[i]);
            bv_qweight_free(&qb);
            free(bytes);
        }
        layer_out_free(&a);
        bv_qweight_free(&qa);
    }
    bv_bitlinear_set_integer_forward(was);
    free(w), free(zeros), free(x), free(bias), free(dy);
}

static void test_round_trip_all_formats(void **state) {
    round_trip(8, 256, 0.05, 1);  /* HF (OC % 4), I2_S (C % 128) and TQ5 */
    round_trip(12, 384, 2.0, 2);  /* a large scale */
    round_trip(5, 37, 0.02, 3);   /* TQ5 only: any shape */
    round_trip(4, 128, 1e-7, 4);  /* mean|W| below 1e-5: the clamp (codes all 0) */
}

/* With several threads the filled cache and the outputs are the same (the fill splits over
 * OpenMP above 65536 weights). */
static void test_threads(void **state) {
    bv_set_num_threads(1);
    round_trip(256, 384, 0.05, 5);
    bv_set_num_threads(2);
    round_trip(256, 384, 0.05, 5);
}

/* Errors: status, message naming the format and shape, cache unchanged. */
static void expect_error(bv_qweight *q, int64_t OC, int64_t C, bv_tpack_format fmt, const uint8_t *b, size_t nb,
                         float scale, bv_status want, const char *needle) {
    bv_qweight before = *q;
    bv_status st = bv_qweight_set_packed(q, OC, C, fmt, b, nb, scale);
    const char *m = bv_error_msg();
    if (st != want || !strstr(m, needle))
        fail_msg("(%lld, %lld) %s: expected status %d with '%s', got %d: '%s'", (long long)OC, (long long)C,
                 bv_tpack_name(fmt), want, needle, st, m);
    assert_memory_equal(q, &before, sizeof before); /* nothing replaced, nothing leaked */
}

static void test_errors(void **state) {
    /* a valid cache first: errors must leave it intact */
    int8_t codes[8 * 128];
    for (int i = 0; i < 8 * 128; i++) codes[i] = (int8_t)(i % 3 - 1);
    uint8_t hf[8 * 128 / 4], i2s[8 * 128 / 4 + 32], tq5[4096];
    size_t ntq5;
    assert_int_equal(bv_tpack_nbytes(BV_TPACK_TQ5, 8, 128, &ntq5), BV_OK);
    assert_int_equal(bv_tpack_pack(BV_TPACK_HF, codes, 8, 128, 0.5f, hf, sizeof hf), BV_OK);
    assert_int_equal(bv_tpack_pack(BV_TPACK_I2S, codes, 8, 128, 0.5f, i2s, sizeof i2s), BV_OK);
    assert_int_equal(bv_tpack_pack(BV_TPACK_TQ5, codes, 8, 128, 0.5f, tq5, ntq5), BV_OK);
    bv_qweight q;
    memset(&q, 0, sizeof q);
    assert_int_equal(bv_qweight_set_packed(&q, 8, 128, BV_TPACK_TQ5, tq5, ntq5, NAN), BV_OK);
    assert_true(q.scale == 2.0f && q.wq == NULL && q.tmat.packed && q.out_features == 8 && q.in_features == 128);
    int8_t back[8 * 128];
    bv_ternary_mat_unpack(&q.tmat, back);
    assert_memory_equal(back, codes, sizeof back);

    expect_error(&q, 8, 128, BV_TPACK_HF, hf, sizeof hf - 1, 0.5f, BV_ERR_FORMAT,
                 "packed HF-BitNet weight (8, 128): 255 bytes, expected 256");
    expect_error(&q, 8, 128, BV_TPACK_I2S, i2s, sizeof i2s + 4, NAN, BV_ERR_FORMAT,
                 "packed I2_S weight (8, 128): 292 bytes, expected 288");
    expect_error(&q, 6, 128, BV_TPACK_HF, hf, sizeof hf, 0.5f, BV_ERR_SHAPE, "packed HF-BitNet weight (6, 128)");
    expect_error(&q, 8, 100, BV_TPACK_I2S, i2s, sizeof i2s, NAN, BV_ERR_SHAPE, "packed I2_S weight (8, 100)");
    expect_error(&q, 0, 128, BV_TPACK_TQ5, tq5, ntq5, NAN, BV_ERR_SHAPE, "packed TQ5 weight (0, 128): dimensions");
    expect_error(&q, (int64_t)1 << 40, (int64_t)1 << 40, BV_TPACK_TQ5, tq5, ntq5, NAN, BV_ERR_SHAPE, "2^60");
    expect_error(&q, 16, 64, BV_TPACK_TQ5, tq5, ntq5, NAN, BV_ERR_SHAPE, "packed TQ5 weight (16, 64)"); /* header */
    expect_error(&q, 8, 128, BV_TPACK_HF, hf, sizeof hf, NAN, BV_ERR_ARG, "stores no scale; pass its weight_scale");
    expect_error(&q, 8, 128, BV_TPACK_HF, hf, sizeof hf, -1.0f, BV_ERR_ARG, "scale -1, expected finite and >= 0");
    expect_error(&q, 8, 128, BV_TPACK_HF, hf, sizeof hf, INFINITY, BV_ERR_ARG, "expected finite");
    expect_error(&q, 8, 128, BV_TPACK_I2S, i2s, sizeof i2s, 0.25f, BV_ERR_ARG,
                 "scale 0.25 given, but the bytes store 0.5");
    uint8_t bad[sizeof hf];
    memcpy(bad, hf, sizeof bad);
    bad[3] = 0xFF; /* a 2-bit field of 3 */
    expect_error(&q, 8, 128, BV_TPACK_HF, bad, sizeof bad, 0.5f, BV_ERR_FORMAT, "packed HF-BitNet weight (8, 128): ");
    expect_error(&q, 8, 128, (bv_tpack_format)7, hf, sizeof hf, 0.5f, BV_ERR_ARG, "unknown format 7");
    /* and the cache still works, from the same packed bytes */
    assert_true(q.version == BV_QWEIGHT_PACKED && q.scale == 2.0f && q.tmat.packed);
    bv_ternary_mat_unpack(&q.tmat, back);
    assert_memory_equal(back, codes, sizeof back);
    bv_qweight_free(&q);
    assert_true(q.version == 0 && q.wq == NULL);
}

/* The layer's weight must have the shape the packed cache holds (a programmer error). */
static void die_shape_mismatch(void) {
    int8_t codes[8 * 5] = {0};
    size_t nb;
    bv_tpack_nbytes(BV_TPACK_TQ5, 8, 5, &nb);
    uint8_t b[256];
    bv_tpack_pack(BV_TPACK_TQ5, codes, 8, 5, 1.0f, b, nb);
    bv_qweight q;
    memset(&q, 0, sizeof q);
    bv_qweight_set_packed(&q, 8, 5, BV_TPACK_TQ5, b, nb, NAN);
    float w[5 * 8] = {0}, x[8] = {1};
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    bv_tensor xt = bv_tensor_make2(x, BV_DTYPE_F32, 1, 8), wt = bv_tensor_make2(w, BV_DTYPE_F32, 5, 8);
    bv_bitlinear_cfg cfg = {1, 8};
    bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_wrap(&g, &wt, false), NULL, &cfg, &q, 1);
}

static void test_shape_mismatch_asserts(void **state) {
    bv_test_expect_abort("packed cache of another shape", die_shape_mismatch,
                         "the packed weight cache holds (8, 5), the layer's weight is (5, 8)", NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_formats),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_shape_mismatch_asserts),
    };
    return cmocka_run_group_tests_name("bitlinear_packed", tests, NULL, NULL);
}
