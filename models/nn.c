/* nn.c - the building blocks of nn_impl.h. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "models/nn_impl.h"

int bv_nn_param(bv_params *p, const char *prefix, const char *name, int ndim, const int64_t *shape) {
    char full[BV_NAME_MAX];
    int n = snprintf(full, sizeof full, "%s%s", prefix, name);
    if (n < 0 || (size_t)n >= sizeof full) {
        bv_error_set(BV_ERR_ARG, "parameter name '%s%s' longer than %d characters", prefix, name, BV_NAME_MAX - 1);
        return -1;
    }
    return bv_params_add(p, full, ndim, shape, true);
}

static int param2(bv_params *p, const char *prefix, const char *name, const char *suffix, int ndim, int64_t d0,
                  int64_t d1) {
    char n[BV_NAME_MAX];
    snprintf(n, sizeof n, "%s%s", name, suffix);
    int64_t shape[2] = {d0, d1};
    return bv_nn_param(p, prefix, n, ndim, shape);
}

bv_status bv_nn_linear_init(bv_nn_linear *l, bv_params *p, const char *prefix, const char *name, int64_t in,
                            int64_t out, bool bias, const bv_bitlinear_cfg *q) {
    memset(l, 0, sizeof *l);
    l->b = -1;
    l->quant = q && (q->weight_bits != 32 || q->act_bits != 32);
    if (l->quant) l->cfg = *q;
    if ((l->w = param2(p, prefix, name, ".weight", 2, out, in)) < 0) return BV_ERR_ARG;
    if (bias && (l->b = param2(p, prefix, name, ".bias", 1, out, 0)) < 0) return BV_ERR_ARG;
    return BV_OK;
}

void bv_nn_linear_free(bv_nn_linear *l) { bv_qweight_free(&l->cache); }

bv_var *bv_nn_linear_fwd(bv_graph *g, const bv_params *p, bv_nn_linear *l, bv_var *x) {
    bv_var *w = bv_var_param(g, p, l->w);
    bv_var *b = l->b >= 0 ? bv_var_param(g, p, l->b) : NULL;
    if (!l->quant) return bv_op_linear(g, x, w, b);
    return bv_op_bitlinear(g, x, w, b, &l->cfg, &l->cache, p->version);
}

bv_status bv_nn_layernorm_init(bv_nn_norm *n, bv_params *p, const char *prefix, const char *name, int64_t dim,
                               double eps) {
    n->eps = eps;
    if ((n->w = param2(p, prefix, name, ".weight", 1, dim, 0)) < 0) return BV_ERR_ARG;
    if ((n->b = param2(p, prefix, name, ".bias", 1, dim, 0)) < 0) return BV_ERR_ARG;
    return BV_OK;
}

bv_status bv_nn_rmsnorm_init(bv_nn_norm *n, bv_params *p, const char *prefix, const char *name, int64_t dim,
                             double eps) {
    n->eps = eps;
    n->b = -1;
    if ((n->w = param2(p, prefix, name, ".weight", 1, dim, 0)) < 0) return BV_ERR_ARG;
    return BV_OK;
}

bv_var *bv_nn_norm_fwd(bv_graph *g, const bv_params *p, const bv_nn_norm *n, bv_var *x) {
    bv_var *w = bv_var_param(g, p, n->w);
    if (n->b < 0) return bv_op_rmsnorm(g, x, w, n->eps);
    return bv_op_layernorm(g, x, w, bv_var_param(g, p, n->b), n->eps);
}

bv_var *bv_nn_act(bv_graph *g, bv_act a, bv_var *x) {
    switch (a) {
    case BV_ACT_GELU_TANH: return bv_op_gelu_tanh(g, x);
    case BV_ACT_GELU_ERF: return bv_op_gelu_erf(g, x);
    case BV_ACT_RELU: return bv_op_relu(g, x);
    case BV_ACT_RELU2: return bv_op_relu2(g, x);
    case BV_ACT_SILU: return bv_op_silu(g, x);
    }
    BV_ASSERT(0, "unknown activation %d", (int)a);
    return NULL;
}

/* ---- initialisation ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void bv_nn_init_normal(bv_params *p, int i, double std, uint64_t seed) {
    bv_tensor t = bv_params_value(p, i);
    float *v = bv_tensor_ptr(&t);
    int64_t n = bv_tensor_numel(&t);
    const uint64_t base = seed ^ name_hash(p->items[i].name);
    /* blocks of 4096 values with their own stream: parallel and independent of the thread count */
    const int64_t blk = 4096;
#pragma omp parallel for schedule(static)
    for (int64_t b0 = 0; b0 < n; b0 += blk) {
        uint64_t s = base + (uint64_t)(b0 / blk) * 0x632BE59BD9B4E019ull;
        int64_t e = BV_MIN(n, b0 + blk);
        for (int64_t j = b0; j < e; j += 2) { /* Box-Muller in float: one 64-bit draw gives two 24-bit uniforms */
            uint64_t bits = splitmix64(&s);
            float u1 = (float)((bits >> 40) + 1) * 0x1.0p-24f, u2 = (float)((bits >> 16) & 0xFFFFFF) * 0x1.0p-24f;
            float r = sqrtf(-2.0f * logf(u1)) * (float)std, a = 6.2831853f * u2;
            v[j] = r * cosf(a);
            if (j + 1 < e) v[j + 1] = r * sinf(a);
        }
    }
}

void bv_nn_init_const(bv_params *p, int i, float c) {
    bv_tensor t = bv_params_value(p, i);
    float *v = bv_tensor_ptr(&t);
    int64_t n = bv_tensor_numel(&t);
    for (int64_t j = 0; j < n; j++) v[j] = c;
}

void bv_nn_linear_init_weights(bv_params *p, const bv_nn_linear *l, double std, uint64_t seed) {
    bv_nn_init_normal(p, l->w, std, seed);
    if (l->b >= 0) bv_nn_init_const(p, l->b, 0.0f);
}

void bv_nn_norm_init_weights(bv_params *p, const bv_nn_norm *n) {
    bv_nn_init_const(p, n->w, 1.0f);
    if (n->b >= 0) bv_nn_init_const(p, n->b, 0.0f);
}
