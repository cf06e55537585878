/* metrics.h - a run's metrics as files people can look at: RUN_DIR/metrics.jsonl (one JSON object
 * per line) and TensorBoard event files (src/tb_events.h) beside it.
 *
 * A record is a step and a set of named scalars (training: loss, lr, grad_norm, samples_per_s, ...;
 * validation: val_l1, ...), written as {"step": N, "kind": "train", "loss": ..., ...} with the
 * values printed with 17 significant digits (%.17g: they read back bit-identical; -0 as -0.0),
 * non-finite values as null. Every record is also a TensorBoard scalar "<kind>/<name>" at that step.
 *
 * Resume: bv_metrics_open with resume_step = S keeps the records of steps <= S and drops the
 * rest (a run killed after its last checkpoint logged steps a resume will log again), rewriting
 * metrics.jsonl atomically; TensorBoard gets a new event file (TensorBoard itself shows the newest
 * value of a step) that starts with a SessionLog START at step S + 1.
 *
 * Reading (bv_metrics_read, for the resume and `bitvla plot`): one record per line; a line that is
 * not an object with an integer "step" and a string "kind" is an error naming the file and line,
 * except a last line without its newline, which is a record cut off by a kill and is skipped.
 * Owns: the open files. Must not: know what the metrics mean.
 */
#ifndef BV_METRICS_H
#define BV_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

typedef struct bv_metrics bv_metrics;

typedef struct {
    const char *name;
    double value;
} bv_metric;

/* Open (create) RUN_DIR/metrics.jsonl and, with tensorboard, a new event file in RUN_DIR (RUN_DIR
 * and its parents are created when missing).
 * resume_step < 0: a new run (an existing metrics.jsonl is BV_ERR_ARG, the file left alone); else
 * keep steps <= it (a missing metrics.jsonl starts empty; a malformed line is BV_ERR_FORMAT naming
 * the file and line, the file left alone). */
bv_status bv_metrics_open(bv_metrics **out, const char *run_dir, bool tensorboard, int64_t resume_step);
/* Append one record (flushed to the OS at once, so a kill loses nothing logged before it).
 * `kind` e.g. "train" or "val". */
bv_status bv_metrics_log(bv_metrics *m, int64_t step, const char *kind, int n, const bv_metric *values);
/* fsync both files (before a checkpoint commits). */
bv_status bv_metrics_sync(bv_metrics *m);
void bv_metrics_close(bv_metrics *m);
/* Path of the run's metrics.jsonl (borrowed, lives as long as m). */
const char *bv_metrics_path(const bv_metrics *m);

/* One record as read back. Borrowed: valid during the callback only. */
typedef struct {
    int64_t step;
    const char *kind;
    int n;                   /* the numeric members other than "step" and "kind", in file order */
    const bv_metric *values; /* null reads as NaN; members of other types (strings...) are skipped */
    int64_t line;            /* 1-based line number in the file */
} bv_metrics_record;
typedef bv_status (*bv_metrics_record_fn)(void *ctx, const bv_metrics_record *rec);

/* Call fn on every record of the metrics.jsonl at `path`, in file order; a non-OK status from fn
 * stops the reading and is returned. A missing or unreadable file is BV_ERR_IO, a malformed line
 * BV_ERR_FORMAT ("PATH: line N: ..."); empty lines are skipped. */
bv_status bv_metrics_read(const char *path, bv_metrics_record_fn fn, void *ctx);

#endif
