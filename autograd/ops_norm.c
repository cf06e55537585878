/* ops_norm.c - autograd ops over the normalisation kernels: softmax, layernorm, rmsnorm (all over
 * the last dimension). F64 vars run the double reference kernels, F32 vars the fast ones. */
#include "src/kernels/norm.h"
#include "autograd/autograd.h"
#include "autograd/ops_impl.h"

static void check_norm_input(const char *op, const bv_var *x) {
    bv_ops_check_float(op, x);
    BV_ASSERT(x->val.ndim >= 1 && x->val.shape[x->val.ndim - 1] > 0, "%s: need rank >= 1 and a non-empty last dim",
              op);
}

/* a per-feature parameter (D) of the same dtype as x */
static void check_param(const char *op, const char *what, const bv_var *x, const bv_var *p, int64_t D) {
    BV_ASSERT(p->val.dtype == x->val.dtype, "%s: %s dtype %s differs from input dtype %s", op, what,
              bv_dtype_name(p->val.dtype), bv_dtype_name(x->val.dtype));
    BV_ASSERT(bv_var_numel(p) == D, "%s: %s has %lld elements, expected %lld (the last dim of the input)", op, what,
              (long long)bv_var_numel(p), (long long)D);
}

static inline int64_t last_dim(const bv_var *x) { return x->val.shape[x->val.ndim - 1]; }

/* ---- softmax ---- */

static void softmax_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    int64_t D = last_dim(x), N = bv_var_numel(x) / D;
    if (bv_var_is_f64(x))
        bv_k_softmax_bwd_ref(bv_var_grad(g, x), e->out->grad, bv_var_f64(e->out), N, D);
    else
        bv_k_softmax_bwd(bv_var_grad(g, x), e->out->grad, bv_var_f32(e->out), N, D);
}

bv_var *bv_op_softmax(bv_graph *g, bv_var *x) {
    check_norm_input("softmax", x);
    int64_t D = last_dim(x), N = bv_var_numel(x) / D;
    bv_var *y = bv_var_like(g, x);
    if (bv_var_is_f64(x))
        bv_k_softmax_fwd_ref(bv_var_f64(y), bv_var_f64(x), N, D);
    else
        bv_k_softmax_fwd(bv_var_f32(y), bv_var_f32(x), N, D);
    /* the backward reads the output value (y is never modified after this) */
    bv_graph_record(g, "softmax", softmax_bwd, y, 1, &x, NULL);
    return y;
}

/* ---- layernorm / rmsnorm ---- */

typedef struct {
    void *mean; /* (N) float or double, layernorm only */
    void *rstd; /* (N) */
} norm_saved;

static void layernorm_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0], *w = e->in[1], *b = e->in[2];
    const norm_saved *s = e->saved;
    int64_t D = last_dim(x), N = bv_var_numel(x) / D;
    void *dx = x->requires_grad ? bv_var_grad(g, x) : NULL;
    void *dw = w->requires_grad ? bv_var_grad(g, w) : NULL;
    void *db = (b && b->requires_grad) ? bv_var_grad(g, b) : NULL;
    if (bv_var_is_f64(x)) {
        bv_k_layernorm_bwd_ref(dx, dw, db, e->out->grad, bv_var_f64(x), bv_var_f64(w), s->mean, s->rstd, N, D);
    } else {
        float *scratch = (dw || db) ? bv_graph_scratch(g, (size_t)bv_k_norm_bwd_scratch(N, D) * sizeof(float)) : NULL;
        bv_k_layernorm_bwd(dx, dw, db, scratch, e->out->grad, bv_var_f32(x), bv_var_f32(w), s->mean, s->rstd, N, D);
    }
}

bv_var *bv_op_layernorm(bv_graph *g, bv_var *x, bv_var *w, bv_var *b, double eps) {
    check_norm_input("layernorm", x);
    BV_ASSERT(w, "layernorm: weight is required (bias may be NULL)");
    int64_t D = last_dim(x), N = bv_var_numel(x) / D;
    check_param("layernorm", "weight", x, w, D);
    if (b) check_param("layernorm", "bias", x, b, D);
    BV_ASSERT(eps >= 0, "layernorm: eps %g < 0", eps);
    bv_var *y = bv_var_like(g, x);
    bv_var *in[3] = {x, w, b};
    bool rec = bv_graph_should_record(g, 3, in);
    size_t es = bv_var_is_f64(x) ? sizeof(double) : sizeof(float);
    norm_saved *s = rec ? bv_graph_alloc(g, sizeof *s) : NULL;
    /* mean/rstd go to the arena either way: the kernels always write them */
    void *mean = bv_graph_alloc(g, (size_t)N * es), *rstd = bv_graph_alloc(g, (size_t)N * es);
    if (bv_var_is_f64(x))
        bv_k_layernorm_fwd_ref(bv_var_f64(y), mean, rstd, bv_var_f64(x), bv_var_f64(w), b ? bv_var_f64(b) : NULL, N,
                               D, eps);
    else
        bv_k_layernorm_fwd(bv_var_f32(y), mean, rstd, bv_var_f32(x), bv_var_f32(w), b ? bv_var_f32(b) : NULL, N, D,
                           eps);
    if (rec) {
        s->mean = mean;
        s->rstd = rstd;
        bv_graph_record(g, "layernorm", layernorm_bwd, y, 3, in, s);
    }
    return y;
}

static void rmsnorm_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0], *w = e->in[1];
    const norm_saved *s = e->saved;
    int64_t D = last_dim(x), N = bv_var_numel(x) / D;
    void *dx = x->requires_grad ? bv_var_grad(g, x) : NULL;
    void *dw = w->requires_grad ? bv_var_grad(g, w) : NULL;
    if (bv_var_is_f64(x)) {
        bv_k_rmsnorm_bwd_ref(dx, dw, e->out->grad, bv_var_f64(x), bv_var_f64(w), s->rstd, N, D);
    } else {
        float *scratch = dw ? bv_graph_scratch(g, (size_t)bv_k_norm_bwd_scratch(N, D) * sizeof(float)) : NULL;
        bv_k_rmsnorm_bwd(dx, dw, scratch, e->out->grad, bv_var_f32(x), bv_var_f32(w), s->rstd, N, D);
    }
}

bv_var *bv_op_rmsnorm(bv_graph *g, bv_var *x, bv_var *w, double eps) {
    check_norm_input("rmsnorm", x);
    BV_ASSERT(w, "rmsnorm: weight is required");
    int64_t D = last_dim(x), N = bv_var_numel(x) / D;
    check_param("rmsnorm", "weight", x, w, D);
    BV_ASSERT(eps >= 0, "rmsnorm: eps %g < 0", eps);
    bv_var *y = bv_var_like(g, x);
    bv_var *in[2] = {x, w};
    bool rec = bv_graph_should_record(g, 2, in);
    size_t es = bv_var_is_f64(x) ? sizeof(double) : sizeof(float);
    norm_saved *s = rec ? bv_graph_alloc(g, sizeof *s) : NULL;
    void *rstd = bv_graph_alloc(g, (size_t)N * es);
    if (bv_var_is_f64(x))
        bv_k_rmsnorm_fwd_ref(bv_var_f64(y), rstd, bv_var_f64(x), bv_var_f64(w), N, D, eps);
    else
        bv_k_rmsnorm_fwd(bv_var_f32(y), rstd, bv_var_f32(x), bv_var_f32(w), N, D, eps);
    if (rec) {
        s->mean = NULL;
        s->rstd = rstd;
        bv_graph_record(g, "rmsnorm", rmsnorm_bwd, y, 2, in, s);
    }
    return y;
}
