/* optim/adamw.h - AdamW (decoupled weight decay, bias correction) over the parameter store's flat
 * gradient layout (src/params.h), with parameter groups, and global-norm gradient clipping.
 *
 * The update of PyTorch's torch.optim.AdamW (foreach=False, amsgrad=False, maximize=False), for
 * parameter i of group g at step t (1-based, counted by the optimizer), lr_g = lr * lr_scale_g:
 *   w <- w - lr_g * wd_g * w                  (decoupled weight decay, first)
 *   m <- beta1 * m + (1 - beta1) * g
 *   v <- beta2 * v + (1 - beta2) * g^2
 *   w <- w - lr_g / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * in fp32 as PyTorch computes it: every Python scalar (1 - lr_g wd_g, beta1, 1 - beta1, ...) formed
 * in double and rounded to float, the two moment updates fused as torch's AVX2 kernels fuse them;
 * bit-identical to torch 1.13 on CPU (docs/optim.md says what exactly and how it is tested).
 *
 * Groups: every trainable parameter belongs to exactly one group; a group has an LR scale (its
 * peak LR over the base LR; the schedule's factor multiplies every group alike) and a weight decay.
 * bv_adamw_init builds the groups from name rules: a parameter goes to the first group one of
 * whose prefixes starts its name, else to the default group; then parameters whose name contains
 * a `no_decay` substring, or with fewer than 2 dimensions (norms, biases), get weight decay 0.
 *
 * State: the moments m and v are flat fp32 buffers in the gradient buffer's layout
 * (numel_trainable), and the step count; that is the whole optimizer state (a checkpoint saves
 * m, v and step; loading them resumes exactly).
 * Sharded (ZeRO-1, recipes/dist.h): bv_adamw_init_shard keeps the moments of some ranges of the
 * flat layout only, packed one after the other (range i's element e at m[range_moff[i] + e - lo]),
 * and a step updates those elements alone; the update is element-wise, so the elements it updates
 * are bit-identical to those of an unsharded step.
 * Owns: m, v and the per-parameter tables. Borrows the store.
 * Must not: know about models, recipes or schedules (the caller passes the LR of each step).
 */
#ifndef BV_OPTIM_ADAMW_H
#define BV_OPTIM_ADAMW_H

#include "src/params.h"

typedef struct {
    const char *name;
    const char *const *prefixes; /* NULL-terminated name prefixes */
    double lr_scale;             /* group LR / base LR */
    double weight_decay;         /* < 0: the optimizer's */
} bv_adamw_group_rule;

typedef struct {
    double beta1, beta2, eps, weight_decay;
    const char *const *no_decay; /* NULL-terminated name substrings with weight decay 0; NULL: none
                                    (1-d parameters get none regardless) */
    int n_rules;
    const bv_adamw_group_rule *rules; /* groups beyond the default one */
} bv_adamw_cfg;

typedef struct {
    size_t lo, hi; /* [lo, hi) of the flat gradient layout */
} bv_range;

typedef struct {
    bv_adamw_cfg cfg;            /* copied; strings borrowed from the caller */
    const bv_params *p;
    float *m, *v;                /* [numel_shard]: the owned ranges' moments, packed */
    int n_ranges;                /* owned ranges, in order (unsharded: one, [0, numel_trainable)) */
    bv_range *ranges;
    size_t *range_moff;          /* [n_ranges] where each range's moments start in m and v */
    size_t numel_shard;          /* sum of the ranges' lengths */
    int64_t step;                /* steps taken */
    int n_params;                /* trainable parameters */
    int *param;                  /* [n_params] store index of each */
    int *group;                  /* [n_params] group of each (0 = default, 1 + rule index) */
    double *lr_scale, *wd;       /* [n_params] group LR scale, weight decay (0: no decay); doubles,
                                    as torch keeps them, so 1 - lr wd rounds as it does there */
} bv_adamw;

/* The defaults: betas (0.9, 0.999), eps 1e-8, weight decay 0.01, no_decay {"norm", "bias", "embed"}. */
void bv_adamw_cfg_default(bv_adamw_cfg *c);
/* Assign the groups and allocate the zeroed moments (p finalized). BV_ERR_ARG naming the field
 * when a hyperparameter is out of range (betas in [0, 1), eps >= 0, weight decay >= 0, a rule's
 * lr_scale >= 0), naming the rule when a group rule matches no trainable parameter; BV_ERR_NOMEM
 * naming the bytes. On error *o holds nothing (bv_adamw_free is harmless). */
bv_status bv_adamw_init(bv_adamw *o, const bv_params *p, const bv_adamw_cfg *cfg);
/* The same, keeping and updating only the moments of `ranges` (n_ranges of them, ascending and
 * disjoint, within numel_trainable; copied). */
bv_status bv_adamw_init_shard(bv_adamw *o, const bv_params *p, const bv_adamw_cfg *cfg, int n_ranges,
                              const bv_range *ranges);
void bv_adamw_free(bv_adamw *o);
/* One step with base LR `lr` and weight-decay factor `wd_scale` (1, or 0 after the stage-II
 * switch) on the store's gradients; bumps the store's version. p is the store given to init.
 * Element-wise, OpenMP over the elements: the result does not depend on the thread count. */
void bv_adamw_step(bv_adamw *o, bv_params *p, double lr, double wd_scale);

/* Global 2-norm of the first n gradients, accumulated in double in a fixed order that depends on
 * n alone (not on the thread count, nor on how the elements are shared between ranks): the sum
 * of squares of each chunk of BV_GRAD_NORM_CHUNK elements (four interleaved accumulators), then
 * the chunks' sums added in chunk order. A rank that holds some chunks computes their sums with
 * bv_grad_sumsq_chunks; once the sums of every chunk are gathered, bv_grad_norm_of_chunks gives
 * the same bits as bv_grad_norm. */
#define BV_GRAD_NORM_CHUNK ((size_t)16384)
static inline size_t bv_grad_norm_chunks(size_t n) { return (n + BV_GRAD_NORM_CHUNK - 1) / BV_GRAD_NORM_CHUNK; }
double bv_grad_norm(const float *g, size_t n);
/* out[c] = sum of squares of chunk c, for the chunks of [lo, hi) (lo a multiple of the chunk, hi
 * too or n); out has bv_grad_norm_chunks(n) entries (the others untouched). */
void bv_grad_sumsq_chunks(const float *g, size_t n, size_t lo, size_t hi, double *out);
double bv_grad_norm_of_chunks(const double *chunk_sumsq, size_t n);
/* Scale g by max_norm / (norm + 1e-6) when that is < 1 (PyTorch clip_grad_norm_, in fp32 as it
 * computes it: c = (1 / ((float)norm + 1e-6f)) * (float)max_norm); returns whether it clipped.
 * max_norm <= 0: off. A non-finite norm clips nothing (torch would turn every gradient into NaN;
 * check bv_grad_first_nonfinite and skip the step instead). */
bool bv_grad_clip(float *g, size_t n, double norm, double max_norm);
/* Index of the first non-finite gradient element (-1: all finite). */
int64_t bv_grad_first_nonfinite(const float *g, size_t n);

#endif
