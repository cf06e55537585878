#include "data/convert.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/atomic_file.h"
#include "data/example.h"
#include "data/image.h"
#include "data/rlds.h"
#include "data/stats.h"
#include "data/tfrecord.h"
#include "src/progress.h"

#define NAMEF "%.200s"

/* ---- schemas ---- */

static const char *k_builtin_libero =
    "{\"name\": \"libero\", \"split\": \"train\","
    " \"keys\": {\"primary_image\": \"steps/observation/image\", \"wrist_image\": \"steps/observation/wrist_image\","
    "  \"proprio\": \"steps/observation/state\", \"action\": \"steps/action\","
    "  \"instruction\": \"steps/language_instruction\"},"
    " \"transforms\": {\"gripper\": \"invert_clip01\", \"gripper_dim\": -1},"
    " \"action_mask\": [true, true, true, true, true, true, false],"
    " \"images\": \"jpeg\", \"jpeg_quality\": 95}";

static const char *k_builtin_bridge =
    "{\"name\": \"bridge\", \"split\": \"train\","
    " \"keys\": {\"primary_image\": \"steps/observation/image_0\", \"proprio\": \"steps/observation/state\","
    "  \"action\": \"steps/action\", \"instruction\": \"steps/language_instruction\"},"
    " \"transforms\": {\"gripper\": \"none\"},"
    " \"action_mask\": [true, true, true, true, true, true, false],"
    " \"images\": \"jpeg\", \"jpeg_quality\": 95}";

void bv_schema_free(bv_schema *s) {
    free(s->name);
    free(s->source);
    free(s->split);
    free(s->primary_image);
    free(s->wrist_image);
    free(s->proprio);
    free(s->action);
    free(s->instruction);
    memset(s, 0, sizeof *s);
}

static bv_status schema_str(const json_t *o, const char *key, bool required, char **out, const char *src) {
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return bv_error_set(BV_ERR_FORMAT, "schema %s: missing key \"%s\" (a string)", src, key);
        return BV_OK;
    }
    if (!json_is_string(v) || !json_string_value(v)[0])
        return bv_error_set(BV_ERR_FORMAT, "schema %s: \"%s\" must be a non-empty string", src, key);
    *out = bv_xstrdup(json_string_value(v));
    return BV_OK;
}

static bv_status schema_mask(const json_t *o, const char *key, bool *mask, int *n, const char *src) {
    const json_t *v = json_object_get(o, key);
    *n = 0;
    if (!v || json_is_null(v)) return BV_OK;
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > BV_SCHEMA_MAX_DIM)
        return bv_error_set(BV_ERR_FORMAT, "schema %s: \"%s\" must be an array of 1..%d booleans", src, key,
                            BV_SCHEMA_MAX_DIM);
    for (size_t i = 0; i < json_array_size(v); i++) {
        const json_t *b = json_array_get(v, i);
        if (!json_is_boolean(b))
            return bv_error_set(BV_ERR_FORMAT, "schema %s: \"%s\"[%zu] is not a boolean", src, key, i);
        mask[i] = json_is_true(b);
    }
    *n = (int)json_array_size(v);
    return BV_OK;
}

static bv_status schema_parse(bv_schema *s, const json_t *j, const char *src) {
    bv_status st;
    if (!json_is_object(j)) return bv_error_set(BV_ERR_FORMAT, "schema %s: not a JSON object", src);
    static const char *known[] = {"name", "split", "keys", "transforms", "action_mask", "proprio_mask", "images",
                                  "jpeg_quality", "description"};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        size_t i = 0;
        while (i < BV_ARRAY_LEN(known) && strcmp(k, known[i])) i++;
        if (i == BV_ARRAY_LEN(known))
            return bv_error_set(BV_ERR_FORMAT,
                                "schema %s: unknown key \"%.60s\" (expected name, split, keys, transforms, action_mask, "
                                "proprio_mask, images, jpeg_quality, description)",
                                src, k);
    }
    if ((st = schema_str(j, "name", true, &s->name, src))) return st;
    if ((st = schema_str(j, "split", false, &s->split, src))) return st;
    if (!s->split) s->split = bv_xstrdup("train");
    const json_t *keys = json_object_get(j, "keys");
    if (!json_is_object(keys)) return bv_error_set(BV_ERR_FORMAT, "schema %s: missing object \"keys\"", src);
    static const char *roles[] = {"primary_image", "wrist_image", "proprio", "action", "instruction"};
    json_object_foreach((json_t *)keys, k, v) {
        size_t i = 0;
        while (i < BV_ARRAY_LEN(roles) && strcmp(k, roles[i])) i++;
        if (i == BV_ARRAY_LEN(roles))
            return bv_error_set(BV_ERR_FORMAT,
                                "schema %s: unknown role \"%.60s\" in \"keys\" (expected primary_image, wrist_image, "
                                "proprio, action, instruction)",
                                src, k);
    }
    if ((st = schema_str(keys, "primary_image", true, &s->primary_image, src)) ||
        (st = schema_str(keys, "wrist_image", false, &s->wrist_image, src)) ||
        (st = schema_str(keys, "proprio", true, &s->proprio, src)) ||
        (st = schema_str(keys, "action", true, &s->action, src)) ||
        (st = schema_str(keys, "instruction", true, &s->instruction, src)))
        return st;
    s->gripper = BV_GRIPPER_NONE;
    s->gripper_dim = -1;
    const json_t *tr = json_object_get(j, "transforms");
    if (tr && !json_is_object(tr)) return bv_error_set(BV_ERR_FORMAT, "schema %s: \"transforms\" must be an object", src);
    if (tr) {
        const json_t *g = json_object_get(tr, "gripper"), *gd = json_object_get(tr, "gripper_dim");
        if (g) {
            const char *gs = json_is_string(g) ? json_string_value(g) : "";
            if (!strcmp(gs, "invert_clip01"))
                s->gripper = BV_GRIPPER_INVERT_CLIP01;
            else if (strcmp(gs, "none"))
                return bv_error_set(BV_ERR_FORMAT,
                                    "schema %s: transforms.gripper must be \"invert_clip01\" or \"none\"", src);
        }
        if (gd) {
            if (!json_is_integer(gd) || json_integer_value(gd) < -1 || json_integer_value(gd) >= BV_SCHEMA_MAX_DIM)
                return bv_error_set(BV_ERR_FORMAT, "schema %s: transforms.gripper_dim must be an integer -1..%d", src,
                                    BV_SCHEMA_MAX_DIM - 1);
            s->gripper_dim = (int)json_integer_value(gd);
        }
    }
    if ((st = schema_mask(j, "action_mask", s->action_mask, &s->n_action_mask, src)) ||
        (st = schema_mask(j, "proprio_mask", s->proprio_mask, &s->n_proprio_mask, src)))
        return st;
    s->images = BV_IMAGES_JPEG;
    const json_t *im = json_object_get(j, "images");
    if (im) {
        const char *is = json_is_string(im) ? json_string_value(im) : "";
        if (!strcmp(is, "raw"))
            s->images = BV_IMAGES_RAW;
        else if (strcmp(is, "jpeg"))
            return bv_error_set(BV_ERR_FORMAT, "schema %s: \"images\" must be \"jpeg\" or \"raw\"", src);
    }
    s->jpeg_quality = 95;
    const json_t *q = json_object_get(j, "jpeg_quality");
    if (q) {
        if (!json_is_integer(q) || json_integer_value(q) < 1 || json_integer_value(q) > 100)
            return bv_error_set(BV_ERR_FORMAT, "schema %s: \"jpeg_quality\" must be an integer 1..100", src);
        s->jpeg_quality = (int)json_integer_value(q);
    }
    return BV_OK;
}

bv_status bv_schema_load(bv_schema *s, const char *arg) {
    memset(s, 0, sizeof *s);
    const char *text = !strcmp(arg, "libero") ? k_builtin_libero : !strcmp(arg, "bridge") ? k_builtin_bridge : NULL;
    json_error_t je;
    json_t *j;
    if (text) {
        j = json_loads(text, 0, &je);
        BV_ASSERT(j != NULL, "built-in schema %s: %s", arg, je.text);
        s->source = bv_xstrdup("built-in");
    } else {
        struct stat sb;
        if (stat(arg, &sb) != 0)
            return bv_error_set(BV_ERR_ARG,
                                "unknown schema '%.200s' (expected libero, bridge or the path of a JSON schema file)",
                                arg);
        j = json_load_file(arg, 0, &je);
        if (!j)
            return bv_error_set(BV_ERR_FORMAT, "schema %s: invalid JSON at line %d column %d: %s", arg, je.line,
                                je.column, je.text);
        s->source = bv_xstrdup(arg);
    }
    bv_status st = schema_parse(s, j, text ? arg : s->source);
    json_decref(j);
    if (st) bv_schema_free(s);
    return st;
}

static json_t *mask_json(const bool *m, int n) {
    if (!n) return json_null();
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_boolean(m[i]));
    return a;
}

static json_t *schema_json(const bv_schema *s) {
    json_t *keys = json_pack("{s:s, s:s, s:s, s:s}", "primary_image", s->primary_image, "proprio", s->proprio,
                             "action", s->action, "instruction", s->instruction);
    if (s->wrist_image) json_object_set_new(keys, "wrist_image", json_string(s->wrist_image));
    return json_pack("{s:s, s:s, s:s, s:o, s:{s:s, s:i}, s:o, s:o, s:s, s:i}", "name", s->name, "source", s->source,
                     "split", s->split, "keys", keys, "transforms", "gripper",
                     s->gripper == BV_GRIPPER_INVERT_CLIP01 ? "invert_clip01" : "none", "gripper_dim", s->gripper_dim,
                     "action_mask", mask_json(s->action_mask, s->n_action_mask), "proprio_mask",
                     mask_json(s->proprio_mask, s->n_proprio_mask), "images", bv_image_storage_name(s->images),
                     "jpeg_quality", s->jpeg_quality);
}

char *bv_schema_to_json(const bv_schema *s) {
    json_t *j = schema_json(s);
    char *t = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    return t;
}

/* ---- the output directory ---- */

static bool is_output_name(const char *n) {
    return !strcmp(n, "manifest.json") || !strcmp(n, "dataset_statistics.json") ||
           (!strncmp(n, "shard-", 6) && strstr(n, ".h5")) || (!strncmp(n, "manifest.json.tmp.", 18)) ||
           !strncmp(n, "dataset_statistics.json.tmp.", 28);
}

/* Creates out_dir if needed (*created = 1) or checks that it holds no earlier output (removing it
 * with force: the manifest first, so the directory is never valid with mixed contents). */
static bv_status prepare_out_dir(const char *dir, bool force, int *created) {
    *created = 0;
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        if (mkdir(dir, 0777) != 0)
            return bv_error_set(BV_ERR_IO, "%s: cannot create the output directory: %s", dir, strerror(errno));
        *created = 1;
        return BV_OK;
    }
    if (!S_ISDIR(sb.st_mode)) return bv_error_set(BV_ERR_ARG, "%s: exists and is not a directory", dir);
    DIR *d = opendir(dir);
    if (!d) return bv_error_set(BV_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    struct dirent *de;
    int found = 0;
    char first[256] = "";
    while ((de = readdir(d)))
        if (is_output_name(de->d_name)) {
            if (!found) snprintf(first, sizeof first, "%s", de->d_name);
            found++;
        }
    closedir(d);
    if (!found) return BV_OK;
    if (!force)
        return bv_error_set(BV_ERR_ARG, "%s: already holds a converted dataset (%s and %d more); use --force to replace it",
                            dir, first, found - 1);
    char p[4096];
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    if (unlink(p) != 0 && errno != ENOENT)
        return bv_error_set(BV_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
    d = opendir(dir);
    if (!d) return bv_error_set(BV_ERR_IO, "%s: cannot list: %s", dir, strerror(errno));
    bv_status st = BV_OK;
    while ((de = readdir(d)))
        if (is_output_name(de->d_name)) {
            snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
            if (unlink(p) != 0 && !st) st = bv_error_set(BV_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
        }
    closedir(d);
    return st;
}

/* ---- the sink: episodes -> shards, statistics rows, manifest ---- */

typedef struct {
    const char *out_dir;
    char *dataset_name;
    bv_shard_writer *w;
    int action_dim, proprio_dim;
    const bool *action_mask, *proprio_mask;
    float *acts, *props;
    int64_t rows, cap_rows;
    int64_t *lengths;
    int64_t n_eps, cap_eps;
    int created_dir;
    bv_shard_opts so;
} sink;

static bv_status sink_open(sink *k, const bv_convert_opts *o, const char *dataset_name, bv_image_storage storage,
                           int action_dim, int proprio_dim, int n_cams, const bv_shard_camera *cams) {
    memset(k, 0, sizeof *k);
    k->out_dir = o->out_dir;
    k->dataset_name = bv_xstrdup(dataset_name);
    k->action_dim = action_dim;
    k->proprio_dim = proprio_dim;
    bv_status st = prepare_out_dir(o->out_dir, o->force, &k->created_dir);
    if (st) {
        free(k->dataset_name);
        k->dataset_name = NULL;
        return st;
    }
    bv_shard_opts so = {.dir = o->out_dir, .dataset_name = k->dataset_name, .storage = storage,
                        .episodes_per_shard = o->episodes_per_shard > 0 ? o->episodes_per_shard : 64,
                        .action_dim = action_dim, .proprio_dim = proprio_dim, .n_cams = n_cams};
    for (int c = 0; c < n_cams; c++) so.cams[c] = cams[c];
    k->so = so;
    if ((st = bv_shards_open(&k->w, &so))) {
        bv_shards_abort(k->w);
        k->w = NULL;
        if (k->created_dir) rmdir(o->out_dir);
        free(k->dataset_name);
        memset(k, 0, sizeof *k);
    }
    return st;
}

static void sink_abort(sink *k) {
    bv_shards_abort(k->w);
    k->w = NULL;
    free(k->acts);
    free(k->props);
    free(k->lengths);
    free(k->dataset_name);
    if (k->created_dir) rmdir(k->out_dir); /* only succeeds if we left it empty */
    memset(k, 0, sizeof *k);
}

static bv_status sink_add(sink *k, const bv_shard_episode *ep) {
    int64_t T = ep->n_steps;
    if (k->rows + T > k->cap_rows) {
        int64_t c = k->cap_rows ? k->cap_rows : 4096;
        while (c < k->rows + T) c *= 2;
        k->acts = bv_xrealloc(k->acts, (size_t)c * (size_t)k->action_dim * sizeof *k->acts);
        k->props = bv_xrealloc(k->props, (size_t)c * (size_t)k->proprio_dim * sizeof *k->props);
        k->cap_rows = c;
    }
    memcpy(k->acts + k->rows * k->action_dim, ep->action, (size_t)T * (size_t)k->action_dim * sizeof(float));
    memcpy(k->props + k->rows * k->proprio_dim, ep->proprio, (size_t)T * (size_t)k->proprio_dim * sizeof(float));
    k->rows += T;
    if (k->n_eps == k->cap_eps) {
        k->cap_eps = k->cap_eps ? 2 * k->cap_eps : 256;
        k->lengths = bv_xrealloc(k->lengths, (size_t)k->cap_eps * sizeof *k->lengths);
    }
    k->lengths[k->n_eps++] = T;
    return bv_shards_add(k->w, ep);
}

/* Shards renamed, statistics, then the manifest (source/schema JSON are taken over). */
static bv_status sink_finish(sink *k, json_t *source, json_t *schema, const bv_shard_camera *cams) {
    bv_status st;
    if (k->n_eps == 0 || k->rows == 0) {
        json_decref(source);
        json_decref(schema);
        st = bv_error_set(BV_ERR_FORMAT, "empty dataset: no episode with at least one step (nothing written to %s)",
                          k->out_dir);
        sink_abort(k); /* removes the directory if the conversion created it */
        return st;
    }
    bv_stats sa, sp;
    bv_stats_compute(k->acts, k->rows, k->action_dim, &sa);
    bv_stats_compute(k->props, k->rows, k->proprio_dim, &sp);
    int n_shards = 0;
    char **files = NULL;
    int64_t *seps = NULL, *ssteps = NULL;
    st = bv_shards_finish(k->w, &n_shards, &files, &seps, &ssteps);
    k->w = NULL;
    char *stats_path = NULL, *man_path = NULL;
    if (st) goto out;
    size_t pl = strlen(k->out_dir) + 32;
    stats_path = bv_xmalloc(pl);
    man_path = bv_xmalloc(pl);
    snprintf(stats_path, pl, "%s/dataset_statistics.json", k->out_dir);
    snprintf(man_path, pl, "%s/manifest.json", k->out_dir);
    st = bv_stats_write(stats_path, k->dataset_name, &sa, k->action_mask, &sp, k->proprio_mask, k->rows, k->n_eps);
    if (st) goto out;
    json_t *m = json_object();
    json_object_set_new(m, "format", json_string("bitvla-shards"));
    json_object_set_new(m, "version", json_integer(BV_SHARD_VERSION));
    json_object_set_new(m, "dataset_name", json_string(k->dataset_name));
    json_object_set_new(m, "created_by", json_string("bitvla " BV_VERSION_STRING));
    json_object_set_new(m, "source", source);
    json_object_set_new(m, "schema", schema);
    source = schema = NULL;
    json_t *img = json_object();
    json_object_set_new(img, "storage", json_string(bv_image_storage_name(k->so.storage)));
    json_t *ca = json_array();
    for (int c = 0; c < k->so.n_cams; c++)
        json_array_append_new(ca, json_pack("{s:s, s:s, s:i, s:i}", "name", cams[c].name, "key", cams[c].key ? cams[c].key : "",
                                            "height", cams[c].height, "width", cams[c].width));
    json_object_set_new(img, "cameras", ca);
    json_object_set_new(m, "images", img);
    json_object_set_new(m, "action_dim", json_integer(k->action_dim));
    json_object_set_new(m, "proprio_dim", json_integer(k->proprio_dim));
    json_object_set_new(m, "num_episodes", json_integer(k->n_eps));
    json_object_set_new(m, "num_transitions", json_integer(k->rows));
    json_t *sh = json_array();
    int64_t first = 0;
    for (int i = 0; i < n_shards; i++) {
        const char *base = strrchr(files[i], '/');
        json_array_append_new(sh, json_pack("{s:s, s:I, s:I, s:I}", "file", base ? base + 1 : files[i], "episodes",
                                            (json_int_t)seps[i], "transitions", (json_int_t)ssteps[i], "first_episode",
                                            (json_int_t)first));
        first += seps[i];
    }
    json_object_set_new(m, "shards", sh);
    json_t *lens = json_array();
    for (int64_t e = 0; e < k->n_eps; e++) json_array_append_new(lens, json_integer(k->lengths[e]));
    json_object_set_new(m, "episode_lengths", lens);
    json_object_set_new(m, "statistics", json_string("dataset_statistics.json"));
    char *text = json_dumps(m, JSON_INDENT(2));
    json_decref(m);
    size_t tl = strlen(text);
    text[tl] = '\n';
    st = bv_atomic_write_file(man_path, text, tl + 1);
    free(text);
out:
    if (st) { /* withdraw everything: nothing complete-looking may stay */
        if (stats_path) unlink(stats_path);
        for (int i = 0; i < n_shards; i++) unlink(files[i]);
    }
    for (int i = 0; i < n_shards; i++) free(files[i]);
    free(files);
    free(seps);
    free(ssteps);
    free(stats_path);
    free(man_path);
    json_decref(source);
    json_decref(schema);
    bv_stats_free(&sa);
    bv_stats_free(&sp);
    int created = k->created_dir;
    k->created_dir = st ? created : 0;
    sink_abort(k); /* frees buffers; removes the directory only if we created it and failed */
    return st;
}

/* ---- shared episode processing ---- */

static void gripper_transform(const bv_schema *s, float *act, int64_t T, int A) {
    if (s->gripper != BV_GRIPPER_INVERT_CLIP01) return;
    int g = s->gripper_dim < 0 ? A - 1 : s->gripper_dim;
    for (int64_t t = 0; t < T; t++) {
        float a = act[t * A + g];
        a = a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; /* clip(a, 0, 1); NaN is rejected later */
        act[t * A + g] = 1.0f - a;
    }
}

static bv_status check_finite(const float *x, int64_t T, int D, const char *label, const char *key) {
    for (int64_t t = 0; t < T; t++)
        for (int d = 0; d < D; d++)
            if (!isfinite(x[t * D + d]))
                return bv_error_set(BV_ERR_FORMAT, "%s: key '" NAMEF "' step %lld dim %d is %g (expected a finite value)",
                                    label, key, (long long)t, d, (double)x[t * D + d]);
    return BV_OK;
}

/* Per camera scratch: decoded pixels and, for JPEG storage, frames re-encoded from PNG. */
typedef struct {
    bv_image img;
    uint8_t *rgb; /* T x H x W x 3 (raw storage) */
    size_t rgb_cap;
    bv_bytes *frames; /* T views (JPEG storage) */
    int64_t cap_frames;
    bv_image_bytes *owned; /* re-encoded frames */
    int64_t n_owned, cap_owned;
} cam_buf;

static void cam_buf_reset(cam_buf *c) {
    for (int64_t i = 0; i < c->n_owned; i++) bv_image_bytes_free(&c->owned[i]);
    c->n_owned = 0;
}

static void cam_buf_free(cam_buf *c) {
    cam_buf_reset(c);
    free(c->owned);
    free(c->frames);
    free(c->rgb);
    bv_image_free(&c->img);
    memset(c, 0, sizeof *c);
}

/* Takes frame t of a camera: decodes it (validating it and its size), stores the pixels (raw) or
 * the encoded bytes (JPEG; non-JPEG frames re-encoded). `rgb_in` != NULL: the frame is already
 * pixels (LIBERO HDF5), `rotate`: rotate by 180 degrees first. */
static bv_status take_frame(cam_buf *c, bv_shard_camera *cam, bv_image_storage storage, int quality, int64_t t,
                            int64_t T, const bv_bytes *enc, const uint8_t *rgb_in, bool rotate, const char *label,
                            const char *key) {
    char where[1600];
    snprintf(where, sizeof where, "%s: key '" NAMEF "' step %lld", label, key, (long long)t);
    size_t fsz = (size_t)cam->height * (size_t)cam->width * 3;
    const uint8_t *pix;
    if (rgb_in) {
        pix = rgb_in;
        if (rotate) {
            if (fsz > c->img.cap) {
                c->img.rgb = bv_xrealloc(c->img.rgb, fsz);
                c->img.cap = fsz;
            }
            memcpy(c->img.rgb, rgb_in, fsz);
            bv_image_rotate180(c->img.rgb, cam->width, cam->height);
            pix = c->img.rgb;
        }
    } else {
        bv_status st = bv_image_decode(enc->data, enc->len, &c->img, where);
        if (st) return st;
        if (c->img.h != cam->height || c->img.w != cam->width)
            return bv_error_set(BV_ERR_SHAPE, "%s: image is %d x %d, expected %d x %d (height x width)", where, c->img.h,
                                c->img.w, cam->height, cam->width);
        if (rotate) bv_image_rotate180(c->img.rgb, c->img.w, c->img.h);
        pix = c->img.rgb;
    }
    if (storage == BV_IMAGES_RAW) {
        if ((size_t)T * fsz > c->rgb_cap) {
            c->rgb_cap = (size_t)T * fsz;
            c->rgb = bv_xrealloc(c->rgb, c->rgb_cap);
        }
        memcpy(c->rgb + (size_t)t * fsz, pix, fsz);
        return BV_OK;
    }
    if (T > c->cap_frames) {
        c->cap_frames = T;
        c->frames = bv_xrealloc(c->frames, (size_t)T * sizeof *c->frames);
    }
    if (enc && !rotate && bv_image_sniff(enc->data, enc->len) == BV_IMAGE_JPEG) {
        c->frames[t] = *enc; /* the source's JPEG, bit for bit */
        return BV_OK;
    }
    if (c->n_owned == c->cap_owned) {
        c->cap_owned = c->cap_owned ? 2 * c->cap_owned : 64;
        c->owned = bv_xrealloc(c->owned, (size_t)c->cap_owned * sizeof *c->owned);
    }
    bv_image_bytes *b = &c->owned[c->n_owned];
    bv_status st = bv_image_encode_jpeg(pix, cam->width, cam->height, quality, b);
    if (st) return st;
    c->n_owned++;
    c->frames[t].data = b->data;
    c->frames[t].len = b->len;
    return BV_OK;
}

/* ---- RLDS ---- */

/* Checks that role -> key exists in features.json with a usable kind; *dim for tensors, camera
 * size for images. */
static bv_status check_role(const bv_rlds_dataset *ds, const bv_schema *s, const char *role, const char *key,
                            bv_rlds_kind want, int *dim, int *h, int *w) {
    const bv_rlds_feature *f = bv_rlds_feature_find(ds, key);
    if (!f)
        return bv_error_set(BV_ERR_ARG, "schema %s: role %s -> key '" NAMEF "' is not a feature of %s/features.json",
                            s->name, role, key, ds->dir);
    if (f->kind == BV_RLDS_OTHER)
        return bv_error_set(BV_ERR_UNSUPPORTED, "schema %s: role %s -> key '" NAMEF "': %s", s->name, role, key, f->note);
    if (!f->per_step)
        return bv_error_set(BV_ERR_ARG, "schema %s: role %s -> key '" NAMEF "' is not a per-step feature (not under steps/)",
                            s->name, role, key);
    if (f->kind != want)
        return bv_error_set(BV_ERR_SHAPE, "schema %s: role %s -> key '" NAMEF "' is a %s, expected %s", s->name, role, key,
                            f->class_name, want == BV_RLDS_IMAGE ? "an Image" : want == BV_RLDS_TEXT ? "Text" : "a Tensor");
    if (want == BV_RLDS_TENSOR) {
        if (f->list != BV_FEAT_FLOAT || f->ndim != 1 || f->shape[0] < 1 || f->shape[0] > BV_SCHEMA_MAX_DIM)
            return bv_error_set(BV_ERR_SHAPE,
                                "schema %s: role %s -> key '" NAMEF "' is %s of rank %d, expected a float vector of "
                                "1..%d values",
                                s->name, role, key, f->dtype, f->ndim, BV_SCHEMA_MAX_DIM);
        *dim = (int)f->shape[0];
    }
    if (want == BV_RLDS_IMAGE) {
        if (f->shape[0] < 1 || f->shape[1] < 1)
            return bv_error_set(BV_ERR_UNSUPPORTED, "schema %s: role %s -> key '" NAMEF "' has no fixed image size", s->name,
                                role, key);
        *h = (int)f->shape[0];
        *w = (int)f->shape[1];
    }
    return BV_OK;
}

static bv_status check_mask(const bv_schema *s, const char *what, int n, int dim) {
    if (n && n != dim)
        return bv_error_set(BV_ERR_SHAPE, "schema %s: %s_mask has %d entries but the %s has %d dimensions", s->name, what,
                            n, what, dim);
    return BV_OK;
}

bv_status bv_convert_rlds(const char *src_dir, const bv_schema *s, const bv_convert_opts *o) {
    bv_rlds_dataset ds;
    bv_status st = bv_rlds_open(&ds, src_dir);
    if (st) return st;
    const char *split = o->split ? o->split : s->split;
    const bv_rlds_split *sp = bv_rlds_split_find(&ds, split);
    sink k;
    memset(&k, 0, sizeof k);
    bv_tfr_reader r;
    memset(&r, 0, sizeof r);
    bv_tfr_buf buf = {0};
    bv_example ex = {0};
    cam_buf cb[2];
    memset(cb, 0, sizeof cb);
    float *act = NULL, *prop = NULL;
    char *instr = NULL;
    bool sink_open_ok = false;
    if (!sp) {
        st = bv_error_set(BV_ERR_ARG, "%s/dataset_info.json: no split '%s'", ds.dir, split);
        goto out;
    }
    if ((st = bv_rlds_split_check(&ds, sp))) goto out;
    int A = 0, P = 0;
    bv_shard_camera cams[2];
    memset(cams, 0, sizeof cams);
    int n_cams = s->wrist_image ? 2 : 1;
    cams[0].name = "primary";
    cams[0].key = s->primary_image;
    cams[1].name = "wrist";
    cams[1].key = s->wrist_image;
    if ((st = check_role(&ds, s, "action", s->action, BV_RLDS_TENSOR, &A, NULL, NULL)) ||
        (st = check_role(&ds, s, "proprio", s->proprio, BV_RLDS_TENSOR, &P, NULL, NULL)) ||
        (st = check_role(&ds, s, "instruction", s->instruction, BV_RLDS_TEXT, NULL, NULL, NULL)) ||
        (st = check_role(&ds, s, "primary_image", s->primary_image, BV_RLDS_IMAGE, NULL, &cams[0].height,
                         &cams[0].width)) ||
        (s->wrist_image && (st = check_role(&ds, s, "wrist_image", s->wrist_image, BV_RLDS_IMAGE, NULL,
                                            &cams[1].height, &cams[1].width))) ||
        (st = check_mask(s, "action", s->n_action_mask, A)) || (st = check_mask(s, "proprio", s->n_proprio_mask, P)))
        goto out;
    if (s->gripper != BV_GRIPPER_NONE && s->gripper_dim >= A) {
        st = bv_error_set(BV_ERR_SHAPE, "schema %s: gripper_dim %d but the action has %d dimensions", s->name,
                          s->gripper_dim, A);
        goto out;
    }
    bv_image_storage storage = o->images >= 0 ? (bv_image_storage)o->images : s->images;
    int quality = o->jpeg_quality > 0 ? o->jpeg_quality : s->jpeg_quality;
    if ((st = sink_open(&k, o, o->dataset_name ? o->dataset_name : ds.name, storage, A, P, n_cams, cams))) goto out;
    sink_open_ok = true;
    k.action_mask = s->n_action_mask ? s->action_mask : NULL;
    k.proprio_mask = s->n_proprio_mask ? s->proprio_mask : NULL;

    const char *keys[5] = {s->action, s->proprio, s->instruction, s->primary_image, s->wrist_image};
    int nk = s->wrist_image ? 5 : 4;
    bv_rlds_value v[5];
    bv_progress pr;
    int64_t total = o->max_episodes > 0 ? BV_MIN(o->max_episodes, sp->n_episodes) : sp->n_episodes;
    bv_progress_init(&pr, "convert", total, "episodes");
    int64_t ep_global = 0, skipped = 0;
    bool stop = false;
    for (int shard = 0; shard < sp->n_shards && !stop; shard++) {
        const char *file = sp->files[shard];
        if ((st = bv_tfr_open(&r, file))) goto out;
        int64_t rec = 0;
        for (;;) {
            bool eof;
            if ((st = bv_tfr_next(&r, &buf, &eof))) { /* the record is the episode: say so */
                char m[1800];
                snprintf(m, sizeof m, "%s", bv_error_msg());
                bv_error_set(st, "%s (episode %lld of this file)", m, (long long)rec);
                goto out;
            }
            if (eof) break;
            char label[1200];
            snprintf(label, sizeof label, "%s: episode %lld (byte offset %llu)", file, (long long)rec,
                     (unsigned long long)r.last_offset);
            rec++;
            if ((st = bv_example_decode(&ex, buf.data, buf.len, label))) goto out;
            int64_t T;
            if ((st = bv_rlds_get_many(&ds, &ex, nk, keys, v, &T, label))) goto out;
            if (T == 0) {
                fprintf(stderr, "bitvla convert: warning: %s: no steps, skipped\n", label);
                skipped++;
                continue;
            }
            act = bv_xrealloc(act, (size_t)T * (size_t)A * sizeof *act);
            prop = bv_xrealloc(prop, (size_t)T * (size_t)P * sizeof *prop);
            bv_rlds_value_f32(&v[0], act);
            bv_rlds_value_f32(&v[1], prop);
            if ((st = check_finite(act, T, A, label, s->action)) || (st = check_finite(prop, T, P, label, s->proprio)))
                goto out;
            gripper_transform(s, act, T, A);
            bv_bytes ib = bv_rlds_value_bytes(&v[2], 0);
            instr = bv_xrealloc(instr, ib.len + 1);
            if (ib.len) memcpy(instr, ib.data, ib.len);
            instr[ib.len] = 0;
            if (strlen(instr) != ib.len) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: key '" NAMEF "' contains a NUL byte", label, s->instruction);
                goto out;
            }
            bv_shard_episode ep = {.n_steps = T, .action = act, .proprio = prop, .instruction = instr,
                                   .episode_index = k.n_eps};
            for (int c = 0; c < n_cams; c++) {
                cam_buf_reset(&cb[c]);
                for (int64_t t = 0; t < T; t++) {
                    bv_bytes b = bv_rlds_value_bytes(&v[3 + c], t);
                    if ((st = take_frame(&cb[c], &cams[c], storage, quality, t, T, &b, NULL, false, label, keys[3 + c])))
                        goto out;
                }
                ep.jpeg[c] = cb[c].frames;
                ep.rgb[c] = cb[c].rgb;
            }
            if ((st = sink_add(&k, &ep))) goto out;
            ep_global++;
            bv_progress_update(&pr, ep_global + skipped);
            if (o->max_episodes > 0 && ep_global + skipped >= o->max_episodes) {
                stop = true;
                break;
            }
        }
        if (!stop && rec != sp->shard_lengths[shard]) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: %lld episodes, but %s/dataset_info.json lists %lld for this shard",
                              file, (long long)rec, ds.dir, (long long)sp->shard_lengths[shard]);
            goto out;
        }
        bv_tfr_close(&r);
    }
    bv_progress_finish(&pr);
    {
        json_t *src = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "kind", "rlds", "path", ds.dir, "dataset", ds.name,
                                "version", ds.version, "split", split, "skipped_empty_episodes", (json_int_t)skipped);
        st = sink_finish(&k, src, schema_json(s), cams);
        sink_open_ok = false;
    }
out:
    if (sink_open_ok) sink_abort(&k);
    bv_tfr_close(&r);
    bv_tfr_buf_free(&buf);
    bv_example_free(&ex);
    for (int c = 0; c < 2; c++) cam_buf_free(&cb[c]);
    free(act);
    free(prop);
    free(instr);
    bv_rlds_close(&ds);
    return st;
}

bool bv_libero_is_noop(const float *a, const float *prev) {
    double n2 = 0;
    for (int i = 0; i < 6; i++) n2 += (double)a[i] * (double)a[i];
    if (!(sqrt(n2) < 1e-4)) return false;
    return prev == NULL || a[6] == prev[6];
}

/* ---- original LIBERO HDF5 demo files ---- */

#include <hdf5.h>

typedef struct {
    char name[64];
    long num;
} demo_name;

static herr_t collect_demo(hid_t g, const char *name, const H5L_info_t *info, void *op) {
    (void)g;
    (void)info;
    void **st = op; /* [0]: demo_name **arr, [1]: int *n, [2]: int *cap */
    demo_name **arr = st[0];
    int *n = st[1], *cap = st[2];
    long num;
    char tail;
    if (sscanf(name, "demo_%ld%c", &num, &tail) != 1 || num < 0 || strlen(name) >= sizeof(*arr)->name) return 0;
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *arr = bv_xrealloc(*arr, (size_t)*cap * sizeof **arr);
    }
    snprintf((*arr)[*n].name, sizeof(*arr)->name, "%s", name);
    (*arr)[*n].num = num;
    (*n)++;
    return 0;
}

static int cmp_demo(const void *a, const void *b) {
    long x = ((const demo_name *)a)->num, y = ((const demo_name *)b)->num;
    return (x > y) - (x < y);
}

/* Reads string attribute `name` of loc (fixed or variable length, as h5py writes). */
static bv_status h5_attr_string(hid_t loc, const char *name, char **out, const char *where) {
    *out = NULL;
    if (H5Aexists(loc, name) <= 0) return bv_error_set(BV_ERR_FORMAT, "%s: missing attribute '%s'", where, name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    hid_t ft = a >= 0 ? H5Aget_type(a) : -1;
    bv_status st = BV_OK;
    if (ft < 0 || H5Tget_class(ft) != H5T_STRING) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: attribute '%s' is not a string", where, name);
    } else {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_cset(mt, H5Tget_cset(ft));
        if (H5Tis_variable_str(ft)) {
            H5Tset_size(mt, H5T_VARIABLE);
            char *v = NULL;
            if (H5Aread(a, mt, &v) < 0 || !v)
                st = bv_error_set(BV_ERR_FORMAT, "%s: cannot read attribute '%s'", where, name);
            else {
                *out = bv_xstrdup(v);
                H5free_memory(v);
            }
        } else {
            size_t n = H5Tget_size(ft);
            H5Tset_size(mt, n);
            char *v = bv_xcalloc(n + 1, 1);
            if (H5Aread(a, mt, v) < 0) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: cannot read attribute '%s'", where, name);
                free(v);
            } else {
                *out = v;
            }
        }
        H5Tclose(mt);
    }
    if (ft >= 0) H5Tclose(ft);
    if (a >= 0) H5Aclose(a);
    return st;
}

/* Reads dataset `key` of group g as `mtype`; it must have rank `rank` and, where want[i] >= 0, those
 * dimensions. dims[] receives the shape; *out a malloc'd buffer. */
static bv_status h5_read(hid_t g, const char *key, hid_t mtype, size_t esz, int rank, const int64_t *want,
                         int64_t *dims, void **out, const char *where) {
    *out = NULL;
    if (H5Lexists(g, key, H5P_DEFAULT) <= 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: key '%s' is missing", where, key);
    hid_t d = H5Dopen2(g, key, H5P_DEFAULT);
    if (d < 0) return bv_error_set(BV_ERR_FORMAT, "%s: key '%s' is not a dataset", where, key);
    hid_t sp = H5Dget_space(d), ft = H5Dget_type(d);
    int r = sp >= 0 ? H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t hd[8] = {0};
    bv_status st = BV_OK;
    H5T_class_t cls = ft >= 0 ? H5Tget_class(ft) : H5T_NO_CLASS;
    bool want_int = mtype == H5T_NATIVE_UINT8;
    if (r != rank || H5Sget_simple_extent_dims(sp, hd, NULL) < 0) {
        st = bv_error_set(BV_ERR_SHAPE, "%s: key '%s' has rank %d, expected %d", where, key, r, rank);
    } else if (want_int ? (cls != H5T_INTEGER || H5Tget_size(ft) != 1) : (cls != H5T_FLOAT && cls != H5T_INTEGER)) {
        st = bv_error_set(BV_ERR_SHAPE, "%s: key '%s' has the wrong element type (expected %s)", where, key,
                          want_int ? "uint8" : "numbers");
    } else {
        size_t n = esz;
        char got[128] = "", exp[128] = "";
        bool bad = false;
        for (int i = 0; i < rank; i++) {
            dims[i] = (int64_t)hd[i];
            n *= hd[i];
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? ", " : "", (unsigned long long)hd[i]);
            if (want[i] >= 0)
                snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s%lld", i ? ", " : "", (long long)want[i]);
            else
                snprintf(exp + strlen(exp), sizeof exp - strlen(exp), "%s*", i ? ", " : "");
            if (want[i] >= 0 && (int64_t)hd[i] != want[i]) bad = true;
        }
        if (bad) {
            st = bv_error_set(BV_ERR_SHAPE, "%s: key '%s' has shape (%s), expected (%s)", where, key, got, exp);
        } else {
            *out = malloc(n ? n : 1);
            if (!*out)
                st = bv_error_set(BV_ERR_NOMEM, "%s: key '%s': cannot allocate %zu bytes", where, key, n);
            else if (n && H5Dread(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0) {
                st = bv_error_set(BV_ERR_IO, "%s: reading key '%s' failed", where, key);
                free(*out);
                *out = NULL;
            }
        }
    }
    if (ft >= 0) H5Tclose(ft);
    if (sp >= 0) H5Sclose(sp);
    H5Dclose(d);
    return st;
}

/* The instruction from /data's problem_info JSON attribute. */
static bv_status libero_instruction(hid_t data, const char *file, char **out) {
    char where[1200];
    snprintf(where, sizeof where, "%s: group /data", file);
    char *pi;
    bv_status st = h5_attr_string(data, "problem_info", &pi, where);
    if (st) return st;
    json_error_t je;
    json_t *j = json_loads(pi, 0, &je);
    free(pi);
    const json_t *li = j ? json_object_get(j, "language_instruction") : NULL;
    if (!json_is_string(li)) {
        json_decref(j);
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: attribute 'problem_info' is not JSON with a \"language_instruction\" string", where);
    }
    /* LIBERO stores it as written in the BDDL file; trim surrounding spaces and quotes */
    const char *s = json_string_value(li);
    while (*s == ' ' || *s == '"') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '"' || s[n - 1] == '\n')) n--;
    *out = bv_xmalloc(n + 1);
    memcpy(*out, s, n);
    (*out)[n] = 0;
    json_decref(j);
    return BV_OK;
}

bv_status bv_convert_libero_hdf5(int n_files, const char *const *files, const bv_convert_opts *o) {
    bv_schema s;
    bv_status st = bv_schema_load(&s, "libero"); /* roles are fixed; the transforms and masks are LIBERO's */
    if (st) return st;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    bv_image_storage storage = o->images >= 0 ? (bv_image_storage)o->images : s.images;
    int quality = o->jpeg_quality > 0 ? o->jpeg_quality : s.jpeg_quality;
    const int A = 7, P = 8;
    bv_shard_camera cams[2] = {{.name = "primary", .key = "obs/agentview_rgb"},
                               {.name = "wrist", .key = "obs/eye_in_hand_rgb"}};
    sink k;
    memset(&k, 0, sizeof k);
    bool sink_ok = false;
    cam_buf cb[2];
    memset(cb, 0, sizeof cb);
    json_t *demos_json = json_array(), *files_json = json_array();
    int64_t noops_removed = 0, total_demos = 0;
    float *act = NULL, *ee = NULL, *gr = NULL, *prop = NULL, *kept_act = NULL;
    uint8_t *img[2] = {NULL, NULL};
    char *instr = NULL;
    demo_name *demos = NULL;
    hid_t f = -1, data = -1, dg = -1;

    /* count demos for the progress bar, and check every file before writing anything */
    for (int i = 0; i < n_files; i++) {
        if (H5Fis_hdf5(files[i]) <= 0) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: not an HDF5 file (or unreadable)", files[i]);
            goto out;
        }
        hid_t ff = H5Fopen(files[i], H5F_ACC_RDONLY, H5P_DEFAULT);
        if (ff < 0) {
            st = bv_error_set(BV_ERR_IO, "%s: cannot open HDF5 file", files[i]);
            goto out;
        }
        hid_t dd = H5Lexists(ff, "data", H5P_DEFAULT) > 0 ? H5Gopen2(ff, "data", H5P_DEFAULT) : -1;
        if (dd < 0) {
            H5Fclose(ff);
            st = bv_error_set(BV_ERR_FORMAT, "%s: no group /data (not a LIBERO demo file)", files[i]);
            goto out;
        }
        int n = 0, cap = 0;
        demo_name *arr = NULL;
        void *op[3] = {&arr, &n, &cap};
        hsize_t idx = 0;
        H5Literate(dd, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_demo, op);
        if (n > 0 && i == 0) { /* the camera sizes, from the first demo (every demo must match) */
            qsort(arr, (size_t)n, sizeof *arr, cmp_demo);
            for (int c = 0; c < 2 && !st; c++) {
                char key[160];
                snprintf(key, sizeof key, "%s/%s", arr[0].name, cams[c].key);
                hid_t ds = H5Lexists(dd, arr[0].name, H5P_DEFAULT) > 0 && H5Lexists(dd, key, H5P_DEFAULT) > 0
                               ? H5Dopen2(dd, key, H5P_DEFAULT)
                               : -1;
                hid_t sp = ds >= 0 ? H5Dget_space(ds) : -1;
                hsize_t hd[4] = {0};
                if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 4 || H5Sget_simple_extent_dims(sp, hd, NULL) < 0 ||
                    hd[3] != 3 || hd[1] < 1 || hd[2] < 1 || hd[1] * hd[2] > (hsize_t)BV_IMAGE_MAX_PIXELS)
                    st = bv_error_set(BV_ERR_SHAPE, "%s: episode %s: key '%s' is missing or not (T, H, W, 3) images",
                                      files[i], arr[0].name, cams[c].key);
                cams[c].height = (int)hd[1];
                cams[c].width = (int)hd[2];
                if (sp >= 0) H5Sclose(sp);
                if (ds >= 0) H5Dclose(ds);
            }
        }
        free(arr);
        H5Gclose(dd);
        H5Fclose(ff);
        if (st) goto out;
        if (n == 0) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: /data has no demo_N groups", files[i]);
            goto out;
        }
        total_demos += n;
    }

    if ((st = sink_open(&k, o, o->dataset_name ? o->dataset_name : "libero", storage, A, P, 2, cams))) goto out;
    sink_ok = true;
    k.action_mask = s.n_action_mask ? s.action_mask : NULL;
    k.proprio_mask = s.n_proprio_mask ? s.proprio_mask : NULL;
    bv_progress pr;
    bv_progress_init(&pr, "convert", o->max_episodes > 0 ? BV_MIN(o->max_episodes, total_demos) : total_demos,
                     "episodes");
    int64_t done = 0;
    const int hw[2][2] = {{cams[0].height, cams[0].width}, {cams[1].height, cams[1].width}};
    for (int i = 0; i < n_files && !(o->max_episodes > 0 && done >= o->max_episodes); i++) {
        const char *file = files[i];
        json_array_append_new(files_json, json_string(file));
        f = H5Fopen(file, H5F_ACC_RDONLY, H5P_DEFAULT);
        data = f >= 0 ? H5Gopen2(f, "data", H5P_DEFAULT) : -1;
        if (data < 0) {
            st = bv_error_set(BV_ERR_IO, "%s: cannot open /data", file);
            goto out;
        }
        free(instr);
        instr = NULL;
        if ((st = libero_instruction(data, file, &instr))) goto out;
        int n = 0, cap = 0;
        free(demos);
        demos = NULL;
        void *op[3] = {&demos, &n, &cap};
        hsize_t idx = 0;
        H5Literate(data, H5_INDEX_NAME, H5_ITER_NATIVE, &idx, collect_demo, op);
        qsort(demos, (size_t)n, sizeof *demos, cmp_demo); /* demo_2 before demo_10 */
        for (int d = 0; d < n && !(o->max_episodes > 0 && done >= o->max_episodes); d++) {
            char where[1400];
            snprintf(where, sizeof where, "%s: episode %s", file, demos[d].name);
            dg = H5Gopen2(data, demos[d].name, H5P_DEFAULT);
            if (dg < 0) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: not a group", where);
                goto out;
            }
            int64_t dims[4], T;
            const int64_t any2[2] = {-1, A};
            free(act);
            if ((st = h5_read(dg, "actions", H5T_NATIVE_FLOAT, sizeof(float), 2, any2, dims, (void **)&act, where)))
                goto out;
            T = dims[0];
            const int64_t w_ee[2] = {T, 6}, w_gr[2] = {T, 2};
            free(ee);
            free(gr);
            ee = gr = NULL;
            if ((st = h5_read(dg, "obs/ee_states", H5T_NATIVE_FLOAT, sizeof(float), 2, w_ee, dims, (void **)&ee,
                              where)) ||
                (st = h5_read(dg, "obs/gripper_states", H5T_NATIVE_FLOAT, sizeof(float), 2, w_gr, dims, (void **)&gr,
                              where)))
                goto out;
            for (int c = 0; c < 2; c++) {
                const int64_t w_im[4] = {T, hw[c][0], hw[c][1], 3};
                free(img[c]);
                img[c] = NULL;
                if ((st = h5_read(dg, cams[c].key, H5T_NATIVE_UINT8, 1, 4, w_im, dims, (void **)&img[c], where)))
                    goto out;
            }
            H5Gclose(dg);
            dg = -1;
            if ((st = check_finite(act, T, A, where, "actions")) || (st = check_finite(ee, T, 6, where, "obs/ee_states")) ||
                (st = check_finite(gr, T, 2, where, "obs/gripper_states")))
                goto out;
            /* steps kept (OFT's no-op rule on the raw actions), proprio = ee_states ++ gripper_states */
            kept_act = bv_xrealloc(kept_act, (size_t)(T ? T : 1) * A * sizeof *kept_act);
            prop = bv_xrealloc(prop, (size_t)(T ? T : 1) * P * sizeof *prop);
            int64_t *keep = bv_xmalloc((size_t)(T ? T : 1) * sizeof *keep);
            int64_t K = 0;
            const float *prev = NULL;
            for (int64_t t = 0; t < T; t++) {
                if (o->filter_noops && bv_libero_is_noop(act + t * A, prev)) continue;
                prev = act + t * A;
                keep[K++] = t;
            }
            noops_removed += T - K;
            for (int64_t j = 0; j < K; j++) {
                memcpy(kept_act + j * A, act + keep[j] * A, A * sizeof(float));
                memcpy(prop + j * P, ee + keep[j] * 6, 6 * sizeof(float));
                memcpy(prop + j * P + 6, gr + keep[j] * 2, 2 * sizeof(float));
            }
            if (K == 0) {
                fprintf(stderr, "bitvla convert: warning: %s: no steps%s, skipped\n", where,
                        o->filter_noops ? " after removing no-ops" : "");
                free(keep);
                continue;
            }
            gripper_transform(&s, kept_act, K, A);
            bv_shard_episode ep = {.n_steps = K, .action = kept_act, .proprio = prop, .instruction = instr,
                                   .episode_index = k.n_eps};
            for (int c = 0; c < 2; c++) {
                cam_buf_reset(&cb[c]);
                size_t fsz = (size_t)hw[c][0] * hw[c][1] * 3;
                for (int64_t j = 0; j < K; j++)
                    if ((st = take_frame(&cb[c], &cams[c], storage, quality, j, K, NULL, img[c] + keep[j] * fsz, true,
                                         where, cams[c].key))) {
                        free(keep);
                        goto out;
                    }
                ep.jpeg[c] = cb[c].frames;
                ep.rgb[c] = cb[c].rgb;
            }
            free(keep);
            if ((st = sink_add(&k, &ep))) goto out;
            json_array_append_new(demos_json, json_pack("{s:s, s:s, s:I, s:I}", "file", file, "demo", demos[d].name,
                                                        "steps", (json_int_t)K, "source_steps", (json_int_t)T));
            done++;
            bv_progress_update(&pr, done);
        }
        H5Gclose(data);
        H5Fclose(f);
        data = f = -1;
    }
    bv_progress_finish(&pr);
    {
        json_t *src = json_pack("{s:s, s:o, s:b, s:I, s:o}", "kind", "libero-hdf5", "files", files_json, "filter_noops",
                                o->filter_noops, "noops_removed", (json_int_t)noops_removed, "demos", demos_json);
        files_json = demos_json = NULL;
        json_t *sch = schema_json(&s);
        json_object_set_new(sch, "keys", json_pack("{s:s, s:s, s:s, s:s, s:s}", "primary_image", "obs/agentview_rgb (rotated 180)",
                                                   "wrist_image", "obs/eye_in_hand_rgb (rotated 180)", "proprio",
                                                   "obs/ee_states ++ obs/gripper_states", "action", "actions",
                                                   "instruction", "/data attribute problem_info.language_instruction"));
        st = sink_finish(&k, src, sch, cams);
        sink_ok = false;
    }
out:
    if (dg >= 0) H5Gclose(dg);
    if (data >= 0) H5Gclose(data);
    if (f >= 0) H5Fclose(f);
    if (sink_ok) sink_abort(&k);
    for (int c = 0; c < 2; c++) {
        cam_buf_free(&cb[c]);
        free(img[c]);
    }
    json_decref(files_json);
    json_decref(demos_json);
    free(act);
    free(ee);
    free(gr);
    free(prop);
    free(kept_act);
    free(instr);
    free(demos);
    bv_schema_free(&s);
    return st;
}
