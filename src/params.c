#include "src/params.h"

#include <stdio.h>
#include <string.h>

void bv_params_init(bv_params *p) { memset(p, 0, sizeof *p); }

void bv_params_free(bv_params *p) {
    for (int i = 0; i < p->n; i++) free(p->items[i].name);
    free(p->items);
    bv_aligned_free(p->values);
    bv_aligned_free(p->grads);
    memset(p, 0, sizeof *p);
}

int bv_params_find(const bv_params *p, const char *name) {
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->items[i].name, name) == 0) return i;
    return -1;
}

int bv_params_add(bv_params *p, const char *name, int ndim, const int64_t *shape, bool trainable) {
    BV_ASSERT(!p->finalized, "bv_params_add('%s') after finalize", name);
    if (bv_params_find(p, name) >= 0) {
        bv_error_set(BV_ERR_ARG, "parameter '%s' registered twice", name);
        return -1;
    }
    if (ndim < 0 || ndim > BV_MAX_DIMS) {
        bv_error_set(BV_ERR_SHAPE, "parameter '%s': rank %d outside 0..%d", name, ndim, BV_MAX_DIMS);
        return -1;
    }
    if (p->n == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->items = bv_xrealloc(p->items, (size_t)p->cap * sizeof *p->items);
    }
    bv_param *q = &p->items[p->n];
    memset(q, 0, sizeof *q);
    q->name = bv_xstrdup(name);
    q->ndim = ndim;
    q->numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] <= 0) {
            free(q->name);
            bv_error_set(BV_ERR_SHAPE, "parameter '%s': dimension %d is %lld, expected > 0", name, i,
                         (long long)shape[i]);
            return -1;
        }
        if (q->numel > (INT64_MAX / 8) / shape[i]) { /* its bytes must fit in int64 too */
            free(q->name);
            bv_error_set(BV_ERR_SHAPE, "parameter '%s': more than 2^60 elements (dimension %d is %lld)", name, i,
                         (long long)shape[i]);
            return -1;
        }
        q->shape[i] = shape[i];
        q->numel *= shape[i];
    }
    q->trainable = trainable;
    return p->n++;
}

int bv_params_set_trainable(bv_params *p, const char *prefix, bool trainable) {
    BV_ASSERT(!p->finalized, "bv_params_set_trainable after finalize");
    size_t n = strlen(prefix);
    int c = 0;
    for (int i = 0; i < p->n; i++)
        if (strncmp(p->items[i].name, prefix, n) == 0) {
            p->items[i].trainable = trainable;
            c++;
        }
    return c;
}

void bv_params_set_external(bv_params *p, int i) {
    BV_ASSERT(!p->finalized && i >= 0 && i < p->n, "bv_params_set_external(%d) (n=%d, finalized=%d)", i, p->n,
              (int)p->finalized);
    p->items[i].external = true;
    p->items[i].trainable = false;
    p->items[i].ext_data = NULL;
    p->items[i].ext_dtype = BV_DTYPE_F32;
}

void bv_params_set_external_data(bv_params *p, int i, const void *data, bv_dtype dtype) {
    BV_ASSERT(i >= 0 && i < p->n && p->items[i].external, "bv_params_set_external_data(%d): not an external parameter", i);
    BV_ASSERT(dtype == BV_DTYPE_F32 || dtype == BV_DTYPE_BF16, "bv_params_set_external_data(%d): dtype %s", i,
              bv_dtype_name(dtype));
    p->items[i].ext_data = data;
    p->items[i].ext_dtype = dtype;
}

double bv_params_bytes(const bv_params *p) {
    double n = 0;
    for (int i = 0; i < p->n; i++)
        if (!p->items[i].external) n += (double)p->items[i].numel * (p->items[i].trainable ? 8.0 : 4.0);
    return n;
}

bv_status bv_params_finalize(bv_params *p) {
    BV_ASSERT(!p->finalized, "bv_params_finalize called twice");
    char what[96];
    snprintf(what, sizeof what, "the parameter store (%d tensors)", p->n);
    BV_TRY(bv_mem_check(bv_params_bytes(p), what));
    size_t off = 0, n_train = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p->n; i++) {
            bv_param *q = &p->items[i];
            if (q->external || q->trainable != (pass == 0)) continue;
            q->offset = off;
            off += (size_t)q->numel;
            if (pass == 0) n_train = off;
        }
    /* the sizes fit: bv_mem_check bounded them by the physical memory */
    float *values = bv_aligned_alloc_try(off * sizeof(float));
    float *grads = n_train ? bv_aligned_alloc_try(n_train * sizeof(float)) : NULL;
    if (!values || (n_train && !grads)) {
        bv_aligned_free(values);
        bv_aligned_free(grads);
        return bv_error_set(BV_ERR_NOMEM,
                            "the parameter store (%d tensors): cannot allocate %zu bytes of values and %zu bytes of "
                            "gradients",
                            p->n, off * sizeof(float), n_train * sizeof(float));
    }
    memset(values, 0, off * sizeof(float));
    if (grads) memset(grads, 0, n_train * sizeof(float));
    p->values = values;
    p->grads = grads;
    p->numel_total = off;
    p->numel_trainable = n_train;
    p->finalized = true;
    bv_params_mark_updated(p);
    return BV_OK;
}

/* Versions come from one process-wide counter, so a cache that outlives its store can never take a
 * new store (perhaps at the same address) for the one it was computed from. */
static _Atomic uint64_t g_params_version;

void bv_params_mark_updated(bv_params *p) { p->version = ++g_params_version; }

bv_tensor bv_params_value(const bv_params *p, int i) {
    BV_ASSERT(p->finalized && i >= 0 && i < p->n, "parameter index %d (n=%d, finalized=%d)", i, p->n,
              (int)p->finalized);
    const bv_param *q = &p->items[i];
    if (q->external) return bv_tensor_make((void *)q->ext_data, q->ext_dtype, q->ndim, q->shape);
    return bv_tensor_make(p->values + q->offset, BV_DTYPE_F32, q->ndim, q->shape);
}

float *bv_params_grad(const bv_params *p, int i) {
    BV_ASSERT(p->finalized && i >= 0 && i < p->n, "parameter index %d", i);
    return p->items[i].trainable && !p->items[i].external ? p->grads + p->items[i].offset : NULL;
}

void bv_params_zero_grad(bv_params *p) {
    if (p->grads) memset(p->grads, 0, p->numel_trainable * sizeof(float));
}
