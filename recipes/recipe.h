/* recipes/recipe.h - a training recipe: one JSON file in recipes/ that says what model to train
 * from what, on what data, with what optimizer and schedule, for how long, and what to log and
 * keep (docs/recipes.md lists every key with its type, default, range and meaning).
 *
 * File layout (every section optional except "model" and "data"; unknown keys and wrong types are
 * errors naming the file and the key path, e.g. "recipes/x.json: 'optimizer.betas[1]' must be a
 * number in [0, 1), got \"0.9\""):
 *   {
 *     "name": "libero_spatial",
 *     "model": {"config": "bitvla-2b" | "path/config.json", "init_from": null | "CKPT_OR_HF_DIR",
 *               "allow_missing": false, "train": ["prefix", ...] | null (all), "freeze": [...],
 *               "seed": 0},
 *     "tokenizer": "path/tokenizer.json",
 *     "data": {"shards": "DIR", "val_shards": null | "DIR", "dataset_name": null,
 *              "image_size": 224, "n_images": 2, "augment": true, "threads": 2, "prefetch": 0,
 *              "seed": 0,
 *              "synth": null | {"episodes": 64, "val_episodes": 8, "image_size": 224, "tasks": 0,
 *                               "seed": 1, "rlds": "DIR", "tokenizer_vocab": 500}},
 *     "optimizer": {"lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01,
 *                   "no_decay": ["norm", "bias", "embed"] (name substrings; 1-d tensors too),
 *                   "clip_grad_norm": 0 (off) | max norm,
 *                   "groups": [{"name": "vision", "prefixes": ["vision_tower."], "lr": 8e-5,
 *                               "weight_decay": null (the optimizer's)}]},
 *     "schedule": {"type": "constant" | "cosine" | "polynomial", "warmup_steps": 0,
 *                  "min_lr_ratio": 0, "power": 1.0, "weight_decay_off_step": -1 (never)},
 *     "steps": 10001, "micro_batch": 2, "accumulation": 8, "seed": 7,
 *     "validation": {"every": 0 (off), "batches": 8},
 *     "checkpoint": {"every": 0 (only at the end), "keep": 3},
 *     "logging": {"every": 1, "tensorboard": true},
 *     "guard": {"max_nonfinite": 5},
 *     "global_batch": 0 (micro_batch x accumulation x ranks) | samples per step,
 *     "distributed": {"zero": 0 | 1, "bucket_mb": 25, "exact": true}
 *   }
 * Paths are relative to the current directory (as every bitvla command takes them).
 *
 * Overrides: `--set key.path=value` (the `overrides` of bv_recipe_load) edit the JSON before it is
 * parsed, in order; the value is read as JSON when it parses as JSON (numbers, true/false/null,
 * arrays, objects, quoted strings) and as a string otherwise; the key path must exist in the
 * schema (a typo is an error naming it); `[N]` indexes an array (N = its length appends), and
 * objects missing (or null) on the way are made.
 * Global batch = micro_batch x accumulation x ranks (the recipe does not know the ranks), or
 * global_batch when set (> 0): then accumulation = global_batch / (micro_batch x ranks), which must
 * divide; so one recipe trains the same way on any rank count (docs/distributed.md).
 * Groups: a parameter joins the first group one of whose prefixes starts its name; the others use
 * the optimizer's lr and weight_decay.
 *
 * Owns: every string and array of a bv_recipe (bv_recipe_free).
 * Must not: build models, open data or train: it only reads, checks and writes recipes.
 */
#ifndef BV_RECIPES_RECIPE_H
#define BV_RECIPES_RECIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "optim/schedule.h"
#include "src/common.h"

#define BV_RECIPE_MAX_GROUPS 16

typedef struct {
    char *name;
    char **prefixes; /* NULL-terminated */
    double lr;       /* absolute peak LR of the group (absent in the file: optimizer.lr) */
    double weight_decay; /* < 0: the optimizer's */
} bv_recipe_group;

typedef struct {
    char *name;
    char *source; /* the file it was read from (bv_recipe_parse: its label, "<memory>" when NULL) */

    struct {
        char *config;    /* preset name or config.json path */
        char *init_from; /* NULL: random initialisation */
        bool allow_missing;
        char **train;  /* NULL-terminated prefixes; NULL: every parameter */
        char **freeze; /* NULL-terminated; NULL: none */
        uint64_t seed;
    } model;

    char *tokenizer; /* tokenizer.json path */

    struct {
        char *shards;
        char *val_shards;   /* NULL: no validation data */
        char *dataset_name; /* NULL: the manifest's */
        int image_size, n_images;
        bool augment;
        int threads, prefetch;
        uint64_t seed;
        bool synth; /* make the shards with the built-in task when they are missing */
        struct {
            int episodes, val_episodes, image_size, tasks;
            bool unique_colour; /* the easier scenes (data/synth_env.h) */
            uint64_t seed;
            char *rlds; /* where the RLDS dataset is written (NULL: beside the shards) */
            int tokenizer_vocab; /* BPE vocabulary of the tokenizer trained on the instructions
                                    when `tokenizer` does not exist (0: do not train one) */
        } synth_opts;
    } data;

    struct {
        double lr, beta1, beta2, eps, weight_decay, clip_grad_norm;
        char **no_decay; /* NULL-terminated name substrings */
        int n_groups;
        bv_recipe_group groups[BV_RECIPE_MAX_GROUPS];
    } optimizer;

    struct {
        bv_lr_kind type;
        int64_t warmup_steps;
        double min_lr_ratio, power;
        int64_t weight_decay_off_step; /* < 0: never */
    } schedule;

    int64_t steps;
    int micro_batch, accumulation;
    int global_batch; /* > 0: samples per optimizer step over all ranks; accumulation is then
                         global_batch / (micro_batch x ranks) (recipes/train.h) */
    uint64_t seed;

    struct {
        int64_t every; /* 0: off */
        int batches;
    } validation;
    struct {
        int64_t every; /* 0: only at the end */
        int keep;
    } checkpoint;
    struct {
        int64_t every;
        bool tensorboard;
    } logging;
    struct {
        int max_nonfinite;
    } guard;
    struct {
        int zero;         /* 0: every rank keeps all AdamW moments; 1: ZeRO-1 (moments sharded) */
        double bucket_mb; /* gradient bucket size of the all-reduce, MB (1e6 bytes) */
        bool exact;       /* micro-batch gradients summed in a fixed tree (bit-identical for any
                             rank count: recipes/dist.h); false: accumulated in place */
    } distributed;
} bv_recipe;

/* Every default (the table above); strings and string lists NULL (the parser fills in the
 * default lists, such as optimizer.no_decay, when the file leaves them out). Allocates nothing. */
void bv_recipe_defaults(bv_recipe *r);
/* Read a recipe file, apply the overrides ("key.path=value", n of them) and check every value.
 * Errors (BV_ERR_IO / FORMAT / ARG) name the file and the key path. On error *r is zeroed. */
bv_status bv_recipe_load(bv_recipe *r, const char *path, int n_overrides, const char *const *overrides);
/* The same from JSON text; `label` names it in messages (NULL: "<memory>"); a recipe without
 * "name" gets the label's file name without ".json". */
bv_status bv_recipe_parse(bv_recipe *r, const char *json, size_t len, const char *label, int n_overrides,
                          const char *const *overrides);
/* The resolved recipe (every key, defaults filled in) as JSON text, malloc'd; parsing it back
 * gives the same recipe. Saved in every checkpoint. */
char *bv_recipe_to_json(const bv_recipe *r);
/* Frees every string and list and zeroes *r (safe on a zeroed recipe). */
void bv_recipe_free(bv_recipe *r);
/* The i-th key path of the schema, in file order ("model.config", "optimizer.betas", then the keys
 * of a group as "optimizer.groups[].lr"); NULL past the last. For docs checks and completion. */
const char *bv_recipe_key(int i);

#endif
