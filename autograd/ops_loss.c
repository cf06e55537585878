/* ops_loss.c - autograd ops over the loss kernels: cross-entropy, L1, MSE (each -> scalar).
 * F64 vars run the double reference kernels, F32 vars the fast ones. */
#include <string.h>

#include "src/kernels/loss.h"
#include "autograd/autograd.h"
#include "autograd/ops_impl.h"

/* ---- cross-entropy ---- */

typedef struct {
    int64_t *targets; /* (N) arena copy: the caller's tensor need not outlive the forward */
    void *lse;        /* (N) float or double; rows with an ignored target are unset */
    int64_t N, V, kept, ignore_index;
} ce_saved;

static void cross_entropy_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *x = e->in[0];
    const ce_saved *s = e->saved;
    void *dx = bv_var_grad(g, x); /* zero when every target is ignored */
    if (s->kept == 0) return;
    if (bv_var_is_f64(x)) {
        double scale = ((const double *)e->out->grad)[0] / (double)s->kept;
        bv_k_cross_entropy_bwd_ref(dx, bv_var_f64(x), s->targets, s->lse, scale, s->N, s->V, s->ignore_index);
    } else {
        float scale = (float)((double)((const float *)e->out->grad)[0] / (double)s->kept);
        bv_k_cross_entropy_bwd(dx, bv_var_f32(x), s->targets, s->lse, scale, s->N, s->V, s->ignore_index);
    }
}

bv_var *bv_op_cross_entropy(bv_graph *g, bv_var *logits, const bv_tensor *targets, int64_t ignore_index) {
    bv_ops_check_float("cross_entropy", logits);
    BV_ASSERT(logits->val.ndim >= 1 && logits->val.shape[logits->val.ndim - 1] > 0,
              "cross_entropy: logits need rank >= 1 and a non-empty class dim");
    int64_t V = logits->val.shape[logits->val.ndim - 1], N = bv_var_numel(logits) / V;
    BV_ASSERT(targets->dtype == BV_DTYPE_I64, "cross_entropy: targets dtype %s, expected I64",
              bv_dtype_name(targets->dtype));
    BV_ASSERT(bv_tensor_numel(targets) == N, "cross_entropy: %lld targets for %lld rows of logits",
              (long long)bv_tensor_numel(targets), (long long)N);
    ce_saved s = {.N = N, .V = V, .ignore_index = ignore_index};
    s.targets = bv_graph_alloc(g, (size_t)N * sizeof(int64_t));
    bv_tensor tt = bv_tensor_make(s.targets, BV_DTYPE_I64, targets->ndim, targets->shape);
    bv_tensor_copy_into(&tt, targets);
    s.lse = bv_graph_alloc(g, (size_t)N * (bv_var_is_f64(logits) ? sizeof(double) : sizeof(float)));
    bv_var *y = bv_var_new(g, logits->val.dtype, 0, NULL);
    if (bv_var_is_f64(logits))
        s.kept = bv_k_cross_entropy_fwd_ref(bv_var_f64(y), s.lse, bv_var_f64(logits), s.targets, N, V, ignore_index);
    else
        s.kept = bv_k_cross_entropy_fwd(bv_var_f32(y), s.lse, bv_var_f32(logits), s.targets, N, V, ignore_index);
    if (bv_graph_should_record(g, 1, &logits)) {
        ce_saved *sv = bv_graph_alloc(g, sizeof *sv);
        *sv = s;
        bv_graph_record(g, "cross_entropy", cross_entropy_bwd, y, 1, &logits, sv);
    }
    return y;
}

/* ---- L1 and MSE ---- */

static void check_pair(const char *op, const bv_var *p, const bv_var *t) {
    bv_ops_check_float(op, p);
    BV_ASSERT(p->val.dtype == t->val.dtype, "%s: pred dtype %s, target dtype %s (must match)", op,
              bv_dtype_name(p->val.dtype), bv_dtype_name(t->val.dtype));
    char s1[96], s2[96];
    BV_ASSERT(bv_tensor_same_shape(&p->val, &t->val), "%s: pred shape %s, target shape %s (must match)", op,
              bv_tensor_shape_str(&p->val, s1, sizeof s1), bv_tensor_shape_str(&t->val, s2, sizeof s2));
    BV_ASSERT(bv_var_numel(p) > 0, "%s: empty input (the mean is undefined)", op);
}

static void pair_grads(bv_graph *g, const bv_tape_entry *e, void **dp, void **dt) {
    bv_var *p = e->in[0], *t = e->in[1];
    *dp = p->requires_grad ? bv_var_grad(g, p) : NULL;
    *dt = t->requires_grad ? bv_var_grad(g, t) : NULL;
}

static void l1_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *p = e->in[0], *t = e->in[1];
    void *dp, *dt;
    pair_grads(g, e, &dp, &dt);
    if (bv_var_is_f64(p))
        bv_k_l1_loss_bwd_ref(dp, dt, bv_var_f64(p), bv_var_f64(t), ((const double *)e->out->grad)[0], bv_var_numel(p));
    else
        bv_k_l1_loss_bwd(dp, dt, bv_var_f32(p), bv_var_f32(t), ((const float *)e->out->grad)[0], bv_var_numel(p));
}

static void mse_bwd(bv_graph *g, const bv_tape_entry *e) {
    bv_var *p = e->in[0], *t = e->in[1];
    void *dp, *dt;
    pair_grads(g, e, &dp, &dt);
    if (bv_var_is_f64(p))
        bv_k_mse_loss_bwd_ref(dp, dt, bv_var_f64(p), bv_var_f64(t), ((const double *)e->out->grad)[0], bv_var_numel(p));
    else
        bv_k_mse_loss_bwd(dp, dt, bv_var_f32(p), bv_var_f32(t), ((const float *)e->out->grad)[0], bv_var_numel(p));
}

bv_var *bv_op_l1_loss(bv_graph *g, bv_var *pred, bv_var *target) {
    check_pair("l1_loss", pred, target);
    bv_var *y = bv_var_new(g, pred->val.dtype, 0, NULL);
    if (bv_var_is_f64(pred))
        bv_var_f64(y)[0] = bv_k_l1_loss_fwd_ref(bv_var_f64(pred), bv_var_f64(target), bv_var_numel(pred));
    else
        bv_var_f32(y)[0] = bv_k_l1_loss_fwd(bv_var_f32(pred), bv_var_f32(target), bv_var_numel(pred));
    bv_var *in[2] = {pred, target};
    bv_graph_record(g, "l1_loss", l1_bwd, y, 2, in, NULL);
    return y;
}

bv_var *bv_op_mse_loss(bv_graph *g, bv_var *pred, bv_var *target) {
    check_pair("mse_loss", pred, target);
    bv_var *y = bv_var_new(g, pred->val.dtype, 0, NULL);
    if (bv_var_is_f64(pred))
        bv_var_f64(y)[0] = bv_k_mse_loss_fwd_ref(bv_var_f64(pred), bv_var_f64(target), bv_var_numel(pred));
    else
        bv_var_f32(y)[0] = bv_k_mse_loss_fwd(bv_var_f32(pred), bv_var_f32(target), bv_var_numel(pred));
    bv_var *in[2] = {pred, target};
    bv_graph_record(g, "mse_loss", mse_bwd, y, 2, in, NULL);
    return y;
}
