/* Tests of the normalisation kernels and ops (softmax, layernorm, rmsnorm): the vectorisable exp
 * against libm, fast fp32 vs double reference (forward and backward, odd sizes), 1 vs 2 threads,
 * finite-difference gradient checks of the autograd ops in double, and parity with PyTorch
 * (tests/fixtures/norm.safetensors, written by tests/gen/gen_norm.py) for the F32 and F64 paths. */
#include <math.h>
#include <string.h>

#include "src/kernels/norm.h"
#include "src/kernels/simd_math.h"
#include "tests/util/testutil.h"

/* ---- the exp used by the fast kernels ---- */

static void test_expf_simd_accuracy(void **state) {
    /* every 997th float in [-87.3, -0] (walking the bit patterns); 1.4 ulp measured, 2 allowed */
    double worst = 0;
    float worst_x = 0;
    int64_t n = 0;
    uint32_t lo_bits;
    float lo = -87.3f;
    memcpy(&lo_bits, &lo, 4);
    for (uint32_t b = 0x80000000u; b <= lo_bits; b += 997, n++) {
        float x;
        memcpy(&x, &b, 4);
        double want = exp((double)x), got = bv_expf_simd(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) worst = rel, worst_x = x;
    }
    if (worst > 2.0 * 5.9604645e-8) fail_msg("bv_expf_simd: relative error %.3g at x = %.9g (> 2 ulp)", worst, worst_x);
    assert_true(n > 100000);
    assert_true(bv_expf_simd(0.0f) == 1.0f);
    assert_true(bv_expf_simd(-INFINITY) == 0.0f);
    assert_true(bv_expf_simd(-1e30f) == 0.0f);
    assert_true(bv_expf_simd(-88.0f) == 0.0f); /* below the normal range: flushed to 0 */
    assert_true(isnan(bv_expf_simd(NAN)));
    assert_true(fabs(bv_expf_simd(80.0f) / exp(80.0) - 1.0) < 2.4e-7);
}

/* ---- fast vs reference ---- */

static void test_softmax_fast_vs_ref(void **state) {
    bv_rng r = {11};
    int64_t N = 13, D = 67, n = N * D;
    float *x = bv_test_rand_f32(&r, n, -3, 3);
    for (int64_t i = 0; i < D; i++) x[3 * D + i] *= 50.0f; /* logits up to +-150: needs the max shift */
    float *y = bv_xmalloc(n * 4), *dy = bv_test_rand_f32(&r, n, -1, 1), *dx = bv_test_rand_f32(&r, n, -1, 1);
    double *xd = bv_test_to_f64(x, n), *yd = bv_xmalloc(n * 8), *dyd = bv_test_to_f64(dy, n),
           *dxd = bv_test_to_f64(dx, n);
    bv_k_softmax_fwd(y, x, N, D);
    bv_k_softmax_fwd_ref(yd, xd, N, D);
    bv_check_close_f32_f64("softmax fwd", y, yd, n, 1e-12, 2e-6);
    bv_k_softmax_bwd(dx, dy, y, N, D);
    bv_k_softmax_bwd_ref(dxd, dyd, yd, N, D);
    bv_check_close_f32_f64("softmax bwd", dx, dxd, n, 1e-6, 1e-5);
    free(x), free(y), free(dy), free(dx), free(xd), free(yd), free(dyd), free(dxd);
}

static void test_layernorm_fast_vs_ref(void **state) {
    bv_rng r = {12};
    int64_t N = 37, D = 67, n = N * D; /* 3 chunks of rows, the last one partial */
    float *x = bv_test_rand_f32(&r, n, -2, 2), *w = bv_test_rand_f32(&r, D, 0.5, 1.5),
          *b = bv_test_rand_f32(&r, D, -0.5, 0.5);
    for (int64_t i = 0; i < D; i++) x[5 * D + i] += 20.0f;  /* large mean */
    for (int64_t i = 0; i < D; i++) x[9 * D + i] *= 1e-3f;  /* variance ~ eps */
    double *xd = bv_test_to_f64(x, n), *wd = bv_test_to_f64(w, D), *bd = bv_test_to_f64(b, D);
    float *y = bv_xmalloc(n * 4), *mean = bv_xmalloc(N * 4), *rstd = bv_xmalloc(N * 4);
    double *yd = bv_xmalloc(n * 8), *meand = bv_xmalloc(N * 8), *rstdd = bv_xmalloc(N * 8);
    for (int with_bias = 0; with_bias < 2; with_bias++) {
        bv_k_layernorm_fwd(y, mean, rstd, x, w, with_bias ? b : NULL, N, D, 1e-5);
        bv_k_layernorm_fwd_ref(yd, meand, rstdd, xd, wd, with_bias ? bd : NULL, N, D, 1e-5);
        bv_check_close_f32_f64(with_bias ? "layernorm fwd" : "layernorm fwd (no bias)", y, yd, n, 1e-5, 1e-5);
        bv_check_close_f32_f64("layernorm mean", mean, meand, N, 1e-6, 1e-6);
        bv_check_close_f32_f64("layernorm rstd", rstd, rstdd, N, 0, 1e-6);
    }
    float *dy = bv_test_rand_f32(&r, n, -1, 1);
    double *dyd = bv_test_to_f64(dy, n);
    float *scratch = bv_xmalloc((size_t)bv_k_norm_bwd_scratch(N, D) * 4);
    /* which gradients are wanted: all, dx only, dweight/dbias only; buffers start non-zero (+=) */
    for (int mode = 0; mode < 3; mode++) {
        float *dx = bv_test_rand_f32(&r, n, -1, 1), *dw = bv_test_rand_f32(&r, D, -1, 1),
              *db = bv_test_rand_f32(&r, D, -1, 1);
        double *dxd = bv_test_to_f64(dx, n), *dwd = bv_test_to_f64(dw, D), *dbd = bv_test_to_f64(db, D);
        bool want_x = mode != 2, want_wb = mode != 1;
        bv_k_layernorm_bwd(want_x ? dx : NULL, want_wb ? dw : NULL, want_wb ? db : NULL, want_wb ? scratch : NULL, dy,
                           x, w, mean, rstd, N, D);
        bv_k_layernorm_bwd_ref(want_x ? dxd : NULL, want_wb ? dwd : NULL, want_wb ? dbd : NULL, dyd, xd, wd, meand,
                               rstdd, N, D);
        bv_check_close_f32_f64("layernorm dx", dx, dxd, n, 1e-5, 1e-5);
        bv_check_close_f32_f64("layernorm dw", dw, dwd, D, 1e-5, 1e-5);
        bv_check_close_f32_f64("layernorm db", db, dbd, D, 1e-5, 1e-5);
        free(dx), free(dw), free(db), free(dxd), free(dwd), free(dbd);
    }
    free(x), free(w), free(b), free(xd), free(wd), free(bd), free(y), free(mean), free(rstd), free(yd), free(meand);
    free(rstdd), free(dy), free(dyd), free(scratch);
}

static void test_rmsnorm_fast_vs_ref(void **state) {
    bv_rng r = {13};
    int64_t N = 37, D = 67, n = N * D;
    float *x = bv_test_rand_f32(&r, n, -2, 2), *w = bv_test_rand_f32(&r, D, 0.5, 1.5);
    for (int64_t i = 0; i < D; i++) x[9 * D + i] *= 1e-3f; /* mean square ~ eps */
    double *xd = bv_test_to_f64(x, n), *wd = bv_test_to_f64(w, D);
    float *y = bv_xmalloc(n * 4), *rstd = bv_xmalloc(N * 4);
    double *yd = bv_xmalloc(n * 8), *rstdd = bv_xmalloc(N * 8);
    bv_k_rmsnorm_fwd(y, rstd, x, w, N, D, 1e-5);
    bv_k_rmsnorm_fwd_ref(yd, rstdd, xd, wd, N, D, 1e-5);
    bv_check_close_f32_f64("rmsnorm fwd", y, yd, n, 1e-6, 1e-5);
    bv_check_close_f32_f64("rmsnorm rstd", rstd, rstdd, N, 0, 1e-6);
    float *dy = bv_test_rand_f32(&r, n, -1, 1);
    double *dyd = bv_test_to_f64(dy, n);
    float *scratch = bv_xmalloc((size_t)bv_k_norm_bwd_scratch(N, D) * 4);
    for (int mode = 0; mode < 3; mode++) {
        float *dx = bv_test_rand_f32(&r, n, -1, 1), *dw = bv_test_rand_f32(&r, D, -1, 1);
        double *dxd = bv_test_to_f64(dx, n), *dwd = bv_test_to_f64(dw, D);
        bool want_x = mode != 2, want_w = mode != 1;
        bv_k_rmsnorm_bwd(want_x ? dx : NULL, want_w ? dw : NULL, want_w ? scratch : NULL, dy, x, w, rstd, N, D);
        bv_k_rmsnorm_bwd_ref(want_x ? dxd : NULL, want_w ? dwd : NULL, dyd, xd, wd, rstdd, N, D);
        bv_check_close_f32_f64("rmsnorm dx", dx, dxd, n, 1e-5, 1e-5);
        bv_check_close_f32_f64("rmsnorm dw", dw, dwd, D, 1e-5, 1e-5);
        free(dx), free(dw), free(dxd), free(dwd);
    }
    free(x), free(w), free(xd), free(wd), free(y), free(rstd), free(yd), free(rstdd), free(dy), free(dyd), free(scratch);
}

/* ---- 1 vs 2 threads (sizes above the kernels' parallel threshold, several row chunks) ---- */

static void test_threads_agree(void **state) {
    bv_rng r = {14};
    int64_t N = 301, D = 257, n = N * D;
    float *x = bv_test_rand_f32(&r, n, -2, 2), *w = bv_test_rand_f32(&r, D, 0.5, 1.5),
          *b = bv_test_rand_f32(&r, D, -0.5, 0.5);
    float *dy = bv_test_rand_f32(&r, n, -1, 1), *init = bv_test_rand_f32(&r, n, -1, 1);
    float *scratch = bv_xmalloc((size_t)bv_k_norm_bwd_scratch(N, D) * 4);
    enum { SM_Y, SM_DX, LN_Y, LN_DX, LN_DW, LN_DB, RMS_Y, RMS_DX, RMS_DW, NOUT };
    const char *names[NOUT] = {"softmax y", "softmax dx", "layernorm y", "layernorm dx", "layernorm dw",
                               "layernorm db", "rmsnorm y", "rmsnorm dx", "rmsnorm dw"};
    int64_t sizes[NOUT] = {n, n, n, n, D, D, n, n, D};
    float *out[2][NOUT];
    float *mean = bv_xmalloc(N * 4), *rstd = bv_xmalloc(N * 4);
    for (int t = 0; t < 2; t++) {
        bv_set_num_threads(t + 1);
        for (int k = 0; k < NOUT; k++) out[t][k] = bv_test_copy_f32(init, sizes[k]); /* gradients accumulate */
        bv_k_softmax_fwd(out[t][SM_Y], x, N, D);
        bv_k_softmax_bwd(out[t][SM_DX], dy, out[t][SM_Y], N, D);
        bv_k_layernorm_fwd(out[t][LN_Y], mean, rstd, x, w, b, N, D, 1e-6);
        bv_k_layernorm_bwd(out[t][LN_DX], out[t][LN_DW], out[t][LN_DB], scratch, dy, x, w, mean, rstd, N, D);
        bv_k_rmsnorm_fwd(out[t][RMS_Y], rstd, x, w, N, D, 1e-5);
        bv_k_rmsnorm_bwd(out[t][RMS_DX], out[t][RMS_DW], scratch, dy, x, w, rstd, N, D);
    }
    bv_set_num_threads(2);
    for (int k = 0; k < NOUT; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s: 1 vs 2 threads", names[k]);
        bv_check_close_f32(what, out[1][k], out[0][k], sizes[k], 0, 1e-6);
    }
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < NOUT; k++) free(out[t][k]);
    free(x), free(w), free(b), free(dy), free(init), free(scratch), free(mean), free(rstd);
}

/* ---- gradient checks (double) ---- */

static bv_var *fn_softmax(bv_graph *g, bv_var **in, void *u) { return bv_op_softmax(g, in[0]); }
static bv_var *fn_layernorm(bv_graph *g, bv_var **in, void *u) { return bv_op_layernorm(g, in[0], in[1], in[2], 1e-5); }
static bv_var *fn_layernorm_nobias(bv_graph *g, bv_var **in, void *u) {
    return bv_op_layernorm(g, in[0], in[1], NULL, 1e-5);
}
static bv_var *fn_rmsnorm(bv_graph *g, bv_var **in, void *u) { return bv_op_rmsnorm(g, in[0], in[1], 1e-5); }

static void test_gradcheck(void **state) {
    bv_rng r = {15};
    int64_t xs[3] = {2, 3, 7}, ds[1] = {7};
    bv_tensor x = bv_test_rand_f64(&r, 3, xs, -2, 2);
    bv_tensor w = bv_test_rand_f64(&r, 1, ds, 0.5, 1.5), b = bv_test_rand_f64(&r, 1, ds, -0.5, 0.5);
    bv_tensor in[3] = {x, w, b};
    bool all[3] = {true, true, true}, x_only[3] = {true, false, false}, params_only[3] = {false, true, true};
    bv_check_gradients("softmax", fn_softmax, NULL, 1, in, all, NULL);
    bv_check_gradients("layernorm", fn_layernorm, NULL, 3, in, all, NULL);
    bv_check_gradients("layernorm (no bias)", fn_layernorm_nobias, NULL, 2, in, all, NULL);
    bv_check_gradients("layernorm (frozen w, b)", fn_layernorm, NULL, 3, in, x_only, NULL);
    bv_check_gradients("layernorm (x constant)", fn_layernorm, NULL, 3, in, params_only, NULL);
    bv_check_gradients("rmsnorm", fn_rmsnorm, NULL, 2, in, all, NULL);
    bv_check_gradients("rmsnorm (frozen w)", fn_rmsnorm, NULL, 2, in, x_only, NULL);
    bv_check_gradients("rmsnorm (x constant)", fn_rmsnorm, NULL, 2, in, params_only, NULL);
    free(x.data), free(w.data), free(b.data);
}

/* ---- parity with PyTorch (bv_fx_check_op: F32 fast path and F64 reference path, values and
 * gradients; the fixture's eps values must be the ones the functions above use) ---- */

static void test_torch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "norm.safetensors");
    const char *ln_eps = bv_st_meta(&fx.f, "ln_eps"), *rms_eps = bv_st_meta(&fx.f, "rms_eps");
    assert_non_null(ln_eps);
    assert_non_null(rms_eps);
    assert_true(atof(ln_eps) == 1e-5 && atof(rms_eps) == 1e-5);
    bv_fx_check_op(&fx, "softmax", 1, fn_softmax, NULL, 1e-5);
    bv_fx_check_op(&fx, "layernorm", 3, fn_layernorm, NULL, 1e-5);
    bv_fx_check_op(&fx, "layernorm_nobias", 2, fn_layernorm_nobias, NULL, 1e-5);
    bv_fx_check_op(&fx, "rmsnorm", 2, fn_rmsnorm, NULL, 1e-5);
    bv_fx_close(&fx);
}

/* No gradient wanted: nothing recorded, outputs still right. */
static void test_no_grad(void **state) {
    bv_rng r = {16};
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    float xs[4 * 9], ws[9];
    bv_rng_fill_f32(&r, xs, 36, -1, 1);
    bv_rng_fill_f32(&r, ws, 9, 0.5, 1.5);
    bv_tensor xt = bv_tensor_make2(xs, BV_DTYPE_F32, 4, 9), wt = bv_tensor_make1(ws, BV_DTYPE_F32, 9);
    bv_var *x = bv_var_wrap(&g, &xt, false), *w = bv_var_wrap(&g, &wt, false);
    bv_var *y1 = bv_op_layernorm(&g, x, w, NULL, 1e-5), *y2 = bv_op_rmsnorm(&g, x, w, 1e-5), *y3 = bv_op_softmax(&g, x);
    assert_int_equal(g.n_tape, 0);
    assert_false(y1->requires_grad || y2->requires_grad || y3->requires_grad);
    float ref[36], rstd[4];
    bv_k_rmsnorm_fwd(ref, rstd, xs, ws, 4, 9, 1e-5);
    bv_check_close_f32("rmsnorm op vs kernel", bv_var_f32(y2), ref, 36, 0, 0); /* same kernel, same bits */
    bv_graph_free(&g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_expf_simd_accuracy),   cmocka_unit_test(test_softmax_fast_vs_ref),
        cmocka_unit_test(test_layernorm_fast_vs_ref), cmocka_unit_test(test_rmsnorm_fast_vs_ref),
        cmocka_unit_test(test_threads_agree),        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_no_grad),
        cmocka_unit_test(test_torch_parity),
    };
    return cmocka_run_group_tests_name("norm", tests, NULL, NULL);
}
