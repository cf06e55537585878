/* plan.c - the memory plan of a training run per module (recipes/plan.h). */
#include "recipes/plan.h"

#include <math.h>
#include <string.h>

static const char *k_names[BV_PLAN_MODULES] = {"vision tower",      "connector",         "llm embed_tokens",
                                               "llm layers + norm", "llm lm_head",       "proprio projector",
                                               "action head"};

static int module_of(const char *name) {
    if (!strncmp(name, "vision_tower.", 13)) return BV_PLAN_VISION;
    if (!strncmp(name, "multi_modal_projector.", 22)) return BV_PLAN_CONNECTOR;
    if (!strcmp(name, "language_model.model.embed_tokens.weight")) return BV_PLAN_LLM_EMBED;
    if (!strcmp(name, "language_model.lm_head.weight")) return BV_PLAN_LLM_HEAD;
    if (!strncmp(name, "language_model.", 15)) return BV_PLAN_LLM_LAYERS;
    if (!strncmp(name, "proprio_projector.", 18)) return BV_PLAN_PROPRIO;
    return BV_PLAN_ACTION_HEAD;
}

/* tern[i] = parameter i is the weight of a ternary BitLinear (the walk of models/build.c's
 * ternary_weights, which plans their caches) */
static void mark_ternary(const bv_vla *m, bool *tern) {
    if (m->parts & BV_VLA_VISION)
        for (int i = 0; i < m->vision.cfg.num_hidden_layers; i++) {
            const bv_siglip_layer *L = &m->vision.layers[i];
            const bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->fc1, &L->fc2};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++)
                if (ls[j]->quant && ls[j]->cfg.weight_bits == 1) tern[ls[j]->w] = true;
        }
    if (m->parts & BV_VLA_LLM)
        for (int i = 0; i < m->llm.cfg.num_hidden_layers; i++) {
            const bv_bitnet_layer *L = &m->llm.layers[i];
            const bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++)
                if (ls[j]->quant && ls[j]->cfg.weight_bits == 1) tern[ls[j]->w] = true;
        }
}

static void add_into(bv_plan_module *to, const bv_plan_module *m) {
    to->params += m->params, to->trainable += m->trainable, to->ternary += m->ternary;
    to->ternary_tensors += m->ternary_tensors;
    to->weights += m->weights, to->grads += m->grads, to->moments += m->moments, to->caches += m->caches;
}

void bv_plan_modules(const bv_model *m, bv_train_plan *p) {
    memset(p, 0, sizeof *p);
    const bv_params *ps = &m->params;
    bool *tern = bv_xmalloc((size_t)(ps->n ? ps->n : 1) * sizeof *tern);
    memset(tern, 0, (size_t)(ps->n ? ps->n : 1) * sizeof *tern);
    mark_ternary(&m->vla, tern);
    for (int k = 0; k < BV_PLAN_MODULES; k++) p->mod[k].name = k_names[k];
    int64_t n_tern = 0;
    for (int i = 0; i < ps->n; i++) {
        const bv_param *q = &ps->items[i];
        bv_plan_module *md = &p->mod[module_of(q->name)];
        md->params += q->numel;
        if (q->trainable) md->trainable += q->numel;
        if (tern[i]) md->ternary += q->numel, md->ternary_tensors++, n_tern += q->numel;
    }
    free(tern);
    /* bytes per ternary weight exactly as build.c planned them (5, or 5.25 with the integer forward) */
    const double per = n_tern ? m->cache_bytes / (double)n_tern : 0.0;
    p->total.name = "total";
    for (int k = 0; k < BV_PLAN_MODULES; k++) {
        bv_plan_module *md = &p->mod[k];
        md->weights = 4.0 * (double)md->params;
        md->grads = 4.0 * (double)md->trainable;
        md->moments = 8.0 * (double)md->trainable;
        md->caches = per * (double)md->ternary;
        add_into(&p->total, md);
    }
}

bv_status bv_train_plan_make(bv_train_plan *p, const bv_recipe *r, int text_tokens) {
    memset(p, 0, sizeof *p);
    bv_model m;
    bv_model_spec spec = {.config = r->model.config,
                          .purpose = BV_MODEL_SHAPES,
                          .train = (const char *const *)r->model.train,
                          .freeze = (const char *const *)r->model.freeze};
    bv_status st = bv_model_build(&m, &spec);
    if (st) return bv_error_prefix(st, "%s", r->source);
    bv_plan_modules(&m, p);
    const bv_vla_config *c = &m.vla.cfg;
    /* the longest realistic prompt (models/vla.h's layout); the plan reads shapes only */
    const int64_t B = r->micro_batch, n_img = r->data.n_images, S = c->vision.image_size;
    p->micro_batch = r->micro_batch;
    p->n_images = (int)n_img;
    p->image_tokens = bv_config_vision_patches(c);
    p->text_tokens = text_tokens > 0 ? text_tokens : BV_PLAN_TEXT_TOKENS;
    p->action_tokens = bv_config_action_tokens(c);
    p->tokens = 1 + n_img * p->image_tokens + 1 + p->text_tokens + p->action_tokens + 1;
    bv_tensor ids = bv_tensor_make2(NULL, BV_DTYPE_I64, B, p->tokens);
    bv_tensor mask = bv_tensor_make2(NULL, BV_DTYPE_U8, B, p->tokens);
    int64_t pix_shape[5] = {B, n_img, c->vision.num_channels, S, S};
    bv_tensor pix = bv_tensor_make(NULL, BV_DTYPE_F32, 5, pix_shape);
    bv_tensor prop = bv_tensor_make2(NULL, BV_DTYPE_F32, B, c->proprio_dim);
    bv_tensor act = bv_tensor_make3(NULL, BV_DTYPE_F32, B, c->num_actions_chunk, c->action_dim);
    bv_vla_batch b = {.input_ids = &ids, .attention_mask = &mask, .pixel_values = &pix, .proprio = &prop,
                      .action_mask = &mask, .actions = &act};
    p->activations = bv_vla_plan_forward(c, &b, BV_VLA_MODE_ACTION, true);
    p->bytes = p->total.weights + p->total.grads + p->total.moments + p->total.caches + p->activations;
    p->physical = (double)bv_mem_physical();
    bv_model_free(&m);
    return BV_OK;
}

double bv_train_plan_rank_bytes(const bv_train_plan *p, int zero, int n) {
    BV_ASSERT(zero >= 0 && zero <= 2 && n >= 1, "train plan: ZeRO stage %d, %d ranks", zero, n);
    const bv_plan_module *t = &p->total;
    double grads = zero >= 2 ? t->grads / n : t->grads, moments = zero >= 1 ? t->moments / n : t->moments;
    return t->weights + t->caches + p->activations + grads + moments;
}

int bv_train_plan_min_ranks(const bv_train_plan *p, int zero, double bytes_per_rank, int max_n) {
    if (zero == 0) return bv_train_plan_rank_bytes(p, 0, 1) <= bytes_per_rank ? 1 : 0;
    /* rank_bytes falls with n towards the unsharded part: solve, then check (rounding) */
    const double fixed = bv_train_plan_rank_bytes(p, zero, 1) - (zero >= 2 ? p->total.grads : 0) - p->total.moments;
    const double shard = (zero >= 2 ? p->total.grads : 0) + p->total.moments;
    if (fixed >= bytes_per_rank) return 0;
    double n = shard > 0 ? ceil(shard / (bytes_per_rank - fixed)) : 1;
    if (n < 1) n = 1;
    if (n > max_n) return 0;
    int k = (int)n;
    while (k > 1 && bv_train_plan_rank_bytes(p, zero, k - 1) <= bytes_per_rank) k--;
    while (k <= max_n && bv_train_plan_rank_bytes(p, zero, k) > bytes_per_rank) k++;
    return k <= max_n ? k : 0;
}
