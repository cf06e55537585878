/* Tests of the GEMM kernels and ops: fast fp32 vs double reference, 1 vs 2 threads, and
 * finite-difference gradient checks (double precision) of linear and batched matmul with every
 * transpose combination. */
#include <omp.h>
#include <string.h>

#include "src/kernels/matmul.h"
#include "tests/util/testutil.h"

static void test_linear_fast_vs_ref(void **state) {
    bv_rng r = {1};
    int64_t N = 37, C = 53, OC = 29;
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *y = malloc(N * OC * 4);
    double *xd = malloc(N * C * 8), *wd = malloc(OC * C * 8), *bd = malloc(OC * 8), *yd = malloc(N * OC * 8);
    bv_rng_fill_f32(&r, x, N * C, -1, 1);
    bv_rng_fill_f32(&r, w, OC * C, -1, 1);
    bv_rng_fill_f32(&r, b, OC, -1, 1);
    for (int64_t i = 0; i < N * C; i++) xd[i] = x[i];
    for (int64_t i = 0; i < OC * C; i++) wd[i] = w[i];
    for (int64_t i = 0; i < OC; i++) bd[i] = b[i];
    bv_k_linear_fwd(y, x, w, b, N, C, OC);
    bv_k_linear_fwd_ref(yd, xd, wd, bd, N, C, OC);
    bv_check_close_f32_f64("linear fwd", y, yd, N * OC, 1e-5, 1e-5);
    /* backward */
    float *dy = malloc(N * OC * 4), *dx = calloc(N * C, 4), *dw = calloc(OC * C, 4), *db = calloc(OC, 4);
    double *dyd = malloc(N * OC * 8), *dxd = calloc(N * C, 8), *dwd = calloc(OC * C, 8), *dbd = calloc(OC, 8);
    bv_rng_fill_f32(&r, dy, N * OC, -1, 1);
    for (int64_t i = 0; i < N * OC; i++) dyd[i] = dy[i];
    bv_k_linear_bwd(dx, dw, db, dy, x, w, N, C, OC);
    bv_k_linear_bwd_ref(dxd, dwd, dbd, dyd, xd, wd, N, C, OC);
    bv_check_close_f32_f64("linear dx", dx, dxd, N * C, 1e-5, 1e-5);
    bv_check_close_f32_f64("linear dw", dw, dwd, OC * C, 1e-5, 1e-5);
    bv_check_close_f32_f64("linear db", db, dbd, OC, 1e-5, 1e-5);
    free(x), free(w), free(b), free(y), free(xd), free(wd), free(bd), free(yd);
    free(dy), free(dx), free(dw), free(db), free(dyd), free(dxd), free(dwd), free(dbd);
}

static void test_gemm_batched_fast_vs_ref(void **state) {
    bv_rng r = {2};
    for (int shared = 0; shared < 2; shared++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                bv_gemm_shape s = {.nb = 3, .M = 7, .N = 5, .K = 11, .ta = ta, .tb = tb};
                s.sa = s.M * s.K;
                s.sb = shared ? 0 : s.K * s.N;
                s.sc = s.M * s.N;
                int64_t na = s.nb * s.sa, nbb = shared ? s.K * s.N : s.nb * s.sb, nc = s.nb * s.sc;
                float *a = malloc(na * 4), *b = malloc(nbb * 4), *c = malloc(nc * 4), *dc = malloc(nc * 4);
                float *da = calloc(na, 4), *db = calloc(nbb, 4);
                double *ad = malloc(na * 8), *bd = malloc(nbb * 8), *cd = malloc(nc * 8), *dcd = malloc(nc * 8);
                double *dad = calloc(na, 8), *dbd = calloc(nbb, 8);
                bv_rng_fill_f32(&r, a, na, -1, 1);
                bv_rng_fill_f32(&r, b, nbb, -1, 1);
                bv_rng_fill_f32(&r, dc, nc, -1, 1);
                for (int64_t i = 0; i < na; i++) ad[i] = a[i];
                for (int64_t i = 0; i < nbb; i++) bd[i] = b[i];
                for (int64_t i = 0; i < nc; i++) dcd[i] = dc[i];
                bv_k_gemm_batched(c, a, b, &s, 1.0f, 0.0f);
                bv_k_gemm_batched_ref(cd, ad, bd, &s, 1.0, 0.0);
                char what[64];
                snprintf(what, sizeof what, "gemm shared=%d ta=%d tb=%d", shared, ta, tb);
                bv_check_close_f32_f64(what, c, cd, nc, 1e-5, 1e-5);
                bv_k_gemm_batched_bwd(da, db, dc, a, b, &s);
                bv_k_gemm_batched_bwd_ref(dad, dbd, dcd, ad, bd, &s);
                bv_check_close_f32_f64("gemm da", da, dad, na, 1e-5, 1e-5);
                bv_check_close_f32_f64("gemm db", db, dbd, nbb, 1e-5, 1e-5);
                free(a), free(b), free(c), free(dc), free(da), free(db);
                free(ad), free(bd), free(cd), free(dcd), free(dad), free(dbd);
            }
}

static void test_linear_threads_agree(void **state) {
    bv_rng r = {3};
    int64_t N = 64, C = 96, OC = 80;
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *dy = malloc(N * OC * 4);
    bv_rng_fill_f32(&r, x, N * C, -1, 1);
    bv_rng_fill_f32(&r, w, OC * C, -1, 1);
    bv_rng_fill_f32(&r, b, OC, -1, 1);
    bv_rng_fill_f32(&r, dy, N * OC, -1, 1);
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int t = 0; t < 2; t++) {
        bv_set_num_threads(t + 1);
        y[t] = malloc(N * OC * 4);
        dx[t] = calloc(N * C, 4), dw[t] = calloc(OC * C, 4), db[t] = calloc(OC, 4);
        bv_k_linear_fwd(y[t], x, w, b, N, C, OC);
        bv_k_linear_bwd(dx[t], dw[t], db[t], dy, x, w, N, C, OC);
    }
    bv_set_num_threads(2);
    /* y, dx, dW come from sgemm, whose blocking (and so rounding) OpenBLAS may choose by thread
     * count and kernel set: held to the rounding bound of the dot products. db is our own column
     * sum over a fixed decomposition: identical. */
    double *by = malloc(N * OC * 8), *bdx = malloc(N * C * 8), *bdw = malloc(OC * C * 8);
    bv_test_linear_bounds(x, w, b, dy, N, C, OC, by, bdx, bdw);
    bv_check_within_dot_bound("linear y 1 vs 2 threads", y[1], y[0], by, N * OC, C + 1);
    bv_check_within_dot_bound("linear dx 1 vs 2 threads", dx[1], dx[0], bdx, N * C, OC);
    bv_check_within_dot_bound("linear dw 1 vs 2 threads", dw[1], dw[0], bdw, OC * C, N);
    bv_check_close_f32("linear db 1 vs 2 threads", db[1], db[0], OC, 0, 0);
    for (int t = 0; t < 2; t++) free(y[t]), free(dx[t]), free(dw[t]), free(db[t]);
    free(by), free(bdx), free(bdw);
    free(x), free(w), free(b), free(dy);
}

static bv_var *fn_linear(bv_graph *g, bv_var **in, void *u) { return bv_op_linear(g, in[0], in[1], in[2]); }
static bv_var *fn_linear_nobias(bv_graph *g, bv_var **in, void *u) { return bv_op_linear(g, in[0], in[1], NULL); }

static void test_linear_gradcheck(void **state) {
    bv_rng r = {4};
    int64_t xs[3] = {2, 3, 5}, ws[2] = {4, 5}, bs[1] = {4};
    bv_tensor in[3] = {bv_test_rand_f64(&r, 3, xs, -1, 1), bv_test_rand_f64(&r, 2, ws, -1, 1),
                       bv_test_rand_f64(&r, 1, bs, -1, 1)};
    bool check[3] = {true, true, true};
    bv_check_gradients("linear", fn_linear, NULL, 3, in, check, NULL);
    bv_check_gradients("linear (no bias)", fn_linear_nobias, NULL, 2, in, check, NULL);
    /* frozen weight: gradient still reaches x */
    bool check_x[3] = {true, false, false};
    bv_check_gradients("linear (frozen w, b)", fn_linear, NULL, 3, in, check_x, NULL);
    for (int i = 0; i < 3; i++) free(in[i].data);
}

typedef struct {
    bool ta, tb;
} mm_args;
static bv_var *fn_matmul(bv_graph *g, bv_var **in, void *u) {
    mm_args *a = u;
    return bv_op_matmul(g, in[0], in[1], a->ta, a->tb);
}

static void test_matmul_gradcheck(void **state) {
    bv_rng r = {5};
    for (int shared = 0; shared < 2; shared++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int64_t M = 3, K = 4, N = 5;
                int64_t as[3] = {2, ta ? K : M, ta ? M : K};
                int64_t bs3[3] = {2, tb ? N : K, tb ? K : N};
                bv_tensor in[2] = {bv_test_rand_f64(&r, 3, as, -1, 1),
                                   shared ? bv_test_rand_f64(&r, 2, bs3 + 1, -1, 1) : bv_test_rand_f64(&r, 3, bs3, -1, 1)};
                bool check[2] = {true, true};
                mm_args a = {ta, tb};
                char what[64];
                snprintf(what, sizeof what, "matmul shared=%d ta=%d tb=%d", shared, ta, tb);
                bv_check_gradients(what, fn_matmul, &a, 2, in, check, NULL);
                free(in[0].data), free(in[1].data);
            }
}

/* Gradient accumulation across micro-batches and frozen parameters with the param store. */
static void test_param_grad_accumulation(void **state) {
    bv_params p;
    bv_params_init(&p);
    int64_t ws[2] = {3, 4}, bs[1] = {3};
    int iw = bv_params_add(&p, "layer.weight", 2, ws, true);
    int ib = bv_params_add(&p, "layer.bias", 1, bs, false);
    assert_int_equal(bv_params_finalize(&p), BV_OK);
    assert_int_equal(p.numel_trainable, 12);
    assert_null(bv_params_grad(&p, ib));
    bv_rng r = {6};
    bv_rng_fill_f32(&r, p.values, (int64_t)p.numel_total, -1, 1);
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    float x[2][4];
    bv_rng_fill_f32(&r, &x[0][0], 8, -1, 1);
    float single[12] = {0};
    /* two micro-batches of one row each, accumulated */
    for (int mb = 0; mb < 2; mb++) {
        bv_graph_reset(&g);
        bv_tensor xt = bv_tensor_make2(x[mb], BV_DTYPE_F32, 1, 4);
        bv_var *xv = bv_var_wrap(&g, &xt, false);
        bv_var *y = bv_op_linear(&g, xv, bv_var_param(&g, &p, iw), bv_var_param(&g, &p, ib));
        bv_graph_backward(&g, bv_op_sum(&g, y));
    }
    /* expected: dW[o][c] = sum over micro-batches of x[c] */
    for (int o = 0; o < 3; o++)
        for (int c = 0; c < 4; c++) single[o * 4 + c] = x[0][c] + x[1][c];
    bv_check_close_f32("accumulated dW", bv_params_grad(&p, iw), single, 12, 1e-6, 1e-6);
    bv_params_zero_grad(&p);
    for (int i = 0; i < 12; i++) assert_true(bv_params_grad(&p, iw)[i] == 0.0f);
    bv_graph_free(&g);
    bv_params_free(&p);
}

/* PyTorch parity (tests/gen/gen_matmul.py): F32 path to float rounding, F64 path to 1e-12. */
static void test_matmul_torch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "matmul.safetensors");
    bv_fx_check_op(&fx, "linear", 3, fn_linear, NULL, 2e-5);
    for (int shared = 0; shared < 2; shared++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                char name[64];
                snprintf(name, sizeof name, "matmul_s%d_a%d_b%d", shared, ta, tb);
                mm_args a = {ta, tb};
                bv_fx_check_op(&fx, name, 2, fn_matmul, &a, 2e-5);
            }
    bv_fx_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_fast_vs_ref),     cmocka_unit_test(test_gemm_batched_fast_vs_ref),
        cmocka_unit_test(test_linear_threads_agree),   cmocka_unit_test(test_linear_gradcheck),
        cmocka_unit_test(test_matmul_gradcheck),       cmocka_unit_test(test_param_grad_accumulation),
        cmocka_unit_test(test_matmul_torch_parity),
    };
    return cmocka_run_group_tests_name("matmul", tests, NULL, NULL);
}
