/* vla_batch.h - one batch of the VLA's inputs and targets, as the model (models/vla.h) takes it
 * and the data loader (data/loader.h), evaluation and the runtime produce it. Only the layout: the
 * model checks a batch against itself (bv_vla_batch_check).
 * Owns: nothing; the tensors are borrowed.
 */
#ifndef BV_VLA_BATCH_H
#define BV_VLA_BATCH_H

#include "src/tensor.h"

/* Tensors are borrowed; NULL when absent. Sequence layout: models/vla.h. */
typedef struct {
    const bv_tensor *input_ids;      /* I64 (B, T) */
    const bv_tensor *attention_mask; /* U8 (B, T), 1 = real token */
    const bv_tensor *pixel_values;   /* F32 (B, n_images, C, H, W), normalised */
    const bv_tensor *proprio;        /* F32 (B, proprio_dim) */
    const bv_tensor *action_mask;    /* U8 (B, T), 1 at the action tokens (action mode) */
    const bv_tensor *actions;        /* F32 (B, chunk, action_dim), targets (action mode, optional) */
    const bv_tensor *labels;         /* I64 (B, T), -100 ignored (LM mode, optional) */
} bv_vla_batch;

#endif
