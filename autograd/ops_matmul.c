/* ops_matmul.c - autograd ops over the GEMM kernels: linear and batched matmul. */
#include <string.h>

#include "src/kernels/matmul.h"
#include "src/profile.h"
#include "autograd/autograd.h"
#include "autograd/ops_impl.h"

/* ---- linear ---- */

static void linear_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0], *w = e->in[1], *b = e->in[2];
    int64_t C = w->val.shape[1], OC = w->val.shape[0], N = bv_var_numel(x) / C;
    void *dx = x->requires_grad ? bv_var_grad(g, x) : NULL;
    void *dw = w->requires_grad ? bv_var_grad(g, w) : NULL;
    void *db = (b && b->requires_grad) ? bv_var_grad(g, b) : NULL;
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(x))
        bv_k_linear_bwd_ref(dx, dw, db, e->out->grad, bv_var_f64(x), bv_var_f64(w), N, C, OC);
    else
        bv_k_linear_bwd(dx, dw, db, e->out->grad, bv_var_f32(x), bv_var_f32(w), N, C, OC);
    bv_prof_end(BV_PROF_GEMM, t0);
}

bv_var *bv_op_linear(bv_graph *g, bv_var *x, bv_var *w, bv_var *b) {
    bv_ops_check_float_same("linear", x, w);
    BV_ASSERT(w->val.ndim == 2, "linear: weight must be (OC, C), got rank %d", w->val.ndim);
    int64_t OC = w->val.shape[0], C = w->val.shape[1];
    BV_ASSERT(x->val.ndim >= 1 && x->val.shape[x->val.ndim - 1] == C,
              "linear: input last dim %lld != weight in_features %lld",
              (long long)(x->val.ndim ? x->val.shape[x->val.ndim - 1] : -1), (long long)C);
    if (b) {
        bv_ops_check_float_same("linear", x, b);
        BV_ASSERT(bv_var_numel(b) == OC, "linear: bias has %lld elements, expected %lld",
                  (long long)bv_var_numel(b), (long long)OC);
    }
    int64_t shape[BV_MAX_DIMS];
    memcpy(shape, x->val.shape, sizeof shape);
    shape[x->val.ndim - 1] = OC;
    bv_var *y = bv_var_new(g, x->val.dtype, x->val.ndim, shape);
    int64_t N = bv_var_numel(x) / (C ? C : 1);
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(x))
        bv_k_linear_fwd_ref(bv_var_f64(y), bv_var_f64(x), bv_var_f64(w), b ? bv_var_f64(b) : NULL, N, C, OC);
    else
        bv_k_linear_fwd(bv_var_f32(y), bv_var_f32(x), bv_var_f32(w), b ? bv_var_f32(b) : NULL, N, C, OC);
    bv_prof_end(BV_PROF_GEMM, t0);
    bv_var *in[3] = {x, w, b};
    bv_graph_record(g, "linear", linear_bwd, y, 3, in, NULL);
    return y;
}

/* ---- batched matmul ---- */

static void matmul_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *a = e->in[0], *b = e->in[1];
    const bv_gemm_shape *s = e->saved;
    void *da = a->requires_grad ? bv_var_grad(g, a) : NULL;
    void *db = b->requires_grad ? bv_var_grad(g, b) : NULL;
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(a))
        bv_k_gemm_batched_bwd_ref(da, db, e->out->grad, bv_var_f64(a), bv_var_f64(b), s);
    else
        bv_k_gemm_batched_bwd(da, db, e->out->grad, bv_var_f32(a), bv_var_f32(b), s);
    bv_prof_end(BV_PROF_GEMM, t0);
}

bv_var *bv_op_matmul(bv_graph *g, bv_var *a, bv_var *b, bool ta, bool tb) {
    bv_ops_check_float_same("matmul", a, b);
    int ra = a->val.ndim, rb = b->val.ndim;
    BV_ASSERT(ra >= 2 && rb >= 2, "matmul: operands need rank >= 2 (got %d and %d)", ra, rb);
    bv_gemm_shape s;
    memset(&s, 0, sizeof s);
    s.ta = ta;
    s.tb = tb;
    s.M = ta ? a->val.shape[ra - 1] : a->val.shape[ra - 2];
    s.K = ta ? a->val.shape[ra - 2] : a->val.shape[ra - 1];
    int64_t kb = tb ? b->val.shape[rb - 1] : b->val.shape[rb - 2];
    s.N = tb ? b->val.shape[rb - 2] : b->val.shape[rb - 1];
    BV_ASSERT(kb == s.K, "matmul: inner dimensions %lld and %lld differ", (long long)s.K, (long long)kb);
    s.nb = 1;
    for (int i = 0; i < ra - 2; i++) s.nb *= a->val.shape[i];
    if (rb == 2) {
        s.sb = 0;
    } else {
        BV_ASSERT(rb == ra, "matmul: b must be rank 2 or have a's batch dims (ranks %d, %d)", ra, rb);
        for (int i = 0; i < ra - 2; i++)
            BV_ASSERT(a->val.shape[i] == b->val.shape[i], "matmul: batch dim %d differs (%lld vs %lld)", i,
                      (long long)a->val.shape[i], (long long)b->val.shape[i]);
        s.sb = s.K * s.N;
    }
    s.sa = s.M * s.K;
    s.sc = s.M * s.N;
    int64_t shape[BV_MAX_DIMS];
    memcpy(shape, a->val.shape, sizeof shape);
    shape[ra - 2] = s.M;
    shape[ra - 1] = s.N;
    bv_var *c = bv_var_new(g, a->val.dtype, ra, shape);
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(a))
        bv_k_gemm_batched_ref(bv_var_f64(c), bv_var_f64(a), bv_var_f64(b), &s, 1.0, 0.0);
    else
        bv_k_gemm_batched(bv_var_f32(c), bv_var_f32(a), bv_var_f32(b), &s, 1.0f, 0.0f);
    bv_prof_end(BV_PROF_GEMM, t0);
    bv_var *in[2] = {a, b};
    if (bv_graph_should_record(g, 2, in)) {
        bv_gemm_shape *saved = bv_graph_alloc(g, sizeof *saved);
        *saved = s;
        bv_graph_record(g, "matmul", matmul_bwd, c, 2, in, saved);
    }
    return c;
}
