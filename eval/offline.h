/* eval/offline.h - offline evaluation of a policy on recorded data (`bitvla eval offline`, see
 * docs/evaluation.md, "Offline metrics"): a checkpoint or a bundle (eval/policy.h, the same batch
 * forward for both) predicts the action chunk of every sample of a shard directory (data/loader.h:
 * in sample order, the evaluation centre crop, no augmentation), and recipes/action_metrics.h
 * scores the chunks: L1 on normalised actions, per-dimension errors (normalised and in robot
 * units), gripper open/closed accuracy, overall and per task (instruction).
 *
 * Inputs (state) and targets are normalised with the policy's statistics (its training data's,
 * which it acts in and un-normalises with when deployed; the trainer's validation does the same),
 * not the directory's own, which differ for held-out data converted on its own; shard_statistics
 * uses the directory's instead, to compare (the old behaviour).
 *
 * Batch b holds samples [b B, (b + 1) B); the last one, completed by the loader wrapping around to
 * the start, is scored on its own samples only (each sample counts once: its l1 weighs rows / B).
 * So the first validation.batches batches of batch size micro_batch are the trainer's validation
 * units and give its val_l1 bit for bit for the same weights, when they do not reach that last
 * batch.
 *
 * Owns: a result owns its summary (bv_offline_result_free). Must not: print to stdout (the CLI
 * prints the table), know about flags.
 */
#ifndef BV_EVAL_OFFLINE_H
#define BV_EVAL_OFFLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/policy.h"
#include "recipes/action_metrics.h"
#include "src/common.h"

typedef struct {
    const char *policy_path;    /* a bundle, a checkpoint or a run directory (eval/policy.h) */
    bv_policy_opts policy_opts; /* how to load it (bv_policy_opts_default) */
    const char *shards;         /* a shard directory written by `bitvla convert` */
    int batch_size;             /* samples per forward (default 8) */
    int64_t batches;            /* the first this many batches (default 0: all, every sample once) */
    int loader_threads;         /* batches decoded ahead on this many threads (default 1; 0: inline) */
    bool progress;              /* a progress bar on stderr (default true) */
    bool shard_statistics;      /* normalise with the shards' own statistics, not the policy's */
} bv_offline_opts;

void bv_offline_opts_default(bv_offline_opts *o);

typedef struct {
    bv_am_summary m;       /* the metrics: overall and per task */
    int64_t batches;       /* batches run */
    int64_t shard_samples; /* samples in the shard directory */
    char source[1100];     /* the policy's path and what it is */
    char dataset[128];     /* the shards' dataset name */
    char statistics[1100]; /* the file of the statistics used (the policy's, or the shards' with shard_statistics) */
    bool norm_differs;     /* the shards' own statistics are not the policy's (q01, q99, mask; action or proprio) */
    double seconds;        /* wall time of the batches (loading not counted) */
} bv_offline_result;

/* Run it. Errors (BV_ERR_ARG / IO / FORMAT), each naming the file or value: a bad option, a shard
 * directory that is missing or not converted, a policy that cannot be loaded, a policy whose
 * action or state dimension differs from the shards', a batch the model refuses. */
bv_status bv_offline_run(const bv_offline_opts *o, bv_offline_result *r);
void bv_offline_result_free(bv_offline_result *r);

/* The result as JSON (docs/evaluation.md), written atomically: top-level "l1" and
 * "gripper_accuracy", then the per-dimension errors, which statistics normalised the data
 * ("statistics": "policy" or "shards", "statistics_path", "statistics_match_policy") and the
 * per-task figures. Errors name the path. */
bv_status bv_offline_write_json(const bv_offline_result *r, const bv_offline_opts *o, const char *path);

#endif
