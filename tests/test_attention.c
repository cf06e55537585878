/* Tests of the attention family: rotary embedding (rope) and scaled-dot-product attention (sdpa).
 *  - fast fp32 kernels vs the double reference, forward and backward, over GQA, causal masks with
 *    T != S, key padding, odd sizes, block and key-chunk boundaries, and fully masked rows;
 *  - 1 vs 2 threads (the decomposition does not depend on the count, so results are identical);
 *  - the autograd ops in F32 (fast path, saved log-sum-exp) against the same ops in F64;
 *  - finite-difference gradient checks (double) of sdpa (q, k, v) and rope;
 *  - parity with PyTorch / HF (tests/gen/gen_attention.py -> tests/fixtures/attention.safetensors).
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "src/kernels/attention.h"
#include "src/kernels/rope.h"
#include "tests/util/testutil.h"

/* ================================ rope ================================ */

static void test_rope_fast_vs_ref(void **state) {
    bv_rng r = {11};
    const int64_t B = 2, T = 7, H = 3, hd = 10;
    const int64_t n = B * T * H * hd;
    const double thetas[2] = {10000.0, 500000.0};
    for (int shared = 0; shared < 2; shared++)
        for (int ti = 0; ti < 2; ti++) {
            int64_t pos[14];
            for (int i = 0; i < 14; i++) pos[i] = (int64_t)(bv_rng_u64(&r) % 50);
            int64_t bstride = shared ? 0 : T;
            float *x = bv_test_rand_f32(&r, n, -1, 1), *y = malloc(n * 4), *dy = bv_test_rand_f32(&r, n, -1, 1);
            float *dx = bv_test_rand_f32(&r, n, -1, 1); /* nonzero: the backward accumulates */
            double *xd = bv_test_to_f64(x, n), *yd = malloc(n * 8), *dyd = bv_test_to_f64(dy, n),
                   *dxd = bv_test_to_f64(dx, n);
            bv_k_rope_fwd(y, x, pos, bstride, B, T, H, hd, thetas[ti]);
            bv_k_rope_fwd_ref(yd, xd, pos, bstride, B, T, H, hd, thetas[ti]);
            /* positions < 50: the fp32 angle is within 2e-6 of the exact one */
            char what[64];
            snprintf(what, sizeof what, "rope fwd shared=%d theta=%g", shared, thetas[ti]);
            bv_check_close_f32_f64(what, y, yd, n, 1e-5, 1e-5);
            bv_k_rope_bwd(dx, dy, pos, bstride, B, T, H, hd, thetas[ti]);
            bv_k_rope_bwd_ref(dxd, dyd, pos, bstride, B, T, H, hd, thetas[ti]);
            snprintf(what, sizeof what, "rope bwd shared=%d theta=%g", shared, thetas[ti]);
            bv_check_close_f32_f64(what, dx, dxd, n, 1e-5, 1e-5);
            /* in place forward gives the same values */
            float *xi = bv_test_copy_f32(x, n);
            bv_k_rope_fwd(xi, xi, pos, bstride, B, T, H, hd, thetas[ti]);
            bv_check_close_f32("rope fwd in place", xi, y, n, 0, 0);
            free(x), free(y), free(dy), free(dx), free(xi), free(xd), free(yd), free(dyd), free(dxd);
        }
}

static void test_rope_threads_agree(void **state) {
    bv_rng r = {12};
    const int64_t B = 2, T = 45, H = 4, hd = 64, n = B * T * H * hd;
    int64_t pos[90];
    for (int i = 0; i < 90; i++) pos[i] = (int64_t)(bv_rng_u64(&r) % 700);
    float *x = bv_test_rand_f32(&r, n, -1, 1), *dy = bv_test_rand_f32(&r, n, -1, 1);
    float *y[2], *dx[2];
    for (int t = 0; t < 2; t++) {
        bv_set_num_threads(t + 1);
        y[t] = malloc(n * 4), dx[t] = calloc(n, 4);
        bv_k_rope_fwd(y[t], x, pos, T, B, T, H, hd, 500000.0);
        bv_k_rope_bwd(dx[t], dy, pos, T, B, T, H, hd, 500000.0);
    }
    bv_set_num_threads(2);
    bv_check_close_f32("rope y 1 vs 2 threads", y[1], y[0], n, 0, 1e-6);
    bv_check_close_f32("rope dx 1 vs 2 threads", dx[1], dx[0], n, 0, 1e-6);
    for (int t = 0; t < 2; t++) free(y[t]), free(dx[t]);
    free(x), free(dy);
}

typedef struct {
    bv_tensor pos;
    double theta;
} rope_args;

static bv_var *fn_rope(bv_graph *g, bv_var **in, void *u) {
    rope_args *a = u;
    return bv_op_rope(g, in[0], &a->pos, a->theta);
}

static void test_rope_gradcheck(void **state) {
    bv_rng r = {13};
    int64_t xs[4] = {2, 3, 2, 6};
    int64_t pos2[6] = {0, 5, 17, 3, 2, 40}, pos1[3] = {7, 1, 250};
    bv_tensor x = bv_test_rand_f64(&r, 4, xs, -1, 1);
    bool check[1] = {true};
    rope_args a = {bv_tensor_make2(pos2, BV_DTYPE_I64, 2, 3), 10000.0};
    bv_check_gradients("rope pos (B, T)", fn_rope, &a, 1, &x, check, NULL);
    rope_args a1 = {bv_tensor_make1(pos1, BV_DTYPE_I64, 3), 500000.0};
    bv_check_gradients("rope pos (T)", fn_rope, &a1, 1, &x, check, NULL);
    free(x.data);
}

/* ================================ sdpa ================================ */

typedef enum { PAD_NONE, PAD_SOME, PAD_ALL_OF_LAST_BATCH } pad_kind;

typedef struct {
    const char *name;
    int64_t B, T, S, H, Hkv, hd;
    bool causal;
    pad_kind pad;
    double scale; /* 0 = default 1/sqrt(hd) */
    double range; /* inputs uniform in [-range, range] */
} sdpa_case;

static uint8_t *make_padding(bv_rng *r, const sdpa_case *c) {
    if (c->pad == PAD_NONE) return NULL;
    uint8_t *m = malloc((size_t)(c->B * c->S));
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t s = 0; s < c->S; s++) {
            bool tail = s >= c->S - 3 * (b + 1); /* right padding, longer for later sequences */
            bool hole = (bv_rng_u64(r) % 7) == 0 && s > 0;
            m[b * c->S + s] = !(tail || hole);
        }
    if (c->pad == PAD_ALL_OF_LAST_BATCH) memset(m + (c->B - 1) * c->S, 0, (size_t)c->S);
    return m;
}

static bv_sdpa_shape shape_of(const sdpa_case *c, const uint8_t *pad) {
    bv_sdpa_shape s = {c->B, c->T, c->S, c->H, c->Hkv, c->hd, c->causal, pad,
                       c->scale != 0 ? c->scale : 1.0 / sqrt((double)c->hd)};
    return s;
}

/* Whether query row (b, t) sees any key (same rule as the kernels, written independently). */
static bool row_sees_a_key(const sdpa_case *c, const uint8_t *pad, int64_t b, int64_t t) {
    for (int64_t s = 0; s < c->S; s++) {
        if (c->causal && s > t + (c->S - c->T)) break;
        if (!pad || pad[b * c->S + s]) return true;
    }
    return false;
}

/* Sizes written against BV_SDPA_BLOCK so the cases keep crossing query blocks and backward key
 * chunks (whole blocks of keys) whatever the block size. */
#define BLK BV_SDPA_BLOCK
static const sdpa_case CASES[] = {
    /* name                            B  T          S            H  Hkv hd  causal pad        scale range */
    {"mha small", 2, 37, 37, 4, 4, 12, false, PAD_NONE, 0, 1},
    {"gqa causal across blocks", 1, BLK + 22, BLK + 22, 6, 2, 8, true, PAD_NONE, 0, 1},
    {"gqa causal T<S padded", 2, 23, 2 * BLK + 11, 4, 2, 7, true, PAD_SOME, 0, 1},
    {"causal T>S (fully masked rows)", 2, BLK + 26, 40, 2, 1, 6, true, PAD_SOME, 0.5, 1},
    {"padded batch all masked", 3, BLK + 1, BLK + 3, 4, 1, 9, false, PAD_ALL_OF_LAST_BATCH, 0, 1},
    {"one query", 2, 1, 67, 3, 3, 16, true, PAD_SOME, 0, 1},
    {"peaky scores", 1, 33, BLK + 1, 2, 2, 32, false, PAD_SOME, 0, 3},
};

/* Fast kernels vs double reference; gradients start from nonzero values (backward accumulates). */
static void run_fast_vs_ref(const sdpa_case *c, uint64_t seed) {
    bv_rng r = {seed};
    const int64_t nq = c->B * c->T * c->H * c->hd, nk = c->B * c->S * c->Hkv * c->hd;
    uint8_t *pad = make_padding(&r, c);
    bv_sdpa_shape s = shape_of(c, pad);
    float *q = bv_test_rand_f32(&r, nq, -c->range, c->range), *k = bv_test_rand_f32(&r, nk, -c->range, c->range);
    float *v = bv_test_rand_f32(&r, nk, -1, 1), *dy = bv_test_rand_f32(&r, nq, -1, 1);
    float *dq = bv_test_rand_f32(&r, nq, -1, 1), *dk = bv_test_rand_f32(&r, nk, -1, 1),
          *dv = bv_test_rand_f32(&r, nk, -1, 1);
    double *qd = bv_test_to_f64(q, nq), *kd = bv_test_to_f64(k, nk), *vd = bv_test_to_f64(v, nk),
           *dyd = bv_test_to_f64(dy, nq);
    double *dqd = bv_test_to_f64(dq, nq), *dkd = bv_test_to_f64(dk, nk), *dvd = bv_test_to_f64(dv, nk);
    float *dq0 = bv_test_copy_f32(dq, nq);
    float *y = malloc(nq * 4), *lse = malloc((size_t)(c->B * c->H * c->T) * 4);
    double *yd = malloc(nq * 8);
    int nt = 2;
    float *scr = malloc(BV_MAX(bv_k_sdpa_fwd_scratch(&s, nt), bv_k_sdpa_bwd_scratch(&s, nt)) * 4);
    bv_k_sdpa_fwd(y, lse, q, k, v, &s, scr, nt);
    bv_k_sdpa_fwd_ref(yd, qd, kd, vd, &s);
    char what[128];
    snprintf(what, sizeof what, "sdpa fwd [%s]", c->name);
    bv_check_close_f32_f64(what, y, yd, nq, 1e-5, 1e-5);
    bv_k_sdpa_bwd(dq, dk, dv, dy, q, k, v, y, lse, &s, scr, nt);
    bv_k_sdpa_bwd_ref(dqd, dkd, dvd, dyd, qd, kd, vd, &s);
    snprintf(what, sizeof what, "sdpa dq [%s]", c->name);
    bv_check_close_f32_f64(what, dq, dqd, nq, 1e-5, 1e-5);
    snprintf(what, sizeof what, "sdpa dk [%s]", c->name);
    bv_check_close_f32_f64(what, dk, dkd, nk, 1e-5, 1e-5);
    snprintf(what, sizeof what, "sdpa dv [%s]", c->name);
    bv_check_close_f32_f64(what, dv, dvd, nk, 1e-5, 1e-5);
    /* fully masked rows: exactly 0 output, no gradient into q */
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t t = 0; t < c->T; t++) {
            if (row_sees_a_key(c, pad, b, t)) continue;
            for (int64_t i = (b * c->T + t) * c->H * c->hd; i < (b * c->T + t + 1) * c->H * c->hd; i++) {
                if (y[i] != 0.0f || dq[i] != dq0[i])
                    fail_msg("[%s] fully masked row b %lld t %lld: y %g (want 0), dq changed %g -> %g", c->name,
                             (long long)b, (long long)t, y[i], dq0[i], dq[i]);
            }
        }
    free(pad), free(q), free(k), free(v), free(dy), free(dq), free(dk), free(dv), free(dq0), free(y), free(lse);
    free(qd), free(kd), free(vd), free(dyd), free(dqd), free(dkd), free(dvd), free(yd), free(scr);
}

static void test_sdpa_fast_vs_ref(void **state) {
    for (size_t i = 0; i < BV_ARRAY_LEN(CASES); i++) run_fast_vs_ref(&CASES[i], 100 + i);
}

/* Padded keys and fully masked rows must not leak: a padded key's k and v get no gradient. */
static void test_sdpa_padded_keys_get_no_gradient(void **state) {
    const sdpa_case *c = &CASES[2];
    bv_rng r = {21};
    const int64_t nq = c->B * c->T * c->H * c->hd, nk = c->B * c->S * c->Hkv * c->hd;
    uint8_t *pad = make_padding(&r, c);
    bv_sdpa_shape s = shape_of(c, pad);
    float *q = bv_test_rand_f32(&r, nq, -1, 1), *k = bv_test_rand_f32(&r, nk, -1, 1),
          *v = bv_test_rand_f32(&r, nk, -1, 1);
    float *dy = bv_test_rand_f32(&r, nq, -1, 1), *y = malloc(nq * 4), *lse = malloc((size_t)(c->B * c->H * c->T) * 4);
    float *dk = calloc(nk, 4), *dv = calloc(nk, 4);
    float *scr = malloc(BV_MAX(bv_k_sdpa_fwd_scratch(&s, 2), bv_k_sdpa_bwd_scratch(&s, 2)) * 4);
    bv_k_sdpa_fwd(y, lse, q, k, v, &s, scr, 2);
    bv_k_sdpa_bwd(NULL, dk, dv, dy, q, k, v, y, lse, &s, scr, 2);
    int64_t n_padded = 0;
    for (int64_t b = 0; b < c->B; b++)
        for (int64_t j = 0; j < c->S; j++) {
            if (pad[b * c->S + j]) continue;
            n_padded++;
            for (int64_t i = (b * c->S + j) * c->Hkv * c->hd; i < (b * c->S + j + 1) * c->Hkv * c->hd; i++)
                if (dk[i] != 0.0f || dv[i] != 0.0f)
                    fail_msg("padded key b %lld s %lld got gradient dk %g dv %g", (long long)b, (long long)j, dk[i],
                             dv[i]);
        }
    assert_true(n_padded > 0);
    free(pad), free(q), free(k), free(v), free(dy), free(y), free(lse), free(dk), free(dv), free(scr);
}

/* A NaN in one query row makes that row NaN (as in PyTorch) and leaves the other rows alone. */
static void test_sdpa_nan_propagates(void **state) {
    const int64_t B = 1, T = 5, S = 9, H = 2, hd = 4, nq = B * T * H * hd, nk = B * S * H * hd;
    bv_rng r = {71};
    bv_sdpa_shape s = {B, T, S, H, H, hd, false, NULL, 0.5};
    float *q = bv_test_rand_f32(&r, nq, -1, 1), *k = bv_test_rand_f32(&r, nk, -1, 1),
          *v = bv_test_rand_f32(&r, nk, -1, 1);
    float *y = malloc(nq * 4), *lse = malloc(B * H * T * 4), *scr = malloc(bv_k_sdpa_fwd_scratch(&s, 2) * 4);
    const int64_t t_nan = 2, h_nan = 1;
    q[(t_nan * H + h_nan) * hd + 1] = NAN;
    bv_k_sdpa_fwd(y, lse, q, k, v, &s, scr, 2);
    for (int64_t t = 0; t < T; t++)
        for (int64_t h = 0; h < H; h++)
            for (int64_t d = 0; d < hd; d++) {
                float val = y[(t * H + h) * hd + d];
                bool want_nan = t == t_nan && h == h_nan;
                if (want_nan != (bool)isnan(val))
                    fail_msg("t %lld h %lld d %lld: got %g, want %s", (long long)t, (long long)h, (long long)d, val,
                             want_nan ? "NaN" : "a finite value");
            }
    free(q), free(k), free(v), free(y), free(lse), free(scr);
}

static void test_sdpa_threads_agree(void **state) {
    const sdpa_case cs[2] = {
        {"threads gqa causal padded", 2, 2 * BLK + 2, 2 * BLK + 2, 4, 2, 16, true, PAD_SOME, 0, 1},
        {"threads key chunks", 1, 100, 3 * BLK - 20, 4, 1, 24, false, PAD_SOME, 0, 1},
    };
    for (int ci = 0; ci < 2; ci++) {
        const sdpa_case *c = &cs[ci];
        bv_rng r = {31 + ci};
        const int64_t nq = c->B * c->T * c->H * c->hd, nk = c->B * c->S * c->Hkv * c->hd;
        uint8_t *pad = make_padding(&r, c);
        bv_sdpa_shape s = shape_of(c, pad);
        float *q = bv_test_rand_f32(&r, nq, -1, 1), *k = bv_test_rand_f32(&r, nk, -1, 1),
              *v = bv_test_rand_f32(&r, nk, -1, 1);
        float *dy = bv_test_rand_f32(&r, nq, -1, 1);
        float *y[2], *dq[2], *dk[2], *dv[2], *lse[2];
        for (int t = 0; t < 2; t++) {
            int nt = t + 1;
            bv_set_num_threads(nt);
            y[t] = malloc(nq * 4), lse[t] = malloc((size_t)(c->B * c->H * c->T) * 4);
            dq[t] = calloc(nq, 4), dk[t] = calloc(nk, 4), dv[t] = calloc(nk, 4);
            float *scr = malloc(BV_MAX(bv_k_sdpa_fwd_scratch(&s, nt), bv_k_sdpa_bwd_scratch(&s, nt)) * 4);
            bv_k_sdpa_fwd(y[t], lse[t], q, k, v, &s, scr, nt);
            bv_k_sdpa_bwd(dq[t], dk[t], dv[t], dy, q, k, v, y[t], lse[t], &s, scr, nt);
            free(scr);
        }
        bv_set_num_threads(2);
        bv_check_close_f32("sdpa y 1 vs 2 threads", y[1], y[0], nq, 0, 1e-6);
        bv_check_close_f32("sdpa dq 1 vs 2 threads", dq[1], dq[0], nq, 0, 1e-6);
        bv_check_close_f32("sdpa dk 1 vs 2 threads", dk[1], dk[0], nk, 0, 1e-6);
        bv_check_close_f32("sdpa dv 1 vs 2 threads", dv[1], dv[0], nk, 0, 1e-6);
        for (int t = 0; t < 2; t++) free(y[t]), free(lse[t]), free(dq[t]), free(dk[t]), free(dv[t]);
        free(pad), free(q), free(k), free(v), free(dy);
    }
}

/* The autograd op on F32 vars (fast kernels, saved lse, arena copy of the mask) against the same op
 * on F64 vars (reference kernels); k frozen in a second run. */
static void test_sdpa_op_f32_vs_f64(void **state) {
    const sdpa_case *c = &CASES[2];
    bv_rng r = {41};
    const int64_t nq = c->B * c->T * c->H * c->hd, nk = c->B * c->S * c->Hkv * c->hd;
    uint8_t *pad = make_padding(&r, c);
    float *q = bv_test_rand_f32(&r, nq, -1, 1), *k = bv_test_rand_f32(&r, nk, -1, 1),
          *v = bv_test_rand_f32(&r, nk, -1, 1);
    float *dy = bv_test_rand_f32(&r, nq, -1, 1);
    double *dyd = bv_test_to_f64(dy, nq);
    int64_t qs[4] = {c->B, c->T, c->H, c->hd}, ks[4] = {c->B, c->S, c->Hkv, c->hd};
    bv_tensor qt = bv_tensor_make(q, BV_DTYPE_F32, 4, qs), kt = bv_tensor_make(k, BV_DTYPE_F32, 4, ks),
              vt = bv_tensor_make(v, BV_DTYPE_F32, 4, ks);
    for (int frozen_k = 0; frozen_k < 2; frozen_k++) {
        uint8_t *mask = malloc((size_t)(c->B * c->S));
        memcpy(mask, pad, (size_t)(c->B * c->S));
        bv_attn_mask m = {.causal = c->causal, .key_padding = mask, .scale = 0};
        bv_graph g32, g64;
        bv_graph_init(&g32, 1 << 20);
        bv_graph_init(&g64, 1 << 20);
        bv_var *q32 = bv_var_leaf(&g32, &qt, BV_DTYPE_F32, true), *k32 = bv_var_leaf(&g32, &kt, BV_DTYPE_F32, !frozen_k),
               *v32 = bv_var_leaf(&g32, &vt, BV_DTYPE_F32, true);
        bv_var *q64 = bv_var_leaf(&g64, &qt, BV_DTYPE_F64, true), *k64 = bv_var_leaf(&g64, &kt, BV_DTYPE_F64, !frozen_k),
               *v64 = bv_var_leaf(&g64, &vt, BV_DTYPE_F64, true);
        bv_var *y32 = bv_op_sdpa(&g32, q32, k32, v32, &m);
        bv_var *y64 = bv_op_sdpa(&g64, q64, k64, v64, &m);
        memset(mask, 0x5a, (size_t)(c->B * c->S)); /* the op must not depend on the caller's mask any more */
        free(mask);
        bv_graph_backward_seed(&g32, y32, dy);
        bv_graph_backward_seed(&g64, y64, dyd);
        bv_check_close_f32_f64("sdpa op y", bv_var_f32(y32), bv_var_f64(y64), nq, 1e-5, 1e-5);
        bv_check_close_f32_f64("sdpa op dq", q32->grad, q64->grad, nq, 1e-5, 1e-5);
        bv_check_close_f32_f64("sdpa op dv", v32->grad, v64->grad, nk, 1e-5, 1e-5);
        if (frozen_k) {
            assert_null(k32->grad);
        } else {
            bv_check_close_f32_f64("sdpa op dk", k32->grad, k64->grad, nk, 1e-5, 1e-5);
        }
        bv_graph_free(&g32);
        bv_graph_free(&g64);
    }
    free(pad), free(q), free(k), free(v), free(dy), free(dyd);
}

/* u: the bv_attn_mask */
static bv_var *fn_sdpa(bv_graph *g, bv_var **in, void *u) { return bv_op_sdpa(g, in[0], in[1], in[2], u); }

static void test_sdpa_gradcheck(void **state) {
    bv_rng r = {51};
    const uint8_t pad[10] = {1, 1, 0, 1, 1, 1, 1, 1, 1, 0};
    const struct {
        const char *name;
        int64_t qs[4], ks[4];
        bv_attn_mask m;
    } cases[3] = {
        /* GQA 4:2, causal with T < S, padding */
        {"sdpa gqa causal padded", {2, 3, 4, 3}, {2, 5, 2, 3}, {.causal = true, .key_padding = pad, .scale = 0}},
        /* bidirectional MHA, explicit scale */
        {"sdpa bidirectional", {1, 4, 2, 5}, {1, 3, 2, 5}, {.causal = false, .key_padding = NULL, .scale = 0.7}},
        /* causal T > S: the first rows see no key (output 0, no gradient) */
        {"sdpa causal T>S", {1, 5, 2, 2}, {1, 3, 1, 2}, {.causal = true, .key_padding = NULL, .scale = 0}},
    };
    for (int c = 0; c < 3; c++) {
        bv_tensor in[3] = {bv_test_rand_f64(&r, 4, cases[c].qs, -1, 1), bv_test_rand_f64(&r, 4, cases[c].ks, -1, 1),
                           bv_test_rand_f64(&r, 4, cases[c].ks, -1, 1)};
        bv_attn_mask m = cases[c].m;
        bool check[3] = {true, true, true};
        bv_check_gradients(cases[c].name, fn_sdpa, &m, 3, in, check, NULL);
        if (c == 0) {
            bool check_q[3] = {true, false, false}; /* frozen k, v */
            bv_check_gradients("sdpa (q only)", fn_sdpa, &m, 3, in, check_q, NULL);
        }
        for (int i = 0; i < 3; i++) free(in[i].data);
    }
}

/* rope then sdpa, the way an attention layer uses them, through the tape */
typedef struct {
    bv_tensor pos;
} chain_args;

static bv_var *fn_rope_sdpa(bv_graph *g, bv_var **in, void *u) {
    chain_args *a = u;
    bv_attn_mask m = {.causal = true, .key_padding = NULL, .scale = 0};
    return bv_op_sdpa(g, bv_op_rope(g, in[0], &a->pos, 10000.0), bv_op_rope(g, in[1], &a->pos, 10000.0), in[2], &m);
}

static void test_rope_sdpa_gradcheck(void **state) {
    bv_rng r = {61};
    int64_t qs[4] = {1, 4, 2, 4}, ks[4] = {1, 4, 1, 4};
    int64_t pos[4] = {3, 4, 5, 6};
    bv_tensor in[3] = {bv_test_rand_f64(&r, 4, qs, -1, 1), bv_test_rand_f64(&r, 4, ks, -1, 1),
                       bv_test_rand_f64(&r, 4, ks, -1, 1)};
    chain_args a = {bv_tensor_make1(pos, BV_DTYPE_I64, 4)};
    bool check[3] = {true, true, true};
    bv_check_gradients("rope -> sdpa", fn_rope_sdpa, &a, 3, in, check, NULL);
    for (int i = 0; i < 3; i++) free(in[i].data);
}

/* ============================ PyTorch parity ============================ */

/* HF's fp32 rope arithmetic, which the fast kernel follows: agreement to fp32 rounding even where the
 * fp32 angle of a large position is far from the exact one. */
static void test_rope_hf_fp32_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "attention.safetensors");
    bv_tensor xt = bv_fx_get(&fx, "rope_hf.x", BV_DTYPE_F32), pos = bv_fx_get(&fx, "rope_hf.pos", BV_DTYPE_I64);
    bv_tensor theta = bv_fx_get(&fx, "rope_hf.theta", BV_DTYPE_F64);
    bv_tensor want_y = bv_fx_get(&fx, "rope_hf.y", BV_DTYPE_F32), dy = bv_fx_get(&fx, "rope_hf.dy", BV_DTYPE_F32);
    bv_tensor want_dx = bv_fx_get(&fx, "rope_hf.dx", BV_DTYPE_F32);
    int64_t n = bv_tensor_numel(&xt);
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_var *xv = bv_var_leaf(&g, &xt, BV_DTYPE_F32, true);
    bv_var *y = bv_op_rope(&g, xv, &pos, ((double *)theta.data)[0]);
    bv_graph_backward_seed(&g, y, dy.data);
    bv_check_close_f32("rope_hf y vs HF fp32", bv_var_f32(y), want_y.data, n, 1e-5, 1e-5);
    bv_check_close_f32("rope_hf dx vs HF fp32", xv->grad, want_dx.data, n, 1e-5, 1e-5);
    bv_graph_free(&g);
    bv_fx_close(&fx);
}

/* Double-precision references (bv_fx_check_op: the F64 ops at 1e-12, the fast F32 ones at tol32). */
static void test_pytorch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "attention.safetensors");
    char key[64];
    /* rope_t has positions up to 600 at theta 500000: the fast kernel's fp32 angle (as in HF) can be
     * off from the exact one by half an ulp of 600, 3e-5 */
    const char *ropes[2] = {"rope_bt", "rope_t"};
    const double rope_tol[2] = {1e-5, 5e-5};
    for (int i = 0; i < 2; i++) {
        snprintf(key, sizeof key, "%s.pos", ropes[i]);
        rope_args a = {bv_fx_get(&fx, key, BV_DTYPE_I64), 0};
        snprintf(key, sizeof key, "%s.theta", ropes[i]);
        a.theta = ((double *)bv_fx_get(&fx, key, BV_DTYPE_F64).data)[0];
        bv_fx_check_op(&fx, ropes[i], 1, fn_rope, &a, rope_tol[i]);
    }
    const char *sdpas[3] = {"sdpa_mha", "sdpa_gqa_causal", "sdpa_padded"};
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "%s.mask", sdpas[i]);
        bv_tensor mask = bv_fx_get(&fx, key, BV_DTYPE_U8);
        snprintf(key, sizeof key, "%s.cfg", sdpas[i]);
        const double *cfg = bv_fx_get(&fx, key, BV_DTYPE_F64).data;
        bv_attn_mask m = {.causal = cfg[0] != 0, .key_padding = mask.data, .scale = cfg[1]};
        bv_fx_check_op(&fx, sdpas[i], 3, fn_sdpa, &m, 1e-5);
    }
    bv_fx_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rope_fast_vs_ref),
        cmocka_unit_test(test_rope_threads_agree),
        cmocka_unit_test(test_rope_gradcheck),
        cmocka_unit_test(test_sdpa_fast_vs_ref),
        cmocka_unit_test(test_sdpa_padded_keys_get_no_gradient),
        cmocka_unit_test(test_sdpa_nan_propagates),
        cmocka_unit_test(test_sdpa_threads_agree),
        cmocka_unit_test(test_sdpa_op_f32_vs_f64),
        cmocka_unit_test(test_sdpa_gradcheck),
        cmocka_unit_test(test_rope_sdpa_gradcheck),
        cmocka_unit_test(test_rope_hf_fp32_parity),
        cmocka_unit_test(test_pytorch_parity),
    };
    return cmocka_run_group_tests_name("attention", tests, NULL, NULL);
}
