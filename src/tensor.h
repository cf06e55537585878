/* tensor.h - the n-dimensional array descriptor and its views.
 *
 * A bv_tensor is a small value type (pass it by value or pointer): a borrowed data pointer, a
 * dtype, a shape of rank 0..5, strides and an element offset. It never owns memory: storage comes
 * from an arena (per-step activations), a parameter store (flat parameter/gradient buffers) or a
 * caller's buffer. Views (reshape, permute, transpose, slice, broadcast) only change the
 * descriptor; bv_tensor_contiguous() copies into a buffer the caller provides (usually an arena).
 *
 * Strides and offsets are in elements, not bytes. A broadcast dimension has stride 0.
 * Must not: allocate behind the caller's back, or hold references to arenas.
 */
#ifndef BV_TENSOR_H
#define BV_TENSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "src/arena.h"
#include "src/common.h"
#include "src/dtype.h"

#define BV_MAX_DIMS 5

typedef struct {
    void *data; /* base pointer; element (i0..) lives at data + (offset + sum i_k*strides[k]) */
    bv_dtype dtype;
    int ndim;
    int64_t shape[BV_MAX_DIMS];
    int64_t strides[BV_MAX_DIMS];
    int64_t offset;
} bv_tensor;

/* A contiguous (row-major) descriptor over `data`. ndim 0 is a scalar (numel 1). */
bv_tensor bv_tensor_make(void *data, bv_dtype dt, int ndim, const int64_t *shape);
/* Convenience: contiguous tensor over data with the shape given as arguments. */
bv_tensor bv_tensor_make1(void *data, bv_dtype dt, int64_t d0);
bv_tensor bv_tensor_make2(void *data, bv_dtype dt, int64_t d0, int64_t d1);
bv_tensor bv_tensor_make3(void *data, bv_dtype dt, int64_t d0, int64_t d1, int64_t d2);
bv_tensor bv_tensor_make4(void *data, bv_dtype dt, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/* Allocate a contiguous tensor from an arena (uninitialised / zeroed). */
bv_tensor bv_tensor_arena(bv_arena *a, bv_dtype dt, int ndim, const int64_t *shape);
bv_tensor bv_tensor_arena_zeros(bv_arena *a, bv_dtype dt, int ndim, const int64_t *shape);

int64_t bv_tensor_numel(const bv_tensor *t);
size_t bv_tensor_nbytes(const bv_tensor *t); /* numel * element size */
bool bv_tensor_is_contiguous(const bv_tensor *t);
bool bv_tensor_same_shape(const bv_tensor *a, const bv_tensor *b);
/* Pointer to the first element (data + offset). */
void *bv_tensor_ptr(const bv_tensor *t);
/* Pointer to element at index idx[ndim]. */
void *bv_tensor_at(const bv_tensor *t, const int64_t *idx);
/* "[2, 3, 4]" into buf (truncated to n bytes); returns buf. */
char *bv_shape_str(int ndim, const int64_t *shape, char *buf, size_t n);
char *bv_tensor_shape_str(const bv_tensor *t, char *buf, size_t n);

/* Views. They return BV_ERR_SHAPE with a message when the request does not fit the tensor. */
/* reshape: the tensor must be contiguous; one entry of shape may be -1 (inferred). */
bv_status bv_tensor_reshape(const bv_tensor *t, int ndim, const int64_t *shape, bv_tensor *out);
/* permute: perm is a permutation of 0..ndim-1; out dim i is in dim perm[i]. */
bv_status bv_tensor_permute(const bv_tensor *t, const int *perm, bv_tensor *out);
bv_status bv_tensor_transpose(const bv_tensor *t, int d0, int d1, bv_tensor *out);
/* slice [start, end) with step >= 1 along dim (negative start/end count from the end). */
bv_status bv_tensor_slice(const bv_tensor *t, int dim, int64_t start, int64_t end, int64_t step,
                          bv_tensor *out);
/* broadcast to a shape of rank >= t's (numpy rules: align right, size-1 dims expand). */
bv_status bv_tensor_broadcast_to(const bv_tensor *t, int ndim, const int64_t *shape, bv_tensor *out);
/* Broadcast shape of a and b (numpy rules). */
bv_status bv_broadcast_shapes(int na, const int64_t *sa, int nb, const int64_t *sb, int *nout,
                              int64_t *sout);

/* Copy any strided tensor into `dst`, a contiguous tensor of the same shape (dtype conversion
 * allowed). */
void bv_tensor_copy_into(bv_tensor *dst, const bv_tensor *src);
/* Contiguous copy of `t` allocated from the arena (or `t` itself if already contiguous and
 * `always_copy` is false). */
bv_tensor bv_tensor_contiguous(bv_arena *a, const bv_tensor *t, bool always_copy);

/* Read/write one element as double, for tests and tools (slow). */
double bv_tensor_get(const bv_tensor *t, const int64_t *idx);
void bv_tensor_set(bv_tensor *t, const int64_t *idx, double v);

#endif
