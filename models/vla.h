/* models/vla.h - the BitVLA model: SigLIP tower + connector + BitNet LLM (LLaVA layout) with the
 * OFT proprio projector and L1-regression action head (spec sections 1, 3 and 4).
 *
 * Sequence layout (spec section 4), per row of input_ids (B, T):
 *   BOS, <|image_pad|> x (n_images * P), <proprio_pad>, prompt text, action tokens x (chunk*action_dim), EOS, padding
 * Input embeddings: embed_tokens(ids), then the connector outputs replace the image-token rows in
 * order (row-major over (b, t); image 0 of a row before image 1), the proprio projector output
 * replaces the row's proprio token, and (action mode) the action-token rows are zeroed.
 * Action mode: bidirectional attention (padded keys masked), final norm, then the hidden state
 * one position BEFORE each action token (for the action token at p, the state at p-1, in order)
 * -> (B, chunk, action_dim*D) -> action head -> (B, chunk, action_dim); loss = L1 (mean) against
 * the target actions. LM mode (stages I-III): causal attention, logits (B, T, V), loss = mean
 * cross-entropy of logits[:, t] against labels[:, t+1] over the labels != -100.
 *
 * Parameter names: vision_tower.vision_model.*, multi_modal_projector.linear_{1,2}.*,
 * language_model.model.*, language_model.lm_head.weight (absent when tied),
 * proprio_projector.fc{1,2}.*, action_head.model.* (see siglip.h, bitnet.h, heads.h).
 * Which parameters train is the bv_params store's business (bv_params_set_trainable before
 * finalize); gradients flow through frozen parts to whatever before them trains.
 *
 * Owns: its modules (BitLinear caches, layer tables): bv_vla_free. Not the parameter store.
 */
#ifndef BV_MODELS_VLA_H
#define BV_MODELS_VLA_H

#include "models/bitnet.h"
#include "models/heads.h"
#include "models/siglip.h"
#include "src/vla_batch.h"

typedef enum {
    BV_VLA_VISION = 1 << 0,
    BV_VLA_CONNECTOR = 1 << 1,
    BV_VLA_LLM = 1 << 2,
    BV_VLA_PROPRIO = 1 << 3,
    BV_VLA_ACTION_HEAD = 1 << 4,
    BV_VLA_VLM = BV_VLA_VISION | BV_VLA_CONNECTOR | BV_VLA_LLM, /* stages I-III */
    BV_VLA_ALL = BV_VLA_VLM | BV_VLA_PROPRIO | BV_VLA_ACTION_HEAD,
} bv_vla_parts;

typedef enum { BV_VLA_MODE_ACTION = 0, BV_VLA_MODE_LM } bv_vla_mode;

typedef struct {
    bv_vla_config cfg;
    unsigned parts;
    bv_siglip vision;
    bv_mlp2 connector;
    bv_bitnet llm;
    bv_mlp2 proprio;
    bv_action_head head;
} bv_vla;

/* Register the parameters of `parts` (bv_vla_parts bits) in p, all trainable; the caller may then
 * freeze some and calls bv_params_finalize. On failure the model is freed. */
bv_status bv_vla_init(bv_vla *m, const bv_vla_config *c, unsigned parts, bv_params *p);
void bv_vla_free(bv_vla *m);
/* The model's BitLinear layers with ternary weights (W1.58: vision tower and LLM linears when
 * their config quantizes them), in parameter order: the weight's and bias's parameter indices
 * (b = -1 without bias), the cache the forward quantizes into, and whether the forward runs it
 * (false: a vision layer beyond vision_feature_layer, which the forward never reaches). Export
 * packs these weights; the runtime fills the caches from packed bytes. Returns how many; *out
 * (malloc'd, the caller frees it) may be NULL to count only. Borrowed pointers into m. */
typedef struct {
    int w, b;
    bv_qweight *cache;
    bool used;
} bv_vla_ternary;
int bv_vla_ternary_list(bv_vla *m, bv_vla_ternary **out);

/* Random initialisation of every registered parameter (after finalize); bumps p's version. */
void bv_vla_init_weights(const bv_vla *m, bv_params *p, uint64_t seed);

/* One batch: bv_vla_batch (src/vla_batch.h). */

/* Check a batch against the model and the mode: dtypes, shapes, values (ids in the vocabulary,
 * masks 0/1, finite floats), per-row counts (n_images*P image tokens, one proprio token when
 * proprio is given and none otherwise, chunk*action_dim action tokens, each after position 0 and
 * on a real token, as is the readout position before it). Errors name `label` (usually the file),
 * the tensor, and what was expected vs found. */
bv_status bv_vla_batch_check(const bv_vla *m, const bv_vla_batch *b, bv_vla_mode mode, const char *label);
/* The same checks against a config and the parts a model would be built with, before building it
 * (so bad inputs are reported before minutes of loading weights). */
bv_status bv_vla_batch_check_config(const bv_vla_config *c, unsigned parts, const bv_vla_batch *b, bv_vla_mode mode,
                                    const char *label);

/* Planned bytes of one bv_vla_forward of the checked batch b (and of the backward of its loss with
 * `backward`) on a model of config c: an upper bound on what the graph's arena and scratch buffer
 * take (activations, their gradients, the quantized inputs BitLinear saves, attention and norm
 * scratch at bv_num_threads() threads), counted op by op from the forward above, for every
 * parameter trainable (fewer need less), plus a 10% margin. Not counted: the parameters and the BitLinear caches
 * (models/build.h plans those). A double: absurd shapes cannot overflow it. Use it to refuse a
 * batch that cannot fit before running it (bv_mem_check); tests/test_build.c checks it against
 * the arena's high-water mark. */
double bv_vla_plan_forward(const bv_vla_config *c, const bv_vla_batch *b, bv_vla_mode mode, bool backward);

typedef struct {
    bv_var *actions_pred;      /* (B, chunk, action_dim), action mode */
    bv_var *logits;            /* (B, T, V), LM mode */
    bv_var *loss;              /* scalar, when the batch has targets (actions / labels); else NULL */
    bv_var *last_hidden_state; /* (B, T, D), after the final norm */
    bv_var *image_features;    /* (B, n_images*P, D), connector outputs; NULL without images */
} bv_vla_out;

/* The forward of a checked batch (bv_vla_batch_check). */
bv_vla_out bv_vla_forward(bv_graph *g, const bv_params *p, bv_vla *m, const bv_vla_batch *b, bv_vla_mode mode);

#endif
