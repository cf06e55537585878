/* Tests of the RLDS reader (data/rlds.h) and the image codecs (data/image.h) on the real Bridge
 * debug set (tests/fixtures/rlds_bridge_debug): the schema and splits from features.json and
 * dataset_info.json, and every episode decoded and compared with an independent decoding by
 * Google's protobuf runtime and PIL (tests/gen/gen_bridge_expect.py -> tests/fixtures/
 * bridge_expect.json): actions, states, instruction, flags, metadata exactly, and JPEG frames
 * pixel for pixel. Then the error paths: a key missing from the schema or the episode, a list of
 * the wrong kind, a count that is not whole steps, keys disagreeing on the number of steps,
 * broken JSON files, non-image and truncated image bytes. Every message is checked for the names
 * it must carry. */
#include <jansson.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/example.h"
#include "data/image.h"
#include "data/rlds.h"
#include "data/tfrecord.h"
#include "tests/util/testutil.h"

#define BRIDGE "rlds_bridge_debug/1.0.0"

static json_t *load_expect(void) {
    json_error_t je;
    json_t *j = json_load_file(bv_fixture_path("bridge_expect.json"), 0, &je);
    if (!j) fail_msg("%s: %s (rerun tests/gen/gen_bridge_expect.py)", bv_fixture_path("bridge_expect.json"), je.text);
    return j;
}

static void test_schema(void **state) {
    bv_rlds_dataset ds;
    const char *dir = bv_fixture_path(BRIDGE);
    bv_status st = bv_rlds_open(&ds, dir);
    if (st) fail_msg("%s", bv_error_msg());
    assert_string_equal(ds.name, "bridge_dataset");
    assert_string_equal(ds.version, "1.0.0");
    assert_int_equal(ds.n_features, 20); /* 13 per step, 7 episode metadata */

    const bv_rlds_feature *f = bv_rlds_feature_find(&ds, "steps/action");
    assert_non_null(f);
    assert_int_equal(f->kind, BV_RLDS_TENSOR);
    assert_true(f->per_step);
    assert_string_equal(f->dtype, "float32");
    assert_int_equal(f->list, BV_FEAT_FLOAT);
    assert_int_equal(f->ndim, 1);
    assert_int_equal(f->shape[0], 7);
    f = bv_rlds_feature_find(&ds, "steps/observation/image_2");
    assert_non_null(f);
    assert_int_equal(f->kind, BV_RLDS_IMAGE);
    assert_string_equal(f->encoding, "jpeg");
    assert_int_equal(f->ndim, 3);
    assert_true(f->shape[0] == 64 && f->shape[1] == 64 && f->shape[2] == 3);
    assert_int_equal(bv_rlds_feature_numel(f), 1);
    f = bv_rlds_feature_find(&ds, "steps/language_instruction");
    assert_int_equal(f->kind, BV_RLDS_TEXT);
    assert_int_equal(f->list, BV_FEAT_BYTES);
    f = bv_rlds_feature_find(&ds, "steps/is_first");
    assert_string_equal(f->dtype, "bool");
    assert_int_equal(f->list, BV_FEAT_INT64);
    assert_int_equal(f->ndim, 0);
    f = bv_rlds_feature_find(&ds, "steps/language_embedding");
    assert_int_equal(bv_rlds_feature_numel(f), 512);
    f = bv_rlds_feature_find(&ds, "episode_metadata/episode_id");
    assert_false(f->per_step);
    assert_string_equal(f->dtype, "int32");
    assert_null(bv_rlds_feature_find(&ds, "steps"));
    assert_null(bv_rlds_feature_find(&ds, "steps/observation"));

    const bv_rlds_split *sp = bv_rlds_split_find(&ds, "train");
    assert_non_null(sp);
    assert_int_equal(sp->n_shards, 1);
    assert_int_equal(sp->n_episodes, 25);
    bv_test_expect_in(sp->files[0], "/bridge_dataset-train.tfrecord-00000-of-00001");
    assert_int_equal(bv_rlds_split_check(&ds, sp), BV_OK);
    /* the fixture lists a val split whose file is absent: the check names it */
    sp = bv_rlds_split_find(&ds, "val");
    assert_non_null(sp);
    assert_int_equal(bv_rlds_split_check(&ds, sp), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "bridge_dataset-val.tfrecord-00000-of-00001");
    assert_null(bv_rlds_split_find(&ds, "test"));
    bv_rlds_close(&ds);
}

static void check_floats(const char *what, const json_t *want, const float *got, size_t n) {
    assert_int_equal(json_array_size(want), n);
    for (size_t i = 0; i < n; i++) {
        float w = (float)json_real_value(json_array_get(want, i));
        if (json_is_integer(json_array_get(want, i))) w = (float)json_integer_value(json_array_get(want, i));
        if (memcmp(&w, &got[i], 4) != 0) fail_msg("%s[%zu]: got %.9g want %.9g", what, i, got[i], w);
    }
}

/* Decodes every episode and compares with the protobuf/PIL decoding. */
static void test_episodes_match_python(void **state) {
    json_t *exp = load_expect();
    bv_rlds_dataset ds;
    assert_int_equal(bv_rlds_open(&ds, bv_fixture_path(BRIDGE)), BV_OK);
    const bv_rlds_split *sp = bv_rlds_split_find(&ds, "train");
    bv_tfr_reader r;
    assert_int_equal(bv_tfr_open(&r, sp->files[0]), BV_OK);
    bv_tfr_buf buf = {0};
    bv_example ex = {0};
    bv_image img = {0};
    bool eof;
    const json_t *lengths = json_object_get(exp, "lengths"), *eps = json_object_get(exp, "episodes"),
                 *images = json_object_get(exp, "images");
    int n_images_checked = 0;
    const char *keys[] = {"steps/action",   "steps/observation/state",  "steps/language_instruction",
                          "steps/is_first", "steps/is_last",             "steps/reward",
                          "episode_metadata/file_path", "episode_metadata/episode_id",
                          "steps/observation/image_0", "steps/observation/image_1", "steps/observation/image_2",
                          "steps/observation/image_3"};
    enum { NK = sizeof keys / sizeof keys[0] };
    bv_rlds_value v[NK];
    int e = 0;
    for (;; e++) {
        assert_int_equal(bv_tfr_next(&r, &buf, &eof), BV_OK);
        if (eof) break;
        char label[64];
        snprintf(label, sizeof label, "episode %d", e);
        if (bv_example_decode(&ex, buf.data, buf.len, label)) fail_msg("%s", bv_error_msg());
        int64_t T;
        if (bv_rlds_get_many(&ds, &ex, NK, keys, v, &T, label)) fail_msg("%s", bv_error_msg());
        assert_int_equal(T, json_integer_value(json_array_get(lengths, e)));
        assert_int_equal(v[7].n_steps, 1); /* episode-level */
        char ek[16];
        snprintf(ek, sizeof ek, "%d", e);
        const json_t *w = json_object_get(eps, ek);
        if (w) {
            float *a = malloc((size_t)T * 7 * sizeof *a);
            bv_rlds_value_f32(&v[0], a);
            check_floats("action", json_object_get(w, "action"), a, (size_t)T * 7);
            bv_rlds_value_f32(&v[1], a);
            check_floats("state", json_object_get(w, "state"), a, (size_t)T * 7);
            bv_rlds_value_f32(&v[5], a);
            check_floats("reward", json_object_get(w, "reward"), a, (size_t)T);
            free(a);
            const char *instr = json_string_value(json_object_get(w, "instruction"));
            for (int64_t t = 0; t < T; t++) {
                bv_bytes b = bv_rlds_value_bytes(&v[2], t);
                assert_int_equal(b.len, strlen(instr));
                assert_memory_equal(b.data, instr, b.len);
                assert_int_equal(v[3].raw->int64s[t], json_integer_value(json_array_get(json_object_get(w, "is_first"), t)));
                assert_int_equal(v[4].raw->int64s[t], json_integer_value(json_array_get(json_object_get(w, "is_last"), t)));
            }
            const char *fp = json_string_value(json_object_get(w, "file_path"));
            bv_bytes b = bv_rlds_value_bytes(&v[6], 0);
            assert_int_equal(b.len, strlen(fp));
            assert_memory_equal(b.data, fp, b.len);
            assert_int_equal(v[7].raw->int64s[0], json_integer_value(json_object_get(w, "episode_id")));
        }
        /* every frame of every camera decodes to 64 x 64 RGB */
        for (int k = 8; k < 12; k++)
            for (int64_t t = 0; t < T; t++) {
                bv_bytes b = bv_rlds_value_bytes(&v[k], t);
                assert_int_equal(bv_image_sniff(b.data, b.len), BV_IMAGE_JPEG);
                if (bv_image_decode(b.data, b.len, &img, label)) fail_msg("%s", bv_error_msg());
                assert_true(img.w == 64 && img.h == 64);
            }
        for (size_t i = 0; i < json_array_size(images); i++) {
            const json_t *im = json_array_get(images, i);
            if (json_integer_value(json_object_get(im, "episode")) != e) continue;
            const char *key = json_string_value(json_object_get(im, "key"));
            int k = 8;
            while (k < 12 && strcmp(keys[k], key)) k++;
            assert_true(k < 12);
            bv_bytes b = bv_rlds_value_bytes(&v[k], json_integer_value(json_object_get(im, "step")));
            assert_int_equal(b.len, json_integer_value(json_object_get(im, "jpeg_bytes")));
            assert_int_equal(bv_image_decode(b.data, b.len, &img, label), BV_OK);
            int iw, ih;
            assert_int_equal(bv_image_dims(b.data, b.len, &iw, &ih, label), BV_OK);
            assert_true(iw == 64 && ih == 64);
            const char *hex = json_string_value(json_object_get(im, "rgb_hex"));
            assert_int_equal(strlen(hex), (size_t)img.w * img.h * 3 * 2);
            for (size_t p = 0; p < (size_t)img.w * img.h * 3; p++) {
                unsigned want;
                sscanf(hex + 2 * p, "%2x", &want);
                if (img.rgb[p] != want)
                    fail_msg("%s %s: pixel byte %zu (row %zu col %zu ch %zu): got %d, PIL %u", label, key, p,
                             p / 3 / img.w, p / 3 % img.w, p % 3, img.rgb[p], want);
            }
            n_images_checked++;
        }
    }
    assert_int_equal(e, json_integer_value(json_object_get(exp, "n_episodes")));
    assert_int_equal(n_images_checked, (int)json_array_size(images));
    assert_true(n_images_checked >= 2);
    bv_image_free(&img);
    bv_example_free(&ex);
    bv_tfr_buf_free(&buf);
    bv_tfr_close(&r);
    bv_rlds_close(&ds);
    json_decref(exp);
}

static void test_episode_errors(void **state) {
    bv_rlds_dataset ds;
    assert_int_equal(bv_rlds_open(&ds, bv_fixture_path(BRIDGE)), BV_OK);
    bv_example_builder b = {0};
    bv_example ex = {0};
    float fl[70] = {0};
    int64_t iv[10] = {0};
    size_t n;
    const uint8_t *s;
    bv_rlds_value v;

    bv_example_add_floats(&b, "steps/action", 69, fl); /* not whole steps */
    bv_example_add_int64s(&b, "steps/observation/state", 10, iv); /* wrong list kind */
    bv_example_add_floats(&b, "episode_metadata/episode_id", 1, fl); /* int32 stored as floats */
    bv_example_add_int64s(&b, "episode_metadata/has_image_0", 2, iv); /* scalar with 2 values */
    bv_example_add_floats(&b, "steps/reward", 9, fl);
    bv_example_add_floats(&b, "steps/discount", 10, fl);
    s = bv_example_builder_finish(&b, &n);
    assert_int_equal(bv_example_decode(&ex, s, n, "x"), BV_OK);

    assert_int_equal(bv_rlds_get(&ds, &ex, "steps/action", &v, "f.tfrecord episode 4"), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "f.tfrecord episode 4: key 'steps/action' has 69 values, not a whole number of steps "
                              "of shape [7]");
    assert_int_equal(bv_rlds_get(&ds, &ex, "steps/observation/state", &v, "E"), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "key 'steps/observation/state' is stored as int64_list, but features.json declares "
                              "Tensor float32 (float_list)");
    assert_int_equal(bv_rlds_get(&ds, &ex, "episode_metadata/episode_id", &v, "E"), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "stored as float_list");
    assert_int_equal(bv_rlds_get(&ds, &ex, "episode_metadata/has_image_0", &v, "E"), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "has 2 values, expected 1");
    assert_int_equal(bv_rlds_get(&ds, &ex, "steps/observation/image_0", &v, "f.tfrecord episode 4"), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "f.tfrecord episode 4: key 'steps/observation/image_0' is missing from the episode");
    assert_int_equal(bv_rlds_get(&ds, &ex, "steps/actions", &v, "E"), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "key 'steps/actions' is not a feature of the dataset");
    bv_test_expect_in(bv_error_msg(), "features.json");
    const char *keys[] = {"steps/discount", "steps/reward"};
    bv_rlds_value vs[2];
    int64_t T;
    assert_int_equal(bv_rlds_get_many(&ds, &ex, 2, keys, vs, &T, "E"), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "key 'steps/reward' has 9 steps but key 'steps/discount' has 10");

    bv_example_builder_free(&b);
    bv_example_free(&ex);
    bv_rlds_close(&ds);
}

static char g_dir[256];

static void write_text(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void expect_open_fails(bv_status want, const char *frag1, const char *frag2) {
    bv_rlds_dataset ds;
    bv_status st = bv_rlds_open(&ds, g_dir);
    if (getenv("BV_TEST_VERBOSE")) printf("    %s\n", bv_error_msg());
    if (st != want) fail_msg("status %s, expected %s (%s)", bv_status_name(st), bv_status_name(want), bv_error_msg());
    bv_test_expect_in(bv_error_msg(), frag1);
    if (frag2) bv_test_expect_in(bv_error_msg(), frag2);
    assert_null(ds.features);
    bv_rlds_close(&ds);
}

static void test_bad_json(void **state) {
    snprintf(g_dir, sizeof g_dir, "/tmp/bv_test_rlds_XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    expect_open_fails(BV_ERR_IO, "features.json", "TFDS dataset directory");
    const char *good_feat = "{\"pythonClassName\": \"x.FeaturesDict\", \"featuresDict\": {\"features\": {"
                            "\"steps\": {\"pythonClassName\": \"x.Dataset\", \"sequence\": {\"feature\": "
                            "{\"pythonClassName\": \"x.FeaturesDict\", \"featuresDict\": {\"features\": {"
                            "\"action\": {\"pythonClassName\": \"x.Tensor\", \"tensor\": {\"shape\": {\"dimensions\": "
                            "[\"7\"]}, \"dtype\": \"float32\", \"encoding\": \"none\"}}}}}, \"length\": \"-1\"}}}}}";
    write_text("features.json", "{\"pythonClassName\": ");
    expect_open_fails(BV_ERR_FORMAT, "features.json: invalid JSON at line 1", NULL);
    write_text("features.json", "{\"pythonClassName\": \"x.FeaturesDict\", \"featuresDict\": {\"features\": "
                                "{\"a\": {\"pythonClassName\": \"x.Tensor\", \"tensor\": {\"shape\": {\"dimensions\": "
                                "[\"seven\"]}, \"dtype\": \"float32\"}}}}}");
    expect_open_fails(BV_ERR_FORMAT, "feature 'a': dimension 0 is not an integer", NULL);
    write_text("features.json", good_feat);
    expect_open_fails(BV_ERR_IO, "dataset_info.json", NULL);
    write_text("dataset_info.json", "{\"name\": \"d\", \"splits\": [{\"name\": \"train\", \"shardLengths\": [\"3\"], "
                                    "\"filepathTemplate\": \"{DATASET}-{SPLIT}.{WHAT}\"}]}");
    expect_open_fails(BV_ERR_FORMAT, "dataset_info.json", "unknown field '{WHAT}'");
    write_text("dataset_info.json", "{\"name\": \"d\", \"splits\": [{\"name\": \"train\", \"shardLengths\": [\"x\"]}]}");
    expect_open_fails(BV_ERR_FORMAT, "shardLengths[0] is not a non-negative integer", NULL);
    write_text("dataset_info.json", "{\"name\": \"d\", \"fileFormat\": \"array_record\", \"splits\": []}");
    expect_open_fails(BV_ERR_UNSUPPORTED, "fileFormat 'array_record'", NULL);
    write_text("dataset_info.json", "{\"name\": \"d\", \"splits\": [{\"name\": \"train\", \"shardLengths\": [1, \"2\"]}]}");
    bv_rlds_dataset ds;
    assert_int_equal(bv_rlds_open(&ds, g_dir), BV_OK);
    assert_int_equal(ds.n_features, 1);
    assert_string_equal(ds.features[0].name, "steps/action");
    assert_int_equal(ds.splits[0].n_episodes, 3);
    bv_test_expect_in(ds.splits[0].files[1], "/d-train.tfrecord-00001-of-00002");
    bv_rlds_close(&ds);
    char p[512];
    snprintf(p, sizeof p, "%s/features.json", g_dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/dataset_info.json", g_dir);
    unlink(p);
    rmdir(g_dir);
}

static void test_images(void **state) {
    /* PNG: a high-contrast image round trips exactly. JPEG (q95, 4:2:0): a smooth image with
     * slowly varying chroma comes back above 45 dB (PIL with the same library: 50.6 dB) */
    int w = 37, h = 23;
    uint8_t *rgb = malloc((size_t)w * h * 3), *smooth = malloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = rgb + 3 * (y * w + x), *q = smooth + 3 * (y * w + x);
            p[0] = (uint8_t)(x * 7);
            p[1] = (uint8_t)(y * 11);
            p[2] = (uint8_t)(255 * ((x + y) % 2));
            q[0] = q[1] = (uint8_t)(x * 5 + y * 3);
            q[2] = (uint8_t)(q[0] / 2 + 64);
        }
    bv_image_bytes png, jpg;
    assert_int_equal(bv_image_encode_png(rgb, w, h, &png), BV_OK);
    assert_int_equal(bv_image_sniff(png.data, png.len), BV_IMAGE_PNG);
    bv_image img = {0};
    assert_int_equal(bv_image_decode(png.data, png.len, &img, "png"), BV_OK);
    assert_true(img.w == w && img.h == h);
    assert_memory_equal(img.rgb, rgb, (size_t)w * h * 3);
    assert_int_equal(bv_image_encode_jpeg(smooth, w, h, 95, &jpg), BV_OK);
    assert_int_equal(bv_image_sniff(jpg.data, jpg.len), BV_IMAGE_JPEG);
    assert_int_equal(bv_image_decode(jpg.data, jpg.len, &img, "jpg"), BV_OK);
    assert_true(img.w == w && img.h == h);
    double se = 0;
    for (size_t i = 0; i < (size_t)w * h * 3; i++)
        se += ((double)img.rgb[i] - smooth[i]) * ((double)img.rgb[i] - smooth[i]);
    double psnr = 10 * log10(255.0 * 255.0 / (se / (w * h * 3)));
    if (getenv("BV_TEST_VERBOSE")) printf("    JPEG q95 PSNR %.1f dB\n", psnr);
    if (psnr < 45) fail_msg("JPEG q95 round trip PSNR %.1f dB, expected >= 45", psnr);
    free(smooth);

    /* rotate180 twice is the identity, once maps (x, y) to (w-1-x, h-1-y) */
    memcpy(img.rgb, rgb, (size_t)w * h * 3);
    bv_image_rotate180(img.rgb, w, h);
    assert_memory_equal(img.rgb, rgb + 3 * ((size_t)w * h - 1), 3);
    assert_memory_equal(img.rgb + 3 * (5 * w + 2), rgb + 3 * ((h - 1 - 5) * w + (w - 1 - 2)), 3);
    bv_image_rotate180(img.rgb, w, h);
    assert_memory_equal(img.rgb, rgb, (size_t)w * h * 3);

    /* not an image */
    const char *html = "<html><body>not a picture</body></html>";
    assert_int_equal(bv_image_decode((const uint8_t *)html, strlen(html), &img, "ds.tfrecord episode 2 key K step 3"),
                     BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "ds.tfrecord episode 2 key K step 3: not a JPEG or PNG image");
    bv_test_expect_in(bv_error_msg(), "starting with 3c 68 74 6d");
    assert_int_equal(bv_image_decode(NULL, 0, &img, "L"), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "L: not a JPEG or PNG image (0 bytes)");
    /* truncated JPEG and PNG */
    assert_int_equal(bv_image_decode(jpg.data, jpg.len / 2, &img, "L"), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "L: corrupt JPEG image");
    assert_int_equal(bv_image_decode(jpg.data, 40, &img, "L"), BV_ERR_FORMAT);
    assert_int_equal(bv_image_decode(png.data, png.len - 20, &img, "L"), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "L: corrupt PNG image");
    /* a corrupted PNG chunk CRC */
    png.data[20] ^= 0xff;
    assert_int_equal(bv_image_decode(png.data, png.len, &img, "L"), BV_ERR_FORMAT);
    free(rgb);
    bv_image_bytes_free(&png);
    bv_image_bytes_free(&jpg);
    bv_image_free(&img);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_episodes_match_python),
        cmocka_unit_test(test_episode_errors),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
