#include "autograd/autograd.h"

#include <string.h>

void bv_graph_init(bv_graph *g, size_t arena_bytes) {
    memset(g, 0, sizeof *g);
    bv_arena_init(&g->arena, arena_bytes);
    g->cap_tape = 256;
    g->tape = bv_xmalloc((size_t)g->cap_tape * sizeof *g->tape);
}

void bv_graph_free(bv_graph *g) {
    bv_arena_free(&g->arena);
    bv_aligned_free(g->scratch);
    free(g->tape);
    memset(g, 0, sizeof *g);
}

void bv_graph_reset(bv_graph *g) {
    bv_arena_reset(&g->arena);
    g->n_tape = 0;
    g->no_grad = 0;
}

void bv_graph_no_grad_begin(bv_graph *g) { g->no_grad++; }

void bv_graph_no_grad_end(bv_graph *g) {
    BV_ASSERT(g->no_grad > 0, "no_grad_end without no_grad_begin");
    g->no_grad--;
}

void *bv_graph_alloc(bv_graph *g, size_t bytes) { return bv_arena_alloc(&g->arena, bytes); }

void *bv_graph_scratch(bv_graph *g, size_t bytes) {
    if (bytes > g->scratch_cap) {
        bv_aligned_free(g->scratch);
        g->scratch_cap = bytes + (bytes >> 2);
        g->scratch = bv_aligned_alloc(g->scratch_cap);
        g->scratch_grows++;
    }
    return g->scratch;
}

bv_var *bv_var_new(bv_graph *g, bv_dtype dt, int ndim, const int64_t *shape) {
    bv_var *v = bv_arena_alloc(&g->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->val = bv_tensor_arena(&g->arena, dt, ndim, shape);
    return v;
}

bv_arena_mark bv_graph_mark(const bv_graph *g) { return bv_arena_get_mark(&g->arena); }

bv_var *bv_graph_keep(bv_graph *g, bv_arena_mark m, bv_var *out) {
    BV_ASSERT(g->no_grad, "bv_graph_keep outside no_grad: the tape may still need the temporaries");
    BV_ASSERT(bv_tensor_is_contiguous(&out->val), "bv_graph_keep: the output is not contiguous");
    size_t nb = bv_tensor_nbytes(&out->val);
    bv_tensor t = out->val;
    void *tmp = bv_graph_scratch(g, nb ? nb : 1);
    memcpy(tmp, bv_tensor_ptr(&t), nb);
    bv_arena_rewind(&g->arena, m);
    bv_var *y = bv_var_new(g, t.dtype, t.ndim, t.shape);
    memcpy(bv_tensor_ptr(&y->val), tmp, nb);
    return y;
}

bv_var *bv_var_like(bv_graph *g, const bv_var *x) {
    return bv_var_new(g, x->val.dtype, x->val.ndim, x->val.shape);
}

bv_var *bv_var_leaf(bv_graph *g, const bv_tensor *t, bv_dtype dt, bool requires_grad) {
    BV_ASSERT(dt == BV_DTYPE_F32 || dt == BV_DTYPE_F64, "leaf dtype must be F32 or F64, got %s",
              bv_dtype_name(dt));
    bv_var *v = bv_var_new(g, dt, t->ndim, t->shape);
    bv_tensor_copy_into(&v->val, t);
    v->requires_grad = requires_grad;
    return v;
}

bv_var *bv_var_wrap(bv_graph *g, const bv_tensor *t, bool requires_grad) {
    BV_ASSERT(t->dtype == BV_DTYPE_F32 || t->dtype == BV_DTYPE_F64, "wrap: dtype %s", bv_dtype_name(t->dtype));
    BV_ASSERT(bv_tensor_is_contiguous(t), "wrap: tensor must be contiguous");
    bv_var *v = bv_arena_alloc(&g->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->val = *t;
    v->requires_grad = requires_grad;
    return v;
}

bv_var *bv_var_param(bv_graph *g, const bv_params *p, int i) {
    bv_var *v = bv_arena_alloc(&g->arena, sizeof *v);
    memset(v, 0, sizeof *v);
    v->val = bv_params_value(p, i);
    v->grad = bv_params_grad(p, i);
    v->requires_grad = v->grad != NULL;
    v->is_param = true;
    v->name = p->items[i].name;
    return v;
}

void *bv_var_grad(bv_graph *g, bv_var *v) {
    if (!v->grad) v->grad = bv_arena_calloc(&g->arena, bv_tensor_nbytes(&v->val));
    return v->grad;
}

bool bv_graph_should_record(const bv_graph *g, int n_in, bv_var *const *in) {
    if (g->no_grad) return false;
    for (int i = 0; i < n_in; i++)
        if (in[i] && in[i]->requires_grad) return true;
    return false;
}

bv_tape_entry *bv_graph_record(bv_graph *g, const char *op, bv_backward_fn fn, bv_var *out, int n_in,
                               bv_var *const *in, void *saved) {
    if (!bv_graph_should_record(g, n_in, in)) return NULL;
    if (g->n_tape == g->cap_tape) {
        g->cap_tape *= 2;
        g->tape = bv_xrealloc(g->tape, (size_t)g->cap_tape * sizeof *g->tape);
    }
    bv_tape_entry *e = &g->tape[g->n_tape++];
    e->op = op;
    e->fn = fn;
    e->out = out;
    e->n_in = n_in;
    e->in = bv_arena_alloc(&g->arena, (size_t)(n_in ? n_in : 1) * sizeof *e->in);
    memcpy(e->in, in, (size_t)n_in * sizeof *e->in);
    e->saved = saved;
    out->requires_grad = true;
    return e;
}

void bv_graph_backward_seed(bv_graph *g, bv_var *out, const void *seed) {
    BV_ASSERT(out->requires_grad, "backward from a var that does not require grad");
    int64_t n = bv_var_numel(out);
    if (bv_var_is_f64(out)) {
        double *d = bv_var_grad(g, out);
        for (int64_t j = 0; j < n; j++) d[j] += ((const double *)seed)[j];
    } else {
        float *d = bv_var_grad(g, out);
        for (int64_t j = 0; j < n; j++) d[j] += ((const float *)seed)[j];
    }
    if (g->hook_begin) g->hook_begin(g->hook_ctx, g);
    for (int i = g->n_tape - 1; i >= 0; i--) {
        const bv_tape_entry *e = &g->tape[i];
        if (e->out->grad) e->fn(g, e); /* else no gradient reached this op's output */
        if (g->hook_entry_done) g->hook_entry_done(g->hook_ctx, g, i);
    }
}

void bv_graph_backward(bv_graph *g, bv_var *loss) {
    BV_ASSERT(bv_var_numel(loss) == 1, "backward needs a scalar loss, got %lld elements",
              (long long)bv_var_numel(loss));
    if (bv_var_is_f64(loss)) {
        double one = 1.0;
        bv_graph_backward_seed(g, loss, &one);
    } else {
        float one = 1.0f;
        bv_graph_backward_seed(g, loss, &one);
    }
}
