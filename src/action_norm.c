/* action_norm.c - OFT's BOUNDS_Q99 action and proprio normalisation. See action_norm.h. */
#include "src/action_norm.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static bv_status read_vec(json_t *obj, const char *path, const char *key, const char *field, int *dim, double *out) {
    json_t *a = json_object_get(obj, field);
    if (!json_is_array(a)) return bv_error_set(BV_ERR_FORMAT, "%s: '%s.%s' missing or not an array", path, key, field);
    size_t n = json_array_size(a);
    if (n == 0 || n > BV_ACTION_NORM_MAX_DIM)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s.%s' has %zu values (expected 1..%d)", path, key, field, n,
                            BV_ACTION_NORM_MAX_DIM);
    if (*dim && (size_t)*dim != n)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s.%s' has %zu values, other fields %d", path, key, field, n, *dim);
    *dim = (int)n;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return bv_error_set(BV_ERR_FORMAT, "%s: '%s.%s[%zu]' is not a finite number", path, key, field, i);
        out[i] = json_number_value(v);
    }
    return BV_OK;
}

bv_status bv_action_norm_read(const char *path, const char *dataset_name, const char *key, bv_action_norm *out) {
    memset(out, 0, sizeof *out);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return bv_error_set(BV_ERR_IO, "%s: cannot open the dataset statistics", path);
        fclose(f);
        return bv_error_set(BV_ERR_FORMAT, "%s: line %d: %s", path, je.line, je.text);
    }
    bv_status st = BV_OK;
    json_t *ds = NULL;
    if (dataset_name) {
        ds = json_object_get(root, dataset_name);
        if (!ds) st = bv_error_set(BV_ERR_FORMAT, "%s: no statistics for dataset '%s'", path, dataset_name);
    } else if (json_is_object(root) && json_object_size(root) == 1) {
        ds = json_object_iter_value(json_object_iter(root));
    } else {
        st = bv_error_set(BV_ERR_FORMAT, "%s: holds %zu datasets; name the one to use", path,
                          json_is_object(root) ? json_object_size(root) : 0);
    }
    json_t *k = ds ? json_object_get(ds, key) : NULL;
    if (!st && !json_is_object(k))
        st = bv_error_set(BV_ERR_FORMAT, "%s: dataset '%s' has no '%s' statistics", path,
                          dataset_name ? dataset_name : "?", key);
    double q01[BV_ACTION_NORM_MAX_DIM], q99[BV_ACTION_NORM_MAX_DIM], mn[BV_ACTION_NORM_MAX_DIM], mx[BV_ACTION_NORM_MAX_DIM];
    int dim = 0;
    if (!st) st = read_vec(k, path, key, "q01", &dim, q01);
    if (!st) st = read_vec(k, path, key, "q99", &dim, q99);
    if (!st) st = read_vec(k, path, key, "min", &dim, mn);
    if (!st) st = read_vec(k, path, key, "max", &dim, mx);
    if (!st) {
        out->dim = dim;
        for (int i = 0; i < dim; i++) {
            out->q01[i] = q01[i], out->q99[i] = q99[i], out->min[i] = mn[i], out->max[i] = mx[i];
            out->mask[i] = true;
        }
        json_t *m = json_object_get(k, "mask");
        if (m && !json_is_null(m)) {
            if (!json_is_array(m) || json_array_size(m) != (size_t)dim)
                st = bv_error_set(BV_ERR_FORMAT, "%s: '%s.mask' must be %d booleans", path, key, dim);
            for (int i = 0; !st && i < dim; i++) {
                json_t *v = json_array_get(m, (size_t)i);
                if (!json_is_boolean(v))
                    st = bv_error_set(BV_ERR_FORMAT, "%s: '%s.mask[%d]' is not a boolean", path, key, i);
                else
                    out->mask[i] = json_is_true(v);
            }
        }
    }
    json_decref(root);
    return st;
}

void bv_action_norm_apply(const bv_action_norm *n, const float *x, int64_t rows, float *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int d = 0; d < n->dim; d++) {
            float v = x[r * n->dim + d];
            if (n->mask[d]) {
                /* TensorFlow's float32 arithmetic: statistics cast to the data's dtype */
                float lo = (float)n->q01[d], hi = (float)n->q99[d];
                v = 2.0f * (v - lo) / (hi - lo + 1e-8f) - 1.0f;
                v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
            }
            if ((float)n->min[d] == (float)n->max[d]) v = 0.0f; /* unused dimension */
            out[r * n->dim + d] = v;
        }
}

void bv_action_norm_invert(const bv_action_norm *n, const float *a, int64_t rows, float *out) {
    for (int64_t r = 0; r < rows; r++)
        for (int d = 0; d < n->dim; d++) {
            double v = a[r * n->dim + d];
            if (n->mask[d]) v = 0.5 * (v + 1.0) * (n->q99[d] - n->q01[d] + 1e-8) + n->q01[d];
            out[r * n->dim + d] = (float)v;
        }
}

bool bv_action_gripper_open(float a) { return 2.0f * a - 1.0f > 0.0f; }
