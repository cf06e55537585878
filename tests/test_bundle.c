/* Tests of the bundle format (models/bundle.h) and of bitvla export (recipes/export.h):
 *  - a tiny random model exported in every layout (hf, tq5; i2s on a tiny config whose ternary
 *    inputs are multiples of 128) and dtype (bf16, f32), read back with bv_bundle_open: every
 *    ternary layer's codes and m equal, bit for bit, what the BitLinear quantizer gives on the fp32
 *    weight; hf's weight_scale is m and its biases are bias / m; other tensors are the rounded
 *    (bf16) or exact (f32) values; the untied lm_head is dropped (kept with keep_lm_head); vision
 *    layers beyond vision_feature_layer are dropped and reported; config.json reads back strictly;
 *  - a shape a layout cannot hold (i2s on tiny) fails naming the tensor, shape and layout, and
 *    writes nothing;
 *  - an existing bundle is refused without force and replaced with it;
 *  - a corrupt byte, a missing file, a truncated manifest: bv_bundle_open names the file (and the
 *    checksum). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/build.h"
#include "recipes/export.h"
#include "src/kernels/bitlinear.h"
#include "tests/util/testutil.h"

static int setup(void **state) {
    (void)state;
    if (bv_test_dir_make("bundle")) return -1;
    const char *tok = "{\"version\": \"1.0\", \"model\": {\"type\": \"BPE\"}}\n";
    const char *stats = "{\"synth_task\": {\"action\": {\"q01\": [0], \"q99\": [1]}}, \"other\": {}}\n";
    bv_test_write_bytes(bv_test_path("tokenizer.json"), tok, strlen(tok));
    bv_test_write_bytes(bv_test_path("stats.json"), stats, strlen(stats));
    return 0;
}

static int teardown(void **state) {
    (void)state;
    return bv_test_dir_remove();
}

static bv_export_opts opts_for(const char *config, const char *out, bv_tpack_format layout, bv_dtype dt) {
    static char tok[512], stats[512];
    snprintf(tok, sizeof tok, "%s", bv_test_path("tokenizer.json"));
    snprintf(stats, sizeof stats, "%s", bv_test_path("stats.json"));
    return (bv_export_opts){.random_init = true, .config = config, .seed = 11, .tokenizer = tok, .statistics = stats,
                            .out = out, .layout = layout, .dtype = dt};
}

/* a config file: tiny with the given changes */
static const char *write_config(const char *name, bv_vla_config *c) {
    char *s = bv_config_to_json(c);
    const char *path = bv_test_path(name);
    bv_test_write_bytes(path, s, strlen(s));
    free(s);
    return path;
}

/* a checkpoint directory (config.json, model.safetensors, tokenizer.json, dataset_statistics.json)
 * of a model of `config` whose values are random everywhere, biases and norms included (a fresh
 * model's zero biases would hide a wrong bias / m) */
static const char *make_ckpt(const char *name, const char *config) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", bv_test_path(name));
    assert_int_equal(mkdir(dir, 0755), 0);
    bv_model m;
    bv_model_spec spec = {.config = config, .purpose = BV_MODEL_INFER, .seed = 5};
    assert_int_equal(bv_model_build(&m, &spec), BV_OK);
    bv_rng r = {7};
    for (int i = 0; i < m.params.n; i++) {
        const bv_param *q = &m.params.items[i];
        if (q->ndim == 1) bv_rng_fill_f32(&r, m.params.values + q->offset, q->numel, -1.5, 1.5);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(bv_weights_save(&m.params, path, BV_DTYPE_F32, 0), BV_OK);
    char *cj = bv_config_to_json(&m.vla.cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    bv_test_write_bytes(path, cj, strlen(cj));
    free(cj);
    bv_model_free(&m);
    const char *tok = "{\"version\": \"1.0\"}\n", *stats = "{\"synth_task\": {}}\n";
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    bv_test_write_bytes(path, tok, strlen(tok));
    snprintf(path, sizeof path, "%s/dataset_statistics.json", dir);
    bv_test_write_bytes(path, stats, strlen(stats));
    return bv_test_path(name);
}

static bv_export_opts ckpt_opts(const char *ckpt, const char *out, bv_tpack_format layout, bv_dtype dt) {
    return (bv_export_opts){.checkpoint = ckpt, .out = out, .layout = layout, .dtype = dt};
}

/* the bundle at dir holds exactly what the quantizer and the dtype make of model m's values */
static void check_bundle(const char *dir, const char *config, const char *ckpt, bv_tpack_format layout, bv_dtype dt,
                         bool keep_head, int dropped_vision_from) {
    bv_bundle b;
    if (bv_bundle_open(&b, dir)) fail_msg("bv_bundle_open: %s", bv_error_msg());
    assert_int_equal(b.layout, layout);
    assert_int_equal(b.dtype, dt);
    assert_string_equal(b.dataset, "synth_task");
    assert_true(strstr(b.tokenizer_path, "tokenizer.json") != NULL);
    bv_model m;
    bv_model_spec spec = {.config = config, .purpose = BV_MODEL_INFER, .seed = 11, .weights = ckpt};
    assert_int_equal(bv_model_build(&m, &spec), BV_OK);
    assert_int_equal(b.cfg.text.hidden_size, m.vla.cfg.text.hidden_size);
    bv_vla_ternary *tl;
    int nt = bv_vla_ternary_list(&m.vla, &tl);
    assert_true(nt > 0);
    bool *is_t = calloc((size_t)m.params.n, 1), *is_tb = calloc((size_t)m.params.n, 1);
    int64_t expect_tensors = 0;
    for (int j = 0; j < nt; j++) {
        const bv_param *w = &m.params.items[tl[j].w];
        is_t[tl[j].w] = true;
        if (tl[j].b >= 0) is_tb[tl[j].b] = true;
        const int i = bv_st_find(&b.st, w->name);
        if (!tl[j].used) {
            if (i >= 0) fail_msg("%s: unused layer written", w->name);
            continue;
        }
        if (i < 0) fail_msg("%s: missing from the bundle", w->name);
        expect_tensors += 1 + (layout == BV_TPACK_HF) + (tl[j].b >= 0);
        const int64_t OC = w->shape[0], C = w->shape[1], n = OC * C;
        const float *wv = m.params.values + w->offset;
        int8_t *want = malloc((size_t)n), *got = malloc((size_t)n);
        bv_k_quant_weight_fwd(want, NULL, wv, n);
        float mw = bv_k_absmean(wv, n);
        mw = mw < BV_BITLINEAR_EPS ? BV_BITLINEAR_EPS : mw;
        bv_tensor v = bv_st_view(&b.st, i);
        assert_int_equal(v.dtype, BV_DTYPE_U8);
        float scale = NAN;
        /* an i2s bundle lists the weights I2_S cannot hold, stored as TQ5 */
        const char *fb = bv_st_meta(&b.st, "tq5_tensors");
        bool tq5 = false;
        if (fb) {
            size_t L = strlen(w->name);
            for (const char *q = strstr(fb, w->name); q; q = strstr(q + 1, w->name))
                if ((q == fb || q[-1] == ',') && (q[L] == ',' || q[L] == 0)) tq5 = true;
        }
        if (tq5) assert_int_equal(layout, BV_TPACK_I2S);
        if (layout == BV_TPACK_I2S) { /* TQ5 exactly where I2_S cannot hold the shape */
            size_t nb;
            bool holds = bv_tpack_nbytes(BV_TPACK_I2S, OC, C, &nb) == BV_OK;
            if (holds == tq5) fail_msg("%s (%lld x %lld): stored as %s", w->name, (long long)OC, (long long)C, tq5 ? "TQ5" : "I2_S");
        }
        if (bv_tpack_unpack(tq5 ? BV_TPACK_TQ5 : layout, bv_tensor_ptr(&v), bv_tensor_nbytes(&v), OC, C, got, &scale))
            fail_msg("%s: unpack: %s", w->name, bv_error_msg());
        for (int64_t k = 0; k < n; k++)
            if (got[k] != want[k]) fail_msg("%s: code %lld is %d, the quantizer gives %d", w->name, (long long)k, got[k], want[k]);
        if (layout == BV_TPACK_HF) {
            char sname[256];
            snprintf(sname, sizeof sname, "%s_scale", w->name);
            assert_int_equal(bv_st_read(&b.st, sname, BV_DTYPE_F32, 1, (int64_t[]){1}, 1, &scale), BV_OK);
        }
        if (memcmp(&scale, &mw, 4)) fail_msg("%s: scale %.9g, the quantizer's m is %.9g", w->name, scale, mw);
        if (tl[j].b >= 0) {
            const bv_param *bp = &m.params.items[tl[j].b];
            float *bb = malloc((size_t)OC * 4);
            const int bi = bv_st_find(&b.st, bp->name);
            assert_true(bi >= 0);
            assert_int_equal(b.st.entries[bi].dtype, BV_DTYPE_F32); /* biases of ternary layers: always F32 */
            assert_int_equal(bv_st_read(&b.st, bp->name, BV_DTYPE_F32, 1, &OC, OC, bb), BV_OK);
            for (int64_t k = 0; k < OC; k++) {
                float e = m.params.values[bp->offset + k];
                if (layout == BV_TPACK_HF) e = e / mw;
                if (memcmp(&e, &bb[k], 4)) fail_msg("%s[%lld]: %.9g, expected %.9g", bp->name, (long long)k, bb[k], e);
            }
            free(bb);
        }
        free(want), free(got);
    }
    /* every other parameter: in the dtype, rounded to nearest even; lm_head dropped unless kept */
    for (int i = 0; i < m.params.n; i++) {
        if (is_t[i] || is_tb[i]) continue;
        const bv_param *q = &m.params.items[i];
        const int e = bv_st_find(&b.st, q->name);
        int layer = -1;
        sscanf(q->name, "vision_tower.vision_model.encoder.layers.%d.", &layer);
        const bool dropped = (!keep_head && !strcmp(q->name, "language_model.lm_head.weight")) ||
                             (dropped_vision_from >= 0 && layer >= dropped_vision_from);
        if (dropped) {
            if (e >= 0) fail_msg("%s: should have been dropped", q->name);
            continue;
        }
        if (e < 0) fail_msg("%s: missing from the bundle", q->name);
        expect_tensors++;
        bv_tensor v = bv_st_view(&b.st, e);
        assert_int_equal(v.dtype, dt);
        assert_int_equal(v.ndim, q->ndim);
        const float *x = m.params.values + q->offset;
        const uint8_t *p = bv_tensor_ptr(&v);
        for (int64_t k = 0; k < q->numel; k++) {
            if (dt == BV_DTYPE_BF16) {
                uint16_t h, w = bv_f32_to_bf16(x[k]);
                memcpy(&h, p + 2 * k, 2);
                if (h != w) fail_msg("%s[%lld]: bf16 0x%04x, expected 0x%04x", q->name, (long long)k, h, w);
            } else if (memcmp(p + 4 * k, &x[k], 4)) {
                fail_msg("%s[%lld]: differs from the fp32 value", q->name, (long long)k);
            }
        }
    }
    assert_int_equal(b.st.n, expect_tensors);
    /* the report, read back: the lm_head row and the totals */
    const bv_bundle_module *head = &b.report.mod[BV_BUNDLE_MOD_LM_HEAD];
    assert_string_equal(head->kind, keep_head ? bv_bundle_dtype_name(dt) : "dropped");
    assert_int_equal(head->dropped_params, keep_head ? 0 : m.params.items[bv_params_find(&m.params, "language_model.lm_head.weight")].numel);
    double bytes = 0;
    for (int i = 0; i < b.st.n; i++) bytes += (double)(b.st.entries[i].end - b.st.entries[i].begin);
    assert_true(bytes == b.report.bytes);
    bool saw_vision_drop = false;
    for (int i = 0; i < b.report.n_dropped; i++) saw_vision_drop |= strstr(b.report.dropped[i], "vision_feature_layer") != NULL;
    assert_int_equal(saw_vision_drop, dropped_vision_from >= 0);
    /* config.json reads back, strictly */
    char cpath[512];
    snprintf(cpath, sizeof cpath, "%s/config.json", dir);
    bv_vla_config c2;
    if (bv_config_load(cpath, true, &c2)) fail_msg("strict config load: %s", bv_error_msg());
    free(is_t), free(is_tb), free(tl);
    bv_model_free(&m);
    bv_bundle_close(&b);
}

static void export_ok(bv_export_opts *o) {
    bv_export_result r;
    if (bv_export(o, &r)) fail_msg("bv_export: %s", bv_error_msg());
    assert_true(r.model_bytes > 0 && r.total_bytes > r.model_bytes);
    bv_export_result_free(&r);
}

static void test_layouts(void **state) {
    (void)state;
    const char *ck = make_ckpt("ck_tiny", "tiny");
    char ckpt[512];
    snprintf(ckpt, sizeof ckpt, "%s", ck);
    const bv_tpack_format layouts[] = {BV_TPACK_HF, BV_TPACK_TQ5};
    const bv_dtype dts[] = {BV_DTYPE_BF16, BV_DTYPE_F32};
    for (size_t l = 0; l < 2; l++)
        for (size_t d = 0; d < 2; d++) {
            char name[64];
            snprintf(name, sizeof name, "b_%s_%s", bv_bundle_layout_name(layouts[l]), bv_bundle_dtype_name(dts[d]));
            const char *out = bv_test_path(name);
            bv_export_opts o = ckpt_opts(ckpt, out, layouts[l], dts[d]);
            export_ok(&o);
            check_bundle(out, "tiny", ckpt, layouts[l], dts[d], false, -1);
        }
    /* the LM head kept */
    const char *out = bv_test_path("b_head");
    bv_export_opts o = ckpt_opts(ckpt, out, BV_TPACK_TQ5, BV_DTYPE_BF16);
    o.keep_lm_head = true;
    export_ok(&o);
    check_bundle(out, "tiny", ckpt, BV_TPACK_TQ5, BV_DTYPE_BF16, true, -1);
    /* a random-init export: the values of the seed */
    out = bv_test_path("b_random");
    o = opts_for("tiny", out, BV_TPACK_HF, BV_DTYPE_BF16);
    export_ok(&o);
    check_bundle(out, "tiny", NULL, BV_TPACK_HF, BV_DTYPE_BF16, false, -1);
}

static void test_i2s(void **state) {
    (void)state;
    /* tiny's ternary inputs (64, 176) are no multiple of 128: every weight is stored as TQ5 in the
     * i2s bundle, listed in __metadata__ "tq5_tensors" and counted in the report */
    const char *out = bv_test_path("b_i2s_tiny");
    bv_export_opts o = opts_for("tiny", out, BV_TPACK_I2S, BV_DTYPE_BF16);
    export_ok(&o);
    check_bundle(out, "tiny", NULL, BV_TPACK_I2S, BV_DTYPE_BF16, false, -1);
    bv_bundle bt;
    if (bv_bundle_open(&bt, out)) fail_msg("%s", bv_error_msg());
    assert_int_equal(bt.report.tq5_fallback, 2 * 5 + 2 * 7); /* all but the tower's fc2 (128 inputs) */
    bv_bundle_close(&bt);
    /* a tiny config with every ternary input a multiple of 128 */
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    c.vision.hidden_size = 128, c.vision.intermediate_size = 256;
    c.text.hidden_size = 128, c.text.intermediate_size = 256;
    char cfg[512], ckpt[512];
    snprintf(cfg, sizeof cfg, "%s", write_config("i2s_config.json", &c));
    snprintf(ckpt, sizeof ckpt, "%s", make_ckpt("ck_i2s", cfg));
    out = bv_test_path("b_i2s");
    o = ckpt_opts(ckpt, out, BV_TPACK_I2S, BV_DTYPE_BF16);
    export_ok(&o);
    check_bundle(out, cfg, ckpt, BV_TPACK_I2S, BV_DTYPE_BF16, false, -1);
    if (bv_bundle_open(&bt, out)) fail_msg("%s", bv_error_msg());
    assert_int_equal(bt.report.tq5_fallback, 0);
    assert_null(bv_st_meta(&bt.st, "tq5_tensors"));
    bv_bundle_close(&bt);
}

static void test_dropped_vision_layer(void **state) {
    (void)state;
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    c.vision_feature_layer = -2; /* the last of tiny's 2 encoder layers never runs */
    char cfg[512], ckpt[512];
    snprintf(cfg, sizeof cfg, "%s", write_config("vfl_config.json", &c));
    snprintf(ckpt, sizeof ckpt, "%s", make_ckpt("ck_vfl", cfg));
    const char *out = bv_test_path("b_vfl");
    bv_export_opts o = ckpt_opts(ckpt, out, BV_TPACK_HF, BV_DTYPE_BF16);
    export_ok(&o);
    check_bundle(out, cfg, ckpt, BV_TPACK_HF, BV_DTYPE_BF16, false, 1);
}

static void test_refuse_existing(void **state) {
    (void)state;
    const char *out = bv_test_path("b_exist");
    bv_export_opts o = opts_for("tiny", out, BV_TPACK_HF, BV_DTYPE_BF16);
    export_ok(&o);
    bv_export_result r;
    o.layout = BV_TPACK_TQ5;
    assert_int_equal(bv_export(&o, &r), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "use --force");
    assert_true(bv_bundle_is_bundle(out));
    bv_bundle b;
    assert_int_equal(bv_bundle_open(&b, out), BV_OK);
    assert_int_equal(b.layout, BV_TPACK_HF); /* untouched */
    bv_bundle_close(&b);
    o.force = true;
    export_ok(&o);
    assert_int_equal(bv_bundle_open(&b, out), BV_OK);
    assert_int_equal(b.layout, BV_TPACK_TQ5);
    bv_bundle_close(&b);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), "b_exist"), 1); /* no temporaries left */
    /* a directory holding something else is never replaced, even with force */
    const char *foreign = bv_test_path("foreign");
    mkdir(foreign, 0755);
    char f[512];
    snprintf(f, sizeof f, "%s/notes.txt", foreign);
    bv_test_write_bytes(f, "x", 1);
    o.out = foreign;
    assert_int_not_equal(bv_export(&o, &r), BV_OK);
    bv_test_expect_in(bv_error_msg(), "notes.txt");
    assert_false(bv_bundle_is_bundle(foreign));
}

static void copy_tree(const char *from, const char *to) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

static void expect_open_fails(const char *dir, const char *n1, const char *n2) {
    bv_bundle b;
    assert_int_not_equal(bv_bundle_open(&b, dir), BV_OK);
    bv_test_expect_in(bv_error_msg(), n1);
    if (n2) bv_test_expect_in(bv_error_msg(), n2);
    bv_bundle z;
    memset(&z, 0, sizeof z);
    assert_memory_equal(&b, &z, sizeof z);
}

static void test_corrupt(void **state) {
    (void)state;
    const char *good = bv_test_path("b_good");
    bv_export_opts o = opts_for("tiny", good, BV_TPACK_HF, BV_DTYPE_BF16);
    export_ok(&o);
    char bad[512], path[600];
    snprintf(bad, sizeof bad, "%s", bv_test_path("b_bad"));
    /* one flipped byte in the data section of model.safetensors */
    copy_tree(good, bad);
    snprintf(path, sizeof path, "%s/model.safetensors", bad);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, -100, SEEK_END);
    int c = fgetc(f);
    fseek(f, -100, SEEK_END);
    fputc(c ^ 0x10, f);
    fclose(f);
    expect_open_fails(bad, "model.safetensors: CRC-32C 0x", "but manifest.json says 0x");
    /* a missing file */
    copy_tree(good, bad);
    snprintf(path, sizeof path, "%s/dataset_statistics.json", bad);
    assert_int_equal(unlink(path), 0);
    expect_open_fails(bad, "dataset_statistics.json: missing", "manifest.json lists it");
    /* a truncated file: the size */
    copy_tree(good, bad);
    snprintf(path, sizeof path, "%s/model.safetensors", bad);
    assert_int_equal(truncate(path, 1000), 0);
    expect_open_fails(bad, "model.safetensors: 1000 bytes but manifest.json says", NULL);
    /* a truncated manifest */
    copy_tree(good, bad);
    snprintf(path, sizeof path, "%s/manifest.json", bad);
    assert_int_equal(truncate(path, 40), 0);
    expect_open_fails(bad, "manifest.json: invalid JSON", NULL);
    assert_false(bv_bundle_is_bundle(bad));
    /* no bundle at all */
    expect_open_fails(bv_test_path("nowhere"), "nowhere/manifest.json: cannot open", NULL);
    /* the good one still opens */
    bv_bundle b;
    assert_int_equal(bv_bundle_open(&b, good), BV_OK);
    bv_bundle_close(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layouts),         cmocka_unit_test(test_i2s),
        cmocka_unit_test(test_dropped_vision_layer), cmocka_unit_test(test_refuse_existing),
        cmocka_unit_test(test_corrupt),
    };
    return cmocka_run_group_tests_name("bundle", tests, setup, teardown);
}
