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
 * Owns: nothing (plain values).
 */
#ifndef BV_MODELS_CONFIG_H
#define BV_MODELS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

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
/* Consistency checks (divisibility, ranges, token ids inside the vocabulary). */
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
