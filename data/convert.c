/* convert.c - schemas, the dataset name check and `convert rlds` (convert.h); the sink and the
 * frame helpers are in convert_sink.c, `convert libero-hdf5` in convert_libero.c. */
#include "data/convert.h"

#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "data/convert_impl.h"
#include "data/example.h"
#include "data/image.h"
#include "data/rlds.h"
#include "data/tfrecord.h"
#include "src/progress.h"

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

json_t *bv_cv_schema_json(const bv_schema *s) {
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
    json_t *j = bv_cv_schema_json(s);
    char *t = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    return t;
}

/* ---- the dataset name ---- */

bv_status bv_convert_name_check(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 100)
        return bv_error_set(BV_ERR_ARG, "dataset name '%.120s' must be 1..100 characters (letters, digits, _ - .)", name);
    if (name[0] == '.' || name[0] == '-')
        return bv_error_set(BV_ERR_ARG, "dataset name '%s' must not start with '%c' (expected letters, digits, _ - .)",
                            name, name[0]);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              *p == '-' || *p == '.'))
            return bv_error_set(BV_ERR_ARG, "dataset name '%s' has '%c' (expected letters, digits, _ - .)", name, *p);
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
        if (f->shape[0] < 0 || f->shape[1] < 0)
            return bv_error_set(BV_ERR_UNSUPPORTED, "schema %s: role %s -> key '" NAMEF "' has no fixed image size", s->name,
                                role, key);
        if (!bv_cv_image_size_ok(f->shape[0], f->shape[1]))
            return bv_error_set(BV_ERR_FORMAT,
                                "%s/features.json: feature '" NAMEF "' (role %s): image size %lld x %lld is out of range "
                                "(expected height and width 1..%d, at most %lld pixels)",
                                ds->dir, key, role, (long long)f->shape[0], (long long)f->shape[1], BV_CV_MAX_SIDE,
                                (long long)BV_IMAGE_MAX_PIXELS);
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
    bv_status st;
    if (o->dataset_name && (st = bv_convert_name_check(o->dataset_name))) return st;
    st = bv_rlds_open(&ds, src_dir);
    if (st) return st;
    const char *split = o->split ? o->split : s->split;
    const bv_rlds_split *sp = bv_rlds_split_find(&ds, split);
    bv_cv_sink k;
    memset(&k, 0, sizeof k);
    bv_tfr_reader r;
    memset(&r, 0, sizeof r);
    bv_tfr_buf buf = {0};
    bv_example ex = {0};
    bv_cv_cam_buf cb[2];
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
    if ((st = bv_cv_sink_open(&k, o, o->dataset_name ? o->dataset_name : ds.name, storage, A, P, n_cams, cams))) goto out;
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
            if ((st = bv_cv_check_finite(act, T, A, label, s->action)) || (st = bv_cv_check_finite(prop, T, P, label, s->proprio)))
                goto out;
            bv_cv_gripper_transform(s, act, T, A);
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
                bv_cv_cam_buf_reset(&cb[c]);
                for (int64_t t = 0; t < T; t++) {
                    bv_bytes b = bv_rlds_value_bytes(&v[3 + c], t);
                    if ((st = bv_cv_take_frame(&cb[c], &cams[c], storage, quality, t, T, &b, NULL, false, label, keys[3 + c])))
                        goto out;
                }
                ep.jpeg[c] = cb[c].frames;
                ep.rgb[c] = cb[c].rgb;
            }
            if ((st = bv_cv_sink_add(&k, &ep))) goto out;
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
        st = bv_cv_sink_finish(&k, src, bv_cv_schema_json(s), cams);
        sink_open_ok = false;
    }
out:
    if (sink_open_ok) bv_cv_sink_abort(&k);
    bv_tfr_close(&r);
    bv_tfr_buf_free(&buf);
    bv_example_free(&ex);
    for (int c = 0; c < 2; c++) bv_cv_cam_buf_free(&cb[c]);
    free(act);
    free(prop);
    free(instr);
    bv_rlds_close(&ds);
    return st;
}
