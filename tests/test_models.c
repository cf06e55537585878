/* Tests of the models (models/): parity with the PyTorch reference of tests/gen/gen_models.py
 * for the SigLIP tower alone (quantized and full precision, every layer's output and every
 * parameter gradient), the BitNet LLM alone (causal and bidirectional, tied head), and the whole
 * VLA in action and LM mode through the harness that `bitvla forward` runs (outputs, loss and every
 * parameter gradient); thread-count agreement; the harness's input validation and comparison; the
 * full-size parameter count.
 *
 * Parity measure (norm-relative with an RMS floor, the harness's own definition, re-implemented
 * here): ||got - want|| <= tol*||want|| + atol*sqrt(n) over each tensor, tol 1e-4 for outputs and
 * 1e-3 for gradients. The floor matters only where the true value is 0 (SigLIP's k_proj bias
 * gradient: softmax ignores a shift shared by every key), where both sides hold rounding noise
 * whose size depends on the order of the sums, so on the BLAS kernels and thread count. For
 * gradients it is the rounding bound of the sums that make them: atol = 2 K 2^-24 G, K the rows
 * summed (batch x tokens), G the largest reference gradient of the case. Outputs have no true
 * zeros; their floor is 1e-6. The fixtures were drawn so that
 * no BitLinear rounding lies near a boundary (see the generator), so fp32 differences cannot flip a
 * quantized value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/build.h"
#include "models/harness.h"
#include "tests/util/testutil.h"

#define OUT_TOL 1e-4
#define GRAD_TOL 1e-3
#define OUT_ATOL 1e-6

static char *fixture(const char *name) { return bv_xstrdup(bv_fixture_path(name)); }

/* got (n floats) against want (n doubles); fails naming the worst element */
static void check_normrel(const char *what, const float *got, const double *want, int64_t n, double tol,
                          double atol) {
    double dn = 0, wn = 0, worst = -1;
    int64_t wi = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        dn += d * d, wn += want[i] * want[i];
        if (!(fabs(d) <= worst)) worst = fabs(d), wi = i;
    }
    double bound = tol * sqrt(wn) + atol * sqrt((double)n);
    if (!(sqrt(dn) <= bound)) {
        print_error("%s: ||got - want|| = %.3g > tol*||want|| + atol*sqrt(n) = %.3g (norm-relative %.3g, tol %.0e); "
                    "largest difference at flat index %lld: got %.9g want %.9g; %lld elements\n",
                    what, sqrt(dn), bound, wn > 0 ? sqrt(dn / wn) : sqrt(dn), tol, (long long)wi,
                    n ? (double)got[wi] : 0.0, n ? want[wi] : 0.0, (long long)n);
        fail_msg("%s: differs from the PyTorch reference", what);
    }
}

/* Compare a float buffer shaped `shape` with fixture tensor `name` (same shape required). */
static void expect_fx_atol(bv_fx *fx, const char *name, const float *got, const bv_tensor *shape, double tol,
                           double atol) {
    bv_tensor w = bv_fx_get(fx, name, BV_DTYPE_F64);
    char a[96], b[96];
    if (!bv_tensor_same_shape(&w, shape))
        fail_msg("%s: shape %s, reference %s", name, bv_tensor_shape_str(shape, a, sizeof a),
                 bv_tensor_shape_str(&w, b, sizeof b));
    check_normrel(name, got, w.data, bv_tensor_numel(&w), tol, atol);
}

static void expect_fx(bv_fx *fx, const char *name, const float *got, const bv_tensor *shape, double tol) {
    expect_fx_atol(fx, name, got, shape, tol, OUT_ATOL);
}

/* Every parameter gradient of p against fixture tensors "<prefix>grad.<file name>", where the file
 * name is the parameter name without `strip`; `rows` = batch x tokens (the K of the floor). */
static void expect_grads(bv_fx *fx, const bv_params *p, const char *prefix, const char *strip, int64_t rows) {
    char key[512];
    double gmax = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < p->n; i++) {
            const char *nm = p->items[i].name;
            BV_ASSERT(strncmp(nm, strip, strlen(strip)) == 0, "parameter %s lacks prefix %s", nm, strip);
            snprintf(key, sizeof key, "%sgrad.%s", prefix, nm + strlen(strip));
            bv_tensor shape = bv_params_value(p, i);
            if (pass == 0) {
                bv_tensor w = bv_fx_get(fx, key, BV_DTYPE_F64);
                for (int64_t j = 0; j < bv_tensor_numel(&w); j++) gmax = fmax(gmax, fabs(((double *)w.data)[j]));
            } else {
                expect_fx_atol(fx, key, bv_params_grad(p, i), &shape, GRAD_TOL, 2.0 * (double)rows * 0x1p-24 * gmax);
            }
        }
}

/* sum(x * d) with d a fixture tensor (the gradient seed of the reference) */
static bv_var *seeded(bv_fx *fx, bv_graph *g, bv_var *x, const char *dname) {
    bv_tensor d = bv_fx_get(fx, dname, BV_DTYPE_F32);
    return bv_op_sum(g, bv_op_mul(g, x, bv_var_leaf(g, &d, BV_DTYPE_F32, false)));
}

/* ---- the SigLIP tower alone ---- */

/* tests/gen/gen_models.py SIGLIP and SIGLIP_CASES */
static bv_vision_config siglip_cfg(int wbits, int abits) {
    return (bv_vision_config){24, 40, 3, 2, 4, 8, 3, 1e-6, BV_ACT_GELU_TANH, wbits, abits};
}

static void run_siglip_case(const char *cs, int wbits, int abits, int vfl) {
    bv_vision_config vc = siglip_cfg(wbits, abits);
    bv_vla_config c; /* the tower alone: only vision_config is used (and validated) */
    bv_config_defaults(&c);
    c.vision = vc;
    c.vision_feature_layer = vfl;
    char *wpath = fixture("models_siglip_weights.safetensors");
    bv_weights_report rep;
    bv_model model;
    bv_model_spec spec = {.config = "siglip test config", .cfg = &c, .parts = BV_VLA_VISION, .purpose = BV_MODEL_TRAIN,
                          .weights = wpath, .report = &rep};
    if (bv_model_build(&model, &spec) != BV_OK) fail_msg("%s", bv_error_msg());
    bv_params *p = &model.params;
    bv_siglip *m = &model.vla.vision;
    assert_int_equal(rep.layout, BV_WEIGHTS_SIGLIP);
    assert_int_equal(rep.n_loaded, p->n);
    bv_weights_report_free(&rep);

    bv_fx fx;
    bv_fx_open(&fx, "models_siglip_ref.safetensors");
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_tensor pix = bv_fx_get(&fx, "pixel_values", BV_DTYPE_F32);
    bv_var *layers[8];
    bv_var *feat = bv_siglip_forward(&g, p, m, bv_var_leaf(&g, &pix, BV_DTYPE_F32, false), layers);
    assert_int_equal(m->n_run, bv_siglip_layers_run(&vc, vfl));
    char key[64];
    bv_var *loss = NULL;
    for (int l = 0; l < m->n_run; l++) {
        snprintf(key, sizeof key, "%s.layer%d", cs, l);
        expect_fx(&fx, key, bv_var_f32(layers[l]), &layers[l]->val, OUT_TOL);
        snprintf(key, sizeof key, "dout%d", l);
        bv_var *s = seeded(&fx, &g, layers[l], key);
        loss = loss ? bv_op_add(&g, loss, s) : s;
    }
    snprintf(key, sizeof key, "%s.features", cs);
    expect_fx(&fx, key, bv_var_f32(feat), &feat->val, OUT_TOL);
    assert_ptr_equal(feat, layers[m->n_run - 1]);
    bv_graph_backward(&g, loss);
    snprintf(key, sizeof key, "%s.", cs);
    expect_grads(&fx, p, key, "vision_tower.", feat->val.shape[0] * feat->val.shape[1]);
    bv_graph_free(&g);
    bv_fx_close(&fx);
    bv_model_free(&model);
    free(wpath);
}

static void test_siglip_quantized(void **state) {
    (void)state;
    run_siglip_case("quant", 1, 8, -2); /* W1.58 A8, features of the second of three layers */
}

static void test_siglip_full_precision(void **state) {
    (void)state;
    run_siglip_case("fp", 32, 32, -1);
}

/* ---- the BitNet LLM alone ---- */

/* tests/gen/gen_models.py BITNET */
static bv_text_config bitnet_cfg(void) {
    return (bv_text_config){16, 24, 2, 2, 1, 10000.0, 1e-5, 48, true, 64, BV_ACT_RELU2};
}

static void run_bitnet_case(const char *cs, bool causal) {
    bv_vla_config c; /* the LLM alone: only text_config is used (and validated) */
    bv_config_defaults(&c);
    c.text = bitnet_cfg();
    char *wpath = fixture("models_bitnet_weights.safetensors");
    bv_weights_report rep;
    bv_model model;
    bv_model_spec spec = {.config = "bitnet test config", .cfg = &c, .parts = BV_VLA_LLM, .purpose = BV_MODEL_TRAIN,
                          .weights = wpath, .report = &rep};
    if (bv_model_build(&model, &spec) != BV_OK) fail_msg("%s", bv_error_msg());
    bv_params *p = &model.params;
    bv_bitnet *m = &model.vla.llm;
    assert_int_equal(m->lm_head, -1); /* tied */
    assert_int_equal(rep.layout, BV_WEIGHTS_BITNET);
    assert_int_equal(rep.n_loaded, p->n);
    bv_weights_report_free(&rep);

    bv_fx fx;
    bv_fx_open(&fx, "models_bitnet_ref.safetensors");
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_tensor ids = bv_fx_get(&fx, "input_ids", BV_DTYPE_I64);
    bv_tensor mask = bv_fx_get(&fx, "attention_mask", BV_DTYPE_U8);
    bv_var *h = bv_bitnet_forward(&g, p, m, bv_bitnet_embed(&g, p, m, &ids), mask.data, causal, -1);
    bv_var *lg = bv_bitnet_logits(&g, p, m, h);
    char key[64];
    snprintf(key, sizeof key, "%s.hidden", cs);
    expect_fx(&fx, key, bv_var_f32(h), &h->val, OUT_TOL);
    snprintf(key, sizeof key, "%s.logits", cs);
    expect_fx(&fx, key, bv_var_f32(lg), &lg->val, OUT_TOL);
    bv_graph_backward(&g, seeded(&fx, &g, lg, "dlogits"));
    snprintf(key, sizeof key, "%s.", cs);
    expect_grads(&fx, p, key, "language_model.", ids.shape[0] * ids.shape[1]);
    bv_graph_free(&g);
    bv_fx_close(&fx);
    bv_model_free(&model);
    free(wpath);
}

static void test_bitnet_causal(void **state) {
    (void)state;
    run_bitnet_case("causal", true);
}

static void test_bitnet_bidirectional(void **state) {
    (void)state;
    run_bitnet_case("bidir", false);
}

static void test_position_ids(void **state) {
    (void)state;
    const uint8_t mask[2 * 5] = {1, 1, 1, 0, 0, 0, 0, 1, 1, 1}; /* right and left padding */
    int64_t pos[10];
    bv_bitnet_position_ids(pos, mask, 2, 5);
    const int64_t want[10] = {0, 1, 2, 2, 2, 0, 0, 0, 1, 2};
    for (int i = 0; i < 10; i++) assert_int_equal(pos[i], want[i]);
}

/* ---- the whole VLA through the harness ---- */

static int setup_tmp(void **state) { return bv_test_dir_make("models"); }

static int teardown_tmp(void **state) { return bv_test_dir_remove(); }

/* Run the harness on fixture models_vla_<mode>_{in,ref}, write to a temp file and compare every
 * reference tensor with this file's own check. */
static void run_vla_case(const char *mode_name, bv_vla_mode mode, int threads, const char *out_name) {
    char in[64], ref[64];
    snprintf(in, sizeof in, "models_vla_%s_in.safetensors", mode_name);
    snprintf(ref, sizeof ref, "models_vla_%s_ref.safetensors", mode_name);
    char *cfg = fixture("models_vla_config.json"), *w = fixture("models_vla_weights.safetensors"), *inp = fixture(in);
    const char *out = bv_test_path(out_name);
    bv_set_num_threads(threads);
    bv_harness_opts o = {.config = cfg, .weights = w, .inputs = inp, .out = out, .mode = mode, .backward = true};
    bv_harness_result r;
    if (bv_harness_run(&o, &r) != BV_OK) fail_msg("harness: %s", bv_error_msg());
    bv_set_num_threads(2);

    bv_fx ref_fx;
    bv_fx_open(&ref_fx, ref);
    bv_st_file got;
    if (bv_st_open(&got, out) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(got.n, ref_fx.f.n); /* every output and every parameter's gradient, nothing else */
    assert_int_equal(r.n_outputs, got.n);
    for (int i = 0; i < ref_fx.f.n; i++) {
        const bv_st_entry *e = &ref_fx.f.entries[i];
        int j = bv_st_find(&got, e->name);
        if (j < 0) fail_msg("harness output lacks '%s'", e->name);
        const bv_st_entry *ge = &got.entries[j];
        assert_int_equal(ge->dtype, BV_DTYPE_F32);
        int64_t n = 1;
        for (int d = 0; d < ge->ndim; d++) n *= ge->shape[d];
        float *gv = bv_xmalloc((size_t)(n ? n : 1) * sizeof *gv);
        if (bv_st_read(&got, e->name, BV_DTYPE_F32, e->ndim, e->shape, n, gv) != BV_OK)
            fail_msg("%s", bv_error_msg());
        bv_tensor shape = bv_tensor_make(gv, BV_DTYPE_F32, ge->ndim, ge->shape);
        expect_fx(&ref_fx, e->name, gv, &shape, strncmp(e->name, "grad.", 5) ? OUT_TOL : GRAD_TOL);
        free(gv);
    }
    bv_st_close(&got);
    bv_fx_close(&ref_fx);
    free(cfg), free(w), free(inp);
}

static void test_vla_action(void **state) {
    (void)state;
    run_vla_case("action", BV_VLA_MODE_ACTION, 2, "action_out.safetensors");
}

static void test_vla_lm(void **state) {
    (void)state;
    run_vla_case("lm", BV_VLA_MODE_LM, 2, "lm_out.safetensors");
}

/* One and two threads give the same outputs and gradients (1e-6 relative). */
static void test_vla_threads_agree(void **state) {
    (void)state;
    run_vla_case("action", BV_VLA_MODE_ACTION, 1, "action_t1.safetensors");
    run_vla_case("action", BV_VLA_MODE_ACTION, 2, "action_t2.safetensors");
    bv_st_file a, b;
    if (bv_st_open(&a, bv_test_path("action_t1.safetensors")) || bv_st_open(&b, bv_test_path("action_t2.safetensors")))
        fail_msg("%s", bv_error_msg());
    assert_int_equal(a.n, b.n);
    for (int i = 0; i < a.n; i++) {
        const bv_st_entry *e = &a.entries[i];
        int64_t n = (int64_t)(e->end - e->begin) / 4;
        float *x = bv_xmalloc((size_t)n * 4 + 4), *y = bv_xmalloc((size_t)n * 4 + 4);
        if (bv_st_read(&a, e->name, BV_DTYPE_F32, -1, NULL, n, x) || bv_st_read(&b, e->name, BV_DTYPE_F32, -1, NULL, n, y))
            fail_msg("%s", bv_error_msg());
        char what[300];
        snprintf(what, sizeof what, "%s (1 vs 2 threads)", e->name);
        bv_check_close_f32(what, y, x, n, 1e-9, 1e-6);
        free(x), free(y);
    }
    bv_st_close(&a);
    bv_st_close(&b);
}

/* The harness's own comparison passes on the reference and catches a perturbed gradient. */
static void test_harness_compare(void **state) {
    (void)state;
    char *cfg = fixture("models_vla_config.json"), *w = fixture("models_vla_weights.safetensors"),
         *inp = fixture("models_vla_action_in.safetensors"), *ref = fixture("models_vla_action_ref.safetensors");
    bv_harness_opts o = {.config = cfg, .weights = w, .inputs = inp, .compare = ref, .backward = true};
    bv_harness_result r;
    if (bv_harness_run(&o, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.n_mismatch, 0);
    assert_true(r.n_compared > 80);
    assert_true(r.worst_out < OUT_TOL && r.worst_grad < GRAD_TOL);

    /* a copy of the reference with one gradient off by 1% */
    bv_st_file f;
    if (bv_st_open(&f, ref) != BV_OK) fail_msg("%s", bv_error_msg());
    bv_st_item *items = bv_xcalloc((size_t)f.n, sizeof *items);
    int target = bv_st_find(&f, "grad.language_model.model.layers.1.mlp.down_proj.weight");
    assert_true(target >= 0);
    for (int i = 0; i < f.n; i++) {
        const bv_st_entry *e = &f.entries[i];
        bv_tensor t = bv_tensor_make(NULL, BV_DTYPE_F32, e->ndim, e->shape);
        t.data = bv_xmalloc(bv_tensor_nbytes(&t) + 4);
        if (bv_st_read(&f, e->name, BV_DTYPE_F32, e->ndim, e->shape, 0, t.data)) fail_msg("%s", bv_error_msg());
        if (i == target)
            for (int64_t k = 0; k < bv_tensor_numel(&t); k++) ((float *)t.data)[k] *= 1.01f;
        items[i] = (bv_st_item){e->name, t};
    }
    const char *bad = bv_test_path("bad_ref.safetensors");
    if (bv_st_save(bad, f.n, items, 0, NULL) != BV_OK) fail_msg("%s", bv_error_msg());
    for (int i = 0; i < f.n; i++) free(items[i].t.data);
    free(items);
    bv_st_close(&f);
    o.compare = bad;
    if (bv_harness_run(&o, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.n_mismatch, 1);
    free(cfg), free(w), free(inp), free(ref);
}

/* ---- input validation ---- */

typedef struct {
    const char *name;
    bv_tensor t;
} named;

/* Write the action fixture's inputs with `fn` applied, run the harness, expect status `want` and a
 * message with the file name and every needle. */
typedef void (*mutator)(named *ts, int *n);

static void expect_input_error(const char *what, mutator fn, bv_status want, const char *n1, const char *n2) {
    bv_fx fx;
    bv_fx_open(&fx, "models_vla_action_in.safetensors");
    named ts[16];
    int n = 0;
    static const char *names[] = {"input_ids", "attention_mask", "pixel_values", "proprio", "action_mask", "actions"};
    static const bv_dtype dts[] = {BV_DTYPE_I64, BV_DTYPE_U8, BV_DTYPE_F32, BV_DTYPE_F32, BV_DTYPE_U8, BV_DTYPE_F32};
    for (int i = 0; i < 6; i++) ts[n++] = (named){names[i], bv_fx_get(&fx, names[i], dts[i])};
    fn(ts, &n);
    bv_st_item items[16];
    for (int i = 0; i < n; i++) items[i] = (bv_st_item){ts[i].name, ts[i].t};
    const char *path = bv_test_path("bad_inputs.safetensors");
    if (bv_st_save(path, n, items, 0, NULL) != BV_OK) fail_msg("%s", bv_error_msg());
    char *cfg = fixture("models_vla_config.json"), *w = fixture("models_vla_weights.safetensors");
    bv_harness_opts o = {.config = cfg, .weights = w, .inputs = path, .out = bv_test_path("never.safetensors")};
    bv_harness_result r;
    bv_status st = bv_harness_run(&o, &r);
    const char *msg = bv_error_msg();
    if (st != want || !strstr(msg, path) || !strstr(msg, n1) || (n2 && !strstr(msg, n2)))
        fail_msg("%s: expected status %d with a message naming %s, '%s' and '%s'; got %d: %s", what, want, path, n1,
                 n2 ? n2 : "", st, msg);
    assert_int_equal(access(o.out, F_OK), -1); /* nothing written */
    free(cfg), free(w);
    bv_fx_close(&fx);
}

static int find_named(named *ts, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(ts[i].name, name)) return i;
    fail_msg("no %s", name);
    return -1;
}

static void mut_ids_i32(named *ts, int *n) {
    int i = find_named(ts, *n, "input_ids");
    static int32_t v[256];
    assert_true(bv_tensor_numel(&ts[i].t) <= 256);
    for (int64_t k = 0; k < bv_tensor_numel(&ts[i].t); k++) v[k] = (int32_t)((int64_t *)ts[i].t.data)[k];
    ts[i].t = bv_tensor_make(v, BV_DTYPE_I32, 2, ts[i].t.shape);
}
static void mut_one_action_less(named *ts, int *n) {
    uint8_t *a = ts[find_named(ts, *n, "action_mask")].t.data;
    int64_t T = ts[0].t.shape[1];
    for (int64_t t = T - 1; t >= 0; t--)
        if (a[T + t]) { /* row 1 */
            a[T + t] = 0;
            break;
        }
}
static void mut_image_token_lost(named *ts, int *n) {
    int64_t *ids = ts[find_named(ts, *n, "input_ids")].t.data;
    ids[3] = 5; /* row 0, an image token becomes text */
}
static void mut_no_proprio(named *ts, int *n) {
    int i = find_named(ts, *n, "proprio");
    ts[i] = ts[--*n];
}
static void mut_pixels_shape(named *ts, int *n) {
    int i = find_named(ts, *n, "pixel_values");
    int64_t sh[5] = {2, 2, 3, 4, 16}; /* same element count, wrong H, W */
    ts[i].t = bv_tensor_make(ts[i].t.data, BV_DTYPE_F32, 5, sh);
}
static void mut_unknown(named *ts, int *n) {
    ts[*n] = ts[0];
    ts[(*n)++].name = "input_idz";
}
static void mut_labels_in_action(named *ts, int *n) {
    ts[*n] = ts[find_named(ts, *n, "input_ids")];
    ts[(*n)++].name = "labels";
}
static void mut_id_out_of_vocab(named *ts, int *n) {
    ((int64_t *)ts[find_named(ts, *n, "input_ids")].t.data)[1 * ts[0].t.shape[1] + 12] = 48;
}
static void mut_mask_value(named *ts, int *n) { ((uint8_t *)ts[find_named(ts, *n, "attention_mask")].t.data)[4] = 2; }
static void mut_nan_pixel(named *ts, int *n) { ((float *)ts[find_named(ts, *n, "pixel_values")].t.data)[7] = NAN; }
static void mut_actions_shape(named *ts, int *n) {
    int i = find_named(ts, *n, "actions");
    int64_t sh[3] = {2, 3, 2};
    ts[i].t = bv_tensor_make(ts[i].t.data, BV_DTYPE_F32, 3, sh);
}

static void test_input_validation(void **state) {
    (void)state;
    expect_input_error("dtype", mut_ids_i32, BV_ERR_SHAPE, "'input_ids': expected dtype I64, found I32", NULL);
    expect_input_error("action count", mut_one_action_less, BV_ERR_SHAPE, "'action_mask' row 1: 5 action positions",
                       "expected num_actions_chunk*action_dim = 2*3 = 6");
    expect_input_error("image count", mut_image_token_lost, BV_ERR_SHAPE, "row 0: 7 image tokens",
                       "expected n_images*P = 2*4 = 8");
    expect_input_error("proprio", mut_no_proprio, BV_ERR_SHAPE, "missing tensor 'proprio'", NULL);
    expect_input_error("pixels", mut_pixels_shape, BV_ERR_SHAPE, "'pixel_values': expected shape [2, ?, 3, 8, 8]",
                       "found [2, 2, 3, 4, 16]");
    expect_input_error("unknown", mut_unknown, BV_ERR_FORMAT, "unknown tensor 'input_idz'", NULL);
    expect_input_error("labels", mut_labels_in_action, BV_ERR_SHAPE, "'labels' is for LM mode", NULL);
    expect_input_error("vocab", mut_id_out_of_vocab, BV_ERR_SHAPE, "id 48 at [1, 12] outside the vocabulary [0, 48)",
                       NULL);
    expect_input_error("mask", mut_mask_value, BV_ERR_SHAPE, "'attention_mask': value 2 at [0, 4]", NULL);
    expect_input_error("nan", mut_nan_pixel, BV_ERR_SHAPE, "'pixel_values': non-finite value", NULL);
    expect_input_error("actions", mut_actions_shape, BV_ERR_SHAPE, "'actions': expected shape [2, 2, 3]", NULL);
}

/* ---- frozen parts, tiny preset ---- */

/* A synthetic LM batch for a config: B rows of [BOS, image tokens, text...], right-padded. */
typedef struct {
    int64_t ids[2 * 40], labels[2 * 40];
    uint8_t mask[2 * 40];
    float *pix;
    bv_tensor t_ids, t_mask, t_pix, t_labels;
} lm_batch;

static void lm_batch_make(lm_batch *b, const bv_vla_config *c, bv_rng *r) {
    const int64_t B = 2, T = 40, P = bv_config_vision_patches(c);
    assert_true(1 + P + 4 <= T);
    for (int64_t i = 0; i < B; i++)
        for (int64_t t = 0; t < T; t++) {
            int64_t k = i * T + t, len = T - 3 * i;
            b->ids[k] = t == 0 ? 1 : t <= P ? c->image_token_index : (int64_t)(bv_rng_uniform(r) * 500);
            b->mask[k] = t < len;
            b->labels[k] = (t > P + 2 && t < len) ? b->ids[k] : -100;
        }
    int64_t n = B * 3 * c->vision.image_size * c->vision.image_size;
    b->pix = bv_test_rand_f32(r, n, -1, 1);
    int64_t ps[5] = {B, 1, 3, c->vision.image_size, c->vision.image_size};
    b->t_ids = bv_tensor_make2(b->ids, BV_DTYPE_I64, B, T);
    b->t_mask = bv_tensor_make2(b->mask, BV_DTYPE_U8, B, T);
    b->t_labels = bv_tensor_make2(b->labels, BV_DTYPE_I64, B, T);
    b->t_pix = bv_tensor_make(b->pix, BV_DTYPE_F32, 5, ps);
}

/* Stage III's situation: only the vision tower trains, yet the LM loss reaches it through the
 * frozen LLM and connector; frozen parts get no gradient storage. Also: the tiny preset runs. */
static void test_frozen_parts_pass_gradients(void **state) {
    (void)state;
    const char *freeze[] = {"language_model.", "multi_modal_projector.", NULL};
    bv_model model;
    bv_model_spec spec = {.config = "tiny", .parts = BV_VLA_VLM, .purpose = BV_MODEL_TRAIN, .freeze = freeze, .seed = 42};
    if (bv_model_build(&model, &spec) != BV_OK) fail_msg("%s", bv_error_msg());
    const bv_vla_config c = model.vla.cfg;
    bv_params *p = &model.params;
    bv_vla *m = &model.vla;
    size_t nv = 0;
    for (int i = 0; i < p->n; i++)
        if (!strncmp(p->items[i].name, "vision_tower.", 13)) nv += (size_t)p->items[i].numel;
    assert_int_equal(p->numel_trainable, nv);

    bv_rng r = {7};
    lm_batch lb;
    lm_batch_make(&lb, &c, &r);
    bv_vla_batch b = {.input_ids = &lb.t_ids, .attention_mask = &lb.t_mask, .pixel_values = &lb.t_pix,
                      .labels = &lb.t_labels};
    if (bv_vla_batch_check(m, &b, BV_VLA_MODE_LM, "batch") != BV_OK) fail_msg("%s", bv_error_msg());
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_vla_out y = bv_vla_forward(&g, p, m, &b, BV_VLA_MODE_LM);
    assert_non_null(y.loss);
    double loss = bv_var_f32(y.loss)[0];
    assert_true(isfinite(loss) && loss > 0);
    bv_graph_backward(&g, y.loss);
    for (int i = 0; i < p->n; i++) {
        const bv_param *q = &p->items[i];
        float *gr = bv_params_grad(p, i);
        if (!q->trainable) {
            assert_null(gr);
            continue;
        }
        double n2 = 0;
        for (int64_t k = 0; k < q->numel; k++) n2 += (double)gr[k] * gr[k];
        if (!isfinite(n2)) fail_msg("%s: non-finite gradient", q->name);
        /* everything that runs gets a gradient, except k_proj's bias, which softmax cancels */
        if (!(n2 > 0) && !strstr(q->name, "k_proj.bias")) fail_msg("%s: zero gradient through the frozen LLM", q->name);
    }
    bv_graph_free(&g);
    free(lb.pix);
    bv_model_free(&model);
}

/* ---- sizes ---- */

/* The full-size model registers exactly the released checkpoint's 3,147,925,664 parameters for
 * the vision-language part (spec section 1), without allocating them (no finalize). */
static void test_full_size_parameter_count(void **state) {
    (void)state;
    for (int pass = 0; pass < 2; pass++) {
        bv_model model;
        bv_model_spec spec = {.config = "bitvla-2b", .parts = pass ? BV_VLA_ALL : BV_VLA_VLM, .purpose = BV_MODEL_SHAPES};
        if (bv_model_build(&model, &spec) != BV_OK) fail_msg("%s", bv_error_msg());
        const bv_params *p = &model.params; /* names and shapes only: nothing allocated */
        int64_t total = 0;
        for (int i = 0; i < p->n; i++) total += p->items[i].numel;
        if (!pass) {
            assert_int_equal(total, 3147925664LL);
            assert_int_equal(p->n, 756);
        } else { /* + proprio projector (8*2560+2560 + 2560*2560+2560) + action head */
            int64_t D = 2560, I = 7 * D;
            int64_t extra = (8 * D + D + D * D + D) + (2 * I + I * D + D) + 2 * (2 * D + D * D + D) + 2 * D + 7 * D + 7;
            assert_int_equal(total, 3147925664LL + extra);
        }
        assert_true(bv_params_find(p, "vision_tower.vision_model.encoder.layers.25.mlp.fc2.bias") >= 0);
        assert_true(bv_params_find(p, "language_model.model.layers.29.self_attn.k_proj.weight") >= 0);
        int k = bv_params_find(p, "language_model.model.layers.0.self_attn.k_proj.weight");
        assert_int_equal(p->items[k].shape[0], 640); /* 5 KV heads of 128 */
        assert_true(bv_params_find(p, "language_model.lm_head.weight") >= 0);
        bv_model_free(&model);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_siglip_quantized),
        cmocka_unit_test(test_siglip_full_precision),
        cmocka_unit_test(test_bitnet_causal),
        cmocka_unit_test(test_bitnet_bidirectional),
        cmocka_unit_test(test_position_ids),
        cmocka_unit_test(test_vla_action),
        cmocka_unit_test(test_vla_lm),
        cmocka_unit_test(test_vla_threads_agree),
        cmocka_unit_test(test_harness_compare),
        cmocka_unit_test(test_input_validation),
        cmocka_unit_test(test_frozen_parts_pass_gradients),
        cmocka_unit_test(test_full_size_parameter_count),
    };
    return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
