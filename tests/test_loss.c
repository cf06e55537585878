/* Tests of the loss kernels and ops (cross-entropy with ignore_index, L1, MSE): fast fp32 vs double
 * reference, 1 vs 2 threads, the all-ignored and bad-target cases, finite-difference gradient
 * checks in double, and parity with PyTorch (tests/fixtures/norm.safetensors, written by
 * tests/gen/gen_norm.py) for the F32 and F64 paths. */
#include <math.h>

#include "src/kernels/loss.h"
#include "tests/util/testutil.h"

#define IGNORE (-100)

/* targets in [0, V), with `ignored` of the N rows (every N/ignored-th from row 1) set to IGNORE */
static int64_t *rand_targets(bv_rng *r, int64_t N, int64_t V, int64_t ignored) {
    int64_t *t = bv_xmalloc((size_t)N * sizeof(int64_t));
    for (int64_t n = 0; n < N; n++) t[n] = (int64_t)(bv_rng_u64(r) % (uint64_t)V);
    for (int64_t k = 0; k < ignored; k++) t[1 + k * (N / ignored)] = IGNORE;
    return t;
}

/* ---- cross-entropy ---- */

static void test_ce_fast_vs_ref(void **state) {
    bv_rng r = {21};
    int64_t N = 11, V = 1031, n = N * V;
    float *x = bv_test_rand_f32(&r, n, -3, 3);
    for (int64_t j = 0; j < V; j++) x[4 * V + j] *= 30.0f; /* logits up to +-90 */
    int64_t *t = rand_targets(&r, N, V, 2);
    t[0] = 0, t[2] = V - 1; /* first and last class */
    double *xd = bv_test_to_f64(x, n);
    float loss, *lse = bv_xmalloc(N * 4);
    double lossd, *lsed = bv_xmalloc(N * 8);
    int64_t kept = bv_k_cross_entropy_fwd(&loss, lse, x, t, N, V, IGNORE);
    int64_t keptd = bv_k_cross_entropy_fwd_ref(&lossd, lsed, xd, t, N, V, IGNORE);
    assert_int_equal(kept, N - 2);
    assert_int_equal(keptd, N - 2);
    bv_check_close_f32_f64("ce loss", &loss, &lossd, 1, 0, 1e-6);
    for (int64_t i = 0; i < N; i++)
        if (t[i] != IGNORE) bv_check_close_f32_f64("ce lse", &lse[i], &lsed[i], 1, 0, 1e-6);
    /* gradient buffers start non-zero: += everywhere, ignored rows untouched */
    float *dx = bv_test_rand_f32(&r, n, -1, 1), *dx0 = bv_test_copy_f32(dx, n);
    double *dxd = bv_test_to_f64(dx, n);
    float scale = 0.7f / (float)kept;
    bv_k_cross_entropy_bwd(dx, x, t, lse, scale, N, V, IGNORE);
    bv_k_cross_entropy_bwd_ref(dxd, xd, t, lsed, (double)scale, N, V, IGNORE);
    bv_check_close_f32_f64("ce dlogits", dx, dxd, n, 1e-7, 1e-5);
    assert_memory_equal(dx + 1 * V, dx0 + 1 * V, V * 4);
    free(x), free(t), free(xd), free(lse), free(lsed), free(dx), free(dx0), free(dxd);
}

static void test_ce_threads_agree(void **state) {
    bv_rng r = {22};
    int64_t N = 53, V = 5003, n = N * V;
    float *x = bv_test_rand_f32(&r, n, -4, 4), *init = bv_test_rand_f32(&r, n, -1, 1);
    int64_t *t = rand_targets(&r, N, V, 7);
    float loss[2], *lse[2], *dx[2];
    for (int k = 0; k < 2; k++) {
        bv_set_num_threads(k + 1);
        lse[k] = bv_xcalloc(N, 4);
        dx[k] = bv_test_copy_f32(init, n);
        int64_t kept = bv_k_cross_entropy_fwd(&loss[k], lse[k], x, t, N, V, IGNORE);
        bv_k_cross_entropy_bwd(dx[k], x, t, lse[k], 1.0f / (float)kept, N, V, IGNORE);
    }
    bv_set_num_threads(2);
    bv_check_close_f32("ce loss 1 vs 2 threads", &loss[1], &loss[0], 1, 0, 1e-6);
    bv_check_close_f32("ce lse 1 vs 2 threads", lse[1], lse[0], N, 0, 1e-6);
    bv_check_close_f32("ce dlogits 1 vs 2 threads", dx[1], dx[0], n, 0, 1e-6);
    for (int k = 0; k < 2; k++) free(lse[k]), free(dx[k]);
    free(x), free(init), free(t);
}

/* Every target ignored: loss 0 and a zero gradient (PyTorch would give NaN), in both dtypes. */
static void test_ce_all_ignored(void **state) {
    bv_rng r = {23};
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    float xs[3 * 5];
    bv_rng_fill_f32(&r, xs, 15, -2, 2);
    int64_t ts[3] = {IGNORE, IGNORE, IGNORE};
    bv_tensor xt = bv_tensor_make2(xs, BV_DTYPE_F32, 3, 5), tt = bv_tensor_make1(ts, BV_DTYPE_I64, 3);
    bv_dtype dts[2] = {BV_DTYPE_F32, BV_DTYPE_F64};
    for (int k = 0; k < 2; k++) {
        bv_graph_reset(&g);
        bv_var *x = bv_var_leaf(&g, &xt, dts[k], true);
        bv_var *loss = bv_op_cross_entropy(&g, x, &tt, IGNORE);
        assert_int_equal(loss->val.ndim, 0);
        assert_true(bv_tensor_get(&loss->val, NULL) == 0.0);
        bv_graph_backward(&g, loss);
        assert_non_null(x->grad);
        for (int64_t i = 0; i < 15; i++) {
            int64_t idx[2] = {i / 5, i % 5};
            bv_tensor gt = x->val;
            gt.data = x->grad;
            assert_true(bv_tensor_get(&gt, idx) == 0.0);
        }
    }
    bv_graph_free(&g);
}

/* A target outside [0, V) that is not ignore_index aborts with a message naming the value. */
static void die_bad_target(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    float xs[2 * 7] = {0};
    int64_t ts[2] = {3, 7}; /* V = 7: 7 is out of range */
    bv_tensor xt = bv_tensor_make2(xs, BV_DTYPE_F32, 2, 7), tt = bv_tensor_make1(ts, BV_DTYPE_I64, 2);
    bv_var *x = bv_var_leaf(&g, &xt, BV_DTYPE_F32, true);
    bv_op_cross_entropy(&g, x, &tt, IGNORE);
}

static void test_ce_bad_target_aborts(void **state) {
    bv_test_expect_abort("cross_entropy with target 7 of V = 7", die_bad_target, "target 7", NULL);
}

static bv_var *fn_ce(bv_graph *g, bv_var **in, void *u) { return bv_op_cross_entropy(g, in[0], u, IGNORE); }

static void test_ce_gradcheck(void **state) {
    bv_rng r = {24};
    int64_t xs[3] = {2, 3, 7}; /* (B, T, V) logits with (B, T) targets */
    bv_tensor x = bv_test_rand_f64(&r, 3, xs, -3, 3);
    int64_t ts[6] = {0, 6, IGNORE, 3, 2, 5};
    int64_t tshape[2] = {2, 3};
    bv_tensor tt = bv_tensor_make(ts, BV_DTYPE_I64, 2, tshape);
    bool check[1] = {true};
    bv_check_gradients("cross_entropy", fn_ce, &tt, 1, &x, check, NULL);
    free(x.data);
}

/* ---- L1 and MSE ---- */

static void test_l1_mse_fast_vs_ref(void **state) {
    bv_rng r = {25};
    int64_t n = 9001;
    float *p = bv_test_rand_f32(&r, n, -2, 2), *t = bv_test_rand_f32(&r, n, -2, 2);
    for (int64_t i = 0; i < n; i += 17) t[i] = p[i]; /* equal: L1 gradient 0 */
    double *pd = bv_test_to_f64(p, n), *td = bv_test_to_f64(t, n);
    bv_check_close_f32_f64("l1 fwd", (float[]){bv_k_l1_loss_fwd(p, t, n)}, (double[]){bv_k_l1_loss_fwd_ref(pd, td, n)},
                           1, 0, 1e-6);
    bv_check_close_f32_f64("mse fwd", (float[]){bv_k_mse_loss_fwd(p, t, n)},
                           (double[]){bv_k_mse_loss_fwd_ref(pd, td, n)}, 1, 0, 1e-6);
    for (int loss = 0; loss < 2; loss++)
        for (int mode = 0; mode < 3; mode++) { /* both, pred only, target only; buffers start non-zero */
            float *dp = bv_test_rand_f32(&r, n, -1e-4, 1e-4), *dt = bv_test_rand_f32(&r, n, -1e-4, 1e-4);
            double *dpd = bv_test_to_f64(dp, n), *dtd = bv_test_to_f64(dt, n);
            float *gp = mode != 2 ? dp : NULL, *gt = mode != 1 ? dt : NULL;
            double *gpd = mode != 2 ? dpd : NULL, *gtd = mode != 1 ? dtd : NULL;
            if (loss == 0) {
                bv_k_l1_loss_bwd(gp, gt, p, t, 1.3f, n);
                bv_k_l1_loss_bwd_ref(gpd, gtd, pd, td, 1.3, n);
            } else {
                bv_k_mse_loss_bwd(gp, gt, p, t, 1.3f, n);
                bv_k_mse_loss_bwd_ref(gpd, gtd, pd, td, 1.3, n);
            }
            /* float rounding of the step 1.3/n (or 2.6/n) scales with the largest gradient, not with
             * the (possibly cancelled) sum: absolute tolerance 1e-6 of that */
            double gmax = loss ? 2.6 / (double)n * 4.0 : 1.3 / (double)n;
            bv_check_close_f32_f64(loss ? "mse dpred" : "l1 dpred", dp, dpd, n, 1e-6 * gmax, 1e-6);
            bv_check_close_f32_f64(loss ? "mse dtarget" : "l1 dtarget", dt, dtd, n, 1e-6 * gmax, 1e-6);
            free(dp), free(dt), free(dpd), free(dtd);
        }
    free(p), free(t), free(pd), free(td);
}

static void test_l1_mse_threads_agree(void **state) {
    bv_rng r = {26};
    int64_t n = 200003;
    float *p = bv_test_rand_f32(&r, n, -2, 2), *t = bv_test_rand_f32(&r, n, -2, 2);
    float l1[2], mse[2], *g[2][4];
    for (int k = 0; k < 2; k++) {
        bv_set_num_threads(k + 1);
        l1[k] = bv_k_l1_loss_fwd(p, t, n);
        mse[k] = bv_k_mse_loss_fwd(p, t, n);
        for (int j = 0; j < 4; j++) g[k][j] = bv_xcalloc(n, 4);
        bv_k_l1_loss_bwd(g[k][0], g[k][1], p, t, 0.9f, n);
        bv_k_mse_loss_bwd(g[k][2], g[k][3], p, t, 0.9f, n);
    }
    bv_set_num_threads(2);
    bv_check_close_f32("l1 1 vs 2 threads", &l1[1], &l1[0], 1, 0, 1e-6);
    bv_check_close_f32("mse 1 vs 2 threads", &mse[1], &mse[0], 1, 0, 1e-6);
    bv_check_close_f32("l1 dpred 1 vs 2 threads", g[1][0], g[0][0], n, 0, 1e-6);
    bv_check_close_f32("l1 dtarget 1 vs 2 threads", g[1][1], g[0][1], n, 0, 1e-6);
    bv_check_close_f32("mse dpred 1 vs 2 threads", g[1][2], g[0][2], n, 0, 1e-6);
    bv_check_close_f32("mse dtarget 1 vs 2 threads", g[1][3], g[0][3], n, 0, 1e-6);
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 4; j++) free(g[k][j]);
    free(p), free(t);
}

static bv_var *fn_l1(bv_graph *g, bv_var **in, void *u) { return bv_op_l1_loss(g, in[0], in[1]); }
static bv_var *fn_mse(bv_graph *g, bv_var **in, void *u) { return bv_op_mse_loss(g, in[0], in[1]); }

static void test_l1_mse_gradcheck(void **state) {
    bv_rng r = {27};
    int64_t s[2] = {3, 7};
    bv_tensor p = bv_test_rand_f64(&r, 2, s, -1, 1), t = bv_test_rand_f64(&r, 2, s, -1, 1);
    /* keep |p - t| >= 0.1: away from the kink of |.| */
    double *pd = p.data, *td = t.data;
    for (int i = 0; i < 21; i++)
        if (fabs(pd[i] - td[i]) < 0.1) td[i] = pd[i] + (i % 2 ? 0.3 : -0.3);
    bv_tensor in[2] = {p, t};
    bool both[2] = {true, true}, pred_only[2] = {true, false};
    bv_check_gradients("l1_loss", fn_l1, NULL, 2, in, both, NULL);
    bv_check_gradients("l1_loss (constant target)", fn_l1, NULL, 2, in, pred_only, NULL);
    bv_check_gradients("mse_loss", fn_mse, NULL, 2, in, both, NULL);
    bv_check_gradients("mse_loss (constant target)", fn_mse, NULL, 2, in, pred_only, NULL);
    free(p.data), free(t.data);
}

/* ---- parity with PyTorch (bv_fx_check_op: F32 fast path and F64 reference path, values and
 * gradients; losses are seeded with a non-unit dout) ---- */

static void test_torch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "norm.safetensors");
    const char *ig = bv_st_meta(&fx.f, "ignore_index");
    assert_non_null(ig);
    assert_int_equal(atoll(ig), IGNORE);
    bv_tensor targets = bv_fx_get(&fx, "cross_entropy.targets", BV_DTYPE_I64);
    const int64_t *tg = targets.data;
    assert_true(tg[2] == IGNORE && tg[5] == IGNORE); /* the fixture has ignored rows */
    bv_fx_check_op(&fx, "cross_entropy", 1, fn_ce, &targets, 1e-6);
    bv_fx_check_op(&fx, "l1_loss", 2, fn_l1, NULL, 1e-6);
    bv_fx_check_op(&fx, "mse_loss", 2, fn_mse, NULL, 1e-6);
    bv_fx_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ce_fast_vs_ref),       cmocka_unit_test(test_ce_threads_agree),
        cmocka_unit_test(test_ce_all_ignored),       cmocka_unit_test(test_ce_bad_target_aborts),
        cmocka_unit_test(test_ce_gradcheck),         cmocka_unit_test(test_l1_mse_fast_vs_ref),
        cmocka_unit_test(test_l1_mse_threads_agree), cmocka_unit_test(test_l1_mse_gradcheck),
        cmocka_unit_test(test_torch_parity),
    };
    return cmocka_run_group_tests_name("loss", tests, NULL, NULL);
}
