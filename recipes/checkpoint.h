/* recipes/checkpoint.h - training checkpoints: what a run keeps so that it can be resumed exactly,
 * loaded by `bitvla forward` / `transformers`, or used as the start of the next stage.
 *
 * A run directory holds RUN_DIR/checkpoints/step-NNNNNNNN/ (8 digits), each with:
 *   model.safetensors        every parameter, fp32, HF names (models/weights.h; sharded above 2 GiB
 *                            as model-0000k-of-0000n.safetensors + model.safetensors.index.json)
 *   optimizer.safetensors    AdamW moments per trainable parameter: "exp_avg.<name>",
 *                            "exp_avg_sq.<name>" (fp32), metadata "step" (the optimizer's count);
 *                            always the whole, unsharded layout, whatever the ranks kept (ZeRO-1
 *                            streams it from them), so any rank count resumes it
 *   trainer_state.json       {"step", "epoch", "batch", "skipped", "nonfinite_in_row", "samples",
 *                            "seed", "data_seed", "model_seed", "version"}: the position of the data
 *                            stream (the next batch to load), the schedule position (= step), the
 *                            seeds every random draw is keyed by (there is no other RNG state)
 *   recipe.json              the resolved recipe (recipes/recipe.h)
 *   config.json              the model config (models/config.h)
 *   dataset_statistics.json  the training data's statistics (to un-normalise actions)
 *   tokenizer.json           the tokenizer the run used
 * and RUN_DIR/checkpoints/latest, a symbolic link to the newest complete one.
 *
 * Atomicity: a checkpoint is written into a temporary directory and renamed into place whole
 * (src/atomic_file.h); `latest` is replaced by renaming a new link over it, after the directory is
 * in place. A run killed at any point therefore leaves `latest` at a complete checkpoint (or
 * absent), never at a half one; leftovers are temporaries that the next write removes.
 * Older checkpoints beyond `keep` are deleted after `latest` moves.
 *
 * Owns: nothing it returns beyond the malloc'd strings documented per function.
 * Must not: know the recipe's meaning, build models or open data.
 */
#ifndef BV_RECIPES_CHECKPOINT_H
#define BV_RECIPES_CHECKPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include "optim/adamw.h"
#include "src/safetensors.h"
#include "src/params.h"

typedef struct {
    int64_t step;             /* optimizer steps done */
    int64_t epoch, batch;     /* the next global batch of the data stream (the same for any rank count) */
    int64_t skipped;          /* steps skipped by the non-finite guard, in total */
    int64_t nonfinite_in_row; /* consecutive skipped steps at the end */
    int64_t samples;          /* training samples consumed (global) */
    uint64_t seed, data_seed, model_seed;
} bv_trainer_state;

typedef struct {
    const bv_params *params;
    const bv_adamw *opt;          /* NULL: no optimizer state */
    bv_st_data_fn opt_data;       /* non-NULL: writes the moments' bytes (m[0, n) then v[0, n) of the
                                     flat layout) instead of reading opt->m, opt->v: sharded state
                                     streamed from the ranks (recipes/dist.h) */
    void *opt_data_ctx;
    const bv_trainer_state *state;
    const char *recipe_json;      /* text of recipe.json (NULL: not written) */
    const char *config_json;      /* text of config.json */
    const char *statistics_path;  /* copied as dataset_statistics.json (NULL: none) */
    const char *tokenizer_path;   /* copied as tokenizer.json (NULL: none) */
} bv_ckpt_contents;

/* RUN_DIR/checkpoints/step-NNNNNNNN (malloc'd). */
char *bv_ckpt_path(const char *run_dir, int64_t step);
/* Write checkpoint `c->state->step` of RUN_DIR atomically, move `latest` to it and keep the newest
 * `keep` checkpoints. Errors name the checkpoint and the file; on error `latest` is unchanged. */
bv_status bv_ckpt_save(const char *run_dir, const bv_ckpt_contents *c, int keep);
/* The checkpoint `latest` points at in RUN_DIR (malloc'd path), or NULL with BV_ERR_IO naming the
 * run directory when there is none. */
bv_status bv_ckpt_latest(const char *run_dir, char **path);
/* Read a checkpoint's trainer_state.json. */
bv_status bv_ckpt_read_state(const char *ckpt_dir, bv_trainer_state *s);
/* Load a checkpoint's weights into p (every parameter must be there) and, when opt is given, its
 * optimizer moments and step (every trainable parameter of opt must have them). */
bv_status bv_ckpt_load(const char *ckpt_dir, bv_params *p, bv_adamw *opt);
/* Whether `dir` looks like a checkpoint of this format (has trainer_state.json). */
bool bv_ckpt_is_checkpoint(const char *dir);

#endif
