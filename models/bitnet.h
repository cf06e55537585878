/* models/bitnet.h - the BitNet b1.58 language model (HF modeling_bitnet, spec section 1).
 *
 * Layer: h = x + o_proj(attn_sub_norm(Attn(input_layernorm(x))));
 *        out = h + down_proj(ffn_sub_norm(act(gate_proj(y)) * up_proj(y))), y = post_attention_layernorm(h)
 * with act = relu2 for BitNet. All seven linear layers are BitLinear W1.58 A8 without biases.
 * Attention: grouped-query (num_key_value_heads), rotate-halves RoPE with text_config.rope_theta,
 * position ids cumsum(attention_mask) - 1 clamped at 0 (arange for right padding), causal or
 * bidirectional, padded keys masked. Then the final RMSNorm; the LM head is tied to embed_tokens
 * (a plain linear with embed_tokens.weight) or a separate full-precision lm_head.weight.
 *
 * Parameter names (registered under `prefix`, e.g. "language_model."):
 *   model.embed_tokens.weight (V, D), model.norm.weight (D), lm_head.weight (V, D) unless tied,
 *   model.layers.N.{input_layernorm,post_attention_layernorm}.weight (D),
 *   model.layers.N.self_attn.{q_proj (D, D), k_proj (Hkv*hd, D), v_proj (Hkv*hd, D), o_proj (D, D)}.weight,
 *   model.layers.N.self_attn.attn_sub_norm.weight (D),
 *   model.layers.N.mlp.{gate_proj (F, D), up_proj (F, D), down_proj (D, F)}.weight, model.layers.N.mlp.ffn_sub_norm.weight (F).
 *
 * Owns: the BitLinear caches of its layers and the layer table (bv_bitnet_free).
 * Must not: own parameter values.
 */
#ifndef BV_MODELS_BITNET_H
#define BV_MODELS_BITNET_H

#include "models/nn_impl.h"

typedef struct {
    bv_nn_norm in_norm, attn_sub_norm, post_norm, ffn_sub_norm;
    bv_nn_linear q, k, v, o, gate, up, down;
} bv_bitnet_layer;

typedef struct {
    bv_text_config cfg;
    int embed, lm_head; /* lm_head = -1 when tied */
    bv_nn_norm norm;
    bv_bitnet_layer *layers;
} bv_bitnet;

bv_status bv_bitnet_init(bv_bitnet *m, const bv_text_config *c, bv_params *p, const char *prefix);
void bv_bitnet_free(bv_bitnet *m);
/* Random initialisation (after finalize): linears and embeddings N(0, 0.02^2), norms 1. */
void bv_bitnet_init_weights(const bv_bitnet *m, bv_params *p, uint64_t seed);

/* ids I64 (B, T) -> input embeddings (B, T, D). Ids must be in [0, vocab) (callers validate). */
bv_var *bv_bitnet_embed(bv_graph *g, const bv_params *p, const bv_bitnet *m, const bv_tensor *ids);
/* Position ids (B, T) = max(cumsum(mask) - 1, 0) into pos (I64, B*T elements). */
void bv_bitnet_position_ids(int64_t *pos, const uint8_t *mask, int64_t B, int64_t T);
/* x (B, T, D) input embeddings, mask U8 (B, T) (1 = real token; NULL = all real) -> the hidden
 * states after the final norm (B, T, D). n_layers < 0 runs every layer (a smaller value is for
 * benchmarks and tests). */
bv_var *bv_bitnet_forward(bv_graph *g, const bv_params *p, bv_bitnet *m, bv_var *x, const uint8_t *mask, bool causal,
                          int n_layers);
/* h (B, T, D) -> logits (B, T, V) */
bv_var *bv_bitnet_logits(bv_graph *g, const bv_params *p, const bv_bitnet *m, bv_var *h);

#endif
