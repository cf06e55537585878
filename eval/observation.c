/* observation.c - eval/observation.h. */
#include "eval/observation.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static bv_status read_image(const char *json_path, const char *field, const char *name, bv_image *img) {
    /* relative to the JSON's directory */
    char path[4096];
    const char *slash = strrchr(json_path, '/');
    if (name[0] == '/' || !slash)
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%.*s/%s", (int)(slash - json_path), json_path, name);
    char *buf;
    size_t n;
    bv_status st = bv_read_file(path, "image", (size_t)1 << 30, &buf, &n);
    if (!st) st = bv_image_decode((const uint8_t *)buf, n, img, path);
    free(buf);
    if (st) bv_error_prefix(st, "%s: '%s'", json_path, field);
    return st;
}

bv_status bv_obs_file_load(bv_obs_file *o, const char *path) {
    memset(o, 0, sizeof *o);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return bv_error_set(BV_ERR_FORMAT, "%s: line %d: %s", path, je.line, je.text);
    bv_status st = BV_OK;
    if (!json_is_object(root)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: expected a JSON object", path);
        goto out;
    }
    json_t *ins = json_object_get(root, "task_description");
    if (!ins) ins = json_object_get(root, "instruction");
    if (!json_is_string(ins)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'task_description' (or 'instruction') is missing or not a string", path);
        goto out;
    }
    o->instruction = bv_xstrdup(json_string_value(ins));
    json_t *state = json_object_get(root, "state");
    if (!json_is_array(state) || json_array_size(state) == 0 || json_array_size(state) > 64) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'state' is missing or not a list of 1 to 64 numbers", path);
        goto out;
    }
    o->state_dim = (int)json_array_size(state);
    o->state = bv_xmalloc((size_t)o->state_dim * sizeof(float));
    for (int i = 0; i < o->state_dim; i++) {
        json_t *v = json_array_get(state, (size_t)i);
        if (!json_is_number(v)) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: 'state'[%d] is not a number", path, i);
            goto out;
        }
        o->state[i] = (float)json_number_value(v);
    }
    json_t *full = json_object_get(root, "full_image"), *wrist = json_object_get(root, "wrist_image");
    if (!json_is_string(full)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'full_image' is missing or not a file name", path);
        goto out;
    }
    if ((st = read_image(path, "full_image", json_string_value(full), &o->full))) goto out;
    if (wrist && !json_is_null(wrist)) {
        if (!json_is_string(wrist)) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: 'wrist_image' is not a file name", path);
            goto out;
        }
        if ((st = read_image(path, "wrist_image", json_string_value(wrist), &o->wrist))) goto out;
    }
    o->obs = (bv_policy_obs){.full_image = o->full.rgb, .full_w = o->full.w, .full_h = o->full.h,
                             .wrist_image = o->wrist.rgb, .wrist_w = o->wrist.w, .wrist_h = o->wrist.h,
                             .state = o->state, .state_dim = o->state_dim, .instruction = o->instruction};
out:
    json_decref(root);
    if (st) bv_obs_file_free(o);
    return st;
}

void bv_obs_file_free(bv_obs_file *o) {
    bv_image_free(&o->full);
    bv_image_free(&o->wrist);
    free(o->state);
    free(o->instruction);
    memset(o, 0, sizeof *o);
}
