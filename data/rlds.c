#include "data/rlds.h"

#include <errno.h>
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEPTH 32 /* features.json nesting we accept (real ones have 4-5 levels) */
#define NAMEF "%.200s"

typedef struct {
    bv_rlds_dataset *ds;
    const char *path; /* features.json, for messages */
    int cap;
} walk_ctx;

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = bv_xmalloc(n);
    snprintf(s, n, "%s%s%s", a, a[0] && b[0] ? "/" : "", b);
    return s;
}

static const char *short_class(const char *cls) {
    const char *d = strrchr(cls, '.');
    return d ? d + 1 : cls;
}

/* int64 from a JSON integer or a decimal string (proto JSON writes int64 as strings). */
static int json_int64(const json_t *v, int64_t *out) {
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        if (errno || end == s || *end) return -1;
        *out = x;
        return 0;
    }
    return -1;
}

static bv_feat_kind list_of_dtype(const char *dt) {
    if (!strcmp(dt, "float32") || !strcmp(dt, "float64") || !strcmp(dt, "float16") || !strcmp(dt, "bfloat16"))
        return BV_FEAT_FLOAT;
    if (!strcmp(dt, "bool") || !strcmp(dt, "int8") || !strcmp(dt, "int16") || !strcmp(dt, "int32") ||
        !strcmp(dt, "int64") || !strcmp(dt, "uint8") || !strcmp(dt, "uint16") || !strcmp(dt, "uint32") ||
        !strcmp(dt, "uint64"))
        return BV_FEAT_INT64;
    if (!strcmp(dt, "string")) return BV_FEAT_BYTES;
    return BV_FEAT_NONE;
}

static bv_rlds_feature *add_feature(walk_ctx *c, const char *name, const char *cls) {
    bv_rlds_dataset *ds = c->ds;
    if (ds->n_features == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 32;
        ds->features = bv_xrealloc(ds->features, (size_t)c->cap * sizeof *ds->features);
    }
    bv_rlds_feature *f = &ds->features[ds->n_features++];
    memset(f, 0, sizeof *f);
    f->name = bv_xstrdup(name);
    f->class_name = bv_xstrdup(short_class(cls));
    strcpy(f->encoding, "none");
    return f;
}

static void mark_other(bv_rlds_feature *f, const char *why) {
    f->kind = BV_RLDS_OTHER;
    free(f->note);
    f->note = bv_xstrdup(why);
}

/* Reads {"shape": {"dimensions": [...]}, "dtype": ...} into f. */
static bv_status read_shape_dtype(walk_ctx *c, bv_rlds_feature *f, const json_t *spec) {
    const json_t *shape = json_object_get(spec, "shape");
    const json_t *dims = shape ? json_object_get(shape, "dimensions") : NULL;
    f->ndim = 0;
    if (dims) {
        if (!json_is_array(dims) || json_array_size(dims) > BV_RLDS_MAX_DIMS)
            return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "': shape.dimensions must be an array of at most %d "
                                               "sizes",
                                c->path, f->name, BV_RLDS_MAX_DIMS);
        for (size_t i = 0; i < json_array_size(dims); i++) {
            int64_t d;
            if (json_int64(json_array_get(dims, i), &d) || d < -1)
                return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "': dimension %zu is not an integer >= -1",
                                    c->path, f->name, i);
            f->shape[f->ndim++] = d;
        }
    }
    const json_t *dt = json_object_get(spec, "dtype");
    if (!json_is_string(dt))
        return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "': missing \"dtype\" string", c->path, f->name);
    snprintf(f->dtype, sizeof f->dtype, "%s", json_string_value(dt));
    f->list = list_of_dtype(f->dtype);
    if (f->list == BV_FEAT_NONE) {
        char why[96];
        snprintf(why, sizeof why, "dtype '%.40s' is not supported", json_string_value(dt));
        mark_other(f, why);
    }
    return BV_OK;
}

/* Walks one features.json node (iteratively bounded by MAX_DEPTH through the recursion depth). */
static bv_status walk(walk_ctx *c, const json_t *node, const char *name, bool per_step, int depth) {
    if (depth > MAX_DEPTH)
        return bv_error_set(BV_ERR_FORMAT, "%s: features nested deeper than %d levels at '" NAMEF "'", c->path,
                            MAX_DEPTH, name);
    if (!json_is_object(node))
        return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "' is not a JSON object", c->path, name);
    const json_t *jcls = json_object_get(node, "pythonClassName");
    if (!json_is_string(jcls))
        return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "' has no \"pythonClassName\" string", c->path, name);
    const char *cls = short_class(json_string_value(jcls));
    bv_status st = BV_OK;

    if (!strcmp(cls, "FeaturesDict")) {
        const json_t *fd = json_object_get(node, "featuresDict");
        const json_t *feats = fd ? json_object_get(fd, "features") : NULL;
        if (!json_is_object(feats))
            return bv_error_set(BV_ERR_FORMAT, "%s: FeaturesDict '" NAMEF "' lacks featuresDict.features", c->path,
                                name);
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)feats, k, v) {
            if (!k[0] || strchr(k, '/'))
                return bv_error_set(BV_ERR_FORMAT, "%s: feature name '" NAMEF "' under '" NAMEF "' is empty or has a '/'",
                                    c->path, k, name);
            char *sub = join(name, k);
            st = walk(c, v, sub, per_step, depth + 1);
            free(sub);
            if (st) return st;
        }
        return BV_OK;
    }
    if (!strcmp(cls, "Dataset")) {
        const json_t *seq = json_object_get(node, "sequence");
        const json_t *inner = seq ? json_object_get(seq, "feature") : NULL;
        if (!inner)
            return bv_error_set(BV_ERR_FORMAT, "%s: Dataset '" NAMEF "' lacks sequence.feature", c->path, name);
        if (per_step) { /* nested sequences: record the node, decode nothing under it */
            bv_rlds_feature *f = add_feature(c, name, json_string_value(jcls));
            f->per_step = true;
            mark_other(f, "a sequence nested in the steps sequence is not supported");
            return BV_OK;
        }
        return walk(c, inner, name, true, depth + 1);
    }

    bv_rlds_feature *f = add_feature(c, name, json_string_value(jcls));
    f->per_step = per_step;
    if (!strcmp(cls, "Tensor") || !strcmp(cls, "Scalar")) {
        const json_t *spec = json_object_get(node, "tensor");
        if (!json_is_object(spec))
            return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "' (%s) lacks a \"tensor\" object", c->path, name,
                                cls);
        f->kind = BV_RLDS_TENSOR;
        if ((st = read_shape_dtype(c, f, spec))) return st;
        const json_t *enc = json_object_get(spec, "encoding");
        if (enc && json_is_string(enc) && strcmp(json_string_value(enc), "none") != 0) {
            char why[96];
            snprintf(why, sizeof why, "tensor encoding '%.30s' is not supported (only 'none')", json_string_value(enc));
            mark_other(f, why);
        }
        if (f->kind == BV_RLDS_TENSOR && f->list == BV_FEAT_BYTES) mark_other(f, "string tensors are not supported");
        return BV_OK;
    }
    if (!strcmp(cls, "Image")) {
        const json_t *spec = json_object_get(node, "image");
        if (!json_is_object(spec))
            return bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "' (Image) lacks an \"image\" object", c->path,
                                name);
        f->kind = BV_RLDS_IMAGE;
        if ((st = read_shape_dtype(c, f, spec))) return st;
        f->list = BV_FEAT_BYTES;
        const json_t *fmt = json_object_get(spec, "encodingFormat");
        const char *e = json_is_string(fmt) ? json_string_value(fmt) : "png"; /* TFDS's default */
        if (strcmp(e, "jpeg") && strcmp(e, "png")) {
            char why[96];
            snprintf(why, sizeof why, "image encodingFormat '%.30s' is not supported (jpeg or png)", e);
            mark_other(f, why);
        } else {
            snprintf(f->encoding, sizeof f->encoding, "%s", e);
        }
        if (f->kind == BV_RLDS_IMAGE && (f->ndim != 3 || strcmp(f->dtype, "uint8")))
            mark_other(f, "only uint8 images of shape (H, W, C) are supported");
        else if (f->kind == BV_RLDS_IMAGE && f->shape[2] != 3)
            mark_other(f, "only 3-channel (RGB) images are supported");
        return BV_OK;
    }
    if (!strcmp(cls, "Text")) {
        f->kind = BV_RLDS_TEXT;
        strcpy(f->dtype, "string");
        f->list = BV_FEAT_BYTES;
        return BV_OK;
    }
    if (!strcmp(cls, "ClassLabel")) {
        f->kind = BV_RLDS_TENSOR;
        strcpy(f->dtype, "int64");
        f->list = BV_FEAT_INT64;
        return BV_OK;
    }
    char why[128];
    snprintf(why, sizeof why, "feature class '%.60s' is not supported", cls);
    mark_other(f, why);
    return BV_OK;
}

static bv_status load_json(const char *path, json_t **out) {
    json_error_t je;
    *out = json_load_file(path, 0, &je);
    if (*out) return BV_OK;
    if (access(path, R_OK) != 0)
        return bv_error_set(BV_ERR_IO, "%s: cannot read: %s (is this a TFDS dataset directory?)", path,
                            strerror(errno));
    return bv_error_set(BV_ERR_FORMAT, "%s: invalid JSON at line %d column %d: %s", path, je.line, je.column, je.text);
}

/* Expands a TFDS filepathTemplate for one shard. */
static bv_status expand_template(const char *tpl, const char *dataset, const char *split, const char *fmt, int shard,
                                 int n_shards, char *out, size_t cap, const char *info_path) {
    size_t o = 0;
    for (const char *p = tpl; *p;) {
        char piece[64];
        const char *s = NULL;
        if (*p == '{') {
            const char *e = strchr(p, '}');
            if (!e) return bv_error_set(BV_ERR_FORMAT, "%s: filepathTemplate '%.100s' has an unclosed '{'", info_path, tpl);
            size_t n = (size_t)(e - p - 1);
            if (n == 7 && !strncmp(p + 1, "DATASET", 7))
                s = dataset;
            else if (n == 5 && !strncmp(p + 1, "SPLIT", 5))
                s = split;
            else if (n == 10 && !strncmp(p + 1, "FILEFORMAT", 10))
                s = fmt;
            else if (n == 12 && !strncmp(p + 1, "SHARD_X_OF_Y", 12))
                snprintf(piece, sizeof piece, "%05d-of-%05d", shard, n_shards), s = piece;
            else if (n == 11 && !strncmp(p + 1, "SHARD_INDEX", 11))
                snprintf(piece, sizeof piece, "%05d", shard), s = piece;
            else if (n == 10 && !strncmp(p + 1, "NUM_SHARDS", 10))
                snprintf(piece, sizeof piece, "%05d", n_shards), s = piece;
            else
                return bv_error_set(BV_ERR_FORMAT, "%s: filepathTemplate '%.100s': unknown field '{%.*s}'", info_path, tpl,
                                    (int)BV_MIN(n, 40), p + 1);
            p = e + 1;
        } else {
            piece[0] = *p++;
            piece[1] = 0;
            s = piece;
        }
        size_t l = strlen(s);
        if (o + l + 1 > cap) return bv_error_set(BV_ERR_FORMAT, "%s: shard file name too long", info_path);
        memcpy(out + o, s, l);
        o += l;
    }
    out[o] = 0;
    if (strchr(out, '/') || !strcmp(out, "..") || !out[0])
        return bv_error_set(BV_ERR_FORMAT, "%s: filepathTemplate '%.100s' gives '%.100s', not a plain file name",
                            info_path, tpl, out);
    return BV_OK;
}

static bv_status read_info(bv_rlds_dataset *ds, const char *path) {
    json_t *j;
    bv_status st = load_json(path, &j);
    if (st) return st;
    const json_t *name = json_object_get(j, "name"), *ver = json_object_get(j, "version"),
                 *ff = json_object_get(j, "fileFormat"), *splits = json_object_get(j, "splits");
    if (!json_is_string(name)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: missing \"name\" string", path);
        goto done;
    }
    ds->name = bv_xstrdup(json_string_value(name));
    ds->version = bv_xstrdup(json_is_string(ver) ? json_string_value(ver) : "");
    ds->file_format = bv_xstrdup(json_is_string(ff) ? json_string_value(ff) : "tfrecord");
    if (strcmp(ds->file_format, "tfrecord")) {
        st = bv_error_set(BV_ERR_UNSUPPORTED, "%s: fileFormat '%.40s' is not supported (expected tfrecord)", path,
                          ds->file_format);
        goto done;
    }
    if (!json_is_array(splits)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: missing \"splits\" array", path);
        goto done;
    }
    size_t ns = json_array_size(splits);
    ds->splits = bv_xcalloc(ns ? ns : 1, sizeof *ds->splits);
    for (size_t i = 0; i < ns; i++) {
        const json_t *s = json_array_get(splits, i);
        const json_t *sn = json_object_get(s, "name"), *lens = json_object_get(s, "shardLengths"),
                     *tpl = json_object_get(s, "filepathTemplate");
        if (!json_is_string(sn)) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: splits[%zu] has no \"name\" string", path, i);
            goto done;
        }
        bv_rlds_split *sp = &ds->splits[ds->n_splits++];
        sp->name = bv_xstrdup(json_string_value(sn));
        if (lens && !json_is_array(lens)) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: split '%.40s': \"shardLengths\" is not an array", path, sp->name);
            goto done;
        }
        size_t n = lens ? json_array_size(lens) : 0;
        if (n > 1000000) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: split '%.40s': %zu shards (more than 1e6)", path, sp->name, n);
            goto done;
        }
        sp->n_shards = (int)n;
        sp->shard_lengths = bv_xcalloc(n ? n : 1, sizeof *sp->shard_lengths);
        sp->files = bv_xcalloc(n ? n : 1, sizeof *sp->files);
        const char *t = json_is_string(tpl) ? json_string_value(tpl) : "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}";
        for (size_t k = 0; k < n; k++) {
            int64_t len;
            if (json_int64(json_array_get(lens, k), &len) || len < 0) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: split '%.40s': shardLengths[%zu] is not a non-negative integer",
                                  path, sp->name, k);
                goto done;
            }
            sp->shard_lengths[k] = len;
            sp->n_episodes += len;
            char fname[1024];
            if ((st = expand_template(t, ds->name, sp->name, ds->file_format, (int)k, (int)n, fname, sizeof fname,
                                      path)))
                goto done;
            sp->files[k] = join(ds->dir, fname);
        }
    }
done:
    json_decref(j);
    return st;
}

bv_status bv_rlds_open(bv_rlds_dataset *ds, const char *dir) {
    memset(ds, 0, sizeof *ds);
    ds->dir = bv_xstrdup(dir);
    size_t l = strlen(ds->dir);
    while (l > 1 && ds->dir[l - 1] == '/') ds->dir[--l] = 0;
    char *fpath = join(ds->dir, "features.json"), *ipath = join(ds->dir, "dataset_info.json");
    bv_status st = BV_OK;
    json_t *j = NULL;
    if ((st = load_json(fpath, &j))) goto done;
    walk_ctx c = {ds, fpath, 0};
    if ((st = walk(&c, j, "", false, 0))) goto done;
    if (ds->n_features == 0) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: no features", fpath);
        goto done;
    }
    /* names unique (a FeaturesDict cannot repeat a key, but a flattened name could collide) */
    for (int a = 0; a < ds->n_features; a++)
        for (int b = a + 1; b < ds->n_features; b++)
            if (!strcmp(ds->features[a].name, ds->features[b].name)) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: feature '" NAMEF "' appears twice", fpath, ds->features[a].name);
                goto done;
            }
    st = read_info(ds, ipath);
done:
    json_decref(j);
    free(fpath);
    free(ipath);
    if (st) bv_rlds_close(ds);
    return st;
}

void bv_rlds_close(bv_rlds_dataset *ds) {
    for (int i = 0; i < ds->n_features; i++) {
        free(ds->features[i].name);
        free(ds->features[i].class_name);
        free(ds->features[i].note);
    }
    free(ds->features);
    for (int i = 0; i < ds->n_splits; i++) {
        bv_rlds_split *s = &ds->splits[i];
        for (int k = 0; k < s->n_shards; k++) free(s->files[k]);
        free(s->files);
        free(s->shard_lengths);
        free(s->name);
    }
    free(ds->splits);
    free(ds->dir);
    free(ds->name);
    free(ds->version);
    free(ds->file_format);
    memset(ds, 0, sizeof *ds);
}

const bv_rlds_feature *bv_rlds_feature_find(const bv_rlds_dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_features; i++)
        if (!strcmp(ds->features[i].name, name)) return &ds->features[i];
    return NULL;
}

const bv_rlds_split *bv_rlds_split_find(const bv_rlds_dataset *ds, const char *name) {
    for (int i = 0; i < ds->n_splits; i++)
        if (!strcmp(ds->splits[i].name, name)) return &ds->splits[i];
    return NULL;
}

bv_status bv_rlds_split_check(const bv_rlds_dataset *ds, const bv_rlds_split *sp) {
    for (int k = 0; k < sp->n_shards; k++)
        if (access(sp->files[k], R_OK) != 0)
            return bv_error_set(BV_ERR_IO, "%s: shard %d of %d of split '%s' (dataset_info.json of %s): %s",
                                sp->files[k], k, sp->n_shards, sp->name, ds->dir, strerror(errno));
    return BV_OK;
}

int64_t bv_rlds_feature_numel(const bv_rlds_feature *f) {
    if (f->kind == BV_RLDS_IMAGE || f->kind == BV_RLDS_TEXT) return 1;
    int64_t n = 1;
    for (int i = 0; i < f->ndim; i++) {
        if (f->shape[i] < 0) return -1;
        if (f->shape[i] && n > INT64_MAX / f->shape[i]) return -1;
        n *= f->shape[i];
    }
    return n;
}

static void shape_str(const bv_rlds_feature *f, char *buf, size_t n) {
    size_t p = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < f->ndim && p < n; i++)
        p += (size_t)snprintf(buf + p, n - p, "%s%lld", i ? ", " : "", (long long)f->shape[i]);
    if (p < n) snprintf(buf + p, n - p, "]");
}

bv_status bv_rlds_get(const bv_rlds_dataset *ds, const bv_example *ex, const char *key, bv_rlds_value *out,
                      const char *label) {
    memset(out, 0, sizeof *out);
    const bv_rlds_feature *f = bv_rlds_feature_find(ds, key);
    if (!f)
        return bv_error_set(BV_ERR_ARG, "%s: key '" NAMEF "' is not a feature of the dataset (see %s/features.json)",
                            label, key, ds->dir);
    if (f->kind == BV_RLDS_OTHER)
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: key '" NAMEF "': %s", label, key, f->note);
    const bv_feature *raw = bv_example_find(ex, key);
    if (!raw) return bv_error_set(BV_ERR_FORMAT, "%s: key '" NAMEF "' is missing from the episode", label, key);
    if (raw->kind != f->list)
        return bv_error_set(BV_ERR_SHAPE, "%s: key '" NAMEF "' is stored as %s, but features.json declares %s %s (%s)",
                            label, key, bv_feat_kind_name(raw->kind), f->class_name, f->dtype,
                            bv_feat_kind_name(f->list));
    int64_t per = bv_rlds_feature_numel(f);
    char shp[96];
    shape_str(f, shp, sizeof shp);
    if (per < 0)
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: key '" NAMEF "' has an unknown dimension in its shape %s", label,
                            key, shp);
    int64_t n = (int64_t)raw->n;
    if (!f->per_step) {
        if (n != per)
            return bv_error_set(BV_ERR_SHAPE, "%s: key '" NAMEF "' has %lld values, expected %lld (shape %s)", label, key,
                                (long long)n, (long long)per, shp);
        out->n_steps = 1;
    } else if (per == 0) {
        if (n != 0)
            return bv_error_set(BV_ERR_SHAPE, "%s: key '" NAMEF "' has %lld values for the empty shape %s", label, key,
                                (long long)n, shp);
        out->n_steps = -1; /* unknown from this key */
    } else {
        if (n % per)
            return bv_error_set(BV_ERR_SHAPE,
                                "%s: key '" NAMEF "' has %lld values, not a whole number of steps of shape %s (%lld "
                                "values each)",
                                label, key, (long long)n, shp, (long long)per);
        out->n_steps = n / per;
    }
    out->feat = f;
    out->raw = raw;
    out->per_step = per;
    return BV_OK;
}

bv_status bv_rlds_get_many(const bv_rlds_dataset *ds, const bv_example *ex, int n, const char *const *keys,
                           bv_rlds_value *out, int64_t *n_steps, const char *label) {
    *n_steps = 0;
    int first = -1;
    for (int i = 0; i < n; i++) {
        bv_status st = bv_rlds_get(ds, ex, keys[i], &out[i], label);
        if (st) return st;
        if (!out[i].feat->per_step || out[i].n_steps < 0) continue;
        if (first < 0) {
            first = i;
            *n_steps = out[i].n_steps;
        } else if (out[i].n_steps != *n_steps) {
            return bv_error_set(BV_ERR_SHAPE, "%s: key '" NAMEF "' has %lld steps but key '" NAMEF "' has %lld", label,
                                keys[i], (long long)out[i].n_steps, keys[first], (long long)*n_steps);
        }
    }
    for (int i = 0; i < n; i++)
        if (out[i].n_steps < 0) out[i].n_steps = *n_steps;
    return BV_OK;
}

void bv_rlds_value_f32(const bv_rlds_value *v, float *dst) {
    size_t n = v->raw->n;
    if (v->raw->kind == BV_FEAT_FLOAT) {
        if (n) memcpy(dst, v->raw->floats, n * sizeof *dst);
    } else if (v->raw->kind == BV_FEAT_INT64) {
        for (size_t i = 0; i < n; i++) dst[i] = (float)v->raw->int64s[i];
    } else {
        BV_ASSERT(0, "bv_rlds_value_f32 on '%s', a %s", v->feat->name, bv_feat_kind_name(v->raw->kind));
    }
}

bv_bytes bv_rlds_value_bytes(const bv_rlds_value *v, int64_t t) {
    BV_ASSERT(v->raw->kind == BV_FEAT_BYTES && t >= 0 && (size_t)t < v->raw->n, "step %lld of '%s' (%zu values)",
              (long long)t, v->feat->name, v->raw->n);
    return v->raw->bytes[t];
}
