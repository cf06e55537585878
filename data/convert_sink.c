/* convert_sink.c - the output side of `bitvla convert` (convert_impl.h): episodes -> a shard
 * directory (shards, dataset_statistics.json, manifest.json) written beside the output directory
 * and renamed into place when complete; and the per-episode helpers both sources share. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "data/convert_impl.h"
#include "data/stats.h"

/* The names a shard directory holds, and the temporaries earlier versions left in it: an output
 * directory holding only these may be replaced (--force). */
static bool is_output_name(const char *n) {
    return !strcmp(n, "manifest.json") || !strcmp(n, "dataset_statistics.json") ||
           (!strncmp(n, "shard-", 6) && strstr(n, ".h5")) || !strncmp(n, "manifest.json.tmp.", 18) ||
           !strncmp(n, "dataset_statistics.json.tmp.", 28);
}

bv_status bv_cv_sink_open(bv_cv_sink *k, const bv_convert_opts *o, const char *dataset_name, bv_image_storage storage,
                          int action_dim, int proprio_dim, int n_cams, const bv_shard_camera *cams) {
    memset(k, 0, sizeof *k);
    const bv_atomic_dir_opts dopt = {.force = o->force, .owned = is_output_name, .complete_name = "manifest.json",
                                     .what = "a converted dataset"};
    bv_status st = bv_atomic_dir_open(&k->dir, o->out_dir, &dopt);
    if (st) return st;
    k->out_dir = o->out_dir;
    k->dataset_name = bv_xstrdup(dataset_name);
    k->action_dim = action_dim;
    k->proprio_dim = proprio_dim;
    bv_shard_opts so = {.dir = k->dir.tmp, .dataset_name = k->dataset_name, .storage = storage,
                        .episodes_per_shard = o->episodes_per_shard > 0 ? o->episodes_per_shard : 64,
                        .action_dim = action_dim, .proprio_dim = proprio_dim, .n_cams = n_cams};
    for (int c = 0; c < n_cams; c++) so.cams[c] = cams[c];
    k->so = so;
    if ((st = bv_shards_open(&k->w, &so))) bv_cv_sink_abort(k);
    return st;
}

void bv_cv_sink_abort(bv_cv_sink *k) {
    bv_shards_abort(k->w);
    free(k->acts);
    free(k->props);
    free(k->lengths);
    free(k->dataset_name);
    bv_atomic_dir_abort(&k->dir);
    memset(k, 0, sizeof *k);
}

bv_status bv_cv_sink_add(bv_cv_sink *k, const bv_shard_episode *ep) {
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

/* Shards renamed, statistics, the manifest, then the directory into place. */
bv_status bv_cv_sink_finish(bv_cv_sink *k, json_t *source, json_t *schema, const bv_shard_camera *cams) {
    bv_status st;
    if (k->n_eps == 0 || k->rows == 0) {
        json_decref(source);
        json_decref(schema);
        st = bv_error_set(BV_ERR_FORMAT, "empty dataset: no episode with at least one step (nothing written to %s)",
                          k->out_dir);
        bv_cv_sink_abort(k);
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
    size_t pl = strlen(k->dir.tmp) + 32;
    stats_path = bv_xmalloc(pl);
    man_path = bv_xmalloc(pl);
    snprintf(stats_path, pl, "%s/dataset_statistics.json", k->dir.tmp);
    snprintf(man_path, pl, "%s/manifest.json", k->dir.tmp);
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
    if (!st) st = bv_atomic_dir_commit(&k->dir); /* releases k->dir, on failure removing it */
out:
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
    bv_cv_sink_abort(k); /* frees the buffers; after a failure, removes everything written */
    return st;
}

/* ---- shared episode processing ---- */

void bv_cv_gripper_transform(const bv_schema *s, float *act, int64_t T, int A) {
    if (s->gripper != BV_GRIPPER_INVERT_CLIP01) return;
    int g = s->gripper_dim < 0 ? A - 1 : s->gripper_dim;
    for (int64_t t = 0; t < T; t++) {
        float a = act[t * A + g];
        a = a < 0.0f ? 0.0f : a > 1.0f ? 1.0f : a; /* clip(a, 0, 1); NaN is rejected later */
        act[t * A + g] = 1.0f - a;
    }
}

bv_status bv_cv_check_finite(const float *x, int64_t T, int D, const char *label, const char *key) {
    for (int64_t t = 0; t < T; t++)
        for (int d = 0; d < D; d++)
            if (!isfinite(x[t * D + d]))
                return bv_error_set(BV_ERR_FORMAT, "%s: key '" NAMEF "' step %lld dim %d is %g (expected a finite value)",
                                    label, key, (long long)t, d, (double)x[t * D + d]);
    return BV_OK;
}


void bv_cv_cam_buf_reset(bv_cv_cam_buf *c) {
    for (int64_t i = 0; i < c->n_owned; i++) bv_image_bytes_free(&c->owned[i]);
    c->n_owned = 0;
}

void bv_cv_cam_buf_free(bv_cv_cam_buf *c) {
    bv_cv_cam_buf_reset(c);
    free(c->owned);
    free(c->frames);
    free(c->rgb);
    bv_image_free(&c->img);
    memset(c, 0, sizeof *c);
}

bv_status bv_cv_take_frame(bv_cv_cam_buf *c, bv_shard_camera *cam, bv_image_storage storage, int quality, int64_t t,
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
bool bv_cv_image_size_ok(int64_t h, int64_t w) {
    return h >= 1 && w >= 1 && h <= BV_CV_MAX_SIDE && w <= BV_CV_MAX_SIDE && h * w <= BV_IMAGE_MAX_PIXELS;
}
