/* Tests of the profiling counters (src/profile.h) behind `bitvla bench train`:
 *  - off (the default), the ops add nothing to any counter;
 *  - on, each op charges its own kind and only it: linear and matmul (forward and backward) GEMM,
 *    BitLinear GEMM and quantization (not attention), sdpa attention (not GEMM);
 *  - bv_prof_reset zeroes them, bv_prof_enable(false) stops them; the kind names.
 * Times are wall seconds, so only "zero" vs "more than zero" is checked (a clock_gettime pair
 * around a kernel call is never equal on Linux's nanosecond CLOCK_MONOTONIC).
 */
#include <string.h>

#include "src/profile.h"
#include "tests/util/testutil.h"

static void expect(const char *what, bool gemm, bool quant, bool attn) {
    const bool want[BV_PROF_KINDS] = {gemm, quant, attn};
    for (int k = 0; k < BV_PROF_KINDS; k++)
        if ((bv_prof_seconds[k] > 0) != want[k])
            fail_msg("%s: counter '%s' is %.3g s, expected %s", what, bv_prof_kind_name((bv_prof_kind)k),
                     bv_prof_seconds[k], want[k] ? "> 0" : "0");
}

typedef enum { OP_LINEAR, OP_MATMUL, OP_BITLINEAR, OP_SDPA } op_kind;

/* forward and backward of one op on small random inputs */
static void run_op(op_kind op) {
    bv_rng r = {7};
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    const int64_t N = 6, C = 8, OC = 5;
    float *xd = bv_test_rand_f32(&r, 2 * N * 4 * C, -1, 1), *wd = bv_test_rand_f32(&r, 2 * N * 4 * C, -1, 1);
    float *vd = bv_test_rand_f32(&r, 2 * N * 4 * C, -1, 1);
    bv_tensor x = bv_tensor_make2(xd, BV_DTYPE_F32, N, C), w = bv_tensor_make2(wd, BV_DTYPE_F32, OC, C);
    bv_var *xv = bv_var_wrap(&g, &x, true), *wv = bv_var_wrap(&g, &w, true), *y = NULL;
    if (op == OP_LINEAR) {
        y = bv_op_linear(&g, xv, wv, NULL);
    } else if (op == OP_MATMUL) {
        y = bv_op_matmul(&g, xv, wv, false, true);
    } else if (op == OP_BITLINEAR) {
        bv_bitlinear_cfg cfg = {.weight_bits = 1, .act_bits = 8};
        y = bv_op_bitlinear(&g, xv, wv, NULL, &cfg, NULL, 0);
    } else {
        int64_t s[4] = {2, N, 4, C}; /* (B, T, H, hd) */
        bv_tensor q = bv_tensor_make(xd, BV_DTYPE_F32, 4, s), k = bv_tensor_make(wd, BV_DTYPE_F32, 4, s);
        bv_tensor v = bv_tensor_make(vd, BV_DTYPE_F32, 4, s);
        y = bv_op_sdpa(&g, bv_var_wrap(&g, &q, true), bv_var_wrap(&g, &k, true), bv_var_wrap(&g, &v, true), NULL);
    }
    bv_graph_backward(&g, bv_op_sum(&g, y));
    bv_graph_free(&g);
    free(xd);
    free(wd);
    free(vd);
}

static void test_off_by_default(void **state) {
    (void)state;
    bv_prof_reset();
    assert_false(bv_prof_on);
    for (op_kind op = OP_LINEAR; op <= OP_SDPA; op++) run_op(op);
    expect("profiling off", false, false, false);
}

static void test_kinds(void **state) {
    (void)state;
    const struct {
        op_kind op;
        const char *name;
        bool gemm, quant, attn;
    } cases[] = {{OP_LINEAR, "linear", true, false, false},
                 {OP_MATMUL, "matmul", true, false, false},
                 {OP_BITLINEAR, "bitlinear", true, true, false},
                 {OP_SDPA, "sdpa", false, false, true}};
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        bv_prof_reset();
        bv_prof_enable(true);
        run_op(cases[i].op);
        bv_prof_enable(false);
        expect(cases[i].name, cases[i].gemm, cases[i].quant, cases[i].attn);
        /* off again: nothing more is added */
        double before[BV_PROF_KINDS];
        memcpy(before, bv_prof_seconds, sizeof before);
        run_op(cases[i].op);
        assert_memory_equal(before, bv_prof_seconds, sizeof before);
    }
    bv_prof_reset();
    expect("after reset", false, false, false);
    assert_string_equal(bv_prof_kind_name(BV_PROF_GEMM), "gemm");
    assert_string_equal(bv_prof_kind_name(BV_PROF_QUANT), "quant");
    assert_string_equal(bv_prof_kind_name(BV_PROF_ATTN), "attention");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_by_default),
        cmocka_unit_test(test_kinds),
    };
    return cmocka_run_group_tests_name("profile", tests, NULL, NULL);
}
