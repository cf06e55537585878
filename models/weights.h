/* models/weights.h - loading and saving model parameters by their HF names (safetensors).
 *
 * Loading reads one .safetensors file, or a sharded checkpoint through its index
 * (`model.safetensors.index.json`, {"weight_map": {name: shard file}}), or a directory holding
 * either; tensors stored as F32, BF16, F16 or F64 are converted to the store's fp32.
 * File names are mapped to this project's names (the LLaVA-wrapped BitVLA layout, vla.h) by layout:
 *   LLAVA     names as they are: vision_tower.*, multi_modal_projector.*, language_model.*, proprio_projector.*, action_head.*
 *   LLAVA_HF  newer transformers: model.vision_tower.* -> vision_tower.*, model.multi_modal_projector.* ->
 *             multi_modal_projector.*, model.language_model.* -> language_model.model.*, lm_head.* -> language_model.lm_head.*
 *   SIGLIP    a standalone SigLIP: vision_model.* -> <vision_prefix>vision_model.* (default prefix
 *             "vision_tower."); a full SiglipModel's text_model.*, logit_scale and logit_bias are ignored
 *   BITNET    a standalone BitNet: model.* and lm_head.* -> <llm_prefix>... (default "language_model.")
 * AUTO picks the layout from the names. Always ignored: vision_model.post_layernorm.* and
 * vision_model.head.* (BitVLA has neither), *.rotary_emb.inv_freq (a buffer).
 * The parameters a file covers are all of them (LLAVA, LLAVA_HF) or those under the prefix (SIGLIP,
 * BITNET). Problems are collected over the whole checkpoint before anything is copied, and
 * reported together, by name: covered parameters the file lacks (missing; an error unless
 * allow_missing), file tensors that match no parameter (unexpected; an error unless
 * allow_unexpected), shapes that differ (expected vs found) and non-float dtypes (always errors).
 * On error the store is unchanged.
 *
 * Saving writes every parameter of the store under its name, as F32, BF16 or F16, atomically. Above
 * shard_bytes it writes HF-style shards <stem>-00001-of-0000N.safetensors beside the index
 * <stem>.safetensors.index.json (each file atomically, the index last).
 * Owns: nothing beyond the report's text (bv_weights_report_free).
 */
#ifndef BV_MODELS_WEIGHTS_H
#define BV_MODELS_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "src/params.h"

typedef enum {
    BV_WEIGHTS_AUTO = 0,
    BV_WEIGHTS_LLAVA,
    BV_WEIGHTS_LLAVA_HF,
    BV_WEIGHTS_SIGLIP,
    BV_WEIGHTS_BITNET,
} bv_weights_layout;

const char *bv_weights_layout_name(bv_weights_layout l);

typedef struct {
    bv_weights_layout layout; /* AUTO: detect */
    bool allow_missing;       /* missing covered parameters keep their values (listed in the report) */
    bool allow_unexpected;    /* tensors matching no parameter are skipped (listed in the report) */
    const char *vision_prefix; /* target of a standalone SigLIP; NULL = "vision_tower." */
    const char *llm_prefix;    /* target of a standalone BitNet; NULL = "language_model." */
    const char *const *skip_prefixes; /* NULL-terminated: tensors whose (mapped) names start with one of
                                         these are skipped, e.g. the parts a model was built without */
} bv_weights_opts;

typedef struct {
    bv_weights_layout layout;
    int n_files;
    int64_t n_loaded, n_missing, n_unexpected, n_ignored, n_bad; /* n_bad: mis-shaped or wrong dtype */
    char *details; /* every missing / unexpected / mis-shaped tensor, one per line (NULL if none) */
} bv_weights_report;

void bv_weights_report_free(bv_weights_report *r);

/* Load `path` into the finalized store p (opts may be NULL: defaults). report may be NULL. On
 * error, bv_error_msg() starts with the counts and lists the names (up to the message's size);
 * report->details holds all of them. Bumps p's version on success. */
bv_status bv_weights_load(bv_params *p, const char *path, const bv_weights_opts *opts, bv_weights_report *report);

/* *yes = whether the checkpoint at path holds a tensor whose name, mapped as bv_weights_load would
 * (opts may be NULL), starts with `prefix` (e.g. "action_head."). */
bv_status bv_weights_has_prefix(const char *path, const bv_weights_opts *opts, const char *prefix, bool *yes);

#define BV_WEIGHTS_DEFAULT_SHARD_BYTES (2ull << 30)
/* Save every parameter to path (a .safetensors name) as dt (F32, BF16 or F16); shard_bytes 0 =
 * never shard. Removes a stale file of the other form (single file vs index) under the same name. */
bv_status bv_weights_save(const bv_params *p, const char *path, bv_dtype dt, uint64_t shard_bytes);

#endif
