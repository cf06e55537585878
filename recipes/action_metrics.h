/* recipes/action_metrics.h - offline metrics of predicted action chunks against their targets: the
 * one piece of code behind the trainer's periodic validation (recipes/train.c: val_l1,
 * val_gripper_acc) and `bitvla eval offline` (eval/offline.h). Definitions in docs/evaluation.md,
 * "Offline metrics".
 *
 * Fed a batch at a time: a "unit", numbered by the caller (the trainer's validation unit, the
 * evaluation's batch index), with the predicted and the target chunks normalised as the model
 * sees them (OFT's BOUNDS_Q99, src/action_norm.h), (rows, chunk, A) each, and optionally each
 * row's task (its instruction text). Per unit:
 *   l1            mean |pred - target| over the unit's rows, steps and dimensions, computed by the
 *                 training loss's own kernel (src/kernels/loss.h bv_k_l1_loss_fwd, a float): the
 *                 bits of the loss the forward returns for that batch
 *   dim sums      per action dimension, the sum of |pred - target| normalised (in double, row by
 *                 row), and in robot units: both chunks un-normalised with the statistics
 *                 (bv_action_norm_invert; the targets are the normalised ones, so clipped at q01
 *                 and q99 as in training; unnormalised dimensions such as the gripper are as is)
 *   gripper       over every step of every row: whether the predicted and the target gripper
 *                 (dimension gripper_dim, in robot units) agree on open vs closed, binarised as
 *                 OFT does at deployment (bv_action_gripper_open: 2a - 1 > 0)
 * Overall figures combine the units in unit order, whatever order they were added in and however
 * they were spread over processes (bv_am_sum): the same units give the same bits. The overall l1
 * is the mean of the units' l1 weighted by rows / batch_size (a full unit weighs exactly 1, so
 * full units give the plain mean of their losses: what the trainer has always logged as val_l1).
 * Per task (the samples of one instruction) everything is summed element by element in double.
 *
 * Owns: its units and task groups (bv_am_free); a summary owns its arrays (bv_am_summary_free).
 * Must not: run a model, read data, or know about MPI (bv_am_sum takes the sum as a callback).
 */
#ifndef BV_RECIPES_ACTION_METRICS_H
#define BV_RECIPES_ACTION_METRICS_H

#include <stdint.h>

#include "src/action_norm.h"
#include "src/common.h"

typedef struct {
    int chunk;           /* actions per row (8) */
    int action_dim;      /* A (7) */
    int batch_size;      /* rows of a full unit: a unit of r rows weighs r / batch_size in the overall l1 */
    int gripper_dim;     /* the gripper's action dimension (A - 1 for LIBERO); -1: none, no accuracy */
    bv_action_norm norm; /* the action statistics the targets were normalised with (dim = A) */
} bv_am_cfg;

typedef struct bv_am bv_am;

/* Errors (BV_ERR_ARG): a size < 1, A beyond BV_ACTION_NORM_MAX_DIM, statistics of another width,
 * a gripper_dim outside [-1, A). */
bv_status bv_am_init(bv_am **out, const bv_am_cfg *c);
void bv_am_free(bv_am *m); /* harmless on NULL */

/* Add unit `unit` (>= 0, each at most once): `rows` (1..batch_size) rows of predicted and target
 * chunks, (rows, chunk, A) normalised; tasks: each row's instruction (copied), or NULL to group
 * nothing (the rows then count overall only). */
void bv_am_add(bv_am *m, int64_t unit, const float *pred, const float *target, int rows, const char *const *tasks);

/* Combine the units [0, n_units) of every process: `sum(ctx, x, n)` must replace x[0..n) by its
 * element-wise sum over the processes (all of them call bv_am_sum with the same n_units; e.g.
 * recipes/dist.h bv_dist_sum_doubles). A unit is added on one process only, the others holding
 * zeros, so the sums are exact. Afterwards the overall figures of every process are those of all
 * the units; the task groups stay this process's own. */
void bv_am_sum(bv_am *m, int64_t n_units, void (*sum)(void *ctx, double *x, int64_t n), void *ctx);

typedef struct {
    char *task;       /* the instruction; NULL for the overall group */
    int64_t samples;  /* rows */
    int64_t units;    /* units with rows in the group (overall: units added) */
    double l1;        /* mean |pred - target| normalised (NaN without samples); overall: see the top */
    double dim_l1[BV_ACTION_NORM_MAX_DIM];     /* per dimension, normalised */
    double dim_l1_raw[BV_ACTION_NORM_MAX_DIM]; /* per dimension, robot units */
    int64_t gripper_correct, gripper_total;    /* steps whose open/closed agree, steps scored */
    double gripper_acc; /* gripper_correct / gripper_total; NaN without a gripper dimension or samples */
} bv_am_group;

typedef struct {
    int chunk, action_dim, gripper_dim;
    bv_am_group all;
    int n_tasks;
    bv_am_group *tasks; /* sorted by instruction (strcmp) */
} bv_am_summary;

void bv_am_summarize(const bv_am *m, bv_am_summary *out);
void bv_am_summary_free(bv_am_summary *s);

#endif
