/* Tests of loading and saving model weights by HF name (models/weights.h): F32/BF16 round
 * trips, sharded checkpoints through their index (by file, index and directory), the four name
 * layouts, ignored tensors, and one error message listing every missing, unexpected and
 * mis-shaped tensor while leaving the store untouched. Uses the `tiny` preset. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/build.h"
#include "models/weights.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("weights"); }

static int teardown(void **state) { return bv_test_dir_remove(); }

typedef bv_model model;

/* the tiny preset for inference (no gradients), random values of `seed` */
static void model_make(model *x, unsigned parts, uint64_t seed) {
    bv_model_spec s = {.config = "tiny", .parts = parts, .purpose = BV_MODEL_INFER, .seed = seed};
    if (bv_model_build(x, &s) != BV_OK) fail_msg("%s", bv_error_msg());
}

static void model_free(model *x) { bv_model_free(x); }

static void expect_same_values(const bv_params *a, const bv_params *b) {
    assert_int_equal(a->n, b->n);
    assert_int_equal(a->numel_total, b->numel_total);
    for (int i = 0; i < a->n; i++) {
        assert_string_equal(a->items[i].name, b->items[i].name);
        bv_check_close_f32(a->items[i].name, bv_params_value(b, i).data, bv_params_value(a, i).data, a->items[i].numel,
                           0, 0);
    }
}

/* Write p's parameters under renamed names: rename(name, out) returns false to drop one; extra
 * tensors (names, shapes) are appended with zeros. */
typedef bool (*renamer)(const char *name, char *out, size_t n);

static void write_renamed(const bv_params *p, const char *path, renamer rn, int n_extra, const char *const *extra,
                          const int64_t (*extra_shape)[2]) {
    bv_st_item *items = bv_xcalloc((size_t)(p->n + n_extra), sizeof *items);
    char **names = bv_xcalloc((size_t)(p->n + n_extra), sizeof *names);
    float *zeros = bv_xcalloc(1 << 16, sizeof *zeros);
    int n = 0;
    for (int i = 0; i < p->n; i++) {
        char buf[512];
        if (rn && !rn(p->items[i].name, buf, sizeof buf)) continue;
        names[n] = bv_xstrdup(rn ? buf : p->items[i].name);
        items[n] = (bv_st_item){names[n], bv_params_value(p, i)};
        n++;
    }
    for (int k = 0; k < n_extra; k++) {
        names[n] = bv_xstrdup(extra[k]);
        items[n] = (bv_st_item){names[n], bv_tensor_make2(zeros, BV_DTYPE_F32, extra_shape[k][0], extra_shape[k][1])};
        n++;
    }
    if (bv_st_save(path, n, items, 0, NULL) != BV_OK) fail_msg("%s", bv_error_msg());
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(items);
    free(zeros);
}

/* ---- round trips ---- */

static void test_f32_roundtrip(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 1);
    model_make(&b, BV_VLA_ALL, 2);
    const char *path = bv_test_path("model.safetensors");
    assert_int_equal(bv_weights_save(&a.params, path, BV_DTYPE_F32, 0), BV_OK);
    uint64_t v0 = b.params.version;
    bv_weights_report r;
    if (bv_weights_load(&b.params, path, NULL, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.layout, BV_WEIGHTS_LLAVA);
    assert_int_equal(r.n_loaded, a.params.n);
    assert_int_equal(r.n_missing + r.n_unexpected + r.n_bad + r.n_ignored, 0);
    assert_null(r.details);
    assert_true(b.params.version > v0); /* caches see the new values */
    expect_same_values(&a.params, &b.params);
    bv_weights_report_free(&r);
    model_free(&a);
    model_free(&b);
}

static void test_bf16_roundtrip(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 3);
    model_make(&b, BV_VLA_ALL, 4);
    const char *path = bv_test_path("bf16.safetensors");
    assert_int_equal(bv_weights_save(&a.params, path, BV_DTYPE_BF16, 0), BV_OK);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, path), BV_OK);
    assert_int_equal(f.n, a.params.n);
    for (int i = 0; i < f.n; i++) assert_int_equal(f.entries[i].dtype, BV_DTYPE_BF16);
    assert_string_equal(bv_st_meta(&f, "format"), "pt");
    bv_st_close(&f);
    if (bv_weights_load(&b.params, path, NULL, NULL) != BV_OK) fail_msg("%s", bv_error_msg());
    for (size_t k = 0; k < a.params.numel_total; k++) /* the loaded value is the bf16 rounding, exactly */
        a.params.values[k] = bv_bf16_to_f32(bv_f32_to_bf16(a.params.values[k]));
    expect_same_values(&a.params, &b.params);
    model_free(&a);
    model_free(&b);
}

static void test_sharded(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 5);
    char dir[512];
    snprintf(dir, sizeof dir, "%s", bv_test_path("sharded"));
    assert_int_equal(mkdir(dir, 0777), 0);
    char path[600], index[640];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(index, sizeof index, "%s.index.json", path);
    uint64_t shard = 256 << 10; /* the tiny model is ~1.3 MB in F32: several shards */
    assert_int_equal(bv_weights_save(&a.params, path, BV_DTYPE_F32, shard), BV_OK);
    assert_int_equal(access(path, F_OK), -1); /* no single file */
    assert_int_equal(access(index, F_OK), 0);
    char first[700];
    snprintf(first, sizeof first, "%s/model-00001-of-", dir);
    /* every shard within the limit unless one tensor alone is larger */
    int n_shards = 0;
    for (int s = 1; s < 100; s++) {
        char sp[700];
        int total = 0;
        for (int t = s; t < 100 && !total; t++) {
            snprintf(sp, sizeof sp, "%s/model-%05d-of-%05d.safetensors", dir, s, t);
            if (access(sp, F_OK) == 0) total = t;
        }
        if (!total) break;
        n_shards = total;
        struct stat stt;
        assert_int_equal(stat(sp, &stt), 0);
        bv_st_file f;
        assert_int_equal(bv_st_open(&f, sp), BV_OK);
        if (f.n > 1) assert_true((uint64_t)f.data_size <= shard);
        bv_st_close(&f);
    }
    assert_true(n_shards >= 3);
    const char *ways[3] = {path, index, dir}; /* the .safetensors name falls back to its index */
    for (int w = 0; w < 3; w++) {
        model_make(&b, BV_VLA_ALL, 6);
        bv_weights_report r;
        if (bv_weights_load(&b.params, ways[w], NULL, &r) != BV_OK) fail_msg("%s: %s", ways[w], bv_error_msg());
        assert_int_equal(r.n_files, n_shards);
        expect_same_values(&a.params, &b.params);
        bv_weights_report_free(&r);
        model_free(&b);
    }
    /* saving the single-file form removes the stale index, and the other way round */
    assert_int_equal(bv_weights_save(&a.params, path, BV_DTYPE_F32, 0), BV_OK);
    assert_int_equal(access(index, F_OK), -1);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(bv_weights_save(&a.params, path, BV_DTYPE_F32, shard), BV_OK);
    assert_int_equal(access(path, F_OK), -1);

    /* an index that promises a tensor its shard lacks */
    FILE *f = fopen(index, "r");
    assert_non_null(f);
    char *text = bv_xcalloc(1 << 20, 1);
    size_t len = fread(text, 1, (1 << 20) - 1, f);
    fclose(f);
    assert_true(len > 0);
    char *at = strstr(text, "\"weight_map\": {");
    assert_non_null(at);
    at += strlen("\"weight_map\": {");
    char *rest = bv_xstrdup(at);
    sprintf(at, "\n    \"vision_tower.vision_model.ghost\": \"model-00001-of-%05d.safetensors\",%s", n_shards, rest);
    f = fopen(index, "w");
    fputs(text, f);
    fclose(f);
    model_make(&b, BV_VLA_ALL, 6);
    assert_int_equal(bv_weights_load(&b.params, index, NULL, NULL), BV_ERR_FORMAT);
    assert_non_null(strstr(bv_error_msg(), "the index puts 'vision_tower.vision_model.ghost' in model-00001-of-"));
    model_free(&b);
    free(rest);
    free(text);
    model_free(&a);
}

/* ---- problems ---- */

static bool drop_one_and_bad_shape(const char *name, char *out, size_t n) {
    if (!strcmp(name, "language_model.model.layers.1.mlp.up_proj.weight")) return false;
    snprintf(out, n, "%s", name);
    return true;
}

static void test_all_problems_in_one_message(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 7);
    model_make(&b, BV_VLA_ALL, 8);
    const char *path = bv_test_path("bad.safetensors");
    /* one missing and two unexpected tensors */
    static const char *extra[] = {"language_model.model.layers.7.mlp.up_proj.weight", "action_head.model.fc3.weight"};
    static const int64_t shapes[][2] = {{4, 4}, {7, 64}};
    write_renamed(&a.params, path, drop_one_and_bad_shape, 2, extra, shapes);
    float *before = bv_test_copy_f32(b.params.values, (int64_t)b.params.numel_total);
    bv_weights_report r;
    bv_status st = bv_weights_load(&b.params, path, NULL, &r);
    const char *msg = bv_error_msg();
    if (st != BV_ERR_FORMAT || !strstr(msg, path) || !strstr(msg, "1 missing") || !strstr(msg, "2 unexpected") ||
        !strstr(msg, "missing: language_model.model.layers.1.mlp.up_proj.weight [176, 64]") ||
        !strstr(msg, "unexpected: language_model.model.layers.7.mlp.up_proj.weight F32 [4, 4]") ||
        !strstr(msg, "unexpected: action_head.model.fc3.weight F32 [7, 64]"))
        fail_msg("got %d: %s", st, msg);
    assert_int_equal(r.n_missing, 1);
    assert_int_equal(r.n_unexpected, 2);
    assert_non_null(strstr(r.details, "action_head.model.fc3.weight"));
    bv_weights_report_free(&r);
    bv_check_close_f32("store unchanged", b.params.values, before, (int64_t)b.params.numel_total, 0, 0);

    /* mis-shaped: the tiny connector's linear_1 is (64, 64); write one of (64, 32) */
    static const char *mis[] = {"multi_modal_projector.linear_1.weight"};
    static const int64_t mshape[][2] = {{64, 32}};
    bv_params q;
    bv_params_init(&q);
    int64_t s1[1] = {64};
    bv_params_add(&q, "multi_modal_projector.linear_1.bias", 1, s1, false);
    assert_int_equal(bv_params_finalize(&q), BV_OK);
    write_renamed(&q, path, NULL, 1, mis, mshape);
    st = bv_weights_load(&b.params, path, NULL, &r);
    msg = bv_error_msg();
    if (st != BV_ERR_FORMAT ||
        !strstr(msg, "mis-shaped: multi_modal_projector.linear_1.weight: expected F32/BF16/F16 [64, 64], found F32 [64, 32]") ||
        !strstr(msg, "1 mis-shaped") || !strstr(msg, "missing: vision_tower.vision_model.embeddings.patch_embedding.weight"))
        fail_msg("got %d: %s", st, msg);
    /* the mis-shaped parameter is not also reported missing */
    assert_null(strstr(r.details, "missing: multi_modal_projector.linear_1.weight"));
    bv_weights_report_free(&r);
    bv_check_close_f32("store unchanged", b.params.values, before, (int64_t)b.params.numel_total, 0, 0);
    bv_params_free(&q);
    free(before);
    model_free(&a);
    model_free(&b);
}

static void test_allow_missing_and_unexpected(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 9);
    model_make(&b, BV_VLA_ALL, 10);
    const char *path = bv_test_path("partial.safetensors");
    static const char *extra[] = {"language_model.model.layers.7.mlp.up_proj.weight"};
    static const int64_t shapes[][2] = {{4, 4}};
    write_renamed(&a.params, path, drop_one_and_bad_shape, 1, extra, shapes);
    int k = bv_params_find(&b.params, "language_model.model.layers.1.mlp.up_proj.weight");
    float keep = bv_params_value(&b.params, k).data ? ((float *)bv_params_value(&b.params, k).data)[0] : 0;
    bv_weights_opts o = {.allow_missing = true, .allow_unexpected = true};
    bv_weights_report r;
    if (bv_weights_load(&b.params, path, &o, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.n_missing, 1);
    assert_int_equal(r.n_unexpected, 1);
    assert_int_equal(r.n_loaded, a.params.n - 1);
    assert_true(((float *)bv_params_value(&b.params, k).data)[0] == keep); /* left as it was */
    bv_weights_report_free(&r);
    model_free(&a);
    model_free(&b);
}

/* ---- layouts ---- */

static bool to_llava_hf(const char *name, char *out, size_t n) {
    if (!strncmp(name, "vision_tower.", 13) || !strncmp(name, "multi_modal_projector.", 22))
        snprintf(out, n, "model.%s", name);
    else if (!strncmp(name, "language_model.model.", 21))
        snprintf(out, n, "model.language_model.%s", name + 21);
    else if (!strncmp(name, "language_model.lm_head.", 23))
        snprintf(out, n, "%s", name + 15);
    else
        snprintf(out, n, "%s", name);
    return true;
}

static void test_llava_hf_layout(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 11);
    model_make(&b, BV_VLA_ALL, 12);
    const char *path = bv_test_path("hf.safetensors");
    write_renamed(&a.params, path, to_llava_hf, 0, NULL, NULL);
    bv_weights_report r;
    if (bv_weights_load(&b.params, path, NULL, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.layout, BV_WEIGHTS_LLAVA_HF);
    expect_same_values(&a.params, &b.params);
    bv_weights_report_free(&r);
    model_free(&a);
    model_free(&b);
}

static bool vision_only_standalone(const char *name, char *out, size_t n) {
    if (strncmp(name, "vision_tower.", 13)) return false;
    snprintf(out, n, "%s", name + 13);
    return true;
}

static bool llm_only_standalone(const char *name, char *out, size_t n) {
    if (strncmp(name, "language_model.", 15)) return false;
    snprintf(out, n, "%s", name + 15);
    return true;
}

static void test_standalone_towers(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 13);
    model_make(&b, BV_VLA_ALL, 14);
    const float *conn_before = bv_test_copy_f32(b.params.values + b.params.items[bv_params_find(&b.params, "multi_modal_projector.linear_1.weight")].offset, 64 * 64);
    /* a full SiglipModel: text tower, logit scale/bias, post-layernorm and pooling head are ignored */
    const char *sp = bv_test_path("siglip.safetensors");
    static const char *sx[] = {"vision_model.post_layernorm.weight", "vision_model.head.probe", "text_model.embeddings.x",
                               "logit_scale"};
    static const int64_t ss[][2] = {{1, 64}, {1, 64}, {3, 3}, {1, 1}};
    write_renamed(&a.params, sp, vision_only_standalone, 4, sx, ss);
    bv_weights_report r;
    if (bv_weights_load(&b.params, sp, NULL, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.layout, BV_WEIGHTS_SIGLIP);
    assert_int_equal(r.n_ignored, 4);
    assert_int_equal(r.n_missing, 0); /* the other parts are not covered by a SigLIP file */
    bv_weights_report_free(&r);
    /* a BitNet file with a rotary buffer */
    const char *bp = bv_test_path("bitnet.safetensors");
    static const char *bx[] = {"model.layers.0.self_attn.rotary_emb.inv_freq"};
    static const int64_t bs[][2] = {{1, 8}};
    write_renamed(&a.params, bp, llm_only_standalone, 1, bx, bs);
    if (bv_weights_load(&b.params, bp, NULL, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.layout, BV_WEIGHTS_BITNET);
    assert_int_equal(r.n_ignored, 1);
    bv_weights_report_free(&r);
    for (int i = 0; i < a.params.n; i++) {
        const char *nm = a.params.items[i].name;
        if (strncmp(nm, "vision_tower.", 13) && strncmp(nm, "language_model.", 15)) continue;
        bv_check_close_f32(nm, bv_params_value(&b.params, i).data, bv_params_value(&a.params, i).data, a.params.items[i].numel, 0, 0);
    }
    /* untouched: the connector */
    bv_check_close_f32("connector", b.params.values + b.params.items[bv_params_find(&b.params, "multi_modal_projector.linear_1.weight")].offset,
                       conn_before, 64 * 64, 0, 0);
    free((void *)conn_before);

    /* a SigLIP with one layer more than the config (so400m's 27th): unexpected, named, with its shape */
    static const char *sx2[] = {"vision_model.encoder.layers.2.mlp.fc1.bias"};
    static const int64_t ss2[][2] = {{1, 128}};
    write_renamed(&a.params, sp, vision_only_standalone, 1, sx2, ss2);
    bv_status st = bv_weights_load(&b.params, sp, NULL, &r);
    if (st != BV_ERR_FORMAT || !strstr(bv_error_msg(), "unexpected: vision_model.encoder.layers.2.mlp.fc1.bias F32 [1, 128]"))
        fail_msg("got %d: %s", st, bv_error_msg());
    bv_weights_report_free(&r);
    bv_weights_opts o = {.allow_unexpected = true};
    assert_int_equal(bv_weights_load(&b.params, sp, &o, NULL), BV_OK);
    model_free(&a);
    model_free(&b);
}

static void test_skip_and_has_prefix(void **state) {
    (void)state;
    model a, b;
    model_make(&a, BV_VLA_ALL, 15);
    model_make(&b, BV_VLA_VLM, 16); /* no proprio projector, no action head */
    const char *path = bv_test_path("full.safetensors");
    assert_int_equal(bv_weights_save(&a.params, path, BV_DTYPE_F32, 0), BV_OK);
    bool yes = false;
    assert_int_equal(bv_weights_has_prefix(path, NULL, "action_head.", &yes), BV_OK);
    assert_true(yes);
    assert_int_equal(bv_weights_has_prefix(path, NULL, "nothing.", &yes), BV_OK);
    assert_false(yes);
    assert_int_equal(bv_weights_load(&b.params, path, NULL, NULL), BV_ERR_FORMAT); /* unexpected parts */
    static const char *const skip[] = {"proprio_projector.", "action_head.", NULL};
    bv_weights_opts o = {.skip_prefixes = skip};
    bv_weights_report r;
    if (bv_weights_load(&b.params, path, &o, &r) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(r.n_loaded, b.params.n);
    assert_int_equal(r.n_ignored, a.params.n - b.params.n);
    bv_weights_report_free(&r);
    model_free(&a);
    model_free(&b);
}

static void test_unreadable_layouts(void **state) {
    (void)state;
    model b;
    model_make(&b, BV_VLA_ALL, 17);
    /* names of no known layout */
    const char *path = bv_test_path("odd.safetensors");
    bv_params q;
    bv_params_init(&q);
    int64_t s[1] = {3};
    bv_params_add(&q, "encoder.weight", 1, s, false);
    assert_int_equal(bv_params_finalize(&q), BV_OK);
    write_renamed(&q, path, NULL, 0, NULL, NULL);
    assert_int_equal(bv_weights_load(&b.params, path, NULL, NULL), BV_ERR_FORMAT);
    assert_non_null(strstr(bv_error_msg(), "cannot tell the checkpoint's layout"));
    assert_non_null(strstr(bv_error_msg(), "encoder.weight"));
    bv_params_free(&q);
    /* a packed HF BitNet checkpoint (U8 codes + weight_scale) */
    uint8_t codes[16] = {0};
    float scale = 1.0f;
    bv_st_item items[2] = {{"model.layers.0.mlp.up_proj.weight", bv_tensor_make2(codes, BV_DTYPE_U8, 4, 4)},
                           {"model.layers.0.mlp.up_proj.weight_scale", bv_tensor_make1(&scale, BV_DTYPE_F32, 1)}};
    const char *pk = bv_test_path("packed.safetensors");
    assert_int_equal(bv_st_save(pk, 2, items, 0, NULL), BV_OK);
    assert_int_equal(bv_weights_load(&b.params, pk, NULL, NULL), BV_ERR_FORMAT);
    assert_non_null(strstr(bv_error_msg(), "packed ternary weights"));
    assert_non_null(strstr(bv_error_msg(), "found U8 [4, 4]"));
    /* a path that does not exist */
    assert_int_equal(bv_weights_load(&b.params, bv_test_path("nope.safetensors"), NULL, NULL), BV_ERR_IO);
    assert_non_null(strstr(bv_error_msg(), "nope.safetensors"));
    /* save: wrong dtype or file name */
    assert_int_equal(bv_weights_save(&b.params, bv_test_path("x.safetensors"), BV_DTYPE_I8, 0), BV_ERR_ARG);
    assert_int_equal(bv_weights_save(&b.params, bv_test_path("x.bin"), BV_DTYPE_F32, 0), BV_ERR_ARG);
    model_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32_roundtrip),
        cmocka_unit_test(test_bf16_roundtrip),
        cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_all_problems_in_one_message),
        cmocka_unit_test(test_allow_missing_and_unexpected),
        cmocka_unit_test(test_llava_hf_layout),
        cmocka_unit_test(test_standalone_towers),
        cmocka_unit_test(test_skip_and_has_prefix),
        cmocka_unit_test(test_unreadable_layouts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
