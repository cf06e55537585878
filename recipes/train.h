/* recipes/train.h - a training run: `bitvla train RECIPE --out RUN_DIR`.
 *
 * One loop for every recipe (docs/training.md):
 *   for each optimizer step:
 *     accumulation x { next micro-batch -> forward -> loss -> backward (seeded 1/accumulation) }
 *     -> gradient reduction across ranks (recipes/dist.h; started during the last backward)
 *     -> non-finite guard -> global-norm clip
 *     -> AdamW step at the schedule's LR and weight-decay factor -> metrics
 *     -> periodic validation (L1 on normalised actions and gripper accuracy over held-out episodes,
 *        recipes/action_metrics.h) and checkpoints
 * The global batch is micro_batch x accumulation x world_size samples (or the recipe's
 * global_batch, which sets the accumulation per rank). With MPI every rank runs this loop on its
 * slice of each global batch; rank 0 alone writes the run directory, metrics and checkpoints
 * (ZeRO-1's moments are gathered to it), all ranks read a checkpoint to resume (any rank count
 * resumes any checkpoint: the files hold the unsharded layout).
 *
 * Determinism: every random draw is keyed by the recipe's seeds (model initialisation, the data
 * order and augmentation: data/loader.h), and the loop keeps no other random state. A checkpoint
 * records the step and the data stream's position, so a resumed run computes exactly what the
 * uninterrupted run would have: the same weights bit for bit and the same metrics (timings aside).
 *
 * Non-finite guard: a step whose loss or any gradient is NaN/Inf is skipped (no update; its
 * batches are consumed) and counted; after guard.max_nonfinite such steps in a row the run stops
 * with BV_ERR_NONFINITE naming the first non-finite value (the loss, or the gradient of a named
 * parameter) and the step. The last checkpoint stays as it was.
 *
 * Run directory: RUN_DIR/recipe.json (the resolved recipe), metrics.jsonl and TensorBoard events
 * (src/metrics.h), checkpoints/ (recipes/checkpoint.h). A new run refuses a non-empty RUN_DIR.
 *
 * Owns: everything it builds (model, loaders, optimizer, graph), freed before it returns.
 * Must not: parse command lines (cli/cmd_train.c does).
 */
#ifndef BV_RECIPES_TRAIN_H
#define BV_RECIPES_TRAIN_H

#include <stdio.h>

#include "recipes/checkpoint.h"
#include "recipes/recipe.h"

typedef struct {
    const bv_recipe *recipe;
    const char *run_dir;
    bool resume;        /* continue from RUN_DIR/checkpoints/latest */
    int64_t stop_at;    /* > 0: stop after this step (writing a checkpoint), as if interrupted there */
    int rank, world_size; /* 0, 1 for a single process; else MPI ranks (recipes/dist.h, bv_dist_init) */
    FILE *log;          /* messages (stderr); the progress bar goes to stderr too */
} bv_train_opts;

typedef struct {
    int64_t step;           /* optimizer steps done when the run ended */
    int64_t skipped;        /* steps the non-finite guard skipped */
    double loss;            /* training loss of the last step */
    double val_l1;          /* last validation L1 (NaN when none ran) */
    double val_gripper_acc; /* and its gripper open/closed accuracy (recipes/action_metrics.h) */
    double seconds;
    char checkpoint[1024];  /* the last checkpoint written ("" when none) */
} bv_train_result;

bv_status bv_train_run(const bv_train_opts *o, bv_train_result *res);

/* Make the recipe's data when it is missing and the recipe says how (data.synth): the built-in
 * tabletop task's demonstrations (data/synth.h) converted into training and validation shards
 * (data/convert.h), and a small BPE tokenizer trained on its instructions. Each output is written
 * atomically, so an interrupted preparation is redone, never used half-made. Nothing happens when
 * everything exists. */
bv_status bv_train_prepare_data(const bv_recipe *r, FILE *log);

#endif
