#include "models/bitnet.h"

#include <stdio.h>
#include <string.h>

bv_status bv_bitnet_init(bv_bitnet *m, const bv_text_config *c, bv_params *p, const char *prefix) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->lm_head = -1;
    const int64_t D = c->hidden_size, F = c->intermediate_size, V = c->vocab_size;
    const int64_t KV = (int64_t)c->num_key_value_heads * (D / c->num_attention_heads);
    int64_t se[2] = {V, D};
    if ((m->embed = bv_nn_param(p, prefix, "model.embed_tokens.weight", 2, se)) < 0) return BV_ERR_ARG;
    m->layers = bv_xcalloc((size_t)c->num_hidden_layers, sizeof *m->layers);
    const bv_bitlinear_cfg q = {1, 8};
    const double eps = c->rms_norm_eps;
    for (int i = 0; i < c->num_hidden_layers; i++) {
        bv_bitnet_layer *L = &m->layers[i];
        char pre[BV_NAME_MAX];
        snprintf(pre, sizeof pre, "%smodel.layers.%d.", prefix, i);
        bv_status st;
        if ((st = bv_nn_rmsnorm_init(&L->in_norm, p, pre, "input_layernorm", D, eps)) ||
            (st = bv_nn_linear_init(&L->q, p, pre, "self_attn.q_proj", D, D, false, &q)) ||
            (st = bv_nn_linear_init(&L->k, p, pre, "self_attn.k_proj", D, KV, false, &q)) ||
            (st = bv_nn_linear_init(&L->v, p, pre, "self_attn.v_proj", D, KV, false, &q)) ||
            (st = bv_nn_linear_init(&L->o, p, pre, "self_attn.o_proj", D, D, false, &q)) ||
            (st = bv_nn_rmsnorm_init(&L->attn_sub_norm, p, pre, "self_attn.attn_sub_norm", D, eps)) ||
            (st = bv_nn_rmsnorm_init(&L->post_norm, p, pre, "post_attention_layernorm", D, eps)) ||
            (st = bv_nn_linear_init(&L->gate, p, pre, "mlp.gate_proj", D, F, false, &q)) ||
            (st = bv_nn_linear_init(&L->up, p, pre, "mlp.up_proj", D, F, false, &q)) ||
            (st = bv_nn_linear_init(&L->down, p, pre, "mlp.down_proj", F, D, false, &q)) ||
            (st = bv_nn_rmsnorm_init(&L->ffn_sub_norm, p, pre, "mlp.ffn_sub_norm", F, eps)))
            return st;
    }
    bv_status st = bv_nn_rmsnorm_init(&m->norm, p, prefix, "model.norm", D, eps);
    if (st) return st;
    if (!c->tie_word_embeddings && (m->lm_head = bv_nn_param(p, prefix, "lm_head.weight", 2, se)) < 0)
        return BV_ERR_ARG;
    return BV_OK;
}

static void layer_linears(bv_bitnet_layer *L, bv_nn_linear **ls) {
    ls[0] = &L->q, ls[1] = &L->k, ls[2] = &L->v, ls[3] = &L->o, ls[4] = &L->gate, ls[5] = &L->up, ls[6] = &L->down;
}

void bv_bitnet_free(bv_bitnet *m) {
    if (m->layers)
        for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
            bv_nn_linear *ls[7];
            layer_linears(&m->layers[i], ls);
            for (int j = 0; j < 7; j++) bv_nn_linear_free(ls[j]);
        }
    free(m->layers);
    memset(m, 0, sizeof *m);
}

void bv_bitnet_init_weights(const bv_bitnet *m, bv_params *p, uint64_t seed) {
    bv_nn_init_normal(p, m->embed, 0.02, seed);
    if (m->lm_head >= 0) bv_nn_init_normal(p, m->lm_head, 0.02, seed);
    bv_nn_norm_init_weights(p, &m->norm);
    for (int i = 0; i < m->cfg.num_hidden_layers; i++) {
        bv_bitnet_layer *L = &m->layers[i];
        bv_nn_linear *ls[7];
        layer_linears(L, ls);
        for (int j = 0; j < 7; j++) bv_nn_linear_init_weights(p, ls[j], 0.02, seed);
        bv_nn_norm_init_weights(p, &L->in_norm);
        bv_nn_norm_init_weights(p, &L->attn_sub_norm);
        bv_nn_norm_init_weights(p, &L->post_norm);
        bv_nn_norm_init_weights(p, &L->ffn_sub_norm);
    }
}

bv_var *bv_bitnet_embed(bv_graph *g, const bv_params *p, const bv_bitnet *m, const bv_tensor *ids) {
    return bv_op_embedding(g, ids, bv_var_param(g, p, m->embed));
}

void bv_bitnet_position_ids(int64_t *pos, const uint8_t *mask, int64_t B, int64_t T) {
    for (int64_t b = 0; b < B; b++) {
        int64_t c = 0;
        for (int64_t t = 0; t < T; t++) {
            c += mask ? (mask[b * T + t] != 0) : 1;
            pos[b * T + t] = c > 0 ? c - 1 : 0;
        }
    }
}

static bv_var *decoder_layer(bv_graph *g, const bv_params *p, const bv_text_config *c, bv_bitnet_layer *L, bv_var *x,
                             const bv_tensor *pos, const bv_attn_mask *am) {
    const int64_t B = x->val.shape[0], T = x->val.shape[1], D = c->hidden_size;
    const int64_t H = c->num_attention_heads, Hkv = c->num_key_value_heads, hd = D / H;
    int64_t qs[4] = {B, T, H, hd}, ks[4] = {B, T, Hkv, hd}, flat[3] = {B, T, D};
    bv_var *h = bv_nn_norm_fwd(g, p, &L->in_norm, x);
    /* (B, T, H, hd) is the projection's own layout: reshapes only, no transposes */
    bv_var *q = bv_op_rope(g, bv_op_reshape(g, bv_nn_linear_fwd(g, p, &L->q, h), 4, qs), pos, c->rope_theta);
    bv_var *k = bv_op_rope(g, bv_op_reshape(g, bv_nn_linear_fwd(g, p, &L->k, h), 4, ks), pos, c->rope_theta);
    bv_var *v = bv_op_reshape(g, bv_nn_linear_fwd(g, p, &L->v, h), 4, ks);
    bv_var *a = bv_op_reshape(g, bv_op_sdpa(g, q, k, v, am), 3, flat);
    x = bv_op_add(g, x, bv_nn_linear_fwd(g, p, &L->o, bv_nn_norm_fwd(g, p, &L->attn_sub_norm, a)));
    h = bv_nn_norm_fwd(g, p, &L->post_norm, x);
    bv_var *gu = bv_op_mul(g, bv_nn_act(g, c->hidden_act, bv_nn_linear_fwd(g, p, &L->gate, h)),
                           bv_nn_linear_fwd(g, p, &L->up, h));
    return bv_op_add(g, x, bv_nn_linear_fwd(g, p, &L->down, bv_nn_norm_fwd(g, p, &L->ffn_sub_norm, gu)));
}

bv_var *bv_bitnet_forward(bv_graph *g, const bv_params *p, bv_bitnet *m, bv_var *x, const uint8_t *mask, bool causal,
                          int n_layers) {
    const bv_text_config *c = &m->cfg;
    BV_ASSERT(x->val.ndim == 3 && x->val.shape[2] == c->hidden_size, "bitnet: input must be (B, T, %d), got rank %d",
              c->hidden_size, x->val.ndim);
    const int64_t B = x->val.shape[0], T = x->val.shape[1];
    int64_t npos = B * T;
    int64_t *pos = bv_graph_alloc(g, (size_t)(npos > 0 ? npos : 1) * sizeof *pos);
    bv_bitnet_position_ids(pos, mask, B, T);
    bv_tensor pt = bv_tensor_make2(pos, BV_DTYPE_I64, B, T);
    bv_attn_mask am = {causal, mask, 0.0};
    int n = n_layers < 0 || n_layers > c->num_hidden_layers ? c->num_hidden_layers : n_layers;
    /* without a graph only the running hidden state is kept between layers (bv_graph_keep) */
    bv_arena_mark mk = bv_graph_mark(g);
    for (int i = 0; i < n; i++) {
        x = decoder_layer(g, p, c, &m->layers[i], x, &pt, &am);
        if (g->no_grad) x = bv_graph_keep(g, mk, x);
    }
    return bv_nn_norm_fwd(g, p, &m->norm, x);
}

bv_var *bv_bitnet_logits(bv_graph *g, const bv_params *p, const bv_bitnet *m, bv_var *h) {
    return bv_op_linear(g, h, bv_var_param(g, p, m->lm_head >= 0 ? m->lm_head : m->embed), NULL);
}
