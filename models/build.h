/* models/build.h - building a model for a purpose: the one way every program gets a BitVLA model
 * (or a piece of one: the vision tower alone, the LLM alone) with its parameter store.
 *
 * What it is for: a spec names the config (a preset, a config.json, or a config in memory), the
 * parts to build (bv_vla_parts), what the model is for (inference: no gradient buffers; training:
 * which parameters train, by name prefix; shapes only: nothing allocated), and where the values
 * come from (random with a seed, and/or a checkpoint loaded by HF names through models/weights.h).
 * bv_model_build then runs, in this order: load and validate the config (only the sections the
 * parts use), register the parameters, apply the trainable/frozen prefixes, plan the memory
 * (values + gradients + BitLinear caches + what the caller reserves, against the physical memory:
 * bv_mem_check) before allocating anything, allocate (bv_params_finalize), initialise, load.
 * Every error comes back as a bv_status with the context in front:
 *   "building model from config C.json: ckpt/: cannot load the weights (...): 1 missing, ..."
 * and leaves nothing allocated.
 *
 * Owns: the bv_model: its bv_vla (modules, BitLinear caches) and its bv_params store
 * (bv_model_free releases both). Not the spec's strings or the load report's text (the caller's).
 * Must not: run forwards, read data, or know about recipes: which prefixes a training stage
 * freezes is the caller's choice, passed in the spec.
 */
#ifndef BV_MODELS_BUILD_H
#define BV_MODELS_BUILD_H

#include "models/vla.h"
#include "models/weights.h"

typedef enum {
    BV_MODEL_INFER = 0, /* values only: nothing trains, no gradient buffers */
    BV_MODEL_TRAIN,     /* values, and gradients for the parameters `train` / `freeze` select */
    BV_MODEL_SHAPES,    /* names and shapes only, nothing allocated (sizes, `bitvla info`) */
} bv_model_purpose;

typedef struct {
    /* the config: `cfg` (copied) when given, and then `config` only names it in messages; else
     * `config`, a preset name or a config.json path (bv_config_load) */
    const char *config;
    const bv_vla_config *cfg;
    unsigned parts; /* bv_vla_parts bits; 0 = BV_VLA_ALL */
    bv_model_purpose purpose;
    /* TRAIN: NULL-terminated lists of name prefixes. `train` NULL: every parameter trains, else only
     * those under one of its prefixes ("" = all); then those under a `freeze` prefix do not.
     * A prefix that matches no parameter is an error (a typo would silently train the wrong set). */
    const char *const *train;
    const char *const *freeze;
    /* values: random (bv_vla_init_weights with `seed`) when there are no weights or when
     * load.allow_missing (parameters the checkpoint lacks keep them); then `weights` (a file, an
     * index or a directory; NULL: none) is loaded with `load` (layout, allow_missing, ...) */
    uint64_t seed;
    const char *weights;
    bv_weights_opts load;
    bv_weights_report *report; /* optional: the load's report, also when the load failed (it is zeroed
                                  first; free it with bv_weights_report_free) */
    bool no_forward;      /* the model never runs a forward (export reads the values only): its BitLinear
                             caches are not planned */
    double reserve_bytes; /* memory the caller will need beside the model (e.g. bv_vla_plan_forward of
                             its batches), added to the plan */
} bv_model_spec;

typedef struct {
    bv_vla vla;       /* the modules; vla.cfg is the config, vla.parts the parts */
    bv_params params; /* not finalized (no values) for BV_MODEL_SHAPES */
    /* the plan, in bytes (doubles: plans of absurd configs do not overflow) */
    double values_bytes, grads_bytes; /* bv_params_bytes, split */
    double cache_bytes;               /* BitLinear caches per ternary weight: training, int8 codes +
                                         fp32 dequantized copy (+ the 2-bit integer-forward form when it
                                         is on); inference, the 2-bit form alone (autograd.h) */
} bv_model;

/* Build the model the spec describes into *out (zeroed first; on error it is left zeroed and
 * nothing stays allocated). Errors: the config's (BV_ERR_IO / FORMAT / ARG ...), a prefix that
 * matches nothing (BV_ERR_ARG), a plan larger than the physical memory or a failed allocation
 * (BV_ERR_NOMEM, with the bytes), the load's; each message starts with
 * "building model from config <config>: ". */
bv_status bv_model_build(bv_model *out, const bv_model_spec *spec);
void bv_model_free(bv_model *m);

/* Bytes the model itself takes: values + gradients + BitLinear caches. */
double bv_model_bytes(const bv_model *m);

#endif
