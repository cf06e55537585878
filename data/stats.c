#include "data/stats.h"

#include <jansson.h>
#include <math.h>
#include <string.h>

#include "src/atomic_file.h"

double bv_quantile_linear(const float *v, int64_t n, double q) {
    double h = (double)(n - 1) * q;
    double fi = floor(h);
    int64_t i = (int64_t)fi;
    if (i < 0) i = 0;
    if (i > n - 1) i = n - 1;
    int64_t j = i + 1 < n ? i + 1 : n - 1;
    double g = h - fi;
    float d = v[j] - v[i]; /* numpy: subtract(b, a) on the float32 values */
    if (g >= 0.5) return (double)v[j] - (double)d * (1.0 - g);
    return (double)v[i] + (double)d * g;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

void bv_stats_compute(const float *x, int64_t n, int d, bv_stats *s) {
    BV_ASSERT(n >= 1 && d >= 1, "statistics of %lld rows of %d", (long long)n, d);
    memset(s, 0, sizeof *s);
    s->dim = d;
    double **arr[6] = {&s->mean, &s->std, &s->max, &s->min, &s->q01, &s->q99};
    for (int k = 0; k < 6; k++) *arr[k] = bv_xcalloc((size_t)d, sizeof(double));
    float *col = bv_xmalloc((size_t)n * sizeof *col);
    for (int j = 0; j < d; j++) {
        double sum = 0;
        float mx = x[j], mn = x[j];
        for (int64_t i = 0; i < n; i++) {
            float v = x[i * d + j];
            col[i] = v;
            sum += v;
            if (v > mx) mx = v;
            if (v < mn) mn = v;
        }
        double mean = sum / (double)n, ss = 0;
        for (int64_t i = 0; i < n; i++) ss += ((double)col[i] - mean) * ((double)col[i] - mean);
        s->mean[j] = mean;
        s->std[j] = sqrt(ss / (double)n);
        s->max[j] = mx;
        s->min[j] = mn;
        qsort(col, (size_t)n, sizeof *col, cmp_float);
        s->q01[j] = bv_quantile_linear(col, n, 0.01);
        s->q99[j] = bv_quantile_linear(col, n, 0.99);
    }
    free(col);
}

void bv_stats_free(bv_stats *s) {
    free(s->mean);
    free(s->std);
    free(s->max);
    free(s->min);
    free(s->q01);
    free(s->q99);
    memset(s, 0, sizeof *s);
}

static json_t *darr(const double *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

static json_t *stats_json(const bv_stats *s, const bool *mask) {
    json_t *o = json_object();
    json_object_set_new(o, "mean", darr(s->mean, s->dim));
    json_object_set_new(o, "std", darr(s->std, s->dim));
    json_object_set_new(o, "max", darr(s->max, s->dim));
    json_object_set_new(o, "min", darr(s->min, s->dim));
    json_object_set_new(o, "q01", darr(s->q01, s->dim));
    json_object_set_new(o, "q99", darr(s->q99, s->dim));
    json_t *m = json_array();
    for (int i = 0; i < s->dim; i++) json_array_append_new(m, json_boolean(mask ? mask[i] : true));
    json_object_set_new(o, "mask", m);
    return o;
}

bv_status bv_stats_write(const char *path, const char *dataset_name, const bv_stats *action, const bool *action_mask,
                         const bv_stats *proprio, const bool *proprio_mask, int64_t num_transitions,
                         int64_t num_trajectories) {
    json_t *d = json_object();
    json_object_set_new(d, "action", stats_json(action, action_mask));
    if (proprio) json_object_set_new(d, "proprio", stats_json(proprio, proprio_mask));
    json_object_set_new(d, "num_transitions", json_integer(num_transitions));
    json_object_set_new(d, "num_trajectories", json_integer(num_trajectories));
    json_t *root = json_object();
    json_object_set_new(root, dataset_name, d);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text) return bv_error_set(BV_ERR_NOMEM, "%s: out of memory formatting the statistics", path);
    size_t n = strlen(text);
    text[n] = '\n'; /* json_dumps leaves room for the NUL: replace it, write n + 1 bytes */
    bv_status st = bv_atomic_write_file(path, text, n + 1);
    free(text);
    return st;
}
