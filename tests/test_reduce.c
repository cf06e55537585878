/* Tests of sum/mean reductions: fast vs double reference, 1 vs 2 threads, gradchecks, and a
 * no_grad region recording nothing. */
#include <string.h>

#include "src/kernels/reduce.h"
#include "tests/util/testutil.h"

static void test_reduce_fast_vs_ref_and_threads(void **state) {
    bv_rng r = {11};
    const int64_t cases[][3] = {{1, 100003, 1}, {7, 13, 5}, {3, 1, 9}, {1, 300000, 1}, {5, 17, 1}, {1, 33, 70}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t o = cases[c][0], n = cases[c][1], in = cases[c][2];
        float *x = malloc(o * n * in * 4), *y1 = malloc(o * in * 4), *y2 = malloc(o * in * 4);
        double *xd = malloc(o * n * in * 8), *yd = malloc(o * in * 8);
        bv_rng_fill_f32(&r, x, o * n * in, -1, 1);
        for (int64_t i = 0; i < o * n * in; i++) xd[i] = x[i];
        bv_set_num_threads(1);
        bv_k_reduce_fwd(y1, x, o, n, in, 0.5);
        bv_set_num_threads(2);
        bv_k_reduce_fwd(y2, x, o, n, in, 0.5);
        bv_k_reduce_fwd_ref(yd, xd, o, n, in, 0.5);
        bv_check_close_f32_f64("reduce fwd", y2, yd, o * in, 1e-6, 1e-6);
        bv_check_close_f32("reduce 1 vs 2 threads", y2, y1, o * in, 0, 1e-6);
        float *dx = calloc(o * n * in, 4);
        double *dxd = calloc(o * n * in, 8);
        bv_k_reduce_bwd(dx, y1, o, n, in, 0.25);
        for (int64_t i = 0; i < o * in; i++) yd[i] = y1[i];
        bv_k_reduce_bwd_ref(dxd, yd, o, n, in, 0.25);
        bv_check_close_f32_f64("reduce bwd", dx, dxd, o * n * in, 1e-6, 1e-6);
        free(x), free(y1), free(y2), free(xd), free(yd), free(dx), free(dxd);
    }
}

typedef struct {
    int kind, dim;
} red_args;

static bv_var *fn_reduce(bv_graph *g, bv_var **in, void *u) {
    red_args *a = u;
    switch (a->kind) {
    case 0: return bv_op_sum(g, in[0]);
    case 1: return bv_op_mean(g, in[0]);
    case 2: return bv_op_sum_dim(g, in[0], a->dim);
    default: return bv_op_mean_dim(g, in[0], a->dim);
    }
}

static void test_reduce_gradcheck(void **state) {
    bv_rng r = {12};
    int64_t s[3] = {3, 4, 5};
    bv_tensor x = bv_test_rand_f64(&r, 3, s, -1, 1);
    bool check[1] = {true};
    for (int kind = 0; kind < 4; kind++)
        for (int dim = -1; dim < 3; dim++) {
            red_args a = {kind, dim};
            bv_check_gradients("reduce", fn_reduce, &a, 1, &x, check, NULL);
        }
    free(x.data);
}

static void test_no_grad_records_nothing(void **state) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    float d[6] = {1, 2, 3, 4, 5, 6};
    bv_tensor t = bv_tensor_make2(d, BV_DTYPE_F32, 2, 3);
    bv_var *x = bv_var_wrap(&g, &t, true);
    bv_graph_no_grad_begin(&g);
    bv_var *y = bv_op_sum(&g, x);
    bv_graph_no_grad_end(&g);
    assert_int_equal(g.n_tape, 0);
    assert_false(y->requires_grad);
    assert_true(bv_var_f32(y)[0] == 21.0f);
    bv_var *z = bv_op_mean_dim(&g, x, 1);
    assert_int_equal(g.n_tape, 1);
    assert_true(z->requires_grad);
    assert_true(bv_var_f32(z)[0] == 2.0f && bv_var_f32(z)[1] == 5.0f);
    bv_graph_free(&g);
}

static void test_reduce_torch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "matmul.safetensors");
    red_args a[4] = {{0, 0}, {1, 0}, {2, 1}, {3, 2}};
    bv_fx_check_op(&fx, "sum", 1, fn_reduce, &a[0], 1e-5);
    bv_fx_check_op(&fx, "mean", 1, fn_reduce, &a[1], 1e-5);
    bv_fx_check_op(&fx, "sum_dim1", 1, fn_reduce, &a[2], 1e-5);
    bv_fx_check_op(&fx, "mean_dim2", 1, fn_reduce, &a[3], 1e-5);
    bv_fx_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_fast_vs_ref_and_threads),
        cmocka_unit_test(test_reduce_gradcheck),
        cmocka_unit_test(test_no_grad_records_nothing),
        cmocka_unit_test(test_reduce_torch_parity),
    };
    return cmocka_run_group_tests_name("reduce", tests, NULL, NULL);
}
