/* bundle.c - the bundle format: plan, manifest, memory report, reader (models/bundle.h). */
#include "models/bundle.h"

#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "src/atomic_file.h"
#include "src/crc32c.h"

static const char *k_layouts[BV_TPACK_NFORMATS] = {"hf", "i2s", "tq5"}; /* by bv_tpack_format */

const char *bv_bundle_layout_name(bv_tpack_format layout) {
    return (int)layout >= 0 && (int)layout < BV_TPACK_NFORMATS ? k_layouts[layout] : "?";
}

bv_status bv_bundle_layout_parse(const char *s, bv_tpack_format *out) {
    for (int i = 0; i < BV_TPACK_NFORMATS; i++)
        if (s && !strcmp(s, k_layouts[i])) {
            *out = (bv_tpack_format)i;
            return BV_OK;
        }
    return bv_error_set(BV_ERR_ARG, "layout '%s': expected hf, tq5 or i2s", s ? s : "(none)");
}

const char *bv_bundle_dtype_name(bv_dtype dt) {
    return dt == BV_DTYPE_BF16 ? "bf16" : dt == BV_DTYPE_F32 ? "f32" : "?";
}

bv_status bv_bundle_dtype_parse(const char *s, bv_dtype *out) {
    if (s && !strcmp(s, "bf16")) *out = BV_DTYPE_BF16;
    else if (s && !strcmp(s, "f32")) *out = BV_DTYPE_F32;
    else return bv_error_set(BV_ERR_ARG, "dtype '%s': expected bf16 or f32", s ? s : "(none)");
    return BV_OK;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = bv_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static char *join(const char *dir, const char *name) { return xasprintf("%s/%s", dir, name); }

/* ---- the memory report ---- */

static const char *k_mod_names[BV_BUNDLE_MODS] = {
    "vision ternary linears", "vision rest", "connector", "llm embed_tokens", "llm ternary linears",
    "llm norms", "llm lm_head", "proprio projector", "action head"};

void bv_bundle_report_free(bv_bundle_report *r) {
    for (int i = 0; i < r->n_dropped; i++) free(r->dropped[i]);
    free(r->dropped);
    memset(r, 0, sizeof *r);
}

static void report_drop(bv_bundle_report *r, char *line) {
    r->dropped = bv_xrealloc(r->dropped, (size_t)(r->n_dropped + 1) * sizeof *r->dropped);
    r->dropped[r->n_dropped++] = line;
}

json_t *bv_bundle_report_json(const bv_bundle_report *r) {
    json_t *mods = json_array(), *dropped = json_array();
    for (int k = 0; k < BV_BUNDLE_MODS; k++) {
        const bv_bundle_module *m = &r->mod[k];
        json_array_append_new(mods, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "module", m->name, "kind", m->kind,
                                              "params", (json_int_t)m->params, "tensors", (json_int_t)m->tensors,
                                              "bytes", (json_int_t)m->bytes, "dropped_params",
                                              (json_int_t)m->dropped_params));
    }
    for (int i = 0; i < r->n_dropped; i++) json_array_append_new(dropped, json_string(r->dropped[i]));
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:o}", "layout", r->layout, "dtype", r->dtype,
                     "modules", mods, "params", (json_int_t)r->params, "ternary_params",
                     (json_int_t)r->ternary_params, "dropped_params", (json_int_t)r->dropped_params, "bytes",
                     (json_int_t)r->bytes, "ternary_bytes", (json_int_t)r->ternary_bytes, "dense_bytes",
                     (json_int_t)r->dense_bytes, "paper_bytes", (json_int_t)r->paper_bytes, "tq5_fallback",
                     r->tq5_fallback, "dropped", dropped);
}

bv_status bv_bundle_report_write(const bv_bundle_report *r, const char *path) {
    json_t *o = bv_bundle_report_json(r);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!s) return bv_error_set(BV_ERR_NOMEM, "%s: out of memory", path);
    size_t n = strlen(s);
    s = bv_xrealloc(s, n + 2);
    s[n] = '\n', s[n + 1] = 0;
    bv_status st = bv_atomic_write_file(path, s, n + 1);
    free(s);
    return st;
}

static json_t *load_json(const char *path, bv_status *st) {
    json_error_t e;
    json_t *o = json_load_file(path, 0, &e);
    if (!o) {
        FILE *f = fopen(path, "rb");
        if (!f) *st = bv_error_set(BV_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
        else {
            fclose(f);
            *st = bv_error_set(BV_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", path, e.line, e.column,
                               e.text);
        }
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        *st = bv_error_set(BV_ERR_FORMAT, "%s: the top level must be a JSON object", path);
        return NULL;
    }
    *st = BV_OK;
    return o;
}

static bv_status get_int(json_t *o, const char *path, const char *where, const char *key, int64_t *v) {
    json_t *x = json_object_get(o, key);
    if (!json_is_integer(x))
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s%s' must be an integer", path, where, key);
    *v = json_integer_value(x);
    return BV_OK;
}

static bv_status get_str(json_t *o, const char *path, const char *where, const char *key, char *dst, size_t n) {
    json_t *x = json_object_get(o, key);
    if (!json_is_string(x) || strlen(json_string_value(x)) >= n)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s%s' must be a string (of < %zu bytes)", path, where, key, n);
    strcpy(dst, json_string_value(x));
    return BV_OK;
}

static bv_status report_parse(bv_bundle_report *r, json_t *o, const char *path) {
    int64_t v;
    BV_TRY(get_str(o, path, "", "layout", r->layout, sizeof r->layout));
    BV_TRY(get_str(o, path, "", "dtype", r->dtype, sizeof r->dtype));
    json_t *fb = json_object_get(o, "tq5_fallback");
    r->tq5_fallback = json_is_integer(fb) ? (int)json_integer_value(fb) : 0;
    json_t *mods = json_object_get(o, "modules");
    if (!json_is_array(mods) || json_array_size(mods) != BV_BUNDLE_MODS)
        return bv_error_set(BV_ERR_FORMAT, "%s: 'modules' must be an array of %d modules", path, BV_BUNDLE_MODS);
    for (int k = 0; k < BV_BUNDLE_MODS; k++) {
        json_t *m = json_array_get(mods, (size_t)k);
        bv_bundle_module *d = &r->mod[k];
        char where[32];
        snprintf(where, sizeof where, "modules[%d].", k);
        if (!json_is_object(m)) return bv_error_set(BV_ERR_FORMAT, "%s: 'modules[%d]' must be an object", path, k);
        BV_TRY(get_str(m, path, where, "module", d->name, sizeof d->name));
        BV_TRY(get_str(m, path, where, "kind", d->kind, sizeof d->kind));
        BV_TRY(get_int(m, path, where, "params", &d->params));
        BV_TRY(get_int(m, path, where, "tensors", &d->tensors));
        BV_TRY(get_int(m, path, where, "bytes", &v));
        d->bytes = (double)v;
        BV_TRY(get_int(m, path, where, "dropped_params", &d->dropped_params));
    }
    BV_TRY(get_int(o, path, "", "params", &r->params));
    BV_TRY(get_int(o, path, "", "ternary_params", &r->ternary_params));
    BV_TRY(get_int(o, path, "", "dropped_params", &r->dropped_params));
    BV_TRY(get_int(o, path, "", "bytes", &v));
    r->bytes = (double)v;
    BV_TRY(get_int(o, path, "", "ternary_bytes", &v));
    r->ternary_bytes = (double)v;
    BV_TRY(get_int(o, path, "", "dense_bytes", &v));
    r->dense_bytes = (double)v;
    BV_TRY(get_int(o, path, "", "paper_bytes", &v));
    r->paper_bytes = (double)v;
    json_t *dr = json_object_get(o, "dropped");
    if (!json_is_array(dr)) return bv_error_set(BV_ERR_FORMAT, "%s: 'dropped' must be an array of strings", path);
    for (size_t i = 0; i < json_array_size(dr); i++) {
        json_t *s = json_array_get(dr, i);
        if (!json_is_string(s))
            return bv_error_set(BV_ERR_FORMAT, "%s: 'dropped[%zu]' must be a string", path, i);
        report_drop(r, bv_xstrdup(json_string_value(s)));
    }
    return BV_OK;
}

bv_status bv_bundle_report_read(bv_bundle_report *r, const char *path) {
    memset(r, 0, sizeof *r);
    bv_status st;
    json_t *o = load_json(path, &st);
    if (!o) return st;
    st = report_parse(r, o, path);
    json_decref(o);
    if (st) bv_bundle_report_free(r);
    return st;
}

static void fmt_bytes(char *buf, size_t n, double b) {
    if (b >= 1e9) snprintf(buf, n, "%.3f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, n, "%.2f MB", b / 1e6);
    else if (b >= 1e3) snprintf(buf, n, "%.1f kB", b / 1e3);
    else snprintf(buf, n, "%.0f B", b);
}

void bv_bundle_report_print(const bv_bundle_report *r, FILE *f) {
    char a[32];
    fprintf(f, "memory report (layout %s, full-precision tensors %s):\n", r->layout, r->dtype);
    fprintf(f, "  %-24s %-12s %15s %8s %12s %15s\n", "module", "kind", "params", "tensors", "bytes", "dropped params");
    for (int k = 0; k < BV_BUNDLE_MODS; k++) {
        const bv_bundle_module *m = &r->mod[k];
        fmt_bytes(a, sizeof a, m->bytes);
        fprintf(f, "  %-24s %-12s %15lld %8lld %12s %15lld\n", m->name, m->kind, (long long)m->params,
                (long long)m->tensors, a, (long long)m->dropped_params);
    }
    int64_t tensors = 0;
    for (int k = 0; k < BV_BUNDLE_MODS; k++) tensors += r->mod[k].tensors;
    fmt_bytes(a, sizeof a, r->bytes);
    fprintf(f, "  %-24s %-12s %15lld %8lld %12s %15lld\n", "total", "", (long long)r->params, (long long)tensors, a,
            (long long)r->dropped_params);
    char t[32], d[32], p[32];
    fmt_bytes(t, sizeof t, r->ternary_bytes);
    fmt_bytes(d, sizeof d, r->dense_bytes);
    fmt_bytes(p, sizeof p, r->paper_bytes);
    fprintf(f, "  ternary (%lld params, codes + scales + their f32 biases): %s; %s: %s\n", (long long)r->ternary_params,
            t, r->dtype, d);
    fprintf(f, "  deployable weights: %s; the paper reports %s for BitVLA (%.2fx)\n", a, p,
            r->paper_bytes > 0 ? r->bytes / r->paper_bytes : 0.0);
    if (r->tq5_fallback)
        fprintf(f, "  %d ternary weight(s) stored as TQ5: I2_S holds rows of whole 128-code blocks only\n",
                r->tq5_fallback);
    if (r->n_dropped) {
        fprintf(f, "  dropped:\n");
        for (int i = 0; i < r->n_dropped; i++) fprintf(f, "    %s\n", r->dropped[i]);
    }
}

/* ---- the plan ---- */

static bv_bundle_module_id module_of(const char *name, bool ternary) {
    if (!strncmp(name, "vision_tower.", 13)) return ternary ? BV_BUNDLE_MOD_VISION_TERNARY : BV_BUNDLE_MOD_VISION_REST;
    if (!strncmp(name, "multi_modal_projector.", 22)) return BV_BUNDLE_MOD_CONNECTOR;
    if (!strcmp(name, "language_model.model.embed_tokens.weight")) return BV_BUNDLE_MOD_LLM_EMBED;
    if (!strcmp(name, "language_model.lm_head.weight")) return BV_BUNDLE_MOD_LM_HEAD;
    if (!strncmp(name, "language_model.", 15)) return ternary ? BV_BUNDLE_MOD_LLM_TERNARY : BV_BUNDLE_MOD_LLM_NORMS;
    if (!strncmp(name, "proprio_projector.", 18)) return BV_BUNDLE_MOD_PROPRIO;
    return BV_BUNDLE_MOD_ACTION_HEAD;
}

#define VISION_LAYERS "vision_tower.vision_model.encoder.layers."

/* the encoder layer of a vision parameter name, or -1 */
static int vision_layer_of(const char *name) {
    if (strncmp(name, VISION_LAYERS, strlen(VISION_LAYERS))) return -1;
    return atoi(name + strlen(VISION_LAYERS));
}

static bv_bundle_tensor *plan_add(bv_bundle_plan *pl, int *cap, const char *name, bv_bundle_role role, int param,
                                  int ternary, bv_dtype dt, int ndim, const int64_t *shape, size_t bytes,
                                  bv_bundle_module_id mod) {
    if (pl->n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        pl->t = bv_xrealloc(pl->t, (size_t)*cap * sizeof *pl->t);
    }
    bv_bundle_tensor *t = &pl->t[pl->n++];
    memset(t, 0, sizeof *t);
    t->name = bv_xstrdup(name);
    t->role = role, t->param = param, t->ternary = ternary, t->dtype = dt, t->ndim = ndim, t->bytes = bytes;
    t->mod = mod;
    for (int k = 0; k < ndim; k++) t->shape[k] = shape[k];
    return t;
}

bv_status bv_bundle_plan_make(bv_bundle_plan *pl, bv_vla *m, const bv_params *p, bv_tpack_format layout,
                              bv_dtype dtype, bool keep_lm_head) {
    memset(pl, 0, sizeof *pl);
    BV_ASSERT(dtype == BV_DTYPE_BF16 || dtype == BV_DTYPE_F32, "bundle plan: dtype %s", bv_dtype_name(dtype));
    bv_bundle_report *r = &pl->report;
    snprintf(r->layout, sizeof r->layout, "%s", bv_bundle_layout_name(layout));
    snprintf(r->dtype, sizeof r->dtype, "%s", bv_bundle_dtype_name(dtype));
    r->paper_bytes = BV_BUNDLE_PAPER_BYTES;
    for (int k = 0; k < BV_BUNDLE_MODS; k++) {
        snprintf(r->mod[k].name, sizeof r->mod[k].name, "%s", k_mod_names[k]);
        snprintf(r->mod[k].kind, sizeof r->mod[k].kind, "-");
    }
    bv_vla_ternary *tl = NULL;
    int nt = bv_vla_ternary_list(m, &tl);
    if (nt < 0) return bv_error_set(BV_ERR_NOMEM, "bundle plan: out of memory");
    /* role of each parameter: ternary weight / bias (index into tl) */
    int *tw = bv_xmalloc((size_t)(p->n ? p->n : 1) * sizeof *tw), *tb = bv_xmalloc((size_t)(p->n ? p->n : 1) * sizeof *tb);
    for (int i = 0; i < p->n; i++) tw[i] = tb[i] = -1;
    for (int j = 0; j < nt; j++) {
        tw[tl[j].w] = j;
        if (tl[j].b >= 0) tb[tl[j].b] = j;
    }
    const int n_run = (m->parts & BV_VLA_VISION) ? m->vision.n_run : 0;
    const int n_vis = (m->parts & BV_VLA_VISION) ? m->vision.cfg.num_hidden_layers : 0;
    const size_t esz = bv_dtype_size(dtype);
    int cap = 0, *tindex = bv_xmalloc((size_t)(nt ? nt : 1) * sizeof *tindex); /* tl index -> plan ternary index */
    int64_t vis_dropped = 0, head_dropped = 0;
    bv_status st = BV_OK;
    for (int i = 0; i < p->n && !st; i++) {
        const bv_param *q = &p->items[i];
        if (tb[i] >= 0) continue; /* written after its weight */
        const bool tern = tw[i] >= 0;
        bv_bundle_module_id mod = module_of(q->name, tern);
        bv_bundle_module *md = &r->mod[mod];
        const int vl = vision_layer_of(q->name);
        if ((tern && !tl[tw[i]].used) || (vl >= n_run && vl < n_vis && vl >= 0)) {
            int64_t n = q->numel;
            if (tern && tl[tw[i]].b >= 0) n += p->items[tl[tw[i]].b].numel;
            md->dropped_params += n, r->dropped_params += n, vis_dropped += n;
            continue;
        }
        if (mod == BV_BUNDLE_MOD_LM_HEAD && !keep_lm_head) {
            md->dropped_params += q->numel, r->dropped_params += q->numel, head_dropped += q->numel;
            snprintf(md->kind, sizeof md->kind, "dropped");
            continue;
        }
        if (!tern) {
            plan_add(pl, &cap, q->name, BV_BUNDLE_T_DENSE, i, -1, dtype, q->ndim, q->shape, (size_t)q->numel * esz, mod);
            md->params += q->numel, md->tensors++, md->bytes += (double)((size_t)q->numel * esz);
            snprintf(md->kind, sizeof md->kind, "%s", bv_bundle_dtype_name(dtype));
            continue;
        }
        /* a ternary layer: codes (+ scale) (+ bias) */
        const int j = tw[i], k = pl->n_ternary++;
        tindex[j] = k;
        const int64_t OC = q->shape[0], C = q->numel / (OC ? OC : 1);
        size_t nb = 0;
        bv_tpack_format tf = layout;
        /* I2_S holds rows of whole 128-code blocks only (bitnet.cpp's kernels read them so); in an
         * i2s bundle a weight it cannot hold is stored as TQ5, which holds any shape */
        if (layout == BV_TPACK_I2S && bv_tpack_nbytes(layout, OC, C, &nb) == BV_ERR_SHAPE) {
            bv_error_clear();
            tf = BV_TPACK_TQ5;
            r->tq5_fallback++;
        }
        if ((st = bv_tpack_nbytes(tf, OC, C, &nb))) {
            st = bv_error_prefix(st, "tensor '%s' (%lld x %lld) cannot be stored in layout %s (%s)", q->name,
                                 (long long)OC, (long long)C, bv_bundle_layout_name(layout), bv_tpack_name(layout));
            break;
        }
        int64_t shp[2];
        bv_bundle_tensor *t;
        if (layout == BV_TPACK_HF) shp[0] = OC / 4, shp[1] = C, t = plan_add(pl, &cap, q->name, BV_BUNDLE_T_CODES, i, k, BV_DTYPE_U8, 2, shp, nb, mod);
        else shp[0] = (int64_t)nb, t = plan_add(pl, &cap, q->name, BV_BUNDLE_T_CODES, i, k, BV_DTYPE_U8, 1, shp, nb, mod);
        t->rows = OC, t->cols = C;
        t->fmt = tf;
        double bytes = (double)nb;
        int64_t params = q->numel, ntens = 1;
        if (layout == BV_TPACK_HF) {
            const size_t L = strlen(q->name);
            char *sname = bv_xmalloc(L + 8); /* "<P>.weight" -> "<P>.weight_scale" */
            memcpy(sname, q->name, L);
            strcpy(sname + L, "_scale");
            shp[0] = 1;
            plan_add(pl, &cap, sname, BV_BUNDLE_T_SCALE, i, k, BV_DTYPE_F32, 1, shp, 4, mod);
            free(sname);
            bytes += 4, ntens++;
        }
        const int bi = tl[j].b;
        if (bi >= 0) {
            const bv_param *b = &p->items[bi];
            plan_add(pl, &cap, b->name, BV_BUNDLE_T_BIAS, bi, k, BV_DTYPE_F32, b->ndim, b->shape, (size_t)b->numel * 4,
                     mod);
            bytes += 4.0 * (double)b->numel, params += b->numel, ntens++;
        }
        md->params += params, md->tensors += ntens, md->bytes += bytes;
        r->ternary_params += q->numel, r->ternary_bytes += bytes;
        snprintf(md->kind, sizeof md->kind, "ternary %s", bv_bundle_layout_name(layout));
    }
    free(tw), free(tb), free(tindex), free(tl);
    if (st) {
        bv_bundle_plan_free(pl);
        return st;
    }
    if (m->parts & BV_VLA_LLM && m->cfg.text.tie_word_embeddings)
        snprintf(r->mod[BV_BUNDLE_MOD_LM_HEAD].kind, sizeof r->mod[0].kind, "tied");
    if (head_dropped)
        report_drop(r, xasprintf("language_model.lm_head.weight: %lld params (an action policy never runs the LM head; "
                                 "--keep-lm-head keeps it)",
                                 (long long)head_dropped));
    if (vis_dropped)
        report_drop(r, xasprintf(VISION_LAYERS "%d..%d: %lld params (beyond vision_feature_layer %d: the forward "
                                 "never runs them)",
                                 n_run, n_vis - 1, (long long)vis_dropped, m->cfg.vision_feature_layer));
    for (int k = 0; k < BV_BUNDLE_MODS; k++) {
        r->params += r->mod[k].params;
        r->bytes += r->mod[k].bytes;
    }
    r->dense_bytes = r->bytes - r->ternary_bytes;
    return BV_OK;
}

void bv_bundle_plan_free(bv_bundle_plan *pl) {
    for (int i = 0; i < pl->n; i++) free(pl->t[i].name);
    free(pl->t);
    bv_bundle_report_free(&pl->report);
    memset(pl, 0, sizeof *pl);
}

/* ---- writing ---- */

char *bv_bundle_config_json(const bv_vla_config *c, bv_tpack_format layout, bv_dtype dtype) {
    char *s = bv_config_to_json(c);
    json_t *o = s ? json_loads(s, 0, NULL) : NULL;
    free(s);
    if (!o) return NULL;
    json_t *q = layout == BV_TPACK_HF
                    ? json_pack("{s:s, s:s, s:s}", "quant_method", "bitnet", "linear_class", "autobitlinear",
                                "quantization_mode", "offline")
                    : json_pack("{s:s, s:s}", "quant_method", "bitvla", "format", bv_bundle_layout_name(layout));
    json_object_set_new(o, "quantization_config", q);
    json_object_set_new(o, "torch_dtype", json_string(dtype == BV_DTYPE_BF16 ? "bfloat16" : "float32"));
    s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

bv_status bv_bundle_file_crc(const char *path, uint64_t *bytes, uint32_t *crc) {
    FILE *f = fopen(path, "rb");
    if (!f) return bv_error_set(BV_ERR_IO, "%s: cannot open (%s)", path, strerror(errno));
    enum { BUF = 1 << 20 };
    uint8_t *buf = bv_xmalloc(BUF);
    uint32_t c = 0;
    uint64_t n = 0;
    size_t k;
    while ((k = fread(buf, 1, BUF, f)) > 0) c = bv_crc32c(c, buf, k), n += k;
    bool bad = ferror(f);
    fclose(f);
    free(buf);
    if (bad) return bv_error_set(BV_ERR_IO, "%s: read failed", path);
    *bytes = n, *crc = c;
    return BV_OK;
}

/* the files of a bundle, in manifest order (manifest.json itself excluded) */
static const char *k_files[] = {BV_BUNDLE_MODEL, BV_BUNDLE_CONFIG, BV_BUNDLE_TOKENIZER, BV_BUNDLE_STATISTICS,
                                BV_BUNDLE_REPORT};

bool bv_bundle_owned_name(const char *name) {
    if (!strcmp(name, BV_BUNDLE_MANIFEST) || strstr(name, ".tmp.")) return true;
    for (size_t i = 0; i < BV_ARRAY_LEN(k_files); i++)
        if (!strcmp(name, k_files[i])) return true;
    return false;
}

bv_status bv_bundle_manifest_write(const char *dir, bv_tpack_format layout, bv_dtype dtype, const bv_bundle_source *src) {
    json_t *files = json_object();
    bv_status st = BV_OK;
    for (size_t i = 0; i < BV_ARRAY_LEN(k_files) && !st; i++) {
        char *path = join(dir, k_files[i]);
        uint64_t n;
        uint32_t c;
        if (!(st = bv_bundle_file_crc(path, &n, &c))) {
            char hex[16];
            snprintf(hex, sizeof hex, "0x%08x", c);
            json_object_set_new(files, k_files[i], json_pack("{s:I, s:s}", "bytes", (json_int_t)n, "crc32c", hex));
        }
        free(path);
    }
    if (st) {
        json_decref(files);
        return bv_error_prefix(st, "writing the manifest of bundle %s", dir);
    }
    json_t *so = json_object();
    json_object_set_new(so, "checkpoint", src && src->checkpoint ? json_string(src->checkpoint) : json_null());
    json_object_set_new(so, "step", src && src->step >= 0 ? json_integer(src->step) : json_null());
    json_object_set_new(so, "random_init_seed",
                        src && src->random_init ? json_integer((json_int_t)src->seed) : json_null());
    json_t *pol = json_object();
    json_object_set_new(pol, "n_images", src && src->n_images > 0 ? json_integer(src->n_images) : json_null());
    json_t *o = json_pack("{s:s, s:i, s:s, s:s, s:o, s:o, s:o}", "format", BV_BUNDLE_FORMAT, "version",
                          BV_BUNDLE_VERSION, "layout", bv_bundle_layout_name(layout), "dtype",
                          bv_bundle_dtype_name(dtype), "source", so, "policy", pol, "files", files);
    char *s = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    char *path = join(dir, BV_BUNDLE_MANIFEST);
    if (!s) st = bv_error_set(BV_ERR_NOMEM, "%s: out of memory", path);
    else {
        size_t n = strlen(s);
        s = bv_xrealloc(s, n + 2);
        s[n] = '\n', s[n + 1] = 0;
        st = bv_atomic_write_file(path, s, n + 1);
    }
    free(s);
    free(path);
    return st;
}

/* ---- reading ---- */

bool bv_bundle_is_bundle(const char *dir) {
    char *path = join(dir, BV_BUNDLE_MANIFEST);
    json_t *o = json_load_file(path, 0, NULL);
    free(path);
    json_t *f = json_object_get(o, "format");
    bool ok = json_is_string(f) && !strcmp(json_string_value(f), BV_BUNDLE_FORMAT);
    json_decref(o);
    return ok;
}

/* check every file the manifest lists: present, size, CRC-32C */
static bv_status check_files(const char *dir, json_t *files, const char *mpath) {
    if (!json_is_object(files))
        return bv_error_set(BV_ERR_FORMAT, "%s: 'files' must be an object {name: {\"bytes\", \"crc32c\"}}", mpath);
    for (size_t i = 0; i < BV_ARRAY_LEN(k_files); i++)
        if (!json_object_get(files, k_files[i]))
            return bv_error_set(BV_ERR_FORMAT, "%s: 'files' does not list %s, which every bundle has", mpath,
                                k_files[i]);
    const char *name;
    json_t *e;
    json_object_foreach(files, name, e) {
        json_t *jb = json_object_get(e, "bytes"), *jc = json_object_get(e, "crc32c");
        unsigned want_crc;
        char tail;
        if (!json_is_integer(jb) || !json_is_string(jc) ||
            sscanf(json_string_value(jc), "0x%8x%c", &want_crc, &tail) != 1 || strlen(json_string_value(jc)) != 10)
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: 'files.%s' must be {\"bytes\": integer, \"crc32c\": \"0x\" and 8 hex digits}", mpath,
                                name);
        if (strchr(name, '/') || !strcmp(name, "..") || !strcmp(name, "."))
            return bv_error_set(BV_ERR_FORMAT, "%s: 'files.%s' is not a file name inside the bundle", mpath, name);
        char *path = join(dir, name);
        struct stat sb;
        bv_status st = BV_OK;
        if (stat(path, &sb) != 0)
            st = bv_error_set(BV_ERR_IO, "%s: missing (%s), but %s lists it", path, strerror(errno), BV_BUNDLE_MANIFEST);
        else if ((json_int_t)sb.st_size != json_integer_value(jb))
            st = bv_error_set(BV_ERR_FORMAT, "%s: %lld bytes but %s says %lld", path, (long long)sb.st_size,
                              BV_BUNDLE_MANIFEST, (long long)json_integer_value(jb));
        else {
            uint64_t n;
            uint32_t c;
            if (!(st = bv_bundle_file_crc(path, &n, &c)) && c != want_crc)
                st = bv_error_set(BV_ERR_FORMAT, "%s: CRC-32C 0x%08x but %s says 0x%08x (the file is corrupt)", path, c,
                                  BV_BUNDLE_MANIFEST, want_crc);
        }
        free(path);
        if (st) return st;
    }
    return BV_OK;
}

static bv_status open_bundle(bv_bundle *b, const char *dir) {
    b->dir = bv_xstrdup(dir);
    char *mpath = join(dir, BV_BUNDLE_MANIFEST);
    bv_status st;
    json_t *man = load_json(mpath, &st);
    if (!man) goto done;
    json_t *fmt = json_object_get(man, "format"), *ver = json_object_get(man, "version");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), BV_BUNDLE_FORMAT)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'format' must be \"%s\"", mpath, BV_BUNDLE_FORMAT);
        goto done;
    }
    if (!json_is_integer(ver) || json_integer_value(ver) != BV_BUNDLE_VERSION) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'version' must be %d (this build reads version %d bundles)", mpath,
                          BV_BUNDLE_VERSION, BV_BUNDLE_VERSION);
        goto done;
    }
    json_t *lay = json_object_get(man, "layout"), *dt = json_object_get(man, "dtype");
    if ((st = bv_bundle_layout_parse(json_string_value(lay), &b->layout)) ||
        (st = bv_bundle_dtype_parse(json_string_value(dt), &b->dtype))) {
        st = bv_error_prefix(st, "%s", mpath);
        goto done;
    }
    json_t *ni = json_object_get(json_object_get(man, "policy"), "n_images");
    if (ni && !json_is_null(ni) && (!json_is_integer(ni) || json_integer_value(ni) < 1 || json_integer_value(ni) > 2)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'policy.n_images' must be 1 or 2", mpath);
        goto done;
    }
    b->n_images = ni && json_is_integer(ni) ? (int)json_integer_value(ni) : 0;
    if ((st = check_files(dir, json_object_get(man, "files"), mpath))) goto done;

    char *cpath = join(dir, BV_BUNDLE_CONFIG);
    st = bv_config_load(cpath, false, &b->cfg);
    free(cpath);
    if (st) goto done;

    char *rpath = join(dir, BV_BUNDLE_REPORT);
    st = bv_bundle_report_read(&b->report, rpath);
    free(rpath);
    if (st) goto done;

    b->tokenizer_path = join(dir, BV_BUNDLE_TOKENIZER);
    b->statistics_path = join(dir, BV_BUNDLE_STATISTICS);
    json_t *stats = load_json(b->statistics_path, &st);
    if (!stats) goto done;
    void *it = json_object_iter(stats);
    if (it) b->dataset = bv_xstrdup(json_object_iter_key(it));
    json_decref(stats);
    if (!b->dataset) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: no dataset in it (expected {\"<dataset name>\": {...}})", b->statistics_path);
        goto done;
    }

    char *spath = join(dir, BV_BUNDLE_MODEL);
    st = bv_st_open(&b->st, spath);
    if (!st) {
        const char *mf = bv_st_meta(&b->st, "format"), *ml = bv_st_meta(&b->st, "layout"),
                   *md = bv_st_meta(&b->st, "dtype");
        if (!mf || strcmp(mf, BV_BUNDLE_FORMAT))
            st = bv_error_set(BV_ERR_FORMAT, "%s: __metadata__ 'format' is %s%s%s, expected \"%s\"", spath,
                              mf ? "\"" : "", mf ? mf : "missing", mf ? "\"" : "", BV_BUNDLE_FORMAT);
        else if (!ml || strcmp(ml, bv_bundle_layout_name(b->layout)))
            st = bv_error_set(BV_ERR_FORMAT, "%s: __metadata__ 'layout' is %s but %s says \"%s\"", spath,
                              ml ? ml : "missing", BV_BUNDLE_MANIFEST, bv_bundle_layout_name(b->layout));
        else if (!md || strcmp(md, bv_bundle_dtype_name(b->dtype)))
            st = bv_error_set(BV_ERR_FORMAT, "%s: __metadata__ 'dtype' is %s but %s says \"%s\"", spath,
                              md ? md : "missing", BV_BUNDLE_MANIFEST, bv_bundle_dtype_name(b->dtype));
    }
    free(spath);
done:
    json_decref(man);
    free(mpath);
    return st;
}

bv_status bv_bundle_open(bv_bundle *b, const char *dir) {
    memset(b, 0, sizeof *b);
    bv_status st = open_bundle(b, dir);
    if (st) {
        bv_bundle_close(b);
        return bv_error_prefix(st, "opening bundle %s", dir);
    }
    return BV_OK;
}

void bv_bundle_close(bv_bundle *b) {
    free(b->dir);
    bv_st_close(&b->st);
    free(b->tokenizer_path);
    free(b->statistics_path);
    free(b->dataset);
    bv_bundle_report_free(&b->report);
    memset(b, 0, sizeof *b);
}
