/* models/heads.h - the small full-precision modules around the two towers (spec section 1):
 *  - the connector (LLaVA multi_modal_projector): Linear(Dv -> D) -> act -> Linear(D -> D), with
 *    biases; act is projector_hidden_act ("gelu", the exact erf form);
 *  - the proprio projector (OFT ProprioProjector): Linear(proprio_dim -> D) -> GELU(erf) -> Linear(D -> D);
 *  - the action head (OFT L1RegressionActionHead / MLPResNet): input (B, chunk, action_dim*D),
 *    LN -> fc1 (action_dim*D -> D) -> ReLU -> num_blocks x [x + ReLU(Linear(LN(x)))] -> LN -> fc2 (D -> action_dim).
 *    Its LayerNorms use PyTorch's default eps 1e-5 (BV_ACTION_HEAD_LN_EPS).
 *
 * Parameter names: multi_modal_projector.linear_{1,2}.{weight,bias}; proprio_projector.fc{1,2}.{weight,bias};
 * action_head.model.{layer_norm1, fc1, mlp_resnet_blocks.N.ffn.0 (the block's LN), mlp_resnet_blocks.N.ffn.1
 * (the block's Linear), layer_norm2, fc2}.{weight,bias}. The prefix passed to init ends with the
 * module name and a dot (e.g. "multi_modal_projector.").
 * Owns: nothing beyond the block table of the action head (bv_action_head_free).
 */
#ifndef BV_MODELS_HEADS_H
#define BV_MODELS_HEADS_H

#include "models/nn_impl.h"

#define BV_ACTION_HEAD_LN_EPS 1e-5

/* Two linear layers with an activation between them (connector, proprio projector). */
typedef struct {
    bv_nn_linear l1, l2;
    bv_act act;
} bv_mlp2;

/* connector: names linear_1 / linear_2 */
bv_status bv_connector_init(bv_mlp2 *m, const bv_vla_config *c, bv_params *p, const char *prefix);
/* proprio projector: names fc1 / fc2 */
bv_status bv_proprio_init(bv_mlp2 *m, const bv_vla_config *c, bv_params *p, const char *prefix);
void bv_mlp2_free(bv_mlp2 *m);
void bv_mlp2_init_weights(const bv_mlp2 *m, bv_params *p, uint64_t seed);
/* x (..., in) -> (..., out) */
bv_var *bv_mlp2_forward(bv_graph *g, const bv_params *p, bv_mlp2 *m, bv_var *x);

typedef struct {
    bv_nn_norm ln;
    bv_nn_linear fc;
} bv_resblock;

typedef struct {
    int action_dim, hidden, n_blocks;
    bv_nn_norm ln1, ln2;
    bv_nn_linear fc1, fc2;
    bv_resblock *blocks;
} bv_action_head;

bv_status bv_action_head_init(bv_action_head *m, const bv_vla_config *c, bv_params *p, const char *prefix);
void bv_action_head_free(bv_action_head *m);
void bv_action_head_init_weights(const bv_action_head *m, bv_params *p, uint64_t seed);
/* x (B, chunk, action_dim*D) -> actions (B, chunk, action_dim) */
bv_var *bv_action_head_forward(bv_graph *g, const bv_params *p, bv_action_head *m, bv_var *x);

#endif
