#include "models/harness.h"

#include <math.h>
#include <string.h>

#include "src/safetensors.h"
#include "models/build.h"

static const struct {
    const char *name;
    bv_dtype dt;
} k_inputs[] = {
    {"input_ids", BV_DTYPE_I64}, {"attention_mask", BV_DTYPE_U8}, {"pixel_values", BV_DTYPE_F32},
    {"proprio", BV_DTYPE_F32},   {"action_mask", BV_DTYPE_U8},    {"actions", BV_DTYPE_F32},
    {"labels", BV_DTYPE_I64},
};
enum { N_INPUTS = sizeof k_inputs / sizeof k_inputs[0] };

typedef struct {
    bv_tensor t[N_INPUTS];
    bool have[N_INPUTS];
} inputs;

static void inputs_free(inputs *in) {
    for (int i = 0; i < N_INPUTS; i++)
        if (in->have[i]) bv_aligned_free(in->t[i].data);
    memset(in, 0, sizeof *in);
}

static bv_status inputs_read(inputs *in, const char *path) {
    memset(in, 0, sizeof *in);
    bv_st_file f;
    bv_status st = bv_st_open(&f, path);
    if (st) return st;
    for (int i = 0; i < f.n && !st; i++) {
        const bv_st_entry *e = &f.entries[i];
        int k = 0;
        while (k < N_INPUTS && strcmp(k_inputs[k].name, e->name)) k++;
        if (k == N_INPUTS) {
            st = bv_error_set(BV_ERR_FORMAT,
                              "%s: unknown tensor '%.200s' (expected input_ids, attention_mask, pixel_values, proprio, "
                              "action_mask, actions, labels)",
                              path, e->name);
            break;
        }
        if (e->dtype != k_inputs[k].dt) {
            st = bv_error_set(BV_ERR_SHAPE, "%s: tensor '%s': expected dtype %s, found %s", path, e->name,
                              bv_dtype_name(k_inputs[k].dt), bv_dtype_name(e->dtype));
            break;
        }
        int64_t n = 1;
        for (int d = 0; d < e->ndim; d++) n *= e->shape[d];
        /* n is bounded by the file's size (bv_st_open checked the byte ranges), not by the machine */
        size_t bytes = (size_t)(n ? n : 1) * bv_dtype_size(e->dtype);
        void *buf = bv_aligned_alloc_try(bytes);
        if (!buf) {
            st = bv_error_set(BV_ERR_NOMEM, "%s: tensor '%s': cannot allocate %zu bytes", path, e->name, bytes);
            break;
        }
        st = bv_st_read(&f, e->name, e->dtype, e->ndim, e->shape, n, buf);
        in->t[k] = bv_tensor_make(buf, e->dtype, e->ndim, e->shape);
        in->have[k] = true;
    }
    bv_st_close(&f);
    if (st) inputs_free(in);
    return st;
}

static const bv_tensor *get(const inputs *in, const char *name) {
    for (int k = 0; k < N_INPUTS; k++)
        if (!strcmp(k_inputs[k].name, name)) return in->have[k] ? &in->t[k] : NULL;
    return NULL;
}

/* ---- comparison ---- */

typedef struct {
    char *name;
    bv_tensor t; /* F32 contiguous */
} out_item;

/* ref: the reference file, opened (and its header validated) before the run */
static bv_status compare(const bv_harness_opts *o, const bv_st_file *ref, const out_item *outs, int n,
                         bv_harness_result *res) {
    bv_status st = BV_OK;
    double rtol = o->rtol > 0 ? o->rtol : BV_HARNESS_RTOL, grtol = o->grad_rtol > 0 ? o->grad_rtol : BV_HARNESS_GRAD_RTOL;
    FILE *log = o->log;
    if (log)
        fprintf(log, "comparison with %s (error ||got - want|| / (||want|| + atol/tol*sqrt(n)), atol %.0e):\n",
                o->compare, o->atol > 0 ? o->atol : BV_HARNESS_ATOL);
    for (int i = 0; i < ref->n; i++) {
        const bv_st_entry *e = &ref->entries[i];
        bool is_grad = strncmp(e->name, "grad.", 5) == 0;
        double tol = is_grad ? grtol : rtol;
        res->n_compared++;
        int k = 0;
        while (k < n && strcmp(outs[k].name, e->name)) k++;
        char s1[128], s2[128];
        if (k == n) {
            res->n_mismatch++;
            if (log) fprintf(log, "  MISSING  %s: in the reference but not among the outputs\n", e->name);
            continue;
        }
        const bv_tensor *g = &outs[k].t;
        int64_t nel = bv_tensor_numel(g), en = 1;
        for (int d = 0; d < e->ndim; d++) en *= e->shape[d];
        bool same = e->ndim == g->ndim;
        for (int d = 0; same && d < e->ndim; d++) same = e->shape[d] == g->shape[d];
        if (!same) {
            res->n_mismatch++;
            bv_tensor et = bv_tensor_make(NULL, e->dtype, e->ndim, e->shape);
            if (log)
                fprintf(log, "  SHAPE    %s: output %s, reference %s\n", e->name, bv_tensor_shape_str(g, s1, sizeof s1),
                        bv_tensor_shape_str(&et, s2, sizeof s2));
            continue;
        }
        double *want = malloc((size_t)(en ? en : 1) * sizeof *want);
        if (!want) {
            st = bv_error_set(BV_ERR_NOMEM, "%s: tensor '%s': cannot allocate %zu bytes to compare it", o->compare,
                              e->name, (size_t)(en ? en : 1) * sizeof *want);
            break;
        }
        if ((st = bv_st_read(ref, e->name, BV_DTYPE_F64, e->ndim, e->shape, en, want))) {
            free(want);
            break;
        }
        const float *got = bv_tensor_ptr(g);
        double dn = 0, wn = 0, worst = -1;
        int64_t wi = 0;
        for (int64_t j = 0; j < nel; j++) {
            double d = (double)got[j] - want[j];
            dn += d * d, wn += want[j] * want[j];
            if (!(fabs(d) <= worst)) worst = fabs(d), wi = j; /* NaN sticks */
        }
        /* pass iff ||got - want|| <= tol*||want|| + atol*sqrt(n), reported as err <= tol */
        double atol = o->atol > 0 ? o->atol : BV_HARNESS_ATOL;
        double err = sqrt(dn) / (sqrt(wn) + atol / tol * sqrt((double)nel));
        if (!(err <= tol)) res->n_mismatch++;
        if (is_grad)
            res->worst_grad = BV_MAX(res->worst_grad, err);
        else
            res->worst_out = BV_MAX(res->worst_out, err);
        if (log && (!(err <= tol) || !is_grad))
            fprintf(log, "  %-8s %s: %.2e (tol %.0e)%s; largest difference at flat index %lld: got %.9g, want %.9g\n",
                    err <= tol ? "ok" : "MISMATCH", e->name, err, tol, wn > 0 ? "" : " [reference all zero]",
                    (long long)wi, nel ? (double)got[wi] : 0.0, nel ? want[wi] : 0.0);
        free(want);
    }
    if (log && !st)
        fprintf(log, "  %d tensors compared, %d outside tolerance; worst output %.2e, worst gradient %.2e\n",
                res->n_compared, res->n_mismatch, res->worst_out, res->worst_grad);
    return st;
}

/* ---- run ---- */

bv_status bv_harness_run(const bv_harness_opts *o, bv_harness_result *res) {
    memset(res, 0, sizeof *res);
    bv_vla_config cfg;
    bv_status st = bv_config_load(o->config, false, &cfg);
    if (st) return st;
    /* the reference is opened (its header validated) before the run, so a bad one fails at once */
    bv_st_file ref;
    memset(&ref, 0, sizeof ref);
    if (o->compare && (st = bv_st_open(&ref, o->compare))) return st;
    inputs in;
    if ((st = inputs_read(&in, o->inputs))) {
        bv_st_close(&ref);
        return st;
    }
    bv_vla_batch b = {get(&in, "input_ids"), get(&in, "attention_mask"), get(&in, "pixel_values"), get(&in, "proprio"),
                      get(&in, "action_mask"), get(&in, "actions"),      get(&in, "labels")};

    /* LM mode builds the vision-language model plus the proprio projector and action head when the
     * checkpoint has them (an action checkpoint), so every parameter of the file gets a gradient */
    unsigned parts = BV_VLA_ALL;
    if (o->mode == BV_VLA_MODE_LM) {
        bool has_proprio = false, has_head = false;
        if ((st = bv_weights_has_prefix(o->weights, NULL, "proprio_projector.", &has_proprio)) ||
            (st = bv_weights_has_prefix(o->weights, NULL, "action_head.", &has_head))) {
            inputs_free(&in);
            bv_st_close(&ref);
            return st;
        }
        parts = BV_VLA_VLM | (has_proprio || b.proprio ? BV_VLA_PROPRIO : 0) | (has_head ? BV_VLA_ACTION_HEAD : 0);
    }
    bv_model model;
    memset(&model, 0, sizeof model);
    bv_graph g;
    memset(&g, 0, sizeof g);
    out_item *outs = NULL;
    int n_out = 0;
    bv_weights_report rep;
    memset(&rep, 0, sizeof rep);
    /* the inputs before the weights: a bad input file is reported before minutes of loading */
    if ((st = bv_vla_batch_check_config(&cfg, parts, &b, o->mode, o->inputs))) goto done;
    if (o->backward && !(o->mode == BV_VLA_MODE_ACTION ? b.actions : b.labels)) {
        st = bv_error_set(BV_ERR_ARG, "%s: --backward differentiates the loss, which needs '%s' in the inputs",
                          o->inputs, o->mode == BV_VLA_MODE_ACTION ? "actions" : "labels");
        goto done;
    }
    /* the forward's memory is planned with the model's, before anything large is allocated; every
     * parameter trains with --backward, none (no gradient buffers) without */
    bv_model_spec spec = {.config = o->config,
                          .cfg = &cfg,
                          .parts = parts,
                          .purpose = o->backward ? BV_MODEL_TRAIN : BV_MODEL_INFER,
                          .seed = 0,
                          .weights = o->weights,
                          .load = {.allow_missing = o->allow_missing},
                          .report = &rep,
                          .reserve_bytes = bv_vla_plan_forward(&cfg, &b, o->mode, o->backward)};
    st = bv_model_build(&model, &spec);
    if (o->log && !st && rep.n_missing)
        fprintf(o->log, "warning: %lld parameters missing from %s keep their random initialisation:\n%s",
                (long long)rep.n_missing, o->weights, rep.details);
    if (o->log && st && rep.details && strlen(rep.details) > 1500) /* the error message is truncated */
        fprintf(o->log, "all problems with %s:\n%s", o->weights, rep.details);
    if (st) goto done;
    bv_params *p = &model.params;

    bv_graph_init(&g, (size_t)64 << 20);
    double t0 = bv_time_now();
    bv_vla_out y = bv_vla_forward(&g, p, &model.vla, &b, o->mode);
    res->forward_s = bv_time_now() - t0;
    if (o->backward) {
        t0 = bv_time_now();
        bv_graph_backward(&g, y.loss);
        res->backward_s = bv_time_now() - t0;
    }
    if (o->log) {
        fprintf(o->log, "forward %.3f s", res->forward_s);
        if (o->backward) fprintf(o->log, ", backward %.3f s", res->backward_s);
        fprintf(o->log, ", %zu MiB of activations\n", bv_arena_high_water(&g.arena) >> 20);
    }

    outs = bv_xcalloc((size_t)p->n + 8, sizeof *outs);
    struct {
        const char *name;
        bv_var *v;
    } named[] = {{"actions_pred", y.actions_pred}, {"logits", y.logits}, {"loss", y.loss},
                 {"last_hidden_state", y.last_hidden_state}, {"image_features", y.image_features}};
    for (size_t i = 0; i < BV_ARRAY_LEN(named); i++)
        if (named[i].v) outs[n_out++] = (out_item){bv_xstrdup(named[i].name), named[i].v->val};
    if (o->backward)
        for (int i = 0; i < p->n; i++) {
            size_t len = strlen(p->items[i].name) + 6;
            char *nm = bv_xmalloc(len);
            snprintf(nm, len, "grad.%s", p->items[i].name);
            outs[n_out++] = (out_item){nm, bv_tensor_make(bv_params_grad(p, i), BV_DTYPE_F32, p->items[i].ndim,
                                                          p->items[i].shape)};
        }
    res->n_outputs = n_out;
    if (o->out) {
        bv_st_item *items = bv_xcalloc((size_t)n_out, sizeof *items);
        for (int i = 0; i < n_out; i++) items[i] = (bv_st_item){outs[i].name, outs[i].t};
        st = bv_st_save(o->out, n_out, items, 0, NULL);
        free(items);
        if (st) goto done;
    }
    if (o->compare) st = compare(o, &ref, outs, n_out, res);
done:
    bv_st_close(&ref);
    for (int i = 0; i < n_out; i++) free(outs[i].name);
    free(outs);
    if (g.tape) bv_graph_free(&g);
    bv_weights_report_free(&rep);
    bv_model_free(&model);
    inputs_free(&in);
    return st;
}
