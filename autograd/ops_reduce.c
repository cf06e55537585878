/* ops_reduce.c - sum and mean, over everything or over one dimension. */
#include <string.h>

#include "src/kernels/reduce.h"
#include "autograd/autograd.h"

typedef struct {
    int64_t outer, n, inner;
    double scale;
} reduce_saved;

static void reduce_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    const reduce_saved *s = e->saved;
    if (bv_var_is_f64(x))
        bv_k_reduce_bwd_ref(bv_var_grad(g, x), e->out->grad, s->outer, s->n, s->inner, s->scale);
    else
        bv_k_reduce_bwd(bv_var_grad(g, x), e->out->grad, s->outer, s->n, s->inner, s->scale);
}

static bv_var *reduce(bv_graph *g, bv_var *x, int dim, bool mean, const char *name) {
    BV_ASSERT(x->val.dtype == BV_DTYPE_F32 || bv_var_is_f64(x), "%s: dtype %s", name, bv_dtype_name(x->val.dtype));
    reduce_saved s;
    int64_t shape[BV_MAX_DIMS];
    int nd;
    if (dim == BV_MAX_DIMS) { /* all */
        s.outer = 1, s.inner = 1, s.n = bv_var_numel(x);
        nd = 0;
    } else {
        if (dim < 0) dim += x->val.ndim;
        BV_ASSERT(dim >= 0 && dim < x->val.ndim, "%s: dim %d out of range for rank %d", name, dim, x->val.ndim);
        s.outer = 1, s.inner = 1, s.n = x->val.shape[dim];
        for (int i = 0; i < dim; i++) s.outer *= x->val.shape[i];
        for (int i = dim + 1; i < x->val.ndim; i++) s.inner *= x->val.shape[i];
        nd = 0;
        for (int i = 0; i < x->val.ndim; i++)
            if (i != dim) shape[nd++] = x->val.shape[i];
    }
    s.scale = mean ? (s.n ? 1.0 / (double)s.n : 0.0) : 1.0;
    bv_var *y = bv_var_new(g, x->val.dtype, nd, shape);
    if (bv_var_is_f64(x))
        bv_k_reduce_fwd_ref(bv_var_f64(y), bv_var_f64(x), s.outer, s.n, s.inner, s.scale);
    else
        bv_k_reduce_fwd(bv_var_f32(y), bv_var_f32(x), s.outer, s.n, s.inner, s.scale);
    if (bv_graph_should_record(g, 1, &x)) {
        reduce_saved *sv = bv_graph_alloc(g, sizeof *sv);
        *sv = s;
        bv_graph_record(g, name, reduce_bwd, y, 1, &x, sv);
    }
    return y;
}

bv_var *bv_op_sum(bv_graph *g, bv_var *x) { return reduce(g, x, BV_MAX_DIMS, false, "sum"); }
bv_var *bv_op_mean(bv_graph *g, bv_var *x) { return reduce(g, x, BV_MAX_DIMS, true, "mean"); }
bv_var *bv_op_sum_dim(bv_graph *g, bv_var *x, int dim) { return reduce(g, x, dim, false, "sum_dim"); }
bv_var *bv_op_mean_dim(bv_graph *g, bv_var *x, int dim) { return reduce(g, x, dim, true, "mean_dim"); }
