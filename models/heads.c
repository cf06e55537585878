#include "models/heads.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static bv_status mlp2_init(bv_mlp2 *m, bv_params *p, const char *prefix, const char *n1, const char *n2, int64_t in,
                           int64_t hidden, bv_act act) {
    memset(m, 0, sizeof *m);
    m->act = act;
    bv_status st = bv_nn_linear_init(&m->l1, p, prefix, n1, in, hidden, true, NULL);
    return st ? st : bv_nn_linear_init(&m->l2, p, prefix, n2, hidden, hidden, true, NULL);
}

bv_status bv_connector_init(bv_mlp2 *m, const bv_vla_config *c, bv_params *p, const char *prefix) {
    return mlp2_init(m, p, prefix, "linear_1", "linear_2", c->vision.hidden_size, c->text.hidden_size,
                     c->projector_act);
}

bv_status bv_proprio_init(bv_mlp2 *m, const bv_vla_config *c, bv_params *p, const char *prefix) {
    return mlp2_init(m, p, prefix, "fc1", "fc2", c->proprio_dim, c->text.hidden_size, BV_ACT_GELU_ERF);
}

void bv_mlp2_free(bv_mlp2 *m) {
    bv_nn_linear_free(&m->l1);
    bv_nn_linear_free(&m->l2);
    memset(m, 0, sizeof *m);
}

/* nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)) for both; a normal of the same variance here */
static void linear_default_init(bv_params *p, const bv_nn_linear *l, uint64_t seed) {
    double in = (double)p->items[l->w].shape[1];
    bv_nn_init_normal(p, l->w, 1.0 / sqrt(3.0 * in), seed);
    if (l->b >= 0) bv_nn_init_const(p, l->b, 0.0f);
}

void bv_mlp2_init_weights(const bv_mlp2 *m, bv_params *p, uint64_t seed) {
    linear_default_init(p, &m->l1, seed);
    linear_default_init(p, &m->l2, seed);
}

bv_var *bv_mlp2_forward(bv_graph *g, const bv_params *p, bv_mlp2 *m, bv_var *x) {
    return bv_nn_linear_fwd(g, p, &m->l2, bv_nn_act(g, m->act, bv_nn_linear_fwd(g, p, &m->l1, x)));
}

bv_status bv_action_head_init(bv_action_head *m, const bv_vla_config *c, bv_params *p, const char *prefix) {
    memset(m, 0, sizeof *m);
    const int64_t D = c->text.hidden_size, in = (int64_t)c->action_dim * D;
    m->action_dim = c->action_dim, m->hidden = (int)D, m->n_blocks = c->action_head_num_blocks;
    char pre[BV_NAME_MAX];
    snprintf(pre, sizeof pre, "%smodel.", prefix);
    bv_status st;
    if ((st = bv_nn_layernorm_init(&m->ln1, p, pre, "layer_norm1", in, BV_ACTION_HEAD_LN_EPS)) ||
        (st = bv_nn_linear_init(&m->fc1, p, pre, "fc1", in, D, true, NULL)))
        return st;
    m->blocks = bv_xcalloc((size_t)(m->n_blocks ? m->n_blocks : 1), sizeof *m->blocks);
    for (int i = 0; i < m->n_blocks; i++) {
        char b[2 * BV_NAME_MAX];
        snprintf(b, sizeof b, "%smlp_resnet_blocks.%d.ffn.", pre, i);
        if ((st = bv_nn_layernorm_init(&m->blocks[i].ln, p, b, "0", D, BV_ACTION_HEAD_LN_EPS)) ||
            (st = bv_nn_linear_init(&m->blocks[i].fc, p, b, "1", D, D, true, NULL)))
            return st;
    }
    if ((st = bv_nn_layernorm_init(&m->ln2, p, pre, "layer_norm2", D, BV_ACTION_HEAD_LN_EPS)) ||
        (st = bv_nn_linear_init(&m->fc2, p, pre, "fc2", D, c->action_dim, true, NULL)))
        return st;
    return BV_OK;
}

void bv_action_head_free(bv_action_head *m) {
    bv_nn_linear_free(&m->fc1);
    bv_nn_linear_free(&m->fc2);
    for (int i = 0; m->blocks && i < m->n_blocks; i++) bv_nn_linear_free(&m->blocks[i].fc);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

void bv_action_head_init_weights(const bv_action_head *m, bv_params *p, uint64_t seed) {
    bv_nn_norm_init_weights(p, &m->ln1);
    bv_nn_norm_init_weights(p, &m->ln2);
    linear_default_init(p, &m->fc1, seed);
    linear_default_init(p, &m->fc2, seed);
    for (int i = 0; i < m->n_blocks; i++) {
        bv_nn_norm_init_weights(p, &m->blocks[i].ln);
        linear_default_init(p, &m->blocks[i].fc, seed);
    }
}

bv_var *bv_action_head_forward(bv_graph *g, const bv_params *p, bv_action_head *m, bv_var *x) {
    x = bv_op_relu(g, bv_nn_linear_fwd(g, p, &m->fc1, bv_nn_norm_fwd(g, p, &m->ln1, x)));
    for (int i = 0; i < m->n_blocks; i++) {
        bv_resblock *b = &m->blocks[i];
        x = bv_op_add(g, x, bv_op_relu(g, bv_nn_linear_fwd(g, p, &b->fc, bv_nn_norm_fwd(g, p, &b->ln, x))));
    }
    return bv_nn_linear_fwd(g, p, &m->fc2, bv_nn_norm_fwd(g, p, &m->ln2, x));
}
