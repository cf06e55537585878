/* Tests of the element-wise kernels and ops: fast fp32 vs double reference (forward and backward,
 * merged and unmerged broadcast plans), 1 vs 2 threads, finite-difference gradient checks of every
 * op (broadcasting included), the F32 autograd path against the F64 one, and parity with PyTorch
 * through tests/fixtures/elementwise.safetensors (tests/gen/gen_elementwise.py). */
#include <math.h>
#include <string.h>

#include "src/kernels/elementwise.h"
#include "tests/util/testutil.h"

/* ---- tables of the ops under test ---- */

typedef struct {
    const char *name;
    void (*fwd)(float *, const float *, int64_t);
    void (*bwd)(float *, const float *, const float *, int64_t);
    void (*fwd_ref)(double *, const double *, int64_t);
    void (*bwd_ref)(double *, const double *, const double *, int64_t);
    bv_var *(*op)(bv_graph *, bv_var *);
    bool kink_at_zero; /* gradchecks keep inputs away from 0 */
} unary_case;

static const unary_case UNARY[] = {
    {"gelu_tanh", bv_k_gelu_tanh_fwd, bv_k_gelu_tanh_bwd, bv_k_gelu_tanh_fwd_ref, bv_k_gelu_tanh_bwd_ref,
     bv_op_gelu_tanh, false},
    {"gelu_erf", bv_k_gelu_erf_fwd, bv_k_gelu_erf_bwd, bv_k_gelu_erf_fwd_ref, bv_k_gelu_erf_bwd_ref, bv_op_gelu_erf,
     false},
    {"relu", bv_k_relu_fwd, bv_k_relu_bwd, bv_k_relu_fwd_ref, bv_k_relu_bwd_ref, bv_op_relu, true},
    {"relu2", bv_k_relu2_fwd, bv_k_relu2_bwd, bv_k_relu2_fwd_ref, bv_k_relu2_bwd_ref, bv_op_relu2, true},
    {"silu", bv_k_silu_fwd, bv_k_silu_bwd, bv_k_silu_fwd_ref, bv_k_silu_bwd_ref, bv_op_silu, false},
};

typedef struct {
    const char *name;
    void (*fwd)(float *, const float *, const float *, const bv_bcast *);
    void (*fwd_ref)(double *, const double *, const double *, const bv_bcast *);
    bv_var *(*op)(bv_graph *, bv_var *, bv_var *);
} binary_case;

static const binary_case BINARY[] = {
    {"add", bv_k_add_fwd, bv_k_add_fwd_ref, bv_op_add},
    {"sub", bv_k_sub_fwd, bv_k_sub_fwd_ref, bv_op_sub},
    {"mul", bv_k_mul_fwd, bv_k_mul_fwd_ref, bv_op_mul},
};

/* backward of BINARY[k] (mul needs the operands) */
static void binary_bwd(int k, float *da, float *db, const float *dy, const float *a, const float *b,
                       const bv_bcast *p) {
    if (k == 0) bv_k_add_bwd(da, db, dy, p);
    else if (k == 1) bv_k_sub_bwd(da, db, dy, p);
    else bv_k_mul_bwd(da, db, dy, a, b, p);
}
static void binary_bwd_ref(int k, double *da, double *db, const double *dy, const double *a, const double *b,
                           const bv_bcast *p) {
    if (k == 0) bv_k_add_bwd_ref(da, db, dy, p);
    else if (k == 1) bv_k_sub_bwd_ref(da, db, dy, p);
    else bv_k_mul_bwd_ref(da, db, dy, a, b, p);
}

typedef struct {
    int na;
    int64_t sa[BV_MAX_DIMS];
    int nb;
    int64_t sb[BV_MAX_DIMS];
} shape_pair;

/* broadcasting cases small enough for gradchecks */
static const shape_pair SMALL_PAIRS[] = {
    {2, {3, 5}, 2, {3, 5}},             /* same shape */
    {2, {4, 5}, 1, {5}},                /* row broadcast (N, C) op (C) */
    {1, {5}, 2, {4, 5}},                /* (C) op (N, C) */
    {3, {2, 3, 4}, 1, {4}},             /* (2,3,4) + (4) */
    {3, {2, 1, 4}, 2, {3, 1}},          /* both sides broadcast -> (2, 3, 4) */
    {2, {2, 3}, 0, {0}},                /* tensor op scalar */
    {0, {0}, 2, {2, 3}},                /* scalar op tensor */
    {0, {0}, 0, {0}},                   /* scalar op scalar */
    {1, {1}, 2, {5, 1}},                /* size-1 dims only */
    {3, {4, 1, 3}, 3, {1, 5, 1}},       /* alternating broadcast dims */
    {2, {4, 1}, 2, {4, 6}},             /* column broadcast (reduction along the inner dim) */
    {5, {2, 3, 1, 2, 2}, 4, {3, 2, 1, 1}}, /* rank 5 */
};

/* larger cases: parallel paths, several forward chunks and reduction column blocks */
static const shape_pair LARGE_PAIRS[] = {
    {2, {3, 40001}, 2, {3, 40001}}, /* same shape, rows longer than one forward chunk */
    {2, {257, 1031}, 1, {1031}},    /* row broadcast */
    {1, {1031}, 2, {257, 1031}},
    {2, {131, 517}, 2, {131, 1}},   /* column broadcast */
    {3, {9, 67, 129}, 3, {9, 1, 129}},
    {3, {5, 1, 700}, 2, {80, 1}},
    {1, {70001}, 0, {0}}, /* scalar broadcast over many elements */
};

static int64_t numel_of(int n, const int64_t *s) {
    int64_t k = 1;
    for (int i = 0; i < n; i++) k *= s[i];
    return k;
}

static char *pair_str(const shape_pair *sp, char *buf, size_t n) {
    size_t k = 0;
    k += snprintf(buf + k, n - k, "(");
    for (int i = 0; i < sp->na; i++) k += snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)sp->sa[i]);
    k += snprintf(buf + k, n - k, ") op (");
    for (int i = 0; i < sp->nb; i++) k += snprintf(buf + k, n - k, "%s%lld", i ? "," : "", (long long)sp->sb[i]);
    snprintf(buf + k, n - k, ")");
    return buf;
}

/* ---- plan ---- */

static void test_bcast_plan(void **state) {
    bv_bcast p;
    int64_t a[3] = {2, 256, 4304}, b[1] = {4304};
    assert_int_equal(bv_k_bcast_plan(&p, 3, a, 1, b, true), BV_OK);
    /* (B, T, C) + (C) merges to the row-broadcast layout (B*T, C) */
    assert_int_equal(p.ndim, 2);
    assert_int_equal(p.shape[0], 512);
    assert_int_equal(p.shape[1], 4304);
    assert_int_equal(p.sa[0], 4304);
    assert_int_equal(p.sa[1], 1);
    assert_int_equal(p.sb[0], 0);
    assert_int_equal(p.sb[1], 1);
    assert_int_equal(p.out_ndim, 3);
    assert_int_equal(p.out_shape[2], 4304);
    assert_int_equal(p.n, 2 * 256 * 4304);
    assert_int_equal(p.na, p.n);
    assert_int_equal(p.nb, 4304);
    /* same shape merges to one dim */
    assert_int_equal(bv_k_bcast_plan(&p, 3, a, 3, a, true), BV_OK);
    assert_int_equal(p.ndim, 1);
    assert_int_equal(p.shape[0], p.n);
    /* unmerged keeps the broadcast rank */
    assert_int_equal(bv_k_bcast_plan(&p, 3, a, 1, b, false), BV_OK);
    assert_int_equal(p.ndim, 3);
    /* scalars: rank-0 result, one iteration dim */
    assert_int_equal(bv_k_bcast_plan(&p, 0, NULL, 0, NULL, true), BV_OK);
    assert_int_equal(p.out_ndim, 0);
    assert_int_equal(p.ndim, 1);
    assert_int_equal(p.n, 1);
    /* mismatch is a shape error with a message */
    int64_t c[2] = {3, 4}, d[1] = {5};
    assert_int_equal(bv_k_bcast_plan(&p, 2, c, 1, d, true), BV_ERR_SHAPE);
    assert_true(strstr(bv_error_msg(), "4") != NULL && strstr(bv_error_msg(), "5") != NULL);
}

/* ---- fast vs reference ---- */

static void check_unary_fast_vs_ref(const unary_case *u, int64_t n, uint64_t seed) {
    bv_rng r = {seed};
    float *x = malloc(n * 4), *y = malloc(n * 4), *dy = malloc(n * 4), *dx = malloc(n * 4);
    double *xd = malloc(n * 8), *yd = malloc(n * 8), *dyd = malloc(n * 8), *dxd = malloc(n * 8);
    bv_rng_fill_normal_f32(&r, x, n, 3.0);
    /* the tails and special points, where the exp-based forms saturate */
    const float special[] = {0.0f, -0.0f, 1e-7f, -1e-7f, 1e-30f, -20.0f, 20.0f, -50.0f, 50.0f, -100.0f, 100.0f,
                             -1e4f, 1e4f, -88.5f, 44.1f, -43.9f};
    for (size_t i = 0; i < BV_ARRAY_LEN(special) && (int64_t)i < n; i++) x[i] = special[i];
    bv_rng_fill_f32(&r, dy, n, -1, 1);
    bv_rng_fill_f32(&r, dx, n, -1, 1); /* nonzero: backward must accumulate */
    bv_test_to_f64_into(xd, x, n), bv_test_to_f64_into(dyd, dy, n), bv_test_to_f64_into(dxd, dx, n);
    u->fwd(y, x, n);
    u->fwd_ref(yd, xd, n);
    char what[96];
    snprintf(what, sizeof what, "%s fwd fast vs ref (n=%lld)", u->name, (long long)n);
    bv_check_close_f32_f64(what, y, yd, n, 2e-7, 1e-6);
    u->bwd(dx, dy, x, n);
    u->bwd_ref(dxd, dyd, xd, n);
    snprintf(what, sizeof what, "%s bwd fast vs ref (n=%lld)", u->name, (long long)n);
    bv_check_close_f32_f64(what, dx, dxd, n, 2e-7, 1e-6);
    free(x), free(y), free(dy), free(dx), free(xd), free(yd), free(dyd), free(dxd);
}

static void test_unary_fast_vs_ref(void **state) {
    for (size_t k = 0; k < BV_ARRAY_LEN(UNARY); k++) {
        check_unary_fast_vs_ref(&UNARY[k], 37, 10 + k);
        check_unary_fast_vs_ref(&UNARY[k], 40001, 20 + k);
    }
}

static void test_unary_nan_propagates(void **state) {
    /* a NaN activation must stay visible (PyTorch propagates it), including through the clamped exp */
    float x[5] = {NAN, 1.0f, -1.0f, NAN, 0.5f}, y[5];
    for (size_t k = 0; k < BV_ARRAY_LEN(UNARY); k++) {
        UNARY[k].fwd(y, x, 5);
        if (!isnan(y[0]) || !isnan(y[3]) || isnan(y[1]) || isnan(y[4]))
            fail_msg("%s: NaN in -> %g, %g; finite in -> %g, %g", UNARY[k].name, y[0], y[3], y[1], y[4]);
    }
}

static void test_scale_fast_vs_ref(void **state) {
    bv_rng r = {3};
    int64_t n = 40003;
    float *x = malloc(n * 4), *y = malloc(n * 4), *dx = malloc(n * 4);
    double *xd = malloc(n * 8), *yd = malloc(n * 8), *dxd = malloc(n * 8);
    bv_rng_fill_f32(&r, x, n, -5, 5);
    bv_rng_fill_f32(&r, dx, n, -1, 1);
    bv_test_to_f64_into(xd, x, n), bv_test_to_f64_into(dxd, dx, n);
    const float s = -0.37f;
    bv_k_scale_fwd(y, x, s, n);
    bv_k_scale_fwd_ref(yd, xd, s, n);
    bv_check_close_f32_f64("scale fwd", y, yd, n, 0, 1e-7);
    bv_k_scale_bwd(dx, x, s, n); /* x as the upstream gradient */
    bv_k_scale_bwd_ref(dxd, xd, s, n);
    bv_check_close_f32_f64("scale bwd", dx, dxd, n, 1e-7, 1e-6);
    free(x), free(y), free(dx), free(xd), free(yd), free(dxd);
}

/* fast kernels (on a merged or unmerged plan) vs the reference (unmerged plan) */
static void check_binary_fast_vs_ref(const shape_pair *sp, uint64_t seed) {
    char ps[128], what[256];
    pair_str(sp, ps, sizeof ps);
    bv_bcast pm, pu;
    assert_int_equal(bv_k_bcast_plan(&pm, sp->na, sp->sa, sp->nb, sp->sb, true), BV_OK);
    assert_int_equal(bv_k_bcast_plan(&pu, sp->na, sp->sa, sp->nb, sp->sb, false), BV_OK);
    int64_t na = numel_of(sp->na, sp->sa), nb = numel_of(sp->nb, sp->sb), n = pm.n;
    assert_int_equal(pm.na, na);
    assert_int_equal(pm.nb, nb);
    bv_rng r = {seed};
    float *a = malloc(na * 4 + 4), *b = malloc(nb * 4 + 4), *y = malloc(n * 4 + 4), *dy = malloc(n * 4 + 4);
    float *da0 = malloc(na * 4 + 4), *db0 = malloc(nb * 4 + 4), *da = malloc(na * 4 + 4), *db = malloc(nb * 4 + 4);
    double *ad = malloc(na * 8 + 8), *bd = malloc(nb * 8 + 8), *yd = malloc(n * 8 + 8), *dyd = malloc(n * 8 + 8);
    double *dad = malloc(na * 8 + 8), *dbd = malloc(nb * 8 + 8);
    bv_rng_fill_f32(&r, a, na, -2, 2);
    bv_rng_fill_f32(&r, b, nb, -2, 2);
    bv_rng_fill_f32(&r, dy, n, -1, 1);
    bv_rng_fill_f32(&r, da0, na, -1, 1);
    bv_rng_fill_f32(&r, db0, nb, -1, 1);
    bv_test_to_f64_into(ad, a, na), bv_test_to_f64_into(bd, b, nb), bv_test_to_f64_into(dyd, dy, n);
    /* The gradient of a broadcast operand sums R = n / numel rows of terms |dy * other| <= 2 in
     * float (as PyTorch does): allow R roundings of a term's size, twice over. */
    double rows = (double)n / (double)BV_MAX(1, BV_MIN(na, nb));
    double atol = 1e-7 + rows * 2.0 * 2.0 * 0x1p-24;
    for (size_t k = 0; k < BV_ARRAY_LEN(BINARY); k++) {
        BINARY[k].fwd_ref(yd, ad, bd, &pu);
        bv_test_to_f64_into(dad, da0, na), bv_test_to_f64_into(dbd, db0, nb);
        binary_bwd_ref((int)k, dad, dbd, dyd, ad, bd, &pu);
        for (int merged = 0; merged < 2; merged++) {
            const bv_bcast *p = merged ? &pm : &pu;
            BINARY[k].fwd(y, a, b, p);
            snprintf(what, sizeof what, "%s fwd %s (%s plan)", BINARY[k].name, ps, merged ? "merged" : "unmerged");
            bv_check_close_f32_f64(what, y, yd, n, 0, 1e-7);
            memcpy(da, da0, na * 4), memcpy(db, db0, nb * 4);
            binary_bwd((int)k, da, db, dy, a, b, p);
            snprintf(what, sizeof what, "%s da %s (%s plan)", BINARY[k].name, ps, merged ? "merged" : "unmerged");
            bv_check_close_f32_f64(what, da, dad, na, atol, 1e-6);
            snprintf(what, sizeof what, "%s db %s (%s plan)", BINARY[k].name, ps, merged ? "merged" : "unmerged");
            bv_check_close_f32_f64(what, db, dbd, nb, atol, 1e-6);
            /* NULL gradients are skipped */
            memcpy(da, da0, na * 4);
            binary_bwd((int)k, da, NULL, dy, a, b, p);
            snprintf(what, sizeof what, "%s da only %s", BINARY[k].name, ps);
            bv_check_close_f32_f64(what, da, dad, na, atol, 1e-6);
        }
    }
    free(a), free(b), free(y), free(dy), free(da0), free(db0), free(da), free(db);
    free(ad), free(bd), free(yd), free(dyd), free(dad), free(dbd);
}

static void test_binary_fast_vs_ref(void **state) {
    for (size_t i = 0; i < BV_ARRAY_LEN(SMALL_PAIRS); i++) check_binary_fast_vs_ref(&SMALL_PAIRS[i], 100 + i);
    for (size_t i = 0; i < BV_ARRAY_LEN(LARGE_PAIRS); i++) check_binary_fast_vs_ref(&LARGE_PAIRS[i], 200 + i);
}

static void test_binary_empty(void **state) {
    /* zero-size operands: nothing is read or written */
    int64_t sa[2] = {0, 5}, sb[1] = {5};
    bv_bcast p;
    assert_int_equal(bv_k_bcast_plan(&p, 2, sa, 1, sb, true), BV_OK);
    assert_int_equal(p.n, 0);
    float b[5] = {1, 2, 3, 4, 5}, db[5] = {0};
    bv_k_mul_fwd(NULL, NULL, b, &p);
    bv_k_mul_bwd(NULL, db, NULL, NULL, b, &p);
    for (int i = 0; i < 5; i++) assert_true(db[i] == 0.0f);
}

/* ---- 1 vs 2 threads ---- */

/* The kernels are bit-identical for any thread count; the tiny atol only lets exact zeros
 * (relu outputs) compare equal, which a tolerance of 0 + rtol * 0 reports as 0/0. */
#define THREAD_ATOL 1e-37

static void test_threads_agree(void **state) {
    bv_rng r = {7};
    int64_t n = 2 * 256 * 431 + 7; /* a slice of a SigLIP MLP activation, odd */
    float *x = malloc(n * 4), *dy = malloc(n * 4), *y[2], *dx[2];
    bv_rng_fill_normal_f32(&r, x, n, 3.0);
    bv_rng_fill_f32(&r, dy, n, -1, 1);
    for (size_t k = 0; k < BV_ARRAY_LEN(UNARY); k++) {
        for (int t = 0; t < 2; t++) {
            bv_set_num_threads(t + 1);
            y[t] = malloc(n * 4);
            dx[t] = calloc(n, 4);
            UNARY[k].fwd(y[t], x, n);
            UNARY[k].bwd(dx[t], dy, x, n);
        }
        bv_set_num_threads(2);
        char what[96];
        snprintf(what, sizeof what, "%s y 1 vs 2 threads", UNARY[k].name);
        bv_check_close_f32(what, y[1], y[0], n, THREAD_ATOL, 1e-6);
        snprintf(what, sizeof what, "%s dx 1 vs 2 threads", UNARY[k].name);
        bv_check_close_f32(what, dx[1], dx[0], n, THREAD_ATOL, 1e-6);
        for (int t = 0; t < 2; t++) free(y[t]), free(dx[t]);
    }
    free(x), free(dy);

    for (size_t i = 0; i < BV_ARRAY_LEN(LARGE_PAIRS); i++) {
        const shape_pair *sp = &LARGE_PAIRS[i];
        bv_bcast p;
        assert_int_equal(bv_k_bcast_plan(&p, sp->na, sp->sa, sp->nb, sp->sb, true), BV_OK);
        float *a = malloc(p.na * 4), *b = malloc(p.nb * 4), *g = malloc(p.n * 4);
        bv_rng_fill_f32(&r, a, p.na, -2, 2);
        bv_rng_fill_f32(&r, b, p.nb, -2, 2);
        bv_rng_fill_f32(&r, g, p.n, -1, 1);
        for (size_t k = 0; k < BV_ARRAY_LEN(BINARY); k++) {
            float *yt[2], *da[2], *db[2];
            for (int t = 0; t < 2; t++) {
                bv_set_num_threads(t + 1);
                yt[t] = malloc(p.n * 4), da[t] = calloc(p.na, 4), db[t] = calloc(p.nb, 4);
                BINARY[k].fwd(yt[t], a, b, &p);
                binary_bwd((int)k, da[t], db[t], g, a, b, &p);
            }
            bv_set_num_threads(2);
            char ps[128], what[200];
            pair_str(sp, ps, sizeof ps);
            snprintf(what, sizeof what, "%s y %s 1 vs 2 threads", BINARY[k].name, ps);
            bv_check_close_f32(what, yt[1], yt[0], p.n, THREAD_ATOL, 1e-6);
            snprintf(what, sizeof what, "%s da %s 1 vs 2 threads", BINARY[k].name, ps);
            bv_check_close_f32(what, da[1], da[0], p.na, THREAD_ATOL, 1e-6);
            snprintf(what, sizeof what, "%s db %s 1 vs 2 threads", BINARY[k].name, ps);
            bv_check_close_f32(what, db[1], db[0], p.nb, THREAD_ATOL, 1e-6);
            for (int t = 0; t < 2; t++) free(yt[t]), free(da[t]), free(db[t]);
        }
        free(a), free(b), free(g);
    }
}

/* ---- gradient checks (double precision, autograd ops) ---- */

static bv_var *fn_unary(bv_graph *g, bv_var **in, void *u) { return ((const unary_case *)u)->op(g, in[0]); }
static bv_var *fn_binary(bv_graph *g, bv_var **in, void *u) {
    return ((const binary_case *)u)->op(g, in[0], in[1]);
}
static bv_var *fn_scale(bv_graph *g, bv_var **in, void *u) { return bv_op_scale(g, in[0], -1.7); }
static bv_var *fn_square(bv_graph *g, bv_var **in, void *u) { return bv_op_mul(g, in[0], in[0]); }
/* a chain, so gradients reaching a var from two ops accumulate: relu2(a * b + a) * gelu(b) */
static bv_var *fn_chain(bv_graph *g, bv_var **in, void *u) {
    bv_var *t = bv_op_add(g, bv_op_mul(g, in[0], in[1]), in[0]);
    return bv_op_mul(g, bv_op_silu(g, t), bv_op_gelu_tanh(g, in[1]));
}

static void test_unary_gradcheck(void **state) {
    bv_rng r = {11};
    int64_t s[3] = {2, 3, 7};
    for (size_t k = 0; k < BV_ARRAY_LEN(UNARY); k++) {
        bv_tensor x = bv_test_rand_f64(&r, 3, s, -3, 3);
        double *xv = x.data;
        if (UNARY[k].kink_at_zero) /* |x| in [0.1, 2]: no element within eps of the kink */
            for (int64_t i = 0; i < 42; i++) xv[i] = (bv_rng_uniform(&r) < 0.5 ? -1 : 1) * (0.1 + 1.9 * bv_rng_uniform(&r));
        bool check[1] = {true};
        bv_check_gradients(UNARY[k].name, fn_unary, (void *)&UNARY[k], 1, &x, check, NULL);
        free(x.data);
    }
    int64_t s1[1] = {9};
    bv_tensor x = bv_test_rand_f64(&r, 1, s1, -3, 3);
    bool check[1] = {true};
    bv_check_gradients("scale", fn_scale, NULL, 1, &x, check, NULL);
    bv_check_gradients("mul(x, x)", fn_square, NULL, 1, &x, check, NULL);
    free(x.data);
}

static void test_binary_gradcheck(void **state) {
    bv_rng r = {12};
    for (size_t i = 0; i < BV_ARRAY_LEN(SMALL_PAIRS); i++) {
        const shape_pair *sp = &SMALL_PAIRS[i];
        bv_tensor in[2] = {bv_test_rand_f64(&r, sp->na, sp->sa, -2, 2), bv_test_rand_f64(&r, sp->nb, sp->sb, -2, 2)};
        for (size_t k = 0; k < BV_ARRAY_LEN(BINARY); k++) {
            char ps[128], what[200];
            pair_str(sp, ps, sizeof ps);
            bool both[2] = {true, true}, only_a[2] = {true, false}, only_b[2] = {false, true};
            snprintf(what, sizeof what, "%s %s", BINARY[k].name, ps);
            bv_check_gradients(what, fn_binary, (void *)&BINARY[k], 2, in, both, NULL);
            snprintf(what, sizeof what, "%s %s (b constant)", BINARY[k].name, ps);
            bv_check_gradients(what, fn_binary, (void *)&BINARY[k], 2, in, only_a, NULL);
            snprintf(what, sizeof what, "%s %s (a constant)", BINARY[k].name, ps);
            bv_check_gradients(what, fn_binary, (void *)&BINARY[k], 2, in, only_b, NULL);
        }
        free(in[0].data), free(in[1].data);
    }
    int64_t sa[2] = {3, 4}, sb[1] = {4};
    bv_tensor in[2] = {bv_test_rand_f64(&r, 2, sa, -2, 2), bv_test_rand_f64(&r, 1, sb, -2, 2)};
    bool both[2] = {true, true};
    bv_check_gradients("chain silu(a*b + a) * gelu_tanh(b)", fn_chain, NULL, 2, in, both, NULL);
    free(in[0].data), free(in[1].data);
}

/* ---- the F32 autograd path (fast kernels, merged plans) against the F64 one ---- */

static void test_f32_ops_match_f64(void **state) {
    bv_rng r = {13};
    bv_graph g32, g64;
    bv_graph_init(&g32, 1 << 20);
    bv_graph_init(&g64, 1 << 20);
    for (size_t i = 0; i < BV_ARRAY_LEN(SMALL_PAIRS); i++) {
        const shape_pair *sp = &SMALL_PAIRS[i];
        bv_tensor ta = bv_test_rand_f64(&r, sp->na, sp->sa, -2, 2), tb = bv_test_rand_f64(&r, sp->nb, sp->sb, -2, 2);
        for (size_t k = 0; k < BV_ARRAY_LEN(BINARY); k++) {
            bv_graph_reset(&g32), bv_graph_reset(&g64);
            bv_var *a32 = bv_var_leaf(&g32, &ta, BV_DTYPE_F32, true), *b32 = bv_var_leaf(&g32, &tb, BV_DTYPE_F32, true);
            bv_var *a64 = bv_var_leaf(&g64, &ta, BV_DTYPE_F64, true), *b64 = bv_var_leaf(&g64, &tb, BV_DTYPE_F64, true);
            /* sum of a nonlinear function, so every output element has its own gradient */
            bv_var *y32 = BINARY[k].op(&g32, a32, b32), *y64 = BINARY[k].op(&g64, a64, b64);
            assert_int_equal(y32->val.ndim, y64->val.ndim);
            for (int d = 0; d < y32->val.ndim; d++) assert_int_equal(y32->val.shape[d], y64->val.shape[d]);
            bv_graph_backward(&g32, bv_op_sum(&g32, bv_op_silu(&g32, y32)));
            bv_graph_backward(&g64, bv_op_sum(&g64, bv_op_silu(&g64, y64)));
            char ps[128], what[200];
            pair_str(sp, ps, sizeof ps);
            snprintf(what, sizeof what, "%s %s: F32 op vs F64 op, value", BINARY[k].name, ps);
            bv_check_close_f32_f64(what, bv_var_f32(y32), bv_var_f64(y64), bv_var_numel(y32), 1e-6, 1e-6);
            snprintf(what, sizeof what, "%s %s: F32 op vs F64 op, da", BINARY[k].name, ps);
            bv_check_close_f32_f64(what, a32->grad, a64->grad, bv_var_numel(a32), 1e-6, 1e-5);
            snprintf(what, sizeof what, "%s %s: F32 op vs F64 op, db", BINARY[k].name, ps);
            bv_check_close_f32_f64(what, b32->grad, b64->grad, bv_var_numel(b32), 1e-6, 1e-5);
        }
        free(ta.data), free(tb.data);
    }
    /* no_grad and constant inputs record nothing */
    bv_graph_reset(&g32);
    int64_t s[1] = {4};
    bv_tensor t = bv_test_rand_f64(&r, 1, s, -1, 1);
    bv_var *c = bv_var_leaf(&g32, &t, BV_DTYPE_F32, false);
    bv_var *y = bv_op_gelu_erf(&g32, bv_op_mul(&g32, c, c));
    assert_false(y->requires_grad);
    assert_int_equal(g32.n_tape, 0);
    bv_var *v = bv_var_leaf(&g32, &t, BV_DTYPE_F32, true);
    bv_graph_no_grad_begin(&g32);
    y = bv_op_add(&g32, bv_op_relu(&g32, v), bv_op_scale(&g32, v, 2.0));
    bv_graph_no_grad_end(&g32);
    assert_false(y->requires_grad);
    assert_int_equal(g32.n_tape, 0);
    free(t.data);
    bv_graph_free(&g32), bv_graph_free(&g64);
}

/* ---- PyTorch parity (tests/gen/gen_elementwise.py) ---- */

/* Run y = op(inputs) on the F32 and the F64 path, seed the backward with gy, and compare with the
 * expected value and input gradients. */
typedef bv_var *(*op_fn)(bv_graph *, bv_var **, const void *);
static void check_parity(const char *what, op_fn fn, const void *u, int n_in, const bv_tensor *in,
                         const bv_tensor *gy, const float *y_want, float *const *d_want) {
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    for (int dt = 0; dt < 2; dt++) {
        bv_dtype dtype = dt ? BV_DTYPE_F64 : BV_DTYPE_F32;
        bv_graph_reset(&g);
        bv_var *v[2];
        for (int i = 0; i < n_in; i++) v[i] = bv_var_leaf(&g, &in[i], dtype, true);
        bv_var *y = fn(&g, v, u);
        int64_t ny = bv_var_numel(y);
        assert_int_equal(ny, bv_tensor_numel(gy));
        bv_var *seedv = bv_var_leaf(&g, gy, dtype, false);
        bv_graph_backward_seed(&g, y, bv_tensor_ptr(&seedv->val));
        char w[160];
        /* the expected values are PyTorch float64 results rounded to float32 */
        double atol = dt ? 1e-7 : 2e-7, rtol = 1e-6;
        float *got = malloc(ny * 4 + 4);
        bv_tensor gt = bv_tensor_make(got, BV_DTYPE_F32, y->val.ndim, y->val.shape);
        bv_tensor_copy_into(&gt, &y->val);
        snprintf(w, sizeof w, "%s %s: value vs PyTorch", what, dt ? "F64" : "F32");
        bv_check_close_f32(w, got, y_want, ny, atol, rtol);
        free(got);
        for (int i = 0; i < n_in; i++) {
            int64_t ni = bv_var_numel(v[i]);
            float *gi = malloc(ni * 4 + 4);
            bv_tensor gtt = bv_tensor_make(gi, BV_DTYPE_F32, v[i]->val.ndim, v[i]->val.shape);
            bv_tensor src = bv_tensor_make(v[i]->grad, dtype, v[i]->val.ndim, v[i]->val.shape);
            bv_tensor_copy_into(&gtt, &src);
            snprintf(w, sizeof w, "%s %s: gradient of input %d vs PyTorch", what, dt ? "F64" : "F32", i);
            bv_check_close_f32(w, gi, d_want[i], ni, atol, rtol);
            free(gi);
        }
    }
    bv_graph_free(&g);
}

static bv_var *par_unary(bv_graph *g, bv_var **in, const void *u) { return ((const unary_case *)u)->op(g, in[0]); }
static bv_var *par_scale(bv_graph *g, bv_var **in, const void *u) { return bv_op_scale(g, in[0], *(const double *)u); }
static bv_var *par_binary(bv_graph *g, bv_var **in, const void *u) {
    return ((const binary_case *)u)->op(g, in[0], in[1]);
}

/* Fixture tensor `name` read as F32 (its data lives until bv_fx_close). */
static float *fx_f32(bv_fx *fx, const char *name) { return bv_fx_get(fx, name, BV_DTYPE_F32).data; }

static void test_pytorch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "elementwise.safetensors");
    bv_tensor tx = bv_fx_get(&fx, "x", BV_DTYPE_F32), tg = bv_fx_get(&fx, "g", BV_DTYPE_F32);
    assert_int_equal(tx.ndim, 1);
    char name[64];
    for (size_t k = 0; k < BV_ARRAY_LEN(UNARY); k++) {
        snprintf(name, sizeof name, "%s.y", UNARY[k].name);
        float *y = fx_f32(&fx, name);
        snprintf(name, sizeof name, "%s.dx", UNARY[k].name);
        float *dx = fx_f32(&fx, name);
        check_parity(UNARY[k].name, par_unary, &UNARY[k], 1, &tx, &tg, y, &dx);
    }
    const char *scale_str = bv_st_meta(&fx.f, "scale");
    assert_non_null(scale_str);
    double s = strtod(scale_str, NULL);
    float *y = fx_f32(&fx, "scale.y"), *dx = fx_f32(&fx, "scale.dx");
    check_parity("scale", par_scale, &s, 1, &tx, &tg, y, &dx);
    for (size_t k = 0; k < BV_ARRAY_LEN(BINARY); k++) {
        const char *op = BINARY[k].name;
        bv_tensor in[2];
        snprintf(name, sizeof name, "%s.a", op);
        in[0] = bv_fx_get(&fx, name, BV_DTYPE_F32);
        snprintf(name, sizeof name, "%s.b", op);
        in[1] = bv_fx_get(&fx, name, BV_DTYPE_F32);
        snprintf(name, sizeof name, "%s.g", op);
        bv_tensor tgy = bv_fx_get(&fx, name, BV_DTYPE_F32);
        snprintf(name, sizeof name, "%s.y", op);
        float *yw = fx_f32(&fx, name);
        float *dw[2];
        snprintf(name, sizeof name, "%s.da", op);
        dw[0] = fx_f32(&fx, name);
        snprintf(name, sizeof name, "%s.db", op);
        dw[1] = fx_f32(&fx, name);
        check_parity(op, par_binary, &BINARY[k], 2, in, &tgy, yw, dw);
    }
    bv_fx_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bcast_plan),         cmocka_unit_test(test_unary_fast_vs_ref),
        cmocka_unit_test(test_unary_nan_propagates), cmocka_unit_test(test_scale_fast_vs_ref),  cmocka_unit_test(test_binary_fast_vs_ref),
        cmocka_unit_test(test_binary_empty),       cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_unary_gradcheck),    cmocka_unit_test(test_binary_gradcheck),
        cmocka_unit_test(test_f32_ops_match_f64),  cmocka_unit_test(test_pytorch_parity),
    };
    return cmocka_run_group_tests_name("elementwise", tests, NULL, NULL);
}
