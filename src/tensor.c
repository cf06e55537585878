#include "src/tensor.h"

#include <string.h>

static void contiguous_strides(int ndim, const int64_t *shape, int64_t *strides) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        strides[i] = s;
        s *= shape[i];
    }
}

bv_tensor bv_tensor_make(void *data, bv_dtype dt, int ndim, const int64_t *shape) {
    BV_ASSERT(ndim >= 0 && ndim <= BV_MAX_DIMS, "rank %d outside 0..%d", ndim, BV_MAX_DIMS);
    bv_tensor t;
    memset(&t, 0, sizeof t);
    t.data = data;
    t.dtype = dt;
    t.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        BV_ASSERT(shape[i] >= 0, "negative dimension %lld", (long long)shape[i]);
        t.shape[i] = shape[i];
    }
    contiguous_strides(ndim, t.shape, t.strides);
    return t;
}

bv_tensor bv_tensor_make1(void *data, bv_dtype dt, int64_t d0) {
    int64_t s[1] = {d0};
    return bv_tensor_make(data, dt, 1, s);
}
bv_tensor bv_tensor_make2(void *data, bv_dtype dt, int64_t d0, int64_t d1) {
    int64_t s[2] = {d0, d1};
    return bv_tensor_make(data, dt, 2, s);
}
bv_tensor bv_tensor_make3(void *data, bv_dtype dt, int64_t d0, int64_t d1, int64_t d2) {
    int64_t s[3] = {d0, d1, d2};
    return bv_tensor_make(data, dt, 3, s);
}
bv_tensor bv_tensor_make4(void *data, bv_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t s[4] = {d0, d1, d2, d3};
    return bv_tensor_make(data, dt, 4, s);
}

bv_tensor bv_tensor_arena(bv_arena *a, bv_dtype dt, int ndim, const int64_t *shape) {
    bv_tensor t = bv_tensor_make(NULL, dt, ndim, shape);
    t.data = bv_arena_alloc(a, bv_tensor_nbytes(&t));
    return t;
}

bv_tensor bv_tensor_arena_zeros(bv_arena *a, bv_dtype dt, int ndim, const int64_t *shape) {
    bv_tensor t = bv_tensor_make(NULL, dt, ndim, shape);
    t.data = bv_arena_calloc(a, bv_tensor_nbytes(&t));
    return t;
}

int64_t bv_tensor_numel(const bv_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t bv_tensor_nbytes(const bv_tensor *t) {
    return (size_t)bv_tensor_numel(t) * bv_dtype_size(t->dtype);
}

bool bv_tensor_is_contiguous(const bv_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool bv_tensor_same_shape(const bv_tensor *a, const bv_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

void *bv_tensor_ptr(const bv_tensor *t) {
    return (char *)t->data + t->offset * (int64_t)bv_dtype_size(t->dtype);
}

void *bv_tensor_at(const bv_tensor *t, const int64_t *idx) {
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) {
        BV_DASSERT(idx[i] >= 0 && idx[i] < t->shape[i], "index %lld out of range %lld in dim %d",
                   (long long)idx[i], (long long)t->shape[i], i);
        off += idx[i] * t->strides[i];
    }
    return (char *)t->data + off * (int64_t)bv_dtype_size(t->dtype);
}

char *bv_shape_str(int ndim, const int64_t *shape, char *buf, size_t n) {
    size_t p = 0;
    p += (size_t)snprintf(buf + p, n - p, "[");
    for (int i = 0; i < ndim && p < n; i++)
        p += (size_t)snprintf(buf + p, n - p, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (p < n) snprintf(buf + p, n - p, "]");
    return buf;
}

char *bv_tensor_shape_str(const bv_tensor *t, char *buf, size_t n) { return bv_shape_str(t->ndim, t->shape, buf, n); }

bv_status bv_tensor_reshape(const bv_tensor *t, int ndim, const int64_t *shape, bv_tensor *out) {
    char sb[96];
    if (ndim < 0 || ndim > BV_MAX_DIMS)
        return bv_error_set(BV_ERR_SHAPE, "reshape: rank %d outside 0..%d", ndim, BV_MAX_DIMS);
    if (!bv_tensor_is_contiguous(t))
        return bv_error_set(BV_ERR_SHAPE, "reshape: tensor %s is not contiguous (call contiguous first)",
                            bv_tensor_shape_str(t, sb, sizeof sb));
    int64_t known = 1, infer = -1;
    int64_t s[BV_MAX_DIMS];
    for (int i = 0; i < ndim; i++) {
        s[i] = shape[i];
        if (s[i] == -1) {
            if (infer >= 0) return bv_error_set(BV_ERR_SHAPE, "reshape: more than one -1 in the new shape");
            infer = i;
        } else if (s[i] < 0) {
            return bv_error_set(BV_ERR_SHAPE, "reshape: negative dimension %lld", (long long)s[i]);
        } else {
            known *= s[i];
        }
    }
    int64_t n = bv_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || n % known != 0)
            return bv_error_set(BV_ERR_SHAPE, "reshape: cannot infer -1 for %lld elements of %s",
                                (long long)n, bv_tensor_shape_str(t, sb, sizeof sb));
        s[infer] = n / known;
        known *= s[infer];
    }
    if (known != n)
        return bv_error_set(BV_ERR_SHAPE, "reshape: %s has %lld elements, new shape has %lld",
                            bv_tensor_shape_str(t, sb, sizeof sb), (long long)n, (long long)known);
    bv_tensor r = bv_tensor_make(t->data, t->dtype, ndim, s);
    r.offset = t->offset;
    *out = r;
    return BV_OK;
}

bv_status bv_tensor_permute(const bv_tensor *t, const int *perm, bv_tensor *out) {
    int seen[BV_MAX_DIMS] = {0};
    bv_tensor r = *t;
    for (int i = 0; i < t->ndim; i++) {
        int p = perm[i];
        if (p < 0 || p >= t->ndim || seen[p])
            return bv_error_set(BV_ERR_SHAPE, "permute: entry %d (=%d) is not a permutation of 0..%d", i, p,
                                t->ndim - 1);
        seen[p] = 1;
        r.shape[i] = t->shape[p];
        r.strides[i] = t->strides[p];
    }
    *out = r;
    return BV_OK;
}

bv_status bv_tensor_transpose(const bv_tensor *t, int d0, int d1, bv_tensor *out) {
    if (d0 < 0) d0 += t->ndim;
    if (d1 < 0) d1 += t->ndim;
    if (d0 < 0 || d0 >= t->ndim || d1 < 0 || d1 >= t->ndim)
        return bv_error_set(BV_ERR_SHAPE, "transpose: dims (%d, %d) out of range for rank %d", d0, d1, t->ndim);
    int perm[BV_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) perm[i] = i;
    perm[d0] = d1;
    perm[d1] = d0;
    return bv_tensor_permute(t, perm, out);
}

bv_status bv_tensor_slice(const bv_tensor *t, int dim, int64_t start, int64_t end, int64_t step,
                          bv_tensor *out) {
    if (dim < 0) dim += t->ndim;
    if (dim < 0 || dim >= t->ndim)
        return bv_error_set(BV_ERR_SHAPE, "slice: dim %d out of range for rank %d", dim, t->ndim);
    if (step < 1) return bv_error_set(BV_ERR_SHAPE, "slice: step %lld must be >= 1", (long long)step);
    int64_t n = t->shape[dim];
    if (start < 0) start += n;
    if (end < 0) end += n;
    if (start < 0) start = 0;
    if (start > n) start = n;
    if (end < 0) end = 0;
    if (end > n) end = n;
    if (start > end) start = end;
    bv_tensor r = *t;
    r.offset += start * t->strides[dim];
    r.shape[dim] = (end - start + step - 1) / step;
    r.strides[dim] = t->strides[dim] * step;
    *out = r;
    return BV_OK;
}

bv_status bv_broadcast_shapes(int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                              int64_t *sout) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int ia = na - n + i, ib = nb - n + i;
        int64_t a = ia >= 0 ? sa[ia] : 1, b = ib >= 0 ? sb[ib] : 1;
        if (a != b && a != 1 && b != 1)
            return bv_error_set(BV_ERR_SHAPE, "broadcast: dimension %d of sizes %lld and %lld do not match", i,
                                (long long)a, (long long)b);
        sout[i] = a == 1 ? b : a;
    }
    *nout = n;
    return BV_OK;
}

bv_status bv_tensor_broadcast_to(const bv_tensor *t, int ndim, const int64_t *shape, bv_tensor *out) {
    char sb[96];
    if (ndim < t->ndim || ndim > BV_MAX_DIMS)
        return bv_error_set(BV_ERR_SHAPE, "broadcast_to: cannot broadcast %s to rank %d",
                            bv_tensor_shape_str(t, sb, sizeof sb), ndim);
    bv_tensor r = *t;
    r.ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        int j = t->ndim - ndim + i;
        int64_t sz = j >= 0 ? t->shape[j] : 1, st = j >= 0 ? t->strides[j] : 0;
        if (sz == shape[i]) {
            r.shape[i] = sz;
            r.strides[i] = sz == 1 ? 0 : st;
        } else if (sz == 1) {
            r.shape[i] = shape[i];
            r.strides[i] = 0;
        } else {
            return bv_error_set(BV_ERR_SHAPE, "broadcast_to: dimension %d of %s is %lld, target is %lld", j,
                                bv_tensor_shape_str(t, sb, sizeof sb), (long long)sz, (long long)shape[i]);
        }
    }
    *out = r;
    return BV_OK;
}

double bv_tensor_get(const bv_tensor *t, const int64_t *idx) {
    double v;
    bv_dtype_convert(&v, BV_DTYPE_F64, bv_tensor_at(t, idx), t->dtype, 1);
    return v;
}

void bv_tensor_set(bv_tensor *t, const int64_t *idx, double v) {
    bv_dtype_convert(bv_tensor_at(t, idx), t->dtype, &v, BV_DTYPE_F64, 1);
}

void bv_tensor_copy_into(bv_tensor *dst, const bv_tensor *src) {
    char s1[96], s2[96];
    BV_ASSERT(bv_tensor_same_shape(dst, src), "copy: shapes %s and %s differ", bv_tensor_shape_str(dst, s1, 96),
              bv_tensor_shape_str(src, s2, 96));
    BV_ASSERT(bv_tensor_is_contiguous(dst), "copy: destination must be contiguous");
    int64_t n = bv_tensor_numel(src);
    if (n == 0) return;
    size_t es = bv_dtype_size(src->dtype), ed = bv_dtype_size(dst->dtype);
    char *d = bv_tensor_ptr(dst);
    if (bv_tensor_is_contiguous(src)) {
        bv_dtype_convert(d, dst->dtype, bv_tensor_ptr(src), src->dtype, (size_t)n);
        return;
    }
    /* odometer over all but the last dim, inner loop along the last dim */
    int nd = src->ndim;
    int64_t idx[BV_MAX_DIMS] = {0};
    int64_t inner = nd ? src->shape[nd - 1] : 1, istride = nd ? src->strides[nd - 1] : 0;
    int64_t outer = n / inner;
    const char *base = (const char *)src->data;
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = src->offset;
        for (int k = 0; k < nd - 1; k++) off += idx[k] * src->strides[k];
        if (src->dtype == dst->dtype) {
            for (int64_t i = 0; i < inner; i++) memcpy(d + i * ed, base + (off + i * istride) * (int64_t)es, es);
        } else {
            for (int64_t i = 0; i < inner; i++)
                bv_dtype_convert(d + i * ed, dst->dtype, base + (off + i * istride) * (int64_t)es, src->dtype, 1);
        }
        d += inner * (int64_t)ed;
        for (int k = nd - 2; k >= 0; k--) {
            if (++idx[k] < src->shape[k]) break;
            idx[k] = 0;
        }
    }
}

bv_tensor bv_tensor_contiguous(bv_arena *a, const bv_tensor *t, bool always_copy) {
    if (!always_copy && bv_tensor_is_contiguous(t)) return *t;
    bv_tensor r = bv_tensor_arena(a, t->dtype, t->ndim, t->shape);
    bv_tensor_copy_into(&r, t);
    return r;
}
