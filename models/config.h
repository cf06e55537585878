/* models/config.h - the model configuration: an HF-style LLaVA composite config.json
 * (`vision_config` for SigLIP, `text_config` for BitNet, connector and token fields) plus this
 * project's action-head fields, and the built-in presets.
 *
 * Parsing rules (docs/models.md lists every key):
 *  - a required key that is missing, or any key with the wrong type or an invalid value, is an
 *    error naming the file, the key path (e.g. "text_config.num_key_value_heads") and what was
 *    expected;
 *  - optional keys have documented defaults (bv_config_defaults);
 *  - keys this project does not use are ignored (real HF configs carry dozens: architectures,
 *    torch_dtype, initializer_range, ...); in strict mode they are an error, which catches typos.
 * Every integer field has a documented range (the BV_CONFIG_MAX_* below; docs/models.md lists
 * them), checked before any product or quotient of fields is formed, by the parser and again by
 * bv_config_validate for configs built in code. Within these ranges every size the models derive
 * (parameter shapes, patch and action-token counts, action-head widths) fits comfortably in
 * int64, and the int-typed ones (patches per image, action tokens) in int. Whether such a model
 * fits in memory is a separate question, answered by models/build.h's plan.
 * Owns: nothing (plain values).
 */
#ifndef BV_MODELS_CONFIG_H
#define BV_MODELS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

/* Ranges of the integer keys (inclusive; the lower bound is 1 unless stated). */
#define BV_CONFIG_MAX_HIDDEN (1 << 16)        /* hidden_size, both towers */
#define BV_CONFIG_MAX_INTERMEDIATE (1 << 18)  /* intermediate_size, both towers */
#define BV_CONFIG_MAX_LAYERS 1024             /* num_hidden_layers */
#define BV_CONFIG_MAX_HEADS 1024              /* num_attention_heads, num_key_value_heads */
#define BV_CONFIG_MAX_PATCH 1024              /* vision_config.patch_size */
#define BV_CONFIG_MAX_IMAGE (1 << 14)         /* vision_config.image_size */
#define BV_CONFIG_MAX_CHANNELS 16             /* vision_config.num_channels */
#define BV_CONFIG_MAX_VOCAB ((int64_t)1 << 31) /* text_config.vocab_size; token indices lie below it */
#define BV_CONFIG_MAX_POSITIONS (1 << 24)     /* text_config.max_position_embeddings */
#define BV_CONFIG_MAX_ACTION 4096             /* proprio_dim, action_dim, num_actions_chunk */
#define BV_CONFIG_MAX_HEAD_BLOCKS 64          /* action_head_num_blocks (lower bound 0) */
/* vision_feature_layer lies in [-BV_CONFIG_MAX_LAYERS, BV_CONFIG_MAX_LAYERS - 1] (and within the
 * tower's layers). Real-valued keys: layer_norm_eps and rms_norm_eps in (0, 1], rope_theta in
 * (0, 1e12]. */

typedef enum {
    BV_ACT_GELU_TANH = 0, /* "gelu_pytorch_tanh", "gelu_new", "gelu_fast" */
    BV_ACT_GELU_ERF,      /* "gelu" (exact) */
    BV_ACT_RELU,          /* "relu" */
    BV_ACT_RELU2,         /* "relu2" (squared ReLU, BitNet) */
    BV_ACT_SILU,          /* "silu", "swish" */
} bv_act;

typedef struct {
    int hidden_size, intermediate_size, num_hidden_layers, num_attention_heads;
    int patch_size, image_size, num_channels;
    double layer_norm_eps;
    bv_act hidden_act;
    int weight_bits; /* vit_weight_bits: 1 (ternary) or 32 */
    int act_bits;    /* vit_act_bits: 8 or 32 */
} bv_vision_config;

typedef struct {
    int hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads;
    double rope_theta, rms_norm_eps;
    int64_t vocab_size;
    bool tie_word_embeddings;
    int max_position_embeddings;
    bv_act hidden_act; /* relu2 for BitNet */
} bv_text_config;

typedef struct {
    bv_vision_config vision;
    bv_text_config text;
    bv_act projector_act;      /* projector_hidden_act: "gelu" */
    int vision_feature_layer;  /* -1 = output of the last kept encoder layer */
    int64_t image_token_index; /* <|image_pad|> */
    int64_t proprio_token_index;
    int proprio_dim, action_dim, num_actions_chunk, action_head_num_blocks;
} bv_vla_config;

/* Fill with the documented defaults of every optional key (required keys are set to 0). */
void bv_config_defaults(bv_vla_config *c);
/* Built-in presets: "bitvla-2b" (the full sizes of the spec), "tiny" (tests and the demo).
 * Returns BV_ERR_ARG naming the known presets for an unknown name. */
bv_status bv_config_preset(const char *name, bv_vla_config *c);
/* A preset name or a path to a config.json. */
bv_status bv_config_load(const char *preset_or_path, bool strict, bv_vla_config *c);
/* Parse JSON text; `label` names the source in messages (usually the file path). */
bv_status bv_config_parse(const char *json, size_t len, const char *label, bool strict, bv_vla_config *c);
/* The sections of a config, for checking only what a model built from some parts uses. */
typedef enum {
    BV_CONFIG_VISION = 1 << 0, /* vision_config and vision_feature_layer (a tower alone) */
    BV_CONFIG_TEXT = 1 << 1,   /* text_config (an LLM alone) */
    BV_CONFIG_JOINT = 1 << 2,  /* the keys that join them: projector, token ids, proprio and action fields */
    BV_CONFIG_ALL = BV_CONFIG_VISION | BV_CONFIG_TEXT | BV_CONFIG_JOINT,
} bv_config_section;
/* Every check of the sections: ranges of every field first (BV_CONFIG_MAX_*; real values finite
 * and in range, activations known), then consistency (divisibility, an even rotary head size,
 * vision_feature_layer within the tower, token ids inside the vocabulary and distinct). Errors
 * name `label`, the key path and the expected range or relation. */
bv_status bv_config_validate_sections(const bv_vla_config *c, unsigned sections, const char *label);
/* = bv_config_validate_sections(c, BV_CONFIG_ALL, label): what the parser and the presets run. */
bv_status bv_config_validate(const bv_vla_config *c, const char *label);
/* HF-style config.json text (malloc'd; caller frees). */
char *bv_config_to_json(const bv_vla_config *c);

const char *bv_act_name(bv_act a);
/* Derived sizes */
static inline int bv_config_vision_patches(const bv_vla_config *c) {
    int g = c->vision.image_size / c->vision.patch_size;
    return g * g;
}
static inline int bv_config_action_tokens(const bv_vla_config *c) { return c->num_actions_chunk * c->action_dim; }

#endif
