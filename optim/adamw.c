/* optim/adamw.c - AdamW over the flat gradient layout, gradient norm, clipping (optim/adamw.h).
 *
 * The element update reproduces what torch 1.13's _single_tensor_adamw computes on a CPU with its
 * AVX2 kernels (docs/optim.md, tests/test_optim.c), operation by operation:
 *   param.mul_(1 - lr*wd)                       w = w * (float)(1 - lr wd)
 *   exp_avg.mul_(beta1).add_(grad, alpha=1-b1)  m = fma(g, (float)(1 - b1), m * (float)b1)
 *                                               (ufunc add: vec::fmadd(other, alpha, self))
 *   exp_avg_sq.mul_(beta2).addcmul_(g, g, 1-b2) v = fma((float)(1 - b2) * g, g, v * (float)b2)
 *                                               (self + value*t1*t2, contracted by GCC to an fma)
 *   denom = (exp_avg_sq.sqrt() / bc2_sqrt).add_(eps)   d = sqrt(v) / (float)bc2_sqrt + (float)eps
 *   param.addcdiv_(exp_avg, denom, value=-step_size)   w = w + ((float)-step_size * m) / d
 * with the Python scalars in double (lr / bc1, sqrt(bc2), 1 - lr wd) rounded to float once, as
 * ATen does when it wraps them. The compiler must not contract anything else into an fma (w * decay
 * followed by the addcdiv would be), so contraction is off in this file and the two fmas are
 * explicit.
 */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "optim/adamw.h"

#include <math.h>
#include <string.h>

/* Fixed parts of the flat buffer for the reductions: the part boundaries depend on n alone, never
 * on the thread count, so the sums are the same with any number of threads. */
#define BV_GRAD_PARTS 256
/* Below this many elements the loops run on one thread (a parallel region costs more). */
#define BV_OPTIM_PAR_MIN 32768

void bv_adamw_cfg_default(bv_adamw_cfg *c) {
    static const char *const no_decay[] = {"norm", "bias", "embed", NULL};
    memset(c, 0, sizeof *c);
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->weight_decay = 0.01;
    c->no_decay = no_decay;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

static bool no_decay_name(const bv_adamw_cfg *c, const char *name) {
    if (!c->no_decay) return false;
    for (const char *const *s = c->no_decay; *s; s++)
        if (strstr(name, *s)) return true;
    return false;
}

/* The rule a parameter name belongs to: 1 + the index of the first rule with a matching prefix,
 * 0 (the default group) when none matches. */
static int rule_of(const bv_adamw_cfg *c, const char *name) {
    for (int r = 0; r < c->n_rules; r++)
        for (const char *const *pf = c->rules[r].prefixes; pf && *pf; pf++)
            if (starts_with(name, *pf)) return 1 + r;
    return 0;
}

static bv_status check_cfg(const bv_adamw_cfg *c) {
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return bv_error_set(BV_ERR_ARG, "AdamW: beta1 must be in [0, 1), got %g", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return bv_error_set(BV_ERR_ARG, "AdamW: beta2 must be in [0, 1), got %g", c->beta2);
    if (!(c->eps >= 0 && isfinite(c->eps)))
        return bv_error_set(BV_ERR_ARG, "AdamW: eps must be finite and >= 0, got %g", c->eps);
    if (!(c->weight_decay >= 0 && isfinite(c->weight_decay)))
        return bv_error_set(BV_ERR_ARG, "AdamW: weight_decay must be finite and >= 0, got %g", c->weight_decay);
    if (c->n_rules < 0 || (c->n_rules > 0 && !c->rules))
        return bv_error_set(BV_ERR_ARG, "AdamW: %d group rules given without the rules", c->n_rules);
    for (int r = 0; r < c->n_rules; r++) {
        const bv_adamw_group_rule *g = &c->rules[r];
        const char *name = g->name ? g->name : "(unnamed)";
        if (!g->prefixes || !g->prefixes[0])
            return bv_error_set(BV_ERR_ARG, "AdamW group '%s': no name prefixes", name);
        if (!(g->lr_scale >= 0 && isfinite(g->lr_scale)))
            return bv_error_set(BV_ERR_ARG, "AdamW group '%s': lr_scale must be finite and >= 0, got %g", name,
                                g->lr_scale);
        if (!isfinite(g->weight_decay))
            return bv_error_set(BV_ERR_ARG, "AdamW group '%s': weight_decay must be finite, got %g", name,
                                g->weight_decay);
    }
    return BV_OK;
}

/* "'a', 'b'" for the error message of a rule that matches nothing */
static void prefix_list(const bv_adamw_group_rule *g, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = 0;
    for (const char *const *pf = g->prefixes; *pf && len < cap; pf++) {
        int k = snprintf(buf + len, cap - len, "%s'%s'", pf == g->prefixes ? "" : ", ", *pf);
        if (k < 0) break;
        len += (size_t)k;
    }
}

bv_status bv_adamw_init(bv_adamw *o, const bv_params *p, const bv_adamw_cfg *cfg) {
    BV_ASSERT(p && p->finalized, "bv_adamw_init needs a finalized parameter store");
    bv_range all = {0, p->numel_trainable};
    return bv_adamw_init_shard(o, p, cfg, 1, &all);
}

bv_status bv_adamw_init_shard(bv_adamw *o, const bv_params *p, const bv_adamw_cfg *cfg, int n_ranges,
                              const bv_range *ranges) {
    BV_ASSERT(p && p->finalized, "bv_adamw_init needs a finalized parameter store");
    memset(o, 0, sizeof *o);
    BV_TRY(check_cfg(cfg));
    for (int i = 0; i < n_ranges; i++)
        BV_ASSERT(ranges[i].lo <= ranges[i].hi && ranges[i].hi <= p->numel_trainable &&
                      (i == 0 || ranges[i].lo >= ranges[i - 1].hi),
                  "AdamW shard: range %d [%zu, %zu) out of order or beyond %zu", i, ranges[i].lo, ranges[i].hi,
                  p->numel_trainable);
    int n = 0;
    for (int i = 0; i < p->n; i++) n += p->items[i].trainable;
    int *count = bv_xcalloc((size_t)cfg->n_rules + 1, sizeof *count);
    o->param = bv_xmalloc((size_t)BV_MAX(n, 1) * sizeof *o->param);
    o->group = bv_xmalloc((size_t)BV_MAX(n, 1) * sizeof *o->group);
    o->lr_scale = bv_xmalloc((size_t)BV_MAX(n, 1) * sizeof *o->lr_scale);
    o->wd = bv_xmalloc((size_t)BV_MAX(n, 1) * sizeof *o->wd);
    o->cfg = *cfg;
    o->p = p;
    for (int i = 0, k = 0; i < p->n; i++) {
        const bv_param *e = &p->items[i];
        if (!e->trainable) continue;
        int g = rule_of(cfg, e->name);
        const bv_adamw_group_rule *r = g ? &cfg->rules[g - 1] : NULL;
        double wd = r && r->weight_decay >= 0 ? r->weight_decay : cfg->weight_decay;
        if (e->ndim < 2 || no_decay_name(cfg, e->name)) wd = 0;
        o->param[k] = i;
        o->group[k] = g;
        o->lr_scale[k] = r ? r->lr_scale : 1.0;
        o->wd[k] = wd;
        count[g]++;
        k++;
    }
    o->n_params = n;
    for (int r = 0; r < cfg->n_rules; r++) {
        if (count[1 + r]) continue;
        char list[256];
        prefix_list(&cfg->rules[r], list, sizeof list);
        free(count);
        bv_adamw_free(o);
        return bv_error_set(BV_ERR_ARG, "AdamW group '%s' (name prefixes %s) matches no trainable parameter",
                            cfg->rules[r].name ? cfg->rules[r].name : "(unnamed)", list);
    }
    free(count);
    o->n_ranges = n_ranges;
    o->ranges = bv_xmalloc((size_t)BV_MAX(n_ranges, 1) * sizeof *o->ranges);
    o->range_moff = bv_xmalloc((size_t)BV_MAX(n_ranges, 1) * sizeof *o->range_moff);
    size_t nt = 0;
    for (int i = 0; i < n_ranges; i++) {
        o->ranges[i] = ranges[i];
        o->range_moff[i] = nt;
        nt += ranges[i].hi - ranges[i].lo;
    }
    o->numel_shard = nt;
    if (nt > 0) {
        double bytes = 2.0 * 4.0 * (double)nt;
        bv_status st = bv_mem_check(bytes, "the AdamW moments");
        if (st == BV_OK) {
            o->m = bv_aligned_alloc_try(nt * sizeof(float));
            o->v = bv_aligned_alloc_try(nt * sizeof(float));
            if (!o->m || !o->v)
                st = bv_error_set(BV_ERR_NOMEM, "the AdamW moments: allocating %.0f bytes failed", bytes);
        }
        if (st != BV_OK) {
            bv_adamw_free(o);
            return st;
        }
        memset(o->m, 0, nt * sizeof(float));
        memset(o->v, 0, nt * sizeof(float));
    }
    return BV_OK;
}

void bv_adamw_free(bv_adamw *o) {
    bv_aligned_free(o->m);
    bv_aligned_free(o->v);
    free(o->param);
    free(o->group);
    free(o->lr_scale);
    free(o->wd);
    free(o->ranges);
    free(o->range_moff);
    memset(o, 0, sizeof *o);
}

/* The per-step constants, rounded to float where ATen rounds them. */
typedef struct {
    float b1, omb1, b2, omb2, bc2_sqrt, eps;
} step_consts;

// w, g, m, v (n): one parameter's values, gradients and moments, updated in place; decay =
// (float)(1 - lr wd), neg_step = (float)-(lr / bc1). Element-wise: any split over threads gives
// the same result.
/* On x86-64 a second copy for CPUs with AVX2 and FMA, picked at load time, has the fmas inline
 * (about 3x faster than the baseline copy, which calls fmaf; both correctly rounded, so the same
 * bits). It stays scalar: sqrtf sets errno and this file has no -fno-math-errno. */
#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("arch=x86-64-v3", "default")))
#endif
static void adamw_update(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                         float decay, float neg_step, const step_consts *c) {
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = fmaf(gi, c->omb1, m[i] * c->b1);
        float vi = fmaf(c->omb2 * gi, gi, v[i] * c->b2);
        float d = sqrtf(vi) / c->bc2_sqrt + c->eps;
        float wi = w[i] * decay;
        w[i] = wi + (neg_step * mi) / d;
        m[i] = mi;
        v[i] = vi;
    }
}

void bv_adamw_step(bv_adamw *o, bv_params *p, double lr, double wd_scale) {
    BV_ASSERT(p == o->p, "bv_adamw_step: a store other than the one given to bv_adamw_init");
    BV_ASSERT(isfinite(lr) && lr >= 0 && isfinite(wd_scale) && wd_scale >= 0, "lr %g, wd_scale %g", lr, wd_scale);
    o->step++;
    const bv_adamw_cfg *cfg = &o->cfg;
    /* torch: step = state_steps[i].item() (a float), beta ** step in Python: pow in double */
    double t = (double)o->step;
    double bc1 = 1 - pow(cfg->beta1, t), bc2 = 1 - pow(cfg->beta2, t);
    step_consts c = {(float)cfg->beta1, (float)(1 - cfg->beta1), (float)cfg->beta2, (float)(1 - cfg->beta2),
                     (float)sqrt(bc2), (float)cfg->eps};
    size_t nt = o->numel_shard;
    /* Each (parameter, owned range) piece's elements are split across the threads (nowait: no
     * barrier between pieces); small stores run on the calling thread. Parameters and ranges are
     * both in offset order: one merge walk. */
#pragma omp parallel if (nt >= BV_OPTIM_PAR_MIN)
    for (int k = 0, r0 = 0; k < o->n_params; k++) {
        const bv_param *e = &p->items[o->param[k]];
        double lr_g = lr * o->lr_scale[k];
        float decay = (float)(1 - lr_g * (o->wd[k] * wd_scale));
        float neg_step = (float)-(lr_g / bc1);
        size_t plo = e->offset, phi = e->offset + (size_t)e->numel;
        while (r0 < o->n_ranges && o->ranges[r0].hi <= plo) r0++;
        for (int r = r0; r < o->n_ranges && o->ranges[r].lo < phi; r++) {
            size_t lo = BV_MAX(plo, o->ranges[r].lo), hi = BV_MIN(phi, o->ranges[r].hi);
            if (lo >= hi) continue;
            size_t n = hi - lo, moff = o->range_moff[r] + (lo - o->ranges[r].lo);
            float *w = p->values + lo, *m = o->m + moff, *v = o->v + moff;
            const float *g = p->grads + lo;
            /* chunks of 4096 elements (a multiple of any vector width) */
            size_t nchunk = (n + 4095) / 4096;
#pragma omp for schedule(static) nowait
            for (size_t ch = 0; ch < nchunk; ch++) {
                size_t a = ch * 4096, len = BV_MIN(n - a, (size_t)4096);
                adamw_update(w + a, g + a, m + a, v + a, len, decay, neg_step, &c);
            }
        }
    }
    bv_params_mark_updated(p);
}

/* [begin, end) of part k of n elements split into BV_GRAD_PARTS parts */
static void part_range(size_t n, int k, size_t *begin, size_t *end) {
    size_t per = (n + BV_GRAD_PARTS - 1) / BV_GRAD_PARTS;
    *begin = BV_MIN(n, (size_t)k * per);
    *end = BV_MIN(n, *begin + per);
}

/* sum of squares of g[a, b): four accumulators in a fixed interleaving (the order depends on the
 * bounds alone) */
static double sumsq(const float *g, size_t a, size_t b) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = a;
    for (; i + 4 <= b; i += 4) {
        s0 += (double)g[i] * g[i];
        s1 += (double)g[i + 1] * g[i + 1];
        s2 += (double)g[i + 2] * g[i + 2];
        s3 += (double)g[i + 3] * g[i + 3];
    }
    for (; i < b; i++) s0 += (double)g[i] * g[i];
    return (s0 + s1) + (s2 + s3);
}

void bv_grad_sumsq_chunks(const float *g, size_t n, size_t lo, size_t hi, double *out) {
    BV_ASSERT(lo % BV_GRAD_NORM_CHUNK == 0 && (hi % BV_GRAD_NORM_CHUNK == 0 || hi == n) && lo <= hi && hi <= n,
              "grad sumsq: [%zu, %zu) not on chunk bounds of %zu elements", lo, hi, n);
    int64_t c0 = (int64_t)(lo / BV_GRAD_NORM_CHUNK), c1 = (int64_t)((hi + BV_GRAD_NORM_CHUNK - 1) / BV_GRAD_NORM_CHUNK);
#pragma omp parallel for schedule(static) if (hi - lo >= BV_OPTIM_PAR_MIN)
    for (int64_t c = c0; c < c1; c++) {
        size_t a = (size_t)c * BV_GRAD_NORM_CHUNK;
        out[c] = sumsq(g, a, BV_MIN(n, a + BV_GRAD_NORM_CHUNK));
    }
}

double bv_grad_norm_of_chunks(const double *chunk_sumsq, size_t n) {
    size_t nc = bv_grad_norm_chunks(n);
    double s = 0;
    for (size_t c = 0; c < nc; c++) s += chunk_sumsq[c];
    return sqrt(s);
}

double bv_grad_norm(const float *g, size_t n) {
    size_t nc = bv_grad_norm_chunks(n);
    double stack[64], *part = nc <= 64 ? stack : bv_xmalloc(nc * sizeof *part);
    bv_grad_sumsq_chunks(g, n, 0, n, part);
    double r = bv_grad_norm_of_chunks(part, n);
    if (part != stack) free(part);
    return r;
}

bool bv_grad_clip(float *g, size_t n, double norm, double max_norm) {
    if (!(max_norm > 0)) return false;
    /* torch: clip_coef = max_norm / (total_norm + 1e-6) with total_norm a float tensor; a Python
     * number over a tensor is tensor.reciprocal() * number */
    float coef = (1.0f / ((float)norm + (float)1e-6)) * (float)max_norm;
    if (!(coef < 1.0f)) return false;
#pragma omp parallel for simd schedule(static) if (n >= BV_OPTIM_PAR_MIN)
    for (size_t i = 0; i < n; i++) g[i] *= coef;
    return true;
}

int64_t bv_grad_first_nonfinite(const float *g, size_t n) {
    int64_t first[BV_GRAD_PARTS];
#pragma omp parallel for schedule(static) if (n >= BV_OPTIM_PAR_MIN)
    for (int k = 0; k < BV_GRAD_PARTS; k++) {
        size_t a, b;
        part_range(n, k, &a, &b);
        first[k] = -1;
        for (size_t i = a; i < b; i++)
            if (!isfinite(g[i])) {
                first[k] = (int64_t)i;
                break;
            }
    }
    for (int k = 0; k < BV_GRAD_PARTS; k++)
        if (first[k] >= 0) return first[k];
    return -1;
}
