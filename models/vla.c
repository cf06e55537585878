#include "models/vla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/profile.h"

bv_status bv_vla_init(bv_vla *m, const bv_vla_config *c, unsigned parts, bv_params *p) {
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->parts = parts;
    bv_status st = BV_OK;
    if (!st && (parts & BV_VLA_VISION))
        st = bv_siglip_init(&m->vision, &c->vision, c->vision_feature_layer, p, "vision_tower.vision_model.");
    if (!st && (parts & BV_VLA_CONNECTOR)) st = bv_connector_init(&m->connector, c, p, "multi_modal_projector.");
    if (!st && (parts & BV_VLA_LLM)) st = bv_bitnet_init(&m->llm, &c->text, p, "language_model.");
    if (!st && (parts & BV_VLA_PROPRIO)) st = bv_proprio_init(&m->proprio, c, p, "proprio_projector.");
    if (!st && (parts & BV_VLA_ACTION_HEAD)) st = bv_action_head_init(&m->head, c, p, "action_head.");
    if (st) bv_vla_free(m);
    return st;
}

void bv_vla_free(bv_vla *m) {
    bv_siglip_free(&m->vision);
    bv_mlp2_free(&m->connector);
    bv_bitnet_free(&m->llm);
    bv_mlp2_free(&m->proprio);
    bv_action_head_free(&m->head);
    memset(m, 0, sizeof *m);
}

void bv_vla_init_weights(const bv_vla *m, bv_params *p, uint64_t seed) {
    if (m->parts & BV_VLA_VISION) bv_siglip_init_weights(&m->vision, p, seed);
    if (m->parts & BV_VLA_CONNECTOR) bv_mlp2_init_weights(&m->connector, p, seed);
    if (m->parts & BV_VLA_LLM) bv_bitnet_init_weights(&m->llm, p, seed);
    if (m->parts & BV_VLA_PROPRIO) bv_mlp2_init_weights(&m->proprio, p, seed);
    if (m->parts & BV_VLA_ACTION_HEAD) bv_action_head_init_weights(&m->head, p, seed);
    bv_params_mark_updated(p);
}

int bv_vla_ternary_list(bv_vla *m, bv_vla_ternary **out) {
    int cap = 0, n = 0;
    if (m->parts & BV_VLA_VISION) cap += 6 * m->vision.cfg.num_hidden_layers;
    if (m->parts & BV_VLA_LLM) cap += 7 * m->llm.cfg.num_hidden_layers;
    bv_vla_ternary *v = out && cap ? malloc((size_t)cap * sizeof *v) : NULL;
    if (out) *out = NULL;
    if (out && cap && !v) return -1;
    if (m->parts & BV_VLA_VISION)
        for (int i = 0; i < m->vision.cfg.num_hidden_layers; i++) {
            bv_siglip_layer *L = &m->vision.layers[i];
            bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->fc1, &L->fc2};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++)
                if (ls[j]->quant && ls[j]->cfg.weight_bits == 1) {
                    if (v) v[n] = (bv_vla_ternary){ls[j]->w, ls[j]->b, &ls[j]->cache, i < m->vision.n_run};
                    n++;
                }
        }
    if (m->parts & BV_VLA_LLM)
        for (int i = 0; i < m->llm.cfg.num_hidden_layers; i++) {
            bv_bitnet_layer *L = &m->llm.layers[i];
            bv_nn_linear *ls[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
            for (size_t j = 0; j < BV_ARRAY_LEN(ls); j++)
                if (ls[j]->quant && ls[j]->cfg.weight_bits == 1) {
                    if (v) v[n] = (bv_vla_ternary){ls[j]->w, ls[j]->b, &ls[j]->cache, true};
                    n++;
                }
        }
    if (out) *out = v;
    return n;
}

/* ---- batch validation ---- */

static bv_status check_tensor(const char *label, const char *name, const bv_tensor *t, bv_dtype dt, int ndim,
                              const int64_t *shape) {
    char got[128], want[128];
    if (t->dtype != dt)
        return bv_error_set(BV_ERR_SHAPE, "%s: tensor '%s': expected dtype %s, found %s", label, name,
                            bv_dtype_name(dt), bv_dtype_name(t->dtype));
    bool ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = shape[i] < 0 || t->shape[i] == shape[i];
    if (!ok) {
        int n = snprintf(want, sizeof want, "[");
        for (int i = 0; i < ndim; i++)
            n += shape[i] < 0 ? snprintf(want + n, sizeof want - (size_t)n, "%s?", i ? ", " : "")
                              : snprintf(want + n, sizeof want - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
        snprintf(want + n, sizeof want - (size_t)n, "]");
        return bv_error_set(BV_ERR_SHAPE, "%s: tensor '%s': expected shape %s, found %s", label, name, want,
                            bv_tensor_shape_str(t, got, sizeof got));
    }
    BV_ASSERT(bv_tensor_is_contiguous(t), "%s: tensor '%s' must be contiguous", label, name);
    return BV_OK;
}

static bv_status check_01(const char *label, const char *name, const bv_tensor *t) {
    const uint8_t *v = bv_tensor_ptr(t);
    int64_t T = t->shape[1];
    for (int64_t i = 0; i < bv_tensor_numel(t); i++)
        if (v[i] > 1)
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor '%s': value %u at [%lld, %lld], expected 0 or 1", label, name,
                                v[i], (long long)(i / T), (long long)(i % T));
    return BV_OK;
}

static bv_status check_finite(const char *label, const char *name, const bv_tensor *t) {
    const float *v = bv_tensor_ptr(t);
    for (int64_t i = 0; i < bv_tensor_numel(t); i++)
        if (!isfinite(v[i]))
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor '%s': non-finite value %g at flat index %lld", label, name,
                                (double)v[i], (long long)i);
    return BV_OK;
}

bv_status bv_vla_batch_check(const bv_vla *m, const bv_vla_batch *b, bv_vla_mode mode, const char *label) {
    return bv_vla_batch_check_config(&m->cfg, m->parts, b, mode, label);
}

bv_status bv_vla_batch_check_config(const bv_vla_config *c, unsigned parts, const bv_vla_batch *b, bv_vla_mode mode,
                                    const char *label) {
    if (!b->input_ids) return bv_error_set(BV_ERR_SHAPE, "%s: missing tensor 'input_ids' (I64 [B, T])", label);
    if (!b->attention_mask)
        return bv_error_set(BV_ERR_SHAPE, "%s: missing tensor 'attention_mask' (U8 [B, T])", label);
    int64_t any2[2] = {-1, -1};
    BV_TRY(check_tensor(label, "input_ids", b->input_ids, BV_DTYPE_I64, 2, any2));
    const int64_t B = b->input_ids->shape[0], T = b->input_ids->shape[1], BT[2] = {B, T};
    if (B < 1 || T < 1)
        return bv_error_set(BV_ERR_SHAPE, "%s: tensor 'input_ids': empty batch [%lld, %lld]", label, (long long)B,
                            (long long)T);
    BV_TRY(check_tensor(label, "attention_mask", b->attention_mask, BV_DTYPE_U8, 2, BT));
    BV_TRY(check_01(label, "attention_mask", b->attention_mask));
    const int64_t *ids = bv_tensor_ptr(b->input_ids);
    const uint8_t *am = bv_tensor_ptr(b->attention_mask);
    for (int64_t i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->text.vocab_size)
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor 'input_ids': id %lld at [%lld, %lld] outside the vocabulary [0, %lld)",
                                label, (long long)ids[i], (long long)(i / T), (long long)(i % T),
                                (long long)c->text.vocab_size);
    if (!(parts & BV_VLA_LLM))
        return bv_error_set(BV_ERR_ARG, "%s: the model was built without its language model", label);

    /* images */
    int64_t n_img = 0;
    const int64_t P = bv_config_vision_patches(c);
    if (b->pixel_values) {
        if ((parts & (BV_VLA_VISION | BV_VLA_CONNECTOR)) != (BV_VLA_VISION | BV_VLA_CONNECTOR))
            return bv_error_set(BV_ERR_ARG, "%s: 'pixel_values' given but the model has no vision tower and connector",
                                label);
        int64_t ps[5] = {B, -1, c->vision.num_channels, c->vision.image_size, c->vision.image_size};
        BV_TRY(check_tensor(label, "pixel_values", b->pixel_values, BV_DTYPE_F32, 5, ps));
        n_img = b->pixel_values->shape[1];
        if (n_img < 1)
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor 'pixel_values': no images (dimension 1 is 0)", label);
        BV_TRY(check_finite(label, "pixel_values", b->pixel_values));
    }
    for (int64_t r = 0; r < B; r++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++) {
            if (ids[r * T + t] != c->image_token_index) continue;
            n++;
            if (!am[r * T + t])
                return bv_error_set(BV_ERR_SHAPE, "%s: row %lld: image token at position %lld is padding (attention_mask 0)",
                                    label, (long long)r, (long long)t);
        }
        if (n != n_img * P)
            return bv_error_set(BV_ERR_SHAPE,
                                "%s: tensor 'input_ids' row %lld: %lld image tokens (id %lld), expected n_images*P = "
                                "%lld*%lld = %lld (n_images from 'pixel_values'%s)",
                                label, (long long)r, (long long)n, (long long)c->image_token_index, (long long)n_img,
                                (long long)P, (long long)(n_img * P), b->pixel_values ? "" : ", which is absent");
    }

    /* proprio */
    if (mode == BV_VLA_MODE_ACTION && !b->proprio)
        return bv_error_set(BV_ERR_SHAPE, "%s: missing tensor 'proprio' (F32 [%lld, %d]) for action mode", label,
                            (long long)B, c->proprio_dim);
    if (b->proprio) {
        if (!(parts & BV_VLA_PROPRIO))
            return bv_error_set(BV_ERR_ARG, "%s: 'proprio' given but the model has no proprio projector", label);
        int64_t ps[2] = {B, c->proprio_dim};
        BV_TRY(check_tensor(label, "proprio", b->proprio, BV_DTYPE_F32, 2, ps));
        BV_TRY(check_finite(label, "proprio", b->proprio));
    }
    for (int64_t r = 0; r < B; r++) {
        int64_t n = 0;
        for (int64_t t = 0; t < T; t++) {
            if (ids[r * T + t] != c->proprio_token_index) continue;
            n++;
            if (!am[r * T + t])
                return bv_error_set(BV_ERR_SHAPE, "%s: row %lld: proprio token at position %lld is padding", label,
                                    (long long)r, (long long)t);
        }
        if (n != (b->proprio ? 1 : 0))
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor 'input_ids' row %lld: %lld proprio tokens (id %lld), expected %d%s",
                                label, (long long)r, (long long)n, (long long)c->proprio_token_index,
                                b->proprio ? 1 : 0, b->proprio ? "" : " (no 'proprio' tensor given)");
    }

    if (mode == BV_VLA_MODE_ACTION) {
        if (b->labels) return bv_error_set(BV_ERR_SHAPE, "%s: tensor 'labels' is for LM mode, not action mode", label);
        if (!(parts & BV_VLA_ACTION_HEAD))
            return bv_error_set(BV_ERR_ARG, "%s: action mode needs the action head, which the model lacks", label);
        if (!b->action_mask)
            return bv_error_set(BV_ERR_SHAPE, "%s: missing tensor 'action_mask' (U8 [B, T], 1 at the action tokens)",
                                label);
        BV_TRY(check_tensor(label, "action_mask", b->action_mask, BV_DTYPE_U8, 2, BT));
        BV_TRY(check_01(label, "action_mask", b->action_mask));
        const uint8_t *a = bv_tensor_ptr(b->action_mask);
        const int64_t A = bv_config_action_tokens(c);
        for (int64_t r = 0; r < B; r++) {
            int64_t n = 0;
            for (int64_t t = 0; t < T; t++) {
                if (!a[r * T + t]) continue;
                n++;
                if (t == 0)
                    return bv_error_set(BV_ERR_SHAPE,
                                        "%s: tensor 'action_mask' row %lld: action token at position 0 (its hidden "
                                        "state is read at the position before it)",
                                        label, (long long)r);
                int64_t id = ids[r * T + t];
                if (!am[r * T + t] || !am[r * T + t - 1])
                    return bv_error_set(BV_ERR_SHAPE,
                                        "%s: tensor 'action_mask' row %lld: action position %lld or the readout "
                                        "position before it is padding (attention_mask 0)",
                                        label, (long long)r, (long long)t);
                if (id == c->image_token_index || id == c->proprio_token_index)
                    return bv_error_set(BV_ERR_SHAPE,
                                        "%s: tensor 'action_mask' row %lld: position %lld holds an image/proprio token",
                                        label, (long long)r, (long long)t);
            }
            if (n != A)
                return bv_error_set(BV_ERR_SHAPE,
                                    "%s: tensor 'action_mask' row %lld: %lld action positions, expected "
                                    "num_actions_chunk*action_dim = %d*%d = %lld",
                                    label, (long long)r, (long long)n, c->num_actions_chunk, c->action_dim, (long long)A);
        }
        if (b->actions) {
            int64_t as[3] = {B, c->num_actions_chunk, c->action_dim};
            BV_TRY(check_tensor(label, "actions", b->actions, BV_DTYPE_F32, 3, as));
            BV_TRY(check_finite(label, "actions", b->actions));
        }
    } else {
        if (b->action_mask || b->actions)
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor '%s' is for action mode, not LM mode", label,
                                b->action_mask ? "action_mask" : "actions");
        if (b->labels) {
            BV_TRY(check_tensor(label, "labels", b->labels, BV_DTYPE_I64, 2, BT));
            if (T < 2)
                return bv_error_set(BV_ERR_SHAPE, "%s: tensor 'labels': sequences of length %lld have no next token to "
                                    "predict (need T >= 2)", label, (long long)T);
            const int64_t *lb = bv_tensor_ptr(b->labels);
            for (int64_t i = 0; i < B * T; i++)
                if (lb[i] != -100 && (lb[i] < 0 || lb[i] >= c->text.vocab_size))
                    return bv_error_set(BV_ERR_SHAPE,
                                        "%s: tensor 'labels': %lld at [%lld, %lld] is neither -100 nor in [0, %lld)", label,
                                        (long long)lb[i], (long long)(i / T), (long long)(i % T),
                                        (long long)c->text.vocab_size);
        }
    }
    return BV_OK;
}

/* ---- forward ---- */

/* U8 (B, T) mask of ids == tok, in the graph's arena */
static bv_tensor token_mask(bv_graph *g, const bv_tensor *ids, int64_t tok) {
    const int64_t B = ids->shape[0], T = ids->shape[1];
    uint8_t *m = bv_graph_alloc(g, (size_t)(B * T));
    const int64_t *id = bv_tensor_ptr(ids);
    for (int64_t i = 0; i < B * T; i++) m[i] = id[i] == tok;
    return bv_tensor_make2(m, BV_DTYPE_U8, B, T);
}

/* A read-only F32 input as a graph leaf without a copy (the batch outlives the step). */
static bv_var *input_var(bv_graph *g, const bv_tensor *t, int ndim, const int64_t *shape) {
    bv_tensor v;
    bv_status st = bv_tensor_reshape(t, ndim, shape, &v);
    BV_ASSERT(st == BV_OK, "%s", bv_error_msg());
    return bv_var_wrap(g, &v, false);
}

bv_vla_out bv_vla_forward(bv_graph *g, const bv_params *p, bv_vla *m, const bv_vla_batch *b, bv_vla_mode mode) {
    const bv_vla_config *c = &m->cfg;
    const int64_t B = b->input_ids->shape[0], T = b->input_ids->shape[1], D = c->text.hidden_size;
    bv_vla_out out;
    memset(&out, 0, sizeof out);
    bv_var *x = bv_bitnet_embed(g, p, &m->llm, b->input_ids);

    if (b->pixel_values) {
        const bv_tensor *pv = b->pixel_values;
        const int64_t n = pv->shape[1], P = bv_config_vision_patches(c);
        int64_t s4[4] = {B * n, pv->shape[2], pv->shape[3], pv->shape[4]};
        double t0 = bv_prof_begin();
        bv_var *f = bv_siglip_forward(g, p, &m->vision, input_var(g, pv, 4, s4), NULL);
        bv_prof_span_end(BV_PROF_SPAN_VISION, t0);
        f = bv_mlp2_forward(g, p, &m->connector, f); /* (B*n, P, D) */
        int64_t so[3] = {B, n * P, D}, sr[2] = {B * n * P, D};
        out.image_features = bv_op_reshape(g, f, 3, so);
        bv_tensor im = token_mask(g, b->input_ids, c->image_token_index);
        x = bv_op_masked_scatter(g, x, &im, bv_op_reshape(g, f, 2, sr));
    }
    if (b->proprio) {
        int64_t s2[2] = {B, c->proprio_dim};
        bv_var *pf = bv_mlp2_forward(g, p, &m->proprio, input_var(g, b->proprio, 2, s2)); /* (B, D) */
        bv_tensor pm = token_mask(g, b->input_ids, c->proprio_token_index);
        x = bv_op_masked_scatter(g, x, &pm, pf);
    }
    const uint8_t *am = bv_tensor_ptr(b->attention_mask);

    if (mode == BV_VLA_MODE_ACTION) {
        const int64_t A = bv_config_action_tokens(c);
        int64_t zs[2] = {B * A, D};
        bv_tensor z = bv_tensor_arena_zeros(&g->arena, BV_DTYPE_F32, 2, zs);
        x = bv_op_masked_scatter(g, x, b->action_mask, bv_var_wrap(g, &z, false));
        double t0 = bv_prof_begin();
        bv_var *h = bv_bitnet_forward(g, p, &m->llm, x, am, false, -1);
        bv_prof_span_end(BV_PROF_SPAN_LLM, t0);
        out.last_hidden_state = h;
        /* readout: for the action token at p, the hidden state at p-1, in row-major order */
        int64_t *idx = bv_graph_alloc(g, (size_t)(B * A) * sizeof *idx), k = 0;
        const uint8_t *a = bv_tensor_ptr(b->action_mask);
        for (int64_t i = 0; i < B * T; i++)
            if (a[i]) idx[k++] = i - 1;
        BV_ASSERT(k == B * A, "vla: %lld action positions, expected %lld (unchecked batch?)", (long long)k,
                  (long long)(B * A));
        bv_tensor it = bv_tensor_make1(idx, BV_DTYPE_I64, B * A);
        int64_t sf[2] = {B * T, D}, sh[3] = {B, c->num_actions_chunk, (int64_t)c->action_dim * D};
        bv_var *feat = bv_op_index_select(g, bv_op_reshape(g, h, 2, sf), 0, &it);
        out.actions_pred = bv_action_head_forward(g, p, &m->head, bv_op_reshape(g, feat, 3, sh));
        if (b->actions) {
            int64_t sa[3] = {B, c->num_actions_chunk, c->action_dim};
            out.loss = bv_op_l1_loss(g, out.actions_pred, input_var(g, b->actions, 3, sa));
        }
    } else {
        bv_var *h = bv_bitnet_forward(g, p, &m->llm, x, am, true, -1);
        out.last_hidden_state = h;
        out.logits = bv_bitnet_logits(g, p, &m->llm, h);
        if (b->labels) {
            const int64_t V = c->text.vocab_size;
            /* logits at t are scored against the label at t+1 */
            int64_t *tg = bv_graph_alloc(g, (size_t)(B * (T - 1) + 1) * sizeof *tg);
            const int64_t *lb = bv_tensor_ptr(b->labels);
            for (int64_t r = 0; r < B; r++)
                for (int64_t t = 0; t + 1 < T; t++) tg[r * (T - 1) + t] = lb[r * T + t + 1];
            bv_tensor tt = bv_tensor_make1(tg, BV_DTYPE_I64, B * (T - 1));
            int64_t sl[2] = {B * (T - 1), V};
            bv_var *lg = bv_op_reshape(g, bv_op_narrow(g, out.logits, 1, 0, T - 1), 2, sl);
            out.loss = bv_op_cross_entropy(g, lg, &tt, -100);
        }
    }
    return out;
}

/* ---- memory plan ---- */

/* Floats of one sdpa's scratch (forward tile, or backward: row sums, key-chunk partials, tiles),
 * as src/kernels/attention.c sizes it: q (Bq, T, H, hd), keys S = T, Hkv kv heads. */
static double sdpa_scratch(double Bq, double T, double H, double Hkv, double hd, bool backward, int nt) {
    double tiles = nt * 128.0 * T;
    if (!backward) return tiles;
    double units = Bq * Hkv, nkb = ceil(T / 128.0);
    double nc = units >= 8 ? 1 : ceil(8 / units);
    nc = nc > nkb ? nkb : nc;
    nc = nc < 1 ? 1 : nc;
    return Bq * H * T + (nc - 1) * Bq * T * H * hd + 2 * tiles;
}

double bv_vla_plan_forward(const bv_vla_config *c, const bv_vla_batch *b, bv_vla_mode mode, bool backward) {
    const double r = backward ? 1.0 : 0.0; /* gradients and saved inputs exist only when recorded */
    const int nt = bv_num_threads();
    const double B = (double)b->input_ids->shape[0], T = (double)b->input_ids->shape[1], N = B * T;
    const bv_text_config *t = &c->text;
    const double D = t->hidden_size, F = t->intermediate_size, H = t->num_attention_heads;
    const double hd = D / H, KV = t->num_key_value_heads * hd, V = (double)t->vocab_size;
    double f = 0;       /* floats in the arena */
    double scratch = 0; /* floats in the graph's scratch buffer: the largest single request */
#define SCRATCH(x) scratch = BV_MAX(scratch, (double)(x))
    /* embedding, then one masked scatter each for images, proprio and (action mode) the zeroed
     * action rows: a (B, T, D) value and gradient each */
    f += N * D * (1 + r) * 4;
    /* decoder layer: values (norms, projections, rope, attention, residuals, GLU) + the inputs each
     * of the 7 BitLinears saves when recorded (in scratch otherwise) + gradients of every var,
     * reshapes included; rmsnorm rstd and attention lse */
    double layer = N * (10 * D + 3 * KV + 5 * F) + r * N * (6 * D + F) + r * N * (12 * D + 6 * KV + 5 * F) +
                   4 * N + N * H;
    f += t->num_hidden_layers * layer;
    f += N * D * (1 + r) + N; /* final norm */
    SCRATCH((1 - r) * N * BV_MAX(D, F) * 1.25 + N * BV_MAX(D, F) / 4 + N); /* xq, int8 codes + row scales */
    SCRATCH(sdpa_scratch(B, T, H, t->num_key_value_heads, hd, backward, nt));
    SCRATCH(r * 2 * ceil(N / 16) * BV_MAX(D, F)); /* norm weight gradients */
    if (b->pixel_values) {
        const bv_vision_config *v = &c->vision;
        const double nimg = B * (double)b->pixel_values->shape[1], P = bv_config_vision_patches(c), Nv = nimg * P;
        const double Dv = v->hidden_size, Mv = v->intermediate_size, Hv = v->num_attention_heads;
        const double pp = (double)v->num_channels * v->patch_size * v->patch_size;
        const double qa = v->act_bits == 8 ? 1.0 : 0.0;
        f += Nv * pp + Nv * Dv * 2 * (1 + r) + r * Dv * pp; /* patchify, patch linear, + position; weight view grad */
        double vlayer = Nv * (10 * Dv + 2 * Mv) + qa * r * Nv * (5 * Dv + Mv) + r * Nv * (14 * Dv + 2 * Mv) +
                        2 * Nv * 2 + Nv * Hv;
        f += bv_siglip_layers_run(v, c->vision_feature_layer) * vlayer;
        f += Nv * D * 3 * (1 + r) + r * Nv * D; /* connector (linear, act, linear) and the feature view's grad */
        SCRATCH(qa * (1 - r) * Nv * BV_MAX(Dv, Mv) * 1.25);
        SCRATCH(sdpa_scratch(nimg, P, Hv, Hv, Dv / Hv, backward, nt));
        SCRATCH(r * 2 * ceil(Nv / 16) * BV_MAX(Dv, Mv));
    }
    if (b->proprio) f += B * D * 3 * (1 + r) + B * c->proprio_dim;
    if (mode == BV_VLA_MODE_ACTION) {
        const double A = bv_config_action_tokens(c), Nc = B * c->num_actions_chunk, I = (double)c->action_dim * D;
        const double nb = c->action_head_num_blocks;
        f += B * A * D;                        /* the zero rows */
        f += B * A * D * (1 + r) + r * Nc * I; /* readout (index_select) and its (B, chunk, I) view */
        f += Nc * I * (1 + r) + 2 * Nc;        /* head: layer_norm1 */
        f += Nc * D * 2 * (1 + r) + nb * (Nc * D * 4 * (1 + r) + 2 * Nc) + Nc * D * (1 + r) + 2 * Nc +
             Nc * c->action_dim * (1 + r); /* fc1, relu, blocks, layer_norm2, fc2 */
        SCRATCH(r * 2 * ceil(Nc / 16) * I);
    } else {
        f += N * V * (1 + r); /* logits */
        if (b->labels) {
            const double Nl = B * (T - 1);
            f += Nl * V * (1 + 2 * r) + 3 * Nl; /* the narrowed logits, its view's gradient; targets, lse */
        }
    }
#undef SCRATCH
    /* vars, tape records, masks and other small allocations: 64 KiB per layer and 1 MiB; the
     * scratch buffer grows to 1.25 times a request. The count above matches the arena's high-water
     * mark within a few percent at scale (tests/test_build.c); 10% more keeps it a bound when an
     * op's saved tensors change. */
    double layers = t->num_hidden_layers + (b->pixel_values ? c->vision.num_hidden_layers : 0);
    return 1.1 * (4.0 * f + 4.0 * 1.25 * scratch) + 65536.0 * layers + 1048576.0;
}
