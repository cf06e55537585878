/* ops_bitlinear.c - BitLinear: a linear layer with quantization-aware training (spec section 2).
 *
 * Forward: xq = quant_act(x) (act_bits 8) or x (32); Wq = quant_weight(W) (weight_bits 1) or W (32);
 * y = xq @ Wq^T + b with the linear kernels. Backward: straight-through estimator for both
 * quantizers, i.e. the linear backward on (xq, Wq): dx += dy @ Wq, dW += dy^T @ xq, db += sum dy.
 *
 * F32: the fast quantizers (src/kernels/bitlinear.h). Quantized weights come from the caller's
 * bv_qweight cache when one is given, recomputed only when the weight's params version or data
 * pointer changed (once per optimizer step, not per micro-batch); otherwise into graph memory.
 * F64 (gradient checks): the double reference quantizers on every call; the cache is not used.
 * xq (and Wq without a cache) live in the graph's arena when the op is recorded (backward needs
 * them), in its scratch buffer otherwise (no_grad: teacher forward, evaluation).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/kernels/bitlinear.h"
#include "src/kernels/matmul.h"
#include "src/profile.h"
#include "autograd/autograd.h"
#include "autograd/ops_impl.h"

typedef struct {
    const void *xq;           /* (N, C): quantized input, or x's own value when act_bits == 32 */
    const void *wq;           /* (OC, C): quantized weight, or w's own value when weight_bits == 32 */
    const bv_qweight *cache;  /* when wq lives in a cache: it must still hold this version */
    uint64_t version;
    int64_t N, C, OC;
} bitlinear_saved;

static int g_int_mode = -2;       /* -2: not decided yet */
static bool g_int_off_explicit;  /* mode 0 asked for (not merely the default without VNNI) */

bool bv_bitlinear_set_integer_forward(int mode) {
    g_int_off_explicit = mode == 0;
    if (mode < 0) {
        const char *e = getenv("BV_BITLINEAR_INT");
        if (e && (!strcmp(e, "0") || !strcmp(e, "1"))) {
            mode = e[0] - '0';
            g_int_off_explicit = mode == 0;
        } else {
            mode = bv_ternary_kernel_active() == BV_TERNARY_KERNEL_AVX512VNNI;
        }
    }
    g_int_mode = mode;
    return mode == 1;
}

bool bv_bitlinear_integer_forward(void) {
    if (g_int_mode == -2) bv_bitlinear_set_integer_forward(-1);
    return g_int_mode == 1;
}

bool bv_bitlinear_integer_nograd(void) {
    if (g_int_mode == -2) bv_bitlinear_set_integer_forward(-1);
    return !g_int_off_explicit;
}

void bv_qweight_free(bv_qweight *q) {
    bv_ternary_mat_free(&q->tmat);
    bv_aligned_free(q->codes);
    bv_aligned_free(q->wq);
    memset(q, 0, sizeof *q);
}

bv_status bv_qweight_set_packed(bv_qweight *q, int64_t OC, int64_t C, bv_tpack_format fmt, const uint8_t *packed,
                                size_t packed_bytes, float scale) {
    const char *fn = bv_tpack_name(fmt);
    if (OC < 1 || C < 1 || OC > ((int64_t)1 << 60) / C)
        return bv_error_set(BV_ERR_SHAPE, "packed %s weight (%lld, %lld): dimensions must be >= 1 with at most 2^60 weights",
                            fn, (long long)OC, (long long)C);
    size_t need;
    bv_status st = bv_tpack_nbytes(fmt, OC, C, &need);
    if (st) return bv_error_prefix(st, "packed %s weight (%lld, %lld)", fn, (long long)OC, (long long)C);
    if (packed_bytes != need)
        return bv_error_set(BV_ERR_FORMAT, "packed %s weight (%lld, %lld): %zu bytes, expected %zu", fn, (long long)OC,
                            (long long)C, packed_bytes, need);
    const size_t n = (size_t)(OC * C);
    int8_t *codes = bv_aligned_alloc_try(n); /* transient: the cache keeps the 2-bit form */
    if (!codes)
        return bv_error_set(BV_ERR_NOMEM, "packed %s weight (%lld, %lld): cannot allocate %zu bytes to unpack it", fn,
                            (long long)OC, (long long)C, n);
    float stored = NAN;
    st = bv_tpack_unpack(fmt, packed, packed_bytes, OC, C, codes, &stored);
    float m = scale;
    if (st) {
        bv_error_prefix(st, "packed %s weight (%lld, %lld)", fn, (long long)OC, (long long)C);
    } else if (isnan(stored) && isnan(scale)) { /* HF keeps it in a separate tensor */
        st = bv_error_set(BV_ERR_ARG, "packed %s weight (%lld, %lld): the format stores no scale; pass its weight_scale",
                          fn, (long long)OC, (long long)C);
    } else if (!isnan(stored) && !isnan(scale) && stored != scale) {
        st = bv_error_set(BV_ERR_ARG, "packed %s weight (%lld, %lld): scale %.9g given, but the bytes store %.9g", fn,
                          (long long)OC, (long long)C, (double)scale, (double)stored);
    } else {
        m = isnan(scale) ? stored : scale;
        if (!(m >= 0.0f) || isinf(m))
            st = bv_error_set(BV_ERR_ARG, "packed %s weight (%lld, %lld): scale %g, expected finite and >= 0", fn,
                              (long long)OC, (long long)C, (double)m);
    }
    /* the weight quantizer's arithmetic (src/kernels/bitlinear.c): clamp, s = fl(1/m) */
    m = m < BV_BITLINEAR_EPS ? BV_BITLINEAR_EPS : m;
    const float s = (1.0f / m) * 1.0f;
    bv_ternary_mat tm = {0};
    if (!st) {
        st = bv_ternary_mat_pack(&tm, codes, OC, C, s);
        if (st) bv_error_prefix(st, "packed %s weight (%lld, %lld)", fn, (long long)OC, (long long)C);
    }
    bv_aligned_free(codes);
    if (st) return st;
    bv_qweight_free(q);
    q->version = BV_QWEIGHT_PACKED;
    q->src = NULL;
    q->numel = (int64_t)n;
    q->out_features = OC, q->in_features = C;
    q->held = 0;
    q->scale = s;
    q->tmat = tm;
    return BV_OK;
}

static void *qweight_buf(void *p, size_t bytes) { return p ? p : bv_aligned_alloc(bytes ? bytes : 1); }

/* Bring the cache up to date with w (numel elements at src) at params version `version`, holding
 * wq when need_wq and the 2-bit form when need_tmat; a cache set from packed codes is never
 * re-quantized, only unpacked into the forms asked for. */
static void qweight_update(bv_qweight *q, const float *src, int64_t OC, int64_t C, uint64_t version, bool need_wq,
                           bool need_tmat) {
    int64_t numel = OC * C;
    size_t n = (size_t)numel;
    bool packed = q->version == BV_QWEIGHT_PACKED;
    if (packed) {
        BV_ASSERT(q->out_features == OC && q->in_features == C,
                  "bitlinear: the packed weight cache holds (%lld, %lld), the layer's weight is (%lld, %lld)",
                  (long long)q->out_features, (long long)q->in_features, (long long)OC, (long long)C);
    } else if (!(q->version != 0 && q->version == version && q->src == src && q->numel == numel)) {
        /* stale: every form goes; buffers of the same size are kept for the new ones */
        if (q->numel != numel) {
            bv_aligned_free(q->codes);
            bv_aligned_free(q->wq);
            q->codes = NULL, q->wq = NULL;
        }
        bv_ternary_mat_free(&q->tmat);
        q->held = 0;
        q->codes = qweight_buf(q->codes, n);
        if (need_wq) q->wq = qweight_buf(q->wq, n * sizeof(float));
        q->scale = bv_k_quant_weight_fwd(q->codes, need_wq ? q->wq : NULL, src, numel);
        q->held = BV_QWEIGHT_CODES | (need_wq ? BV_QWEIGHT_WQ : 0u);
        q->numel = numel;
        q->out_features = OC, q->in_features = C;
        q->src = src;
        q->version = version;
    }
    if (need_wq && !(q->held & BV_QWEIGHT_WQ)) {
        q->wq = qweight_buf(q->wq, n * sizeof(float));
        if (packed) { /* codes from the 2-bit form, then the quantizer's wq = code * fl(1/s) */
            if (!(q->held & BV_QWEIGHT_CODES)) {
                q->codes = qweight_buf(q->codes, n);
                bv_ternary_mat_unpack(&q->tmat, q->codes);
                q->held |= BV_QWEIGHT_CODES;
            }
            const float inv = 1.0f / q->scale;
            float *wq = q->wq;
            const int8_t *codes = q->codes;
#pragma omp parallel for schedule(static) if (n > 65536)
            for (size_t i = 0; i < n; i++) wq[i] = (float)codes[i] * inv;
        } else { /* the same quantization again, now keeping wq */
            q->codes = qweight_buf(q->codes, n);
            q->scale = bv_k_quant_weight_fwd(q->codes, q->wq, src, numel);
            q->held |= BV_QWEIGHT_CODES;
        }
        q->held |= BV_QWEIGHT_WQ;
    }
    if (need_tmat && !q->tmat.packed) {
        if (!(q->held & BV_QWEIGHT_CODES)) { /* not packed (a packed cache always has tmat) */
            q->codes = qweight_buf(q->codes, n);
            q->scale = bv_k_quant_weight_fwd(q->codes, NULL, src, numel);
            q->held |= BV_QWEIGHT_CODES;
        }
        BV_ASSERT(bv_ternary_mat_pack(&q->tmat, q->codes, OC, C, q->scale) == BV_OK, "bitlinear: packing %lldx%lld: %s",
                  (long long)OC, (long long)C, bv_error_msg());
        if (!(q->held & BV_QWEIGHT_WQ)) { /* the graph-free integer path needs the 2-bit form alone */
            bv_aligned_free(q->codes);
            q->codes = NULL;
            q->held &= ~BV_QWEIGHT_CODES;
        }
    }
}

static void bitlinear_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0], *w = e->in[1], *b = e->in[2];
    const bitlinear_saved *s = e->saved;
    BV_ASSERT(!s->cache || (s->cache->version == s->version && s->cache->wq == s->wq && (s->cache->held & BV_QWEIGHT_WQ)),
              "bitlinear backward: the weight cache was re-quantized (version %llu -> %llu) between this "
              "op's forward and backward",
              (unsigned long long)s->version, (unsigned long long)s->cache->version);
    void *dx = x->requires_grad ? bv_var_grad(g, x) : NULL;
    void *dw = w->requires_grad ? bv_var_grad(g, w) : NULL;
    void *db = (b && b->requires_grad) ? bv_var_grad(g, b) : NULL;
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(x))
        bv_k_linear_bwd_ref(dx, dw, db, e->out->grad, s->xq, s->wq, s->N, s->C, s->OC);
    else
        bv_k_linear_bwd(dx, dw, db, e->out->grad, s->xq, s->wq, s->N, s->C, s->OC);
    bv_prof_end(BV_PROF_GEMM, t0);
}

bv_var *bv_op_bitlinear(bv_graph *g, bv_var *x, bv_var *w, bv_var *b, const bv_bitlinear_cfg *cfg,
                        bv_qweight *cache, uint64_t version) {
    BV_ASSERT(cfg, "bitlinear: cfg is NULL");
    BV_ASSERT(cfg->weight_bits == 1 || cfg->weight_bits == 32, "bitlinear: weight_bits %d (expected 1 or 32)",
              cfg->weight_bits);
    BV_ASSERT(cfg->act_bits == 8 || cfg->act_bits == 32, "bitlinear: act_bits %d (expected 8 or 32)", cfg->act_bits);
    bv_ops_check_float_same("bitlinear", x, w);
    BV_ASSERT(w->val.ndim == 2, "bitlinear: weight must be (OC, C), got rank %d", w->val.ndim);
    int64_t OC = w->val.shape[0], C = w->val.shape[1];
    BV_ASSERT(x->val.ndim >= 1 && x->val.shape[x->val.ndim - 1] == C,
              "bitlinear: input last dim %lld != weight in_features %lld",
              (long long)(x->val.ndim ? x->val.shape[x->val.ndim - 1] : -1), (long long)C);
    if (b) {
        bv_ops_check_float_same("bitlinear", x, b);
        BV_ASSERT(bv_var_numel(b) == OC, "bitlinear: bias has %lld elements, expected %lld",
                  (long long)bv_var_numel(b), (long long)OC);
    }
    int64_t N = C ? bv_var_numel(x) / C : 0;
    bool f64 = bv_var_is_f64(x);
    size_t esz = f64 ? sizeof(double) : sizeof(float);
    bool qa = cfg->act_bits == 8, qw = cfg->weight_bits == 1;
    bool own_wq = qw && (f64 || !cache); /* Wq computed into graph memory */
    bv_var *in[3] = {x, w, b};
    bool record = bv_graph_should_record(g, 3, in);
    /* integer forward (see autograd.h): xq is then only needed for the backward */
    bool integer = !f64 && qw && qa && cache && (record ? bv_bitlinear_integer_forward() : bv_bitlinear_integer_nograd());
    if (integer && !record) qa = false; /* no fp32 xq at all */

    /* buffers for xq and an uncached Wq: arena when backward needs them, scratch otherwise */
    size_t xq_bytes = qa ? (((size_t)(N * C) * esz + 63) & ~(size_t)63) : 0;
    size_t wq_bytes = own_wq ? (size_t)(OC * C) * esz : 0;
    char *buf = NULL;
    if (xq_bytes + wq_bytes)
        buf = record ? bv_graph_alloc(g, xq_bytes + wq_bytes) : bv_graph_scratch(g, xq_bytes + wq_bytes);
    const void *xq = qa ? (const void *)buf : bv_tensor_ptr(&x->val);
    const void *wq = own_wq ? (const void *)(buf + xq_bytes) : bv_tensor_ptr(&w->val);

    double t0 = bv_prof_begin();
    if (f64) {
        if (qw) bv_k_quant_weight_fwd_ref(NULL, (double *)wq, bv_var_f64(w), OC * C);
        if (qa) bv_k_quant_act_fwd_ref((double *)xq, NULL, NULL, bv_var_f64(x), N, C);
    } else {
        if (qw && cache) {
            qweight_update(cache, bv_var_f32(w), OC, C, version, record || !integer, integer);
            wq = cache->wq;
        } else if (qw) {
            bv_k_quant_weight_fwd(NULL, (float *)wq, bv_var_f32(w), OC * C);
        }
        if (qa && !integer) bv_k_quant_act_fwd((float *)xq, NULL, NULL, bv_var_f32(x), N, C);
    }
    bv_prof_end(BV_PROF_QUANT, t0);

    int64_t shape[BV_MAX_DIMS];
    memcpy(shape, x->val.shape, sizeof shape);
    shape[x->val.ndim - 1] = OC;
    bv_var *y = bv_var_new(g, x->val.dtype, x->val.ndim, shape);
    t0 = bv_prof_begin();
    if (f64) {
        bv_k_linear_fwd_ref(bv_var_f64(y), xq, wq, b ? bv_var_f64(b) : NULL, N, C, OC);
    } else if (integer) {
        /* int8 codes and row scales in the scratch buffer (xq, when recorded, is in the arena) */
        size_t cb = ((size_t)(N * C) + 63) & ~(size_t)63;
        char *tmp = bv_graph_scratch(g, cb + (size_t)(N ? N : 1) * sizeof(float));
        int8_t *codes = (int8_t *)tmp;
        float *sx = (float *)(tmp + cb);
        bv_k_quant_act_fwd(record ? (float *)xq : NULL, codes, sx, bv_var_f32(x), N, C);
        bv_prof_end(BV_PROF_QUANT, t0);
        t0 = bv_prof_begin();
        bv_k_ternary_linear_fwd(bv_var_f32(y), codes, sx, &cache->tmat, b ? bv_var_f32(b) : NULL, N);
        bv_prof_span_end(BV_PROF_SPAN_TERNARY, t0);
        bv_prof_ternary_count(N, C, OC, (double)bv_ternary_mat_bytes(&cache->tmat));
    } else {
        bv_k_linear_fwd(bv_var_f32(y), xq, wq, b ? bv_var_f32(b) : NULL, N, C, OC);
    }
    bv_prof_end(BV_PROF_GEMM, t0);

    if (record) {
        bitlinear_saved *s = bv_graph_alloc(g, sizeof *s);
        s->xq = xq;
        s->wq = wq;
        s->cache = (qw && !f64 && cache) ? cache : NULL;
        s->version = s->cache ? cache->version : version; /* BV_QWEIGHT_PACKED for a packed cache */
        s->N = N, s->C = C, s->OC = OC;
        bv_graph_record(g, "bitlinear", bitlinear_bwd, y, 3, in, s);
    }
    return y;
}
