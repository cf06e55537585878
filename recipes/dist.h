/* recipes/dist.h - data-parallel training over MPI ranks (docs/distributed.md): the one module
 * that calls MPI (besides `bitvla version` asking for the library's version). Evaluation shares
 * its episodes out over the ranks through the tally and the integer sum at the end of the file
 * (eval/closed_loop.h).
 *
 * Launch. `mpirun -np N bitvla train ...`: bv_dist_init sees Open MPI's (or PMI's) environment
 * and initialises MPI; a process started without a launcher runs alone and never touches MPI (no
 * singleton start-up). Every rank runs the whole trainer on its slice of each global batch
 * (data/loader.h); rank 0 alone writes files.
 *
 * One optimizer step on rank r of N, with A micro-batches per rank (K = A * N in all):
 *   - each micro-batch's backward is seeded with 1/K, so the reduced gradient is the mean;
 *   - exact mode (recipe distributed.exact): each micro-batch's gradient is computed alone and the
 *     A of them are summed in a fixed binary tree T (a binary counter: T(n) = T(h) + T(n - h), h
 *     the largest power of two below n), holding at most floor(log2 A) partial sums; otherwise
 *     the backward passes accumulate in the gradient buffer;
 *   - the flat gradient buffer is cut into buckets (distributed.bucket_mb, boundaries on
 *     BV_GRAD_NORM_CHUNK elements, the last parameters first) and each bucket into N pieces,
 *     piece k owned by rank k. During the last micro-batch's backward, a bucket whose gradients
 *     are final (autograd's hooks: every parameter in it is past its first use in the tape) is
 *     folded with the local partial sums and its reduction started at once, non-blocking, in
 *     bucket order: an all-to-all brings every rank's copy of piece r to rank r, which sums the N
 *     copies in the same tree T (rank order) - a reduce-scatter whose result does not depend on
 *     the message timing. At most two buckets are in this phase at a time (each needs a
 *     receive buffer of one bucket). Then, without sharding, an all-gather of the summed pieces
 *     gives every rank the whole reduced gradient (the ring all-reduce's 2 (N-1)/N x gradient
 *     bytes per rank in all); with ZeRO-1 the pieces stay where they are: each rank clips and
 *     updates its pieces only (optim/adamw.h, moments of 1/N of the parameters) and the updated
 *     weights are all-gathered after the step.
 * Rank-count invariance: when A is a power of two (1 included), T over K micro-batches splits into
 * T over each rank's A and T over the N ranks, so every N with the same global batch and micro-
 * batch gives the same gradient, loss, norm and weights bit for bit (given the same per-rank
 * thread count and kernels: a micro-batch's gradient must not depend on the rank computing it).
 * Other A: equal to rounding.
 *
 * Failure: an error on one rank is reported by that rank ("rank R of N: ...") and ends the job
 * with MPI_Abort; a rank that dies is noticed by mpirun, which ends the others.
 *
 * Owns: the buckets, the receive buffers, the partial sums, duplicated communicators.
 * Must not: read files, or know the model beyond the parameter store and the autograd tape.
 */
#ifndef BV_RECIPES_DIST_H
#define BV_RECIPES_DIST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "autograd/autograd.h"
#include "optim/adamw.h"
#include "src/params.h"

/* ---- the process ---- */
typedef struct {
    int rank, world;             /* 0, 1 without a launcher */
    int local_rank, local_size;  /* on this machine (Open MPI's OMPI_COMM_WORLD_LOCAL_*; else 0, 1) */
    bool active;                 /* MPI initialised */
} bv_dist_proc;

/* Initialise MPI when a launcher started this process (environment OMPI_COMM_WORLD_SIZE,
 * PMIX_RANK or PMI_SIZE), else fill in a world of one. BV_ERR_INTERNAL naming the call when MPI
 * fails to start. */
bv_status bv_dist_init(int *argc, char ***argv, bv_dist_proc *p);
/* End MPI (after every rank finished its work; a no-op without MPI). */
void bv_dist_finalize(void);
/* End the whole job now with exit status `code` (MPI_Abort; exit without MPI). */
_Noreturn void bv_dist_abort(int code);
/* Wait for every rank (no-op without MPI). */
void bv_dist_barrier(void);
/* Sum of one double over the ranks in rank order (the same bits on every rank). */
double bv_dist_sum_double(double x);

/* ---- one training run's gradient reduction ---- */
typedef struct {
    int rank, world;
    int accumulation;    /* A: micro-batches per rank per step */
    int zero;            /* 0 or 1 */
    bool exact;          /* tree-summed micro-batch gradients */
    double bucket_bytes; /* target bucket size */
} bv_dist_cfg;

typedef struct bv_dist bv_dist;

typedef struct {
    double wait_s;       /* time blocked waiting for messages in the last step */
    double comm_s;       /* time inside MPI calls in the last step (waits included) */
    double bytes_sent;   /* bytes this rank sent in the last step (gradients and weights) */
    int buckets;         /* buckets of the flat gradient buffer */
} bv_dist_stats;

/* Buckets and pieces for p's trainable parameters. Allocates the receive buffers (N > 1) and the
 * partial sums as needed (BV_ERR_NOMEM naming the bytes). */
bv_status bv_dist_open(bv_dist **d, bv_params *p, const bv_dist_cfg *c);
void bv_dist_free(bv_dist *d);
/* Bytes of receive buffers and partial sums the reduction holds (for the memory plan). */
double bv_dist_buffer_bytes(const bv_dist *d);
/* The ranges this rank owns under ZeRO-1 (its piece of every bucket, ascending), for
 * bv_adamw_init_shard; all of [0, numel_trainable) without sharding. */
int bv_dist_owned(const bv_dist *d, const bv_range **ranges);
/* Install the backward hooks on g (once; they act during the last micro-batch only). */
void bv_dist_attach(bv_dist *d, bv_graph *g);
/* Around each micro-batch a = 0 .. A-1 of a step (begin before the forward pass; end after the
 * backward). The end of the last one completes the reduction: without sharding every rank holds
 * the mean gradient in the whole buffer; with ZeRO-1, in its owned ranges. */
void bv_dist_micro_begin(bv_dist *d, int a);
bv_status bv_dist_micro_end(bv_dist *d, int a);
/* The 1/K each micro-batch's backward is seeded with. */
float bv_dist_seed(const bv_dist *d);
/* The step's loss from this rank's A micro-batch losses: the T-tree mean of all K, same on every
 * rank. */
double bv_dist_loss(bv_dist *d, const double *micro_losses);
/* The first non-finite element of the reduced gradient (-1: none) and its value, same on every
 * rank. */
int64_t bv_dist_first_nonfinite(bv_dist *d, float *value);
/* Global gradient norm (bv_grad_norm's bits) and clipping of what this rank updates. */
double bv_dist_grad_norm(bv_dist *d);
void bv_dist_clip(bv_dist *d, double norm, double max_norm);
/* After the optimizer step: ZeRO-1 all-gathers the updated weights (no-op otherwise). */
bv_status bv_dist_after_update(bv_dist *d);
/* Stream the sharded moments of o (ZeRO-1) in the unsharded layout, m[0, n) then v[0, n), to fp
 * on rank 0, one bucket at a time (a bucket's memory on rank 0, never the whole); every rank calls
 * it, the others with fp NULL. `what` names the file in messages. The checkpoint's optimizer file
 * is written through it (recipes/checkpoint.h, opt_data). */
bv_status bv_dist_write_moments(bv_dist *d, const bv_adamw *o, FILE *fp, const char *what);
/* Sum n doubles over the ranks element-wise (zeros where a rank has nothing: exact). */
void bv_dist_sum_doubles(bv_dist *d, double *x, int n);
const bv_dist_stats *bv_dist_last_stats(const bv_dist *d);

/* ---- independent work on every rank (evaluation episodes) ---- */

/* The job's ranks: MPI's world size, 1 without MPI. */
int bv_dist_world_size(void);
/* Sum n ints over the ranks element-wise, in place, on every rank (exact whatever the order).
 * Every rank calls it with the same n; a no-op without MPI. */
void bv_dist_sum_ints(int *x, int n);

/* A tally: ranks that each run their own share of a job, with nothing to exchange until the end,
 * keep each other informed of a few counters (work done, finished, failed) through a series of
 * all-gathers that each rank starts and tests at its own pace and never waits on: a progress bar
 * can count every rank's work, and a failure on one rank can stop the others. Every rank sees the
 * same counters from the same exchange, so a decision taken on them (stop once every rank says it
 * has finished) is the same on every rank, and they all stop after the same exchange. Only the
 * thread that initialised MPI may call these. */
typedef struct bv_dist_tally bv_dist_tally;
/* A tally of n counters per rank. */
bv_dist_tally *bv_dist_tally_open(int n);
/* Never blocks. With no exchange in flight, starts one with this rank's counters mine[0 .. n);
 * then tests the one in flight: true when it has completed, with every rank's counters in
 * all[world][n] (rank-major), false while it has not (the next call tests it again and ignores
 * mine). Without MPI: all = mine, true. */
bool bv_dist_tally_poll(bv_dist_tally *t, const int64_t *mine, int64_t *all);
/* Free it; no exchange may be in flight (stop after one that completed). */
void bv_dist_tally_free(bv_dist_tally *t);

/* T-tree sum of n arrays of len floats: arrays[0] = T(arrays[0..n)), in place (the others are
 * overwritten). Exposed for tests. */
void bv_dist_tree_sum(float **arrays, int n, size_t len);
double bv_dist_tree_sum_double(double *x, int n);

#endif
