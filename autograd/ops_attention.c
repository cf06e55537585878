/* ops_attention.c - autograd ops of the attention family: rotary embedding and scaled-dot-product
 * attention (kernels in src/kernels/rope.c and src/kernels/attention.c). */
#include <math.h>
#include <string.h>

#include "src/kernels/attention.h"
#include "src/kernels/rope.h"
#include "src/profile.h"
#include "autograd/autograd.h"
#include "autograd/ops_impl.h"

/* ---- rope ---- */

typedef struct {
    int64_t *pos; /* arena copy, (B, T) or (T) */
    int64_t pos_bstride;
    double theta;
} rope_saved;

static void rope_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    const rope_saved *sv = e->saved;
    const int64_t *sh = x->val.shape;
    if (bv_var_is_f64(x))
        bv_k_rope_bwd_ref(bv_var_grad(g, x), e->out->grad, sv->pos, sv->pos_bstride, sh[0], sh[1], sh[2], sh[3],
                          sv->theta);
    else
        bv_k_rope_bwd(bv_var_grad(g, x), e->out->grad, sv->pos, sv->pos_bstride, sh[0], sh[1], sh[2], sh[3],
                      sv->theta);
}

bv_var *bv_op_rope(bv_graph *g, bv_var *x, const bv_tensor *pos, double theta) {
    bv_ops_check_float("rope", x);
    BV_ASSERT(x->val.ndim == 4, "rope: x must be (B, T, H, hd), got rank %d", x->val.ndim);
    const int64_t B = x->val.shape[0], T = x->val.shape[1], H = x->val.shape[2], hd = x->val.shape[3];
    BV_ASSERT(hd % 2 == 0, "rope: head dim %lld must be even", (long long)hd);
    BV_ASSERT(theta > 0, "rope: theta %g must be positive", theta);
    BV_ASSERT(pos->dtype == BV_DTYPE_I64, "rope: positions must be I64, got %s", bv_dtype_name(pos->dtype));
    BV_ASSERT((pos->ndim == 2 && pos->shape[0] == B && pos->shape[1] == T) || (pos->ndim == 1 && pos->shape[0] == T),
              "rope: positions must be (B, T) = (%lld, %lld) or (T), got rank %d [%lld, ...]", (long long)B,
              (long long)T, pos->ndim, (long long)(pos->ndim ? pos->shape[0] : 0));
    /* contiguous copy in the arena: the caller's tensor need not outlive the backward */
    bv_tensor pc = bv_tensor_contiguous(&g->arena, pos, true);
    rope_saved sv = {bv_tensor_ptr(&pc), pos->ndim == 2 ? T : 0, theta};
    bv_var *y = bv_var_like(g, x);
    if (bv_var_is_f64(x))
        bv_k_rope_fwd_ref(bv_var_f64(y), bv_var_f64(x), sv.pos, sv.pos_bstride, B, T, H, hd, theta);
    else
        bv_k_rope_fwd(bv_var_f32(y), bv_var_f32(x), sv.pos, sv.pos_bstride, B, T, H, hd, theta);
    if (bv_graph_should_record(g, 1, &x)) {
        rope_saved *s = bv_graph_alloc(g, sizeof *s);
        *s = sv;
        bv_graph_record(g, "rope", rope_bwd, y, 1, &x, s);
    }
    return y;
}

/* ---- scaled-dot-product attention ---- */

typedef struct {
    bv_sdpa_shape s; /* key_padding points at an arena copy */
    float *lse;      /* (B, H, T), fast path only */
} sdpa_saved;

static void sdpa_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *q = e->in[0], *k = e->in[1], *v = e->in[2];
    const sdpa_saved *sv = e->saved;
    void *dq = q->requires_grad ? bv_var_grad(g, q) : NULL;
    void *dk = k->requires_grad ? bv_var_grad(g, k) : NULL;
    void *dv = v->requires_grad ? bv_var_grad(g, v) : NULL;
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(q)) {
        bv_k_sdpa_bwd_ref(dq, dk, dv, e->out->grad, bv_var_f64(q), bv_var_f64(k), bv_var_f64(v), &sv->s);
    } else {
        int nt = bv_num_threads();
        float *scratch = bv_graph_scratch(g, bv_k_sdpa_bwd_scratch(&sv->s, nt) * sizeof(float));
        bv_k_sdpa_bwd(dq, dk, dv, e->out->grad, bv_var_f32(q), bv_var_f32(k), bv_var_f32(v), bv_var_f32(e->out),
                      sv->lse, &sv->s, scratch, nt);
    }
    bv_prof_end(BV_PROF_ATTN, t0);
}

bv_var *bv_op_sdpa(bv_graph *g, bv_var *q, bv_var *k, bv_var *v, const bv_attn_mask *mask) {
    bv_ops_check_float("sdpa", q);
    BV_ASSERT(k->val.dtype == q->val.dtype && v->val.dtype == q->val.dtype, "sdpa: dtypes q %s k %s v %s differ",
              bv_dtype_name(q->val.dtype), bv_dtype_name(k->val.dtype), bv_dtype_name(v->val.dtype));
    BV_ASSERT(q->val.ndim == 4 && k->val.ndim == 4 && v->val.ndim == 4,
              "sdpa: q, k, v must be rank 4 (B, T, H, hd), got %d, %d, %d", q->val.ndim, k->val.ndim, v->val.ndim);
    bv_sdpa_shape s;
    memset(&s, 0, sizeof s);
    s.B = q->val.shape[0], s.T = q->val.shape[1], s.H = q->val.shape[2], s.hd = q->val.shape[3];
    s.S = k->val.shape[1], s.Hkv = k->val.shape[2];
    char b1[96], b2[96];
    BV_ASSERT(bv_tensor_same_shape(&k->val, &v->val), "sdpa: k %s and v %s differ",
              bv_tensor_shape_str(&k->val, b1, sizeof b1), bv_tensor_shape_str(&v->val, b2, sizeof b2));
    BV_ASSERT(k->val.shape[0] == s.B && k->val.shape[3] == s.hd && s.Hkv > 0 && s.H % s.Hkv == 0,
              "sdpa: q %s and k %s do not fit (same B and hd, H a multiple of Hkv)",
              bv_tensor_shape_str(&q->val, b1, sizeof b1), bv_tensor_shape_str(&k->val, b2, sizeof b2));
    s.causal = mask && mask->causal;
    s.scale = (mask && mask->scale != 0.0) ? mask->scale : 1.0 / sqrt((double)s.hd);
    bv_var *in[3] = {q, k, v};
    bool record = bv_graph_should_record(g, 3, in);
    if (mask && mask->key_padding) {
        if (record) { /* the backward runs after the caller's mask may be gone */
            size_t n = (size_t)(s.B * s.S);
            uint8_t *kp = bv_graph_alloc(g, n ? n : 1);
            memcpy(kp, mask->key_padding, n);
            s.key_padding = kp;
        } else {
            s.key_padding = mask->key_padding;
        }
    }
    bv_var *y = bv_var_like(g, q);
    float *lse = NULL;
    double t0 = bv_prof_begin();
    if (bv_var_is_f64(q)) {
        bv_k_sdpa_fwd_ref(bv_var_f64(y), bv_var_f64(q), bv_var_f64(k), bv_var_f64(v), &s);
    } else {
        int nt = bv_num_threads();
        size_t nl = (size_t)(s.B * s.H * s.T);
        lse = bv_graph_alloc(g, (nl ? nl : 1) * sizeof(float));
        float *scratch = bv_graph_scratch(g, bv_k_sdpa_fwd_scratch(&s, nt) * sizeof(float));
        bv_k_sdpa_fwd(bv_var_f32(y), lse, bv_var_f32(q), bv_var_f32(k), bv_var_f32(v), &s, scratch, nt);
    }
    bv_prof_end(BV_PROF_ATTN, t0);
    if (record) {
        sdpa_saved *sv = bv_graph_alloc(g, sizeof *sv);
        sv->s = s;
        sv->lse = lse;
        bv_graph_record(g, "sdpa", sdpa_bwd, y, 3, in, sv);
    }
    return y;
}
