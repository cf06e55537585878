#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

uint64_t bv_rng_u64(bv_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double bv_rng_uniform(bv_rng *r) { return (double)(bv_rng_u64(r) >> 11) / 9007199254740992.0; }

double bv_rng_normal(bv_rng *r) {
    double u1 = bv_rng_uniform(r), u2 = bv_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void bv_rng_fill_f32(bv_rng *r, float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * bv_rng_uniform(r));
}

void bv_rng_fill_f64(bv_rng *r, double *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * bv_rng_uniform(r);
}

void bv_rng_fill_normal_f32(bv_rng *r, float *x, int64_t n, double std) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(std * bv_rng_normal(r));
}

typedef double (*getter)(const void *, int64_t);
static double get_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
static double get_f64(const void *p, int64_t i) { return ((const double *)p)[i]; }

static void check_close(const char *what, const void *got, getter gg, const void *want, getter gw, int64_t n,
                        double atol, double rtol) {
    int64_t first = -1, worst = -1;
    double worst_ratio = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = gg(got, i), w = gw(want, i);
        double tol = atol + rtol * fabs(w);
        double ratio = fabs(g - w) / tol;
        if (!(ratio <= 1.0)) {
            if (first < 0) first = i;
            if (worst < 0 || !(ratio <= worst_ratio)) {
                worst = i;
                worst_ratio = ratio;
            }
        }
    }
    if (first >= 0) {
        double g = gg(got, first), w = gw(want, first);
        double gw2 = gg(got, worst), ww2 = gw(want, worst);
        print_error("%s: first mismatch at index %lld: got %.9g want %.9g (tol %.3g = %.1g + %.1g*|want|); "
                    "worst at index %lld: got %.9g want %.9g (%.3g x tol); %lld elements\n",
                    what, (long long)first, g, w, atol + rtol * fabs(w), atol, rtol, (long long)worst, gw2, ww2,
                    worst_ratio, (long long)n);
        fail_msg("%s: values differ", what);
    }
}

void bv_check_close_f32(const char *what, const float *got, const float *want, int64_t n, double atol, double rtol) {
    check_close(what, got, get_f32, want, get_f32, n, atol, rtol);
}

void bv_check_close_f32_f64(const char *what, const float *got, const double *want, int64_t n, double atol,
                            double rtol) {
    check_close(what, got, get_f32, want, get_f64, n, atol, rtol);
}

void bv_check_close_f64(const char *what, const double *got, const double *want, int64_t n, double atol,
                        double rtol) {
    check_close(what, got, get_f64, want, get_f64, n, atol, rtol);
}

void bv_check_gradients(const char *what, bv_gradcheck_fn fn, void *user, int n, const bv_tensor *inputs,
                        const bool *check, const bv_gradcheck_opts *opts) {
    bv_gradcheck_result r = bv_gradcheck(fn, user, n, inputs, check, opts);
    char buf[512];
    bv_gradcheck_describe(&r, buf, sizeof buf);
    if (!r.ok || r.n_checked == 0) {
        print_error("gradcheck %s: %s\n", what, r.n_checked ? buf : "no element was checked");
        fail_msg("gradcheck %s failed", what);
    }
}

bv_tensor bv_test_rand_f64(bv_rng *r, int ndim, const int64_t *shape, double lo, double hi) {
    bv_tensor t = bv_tensor_make(NULL, BV_DTYPE_F64, ndim, shape);
    t.data = bv_xmalloc(bv_tensor_nbytes(&t) + 8);
    bv_rng_fill_f64(r, t.data, bv_tensor_numel(&t), lo, hi);
    return t;
}

const char *bv_fixture_path(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", BV_TEST_FIXTURES, name);
    return buf;
}
