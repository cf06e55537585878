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
 * Data parallelism: every rank holds weights, caches and its own activations. Without sharding
 * it also holds all gradients and moments; ZeRO-1 shards the moments over the N ranks (moments/N
 * each), ZeRO-2 the gradients too (gradients/N; the reduce-scatter's bucket is not counted).
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
} bv_train_plan;

/* Per-module counts and bytes of a built model (any purpose; BV_MODEL_SHAPES is enough): modules
 * by parameter name, trainable from the store, ternary weights from the BitLinears; caches as
 * m->cache_bytes spreads over them. Fills mod[] and total; leaves the rest of the plan zero. */
void bv_plan_modules(const bv_model *m, bv_train_plan *p);

/* The plan of recipe r: builds its model shapes-only (r->model.config, train / freeze), then the
 * activations of a micro-batch of r->micro_batch rows with r->data.n_images images and
 * text_tokens text tokens (0: BV_PLAN_TEXT_TOKENS). Errors: the config's or a prefix that matches
 * nothing (bv_model_build's), prefixed with the recipe's file. */
bv_status bv_train_plan_make(bv_train_plan *p, const bv_recipe *r, int text_tokens);

/* Bytes one of n data-parallel ranks holds with ZeRO stage `zero` (0: no sharding, 1: moments,
 * 2: moments and gradients sharded over the n ranks). */
double bv_train_plan_rank_bytes(const bv_train_plan *p, int zero, int n);
/* The smallest n <= max_n of ranks with rank_bytes(zero, n) <= bytes_per_rank, or 0 when none
 * (without sharding: 1 or 0). */
int bv_train_plan_min_ranks(const bv_train_plan *p, int zero, double bytes_per_rank, int max_n);

#endif
