/* Tests of the BitLinear quantizers (src/kernels/bitlinear.h) and of bv_op_bitlinear:
 *  - codes, scales and dequantized values bit-identical to PyTorch (tests/gen/gen_bitlinear.py) on
 *    random tensors, exact ties, zero rows/tensors (eps path), huge, tiny and subnormal values,
 *    single-element rows, and weights whose |W| sum is exact in fp32 (there PyTorch's own fp32
 *    mean is used);
 *  - fast fp32 vs double reference quantizers, 1 vs 2 threads bit-identical;
 *  - the layer's forward and straight-through gradients vs PyTorch for every switch combination
 *    with and without bias (fast path and double path), the STE identities, fast vs reference;
 *  - finite-difference gradcheck of the unquantized op and its equality with bv_op_linear;
 *  - the weight cache: re-quantization only on a new params version or other weight data, once
 *    across micro-batches; a bad switch value or a cache re-quantized before backward aborts.
 */
#include <math.h>
#include <omp.h>
#include <string.h>
#include <unistd.h>

#include "src/kernels/bitlinear.h"
#include "src/kernels/matmul.h"
#include "tests/util/testutil.h"

/* ---- helpers ---- */

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Bit-for-bit equality (so -0.0 vs 0.0 and NaN payloads count); prints the first mismatch. */
static void check_bits_f32(const char *what, const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (fbits(got[i]) != fbits(want[i])) {
            int64_t cnt = 0;
            for (int64_t j = i; j < n; j++) cnt += fbits(got[j]) != fbits(want[j]);
            print_error("%s: first bit mismatch at index %lld: got %.9g (0x%08x) want %.9g (0x%08x); "
                        "%lld of %lld elements differ\n",
                        what, (long long)i, got[i], fbits(got[i]), want[i], fbits(want[i]), (long long)cnt,
                        (long long)n);
            fail_msg("%s: not bit-identical", what);
        }
}

static void check_codes(const char *what, const int8_t *got, const int8_t *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            int64_t cnt = 0;
            for (int64_t j = i; j < n; j++) cnt += got[j] != want[j];
            print_error("%s: first code mismatch at index %lld: got %d want %d; %lld of %lld differ\n", what,
                        (long long)i, got[i], want[i], (long long)cnt, (long long)n);
            fail_msg("%s: codes differ", what);
        }
}

static const bv_bitlinear_cfg k_cfgs[4] = {{1, 8}, {1, 32}, {32, 8}, {32, 32}};

/* ================= quantizers vs PyTorch ================= */

static const char *const k_wcases[] = {"rand",  "rand_unit", "ties_half", "ties_quarter", "zeros",
                                       "tiny",  "subnormal", "large",     "mixed",        "single",
                                       "single_neg", "exact0", "exact1",  "exact2",       "exact3",
                                       "exact_ties"};

static void test_quant_weight_torch(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "bitlinear.safetensors");
    char key[128], what[160];
    for (size_t c = 0; c < BV_ARRAY_LEN(k_wcases); c++) {
        const char *name = k_wcases[c];
        snprintf(key, sizeof key, "wq.%s.w", name);
        bv_tensor w = bv_fx_get(&fx, key, BV_DTYPE_F32);
        snprintf(key, sizeof key, "wq.%s.scale", name);
        bv_tensor s_want = bv_fx_get(&fx, key, BV_DTYPE_F32);
        snprintf(key, sizeof key, "wq.%s.codes", name);
        bv_tensor c_want = bv_fx_get(&fx, key, BV_DTYPE_I8);
        snprintf(key, sizeof key, "wq.%s.wq", name);
        bv_tensor q_want = bv_fx_get(&fx, key, BV_DTYPE_F32);
        int64_t n = bv_tensor_numel(&w);
        int8_t *codes = malloc(n);
        float *wq = malloc(n * 4);
        float s = bv_k_quant_weight_fwd(codes, wq, w.data, n);
        snprintf(what, sizeof what, "weight %s: scale", name);
        check_bits_f32(what, &s, s_want.data, 1);
        snprintf(what, sizeof what, "weight %s: codes", name);
        check_codes(what, codes, c_want.data, n);
        snprintf(what, sizeof what, "weight %s: wq", name);
        check_bits_f32(what, wq, q_want.data, n);
        /* the variants writing only one output agree */
        memset(codes, 0x55, n);
        memset(wq, 0x55, n * 4);
        float s1 = bv_k_quant_weight_fwd(codes, NULL, w.data, n);
        float s2 = bv_k_quant_weight_fwd(NULL, wq, w.data, n);
        assert_true(fbits(s1) == fbits(s) && fbits(s2) == fbits(s));
        snprintf(what, sizeof what, "weight %s: codes only", name);
        check_codes(what, codes, c_want.data, n);
        snprintf(what, sizeof what, "weight %s: wq only", name);
        check_bits_f32(what, wq, q_want.data, n);
        free(codes), free(wq);
    }
    bv_fx_close(&fx);
}

static const char *const k_acases[] = {"rand", "ties", "zero_row", "zeros", "large", "small", "single", "negzero",
                                       "wide"};

static void test_quant_act_torch(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "bitlinear.safetensors");
    char key[128], what[160];
    for (size_t c = 0; c < BV_ARRAY_LEN(k_acases); c++) {
        const char *name = k_acases[c];
        snprintf(key, sizeof key, "aq.%s.x", name);
        bv_tensor x = bv_fx_get(&fx, key, BV_DTYPE_F32);
        snprintf(key, sizeof key, "aq.%s.scale", name);
        bv_tensor s_want = bv_fx_get(&fx, key, BV_DTYPE_F32);
        snprintf(key, sizeof key, "aq.%s.codes", name);
        bv_tensor c_want = bv_fx_get(&fx, key, BV_DTYPE_I8);
        snprintf(key, sizeof key, "aq.%s.xq", name);
        bv_tensor q_want = bv_fx_get(&fx, key, BV_DTYPE_F32);
        int64_t N = x.shape[0], C = x.shape[1];
        int8_t *codes = malloc(N * C);
        float *xq = malloc(N * C * 4), *s = malloc(N * 4);
        bv_k_quant_act_fwd(xq, codes, s, x.data, N, C);
        snprintf(what, sizeof what, "act %s: scales", name);
        check_bits_f32(what, s, s_want.data, N);
        snprintf(what, sizeof what, "act %s: codes", name);
        check_codes(what, codes, c_want.data, N * C);
        snprintf(what, sizeof what, "act %s: xq", name);
        check_bits_f32(what, xq, q_want.data, N * C);
        memset(codes, 0x55, N * C);
        memset(xq, 0x55, N * C * 4);
        bv_k_quant_act_fwd(NULL, codes, NULL, x.data, N, C);
        bv_k_quant_act_fwd(xq, NULL, NULL, x.data, N, C);
        snprintf(what, sizeof what, "act %s: codes only", name);
        check_codes(what, codes, c_want.data, N * C);
        snprintf(what, sizeof what, "act %s: xq only", name);
        check_bits_f32(what, xq, q_want.data, N * C);
        free(codes), free(xq), free(s);
    }
    bv_fx_close(&fx);
}

/* The fixture's tie cases really contain ties and the zero cases really take the eps path. */
static void test_fixture_has_edge_cases(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "bitlinear.safetensors");
    bv_tensor x = bv_fx_get(&fx, "aq.ties.x", BV_DTYPE_F32), s = bv_fx_get(&fx, "aq.ties.scale", BV_DTYPE_F32);
    int64_t ties = 0;
    for (int64_t i = 0; i < bv_tensor_numel(&x); i++) {
        float v = ((float *)x.data)[i] * ((float *)s.data)[i / x.shape[1]];
        ties += v - floorf(v) == 0.5f;
    }
    assert_true(ties >= 100);
    bv_tensor w = bv_fx_get(&fx, "wq.ties_half.w", BV_DTYPE_F32);
    float sw = bv_k_quant_weight_fwd(NULL, NULL, w.data, bv_tensor_numel(&w));
    assert_true(sw == 2.0f);
    float sz = bv_k_quant_weight_fwd(NULL, NULL, bv_fx_get(&fx, "wq.zeros.w", BV_DTYPE_F32).data, 35);
    assert_true(sz == 1.0f / 1e-5f);
    bv_fx_close(&fx);
}

/* ================= fast vs double reference, threads ================= */

/* Codes of fast and reference may differ only where the exact product sits within `band` of a
 * rounding boundary; returns how many such elements there were. */
static int64_t compare_to_ref(const char *what, const int8_t *c32, const float *q32, const int8_t *c64,
                              const double *q64, const double *prod64, int64_t n) {
    int64_t near = 0;
    for (int64_t i = 0; i < n; i++) {
        double frac = fabs(prod64[i] - floor(prod64[i]) - 0.5);
        if (c32[i] != c64[i]) {
            if (frac > 1e-5) fail_msg("%s: code %d vs reference %d at %lld (x*s = %.12g)", what, c32[i], c64[i], (long long)i, prod64[i]);
            near++;
            continue;
        }
        if (!(fabs(q32[i] - q64[i]) <= 1e-6 * fabs(q64[i]) + 1e-30))
            fail_msg("%s: value %.9g vs reference %.12g at %lld", what, q32[i], q64[i], (long long)i);
    }
    return near;
}

static void test_quant_fast_vs_ref(void **state) {
    bv_rng r = {11};
    /* weights */
    int64_t n = 4099;
    float *w = malloc(n * 4), *wq = malloc(n * 4);
    double *wd = malloc(n * 8), *wqd = malloc(n * 8), *prod = malloc(n * 8);
    int8_t *c = malloc(n), *cd = malloc(n);
    bv_rng_fill_normal_f32(&r, w, n, 0.05);
    for (int64_t i = 0; i < n; i++) wd[i] = w[i];
    float s = bv_k_quant_weight_fwd(c, wq, w, n);
    double sd = bv_k_quant_weight_fwd_ref(cd, wqd, wd, n);
    assert_true(fabs(s - sd) <= 1e-6 * sd);
    for (int64_t i = 0; i < n; i++) prod[i] = wd[i] * sd;
    compare_to_ref("weight fast vs ref", c, wq, cd, wqd, prod, n);
    /* activations */
    int64_t N = 13, C = 257;
    float *x = malloc(N * C * 4), *xq = malloc(N * C * 4), *sx = malloc(N * 4);
    double *xd = malloc(N * C * 8), *xqd = malloc(N * C * 8), *sxd = malloc(N * 8), *px = malloc(N * C * 8);
    int8_t *cx = malloc(N * C), *cxd = malloc(N * C);
    bv_rng_fill_normal_f32(&r, x, N * C, 2.0);
    for (int64_t i = 0; i < N * C; i++) xd[i] = x[i];
    bv_k_quant_act_fwd(xq, cx, sx, x, N, C);
    bv_k_quant_act_fwd_ref(xqd, cxd, sxd, xd, N, C);
    for (int64_t i = 0; i < N; i++) assert_true(fabs(sx[i] - sxd[i]) <= 1e-6 * sxd[i]);
    for (int64_t i = 0; i < N * C; i++) px[i] = xd[i] * sxd[i / C];
    compare_to_ref("act fast vs ref", cx, xq, cxd, xqd, px, N * C);
    free(w), free(wq), free(wd), free(wqd), free(prod), free(c), free(cd);
    free(x), free(xq), free(sx), free(xd), free(xqd), free(sxd), free(px), free(cx), free(cxd);
}

/* mean|W| is the fp32 rounding of the double-accumulated mean, whatever the block split. */
static void test_absmean_definition(void **state) {
    bv_rng r = {12};
    int64_t sizes[] = {1, 7, 64, 1000, 65537, 300001};
    for (size_t k = 0; k < BV_ARRAY_LEN(sizes); k++) {
        int64_t n = sizes[k];
        float *w = malloc(n * 4);
        bv_rng_fill_normal_f32(&r, w, n, 0.02);
        double sum = 0;
        for (int64_t i = 0; i < n; i++) sum += fabs((double)w[i]);
        float want = (float)(sum / (double)n), got = bv_k_absmean(w, n);
        if (fbits(got) != fbits(want)) fail_msg("absmean n=%lld: got %.9g want %.9g", (long long)n, got, want);
        free(w);
    }
    assert_true(bv_k_absmean(NULL, 0) == 0.0f);
}

static void test_quant_threads_identical(void **state) {
    bv_rng r = {13};
    int64_t n = 300001, N = 301, C = 517; /* large enough for the parallel branches */
    float *w = malloc(n * 4), *x = malloc(N * C * 4);
    bv_rng_fill_normal_f32(&r, w, n, 0.02);
    bv_rng_fill_normal_f32(&r, x, N * C, 1.0);
    float *wq[2], *xq[2], *sx[2], s[2];
    int8_t *cw[2], *cx[2];
    for (int t = 0; t < 2; t++) {
        bv_set_num_threads(t + 1);
        wq[t] = malloc(n * 4), cw[t] = malloc(n), xq[t] = malloc(N * C * 4), cx[t] = malloc(N * C), sx[t] = malloc(N * 4);
        s[t] = bv_k_quant_weight_fwd(cw[t], wq[t], w, n);
        bv_k_quant_act_fwd(xq[t], cx[t], sx[t], x, N, C);
    }
    bv_set_num_threads(2);
    check_bits_f32("weight scale 1 vs 2 threads", &s[1], &s[0], 1);
    check_bits_f32("wq 1 vs 2 threads", wq[1], wq[0], n);
    check_codes("weight codes 1 vs 2 threads", cw[1], cw[0], n);
    check_bits_f32("xq 1 vs 2 threads", xq[1], xq[0], N * C);
    check_bits_f32("act scales 1 vs 2 threads", sx[1], sx[0], N);
    check_codes("act codes 1 vs 2 threads", cx[1], cx[0], N * C);
    for (int t = 0; t < 2; t++) free(wq[t]), free(cw[t]), free(xq[t]), free(cx[t]), free(sx[t]);
    free(w), free(x);
}

/* NaN and inf inputs propagate as in PyTorch (no UB on the way, codes are junk): a NaN or inf
 * weight makes all of Wq NaN, a NaN or inf activation makes its row NaN. */
static void test_quant_nan(void **state) {
    float w[5] = {0.1f, NAN, -0.2f, 0.3f, 0.0f}, wq[5], x[6] = {1, 2, NAN, 3, 4, 5}, xq[6];
    int8_t c[6];
    bv_k_quant_weight_fwd(c, wq, w, 5);
    for (int i = 0; i < 5; i++) assert_true(isnan(wq[i]));
    bv_k_quant_act_fwd(xq, c, NULL, x, 2, 3);
    for (int i = 0; i < 3; i++) assert_true(isnan(xq[i]));
    assert_true(xq[3] != 0.0f && !isnan(xq[3]));
    /* an infinite weight makes mean|W| infinite and s = 0: every w*s / s is NaN in PyTorch */
    float wi[3] = {1.0f, INFINITY, -2.0f}, xi[3] = {1.0f, -INFINITY, 0.5f};
    bv_k_quant_weight_fwd(c, wq, wi, 3);
    for (int i = 0; i < 3; i++) assert_true(isnan(wq[i]));
    bv_k_quant_act_fwd(xq, c, NULL, xi, 1, 3);
    for (int i = 0; i < 3; i++) assert_true(isnan(xq[i]));
}

/* ================= the op vs PyTorch ================= */

static bv_var *fn_bitlinear(bv_graph *g, bv_var **in, void *u) {
    const bv_bitlinear_cfg *cfg = u;
    return bv_op_bitlinear(g, in[0], in[1], in[2], cfg, NULL, 0);
}
static bv_var *fn_bitlinear_nobias(bv_graph *g, bv_var **in, void *u) {
    const bv_bitlinear_cfg *cfg = u;
    return bv_op_bitlinear(g, in[0], in[1], NULL, cfg, NULL, 0);
}

/* One switch combination against its fixture record (`dt`: F32 fast path or F64 reference path). */
static void check_layer_vs_torch(bv_fx *fx, const bv_bitlinear_cfg *cfg, int has_b, bv_dtype dt, bool use_cache) {
    char name[64], key[128], what[200];
    snprintf(name, sizeof name, "bl.w%da%db%d.%s", cfg->weight_bits, cfg->act_bits, has_b,
             dt == BV_DTYPE_F64 ? "f64" : "f32");
    double tol = dt == BV_DTYPE_F64 ? 1e-12 : 2e-5;
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    const char *inames[3] = {"bl.x", "bl.w", "bl.b"};
    bv_var *in[3];
    for (int i = 0; i < 3; i++) {
        bv_tensor t = bv_fx_get(fx, inames[i], BV_DTYPE_F32);
        in[i] = bv_var_leaf(&g, &t, dt, true);
    }
    bv_qweight cache;
    memset(&cache, 0, sizeof cache);
    bv_var *y = bv_op_bitlinear(&g, in[0], in[1], has_b ? in[2] : NULL, cfg, use_cache ? &cache : NULL, 1);
    snprintf(key, sizeof key, "%s.out", name);
    bv_tensor want = bv_fx_get(fx, key, BV_DTYPE_F64);
    assert_int_equal(bv_tensor_numel(&want), bv_var_numel(y));
    snprintf(what, sizeof what, "%s%s forward vs PyTorch", name, use_cache ? " (cache)" : "");
    if (dt == BV_DTYPE_F64) bv_check_close_f64(what, bv_var_f64(y), want.data, bv_var_numel(y), tol, tol);
    else bv_check_close_f32_f64(what, bv_var_f32(y), want.data, bv_var_numel(y), tol, tol);
    bv_tensor dout = bv_fx_get(fx, "bl.dout", dt);
    bv_graph_backward_seed(&g, y, dout.data);
    for (int i = 0; i < (has_b ? 3 : 2); i++) {
        snprintf(key, sizeof key, "%s.grad%d", name, i);
        bv_tensor gw = bv_fx_get(fx, key, BV_DTYPE_F64);
        snprintf(what, sizeof what, "%s%s gradient of input %d vs PyTorch", name, use_cache ? " (cache)" : "", i);
        assert_non_null(in[i]->grad);
        if (dt == BV_DTYPE_F64) bv_check_close_f64(what, in[i]->grad, gw.data, bv_tensor_numel(&gw), tol, tol);
        else bv_check_close_f32_f64(what, in[i]->grad, gw.data, bv_tensor_numel(&gw), tol, tol);
    }
    if (!has_b) assert_null(in[2]->grad);
    bv_qweight_free(&cache);
    bv_graph_free(&g);
}

static void test_layer_torch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "bitlinear.safetensors");
    for (int c = 0; c < 4; c++)
        for (int has_b = 0; has_b < 2; has_b++) {
            check_layer_vs_torch(&fx, &k_cfgs[c], has_b, BV_DTYPE_F32, false);
            check_layer_vs_torch(&fx, &k_cfgs[c], has_b, BV_DTYPE_F32, true);
            check_layer_vs_torch(&fx, &k_cfgs[c], has_b, BV_DTYPE_F64, false);
        }
    bv_fx_close(&fx);
}

/* ================= STE identities ================= */

/* dx = dy @ Wq, dW = dy^T @ xq, db = colsum(dy), with xq and Wq from the quantizers themselves. */
static void test_ste_identities(void **state) {
    bv_rng r = {21};
    const int64_t B = 3, T = 5, C = 19, OC = 7, N = B * T;
    int64_t xs[3] = {B, T, C}, ws[2] = {OC, C}, bs[1] = {OC};
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *dy = malloc(N * OC * 4);
    bv_rng_fill_normal_f32(&r, x, N * C, 1.0);
    bv_rng_fill_normal_f32(&r, w, OC * C, 0.1);
    bv_rng_fill_normal_f32(&r, b, OC, 1.0);
    bv_rng_fill_normal_f32(&r, dy, N * OC, 1.0);
    for (int dt = 0; dt < 2; dt++) {
        bool f64 = dt == 1;
        bv_graph g;
        bv_graph_init(&g, 1 << 16);
        bv_tensor xt = bv_tensor_make(x, BV_DTYPE_F32, 3, xs), wt = bv_tensor_make(w, BV_DTYPE_F32, 2, ws),
                  bt = bv_tensor_make(b, BV_DTYPE_F32, 1, bs);
        bv_dtype d = f64 ? BV_DTYPE_F64 : BV_DTYPE_F32;
        bv_var *xv = bv_var_leaf(&g, &xt, d, true), *wv = bv_var_leaf(&g, &wt, d, true), *bvv = bv_var_leaf(&g, &bt, d, true);
        bv_bitlinear_cfg cfg = {1, 8};
        bv_var *y = bv_op_bitlinear(&g, xv, wv, bvv, &cfg, NULL, 0);
        /* expected, in double, from the quantizers of the same path */
        double *xq = malloc(N * C * 8), *wq = malloc(OC * C * 8), *dyd = malloc(N * OC * 8);
        double *ey = calloc(N * OC, 8), *edx = calloc(N * C, 8), *edw = calloc(OC * C, 8), *edb = calloc(OC, 8);
        double *bd = malloc(OC * 8);
        for (int64_t i = 0; i < N * OC; i++) dyd[i] = dy[i];
        for (int64_t i = 0; i < OC; i++) bd[i] = b[i];
        if (f64) {
            bv_k_quant_act_fwd_ref(xq, NULL, NULL, bv_var_f64(xv), N, C);
            bv_k_quant_weight_fwd_ref(NULL, wq, bv_var_f64(wv), OC * C);
        } else {
            float *xq32 = malloc(N * C * 4), *wq32 = malloc(OC * C * 4);
            bv_k_quant_act_fwd(xq32, NULL, NULL, x, N, C);
            bv_k_quant_weight_fwd(NULL, wq32, w, OC * C);
            for (int64_t i = 0; i < N * C; i++) xq[i] = xq32[i];
            for (int64_t i = 0; i < OC * C; i++) wq[i] = wq32[i];
            free(xq32), free(wq32);
        }
        bv_k_linear_fwd_ref(ey, xq, wq, bd, N, C, OC);
        bv_k_linear_bwd_ref(edx, edw, edb, dyd, xq, wq, N, C, OC);
        double tol = f64 ? 1e-12 : 1e-5;
        const char *p = f64 ? "F64" : "F32";
        char what[64];
        bv_graph_backward_seed(&g, y, f64 ? (void *)dyd : (void *)dy);
        if (f64) {
            bv_check_close_f64("STE y = xq Wq^T + b (F64)", bv_var_f64(y), ey, N * OC, tol, tol);
            bv_check_close_f64("STE dx = dy Wq (F64)", xv->grad, edx, N * C, tol, tol);
            bv_check_close_f64("STE dW = dy^T xq (F64)", wv->grad, edw, OC * C, tol, tol);
            bv_check_close_f64("STE db = colsum dy (F64)", bvv->grad, edb, OC, tol, tol);
        } else {
            snprintf(what, sizeof what, "STE y (%s)", p);
            bv_check_close_f32_f64(what, bv_var_f32(y), ey, N * OC, tol, tol);
            bv_check_close_f32_f64("STE dx = dy Wq (F32)", xv->grad, edx, N * C, tol, tol);
            bv_check_close_f32_f64("STE dW = dy^T xq (F32)", wv->grad, edw, OC * C, tol, tol);
            bv_check_close_f32_f64("STE db = colsum dy (F32)", bvv->grad, edb, OC, tol, tol);
        }
        free(xq), free(wq), free(dyd), free(ey), free(edx), free(edw), free(edb), free(bd);
        bv_graph_free(&g);
    }
    free(x), free(w), free(b), free(dy);
}

/* The F32 op against the F64 op on the same inputs, every switch combination. */
static void test_op_fast_vs_ref(void **state) {
    bv_rng r = {22};
    const int64_t N = 9, C = 37, OC = 23;
    int64_t xs[2] = {N, C}, ws[2] = {OC, C}, bs[1] = {OC};
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *dy = malloc(N * OC * 4);
    double *dyd = malloc(N * OC * 8);
    bv_rng_fill_normal_f32(&r, x, N * C, 1.0);
    bv_rng_fill_normal_f32(&r, w, OC * C, 0.1);
    bv_rng_fill_normal_f32(&r, b, OC, 1.0);
    bv_rng_fill_normal_f32(&r, dy, N * OC, 1.0);
    for (int64_t i = 0; i < N * OC; i++) dyd[i] = dy[i];
    bv_tensor xt = bv_tensor_make(x, BV_DTYPE_F32, 2, xs), wt = bv_tensor_make(w, BV_DTYPE_F32, 2, ws),
              bt = bv_tensor_make(b, BV_DTYPE_F32, 1, bs);
    for (int c = 0; c < 4; c++) {
        bv_graph g[2]; /* one graph per path: a backward runs its whole tape */
        bv_var *v[2][3], *y[2];
        for (int dt = 0; dt < 2; dt++) {
            bv_graph_init(&g[dt], 1 << 16);
            bv_dtype d = dt ? BV_DTYPE_F64 : BV_DTYPE_F32;
            v[dt][0] = bv_var_leaf(&g[dt], &xt, d, true);
            v[dt][1] = bv_var_leaf(&g[dt], &wt, d, true);
            v[dt][2] = bv_var_leaf(&g[dt], &bt, d, true);
            y[dt] = bv_op_bitlinear(&g[dt], v[dt][0], v[dt][1], v[dt][2], &k_cfgs[c], NULL, 0);
            bv_graph_backward_seed(&g[dt], y[dt], dt ? (void *)dyd : (void *)dy);
        }
        char what[96];
        snprintf(what, sizeof what, "w%d a%d fast vs ref: y", k_cfgs[c].weight_bits, k_cfgs[c].act_bits);
        bv_check_close_f32_f64(what, bv_var_f32(y[0]), bv_var_f64(y[1]), N * OC, 1e-5, 1e-5);
        const int64_t n[3] = {N * C, OC * C, OC};
        for (int i = 0; i < 3; i++) {
            snprintf(what, sizeof what, "w%d a%d fast vs ref: grad %d", k_cfgs[c].weight_bits, k_cfgs[c].act_bits, i);
            bv_check_close_f32_f64(what, v[0][i]->grad, v[1][i]->grad, n[i], 1e-5, 1e-5);
        }
        bv_graph_free(&g[0]);
        bv_graph_free(&g[1]);
    }
    free(x), free(w), free(b), free(dy), free(dyd);
}

/* OpenBLAS 0.3.21's sgemm is not thread-count invariant with its Prescott and Haswell kernels
 * (e.g. 130x301x257: most outputs differ in the last bits between 1 and 2 threads, some by 1e-4
 * relative where terms cancel), so the GEMM outputs of the op are held to the dot-product rounding
 * bound (bv_check_within_dot_bound); the quantized operands are compared bit for bit. */
/* Forward and backward of the op with 1 and 2 threads, on shapes that take the parallel paths. */
static void test_op_threads_identical(void **state) {
    bv_rng r = {23};
    const int64_t N = 130, C = 301, OC = 257;
    int64_t xs[2] = {N, C}, ws[2] = {OC, C}, bs[1] = {OC};
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *dy = malloc(N * OC * 4);
    bv_rng_fill_normal_f32(&r, x, N * C, 1.0);
    bv_rng_fill_normal_f32(&r, w, OC * C, 0.05);
    bv_rng_fill_normal_f32(&r, b, OC, 1.0);
    bv_rng_fill_normal_f32(&r, dy, N * OC, 1.0);
    float *out[2][6];
    const int64_t n[6] = {N * OC, N * C, OC * C, OC, N * C, OC * C};
    for (int t = 0; t < 2; t++) {
        bv_set_num_threads(t + 1);
        bv_graph g;
        bv_graph_init(&g, 1 << 16);
        bv_tensor xt = bv_tensor_make(x, BV_DTYPE_F32, 2, xs), wt = bv_tensor_make(w, BV_DTYPE_F32, 2, ws),
                  bt = bv_tensor_make(b, BV_DTYPE_F32, 1, bs);
        bv_var *xv = bv_var_leaf(&g, &xt, BV_DTYPE_F32, true), *wv = bv_var_leaf(&g, &wt, BV_DTYPE_F32, true),
               *bvv = bv_var_leaf(&g, &bt, BV_DTYPE_F32, true);
        bv_qweight cache;
        memset(&cache, 0, sizeof cache);
        bv_bitlinear_cfg cfg = {1, 8};
        bv_var *y = bv_op_bitlinear(&g, xv, wv, bvv, &cfg, &cache, 1);
        bv_graph_backward_seed(&g, y, dy);
        float *xq = malloc(N * C * 4);
        bv_k_quant_act_fwd(xq, NULL, NULL, x, N, C);
        void *src[6] = {y->val.data, xv->grad, wv->grad, bvv->grad, xq, cache.wq};
        for (int i = 0; i < 6; i++) {
            out[t][i] = malloc(n[i] * 4);
            memcpy(out[t][i], src[i], n[i] * 4);
        }
        free(xq);
        bv_qweight_free(&cache);
        bv_graph_free(&g);
    }
    bv_set_num_threads(2);
    check_bits_f32("xq 1 vs 2 threads", out[1][4], out[0][4], N * C);
    check_bits_f32("cached Wq 1 vs 2 threads", out[1][5], out[0][5], OC * C);
    check_bits_f32("db 1 vs 2 threads", out[1][3], out[0][3], OC);
    const float *xq = out[0][4], *wq = out[0][5];
    double *by = malloc(N * OC * 8), *bdx = malloc(N * C * 8), *bdw = malloc(OC * C * 8);
    bv_test_linear_bounds(xq, wq, b, dy, N, C, OC, by, bdx, bdw);
    bv_check_within_dot_bound("y 1 vs 2 threads", out[1][0], out[0][0], by, N * OC, C + 1);
    bv_check_within_dot_bound("dx 1 vs 2 threads", out[1][1], out[0][1], bdx, N * C, OC);
    bv_check_within_dot_bound("dW 1 vs 2 threads", out[1][2], out[0][2], bdw, OC * C, N);
    for (int t = 0; t < 2; t++)
        for (int i = 0; i < 6; i++) free(out[t][i]);
    free(by), free(bdx), free(bdw);
    free(x), free(w), free(b), free(dy);
}

/* ================= the unquantized op ================= */

static void test_gradcheck_unquantized(void **state) {
    bv_rng r = {31};
    int64_t xs[3] = {2, 3, 5}, ws[2] = {4, 5}, bs[1] = {4};
    bv_tensor in[3] = {bv_test_rand_f64(&r, 3, xs, -1, 1), bv_test_rand_f64(&r, 2, ws, -1, 1),
                       bv_test_rand_f64(&r, 1, bs, -1, 1)};
    bool check[3] = {true, true, true};
    bv_bitlinear_cfg cfg = {32, 32};
    bv_check_gradients("bitlinear w32 a32", fn_bitlinear, &cfg, 3, in, check, NULL);
    bv_check_gradients("bitlinear w32 a32 (no bias)", fn_bitlinear_nobias, &cfg, 2, in, check, NULL);
    bool check_x[3] = {true, false, false};
    bv_check_gradients("bitlinear w32 a32 (frozen w, b)", fn_bitlinear, &cfg, 3, in, check_x, NULL);
    for (int i = 0; i < 3; i++) free(in[i].data);
}

/* weight_bits 32 / act_bits 32 is bv_op_linear, bit for bit, forward and backward. */
static void test_unquantized_equals_linear(void **state) {
    bv_rng r = {32};
    const int64_t N = 21, C = 45, OC = 17;
    int64_t xs[2] = {N, C}, ws[2] = {OC, C}, bs[1] = {OC};
    float *x = malloc(N * C * 4), *w = malloc(OC * C * 4), *b = malloc(OC * 4), *dy = malloc(N * OC * 4);
    bv_rng_fill_normal_f32(&r, x, N * C, 1.0);
    bv_rng_fill_normal_f32(&r, w, OC * C, 0.1);
    bv_rng_fill_normal_f32(&r, b, OC, 1.0);
    bv_rng_fill_normal_f32(&r, dy, N * OC, 1.0);
    bv_tensor xt = bv_tensor_make(x, BV_DTYPE_F32, 2, xs), wt = bv_tensor_make(w, BV_DTYPE_F32, 2, ws),
              bt = bv_tensor_make(b, BV_DTYPE_F32, 1, bs);
    for (int has_b = 0; has_b < 2; has_b++) {
        bv_graph g[2];
        bv_var *v[2][3], *y[2];
        bv_bitlinear_cfg cfg = {32, 32};
        for (int k = 0; k < 2; k++) {
            bv_graph_init(&g[k], 1 << 16);
            v[k][0] = bv_var_leaf(&g[k], &xt, BV_DTYPE_F32, true);
            v[k][1] = bv_var_leaf(&g[k], &wt, BV_DTYPE_F32, true);
            v[k][2] = bv_var_leaf(&g[k], &bt, BV_DTYPE_F32, true);
            bv_var *bb = has_b ? v[k][2] : NULL;
            y[k] = k ? bv_op_linear(&g[k], v[k][0], v[k][1], bb)
                     : bv_op_bitlinear(&g[k], v[k][0], v[k][1], bb, &cfg, NULL, 0);
            bv_graph_backward_seed(&g[k], y[k], dy);
        }
        check_bits_f32("w32a32 y vs linear", bv_var_f32(y[0]), bv_var_f32(y[1]), N * OC);
        check_bits_f32("w32a32 dx vs linear", v[0][0]->grad, v[1][0]->grad, N * C);
        check_bits_f32("w32a32 dW vs linear", v[0][1]->grad, v[1][1]->grad, OC * C);
        if (has_b) check_bits_f32("w32a32 db vs linear", v[0][2]->grad, v[1][2]->grad, OC);
        bv_graph_free(&g[0]);
        bv_graph_free(&g[1]);
    }
    free(x), free(w), free(b), free(dy);
}

/* ================= the weight cache ================= */

static void test_cache(void **state) {
    /* the cache must not change a single bit of the fp32 forward; the integer forward (which rounds
     * differently) is checked separately in test_integer_forward */
    bool was = bv_bitlinear_integer_forward();
    bv_bitlinear_set_integer_forward(0);
    bv_params p;
    bv_params_init(&p);
    int64_t ws[2] = {24, 40}, ws2[2] = {24, 40}, ws3[2] = {8, 40};
    int iw = bv_params_add(&p, "blk.fc.weight", 2, ws, true);
    int iw2 = bv_params_add(&p, "blk.fc2.weight", 2, ws2, true);
    int iw3 = bv_params_add(&p, "blk.fc3.weight", 2, ws3, true);
    assert_int_equal(bv_params_finalize(&p), BV_OK);
    bv_rng r = {41};
    bv_rng_fill_normal_f32(&r, p.values, (int64_t)p.numel_total, 0.1);
    float x[3 * 40];
    bv_rng_fill_normal_f32(&r, x, 3 * 40, 1.0);
    bv_bitlinear_cfg cfg = {1, 8};
    bv_qweight cache;
    memset(&cache, 0, sizeof cache);
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    bv_tensor xt = bv_tensor_make2(x, BV_DTYPE_F32, 3, 40);

    /* two micro-batches at the same version: quantized once, gradients accumulate */
    uint64_t c0 = bv_k_quant_weight_calls();
    float y0[3 * 24];
    for (int mb = 0; mb < 2; mb++) {
        bv_graph_reset(&g);
        bv_var *xv = bv_var_wrap(&g, &xt, false);
        bv_var *y = bv_op_bitlinear(&g, xv, bv_var_param(&g, &p, iw), NULL, &cfg, &cache, p.version);
        if (mb == 0) memcpy(y0, y->val.data, sizeof y0);
        else check_bits_f32("same output from the cached weights", bv_var_f32(y), y0, 3 * 24);
        bv_graph_backward(&g, bv_op_sum(&g, y));
    }
    assert_int_equal(bv_k_quant_weight_calls() - c0, 1);
    assert_true(cache.version == p.version && cache.numel == 24 * 40);
    /* the cache holds exactly the quantizer's output */
    int8_t codes[24 * 40];
    float wq[24 * 40];
    bv_tensor wv = bv_params_value(&p, iw);
    float s = bv_k_quant_weight_fwd(codes, wq, wv.data, 24 * 40);
    assert_true(fbits(s) == fbits(cache.scale));
    check_codes("cache codes", cache.codes, codes, 24 * 40);
    check_bits_f32("cache wq", cache.wq, wq, 24 * 40);
    /* dW = dy^T @ xq with dy = 1, accumulated over both micro-batches: 2 * colsum(xq) */
    float xq[3 * 40];
    bv_k_quant_act_fwd(xq, NULL, NULL, x, 3, 40);
    float want_dw[24 * 40];
    for (int o = 0; o < 24; o++)
        for (int c = 0; c < 40; c++) want_dw[o * 40 + c] = 2.0f * (xq[c] + xq[40 + c] + xq[80 + c]);
    bv_check_close_f32("accumulated dW over micro-batches", bv_params_grad(&p, iw), want_dw, 24 * 40, 1e-6, 1e-6);

    /* the optimizer changes the values and bumps the version: re-quantized */
    c0 = bv_k_quant_weight_calls();
    for (int i = 0; i < 24 * 40; i++) ((float *)wv.data)[i] *= -1.0f;
    bv_params_mark_updated(&p);
    bv_graph_reset(&g);
    bv_var *y = bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_param(&g, &p, iw), NULL, &cfg, &cache, p.version);
    assert_int_equal(bv_k_quant_weight_calls() - c0, 1);
    for (int i = 0; i < 3 * 24; i++) assert_true(bv_var_f32(y)[i] == -y0[i]);
    assert_true(cache.version == p.version);
    /* same version again: not re-quantized */
    (void)bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_param(&g, &p, iw), NULL, &cfg, &cache, p.version);
    assert_int_equal(bv_k_quant_weight_calls() - c0, 1);
    /* another weight (other data, same size and version) through the same cache: re-quantized */
    (void)bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_param(&g, &p, iw2), NULL, &cfg, &cache, p.version);
    assert_int_equal(bv_k_quant_weight_calls() - c0, 2);
    assert_true(cache.src == bv_params_value(&p, iw2).data);
    /* a weight of another size: buffers re-made, values right */
    y = bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_param(&g, &p, iw3), NULL, &cfg, &cache, p.version);
    assert_int_equal(bv_k_quant_weight_calls() - c0, 3);
    assert_int_equal(cache.numel, 8 * 40);
    bv_var *y_nc = bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_param(&g, &p, iw3), NULL, &cfg, NULL, 0);
    check_bits_f32("resized cache vs no cache", bv_var_f32(y), bv_var_f32(y_nc), 3 * 8);
    /* without a cache every call quantizes; F64 inputs never touch the cache */
    assert_int_equal(bv_k_quant_weight_calls() - c0, 4);
    uint64_t v_before = cache.version;
    const float *src_before = cache.src;
    bv_var *x64 = bv_var_leaf(&g, &xt, BV_DTYPE_F64, false);
    bv_tensor w3 = bv_params_value(&p, iw3);
    (void)bv_op_bitlinear(&g, x64, bv_var_leaf(&g, &w3, BV_DTYPE_F64, true), NULL, &cfg, &cache, p.version + 7);
    assert_true(cache.version == v_before && cache.src == src_before);
    assert_int_equal(bv_k_quant_weight_calls() - c0, 4);
    /* no_grad (teacher forward): same values, nothing recorded */
    bv_graph_no_grad_begin(&g);
    bv_var *y_ng = bv_op_bitlinear(&g, bv_var_wrap(&g, &xt, false), bv_var_param(&g, &p, iw3), NULL, &cfg, &cache, p.version);
    bv_graph_no_grad_end(&g);
    check_bits_f32("no_grad forward", bv_var_f32(y_ng), bv_var_f32(y), 3 * 8);
    assert_false(y_ng->requires_grad);

    bv_qweight_free(&cache);
    assert_null(cache.wq);
    bv_qweight_free(&cache); /* freeing twice is harmless */
    bv_graph_free(&g);
    bv_params_free(&p);
    bv_bitlinear_set_integer_forward(was);
}

/* ================= programmer errors ================= */

static void run_with_cfg(int wbits, int abits) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t xs[2] = {2, 3}, ws[2] = {4, 3};
    bv_var *x = bv_var_new(&g, BV_DTYPE_F32, 2, xs), *w = bv_var_new(&g, BV_DTYPE_F32, 2, ws);
    memset(x->val.data, 0, 24);
    memset(w->val.data, 0, 48);
    bv_bitlinear_cfg cfg = {wbits, abits};
    bv_op_bitlinear(&g, x, w, NULL, &cfg, NULL, 0);
}
static void die_weight_bits(void) { run_with_cfg(2, 8); }
static void die_act_bits(void) { run_with_cfg(1, 4); }
static void die_stale_cache(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t xs[2] = {2, 3}, ws[2] = {4, 3};
    bv_var *x = bv_var_new(&g, BV_DTYPE_F32, 2, xs), *w = bv_var_new(&g, BV_DTYPE_F32, 2, ws);
    for (int i = 0; i < 6; i++) bv_var_f32(x)[i] = (float)i;
    for (int i = 0; i < 12; i++) bv_var_f32(w)[i] = (float)i - 5.5f;
    w->requires_grad = true;
    bv_qweight cache;
    memset(&cache, 0, sizeof cache);
    bv_bitlinear_cfg cfg = {1, 8};
    bv_var *y = bv_op_bitlinear(&g, x, w, NULL, &cfg, &cache, 1);
    (void)bv_op_bitlinear(&g, x, w, NULL, &cfg, &cache, 2); /* re-quantized before y's backward */
    bv_graph_backward(&g, bv_op_sum(&g, y));
}

static void test_programmer_errors(void **state) {
    bv_test_expect_abort("weight_bits 2", die_weight_bits, "weight_bits 2", NULL);
    bv_test_expect_abort("act_bits 4", die_act_bits, "act_bits 4", NULL);
    bv_test_expect_abort("cache re-quantized before backward", die_stale_cache, "re-quantized (version 1 -> 2)", NULL);
}

/* The integer forward (int8 x ternary GEMM, int32 sums, scaled after) against the fp32 fake-quant
 * forward: outputs agree to float rounding of the dot products (bound: 2 * C * 2^-24 * sum |xq||wq|
 * per output, plus an ulp of the result) and the backward is bit-identical (same xq, Wq). */
static void test_integer_forward(void **state) {
    bool was = bv_bitlinear_integer_forward();
    const int64_t N = 37, C = 300, OC = 70;
    bv_params p;
    bv_params_init(&p);
    int64_t ws[2] = {OC, C}, bs[1] = {OC};
    int iw = bv_params_add(&p, "fc.weight", 2, ws, true), ib = bv_params_add(&p, "fc.bias", 1, bs, true);
    assert_int_equal(bv_params_finalize(&p), BV_OK);
    bv_rng r = {77};
    bv_rng_fill_normal_f32(&r, p.values, (int64_t)p.numel_total, 0.05);
    float *x = bv_test_rand_f32(&r, N * C, -2, 2), *dy = bv_test_rand_f32(&r, N * OC, -1, 1);
    bv_bitlinear_cfg cfg = {1, 8};
    float *y[2], *dx[2], *dw[2], *db[2];
    for (int mode = 0; mode < 2; mode++) {
        bv_bitlinear_set_integer_forward(mode);
        bv_qweight q;
        memset(&q, 0, sizeof q);
        bv_graph g;
        bv_graph_init(&g, 1 << 20);
        bv_params_zero_grad(&p);
        bv_tensor xt = bv_tensor_make2(x, BV_DTYPE_F32, N, C);
        bv_var *xv = bv_var_wrap(&g, &xt, true);
        bv_var *yv = bv_op_bitlinear(&g, xv, bv_var_param(&g, &p, iw), bv_var_param(&g, &p, ib), &cfg, &q, p.version);
        bv_graph_backward_seed(&g, yv, dy);
        y[mode] = bv_test_copy_f32(bv_var_f32(yv), N * OC);
        dx[mode] = bv_test_copy_f32(xv->grad, N * C);
        dw[mode] = bv_test_copy_f32(bv_params_grad(&p, iw), OC * C);
        db[mode] = bv_test_copy_f32(bv_params_grad(&p, ib), OC);
        if (mode == 1) assert_non_null(q.tmat.packed);
        bv_qweight_free(&q);
        bv_graph_free(&g);
    }
    /* error bound of the fp32 path's dot products */
    float *xq = malloc(N * C * 4), *sx = malloc(N * 4), *wq = malloc(OC * C * 4);
    bv_k_quant_act_fwd(xq, NULL, sx, x, N, C);
    bv_k_quant_weight_fwd(NULL, wq, bv_params_value(&p, iw).data, OC * C);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double mag = 0;
            for (int64_t c = 0; c < C; c++) mag += fabs((double)xq[n * C + c] * wq[o * C + c]);
            double tol = 2.0 * C * 5.96e-8 * mag + 1.2e-7 * fabs(y[0][n * OC + o]) + 1e-30;
            double d = fabs((double)y[1][n * OC + o] - y[0][n * OC + o]);
            if (d > tol)
                fail_msg("integer vs fp32 forward at (%lld, %lld): %.9g vs %.9g, |diff| %.3g > bound %.3g", (long long)n,
                         (long long)o, y[1][n * OC + o], y[0][n * OC + o], d, tol);
        }
    check_bits_f32("integer forward: dx", dx[1], dx[0], N * C);
    check_bits_f32("integer forward: dW", dw[1], dw[0], OC * C);
    check_bits_f32("integer forward: db", db[1], db[0], OC);
    for (int m = 0; m < 2; m++) free(y[m]), free(dx[m]), free(dw[m]), free(db[m]);
    free(x), free(dy), free(xq), free(sx), free(wq);
    bv_params_free(&p);
    bv_bitlinear_set_integer_forward(was);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quant_weight_torch),    cmocka_unit_test(test_quant_act_torch),
        cmocka_unit_test(test_fixture_has_edge_cases), cmocka_unit_test(test_quant_fast_vs_ref),
        cmocka_unit_test(test_absmean_definition),    cmocka_unit_test(test_quant_threads_identical),
        cmocka_unit_test(test_quant_nan),             cmocka_unit_test(test_layer_torch_parity),
        cmocka_unit_test(test_ste_identities),        cmocka_unit_test(test_op_fast_vs_ref),
        cmocka_unit_test(test_op_threads_identical),  cmocka_unit_test(test_gradcheck_unquantized),
        cmocka_unit_test(test_unquantized_equals_linear), cmocka_unit_test(test_cache),
        cmocka_unit_test(test_integer_forward),
        cmocka_unit_test(test_programmer_errors),
    };
    return cmocka_run_group_tests_name("bitlinear", tests, NULL, NULL);
}
