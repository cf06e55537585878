/* models/siglip.h - the SigLIP vision tower of BitVLA (spec section 1): patch embedding (Conv2d
 * with kernel = stride = patch, computed as patchify + GEMM) plus a learned position embedding,
 * then pre-LN encoder layers x + out_proj(MHA(LN1(x))); x + fc2(act(fc1(LN2(x)))).
 * q, k, v, out_proj, fc1 and fc2 are BitLinear layers with vision_config's vit_weight_bits /
 * vit_act_bits (32/32: plain full-precision linear layers); everything else is full precision.
 * There is no post-layernorm and no pooling head: the features are the output of the layer that
 * vision_feature_layer selects, all patch tokens kept.
 *
 * Parameter names (registered under `prefix`, e.g. "vision_tower.vision_model."):
 *   embeddings.patch_embedding.{weight (D, C, p, p), bias (D)}, embeddings.position_embedding.weight (P, D),
 *   encoder.layers.N.{layer_norm1,layer_norm2}.{weight,bias} (D),
 *   encoder.layers.N.self_attn.{q_proj,k_proj,v_proj,out_proj}.{weight (D, D), bias (D)},
 *   encoder.layers.N.mlp.fc1.{weight (M, D), bias (M)}, encoder.layers.N.mlp.fc2.{weight (D, M), bias (D)}.
 * Every layer of the config is registered (so checkpoints load whole); only the first n_run run.
 *
 * Owns: the BitLinear caches of its layers and the layer table (bv_siglip_free).
 * Must not: own parameter values (they live in the bv_params store it registered them in).
 */
#ifndef BV_MODELS_SIGLIP_H
#define BV_MODELS_SIGLIP_H

#include "models/nn_impl.h"

typedef struct {
    bv_nn_norm ln1, ln2;
    bv_nn_linear q, k, v, o, fc1, fc2;
} bv_siglip_layer;

typedef struct {
    bv_vision_config cfg;
    int n_run;       /* encoder layers the forward runs (from vision_feature_layer) */
    int patch_w, patch_b, pos;
    bv_siglip_layer *layers; /* cfg.num_hidden_layers */
} bv_siglip;

/* Layers run for a vision_feature_layer value (HF hidden_states indexing: hidden_states[0] is the
 * embedding output, hidden_states[k] the output of layer k; -1 the last layer). */
int bv_siglip_layers_run(const bv_vision_config *c, int vision_feature_layer);

/* Register the tower's parameters in p (before bv_params_finalize). */
bv_status bv_siglip_init(bv_siglip *m, const bv_vision_config *c, int vision_feature_layer, bv_params *p,
                         const char *prefix);
void bv_siglip_free(bv_siglip *m);
/* Random initialisation (after finalize): linears N(0, 0.02^2), position embedding N(0, 0.02^2),
 * norms 1 and biases 0. */
void bv_siglip_init_weights(const bv_siglip *m, bv_params *p, uint64_t seed);

/* pix (N, C, H, W), already normalised -> features (N, P, D), the output of layer n_run (the
 * embeddings when n_run is 0). layer_out, if not NULL, receives the output of each run layer
 * (n_run vars; the stage III alignment loss reads them). */
bv_var *bv_siglip_forward(bv_graph *g, const bv_params *p, bv_siglip *m, bv_var *pix, bv_var **layer_out);

#endif
