#include "models/siglip.h"

#include <stdio.h>
#include <string.h>

int bv_siglip_layers_run(const bv_vision_config *c, int vfl) {
    return vfl >= 0 ? vfl : c->num_hidden_layers + 1 + vfl;
}

bv_status bv_siglip_init(bv_siglip *m, const bv_vision_config *c, int vfl, bv_params *p, const char *prefix) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->n_run = bv_siglip_layers_run(c, vfl);
    if (m->n_run < 0 || m->n_run > c->num_hidden_layers)
        return bv_error_set(BV_ERR_ARG, "vision_feature_layer %d outside [-%d, %d] for %d vision layers", vfl,
                            c->num_hidden_layers + 1, c->num_hidden_layers, c->num_hidden_layers);
    const int64_t D = c->hidden_size, M = c->intermediate_size, C = c->num_channels, pz = c->patch_size;
    const int64_t P = (int64_t)(c->image_size / c->patch_size) * (c->image_size / c->patch_size);
    int64_t sw[4] = {D, C, pz, pz}, sb[1] = {D}, sp[2] = {P, D};
    if ((m->patch_w = bv_nn_param(p, prefix, "embeddings.patch_embedding.weight", 4, sw)) < 0 ||
        (m->patch_b = bv_nn_param(p, prefix, "embeddings.patch_embedding.bias", 1, sb)) < 0 ||
        (m->pos = bv_nn_param(p, prefix, "embeddings.position_embedding.weight", 2, sp)) < 0)
        return BV_ERR_ARG;
    m->layers = bv_xcalloc((size_t)c->num_hidden_layers, sizeof *m->layers);
    bv_bitlinear_cfg q = {c->weight_bits, c->act_bits};
    for (int i = 0; i < c->num_hidden_layers; i++) {
        bv_siglip_layer *L = &m->layers[i];
        char pre[BV_NAME_MAX];
        snprintf(pre, sizeof pre, "%sencoder.layers.%d.", prefix, i);
        bv_status st;
        if ((st = bv_nn_layernorm_init(&L->ln1, p, pre, "layer_norm1", D, c->layer_norm_eps)) ||
            (st = bv_nn_linear_init(&L->q, p, pre, "self_attn.q_proj", D, D, true, &q)) ||
            (st = bv_nn_linear_init(&L->k, p, pre, "self_attn.k_proj", D, D, true, &q)) ||
            (st = bv_nn_linear_init(&L->v, p, pre, "self_attn.v_proj", D, D, true, &q)) ||
            (st = bv_nn_linear_init(&L->o, p, pre, "self_attn.out_proj", D, D, true, &q)) ||
            (st = bv_nn_layernorm_init(&L->ln2, p, pre, "layer_norm2", D, c->layer_norm_eps)) ||
            (st = bv_nn_linear_init(&L->fc1, p, pre, "mlp.fc1", D, M, true, &q)) ||
            (st = bv_nn_linear_init(&L->fc2, p, pre, "mlp.fc2", M, D, true, &q)))
            return st;
    }
    return BV_OK;
}

void bv_siglip_free(bv_siglip *m) {
    if (m->layers)
        for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
            bv_siglip_layer *L = &m->layers[i];
            bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->fc1, &L->fc2};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++) bv_nn_linear_free(ls[j]);
        }
    free(m->layers);
    memset(m, 0, sizeof *m);
}

void bv_siglip_init_weights(const bv_siglip *m, bv_params *p, uint64_t seed) {
    bv_nn_init_normal(p, m->patch_w, 0.02, seed);
    bv_nn_init_const(p, m->patch_b, 0.0f);
    bv_nn_init_normal(p, m->pos, 0.02, seed);
    for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
        const bv_siglip_layer *L = &m->layers[i];
        bv_nn_norm_init_weights(p, &L->ln1);
        bv_nn_norm_init_weights(p, &L->ln2);
        const bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->fc1, &L->fc2};
        for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++) bv_nn_linear_init_weights(p, ls[j], 0.02, seed);
    }
}

static bv_var *encoder_layer(bv_graph *g, const bv_params *p, const bv_vision_config *c, bv_siglip_layer *L,
                             bv_var *x) {
    const int64_t N = x->val.shape[0], T = x->val.shape[1], D = c->hidden_size, H = c->num_attention_heads;
    int64_t heads[4] = {N, T, H, D / H}, flat[3] = {N, T, D};
    bv_var *h = bv_nn_norm_fwd(g, p, &L->ln1, x);
    bv_var *q = bv_op_reshape(g, bv_nn_linear_fwd(g, p, &L->q, h), 4, heads);
    bv_var *k = bv_op_reshape(g, bv_nn_linear_fwd(g, p, &L->k, h), 4, heads);
    bv_var *v = bv_op_reshape(g, bv_nn_linear_fwd(g, p, &L->v, h), 4, heads);
    bv_var *a = bv_op_reshape(g, bv_op_sdpa(g, q, k, v, NULL), 3, flat);
    x = bv_op_add(g, x, bv_nn_linear_fwd(g, p, &L->o, a));
    h = bv_nn_norm_fwd(g, p, &L->ln2, x);
    h = bv_nn_linear_fwd(g, p, &L->fc2, bv_nn_act(g, c->hidden_act, bv_nn_linear_fwd(g, p, &L->fc1, h)));
    return bv_op_add(g, x, h);
}

bv_var *bv_siglip_forward(bv_graph *g, const bv_params *p, bv_siglip *m, bv_var *pix, bv_var **layer_out) {
    const bv_vision_config *c = &m->cfg;
    BV_ASSERT(pix->val.ndim == 4 && pix->val.shape[1] == c->num_channels && pix->val.shape[2] == c->image_size &&
                  pix->val.shape[3] == c->image_size,
              "siglip: pixels must be (N, %d, %d, %d), got rank %d [.., %lld, %lld, %lld]", c->num_channels,
              c->image_size, c->image_size, pix->val.ndim, (long long)pix->val.shape[1],
              (long long)pix->val.shape[2], (long long)pix->val.shape[3]);
    /* Conv2d(kernel = stride = p) = linear(patchify(img), weight viewed as (D, C*p*p)) */
    int64_t wshape[2] = {c->hidden_size, -1};
    bv_var *w = bv_op_reshape(g, bv_var_param(g, p, m->patch_w), 2, wshape);
    bv_var *x = bv_op_linear(g, bv_op_patchify(g, pix, c->patch_size), w, bv_var_param(g, p, m->patch_b));
    x = bv_op_add(g, x, bv_var_param(g, p, m->pos));
    bv_arena_mark mk = bv_graph_mark(g);
    for (int i = 0; i < m->n_run; i++) {
        x = encoder_layer(g, p, c, &m->layers[i], x);
        if (layer_out) layer_out[i] = x;
        else if (g->no_grad) x = bv_graph_keep(g, mk, x); /* one layer's activations at a time */
    }
    return x;
}
