/* policy.c - eval/policy.h: a policy from a bundle (packed) or a checkpoint, acting on observations. */
#include "eval/policy.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "data/augment.h"
#include "models/build.h"
#include "models/bundle.h"
#include "recipes/checkpoint.h"
#include "src/action_norm.h"
#include "src/safetensors.h"
#include "src/ternary_pack.h"
#include "src/tokenizer.h"

struct bv_policy {
    char *path, *source;
    bool bundle;      /* loaded from a bundle (else a checkpoint) */
    bv_model model;   /* vla + params (a bundle's: built here, its packed weights external) */
    bv_bundle bun;    /* a bundle (checked), its model.safetensors kept mapped: embed_tokens is read in place */
    void *embed_copy; /* embed_tokens copied when the file leaves it misaligned */
    double weight_bytes;
    bv_tok *tok;
    bv_action_norm anorm, pnorm;
    char *stats_path; /* the file they came from */
    bv_policy_opts o;
    int n_images, S, image_tokens, chunk, A, P;
    /* per act */
    bv_graph g;
    bool graph_ready;
    bv_aug_cfg aug;
    bv_aug_scratch scratch;
    char *last_instruction;
    int64_t *ids;
    uint8_t *attn, *amask;
    int64_t T;
    float *pix, *prop;
};

void bv_policy_opts_default(bv_policy_opts *o) {
    memset(o, 0, sizeof *o);
    o->center_crop = true;
}

int64_t bv_policy_tokens(const bv_policy *p) { return p->T; }
int bv_policy_chunk(const bv_policy *p) { return p->chunk; }
int bv_policy_action_dim(const bv_policy *p) { return p->A; }
int bv_policy_state_dim(const bv_policy *p) { return p->P; }
int bv_policy_n_images(const bv_policy *p) { return p->n_images; }
const char *bv_policy_source(const bv_policy *p) { return p->source; }
double bv_policy_weight_bytes(const bv_policy *p) { return p->weight_bytes; }
const bv_action_norm *bv_policy_action_norm(const bv_policy *p) { return &p->anorm; }
const bv_action_norm *bv_policy_proprio_norm(const bv_policy *p) { return &p->pnorm; }
const char *bv_policy_statistics_path(const bv_policy *p) { return p->stats_path; }

static char *join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *s = bv_xmalloc(n);
    snprintf(s, n, "%s/%s", dir, name);
    return s;
}

/* An integer field of a JSON file (a dotted path of objects), or `dflt` when absent. */
static int json_int(const char *path, const char *k1, const char *k2, int dflt) {
    json_t *root = json_load_file(path, 0, NULL);
    if (!root) return dflt;
    json_t *v = json_object_get(root, k1);
    if (v && k2) v = json_object_get(v, k2);
    int r = json_is_integer(v) ? (int)json_integer_value(v) : dflt;
    json_decref(root);
    return r;
}

/* ---- a bundle: packed ternary linears, the rest converted, embed_tokens in place ---- */

/* Which layer of the vision tower a parameter name belongs to, or -1. */
static int vision_layer(const char *name) {
    static const char pre[] = "vision_tower.vision_model.encoder.layers.";
    if (strncmp(name, pre, sizeof pre - 1)) return -1;
    return atoi(name + sizeof pre - 1);
}

/* Let the kernel drop this process's pages of a tensor of the mapped file once it has been copied
 * or packed: the peak resident memory is then the packed weights, not the file as well. */
static void drop_pages(const bv_st_file *f, const char *name) {
    int i = bv_st_find(f, name);
    if (i < 0) return;
    const long pg = sysconf(_SC_PAGESIZE);
    uintptr_t b = (uintptr_t)(f->data + f->entries[i].begin), e = (uintptr_t)(f->data + f->entries[i].end);
    b = (b + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1); /* whole pages inside the tensor only */
    e &= ~((uintptr_t)pg - 1);
    if (e > b) madvise((void *)b, e - b, MADV_DONTNEED);
}

/* Whether `name` is an item of the comma-separated list (NULL: empty). */
static bool name_listed(const char *list, const char *name) {
    size_t n = strlen(name);
    for (const char *s = list; s && *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && !strncmp(s, name, n)) return true;
        s = e ? e + 1 : NULL;
    }
    return false;
}

static bv_status tensor_bytes(const bv_st_file *f, const char *name, bv_dtype want, const uint8_t **data,
                              size_t *n) {
    int i = bv_st_find(f, name);
    if (i < 0) return bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s' is missing", f->path, name);
    const bv_st_entry *e = &f->entries[i];
    if (e->dtype != want)
        return bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s' has dtype %s, expected %s", f->path, name,
                            bv_dtype_name(e->dtype), bv_dtype_name(want));
    *data = f->data + e->begin;
    *n = (size_t)(e->end - e->begin);
    return BV_OK;
}

static bv_status load_bundle(bv_policy *p) {
    bv_status st = BV_OK;
    bv_params *P = &p->model.params;
    bv_vla_ternary *tl = NULL;
    if ((st = bv_bundle_open(&p->bun, p->path))) return st;
    const bv_st_file *F = &p->bun.st;
    const char *st_path = F->path;
    bv_tpack_format fmt = p->bun.layout;
    bv_vla_config cfg = p->bun.cfg;
    char src[96];
    snprintf(src, sizeof src, "bundle (%s, %s)", bv_bundle_layout_name(fmt), bv_bundle_dtype_name(p->bun.dtype));
    p->source = bv_xstrdup(src);

    bv_params_init(P);
    if ((st = bv_vla_init(&p->model.vla, &cfg, BV_VLA_ALL, P))) goto out;
    bv_vla *m = &p->model.vla;
    int nt = bv_vla_ternary_list(m, &tl);
    if (nt < 0) {
        st = bv_error_set(BV_ERR_NOMEM, "listing the ternary layers");
        goto out;
    }
    /* kept out of the fp32 store: the packed weights, layers the forward never runs, the LM head,
     * and embed_tokens (read in place) */
    for (int i = 0; i < nt; i++) bv_params_set_external(P, tl[i].w);
    for (int i = 0; i < P->n; i++) {
        int L = vision_layer(P->items[i].name);
        if (L >= m->vision.n_run) bv_params_set_external(P, i);
    }
    if (m->llm.lm_head >= 0) bv_params_set_external(P, m->llm.lm_head);
    bv_params_set_external(P, m->llm.embed);
    if ((st = bv_params_finalize(P))) goto out;
    p->weight_bytes = 4.0 * (double)P->numel_total;

    /* the fp32 tensors */
    for (int i = 0; i < P->n; i++) {
        const bv_param *q = &P->items[i];
        if (q->external) continue;
        if ((st = bv_st_read(F, q->name, BV_DTYPE_F32, q->ndim, q->shape, q->numel, P->values + q->offset)))
            goto out;
        drop_pages(F, q->name);
    }
    /* the packed ternary linears: the file's tensors found and checked in order, then unpacked and
     * repacked into the kernels' layout one layer per thread (independent layers; each thread holds
     * one layer's int8 codes for a moment) */
    {
        typedef struct {
            const uint8_t *bytes;
            size_t nb;
            float scale;
            bv_tpack_format tf;
            bv_status st;
            char *msg;
        } job;
        job *jobs = bv_xcalloc((size_t)(nt ? nt : 1), sizeof *jobs);
        for (int i = 0; i < nt && !st; i++) {
            if (!tl[i].used) continue;
            const bv_param *w = &P->items[tl[i].w];
            job *j = &jobs[i];
            if ((st = tensor_bytes(F, w->name, BV_DTYPE_U8, &j->bytes, &j->nb))) break;
            j->scale = NAN;
            if (fmt == BV_TPACK_HF) { /* the multiplicative weight_scale; AutoBitLinear's bias is divided by it */
                char sn[300];
                snprintf(sn, sizeof sn, "%.*s.weight_scale", (int)(strlen(w->name) - strlen(".weight")), w->name);
                if ((st = bv_st_read(F, sn, BV_DTYPE_F32, -1, NULL, 1, &j->scale))) break;
                if (tl[i].b >= 0) {
                    bv_tensor bt = bv_params_value(P, tl[i].b);
                    float *b = bt.data;
                    for (int64_t k = 0; k < bv_tensor_numel(&bt); k++) b[k] *= j->scale;
                }
            }
            j->tf = fmt; /* an i2s bundle stores what I2_S cannot hold as TQ5 (models/bundle.h) */
            if (fmt == BV_TPACK_I2S && name_listed(bv_st_meta(F, "tq5_tensors"), w->name)) j->tf = BV_TPACK_TQ5;
        }
        if (!st) {
#pragma omp parallel for schedule(dynamic, 1)
            for (int i = 0; i < nt; i++) {
                if (!tl[i].used) continue;
                const bv_param *w = &P->items[tl[i].w];
                job *j = &jobs[i];
                j->st = bv_qweight_set_packed(tl[i].cache, w->shape[0], w->shape[1], j->tf, j->bytes, j->nb, j->scale);
                if (j->st) j->msg = bv_xstrdup(bv_error_msg()); /* messages are per thread */
                else drop_pages(F, w->name);
            }
            for (int i = 0; i < nt; i++) {
                if (!tl[i].used) continue;
                if (jobs[i].st && !st)
                    st = bv_error_set(jobs[i].st, "%s: tensor '%s': %s", st_path, P->items[tl[i].w].name, jobs[i].msg);
                if (!jobs[i].st) p->weight_bytes += (double)bv_ternary_mat_bytes(&tl[i].cache->tmat);
            }
        }
        for (int i = 0; i < nt; i++) free(jobs[i].msg);
        free(jobs);
        if (st) goto out;
    }
    /* embed_tokens in place */
    {
        const bv_param *e = &P->items[m->llm.embed];
        int i = bv_st_find(F, e->name);
        if (i < 0) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s' is missing", st_path, e->name);
            goto out;
        }
        const bv_st_entry *en = &F->entries[i];
        if ((en->dtype != BV_DTYPE_BF16 && en->dtype != BV_DTYPE_F32) || en->ndim != 2 || en->shape[0] != e->shape[0] ||
            en->shape[1] != e->shape[1]) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s' is %s of rank %d (%lld, %lld), expected BF16 or F32 (%lld, %lld)",
                              st_path, e->name, bv_dtype_name(en->dtype), en->ndim, (long long)en->shape[0],
                              (long long)(en->ndim > 1 ? en->shape[1] : 0), (long long)e->shape[0], (long long)e->shape[1]);
            goto out;
        }
        const uint8_t *data = F->data + en->begin;
        size_t nb = (size_t)(en->end - en->begin), al = en->dtype == BV_DTYPE_BF16 ? 2 : 4;
        if ((uintptr_t)data % al) {
            p->embed_copy = bv_aligned_alloc(nb);
            memcpy(p->embed_copy, data, nb);
            data = p->embed_copy;
        }
        bv_params_set_external_data(P, m->llm.embed, data, en->dtype);
        p->weight_bytes += (double)nb;
    }
    /* Everything is copied out but embed_tokens: let the kernel drop the mapped pages this process
     * touched (reading and checking them), so only the rows prompts use come back. */
    if (!p->embed_copy) madvise(F->map, F->map_size, MADV_DONTNEED);
    bv_params_mark_updated(P);
out:
    free(tl);
    return st;
}

/* ---- a checkpoint: the training model ---- */

static bv_status load_checkpoint(bv_policy *p) {
    bool rnd = p->o.random_config != NULL;
    char *cfg_path = rnd ? bv_xstrdup(p->o.random_config) : join(p->path, "config.json");
    bv_model_spec s = {.config = cfg_path, .purpose = BV_MODEL_INFER, .weights = rnd ? NULL : p->path,
                       .seed = p->o.seed};
    bv_status st = bv_model_build(&p->model, &s);
    free(cfg_path);
    if (st) return st;
    p->source = bv_xstrdup(rnd ? "random weights (training model)" : "checkpoint");
    p->weight_bytes = 4.0 * (double)p->model.params.numel_total + p->model.cache_bytes;
    return BV_OK;
}

bv_status bv_policy_load(bv_policy **out, const char *path, const bv_policy_opts *o) {
    *out = NULL;
    bv_policy *p = bv_xcalloc(1, sizeof *p);
    if (o) p->o = *o;
    else bv_policy_opts_default(&p->o);
    bv_status st = BV_OK;
    char *tokp = NULL;
    if (p->o.random_config) {
        p->path = bv_xstrdup(path);
        if (!p->o.tokenizer || !p->o.statistics) {
            st = bv_error_set(BV_ERR_ARG, "a random policy needs a tokenizer and dataset statistics");
            goto out;
        }
    } else if (bv_bundle_is_bundle(path)) {
        p->bundle = true;
        p->path = bv_xstrdup(path);
    } else if (bv_ckpt_is_checkpoint(path)) {
        p->path = bv_xstrdup(path);
    } else {
        char *latest = NULL;
        if (bv_ckpt_latest(path, &latest)) {
            st = bv_error_set(BV_ERR_IO, "%s: neither a bundle (no manifest.json), a checkpoint (no trainer_state.json) "
                                         "nor a run directory (no checkpoints/latest)", path);
            goto out;
        }
        p->path = latest;
    }
    st = p->bundle ? load_bundle(p) : load_checkpoint(p);
    if (st) goto out;
    const bv_vla_config *c = &p->model.vla.cfg;
    p->S = c->vision.image_size;
    p->image_tokens = bv_config_vision_patches(c);
    p->chunk = c->num_actions_chunk;
    p->A = c->action_dim;
    p->P = c->proprio_dim;
    if (p->o.n_images > 0) {
        p->n_images = p->o.n_images;
    } else { /* a bundle's manifest ("policy": {"n_images"}) or a checkpoint's recipe (data.n_images) */
        char *rp = join(p->path, "recipe.json");
        p->n_images = p->bundle ? (p->bun.n_images ? p->bun.n_images : 2)
                                : p->o.random_config ? 2 : json_int(rp, "data", "n_images", 2);
        free(rp);
    }
    if (p->n_images < 1 || p->n_images > 2) {
        st = bv_error_set(BV_ERR_ARG, "%s: n_images %d, expected 1 or 2", p->path, p->n_images);
        goto out;
    }
    tokp = p->o.tokenizer ? bv_xstrdup(p->o.tokenizer)
           : p->bundle    ? bv_xstrdup(p->bun.tokenizer_path)
                          : join(p->path, "tokenizer.json");
    const char *statp = p->stats_path = p->o.statistics ? bv_xstrdup(p->o.statistics)
                                        : p->bundle     ? bv_xstrdup(p->bun.statistics_path)
                                                        : join(p->path, "dataset_statistics.json");
    if ((st = bv_tok_load(&p->tok, tokp))) goto out;
    if (bv_tok_token_id(p->tok, "<proprio_pad>") < 0 && (st = bv_tok_bitvla_edit(p->tok))) goto out;
    if ((st = bv_action_norm_read(statp, NULL, "action", &p->anorm)) ||
        (st = bv_action_norm_read(statp, NULL, "proprio", &p->pnorm)))
        goto out;
    if (p->anorm.dim != p->A || p->pnorm.dim != p->P) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: action dimension %d and proprio dimension %d, but the model has %d and %d",
                          statp, p->anorm.dim, p->pnorm.dim, p->A, p->P);
        goto out;
    }
    bv_aug_cfg_default(&p->aug);
    p->pix = bv_aligned_alloc((size_t)p->n_images * 3 * (size_t)p->S * (size_t)p->S * sizeof(float));
    p->prop = bv_xmalloc((size_t)p->P * sizeof(float));
out:
    free(tokp);
    if (st) {
        bv_error_prefix(st, "loading policy %s", path);
        bv_policy_free(p);
        return st;
    }
    *out = p;
    return BV_OK;
}

void bv_policy_free(bv_policy *p) {
    if (!p) return;
    bv_model_free(&p->model);
    if (p->bundle) bv_bundle_close(&p->bun);
    bv_aligned_free(p->embed_copy);
    bv_tok_free(p->tok);
    if (p->graph_ready) bv_graph_free(&p->g);
    bv_aug_scratch_free(&p->scratch);
    free(p->last_instruction);
    free(p->ids), free(p->attn), free(p->amask);
    bv_aligned_free(p->pix);
    free(p->prop);
    free(p->path), free(p->source), free(p->stats_path);
    free(p);
}

/* ---- acting ---- */

static bv_status set_prompt(bv_policy *p, const char *instruction) {
    if (p->last_instruction && !strcmp(p->last_instruction, instruction)) return BV_OK;
    bv_tok_action_cfg tc = bv_tok_action_cfg_default();
    tc.n_images = p->n_images;
    tc.image_tokens = p->image_tokens;
    tc.num_actions_chunk = p->chunk;
    tc.action_dim = p->A;
    bv_tok_action_seq seq;
    bv_status st = bv_tok_action_prompt(p->tok, instruction, &tc, NULL, &seq);
    if (st) return bv_error_prefix(st, "instruction \"%s\"", instruction);
    free(p->ids), free(p->attn), free(p->amask);
    p->T = seq.len;
    p->ids = bv_xmalloc((size_t)seq.len * sizeof *p->ids);
    p->attn = bv_xmalloc((size_t)seq.len);
    p->amask = bv_xmalloc((size_t)seq.len);
    for (int64_t j = 0; j < seq.len; j++) {
        p->ids[j] = seq.ids[j];
        p->attn[j] = 1;
        p->amask[j] = seq.action_mask[j];
    }
    bv_tok_action_seq_free(&seq);
    free(p->last_instruction);
    p->last_instruction = bv_xstrdup(instruction);
    return BV_OK;
}

static void put_image(bv_policy *p, const uint8_t *rgb, int w, int h, int cam) {
    bv_aug_params ap;
    bv_aug_center(&p->aug, &ap);
    if (!p->o.center_crop) ap.x0 = 0, ap.y0 = 0, ap.w = 1, ap.h = 1;
    size_t img = 3 * (size_t)p->S * (size_t)p->S;
    bv_aug_apply(rgb, w, h, &ap, p->S, p->pix + (size_t)cam * img, &p->scratch);
}

void bv_policy_loader_opts(const bv_policy *p, bv_loader_opts *lo) {
    bv_loader_opts_default(lo);
    lo->tok = p->tok;
    lo->train = false;
    lo->shuffle = false;
    lo->drop_last = false;
    lo->epochs = 1;
    lo->image_size = p->S;
    lo->n_images = p->n_images;
    lo->image_tokens = p->image_tokens;
    lo->chunk = p->chunk;
    lo->action_norm = &p->anorm;
    lo->proprio_norm = &p->pnorm;
    lo->norm_path = p->stats_path;
    if (!p->o.center_crop) lo->aug.crop_scale = 1.0; /* the centred box is the whole image */
}

/* The forward in action mode of a checked batch; the actions (B, chunk, A) borrowed from the graph
 * until the next forward. */
static const float *forward(bv_policy *p, const bv_vla_batch *b) {
    if (!p->graph_ready) { /* sized by the first batch; the arena grows if a later one needs more */
        bv_graph_init(&p->g, (size_t)bv_vla_plan_forward(&p->model.vla.cfg, b, BV_VLA_MODE_ACTION, false));
        p->graph_ready = true;
    }
    bv_graph_reset(&p->g);
    bv_graph_no_grad_begin(&p->g);
    bv_vla_out y = bv_vla_forward(&p->g, &p->model.params, &p->model.vla, b, BV_VLA_MODE_ACTION);
    bv_graph_no_grad_end(&p->g);
    return bv_var_f32(y.actions_pred);
}

bv_status bv_policy_act_batch(bv_policy *p, const bv_vla_batch *b, const char *label, float *normalized) {
    BV_TRY(bv_vla_batch_check(&p->model.vla, b, BV_VLA_MODE_ACTION, label));
    const float *a = forward(p, b);
    memcpy(normalized, a, (size_t)b->input_ids->shape[0] * (size_t)p->chunk * (size_t)p->A * sizeof(float));
    return BV_OK;
}

bv_status bv_policy_act(bv_policy *p, const bv_policy_obs *obs, float *actions, float *normalized) {
    if (!obs->full_image || obs->full_w < 1 || obs->full_h < 1)
        return bv_error_set(BV_ERR_ARG, "observation: full_image is missing (expected RGB, height x width x 3)");
    if (p->n_images > 1 && (!obs->wrist_image || obs->wrist_w < 1 || obs->wrist_h < 1))
        return bv_error_set(BV_ERR_ARG, "observation: wrist_image is missing (this policy takes %d images)", p->n_images);
    if (!obs->state || obs->state_dim != p->P)
        return bv_error_set(BV_ERR_ARG, "observation: state has %d values, expected %d", obs->state ? obs->state_dim : 0,
                            p->P);
    for (int i = 0; i < p->P; i++)
        if (!isfinite(obs->state[i]))
            return bv_error_set(BV_ERR_ARG, "observation: state[%d] is %g, expected a finite number", i,
                                (double)obs->state[i]);
    if (!obs->instruction) return bv_error_set(BV_ERR_ARG, "observation: instruction is missing");
    BV_TRY(set_prompt(p, obs->instruction));
    put_image(p, obs->full_image, obs->full_w, obs->full_h, 0);
    if (p->n_images > 1) put_image(p, obs->wrist_image, obs->wrist_w, obs->wrist_h, 1);
    bv_action_norm_apply(&p->pnorm, obs->state, 1, p->prop);

    int64_t s_ids[2] = {1, p->T}, s_pix[5] = {1, p->n_images, 3, p->S, p->S};
    bv_tensor ids = bv_tensor_make(p->ids, BV_DTYPE_I64, 2, s_ids), attn = bv_tensor_make(p->attn, BV_DTYPE_U8, 2, s_ids);
    bv_tensor am = bv_tensor_make(p->amask, BV_DTYPE_U8, 2, s_ids), pix = bv_tensor_make(p->pix, BV_DTYPE_F32, 5, s_pix);
    bv_tensor prop = bv_tensor_make2(p->prop, BV_DTYPE_F32, 1, p->P);
    bv_vla_batch b = {.input_ids = &ids, .attention_mask = &attn, .pixel_values = &pix, .proprio = &prop,
                      .action_mask = &am};
    BV_TRY(bv_vla_batch_check(&p->model.vla, &b, BV_VLA_MODE_ACTION, "observation"));
    const float *a = forward(p, &b);
    int64_t n = (int64_t)p->chunk * p->A;
    if (normalized) memcpy(normalized, a, (size_t)n * sizeof(float));
    bv_action_norm_invert(&p->anorm, a, p->chunk, actions);
    return BV_OK;
}
