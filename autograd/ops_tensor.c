/* ops_tensor.c - indexing and shape ops: embedding, patchify, concat, narrow, index_select,
 * masked_scatter, reshape, permute, transpose. Kernels in src/kernels/gather.{h,c}.
 *
 * Index inputs (ids, idx, mask) are copied into the graph's arena when the op is recorded, so the
 * caller may reuse its buffers before backward. reshape shares the value buffer of its input
 * (values are immutable); every other op returns a fresh contiguous value. */
#include <string.h>

#include "src/kernels/gather.h"
#include "autograd/autograd.h"
#include "autograd/ops_impl.h"

static void check_same_dtype(const char *op, const bv_var *a, const bv_var *b) {
    BV_ASSERT(a->val.dtype == b->val.dtype, "%s: dtypes %s and %s differ (need both F32 or both F64)", op,
              bv_dtype_name(a->val.dtype), bv_dtype_name(b->val.dtype));
}

static int norm_dim(const char *op, int dim, int ndim) {
    int d = dim < 0 ? dim + ndim : dim;
    BV_ASSERT(d >= 0 && d < ndim, "%s: dim %d out of range for rank %d", op, dim, ndim);
    return d;
}

/* (outer, n, inner) view of a shape around dim */
static void split_at(const bv_tensor *t, int dim, int64_t *outer, int64_t *inner) {
    *outer = 1, *inner = 1;
    for (int i = 0; i < dim; i++) *outer *= t->shape[i];
    for (int i = dim + 1; i < t->ndim; i++) *inner *= t->shape[i];
}

/* Contiguous copy of an index tensor in the graph's arena. */
static const void *index_copy(bv_graph *g, const bv_tensor *t) {
    bv_tensor c = bv_tensor_contiguous(&g->arena, t, true);
    return bv_tensor_ptr(&c);
}

/* ---- embedding ---- */

typedef struct {
    const int64_t *ids;
    int64_t N;
} embedding_saved;

static void embedding_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *table = e->in[0];
    const embedding_saved *s = e->saved;
    int64_t V = table->val.shape[0], D = table->val.shape[1];
    if (bv_var_is_f64(table))
        bv_k_embedding_bwd_ref(bv_var_grad(g, table), e->out->grad, s->ids, s->N, V, D);
    else
        bv_k_embedding_bwd(bv_var_grad(g, table), e->out->grad, s->ids, s->N, V, D);
}

bv_var *bv_op_embedding(bv_graph *g, const bv_tensor *ids, bv_var *table) {
    if (table->val.dtype == BV_DTYPE_BF16) { /* a frozen bf16 table (the runtime's): rows converted to F32 */
        BV_ASSERT(!table->requires_grad, "embedding: a BF16 table cannot train");
        BV_ASSERT(table->val.ndim == 2 && ids->dtype == BV_DTYPE_I64 && ids->ndim < BV_MAX_DIMS,
                  "embedding: BF16 table of rank %d, ids %s of rank %d", table->val.ndim, bv_dtype_name(ids->dtype),
                  ids->ndim);
        int64_t V = table->val.shape[0], D = table->val.shape[1];
        int64_t shape[BV_MAX_DIMS];
        memcpy(shape, ids->shape, (size_t)ids->ndim * sizeof(int64_t));
        shape[ids->ndim] = D;
        bv_var *y = bv_var_new(g, BV_DTYPE_F32, ids->ndim + 1, shape);
        bv_k_embedding_fwd_bf16(bv_var_f32(y), index_copy(g, ids), bv_tensor_ptr(&table->val), bv_tensor_numel(ids), V,
                                D);
        return y;
    }
    bv_ops_check_float("embedding", table);
    BV_ASSERT(ids->dtype == BV_DTYPE_I64, "embedding: ids must be I64, got %s", bv_dtype_name(ids->dtype));
    BV_ASSERT(table->val.ndim == 2, "embedding: table must be (V, D), got rank %d", table->val.ndim);
    BV_ASSERT(ids->ndim < BV_MAX_DIMS, "embedding: ids of rank %d give an output of rank > %d", ids->ndim,
              BV_MAX_DIMS);
    int64_t V = table->val.shape[0], D = table->val.shape[1], N = bv_tensor_numel(ids);
    const int64_t *id = index_copy(g, ids);
    int64_t shape[BV_MAX_DIMS];
    memcpy(shape, ids->shape, (size_t)ids->ndim * sizeof(int64_t));
    shape[ids->ndim] = D;
    bv_var *y = bv_var_new(g, table->val.dtype, ids->ndim + 1, shape);
    if (bv_var_is_f64(table))
        bv_k_embedding_fwd_ref(bv_var_f64(y), id, bv_var_f64(table), N, V, D);
    else
        bv_k_embedding_fwd(bv_var_f32(y), id, bv_var_f32(table), N, V, D);
    if (bv_graph_should_record(g, 1, &table)) {
        embedding_saved *s = bv_graph_alloc(g, sizeof *s);
        s->ids = id, s->N = N;
        bv_graph_record(g, "embedding", embedding_bwd, y, 1, &table, s);
    }
    return y;
}

/* ---- patchify ---- */

static void patchify_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    int64_t p = *(const int64_t *)e->saved;
    const int64_t *s = x->val.shape;
    if (bv_var_is_f64(x))
        bv_k_patchify_bwd_ref(bv_var_grad(g, x), e->out->grad, s[0], s[1], s[2], s[3], p);
    else
        bv_k_patchify_bwd(bv_var_grad(g, x), e->out->grad, s[0], s[1], s[2], s[3], p);
}

bv_var *bv_op_patchify(bv_graph *g, bv_var *img, int p) {
    bv_ops_check_float("patchify", img);
    BV_ASSERT(img->val.ndim == 4, "patchify: image must be (B, C, H, W), got rank %d", img->val.ndim);
    const int64_t *s = img->val.shape;
    int64_t B = s[0], C = s[1], H = s[2], W = s[3];
    BV_ASSERT(p >= 1 && H % p == 0 && W % p == 0,
              "patchify: height %lld and width %lld must be multiples of the patch size %d", (long long)H,
              (long long)W, p);
    int64_t shape[3] = {B, (H / p) * (W / p), C * p * p};
    bv_var *y = bv_var_new(g, img->val.dtype, 3, shape);
    if (bv_var_is_f64(img))
        bv_k_patchify_fwd_ref(bv_var_f64(y), bv_var_f64(img), B, C, H, W, p);
    else
        bv_k_patchify_fwd(bv_var_f32(y), bv_var_f32(img), B, C, H, W, p);
    if (bv_graph_should_record(g, 1, &img)) {
        int64_t *sp = bv_graph_alloc(g, sizeof *sp);
        *sp = p;
        bv_graph_record(g, "patchify", patchify_bwd, y, 1, &img, sp);
    }
    return y;
}

/* ---- concat ---- */

typedef struct {
    int dim;
    int64_t outer, inner;
    int64_t *sizes; /* n */
} concat_saved;

static void concat_bwd(bv_graph *g, const bv_tape_entry *e) {
    const concat_saved *s = e->saved;
    int n = e->n_in;
    void **d = bv_graph_alloc(g, (size_t)n * sizeof *d);
    for (int i = 0; i < n; i++) d[i] = e->in[i]->requires_grad ? bv_var_grad(g, e->in[i]) : NULL;
    /* the same var may appear twice: the kernel then adds both slices into one gradient, in order */
    if (bv_var_is_f64(e->out))
        bv_k_concat_bwd_ref((double *const *)d, e->out->grad, s->sizes, n, s->outer, s->inner);
    else
        bv_k_concat_bwd((float *const *)d, e->out->grad, s->sizes, n, s->outer, s->inner);
}

bv_var *bv_op_concat(bv_graph *g, int n, bv_var *const *xs, int dim) {
    BV_ASSERT(n >= 1, "concat: needs at least one input, got %d", n);
    const bv_tensor *t0 = &xs[0]->val;
    bv_ops_check_float("concat", xs[0]);
    dim = norm_dim("concat", dim, t0->ndim);
    int64_t *sizes = bv_graph_alloc(g, (size_t)n * sizeof *sizes);
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const bv_tensor *t = &xs[i]->val;
        check_same_dtype("concat", xs[0], xs[i]);
        BV_ASSERT(t->ndim == t0->ndim, "concat: input %d has rank %d, input 0 has rank %d", i, t->ndim, t0->ndim);
        for (int k = 0; k < t->ndim; k++)
            BV_ASSERT(k == dim || t->shape[k] == t0->shape[k],
                      "concat: input %d has size %lld in dim %d, input 0 has %lld (only dim %d may differ)", i,
                      (long long)t->shape[k], k, (long long)t0->shape[k], dim);
        sizes[i] = t->shape[dim];
        total += sizes[i];
    }
    int64_t outer, inner, shape[BV_MAX_DIMS];
    split_at(t0, dim, &outer, &inner);
    memcpy(shape, t0->shape, sizeof shape);
    shape[dim] = total;
    bv_var *y = bv_var_new(g, t0->dtype, t0->ndim, shape);
    const void **p = bv_graph_alloc(g, (size_t)n * sizeof *p);
    for (int i = 0; i < n; i++) p[i] = bv_tensor_ptr(&xs[i]->val);
    if (bv_var_is_f64(y))
        bv_k_concat_fwd_ref(bv_var_f64(y), (const double *const *)p, sizes, n, outer, inner);
    else
        bv_k_concat_fwd(bv_var_f32(y), (const float *const *)p, sizes, n, outer, inner);
    if (bv_graph_should_record(g, n, xs)) {
        concat_saved *s = bv_graph_alloc(g, sizeof *s);
        s->dim = dim, s->outer = outer, s->inner = inner, s->sizes = sizes;
        bv_graph_record(g, "concat", concat_bwd, y, n, xs, s);
    }
    return y;
}

/* ---- narrow ---- */

typedef struct {
    int64_t outer, n, inner, start, len;
} narrow_saved;

static void narrow_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    const narrow_saved *s = e->saved;
    if (bv_var_is_f64(x))
        bv_k_narrow_bwd_ref(bv_var_grad(g, x), e->out->grad, s->outer, s->n, s->inner, s->start, s->len);
    else
        bv_k_narrow_bwd(bv_var_grad(g, x), e->out->grad, s->outer, s->n, s->inner, s->start, s->len);
}

bv_var *bv_op_narrow(bv_graph *g, bv_var *x, int dim, int64_t start, int64_t len) {
    bv_ops_check_float("narrow", x);
    dim = norm_dim("narrow", dim, x->val.ndim);
    narrow_saved s;
    s.n = x->val.shape[dim];
    if (start < 0) start += s.n; /* like torch.narrow */
    BV_ASSERT(start >= 0 && len >= 0 && start + len <= s.n,
              "narrow: start %lld length %lld do not fit dim %d of size %lld", (long long)start, (long long)len,
              dim, (long long)s.n);
    s.start = start, s.len = len;
    split_at(&x->val, dim, &s.outer, &s.inner);
    int64_t shape[BV_MAX_DIMS];
    memcpy(shape, x->val.shape, sizeof shape);
    shape[dim] = len;
    bv_var *y = bv_var_new(g, x->val.dtype, x->val.ndim, shape);
    if (bv_var_is_f64(x))
        bv_k_narrow_fwd_ref(bv_var_f64(y), bv_var_f64(x), s.outer, s.n, s.inner, start, len);
    else
        bv_k_narrow_fwd(bv_var_f32(y), bv_var_f32(x), s.outer, s.n, s.inner, start, len);
    if (bv_graph_should_record(g, 1, &x)) {
        narrow_saved *sv = bv_graph_alloc(g, sizeof *sv);
        *sv = s;
        bv_graph_record(g, "narrow", narrow_bwd, y, 1, &x, sv);
    }
    return y;
}

/* ---- index_select ---- */

typedef struct {
    const int64_t *idx;
    int64_t outer, n, inner, m;
} index_select_saved;

static void index_select_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    const index_select_saved *s = e->saved;
    if (bv_var_is_f64(x))
        bv_k_index_select_bwd_ref(bv_var_grad(g, x), e->out->grad, s->idx, s->outer, s->n, s->inner, s->m);
    else
        bv_k_index_select_bwd(bv_var_grad(g, x), e->out->grad, s->idx, s->outer, s->n, s->inner, s->m);
}

bv_var *bv_op_index_select(bv_graph *g, bv_var *x, int dim, const bv_tensor *idx) {
    bv_ops_check_float("index_select", x);
    BV_ASSERT(idx->dtype == BV_DTYPE_I64, "index_select: idx must be I64, got %s", bv_dtype_name(idx->dtype));
    BV_ASSERT(idx->ndim == 1, "index_select: idx must be rank 1, got rank %d", idx->ndim);
    dim = norm_dim("index_select", dim, x->val.ndim);
    index_select_saved s;
    s.n = x->val.shape[dim];
    s.m = idx->shape[0];
    split_at(&x->val, dim, &s.outer, &s.inner);
    s.idx = index_copy(g, idx);
    int64_t shape[BV_MAX_DIMS];
    memcpy(shape, x->val.shape, sizeof shape);
    shape[dim] = s.m;
    bv_var *y = bv_var_new(g, x->val.dtype, x->val.ndim, shape);
    if (bv_var_is_f64(x))
        bv_k_index_select_fwd_ref(bv_var_f64(y), bv_var_f64(x), s.idx, s.outer, s.n, s.inner, s.m);
    else
        bv_k_index_select_fwd(bv_var_f32(y), bv_var_f32(x), s.idx, s.outer, s.n, s.inner, s.m);
    if (bv_graph_should_record(g, 1, &x)) {
        index_select_saved *sv = bv_graph_alloc(g, sizeof *sv);
        *sv = s;
        bv_graph_record(g, "index_select", index_select_bwd, y, 1, &x, sv);
    }
    return y;
}

/* ---- masked_scatter ---- */

typedef struct {
    const int64_t *rowmap;
    int64_t R, D;
} masked_scatter_saved;

static void masked_scatter_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0], *src = e->in[1];
    const masked_scatter_saved *s = e->saved;
    void *dx = x->requires_grad ? bv_var_grad(g, x) : NULL;
    void *ds = src->requires_grad ? bv_var_grad(g, src) : NULL;
    if (bv_var_is_f64(x))
        bv_k_masked_scatter_bwd_ref(dx, ds, e->out->grad, s->rowmap, s->R, s->D);
    else
        bv_k_masked_scatter_bwd(dx, ds, e->out->grad, s->rowmap, s->R, s->D);
}

bv_var *bv_op_masked_scatter(bv_graph *g, bv_var *x, const bv_tensor *mask, bv_var *src) {
    bv_ops_check_float("masked_scatter", x);
    check_same_dtype("masked_scatter", x, src);
    char s1[96], s2[96];
    const bv_tensor *xt = &x->val;
    BV_ASSERT(xt->ndim == 3, "masked_scatter: x must be (B, T, D), got %s", bv_tensor_shape_str(xt, s1, 96));
    BV_ASSERT(mask->dtype == BV_DTYPE_U8, "masked_scatter: mask must be U8, got %s", bv_dtype_name(mask->dtype));
    BV_ASSERT(mask->ndim == 2 && mask->shape[0] == xt->shape[0] && mask->shape[1] == xt->shape[1],
              "masked_scatter: mask %s does not match x %s (need (B, T))", bv_tensor_shape_str(mask, s1, 96),
              bv_tensor_shape_str(xt, s2, 96));
    int64_t D = xt->shape[2], R = xt->shape[0] * xt->shape[1];
    BV_ASSERT(src->val.ndim == 2 && src->val.shape[1] == D, "masked_scatter: src must be (N, %lld), got %s",
              (long long)D, bv_tensor_shape_str(&src->val, s1, 96));
    const uint8_t *m = index_copy(g, mask);
    int64_t *rowmap = bv_graph_alloc(g, (size_t)R * sizeof *rowmap);
    int64_t ones = bv_k_masked_scatter_map(rowmap, m, R);
    BV_ASSERT(ones == src->val.shape[0], "masked_scatter: mask has %lld ones but src has %lld rows",
              (long long)ones, (long long)src->val.shape[0]);
    bv_var *y = bv_var_like(g, x);
    if (bv_var_is_f64(x))
        bv_k_masked_scatter_fwd_ref(bv_var_f64(y), bv_var_f64(x), bv_var_f64(src), rowmap, R, D);
    else
        bv_k_masked_scatter_fwd(bv_var_f32(y), bv_var_f32(x), bv_var_f32(src), rowmap, R, D);
    bv_var *in[2] = {x, src};
    if (bv_graph_should_record(g, 2, in)) {
        masked_scatter_saved *sv = bv_graph_alloc(g, sizeof *sv);
        sv->rowmap = rowmap, sv->R = R, sv->D = D;
        bv_graph_record(g, "masked_scatter", masked_scatter_bwd, y, 2, in, sv);
    }
    return y;
}

/* ---- reshape ---- */

static void reshape_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    if (bv_var_is_f64(x))
        bv_k_reshape_bwd_ref(bv_var_grad(g, x), e->out->grad, bv_var_numel(x));
    else
        bv_k_reshape_bwd(bv_var_grad(g, x), e->out->grad, bv_var_numel(x));
}

bv_var *bv_op_reshape(bv_graph *g, bv_var *x, int ndim, const int64_t *shape) {
    bv_ops_check_float("reshape", x);
    bv_tensor v;
    bv_status st = bv_tensor_reshape(&x->val, ndim, shape, &v);
    BV_ASSERT(st == BV_OK, "%s", bv_error_msg());
    bv_var *y = bv_var_wrap(g, &v, false); /* shares x's value; gradients stay separate */
    bv_graph_record(g, "reshape", reshape_bwd, y, 1, &x, NULL);
    return y;
}

/* ---- permute / transpose ---- */

typedef struct {
    int perm[BV_MAX_DIMS];
} permute_saved;

static void permute_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    const permute_saved *s = e->saved;
    if (bv_var_is_f64(x))
        bv_k_permute_bwd_ref(bv_var_grad(g, x), e->out->grad, x->val.ndim, x->val.shape, s->perm);
    else
        bv_k_permute_bwd(bv_var_grad(g, x), e->out->grad, x->val.ndim, x->val.shape, s->perm);
}

static bv_var *permute_op(bv_graph *g, bv_var *x, const int *perm, const char *name) {
    bv_ops_check_float(name, x);
    bv_tensor v;
    bv_status st = bv_tensor_permute(&x->val, perm, &v);
    BV_ASSERT(st == BV_OK, "%s: %s", name, bv_error_msg());
    bv_var *y = bv_var_new(g, x->val.dtype, v.ndim, v.shape);
    if (bv_var_is_f64(x))
        bv_k_permute_fwd_ref(bv_var_f64(y), bv_var_f64(x), x->val.ndim, x->val.shape, perm);
    else
        bv_k_permute_fwd(bv_var_f32(y), bv_var_f32(x), x->val.ndim, x->val.shape, perm);
    if (bv_graph_should_record(g, 1, &x)) {
        permute_saved *s = bv_graph_alloc(g, sizeof *s);
        memcpy(s->perm, perm, (size_t)x->val.ndim * sizeof(int));
        bv_graph_record(g, name, permute_bwd, y, 1, &x, s);
    }
    return y;
}

bv_var *bv_op_permute(bv_graph *g, bv_var *x, const int *perm) { return permute_op(g, x, perm, "permute"); }

bv_var *bv_op_transpose(bv_graph *g, bv_var *x, int d0, int d1) {
    int n = x->val.ndim;
    int a = norm_dim("transpose", d0, n), b = norm_dim("transpose", d1, n);
    int perm[BV_MAX_DIMS];
    for (int i = 0; i < n; i++) perm[i] = i;
    perm[a] = b;
    perm[b] = a;
    return permute_op(g, x, perm, "transpose");
}
