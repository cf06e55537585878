/* params.h - the parameter store: named parameters in flat contiguous buffers.
 *
 * Owns: the name table, the flat value buffer (all parameters, fp32) and the flat gradient
 * buffer (trainable parameters only). Optimizer moments (optim/) use the gradient buffer's layout,
 * so one loop updates everything, one all-reduce per bucket reduces it and a checkpoint is a
 * handful of memcpy's.
 *
 * Layout (fixed by bv_params_finalize): trainable parameters first, in registration order, then
 * frozen ones. Parameter i's value is values[offset_i .. offset_i+numel_i); if it is trainable, its
 * gradient is grads[offset_i .. offset_i+numel_i) (same offset). Frozen parameters have no
 * gradient storage. Changing which parameters train means building a new store (a new stage).
 *
 * Names are HF tensor names (`../shared/spec/bitvla.md` section 1), e.g.
 * "vision_model.encoder.layers.0.self_attn.q_proj.weight".
 * Must not: know about autograd or models (autograd/ wraps entries as graph leaves).
 */
#ifndef BV_PARAMS_H
#define BV_PARAMS_H

#include <stdbool.h>

#include "src/tensor.h"

typedef struct {
    char *name;
    int ndim;
    int64_t shape[BV_MAX_DIMS];
    int64_t numel;
    bool trainable;
    size_t offset; /* in elements, valid after finalize (external parameters: none) */
    bool external;          /* not in the flat buffer: its value is borrowed (bv_params_set_external) */
    const void *ext_data;   /* external: the borrowed value, or NULL (a shape only, e.g. a BitLinear
                               weight whose packed form lives in its layer's cache) */
    bv_dtype ext_dtype;     /* external: the value's dtype (F32 or BF16) */
} bv_param;

typedef struct {
    bv_param *items;
    int n, cap;
    float *values;          /* [numel_total], 64-byte aligned */
    float *grads;           /* [numel_trainable] or NULL when nothing trains */
    size_t numel_total;
    size_t numel_trainable; /* trainable parameters occupy values[0 .. numel_trainable) */
    bool finalized;
    uint64_t version;       /* bumped by bv_params_mark_updated after every change of the values */
} bv_params;

void bv_params_init(bv_params *p);
void bv_params_free(bv_params *p);
/* Register a parameter (before finalize). Returns its index, or -1 with an error message when the
 * name is a duplicate or the shape is invalid. */
int bv_params_add(bv_params *p, const char *name, int ndim, const int64_t *shape, bool trainable);
/* Set trainable for every parameter whose name starts with `prefix` ("" = all); before finalize.
 * Returns how many matched. */
int bv_params_set_trainable(bv_params *p, const char *prefix, bool trainable);
/* Keep parameter i out of the flat buffers (before finalize): it does not train and its value is
 * borrowed from elsewhere, set after finalize with bv_params_set_external_data. The runtime uses it
 * for what a bundle keeps packed (ternary weights: shape only) or in another dtype (a bf16
 * embedding table read in place from the mapped file). */
void bv_params_set_external(bv_params *p, int i);
/* The borrowed value of external parameter i: `data` (numel elements of dtype F32 or BF16, which
 * must outlive the store's use) or NULL. */
void bv_params_set_external_data(bv_params *p, int i, const void *data, bv_dtype dtype);
/* Bytes finalize allocates: 4 per parameter for the values, 4 more per trainable one for the
 * gradients (a double: a plan, compared before anything is allocated). */
double bv_params_bytes(const bv_params *p);
/* Compute the layout and allocate zeroed buffers. The sizes come from the config, so nothing here
 * aborts: BV_ERR_NOMEM, naming the bytes, when bv_params_bytes exceeds the physical memory
 * (bv_mem_check) or an allocation fails; the store is then as before (not finalized). */
bv_status bv_params_finalize(bv_params *p) __attribute__((warn_unused_result));
/* Index of `name`, or -1. */
int bv_params_find(const bv_params *p, const char *name);
/* Value view (contiguous, F32; an external parameter's borrowed value and dtype, data NULL when it
 * has none) and gradient pointer (NULL when frozen) of parameter i. */
bv_tensor bv_params_value(const bv_params *p, int i);
float *bv_params_grad(const bv_params *p, int i);
void bv_params_zero_grad(bv_params *p);
/* Record that the values changed (optimizer step, checkpoint load): caches derived from the
 * values, such as quantized weights, are recomputed when they see a new version. */
void bv_params_mark_updated(bv_params *p);

#endif
