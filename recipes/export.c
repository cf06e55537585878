/* export.c - checkpoint -> bundle (recipes/export.h). */
#include "recipes/export.h"

#include <errno.h>
#include <limits.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "models/build.h"
#include "recipes/checkpoint.h"
#include "src/atomic_file.h"
#include "src/kernels/bitlinear.h"

static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *s = bv_xmalloc(a + b + 2);
    memcpy(s, dir, a);
    s[a] = '/';
    memcpy(s + a + 1, name, b + 1);
    return s;
}

static bool is_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

static bool is_dir(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* the checkpoint directory of `src` (itself, or a run directory's checkpoints/latest), malloc'd */
static bv_status resolve_checkpoint(const char *src, char **ckpt) {
    *ckpt = NULL;
    if (!is_dir(src)) return bv_error_set(BV_ERR_IO, "%s: not a directory (expected a checkpoint or a run directory)", src);
    char *cfg = join(src, "config.json"), *ck = join(src, "checkpoints");
    bool direct = is_file(cfg), run = is_dir(ck);
    free(cfg), free(ck);
    if (direct) {
        char *real = realpath(src, NULL); /* the manifest names the checkpoint, not a `latest` link */
        *ckpt = real ? real : bv_xstrdup(src);
        return BV_OK;
    }
    if (run) return bv_ckpt_latest(src, ckpt);
    return bv_error_set(BV_ERR_FORMAT,
                        "%s: neither a checkpoint (no config.json) nor a run directory (no checkpoints/latest)", src);
}

/* a file to copy into the bundle: must exist; statistics must be a JSON object naming a dataset */
static bv_status check_input(const char *path, const char *what, bool statistics) {
    if (!is_file(path)) return bv_error_set(BV_ERR_IO, "%s: %s not found (%s)", path, what, strerror(errno ? errno : ENOENT));
    if (!statistics) return BV_OK;
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    bool ok = json_is_object(o) && json_object_size(o) > 0;
    json_decref(o);
    if (!o) return bv_error_set(BV_ERR_FORMAT, "%s: invalid JSON at line %d: %s", path, e.line, e.text);
    if (!ok)
        return bv_error_set(BV_ERR_FORMAT, "%s: expected an object {\"<dataset name>\": {\"action\": ...}}", path);
    return BV_OK;
}


/* ---- the data section of model.safetensors, tensor by tensor ---- */

typedef struct {
    const bv_bundle_plan *pl;
    const bv_params *p;
    bv_tpack_format layout;
    float *m; /* per ternary layer: the quantizer's m = max(mean|W|, 1e-5), set when its codes are written */
    FILE *log;
} write_ctx;

static bv_status put(FILE *fp, const void *data, size_t n, const char *tmp) {
    if (n && fwrite(data, 1, n, fp) != n) return bv_error_set(BV_ERR_IO, "%s: write failed (%s)", tmp, strerror(errno));
    return BV_OK;
}

static bv_status write_dense(FILE *fp, const float *v, int64_t n, bv_dtype dt, const char *tmp) {
    if (dt == BV_DTYPE_F32) return put(fp, v, (size_t)n * 4, tmp);
    enum { CH = 1 << 16 };
    uint16_t *buf = bv_xmalloc(CH * sizeof *buf);
    bv_status st = BV_OK;
    for (int64_t i0 = 0; i0 < n && !st; i0 += CH) {
        int64_t len = BV_MIN((int64_t)CH, n - i0);
        for (int64_t i = 0; i < len; i++) buf[i] = bv_f32_to_bf16(v[i0 + i]);
        st = put(fp, buf, (size_t)len * 2, tmp);
    }
    free(buf);
    return st;
}

/* quantize exactly as the BitLinear forward does (bv_k_quant_weight_fwd) and pack */
static bv_status write_codes(write_ctx *c, const bv_bundle_tensor *t, const float *w, FILE *fp, const char *tmp) {
    const int64_t n = t->rows * t->cols;
    float m = bv_k_absmean(w, n);
    m = m < BV_BITLINEAR_EPS ? BV_BITLINEAR_EPS : m;
    if (!isfinite(m))
        return bv_error_set(BV_ERR_ARG, "tensor '%s': mean|W| is %g: the weights are not finite", t->name, (double)m);
    int8_t *codes = bv_aligned_alloc_try((size_t)(n ? n : 1));
    uint8_t *bytes = bv_aligned_alloc_try(t->bytes ? t->bytes : 1);
    bv_status st = BV_OK;
    if (!codes || !bytes)
        st = bv_error_set(BV_ERR_NOMEM, "tensor '%s': cannot allocate %lld + %zu bytes for its codes", t->name,
                          (long long)n, t->bytes);
    if (!st) {
        bv_k_quant_weight_fwd(codes, NULL, w, n);
        st = bv_tpack_pack(t->fmt, codes, t->rows, t->cols, m, bytes, t->bytes);
        if (st) st = bv_error_prefix(st, "tensor '%s'", t->name);
    }
    if (!st) st = put(fp, bytes, t->bytes, tmp);
    bv_aligned_free(codes);
    bv_aligned_free(bytes);
    c->m[t->ternary] = m;
    return st;
}

static bv_status write_data(void *ctx, FILE *fp, const char *tmp) {
    write_ctx *c = ctx;
    const bv_bundle_plan *pl = c->pl;
    double done = 0, total = pl->report.bytes, next = 0.1;
    for (int i = 0; i < pl->n; i++) {
        const bv_bundle_tensor *t = &pl->t[i];
        const bv_param *q = &c->p->items[t->param];
        const float *v = c->p->values + q->offset;
        bv_status st = BV_OK;
        switch (t->role) {
        case BV_BUNDLE_T_DENSE: st = write_dense(fp, v, q->numel, t->dtype, tmp); break;
        case BV_BUNDLE_T_CODES: st = write_codes(c, t, v, fp, tmp); break;
        case BV_BUNDLE_T_SCALE: st = put(fp, &c->m[t->ternary], 4, tmp); break;
        case BV_BUNDLE_T_BIAS:
            if (c->layout == BV_TPACK_HF) {
                /* AutoBitLinear computes (x Wcodes^T + b') * weight_scale: b' = b / m keeps y = x Wq^T + b */
                float *b = bv_xmalloc((size_t)q->numel * sizeof *b);
                const float m = c->m[t->ternary];
                for (int64_t k = 0; k < q->numel; k++) b[k] = v[k] / m;
                st = put(fp, b, (size_t)q->numel * 4, tmp);
                free(b);
            } else st = put(fp, v, (size_t)q->numel * 4, tmp);
            break;
        }
        if (st) return st;
        done += (double)t->bytes;
        if (c->log && total > 1e8 && done >= next * total) {
            fprintf(c->log, "  model.safetensors: %.0f%% (%.2f GB)\n", 100.0 * done / total, done / 1e9);
            fflush(c->log);
            while (next * total <= done) next += 0.1;
        }
    }
    return BV_OK;
}

static bv_status write_model(const char *path, const bv_bundle_plan *pl, const bv_params *p, bv_tpack_format layout,
                             bv_dtype dtype, FILE *log) {
    bv_st_item *items = bv_xcalloc((size_t)(pl->n ? pl->n : 1), sizeof *items);
    for (int i = 0; i < pl->n; i++) {
        const bv_bundle_tensor *t = &pl->t[i];
        items[i].name = t->name;
        items[i].t = bv_tensor_make(NULL, t->dtype, t->ndim, t->shape);
    }
    /* the weights stored in another format than the layout's (TQ5 in an i2s bundle), by name */
    size_t fl = 1;
    for (int i = 0; i < pl->n; i++)
        if (pl->t[i].role == BV_BUNDLE_T_CODES && pl->t[i].fmt != layout) fl += strlen(pl->t[i].name) + 1;
    char *fallback = bv_xcalloc(fl, 1);
    for (int i = 0; i < pl->n; i++)
        if (pl->t[i].role == BV_BUNDLE_T_CODES && pl->t[i].fmt != layout) {
            if (fallback[0]) strcat(fallback, ",");
            strcat(fallback, pl->t[i].name);
        }
    const char *meta[] = {"format", BV_BUNDLE_FORMAT, "layout", bv_bundle_layout_name(layout), "dtype",
                          bv_bundle_dtype_name(dtype), "tq5_tensors", fallback};
    write_ctx c = {pl, p, layout, bv_xcalloc((size_t)(pl->n_ternary ? pl->n_ternary : 1), sizeof(float)), log};
    bv_status st = bv_st_save_stream(path, pl->n, items, fallback[0] ? 4 : 3, meta, write_data, &c);
    free(fallback);
    free(c.m);
    free(items);
    return st;
}

/* ---- the export ---- */

typedef struct {
    char *ckpt, *config, *tokenizer, *statistics;
} sources;

static void sources_free(sources *s) { free(s->ckpt), free(s->config), free(s->tokenizer), free(s->statistics); }

static bv_status find_sources(const bv_export_opts *o, sources *s, int64_t *step) {
    *step = -1;
    if (o->random_init) {
        if (!o->config) return bv_error_set(BV_ERR_ARG, "a random-init export needs a config (a preset or config.json)");
        if (!o->tokenizer || !o->statistics)
            return bv_error_set(BV_ERR_ARG, "a random-init export needs a tokenizer.json and a dataset_statistics.json "
                                            "to put in the bundle");
        s->config = bv_xstrdup(o->config);
    } else {
        if (!o->checkpoint) return bv_error_set(BV_ERR_ARG, "no checkpoint given");
        BV_TRY(resolve_checkpoint(o->checkpoint, &s->ckpt));
        s->config = join(s->ckpt, "config.json");
        bv_trainer_state ts;
        if (bv_ckpt_is_checkpoint(s->ckpt) && bv_ckpt_read_state(s->ckpt, &ts) == BV_OK) *step = ts.step;
        bv_error_clear();
    }
    s->tokenizer = o->tokenizer ? bv_xstrdup(o->tokenizer) : join(s->ckpt, "tokenizer.json");
    s->statistics = o->statistics ? bv_xstrdup(o->statistics) : join(s->ckpt, "dataset_statistics.json");
    BV_TRY(check_input(s->tokenizer, "tokenizer", false));
    BV_TRY(check_input(s->statistics, "dataset statistics", true));
    return BV_OK;
}

static bv_status write_bundle(const bv_export_opts *o, const char *dir, const bv_model *model, const bv_bundle_plan *pl,
                              const sources *s, int64_t step) {
    char *path = join(dir, BV_BUNDLE_MODEL);
    if (o->log) fprintf(o->log, "writing %s (%d tensors, %.3f GB)\n", BV_BUNDLE_MODEL, pl->n, pl->report.bytes / 1e9);
    bv_status st = write_model(path, pl, &model->params, o->layout, o->dtype, o->log);
    free(path);
    if (st) return st;
    char *cj = bv_bundle_config_json(&model->vla.cfg, o->layout, o->dtype);
    if (!cj) return bv_error_set(BV_ERR_NOMEM, "config.json: out of memory");
    path = join(dir, BV_BUNDLE_CONFIG);
    st = bv_atomic_write_file(path, cj, strlen(cj));
    free(cj);
    free(path);
    if (st) return st;
    path = join(dir, BV_BUNDLE_TOKENIZER);
    st = bv_atomic_copy_file(s->tokenizer, path);
    free(path);
    if (st) return st;
    path = join(dir, BV_BUNDLE_STATISTICS);
    st = bv_atomic_copy_file(s->statistics, path);
    free(path);
    if (st) return st;
    path = join(dir, BV_BUNDLE_REPORT);
    st = bv_bundle_report_write(&pl->report, path);
    free(path);
    if (st) return st;
    /* the cameras the policy was trained with: the checkpoint's recipe (data.n_images, default 2) */
    int n_images = 2;
    if (s->ckpt) {
        char *rp = join(s->ckpt, "recipe.json");
        json_t *r = json_load_file(rp, 0, NULL);
        json_t *v = json_object_get(json_object_get(r, "data"), "n_images");
        if (json_is_integer(v) && json_integer_value(v) >= 1 && json_integer_value(v) <= 2) n_images = (int)json_integer_value(v);
        json_decref(r);
        free(rp);
    }
    bv_bundle_source src = {s->ckpt, step, o->random_init, o->seed, n_images};
    return bv_bundle_manifest_write(dir, o->layout, o->dtype, &src);
}

static bv_status do_export(const bv_export_opts *o, bv_export_result *r) {
    sources s = {0};
    bv_status st = find_sources(o, &s, &r->step);
    if (st) {
        sources_free(&s);
        return st;
    }
    if (o->log) {
        if (s.ckpt) fprintf(o->log, "building the model from %s\n", s.ckpt);
        else fprintf(o->log, "building the model %s with random weights (seed %llu)\n", s.config,
                     (unsigned long long)o->seed);
        fflush(o->log);
    }
    /* the destination first: a refused --out costs no model build (minutes at full size) */
    bv_atomic_dir d;
    bv_atomic_dir_opts dopt = {.force = o->force, .make_parents = true, .owned = bv_bundle_owned_name,
                               .complete_name = BV_BUNDLE_MANIFEST, .what = "a bundle"};
    if ((st = bv_atomic_dir_open(&d, o->out, &dopt))) {
        sources_free(&s);
        return st;
    }
    bv_model model;
    bv_model_spec spec = {.config = s.config, .parts = BV_VLA_ALL, .purpose = BV_MODEL_INFER, .seed = o->seed, .no_forward = true,
                          .weights = s.ckpt};
    if ((st = bv_model_build(&model, &spec))) {
        bv_atomic_dir_abort(&d);
        sources_free(&s);
        return st;
    }
    bv_bundle_plan pl;
    if ((st = bv_bundle_plan_make(&pl, &model.vla, &model.params, o->layout, o->dtype, o->keep_lm_head))) {
        bv_atomic_dir_abort(&d);
        bv_model_free(&model);
        sources_free(&s);
        return st;
    }
    {
        st = write_bundle(o, d.tmp, &model, &pl, &s, r->step);
        if (!st) {
            char *mp = join(d.tmp, BV_BUNDLE_MODEL);
            struct stat sb;
            if (stat(mp, &sb) == 0) r->model_bytes = (uint64_t)sb.st_size;
            free(mp);
            const char *names[] = {BV_BUNDLE_MODEL, BV_BUNDLE_CONFIG, BV_BUNDLE_TOKENIZER, BV_BUNDLE_STATISTICS,
                                   BV_BUNDLE_REPORT, BV_BUNDLE_MANIFEST};
            for (size_t i = 0; i < BV_ARRAY_LEN(names); i++) {
                char *p = join(d.tmp, names[i]);
                if (stat(p, &sb) == 0) r->total_bytes += (uint64_t)sb.st_size;
                free(p);
            }
            st = bv_atomic_dir_commit(&d);
        } else bv_atomic_dir_abort(&d);
    }
    if (!st) {
        r->report = pl.report; /* moved */
        memset(&pl.report, 0, sizeof pl.report);
        r->checkpoint = s.ckpt, s.ckpt = NULL;
    }
    bv_bundle_plan_free(&pl);
    bv_model_free(&model);
    sources_free(&s);
    return st;
}

bv_status bv_export(const bv_export_opts *o, bv_export_result *r) {
    memset(r, 0, sizeof *r);
    r->step = -1;
    double t0 = bv_time_now();
    bv_status st = do_export(o, r);
    r->seconds = bv_time_now() - t0;
    if (st) {
        bv_export_result_free(r);
        if (o->random_init) return bv_error_prefix(st, "exporting a random %s model to %s", o->config ? o->config : "?", o->out);
        return bv_error_prefix(st, "exporting %s to %s", o->checkpoint ? o->checkpoint : "?", o->out);
    }
    return BV_OK;
}

void bv_export_result_free(bv_export_result *r) {
    bv_bundle_report_free(&r->report);
    free(r->checkpoint);
    memset(r, 0, sizeof *r);
    r->step = -1;
}
