/* Tests of models/build.h, the one way to build a model, and of the memory plans it relies on:
 *  - inference: no gradient storage, values those of the seed (equal to the step-by-step build);
 *  - training with frozen / trainable prefixes: exactly the selected parameters have gradients,
 *    laid out first; a prefix that matches nothing is an error;
 *  - weights loaded by HF names equal the file, the report is filled; with allow_missing the
 *    missing ones keep the seed's values;
 *  - errors (bad weights path, bad config, a plan larger than the machine): a clear message with
 *    the context "building model from config ...", *out zeroed, nothing leaked (ASan build);
 *  - shapes only (nothing allocated) at full size, and the towers alone from configs whose other
 *    section is empty;
 *  - bv_vla_plan_forward is an upper bound on the arena and scratch a forward (and backward) really
 *    takes, and not a loose one. */
#include <math.h>
#include <string.h>

#include "models/build.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("build"); }

static int teardown(void **state) { return bv_test_dir_remove(); }

static void expect_msg(bv_status st, bv_status want, const char *n1, const char *n2) {
    if (st != want || !strstr(bv_error_msg(), n1) || (n2 && !strstr(bv_error_msg(), n2)))
        fail_msg("expected status %d with '%s'%s%s; got %d: '%s'", want, n1, n2 ? " and " : "", n2 ? n2 : "", st,
                 bv_error_msg());
}

/* a model must be all zeros after a failed build */
static void expect_zeroed(const bv_model *m) {
    bv_model z;
    memset(&z, 0, sizeof z);
    assert_memory_equal(m, &z, sizeof z);
}

/* ---- inference ---- */

static void test_infer_no_gradients(void **state) {
    bv_model m;
    bv_model_spec s = {.config = "tiny", .purpose = BV_MODEL_INFER, .seed = 3};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(m.vla.parts, BV_VLA_ALL);
    assert_true(m.params.finalized);
    assert_null(m.params.grads);
    assert_int_equal(m.params.numel_trainable, 0);
    for (int i = 0; i < m.params.n; i++) assert_null(bv_params_grad(&m.params, i));
    assert_true(m.grads_bytes == 0 && m.values_bytes == 4.0 * (double)m.params.numel_total);
    /* an inference model runs without a graph: its BitLinear caches hold the 2-bit form alone */
    bv_vla_ternary *tl;
    int nt = bv_vla_ternary_list(&m.vla, &tl);
    assert_true(nt > 0 && tl);
    double tw = 0;
    for (int i = 0; i < nt; i++) tw += (double)m.params.items[tl[i].w].numel;
    free(tl);
    assert_true(tw >= 2 * (6 * 64 * 64 + 2 * 64 * 128)); /* at least the LLM's and tower's */
    assert_true(m.cache_bytes == 0.25 * tw);

    /* the same values as the sequence build replaces, step by step */
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    bv_params p;
    bv_params_init(&p);
    bv_vla v;
    assert_int_equal(bv_vla_init(&v, &c, BV_VLA_ALL, &p), BV_OK);
    bv_params_set_trainable(&p, "", false);
    assert_int_equal(bv_params_finalize(&p), BV_OK);
    bv_vla_init_weights(&v, &p, 3);
    assert_int_equal(p.n, m.params.n);
    assert_int_equal(p.numel_total, m.params.numel_total);
    assert_memory_equal(p.values, m.params.values, p.numel_total * sizeof(float));
    bv_vla_free(&v);
    bv_params_free(&p);
    bv_model_free(&m);
    expect_zeroed(&m);
}

/* ---- training: which parameters have gradients ---- */

static void expect_trainable(const bv_model *m, const char *const *train_prefixes) {
    size_t n_train = 0;
    for (int i = 0; i < m->params.n; i++) {
        const bv_param *q = &m->params.items[i];
        bool want = false;
        for (const char *const *t = train_prefixes; *t; t++) want |= !strncmp(q->name, *t, strlen(*t));
        if (q->trainable != want) fail_msg("%s: trainable %d, expected %d", q->name, q->trainable, want);
        float *g = bv_params_grad(&m->params, i);
        if (want) {
            assert_non_null(g);
            assert_true(q->offset + (size_t)q->numel <= m->params.numel_trainable); /* trainable ones first */
            n_train += (size_t)q->numel;
        } else {
            assert_null(g);
        }
    }
    assert_int_equal(n_train, m->params.numel_trainable);
    assert_true(m->grads_bytes == 4.0 * (double)n_train);
}

static void test_train_prefixes(void **state) {
    /* frozen prefixes: stage III-like, the LLM and connector frozen */
    const char *freeze[] = {"language_model.", "multi_modal_projector.", NULL};
    bv_model_spec s = {.config = "tiny", .purpose = BV_MODEL_TRAIN, .freeze = freeze, .seed = 1};
    bv_model m;
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    const char *want1[] = {"vision_tower.", "proprio_projector.", "action_head.", NULL};
    expect_trainable(&m, want1);
    bv_model_free(&m);

    /* trainable prefixes, then a frozen one inside them */
    const char *train[] = {"vision_tower.", "action_head.", NULL};
    const char *freeze2[] = {"vision_tower.vision_model.embeddings.", NULL};
    s = (bv_model_spec){.config = "tiny", .purpose = BV_MODEL_TRAIN, .train = train, .freeze = freeze2, .seed = 1};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    for (int i = 0; i < m.params.n; i++) {
        const char *nm = m.params.items[i].name;
        bool want = (!strncmp(nm, "vision_tower.", 13) && !strstr(nm, ".embeddings.")) || !strncmp(nm, "action_head.", 12);
        if (m.params.items[i].trainable != want) fail_msg("%s: trainable %d", nm, m.params.items[i].trainable);
    }
    bv_model_free(&m);

    /* everything */
    s = (bv_model_spec){.config = "tiny", .parts = BV_VLA_VLM, .purpose = BV_MODEL_TRAIN};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(m.params.numel_trainable, m.params.numel_total);
    assert_int_equal(bv_params_find(&m.params, "action_head.model.fc2.weight"), -1); /* not a VLM part */
    bv_model_free(&m);

    /* a typo is an error, not a silently different training run */
    const char *typo[] = {"langauge_model.", NULL};
    s = (bv_model_spec){.config = "tiny", .purpose = BV_MODEL_TRAIN, .freeze = typo};
    expect_msg(bv_model_build(&m, &s), BV_ERR_ARG,
               "building model from config tiny: frozen prefix 'langauge_model.' matches no parameter", NULL);
    expect_zeroed(&m);
    s = (bv_model_spec){.config = "tiny", .parts = BV_VLA_VLM, .purpose = BV_MODEL_TRAIN, .train = train};
    expect_msg(bv_model_build(&m, &s), BV_ERR_ARG, "trainable prefix 'action_head.' matches no parameter", NULL);
    expect_zeroed(&m);
}

/* ---- weights ---- */

static void test_weights_loaded(void **state) {
    /* a checkpoint of another seed */
    bv_model src;
    bv_model_spec s = {.config = "tiny", .seed = 11};
    if (bv_model_build(&src, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    const char *path = bv_test_path("tiny.safetensors");
    if (bv_weights_save(&src.params, path, BV_DTYPE_F32, 0) != BV_OK) fail_msg("%s", bv_error_msg());

    bv_weights_report rep;
    bv_model m;
    s = (bv_model_spec){.config = "tiny", .purpose = BV_MODEL_TRAIN, .seed = 2, .weights = path, .report = &rep};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(rep.n_loaded, m.params.n);
    assert_int_equal(rep.layout, BV_WEIGHTS_LLAVA);
    bv_weights_report_free(&rep);
    assert_int_equal(m.params.numel_total, src.params.numel_total);
    for (int i = 0; i < m.params.n; i++) {
        int j = bv_params_find(&src.params, m.params.items[i].name);
        assert_true(j >= 0);
        assert_memory_equal(bv_params_value(&m.params, i).data, bv_params_value(&src.params, j).data,
                            (size_t)m.params.items[i].numel * sizeof(float));
    }
    bv_model_free(&m);

    /* a VLM-only checkpoint into the whole model: missing action parts keep the seed's values */
    bv_model vlm;
    s = (bv_model_spec){.config = "tiny", .parts = BV_VLA_VLM, .seed = 11};
    if (bv_model_build(&vlm, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    const char *vpath = bv_test_path("tiny_vlm.safetensors");
    if (bv_weights_save(&vlm.params, vpath, BV_DTYPE_F32, 0) != BV_OK) fail_msg("%s", bv_error_msg());
    bv_model_free(&vlm);
    s = (bv_model_spec){.config = "tiny", .seed = 2, .weights = vpath, .report = &rep};
    expect_msg(bv_model_build(&m, &s), BV_ERR_FORMAT, "building model from config tiny: ", "missing");
    assert_true(rep.n_missing > 0); /* the report is there after a failed load */
    bv_weights_report_free(&rep);
    expect_zeroed(&m);
    s.load.allow_missing = true;
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_true(rep.n_missing > 0);
    bv_weights_report_free(&rep);
    bv_model seed2;
    bv_model_spec s2 = {.config = "tiny", .seed = 2};
    if (bv_model_build(&seed2, &s2) != BV_OK) fail_msg("%s", bv_error_msg());
    for (int i = 0; i < m.params.n; i++) {
        const char *nm = m.params.items[i].name;
        bool vlm_part = strncmp(nm, "proprio_projector.", 18) && strncmp(nm, "action_head.", 12);
        const bv_model *want = vlm_part ? &src : &seed2;
        int j = bv_params_find(&want->params, nm);
        assert_memory_equal(bv_params_value(&m.params, i).data, bv_params_value(&want->params, j).data,
                            (size_t)m.params.items[i].numel * sizeof(float));
    }
    bv_model_free(&seed2);
    bv_model_free(&m);
    bv_model_free(&src);
}

static void test_errors(void **state) {
    bv_model m;
    bv_weights_report rep;
    /* a weights path that does not exist */
    const char *nope = bv_test_path("no/such/ckpt.safetensors");
    bv_model_spec s = {.config = "tiny", .weights = nope, .report = &rep};
    expect_msg(bv_model_build(&m, &s), BV_ERR_IO, "building model from config tiny: ", nope);
    expect_zeroed(&m);
    bv_weights_report_free(&rep);
    /* a file that is not a checkpoint */
    const char *junk = bv_test_path("junk.safetensors");
    bv_test_write_bytes(junk, "not a safetensors file", 22);
    s.weights = junk;
    expect_msg(bv_model_build(&m, &s), BV_ERR_FORMAT, "building model from config tiny: ", junk);
    expect_zeroed(&m);
    /* configs: an unknown preset, a missing file, an invalid config given in memory */
    s = (bv_model_spec){.config = "tinny"};
    expect_msg(bv_model_build(&m, &s), BV_ERR_ARG, "building model: unknown config preset 'tinny'", NULL);
    s.config = bv_test_path("none.json");
    expect_msg(bv_model_build(&m, &s), BV_ERR_IO, "building model: ", "none.json: cannot open config");
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    c.text.num_attention_heads = 0;
    s = (bv_model_spec){.config = "tiny-edited", .cfg = &c};
    expect_msg(bv_model_build(&m, &s), BV_ERR_FORMAT,
               "building model: tiny-edited: 'text_config.num_attention_heads' must be in [1, 1024], got 0", NULL);
    expect_zeroed(&m);
}

/* A config that passes validation but needs about 1.1e15 bytes: refused before allocating, with
 * the bytes and the limit; likewise a batch whose activations would not fit (reserve_bytes). */
static void test_too_large(void **state) {
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    c.text.vocab_size = BV_CONFIG_MAX_VOCAB;
    c.text.hidden_size = BV_CONFIG_MAX_HIDDEN;
    if (bv_config_validate(&c, "huge")) fail_msg("%s", bv_error_msg());
    bv_model m;
    for (int purpose = BV_MODEL_INFER; purpose <= BV_MODEL_TRAIN; purpose++) {
        bv_model_spec s = {.config = "huge", .cfg = &c, .purpose = (bv_model_purpose)purpose};
        expect_msg(bv_model_build(&m, &s), BV_ERR_NOMEM, "building model from config huge: the model (",
                   "of physical memory");
        bv_test_expect_in(bv_error_msg(), purpose == BV_MODEL_INFER ? " 0 of gradients" : "of gradients");
        expect_zeroed(&m);
    }
    /* the same sizes, shapes only: fine (nothing allocated), and the plan says how much */
    bv_model_spec s = {.config = "huge", .cfg = &c, .purpose = BV_MODEL_SHAPES};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_null(m.params.values);
    assert_true(m.values_bytes > 1.1e15 && m.grads_bytes == m.values_bytes);
    bv_model_free(&m);
    /* a small model with a large reserve */
    s = (bv_model_spec){.config = "tiny", .reserve_bytes = 1e18};
    expect_msg(bv_model_build(&m, &s), BV_ERR_NOMEM, "1000000000000000000 reserved for activations",
               "of physical memory");
    expect_zeroed(&m);
}

/* ---- shapes only; pieces ---- */

static void test_shapes_full_size(void **state) {
    bv_model m;
    bv_model_spec s = {.config = "bitvla-2b", .purpose = BV_MODEL_SHAPES};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_false(m.params.finalized);
    assert_null(m.params.values);
    int64_t total = 0;
    for (int i = 0; i < m.params.n; i++) total += m.params.items[i].numel;
    assert_int_equal(total, 3213564071LL); /* docs/models.md */
    assert_true(m.values_bytes == 4.0 * 3213564071.0);
    assert_true(m.grads_bytes == m.values_bytes); /* every parameter would train */
    /* ternary weights: 26 tower layers (4 D^2 + 2 D M) + 30 LLM layers (2 D^2 + 2 D KV + 3 D F) */
    double tern = 26.0 * (4.0 * 1152 * 1152 + 2.0 * 1152 * 4304) +
                  30.0 * (2.0 * 2560 * 2560 + 2.0 * 2560 * 640 + 3.0 * 2560 * 6912);
    double per = m.cache_bytes / tern;
    assert_true(per == 5.0 || per == 5.25);
    bv_model_free(&m);
}

/* The pieces the benchmarks and the parity tests build: a tower alone and an LLM alone, from
 * configs whose other section is empty (only the section a part uses is validated). */
static void test_pieces(void **state) {
    bv_vla_config c;
    bv_config_defaults(&c);
    c.vision = (bv_vision_config){24, 40, 3, 2, 4, 8, 3, 1e-6, BV_ACT_GELU_TANH, 1, 8};
    c.vision_feature_layer = -2;
    bv_model m;
    bv_model_spec s = {.config = "tower", .cfg = &c, .parts = BV_VLA_VISION, .purpose = BV_MODEL_TRAIN, .seed = 1};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(m.vla.vision.n_run, 2);
    for (int i = 0; i < m.params.n; i++) assert_int_equal(strncmp(m.params.items[i].name, "vision_tower.", 13), 0);
    bv_model_free(&m);
    s.parts = BV_VLA_VISION | BV_VLA_CONNECTOR; /* the connector needs the text section too */
    expect_msg(bv_model_build(&m, &s), BV_ERR_FORMAT, "building model: tower: 'text_config.hidden_size'", NULL);

    /* one LLM layer with a one-row tied embedding that only the LLM sees (bench fullsize) */
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    memset(&c.vision, 0, sizeof c.vision);
    c.text.num_hidden_layers = 1;
    c.text.vocab_size = 1;
    c.text.tie_word_embeddings = true;
    const char *freeze[] = {"language_model.model.embed_tokens.", NULL};
    s = (bv_model_spec){.config = "llm", .cfg = &c, .parts = BV_VLA_LLM, .purpose = BV_MODEL_TRAIN, .freeze = freeze};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(m.vla.llm.lm_head, -1);
    assert_null(bv_params_grad(&m.params, m.vla.llm.embed));
    assert_int_equal(m.params.numel_total - m.params.numel_trainable, 64);
    bv_model_free(&m);
}

/* ---- the forward's memory plan ---- */

/* A synthetic batch for a config: B rows of [BOS, images, proprio, text, actions, EOS], padded. */
typedef struct {
    int64_t *ids, *labels;
    uint8_t *mask, *amask;
    float *pix, *prop, *act;
    bv_tensor t_ids, t_mask, t_pix, t_prop, t_amask, t_act, t_labels;
    bv_vla_batch b;
} batch;

static void batch_make(batch *x, const bv_vla_config *c, int64_t B, int64_t T, int64_t n_img, bv_vla_mode mode,
                       bool targets) {
    memset(x, 0, sizeof *x);
    const int64_t P = bv_config_vision_patches(c), A = bv_config_action_tokens(c), S = c->vision.image_size;
    assert_true(1 + n_img * P + 1 + 2 + A + 1 <= T);
    bv_rng r = {(uint64_t)(B * 1000 + T)};
    x->ids = calloc((size_t)(B * T), 8), x->labels = calloc((size_t)(B * T), 8);
    x->mask = calloc((size_t)(B * T), 1), x->amask = calloc((size_t)(B * T), 1);
    for (int64_t i = 0; i < B; i++) {
        int64_t len = T - i % 3, t = 0, *row = x->ids + i * T;
        row[t++] = 1;
        for (int64_t k = 0; k < n_img * P; k++) row[t++] = c->image_token_index;
        row[t++] = c->proprio_token_index;
        while (t < len - A - 1) row[t++] = 2 + (int64_t)(bv_rng_uniform(&r) * 100);
        for (int64_t k = 0; k < A; k++) x->amask[i * T + t] = mode == BV_VLA_MODE_ACTION, row[t++] = 300 + k % 200;
        row[t++] = 2;
        for (int64_t k = 0; k < T; k++) {
            x->mask[i * T + k] = k < len;
            x->labels[i * T + k] = k > n_img * P + 1 && k < len ? row[k] : -100;
        }
    }
    x->t_ids = bv_tensor_make2(x->ids, BV_DTYPE_I64, B, T);
    x->t_mask = bv_tensor_make2(x->mask, BV_DTYPE_U8, B, T);
    x->t_amask = bv_tensor_make2(x->amask, BV_DTYPE_U8, B, T);
    x->t_labels = bv_tensor_make2(x->labels, BV_DTYPE_I64, B, T);
    x->b.input_ids = &x->t_ids, x->b.attention_mask = &x->t_mask;
    if (n_img) {
        x->pix = bv_test_rand_f32(&r, B * n_img * 3 * S * S, -1, 1);
        int64_t ps[5] = {B, n_img, 3, S, S};
        x->t_pix = bv_tensor_make(x->pix, BV_DTYPE_F32, 5, ps);
        x->b.pixel_values = &x->t_pix;
    }
    x->prop = bv_test_rand_f32(&r, B * c->proprio_dim, -1, 1);
    x->t_prop = bv_tensor_make2(x->prop, BV_DTYPE_F32, B, c->proprio_dim);
    x->b.proprio = &x->t_prop;
    if (mode == BV_VLA_MODE_ACTION) {
        x->b.action_mask = &x->t_amask;
        x->act = bv_test_rand_f32(&r, B * c->num_actions_chunk * c->action_dim, -1, 1);
        int64_t as[3] = {B, c->num_actions_chunk, c->action_dim};
        x->t_act = bv_tensor_make(x->act, BV_DTYPE_F32, 3, as);
        if (targets) x->b.actions = &x->t_act;
    } else if (targets) {
        x->b.labels = &x->t_labels;
    }
}

static void batch_free(batch *x) {
    free(x->ids), free(x->labels), free(x->mask), free(x->amask), free(x->pix), free(x->prop), free(x->act);
}

/* measured (arena high-water + scratch) <= plan <= 2.5 * measured + 2 MiB */
static void check_plan(const bv_model *m, const batch *x, bv_vla_mode mode, bool backward, const char *what) {
    if (bv_vla_batch_check(&m->vla, &x->b, mode, what)) fail_msg("%s", bv_error_msg());
    double plan = bv_vla_plan_forward(&m->vla.cfg, &x->b, mode, backward);
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    bv_vla_out y = bv_vla_forward(&g, &m->params, (bv_vla *)&m->vla, &x->b, mode);
    if (backward) bv_graph_backward(&g, y.loss);
    double used = (double)bv_arena_high_water(&g.arena) + (double)g.scratch_cap;
    print_message("  %-44s plan %10.0f, used %10.0f (arena %zu + scratch %zu): %.2fx\n", what, plan, used,
                  bv_arena_high_water(&g.arena), g.scratch_cap, plan / used);
    if (!(plan >= used)) fail_msg("%s: planned %.0f bytes, the forward used %.0f", what, plan, used);
    if (!(plan <= 2.5 * used + 2097152.0)) fail_msg("%s: planned %.0f bytes, far above the %.0f used", what, plan, used);
    bv_graph_free(&g);
}

static void plan_case(const char *config, const bv_vla_config *cfg, int64_t B, int64_t T, int64_t n_img) {
    for (int backward = 0; backward < 2; backward++) {
        bv_model m;
        bv_model_spec s = {.config = config, .cfg = cfg, .purpose = backward ? BV_MODEL_TRAIN : BV_MODEL_INFER, .seed = 4};
        if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
        for (int mode = 0; mode < 2; mode++) {
            batch x;
            batch_make(&x, &m.vla.cfg, B, T, n_img, (bv_vla_mode)mode, true);
            char what[128];
            snprintf(what, sizeof what, "%s B=%lld T=%lld img=%lld %s%s", config, (long long)B, (long long)T,
                     (long long)n_img, mode ? "lm" : "action", backward ? " +backward" : "");
            check_plan(&m, &x, (bv_vla_mode)mode, backward, what);
            batch_free(&x);
        }
        bv_model_free(&m);
    }
}

static void test_forward_plan(void **state) {
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    plan_case("tiny", &c, 2, 90, 1);
    plan_case("tiny", &c, 3, 200, 2);
    /* wider text, more layers, a full-precision tower */
    c.text.hidden_size = 128, c.text.intermediate_size = 320, c.text.num_hidden_layers = 3;
    c.vision.weight_bits = 32, c.vision.act_bits = 32, c.vision.image_size = 28;
    c.num_actions_chunk = 4;
    plan_case("tiny-wide", &c, 4, 120, 1);
    /* large enough that the counted tensors dominate the fixed allowances: the count itself is
     * checked; then one thread (other attention scratch) and no images */
    c.text.hidden_size = 512, c.text.intermediate_size = 1376, c.text.num_hidden_layers = 2, c.text.vocab_size = 4096;
    c.text.num_attention_heads = 8, c.text.num_key_value_heads = 2;
    c.vision.hidden_size = 256, c.vision.intermediate_size = 1024, c.vision.image_size = 112;
    c.vision.weight_bits = 1, c.vision.act_bits = 8;
    c.num_actions_chunk = 8;
    plan_case("medium", &c, 2, 400, 1);
    bv_set_num_threads(1);
    plan_case("medium, 1 thread", &c, 1, 70, 0);
    bv_set_num_threads(2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_no_gradients), cmocka_unit_test(test_train_prefixes),
        cmocka_unit_test(test_weights_loaded),     cmocka_unit_test(test_errors),
        cmocka_unit_test(test_too_large),          cmocka_unit_test(test_shapes_full_size),
        cmocka_unit_test(test_pieces),             cmocka_unit_test(test_forward_plan),
    };
    return cmocka_run_group_tests_name("build", tests, setup, teardown);
}
