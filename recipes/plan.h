/* recipes/plan.h - the memory plan of a training run, per module: what `bitvla info --recipe`
 * prints (docs/training.md, "Memory: the training plan").
 *
 * What it is for: before a run, how many bytes each module of the model takes while it trains
 * under a recipe, and how many machines of a given memory data-parallel training needs:
 *   weights      4 B per parameter (fp32 masters, bv_params values)
 *   gradients    4 B per trainable parameter (bv_params grads)
 *   moments      8 B per trainable parameter (AdamW m and v, optim/adamw.h)
 *   caches       per ternary (BitLinear) weight: int8 codes + the fp32 dequantized copy = 5 B
 *                (+ 0.25 B of 2-bit codes when the integer forward is on), as models/build.c
 *                plans them; frozen BitLinears have them too
 *   activations  bv_vla_plan_forward (forward + backward, action mode) of one micro-batch of the
 *                longest realistic prompt: BOS + n_images * patches image tokens + the proprio
 *                token + `text_tokens` of chat template and instruction + chunk * action_dim
 *                action tokens + EOS; one total, not per module.
 * Which parameters train comes from the recipe's model.train / model.freeze prefixes (the model
 * is built shapes-only: bv_model_build with BV_MODEL_SHAPES, nothing allocated). The config is
 * the recipe's model.config (the trainer uses init_from's config.json when it has one: the same
 * architecture for the committed recipes).
 *
 * Data parallelism (bv_train_plan_rank): what one of N ranks holds with ZeRO stage 0, 1 or 2:
 *   weights, caches, activations  every rank, whatever N
 *   gradients     full (ZeRO 0 and 1), / N (ZeRO-2)
 *   moments       full (ZeRO 0), / N (ZeRO-1 and 2)
 *   communication when N > 1: the gradient all-reduce keeps at most 2 buckets in flight, each with
 *                 a receive buffer of one bucket: 2 x distributed.bucket_mb x 1e6 rounded up to
 *                 whole norm chunks (recipes/dist.h cuts the flat gradient buffer into equal
 *                 element ranges), never more than the whole gradient
 *   exact partials  when distributed.exact and the per-rank accumulation A > 1: floor(log2 A) fp32
 *                 buffers of the full gradient, the partial sums of the micro-batch gradient tree
 *   save gather   rank 0 only, while a checkpoint is written, ZeRO >= 1 on N > 1: one bucket of
 *                 moments, gathered from the shards and streamed into the file
 *                 (bv_dist_write_moments); counted in a separate rank-0 peak
 * A is the recipe's accumulation, or global_batch / (micro_batch x N) when global_batch > 0 (it must
 * divide: the one error). ZeRO-2 is planned only (training implements distributed.zero 0 and 1).
 *
 * Owns: nothing beyond the bv_train_plan it fills (plain numbers).
 * Must not: allocate a model, read data or train.
 */
#ifndef BV_RECIPES_PLAN_H
#define BV_RECIPES_PLAN_H

#include "models/build.h"
#include "recipes/recipe.h"

typedef enum {
    BV_PLAN_VISION = 0,
    BV_PLAN_CONNECTOR,
    BV_PLAN_LLM_EMBED,
    BV_PLAN_LLM_LAYERS,
    BV_PLAN_LLM_HEAD,
    BV_PLAN_PROPRIO,
    BV_PLAN_ACTION_HEAD,
    BV_PLAN_MODULES,
} bv_plan_module_id;

typedef struct {
    const char *name; /* "vision tower", "connector", ... (static) */
    int64_t params, trainable, ternary, ternary_tensors;
    double weights, grads, moments, caches; /* bytes */
} bv_plan_module;

/* Text tokens of the longest realistic prompt beside the image, proprio and action tokens: the
 * chat template's system prompt and the instruction (bv_train_plan_make's default). */
#define BV_PLAN_TEXT_TOKENS 40

typedef struct {
    bv_plan_module mod[BV_PLAN_MODULES];
    bv_plan_module total;  /* sums (name "total") */
    int micro_batch;       /* rows of the planned micro-batch */
    int64_t tokens;        /* its sequence length T = 3 + n_images * image_tokens + text + action tokens */
    int n_images, image_tokens, text_tokens, action_tokens; /* image_tokens: per image */
    double activations;    /* bytes: bv_vla_plan_forward of that micro-batch, forward + backward */
    double bytes;          /* weights + grads + moments + caches + activations */
    double physical;       /* bv_mem_physical() (0: unknown) */
    double max_trainable_tensor; /* bytes of the largest trainable parameter (fp32): a gradient
                                    bucket holds whole parameters, so it can be this large */
} bv_train_plan;

/* What one of world_size data-parallel ranks holds (bytes), bv_train_plan_rank's result. */
typedef struct {
    int world_size, zero;
    int accumulation;     /* per-rank micro-batches per optimizer step (A) */
    int64_t global_batch; /* micro_batch x A x world_size */
    double weights, caches, activations; /* every rank */
    double grads, moments;               /* sharded over the ranks or not, as zero says */
    double comm;                         /* all-reduce buckets in flight (0 on one rank) */
    double exact_partials;               /* exact accumulation's partial sums (0 unless exact, A > 1) */
    double bytes;                        /* the sum of the above: every rank, throughout a step */
    double save_gather;                  /* rank 0 only, while a checkpoint is written */
    double rank0_peak;                   /* bytes + save_gather */
} bv_rank_plan;

/* Per-module counts and bytes of a built model (any purpose; BV_MODEL_SHAPES is enough): modules
 * by parameter name, trainable from the store, ternary weights from the BitLinears; caches as
 * m->cache_bytes spreads over them. Fills mod[] and total; leaves the rest of the plan zero. */
void bv_plan_modules(const bv_model *m, bv_train_plan *p);

/* The plan of recipe r: builds its model shapes-only (r->model.config, train / freeze), then the
 * activations of a micro-batch of r->micro_batch rows with r->data.n_images images and
 * text_tokens text tokens (0: BV_PLAN_TEXT_TOKENS). Errors: the config's or a prefix that matches
 * nothing (bv_model_build's), prefixed with the recipe's file. */
bv_status bv_train_plan_make(bv_train_plan *p, const bv_recipe *r, int text_tokens);

/* The plan of one of world_size (>= 1) ranks training recipe r with ZeRO stage zero (0, 1, 2): the
 * items of the header above; p is r's plan (bv_train_plan_make). Error: BV_ERR_ARG naming r's file,
 * global_batch, micro_batch and world_size when r->global_batch > 0 is not a multiple of
 * micro_batch x world_size (*out zeroed). */
bv_status bv_train_plan_rank(const bv_train_plan *p, const bv_recipe *r, int world_size, int zero, bv_rank_plan *out);
/* The bytes every rank holds with ZeRO stage zero whatever the number of ranks (no N takes them
 * off): weights + caches + activations, + gradients (zero < 2), + moments (zero 0), + the exact
 * partial sums when they do not depend on N (no global_batch). Above a rank's memory, no N fits.
 * what (may be NULL) receives the items' names, "weights + caches + activations + gradients". */
double bv_train_plan_floor(const bv_train_plan *p, const bv_recipe *r, int zero, char *what, size_t what_len);
/* The smallest world size n <= max_n whose rank-0 peak (bv_train_plan_rank; with_save false: its
 * bytes, what every rank holds outside a checkpoint save) is <= bytes_per_rank, counting only the n
 * the global batch allows (global_batch / (micro_batch x n) whole); 0 when none. at (may be NULL)
 * receives the plan at that n, or when none fits the plan at the allowed n with the least of that
 * measure (world_size 0 when no n is allowed). */
int bv_train_plan_min_ranks(const bv_train_plan *p, const bv_recipe *r, int zero, bool with_save, double bytes_per_rank,
                            int max_n, bv_rank_plan *at);

#endif
