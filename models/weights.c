#include "models/weights.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/atomic_file.h"
#include "src/safetensors.h"

const char *bv_weights_layout_name(bv_weights_layout l) {
    switch (l) {
    case BV_WEIGHTS_AUTO: return "auto";
    case BV_WEIGHTS_LLAVA: return "llava";
    case BV_WEIGHTS_LLAVA_HF: return "llava-hf";
    case BV_WEIGHTS_SIGLIP: return "siglip";
    case BV_WEIGHTS_BITNET: return "bitnet";
    }
    return "?";
}

void bv_weights_report_free(bv_weights_report *r) {
    if (!r) return;
    free(r->details);
    memset(r, 0, sizeof *r);
}

/* ---- a growing string ---- */

typedef struct {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0) return;
    if (b->n + (size_t)need + 1 > b->cap) {
        b->cap = BV_MAX(2 * b->cap, b->n + (size_t)need + 256);
        b->s = bv_xrealloc(b->s, b->cap);
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, b->cap - b->n, fmt, ap);
    va_end(ap);
    b->n += (size_t)need;
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }
static bool ends(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- the files of a checkpoint ---- */

typedef struct {
    bv_st_file *files;
    int n;
    json_t *weight_map; /* index's {name: file} or NULL */
    char **file_names;  /* as named in the index (for messages) */
} ckpt;

static void ckpt_close(ckpt *c) {
    for (int i = 0; i < c->n; i++) {
        bv_st_close(&c->files[i]);
        free(c->file_names[i]);
    }
    free(c->files);
    free(c->file_names);
    if (c->weight_map) json_decref(c->weight_map);
    memset(c, 0, sizeof *c);
}

static bool is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static bool is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bv_status open_shard(ckpt *c, const char *path, const char *shown) {
    c->files = bv_xrealloc(c->files, (size_t)(c->n + 1) * sizeof *c->files);
    c->file_names = bv_xrealloc(c->file_names, (size_t)(c->n + 1) * sizeof *c->file_names);
    bv_status st = bv_st_open(&c->files[c->n], path);
    if (st) return st;
    c->file_names[c->n++] = bv_xstrdup(shown);
    return BV_OK;
}

static bv_status open_index(ckpt *c, const char *index_path) {
    json_error_t err;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return bv_error_set(BV_ERR_FORMAT, "%s: cannot read the checkpoint index: line %d: %s", index_path, err.line,
                            err.text);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm) || json_object_size(wm) == 0) {
        json_decref(root);
        return bv_error_set(BV_ERR_FORMAT, "%s: missing or empty \"weight_map\" object ({tensor name: shard file})",
                            index_path);
    }
    c->weight_map = json_incref(wm);
    json_decref(root);
    const char *slash = strrchr(index_path, '/');
    int dlen = slash ? (int)(slash - index_path + 1) : 0;
    const char *name;
    json_t *v;
    json_object_foreach(c->weight_map, name, v) {
        const char *fn = json_string_value(v);
        if (!fn || !*fn || strstr(fn, "..") || fn[0] == '/')
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: weight_map entry for '%.200s' must be a shard file name beside the index", index_path,
                                name);
        bool seen = false;
        for (int i = 0; i < c->n && !seen; i++) seen = strcmp(c->file_names[i], fn) == 0;
        if (seen) continue;
        size_t len = (size_t)dlen + strlen(fn) + 1;
        char *full = bv_xmalloc(len);
        snprintf(full, len, "%.*s%s", dlen, index_path, fn);
        bv_status st = open_shard(c, full, fn);
        free(full);
        if (st) return st;
    }
    return BV_OK;
}

static bv_status ckpt_open(ckpt *c, const char *path) {
    memset(c, 0, sizeof *c);
    bv_status st;
    char buf[4096];
    if (is_dir(path)) {
        snprintf(buf, sizeof buf, "%s/model.safetensors.index.json", path);
        if (is_file(buf)) return open_index(c, buf);
        snprintf(buf, sizeof buf, "%s/model.safetensors", path);
        if (is_file(buf)) return open_shard(c, buf, "model.safetensors");
        return bv_error_set(BV_ERR_IO, "%s: a directory without model.safetensors or model.safetensors.index.json", path);
    }
    if (ends(path, ".json")) return open_index(c, path);
    if (!is_file(path)) {
        snprintf(buf, sizeof buf, "%s.index.json", path);
        if (is_file(buf)) return open_index(c, buf);
    }
    const char *slash = strrchr(path, '/');
    st = open_shard(c, path, slash ? slash + 1 : path);
    return st;
}

/* ---- names ---- */

typedef struct {
    bv_weights_layout layout;
    const char *vprefix, *lprefix;
} mapping;

static bv_weights_layout detect(const ckpt *c) {
    bool any_llava = false, any_hf = false, all_vision = true, all_bitnet = true, any_vision = false;
    for (int f = 0; f < c->n; f++)
        for (int i = 0; i < c->files[f].n; i++) {
            const char *s = c->files[f].entries[i].name;
            any_hf |= starts(s, "model.vision_tower.") || starts(s, "model.language_model.") ||
                      starts(s, "model.multi_modal_projector.");
            any_llava |= starts(s, "vision_tower.") || starts(s, "language_model.") ||
                         starts(s, "multi_modal_projector.") || starts(s, "proprio_projector.") ||
                         starts(s, "action_head.");
            any_vision |= starts(s, "vision_model.");
            all_vision &= starts(s, "vision_model.") || starts(s, "text_model.") || starts(s, "logit_");
            all_bitnet &= starts(s, "model.") || starts(s, "lm_head.");
        }
    if (any_hf) return BV_WEIGHTS_LLAVA_HF;
    if (any_llava) return BV_WEIGHTS_LLAVA;
    if (any_vision && all_vision) return BV_WEIGHTS_SIGLIP;
    if (all_bitnet) return BV_WEIGHTS_BITNET;
    return BV_WEIGHTS_AUTO; /* undecided */
}

static bool always_ignored(const char *s) {
    return strstr(s, "vision_model.post_layernorm.") || strstr(s, "vision_model.head.") || ends(s, "rotary_emb.inv_freq");
}

/* File name -> parameter name in out; false when the layout ignores the tensor. */
static bool map_name(const mapping *m, const char *s, char *out, size_t n) {
    if (always_ignored(s)) return false;
    int k = -1;
    switch (m->layout) {
    case BV_WEIGHTS_LLAVA: k = snprintf(out, n, "%s", s); break;
    case BV_WEIGHTS_LLAVA_HF:
        if (starts(s, "model.vision_tower.")) k = snprintf(out, n, "%s", s + 6);
        else if (starts(s, "model.multi_modal_projector.")) k = snprintf(out, n, "%s", s + 6);
        else if (starts(s, "model.language_model.")) k = snprintf(out, n, "language_model.model.%s", s + 21);
        else if (starts(s, "lm_head.")) k = snprintf(out, n, "language_model.%s", s);
        else k = snprintf(out, n, "%s", s);
        break;
    case BV_WEIGHTS_SIGLIP:
        if (!starts(s, "vision_model.")) return false; /* text tower and logit scale/bias of a SiglipModel */
        k = snprintf(out, n, "%s%s", m->vprefix, s);
        break;
    case BV_WEIGHTS_BITNET: k = snprintf(out, n, "%s%s", m->lprefix, s); break;
    case BV_WEIGHTS_AUTO: break;
    }
    return k >= 0 && (size_t)k < n;
}

static bool covered(const mapping *m, const char *param) {
    char pre[300];
    switch (m->layout) {
    case BV_WEIGHTS_SIGLIP: snprintf(pre, sizeof pre, "%svision_model.", m->vprefix); return starts(param, pre);
    case BV_WEIGHTS_BITNET: return starts(param, m->lprefix);
    default: return true;
    }
}

/* ---- load ---- */

typedef struct {
    int file, entry, param;
} pick;

bv_status bv_weights_load(bv_params *p, const char *path, const bv_weights_opts *opts, bv_weights_report *report) {
    BV_ASSERT(p->finalized, "bv_weights_load: the parameter store must be finalized");
    bv_weights_opts o = {0};
    if (opts) o = *opts;
    mapping m = {o.layout, o.vision_prefix ? o.vision_prefix : "vision_tower.",
                 o.llm_prefix ? o.llm_prefix : "language_model."};
    bv_weights_report r;
    memset(&r, 0, sizeof r);
    ckpt c;
    bv_status st = ckpt_open(&c, path);
    if (st) {
        ckpt_close(&c);
        return st;
    }
    r.n_files = c.n;
    if (m.layout == BV_WEIGHTS_AUTO) m.layout = detect(&c);
    if (m.layout == BV_WEIGHTS_AUTO) {
        const char *first = c.files[0].n ? c.files[0].entries[0].name : "(no tensors)";
        st = bv_error_set(BV_ERR_FORMAT,
                          "%s: cannot tell the checkpoint's layout from its names (first: '%.200s'); expected LLaVA "
                          "(vision_tower.*, language_model.*, ...), SigLIP (vision_model.*) or BitNet (model.*, lm_head.*)",
                          path, first);
        ckpt_close(&c);
        return st;
    }
    r.layout = m.layout;

    int *found = bv_xmalloc((size_t)(p->n ? p->n : 1) * sizeof *found); /* param -> index into picks, or -1 */
    for (int i = 0; i < p->n; i++) found[i] = -1;
    int total = 0;
    for (int f = 0; f < c.n; f++) total += c.files[f].n;
    pick *picks = bv_xmalloc((size_t)(total ? total : 1) * sizeof *picks);
    int np = 0;
    sbuf miss = {0}, unexp = {0}, bad = {0};
    bool packed = false;
    char name[512], s1[128], s2[128];
    for (int f = 0; f < c.n; f++) {
        const bv_st_file *sf = &c.files[f];
        for (int i = 0; i < sf->n; i++) {
            const bv_st_entry *e = &sf->entries[i];
            if (c.weight_map) { /* the index must agree with the shard */
                const char *want = json_string_value(json_object_get(c.weight_map, e->name));
                if (!want || strcmp(want, c.file_names[f]) != 0) {
                    sb_printf(&bad, "  not in the index: '%s' is in %s but the index %s\n", e->name, c.file_names[f],
                              want ? "puts it in another file" : "does not list it");
                    r.n_bad++;
                    continue;
                }
            }
            packed |= ends(e->name, ".weight_scale");
            bool skip = !map_name(&m, e->name, name, sizeof name);
            for (const char *const *sp = o.skip_prefixes; !skip && sp && *sp; sp++) skip = starts(name, *sp);
            if (skip) {
                r.n_ignored++;
                continue;
            }
            int pi = bv_params_find(p, name);
            if (pi < 0) {
                bv_shape_str(e->ndim, e->shape, s1, sizeof s1);
                sb_printf(&unexp, "  unexpected: %s %s %s (in %s)\n", e->name, bv_dtype_name(e->dtype), s1,
                          c.file_names[f]);
                r.n_unexpected++;
                continue;
            }
            const bv_param *q = &p->items[pi];
            if (found[pi] >= 0) {
                const pick *o2 = &picks[found[pi]];
                sb_printf(&bad, "  duplicate: %s comes from both %s ('%s') and %s ('%s')\n", name,
                          c.file_names[o2->file], c.files[o2->file].entries[o2->entry].name, c.file_names[f], e->name);
                r.n_bad++;
                continue;
            }
            bool fl = e->dtype == BV_DTYPE_F32 || e->dtype == BV_DTYPE_BF16 || e->dtype == BV_DTYPE_F16 ||
                      e->dtype == BV_DTYPE_F64;
            bool same = e->ndim == q->ndim;
            for (int k = 0; same && k < q->ndim; k++) same = e->shape[k] == q->shape[k];
            if (!fl || !same) {
                bv_shape_str(q->ndim, q->shape, s1, sizeof s1);
                bv_shape_str(e->ndim, e->shape, s2, sizeof s2);
                sb_printf(&bad, "  mis-shaped: %s: expected F32/BF16/F16 %s, found %s %s (in %s)\n", e->name, s1,
                          bv_dtype_name(e->dtype), s2, c.file_names[f]);
                r.n_bad++;
                found[pi] = -2; /* present, but unusable: not also "missing" */
                continue;
            }
            picks[np] = (pick){f, i, pi};
            found[pi] = np++;
        }
    }
    if (c.weight_map) { /* names the index promises but no shard holds */
        const char *key;
        json_t *v;
        json_object_foreach(c.weight_map, key, v) {
            bool here = false;
            for (int f = 0; f < c.n && !here; f++)
                here = !strcmp(json_string_value(v), c.file_names[f]) && bv_st_find(&c.files[f], key) >= 0;
            if (!here) {
                sb_printf(&bad, "  absent: the index puts '%s' in %s, which lacks it\n", key, json_string_value(v));
                r.n_bad++;
            }
        }
    }
    for (int i = 0; i < p->n; i++)
        if (found[i] == -1 && covered(&m, p->items[i].name)) {
            bv_shape_str(p->items[i].ndim, p->items[i].shape, s1, sizeof s1);
            sb_printf(&miss, "  missing: %s %s\n", p->items[i].name, s1);
            r.n_missing++;
        }
    sbuf all = {0};
    if (bad.n) sb_printf(&all, "%s", bad.s);
    if (miss.n) sb_printf(&all, "%s", miss.s);
    if (unexp.n) sb_printf(&all, "%s", unexp.s);
    free(bad.s), free(miss.s), free(unexp.s);
    r.details = all.s;

    bool fail = r.n_bad || (r.n_missing && !o.allow_missing) || (r.n_unexpected && !o.allow_unexpected);
    if (fail) {
        st = bv_error_set(BV_ERR_FORMAT,
                          "%s: cannot load the weights (layout %s, %d file%s): %lld mis-shaped or inconsistent, %lld "
                          "missing%s, %lld unexpected%s%s:\n%s",
                          path, bv_weights_layout_name(m.layout), c.n, c.n == 1 ? "" : "s", (long long)r.n_bad,
                          (long long)r.n_missing, o.allow_missing ? " (allowed)" : "", (long long)r.n_unexpected,
                          o.allow_unexpected ? " (allowed)" : "",
                          packed ? "; the file holds packed ternary weights (HF BitNet offline '*.weight_scale'), "
                                   "which must be unpacked to float first"
                                 : "",
                          r.details ? r.details : "");
    } else {
        /* every check passed: copy (and convert) */
        bv_status *sts = bv_xcalloc((size_t)(np ? np : 1), sizeof *sts);
        char **msgs = bv_xcalloc((size_t)(np ? np : 1), sizeof *msgs);
#pragma omp parallel for schedule(dynamic, 1)
        for (int k = 0; k < np; k++) {
            const bv_param *q = &p->items[picks[k].param];
            const bv_st_file *sf = &c.files[picks[k].file];
            sts[k] = bv_st_read(sf, sf->entries[picks[k].entry].name, BV_DTYPE_F32, q->ndim, q->shape, q->numel,
                                p->values + q->offset);
            if (sts[k]) msgs[k] = bv_xstrdup(bv_error_msg());
        }
        for (int k = 0; k < np && !st; k++)
            if (sts[k]) st = bv_error_set(sts[k], "%s", msgs[k]);
        for (int k = 0; k < np; k++) free(msgs[k]);
        free(sts), free(msgs);
        r.n_loaded = np;
        if (!st) bv_params_mark_updated(p);
    }
    free(found);
    free(picks);
    ckpt_close(&c);
    if (report)
        *report = r;
    else
        bv_weights_report_free(&r);
    return st;
}

bv_status bv_weights_has_prefix(const char *path, const bv_weights_opts *opts, const char *prefix, bool *yes) {
    *yes = false;
    mapping m = {opts ? opts->layout : BV_WEIGHTS_AUTO, opts && opts->vision_prefix ? opts->vision_prefix : "vision_tower.",
                 opts && opts->llm_prefix ? opts->llm_prefix : "language_model."};
    ckpt c;
    bv_status st = ckpt_open(&c, path);
    if (!st) {
        if (m.layout == BV_WEIGHTS_AUTO) m.layout = detect(&c);
        char name[512];
        for (int f = 0; f < c.n && !*yes; f++)
            for (int i = 0; i < c.files[f].n && !*yes; i++)
                *yes = map_name(&m, c.files[f].entries[i].name, name, sizeof name) && starts(name, prefix);
    }
    ckpt_close(&c);
    return st;
}

/* ---- save ---- */

/* Write parameters [i0, i1) of p to path as dt. */
static bv_status save_range(const bv_params *p, int i0, int i1, const char *path, bv_dtype dt) {
    int n = i1 - i0;
    bv_st_item *items = bv_xcalloc((size_t)(n ? n : 1), sizeof *items);
    void *conv = NULL;
    if (dt != BV_DTYPE_F32) {
        size_t total = 0;
        for (int i = i0; i < i1; i++) total += (size_t)p->items[i].numel;
        conv = malloc(total * bv_dtype_size(dt) + 1);
        if (!conv) {
            free(items);
            return bv_error_set(BV_ERR_NOMEM, "%s: out of memory converting %zu values to %s", path, total,
                                bv_dtype_name(dt));
        }
    }
    size_t off = 0;
    for (int i = i0; i < i1; i++) {
        const bv_param *q = &p->items[i];
        items[i - i0].name = q->name;
        bv_tensor v = bv_params_value(p, i);
        if (conv) {
            void *dst = (char *)conv + off * bv_dtype_size(dt);
            bv_dtype_convert(dst, dt, bv_tensor_ptr(&v), BV_DTYPE_F32, (size_t)q->numel);
            v = bv_tensor_make(dst, dt, q->ndim, q->shape);
            off += (size_t)q->numel;
        }
        items[i - i0].t = v;
    }
    const char *meta[2] = {"format", "pt"};
    bv_status st = bv_st_save(path, n, items, 1, meta);
    free(conv);
    free(items);
    return st;
}

bv_status bv_weights_save(const bv_params *p, const char *path, bv_dtype dt, uint64_t shard_bytes) {
    BV_ASSERT(p->finalized, "bv_weights_save: the parameter store must be finalized");
    if (dt != BV_DTYPE_F32 && dt != BV_DTYPE_BF16 && dt != BV_DTYPE_F16)
        return bv_error_set(BV_ERR_ARG, "%s: weights are saved as F32, BF16 or F16, not %s", path, bv_dtype_name(dt));
    if (!ends(path, ".safetensors"))
        return bv_error_set(BV_ERR_ARG, "%s: the weights file name must end in .safetensors", path);
    uint64_t es = bv_dtype_size(dt), total = 0;
    for (int i = 0; i < p->n; i++) total += (uint64_t)p->items[i].numel * es;
    char idx[4096];
    snprintf(idx, sizeof idx, "%s.index.json", path);
    if (shard_bytes == 0 || total <= shard_bytes) {
        bv_status st = save_range(p, 0, p->n, path, dt);
        if (!st && is_file(idx)) unlink(idx); /* a stale sharded form of the same checkpoint */
        return st;
    }
    /* shards of consecutive parameters, each at most shard_bytes unless one tensor alone is larger */
    int *start = bv_xmalloc((size_t)(p->n + 1) * sizeof *start), ns = 0;
    uint64_t cur = 0;
    for (int i = 0; i < p->n; i++) {
        uint64_t b = (uint64_t)p->items[i].numel * es;
        if (i == 0 || (cur > 0 && cur + b > shard_bytes)) start[ns++] = i, cur = 0;
        cur += b;
    }
    start[ns] = p->n;
    size_t stem_len = strlen(path) - strlen(".safetensors");
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path + 1) : 0;
    json_t *wm = json_object();
    bv_status st = BV_OK;
    for (int s = 0; s < ns && !st; s++) {
        char shard[4096];
        snprintf(shard, sizeof shard, "%.*s-%05d-of-%05d.safetensors", (int)stem_len, path, s + 1, ns);
        st = save_range(p, start[s], start[s + 1], shard, dt);
        for (int i = start[s]; i < start[s + 1] && !st; i++)
            json_object_set_new(wm, p->items[i].name, json_string(shard + dir_len));
    }
    if (!st) {
        json_t *root = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total, "weight_map", wm);
        char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        st = bv_atomic_write_file(idx, text, strlen(text));
        free(text);
        json_decref(root);
        if (!st && is_file(path)) unlink(path); /* a stale single-file form */
    } else {
        json_decref(wm);
    }
    free(start);
    return st;
}
