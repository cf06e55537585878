/* build.c - bv_model_build: config -> parts -> trainable set -> memory plan -> allocation ->
 * initial values -> checkpoint (models/build.h). */
#include "models/build.h"

#include <string.h>

/* The config sections a set of parts uses: a tower alone or an LLM alone needs only its own. */
static unsigned sections_of(unsigned parts) {
    if (parts == BV_VLA_VISION) return BV_CONFIG_VISION;
    if (parts == BV_VLA_LLM) return BV_CONFIG_TEXT;
    return BV_CONFIG_ALL;
}

/* Apply the spec's trainable / frozen prefixes (before finalize). */
static bv_status select_trainable(bv_params *p, const bv_model_spec *s) {
    if (s->purpose == BV_MODEL_INFER) {
        bv_params_set_trainable(p, "", false);
        return BV_OK;
    }
    if (s->train) {
        bv_params_set_trainable(p, "", false);
        for (const char *const *pre = s->train; *pre; pre++)
            if (bv_params_set_trainable(p, *pre, true) == 0)
                return bv_error_set(BV_ERR_ARG, "trainable prefix '%s' matches no parameter of the model", *pre);
    }
    if (s->freeze)
        for (const char *const *pre = s->freeze; *pre; pre++)
            if (bv_params_set_trainable(p, *pre, false) == 0)
                return bv_error_set(BV_ERR_ARG, "frozen prefix '%s' matches no parameter of the model", *pre);
    return BV_OK;
}

/* Elements of every BitLinear (ternary) weight of the model: each gets a cache at its first forward. */
static double ternary_weights(const bv_vla *m, const bv_params *p) {
    double n = 0;
    if (m->parts & BV_VLA_VISION)
        for (int i = 0; i < m->vision.cfg.num_hidden_layers; i++) {
            const bv_siglip_layer *L = &m->vision.layers[i];
            const bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->fc1, &L->fc2};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++)
                if (ls[j]->quant && ls[j]->cfg.weight_bits == 1) n += (double)p->items[ls[j]->w].numel;
        }
    if (m->parts & BV_VLA_LLM)
        for (int i = 0; i < m->llm.cfg.num_hidden_layers; i++) {
            const bv_bitnet_layer *L = &m->llm.layers[i];
            const bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++)
                if (ls[j]->quant && ls[j]->cfg.weight_bits == 1) n += (double)p->items[ls[j]->w].numel;
        }
    return n;
}

/* Everything after the config; errors get the "building model from config" context. */
static bv_status build(bv_model *m, const bv_model_spec *s, const bv_vla_config *cfg, unsigned parts) {
    BV_TRY(bv_vla_init(&m->vla, cfg, parts, &m->params));
    BV_TRY(select_trainable(&m->params, s));

    /* the plan, before anything is allocated */
    m->values_bytes = 0;
    for (int i = 0; i < m->params.n; i++) m->values_bytes += 4.0 * (double)m->params.items[i].numel;
    m->grads_bytes = bv_params_bytes(&m->params) - m->values_bytes;
    /* BitLinear caches (autograd.h bv_qweight): a model that trains holds int8 codes + the fp32
     * dequantized copy (+ the 2-bit form with the integer forward); one for inference runs without
     * a graph and holds the 2-bit form alone, unless the integer forward is switched off; one that
     * never runs a forward (export) none */
    double tw = ternary_weights(&m->vla, &m->params);
    if (s->no_forward)
        m->cache_bytes = 0.0;
    else if (s->purpose == BV_MODEL_INFER)
        m->cache_bytes = tw * (bv_bitlinear_integer_nograd() ? 0.25 : 5.0);
    else
        m->cache_bytes = tw * (5.0 + (bv_bitlinear_integer_forward() ? 0.25 : 0.0));
    if (s->purpose == BV_MODEL_SHAPES) return BV_OK;
    char what[256];
    int n = snprintf(what, sizeof what, "the model (%.0f bytes of values, %.0f of gradients, %.0f of BitLinear caches",
                     m->values_bytes, m->grads_bytes, m->cache_bytes);
    if (s->reserve_bytes > 0)
        snprintf(what + n, sizeof what - (size_t)n, ", %.0f reserved for activations", s->reserve_bytes);
    strncat(what, ")", sizeof what - strlen(what) - 1);
    BV_TRY(bv_mem_check(bv_model_bytes(m) + (s->reserve_bytes > 0 ? s->reserve_bytes : 0.0), what));

    BV_TRY(bv_params_finalize(&m->params));
    if (!s->weights || s->load.allow_missing) bv_vla_init_weights(&m->vla, &m->params, s->seed);
    if (s->weights) BV_TRY(bv_weights_load(&m->params, s->weights, &s->load, s->report));
    return BV_OK;
}

bv_status bv_model_build(bv_model *out, const bv_model_spec *spec) {
    memset(out, 0, sizeof *out);
    bv_params_init(&out->params);
    if (spec->report) memset(spec->report, 0, sizeof *spec->report);
    BV_ASSERT(spec->cfg || spec->config, "bv_model_build: the spec names no config");
    BV_ASSERT(spec->purpose >= BV_MODEL_INFER && spec->purpose <= BV_MODEL_SHAPES, "bv_model_build: purpose %d",
              (int)spec->purpose);
    BV_ASSERT(spec->purpose != BV_MODEL_SHAPES || !spec->weights,
              "bv_model_build: a shapes-only model has no values to load weights into");
    const char *label = spec->config ? spec->config : "(given in memory)";
    unsigned parts = spec->parts ? spec->parts : BV_VLA_ALL;
    /* the config's own messages name it already */
    bv_vla_config cfg;
    bv_status st = spec->cfg ? (cfg = *spec->cfg, bv_config_validate_sections(&cfg, sections_of(parts), label))
                             : bv_config_load(spec->config, false, &cfg);
    if (st) return bv_error_prefix(st, "building model");
    if ((st = build(out, spec, &cfg, parts))) {
        bv_model_free(out);
        return bv_error_prefix(st, "building model from config %s", label);
    }
    return BV_OK;
}

void bv_model_free(bv_model *m) {
    bv_vla_free(&m->vla);
    bv_params_free(&m->params);
    memset(m, 0, sizeof *m);
}

double bv_model_bytes(const bv_model *m) { return m->values_bytes + m->grads_bytes + m->cache_bytes; }
