#include "autograd/gradcheck.h"

#include <math.h>
#include <string.h>

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Run fn once without recording and return dot(out, proj). */
static double eval_proj(bv_graph *g, bv_gradcheck_fn fn, void *user, int n, bv_tensor *x, double **proj,
                        int64_t *proj_n, uint64_t seed) {
    bv_graph_reset(g);
    bv_graph_no_grad_begin(g);
    bv_var **in = bv_graph_alloc(g, (size_t)(n ? n : 1) * sizeof *in);
    for (int i = 0; i < n; i++) in[i] = bv_var_wrap(g, &x[i], false);
    bv_var *out = fn(g, in, user);
    bv_graph_no_grad_end(g);
    BV_ASSERT(out->val.dtype == BV_DTYPE_F64, "gradcheck: function returned %s, expected F64 (use the dtype of the inputs)",
              bv_dtype_name(out->val.dtype));
    int64_t m = bv_var_numel(out);
    if (!*proj) {
        *proj = bv_xmalloc((size_t)(m ? m : 1) * sizeof(double));
        *proj_n = m;
        uint64_t s = seed;
        for (int64_t j = 0; j < m; j++) (*proj)[j] = ((double)(splitmix(&s) >> 11) / 9007199254740992.0) * 2.0 - 1.0;
    }
    BV_ASSERT(*proj_n == m, "gradcheck: output size changed between evaluations (%lld vs %lld)",
              (long long)*proj_n, (long long)m);
    const double *o = bv_var_f64(out);
    double acc = 0;
    for (int64_t j = 0; j < m; j++) acc += o[j] * (*proj)[j];
    return acc;
}

bv_gradcheck_result bv_gradcheck(bv_gradcheck_fn fn, void *user, int n, const bv_tensor *inputs,
                                 const bool *check, const bv_gradcheck_opts *opts) {
    bv_gradcheck_opts o = {1e-6, 1e-7, 1e-5, 1234};
    if (opts) {
        if (opts->eps > 0) o.eps = opts->eps;
        if (opts->atol > 0) o.atol = opts->atol;
        if (opts->rtol > 0) o.rtol = opts->rtol;
        if (opts->seed) o.seed = opts->seed;
    }
    bv_gradcheck_result r;
    memset(&r, 0, sizeof r);
    r.ok = true;
    r.worst_input = -1;

    /* private F64 copies of the inputs */
    bv_tensor *x = bv_xcalloc((size_t)(n ? n : 1), sizeof *x);
    for (int i = 0; i < n; i++) {
        x[i] = bv_tensor_make(NULL, BV_DTYPE_F64, inputs[i].ndim, inputs[i].shape);
        x[i].data = bv_xmalloc(bv_tensor_nbytes(&x[i]) + 8);
        bv_tensor_copy_into(&x[i], &inputs[i]);
    }
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    double *proj = NULL;
    int64_t proj_n = 0;
    (void)eval_proj(&g, fn, user, n, x, &proj, &proj_n, o.seed);

    /* analytic gradients */
    bv_graph_reset(&g);
    bv_var **in = bv_graph_alloc(&g, (size_t)(n ? n : 1) * sizeof *in);
    for (int i = 0; i < n; i++) in[i] = bv_var_wrap(&g, &x[i], check[i]);
    bv_var *out = fn(&g, in, user);
    double **ga = bv_xcalloc((size_t)(n ? n : 1), sizeof *ga);
    if (out->requires_grad) {
        bv_graph_backward_seed(&g, out, proj);
        for (int i = 0; i < n; i++) {
            if (!check[i]) continue;
            int64_t m = bv_tensor_numel(&x[i]);
            ga[i] = bv_xcalloc((size_t)(m ? m : 1), sizeof(double));
            if (in[i]->grad) memcpy(ga[i], in[i]->grad, (size_t)m * sizeof(double));
        }
    } else {
        for (int i = 0; i < n; i++)
            if (check[i]) ga[i] = bv_xcalloc((size_t)(bv_tensor_numel(&x[i]) + 1), sizeof(double));
    }

    /* numeric gradients */
    for (int i = 0; i < n; i++) {
        if (!check[i]) continue;
        double *d = x[i].data;
        int64_t m = bv_tensor_numel(&x[i]);
        for (int64_t j = 0; j < m; j++) {
            double keep = d[j];
            double h = o.eps * (fabs(keep) > 1.0 ? fabs(keep) : 1.0);
            d[j] = keep + h;
            double fp = eval_proj(&g, fn, user, n, x, &proj, &proj_n, o.seed);
            d[j] = keep - h;
            double fm = eval_proj(&g, fn, user, n, x, &proj, &proj_n, o.seed);
            d[j] = keep;
            double num = (fp - fm) / (2 * h);
            double ana = ga[i][j];
            double tol = o.atol + o.rtol * fabs(num);
            double ratio = fabs(ana - num) / tol;
            if (!(ratio <= 1.0)) r.ok = false; /* also catches NaN */
            if (r.worst_input < 0 || !(ratio <= r.worst_ratio)) {
                r.worst_ratio = ratio;
                r.worst_input = i;
                r.worst_index = j;
                r.analytic = ana;
                r.numeric = num;
                r.tol = tol;
            }
            r.n_checked++;
        }
    }
    for (int i = 0; i < n; i++) {
        free(x[i].data);
        free(ga[i]);
    }
    free(x);
    free(ga);
    free(proj);
    bv_graph_free(&g);
    return r;
}

const char *bv_gradcheck_describe(const bv_gradcheck_result *r, char *buf, size_t n) {
    snprintf(buf, n,
             "%s: %lld elements checked; worst: input %d element %lld: analytic %.10g numeric %.10g "
             "|diff| %.3g tol %.3g (ratio %.3g)",
             r->ok ? "ok" : "FAILED", (long long)r->n_checked, r->worst_input, (long long)r->worst_index,
             r->analytic, r->numeric, fabs(r->analytic - r->numeric), r->tol, r->worst_ratio);
    return buf;
}
