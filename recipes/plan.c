/* plan.c - the memory plan of a training run per module (recipes/plan.h). */
#include "recipes/plan.h"

#include <math.h>

#include "optim/adamw.h"

#include <stdio.h>
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
        if (q->trainable) {
            md->trainable += q->numel;
            p->max_trainable_tensor = BV_MAX(p->max_trainable_tensor, 4.0 * (double)q->numel);
        }
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

/* the per-rank accumulation on n ranks, 0 when global_batch does not divide */
static int accumulation_on(const bv_recipe *r, int n) {
    if (r->global_batch <= 0) return r->accumulation;
    const int64_t per_pass = (int64_t)r->micro_batch * n;
    return r->global_batch % per_pass ? 0 : (int)(r->global_batch / per_pass);
}

/* floor(log2(a)) for a >= 1: the most partial sums the binary counter of a micro-batches holds
 * at once (recipes/dist.h: the largest popcount of 1 .. a-1) */
static int tree_levels(int a) {
    int k = 0;
    while ((2LL << k) <= a) k++;
    return k;
}

/* the plan of rank n, accumulation a (> 0) */
static void rank_plan(const bv_train_plan *p, const bv_recipe *r, int n, int zero, int a, bv_rank_plan *o) {
    const bv_plan_module *t = &p->total;
    memset(o, 0, sizeof *o);
    o->world_size = n, o->zero = zero, o->accumulation = a;
    o->global_batch = (int64_t)r->micro_batch * a * n;
    o->weights = t->weights, o->caches = t->caches, o->activations = p->activations;
    o->grads = zero >= 2 ? t->grads / n : t->grads;
    o->moments = zero >= 1 ? t->moments / n : t->moments;
    if (n > 1 && t->grads > 0) {
        /* a bucket: bucket_mb rounded up to whole norm chunks (recipes/dist.h cuts the flat gradient
         * buffer into equal element ranges, across parameters); never more than the gradient */
        const double chunk = 4.0 * (double)BV_GRAD_NORM_CHUNK;
        const double bucket = BV_MIN(ceil(r->distributed.bucket_mb * 1e6 / chunk) * chunk, t->grads);
        o->comm = 2.0 * bucket;
    }
    if (r->distributed.exact && a > 1) o->exact_partials = tree_levels(a) * t->grads;
    o->bytes = o->weights + o->caches + o->activations + o->grads + o->moments + o->comm + o->exact_partials;
    /* ZeRO-1's checkpoint: the moments stream through rank 0 one bucket at a time */
    if (zero >= 1 && n > 1 && t->grads > 0) {
        const double chunk = 4.0 * (double)BV_GRAD_NORM_CHUNK;
        o->save_gather = BV_MIN(ceil(r->distributed.bucket_mb * 1e6 / chunk) * chunk, t->grads);
    }
    o->rank0_peak = o->bytes + o->save_gather;
}

bv_status bv_train_plan_rank(const bv_train_plan *p, const bv_recipe *r, int world_size, int zero, bv_rank_plan *out) {
    BV_ASSERT(zero >= 0 && zero <= 2 && world_size >= 1, "train plan: ZeRO stage %d, %d ranks", zero, world_size);
    memset(out, 0, sizeof *out);
    const int a = accumulation_on(r, world_size);
    if (a == 0)
        return bv_error_set(BV_ERR_ARG,
                            "%s: global_batch %d is not a multiple of micro_batch %d x %d rank%s = %lld: the "
                            "per-rank accumulation global_batch / (micro_batch x ranks) must be a whole number",
                            r->source, r->global_batch, r->micro_batch, world_size, world_size == 1 ? "" : "s",
                            (long long)r->micro_batch * world_size);
    rank_plan(p, r, world_size, zero, a, out);
    return BV_OK;
}

double bv_train_plan_floor(const bv_train_plan *p, const bv_recipe *r, int zero, char *what, size_t what_len) {
    BV_ASSERT(zero >= 0 && zero <= 2, "train plan: ZeRO stage %d", zero);
    const bv_plan_module *t = &p->total;
    const bool partials = r->global_batch <= 0 && r->distributed.exact && r->accumulation > 1;
    double b = t->weights + t->caches + p->activations;
    if (zero < 2) b += t->grads;
    if (zero == 0) b += t->moments;
    if (partials) b += tree_levels(r->accumulation) * t->grads;
    if (what)
        snprintf(what, what_len, "weights + caches + activations%s%s%s", zero < 2 ? " + gradients" : "",
                 zero == 0 ? " + AdamW moments" : "", partials ? " + exact partial sums" : "");
    return b;
}

int bv_train_plan_min_ranks(const bv_train_plan *p, const bv_recipe *r, int zero, bool with_save, double bytes_per_rank,
                            int max_n, bv_rank_plan *at) {
    BV_ASSERT(zero >= 0 && zero <= 2, "train plan: ZeRO stage %d", zero);
    bv_rank_plan best = {0}, cur;
    /* every allowed n in order (plain arithmetic: a scan of max_n is instant); the first that fits */
    for (int n = 1; n <= max_n; n++) {
        /* past the global batch's micro-batches no n is allowed */
        if (r->global_batch > 0 && (int64_t)r->micro_batch * n > r->global_batch) break;
        const int a = accumulation_on(r, n);
        if (a == 0) continue;
        rank_plan(p, r, n, zero, a, &cur);
        const double need = with_save ? cur.rank0_peak : cur.bytes;
        if (need <= bytes_per_rank) {
            if (at) *at = cur;
            return n;
        }
        if (best.world_size == 0 || need < (with_save ? best.rank0_peak : best.bytes)) best = cur;
    }
    if (at) *at = best;
    return 0;
}
