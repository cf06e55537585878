/* Tests of `bitvla convert` (data/convert.h, data/shards.h, data/stats.h):
 *  - the real Bridge debug set converts (25 episodes, 250 steps, 3 shards); the shards hold the
 *    same actions, states, instructions and JPEG frames as an independent decoding by protobuf and
 *    PIL (tests/fixtures/bridge_expect.json); dataset_statistics.json agrees with numpy (quantiles
 *    to 1e-12, extremes exactly, float64 moments to 1e-12 and numpy's float32 ones to float32
 *    accumulation error); the manifest lists shards, counts and lengths; raw-pixel storage too;
 *  - np.quantile's linear method on small samples;
 *  - the LIBERO schema on a synthetic LIBERO-layout RLDS set: gripper 1 - clip(a, 0, 1), proprio =
 *    state, two cameras, PNG frames re-encoded as JPEG;
 *  - bad inputs, each a clear error naming file, episode and key, and no output left behind (the
 *    directory the conversion created is gone): wrong CRC, truncated record, missing key, wrong
 *    dtype, wrong shape, non-JPEG bytes, NaN action, empty dataset, unknown schema, bad schema
 *    file, an output directory that already holds a dataset;
 *  - original LIBERO HDF5 files made here with the HDF5 C API (h5py's layout: demo_N groups,
 *    problem_info attribute): demo order, 180-degree rotation (exact with raw storage), proprio =
 *    ee_states ++ gripper_states, gripper transform, OFT's no-op filter, and the same bad-input
 *    rules (missing key, wrong shape, lengths that disagree, missing problem_info, not HDF5);
 *  - the command line: exit codes and messages. */
#include <dirent.h>
#include <hdf5.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/convert.h"
#include "data/example.h"
#include "data/image.h"
#include "data/shards.h"
#include "data/stats.h"
#include "data/tfrecord.h"
#include "src/progress.h"
#include "tests/util/testutil.h"

#define BRIDGE "rlds_bridge_debug/1.0.0"

static int setup(void **state) { return bv_test_dir_make("convert"); }

static int teardown(void **state) { return bv_test_dir_remove(); }

static json_t *load_json(const char *path) {
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (!j) fail_msg("%s: %s", path, je.text);
    return j;
}

static double jnum(const json_t *v) { return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v); }

static void check_vec(const char *what, const json_t *got, const json_t *want, double rtol, double atol) {
    assert_int_equal(json_array_size(got), json_array_size(want));
    for (size_t i = 0; i < json_array_size(want); i++) {
        double g = jnum(json_array_get(got, i)), w = jnum(json_array_get(want, i));
        if (!(fabs(g - w) <= atol + rtol * fabs(w)))
            fail_msg("%s[%zu]: got %.17g want %.17g (tol %.3g + %.3g * |want|)", what, i, g, w, atol, rtol);
    }
}

static bv_convert_opts opts(const char *out) {
    bv_convert_opts o = {.out_dir = out, .images = -1};
    return o;
}

/* ---- statistics ---- */

static void test_quantile_numpy(void **state) {
    json_t *exp = load_json(bv_fixture_path("bridge_expect.json"));
    const json_t *cases = json_object_get(exp, "quantile_cases");
    assert_true(json_array_size(cases) >= 5);
    for (size_t c = 0; c < json_array_size(cases); c++) {
        const json_t *cs = json_array_get(cases, c), *x = json_object_get(cs, "x");
        size_t n = json_array_size(x);
        float *v = malloc(n * sizeof *v);
        for (size_t i = 0; i < n; i++) v[i] = (float)jnum(json_array_get(x, i));
        /* bv_stats_compute sorts a copy; the single-column statistics give q01 / q99 */
        bv_stats st;
        bv_stats_compute(v, (int64_t)n, 1, &st);
        for (size_t i = 1; i < n; i++) /* sort for bv_quantile_linear */
            for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
                float t = v[j];
                v[j] = v[j - 1];
                v[j - 1] = t;
            }
        const json_t *qs = json_object_get(cs, "q"), *want = json_object_get(cs, "want");
        for (size_t k = 0; k < json_array_size(qs); k++) {
            double q = jnum(json_array_get(qs, k)), w = jnum(json_array_get(want, k));
            double g = bv_quantile_linear(v, (int64_t)n, q);
            if (fabs(g - w) > 1e-12 * fabs(w) + 1e-300)
                fail_msg("case %zu (n=%zu) q=%g: got %.17g, numpy %.17g", c, n, q, g, w);
            if (q == 0.01 && g != st.q01[0]) fail_msg("case %zu: stats q01 %.17g vs %.17g", c, st.q01[0], g);
            if (q == 0.99 && g != st.q99[0]) fail_msg("case %zu: stats q99 %.17g vs %.17g", c, st.q99[0], g);
        }
        bv_stats_free(&st);
        free(v);
    }
    json_decref(exp);
}

/* ---- the Bridge fixture ---- */

static void check_bridge_stats(const char *out, const json_t *exp) {
    char p[600];
    snprintf(p, sizeof p, "%s/dataset_statistics.json", out);
    json_t *got = load_json(p);
    const json_t *g = json_object_get(got, "bridge_dataset"), *w = json_object_get(exp, "stats");
    assert_non_null(g);
    assert_int_equal(json_integer_value(json_object_get(g, "num_transitions")), 250);
    assert_int_equal(json_integer_value(json_object_get(g, "num_trajectories")), 25);
    const char *parts[] = {"action", "proprio"};
    for (int k = 0; k < 2; k++) {
        const json_t *gs = json_object_get(g, parts[k]), *ws = json_object_get(w, parts[k]);
        char what[64];
        const char *exact[] = {"max", "min"};
        for (int i = 0; i < 2; i++) {
            snprintf(what, sizeof what, "%s.%s", parts[k], exact[i]);
            check_vec(what, json_object_get(gs, exact[i]), json_object_get(ws, exact[i]), 0, 0);
        }
        snprintf(what, sizeof what, "%s.q01", parts[k]);
        check_vec(what, json_object_get(gs, "q01"), json_object_get(ws, "q01"), 1e-12, 1e-300);
        snprintf(what, sizeof what, "%s.q99", parts[k]);
        check_vec(what, json_object_get(gs, "q99"), json_object_get(ws, "q99"), 1e-12, 1e-300);
        snprintf(what, sizeof what, "%s.mean (vs float64 numpy)", parts[k]);
        check_vec(what, json_object_get(gs, "mean"), json_object_get(ws, "mean64"), 1e-12, 1e-15);
        snprintf(what, sizeof what, "%s.std (vs float64 numpy)", parts[k]);
        check_vec(what, json_object_get(gs, "std"), json_object_get(ws, "std64"), 1e-12, 1e-15);
        /* OFT's own figures (numpy float32 reductions over 250 rows): float32 accumulation error */
        snprintf(what, sizeof what, "%s.mean (vs OFT's float32 numpy)", parts[k]);
        check_vec(what, json_object_get(gs, "mean"), json_object_get(ws, "mean"), 1e-5, 1e-8);
        snprintf(what, sizeof what, "%s.std (vs OFT's float32 numpy)", parts[k]);
        check_vec(what, json_object_get(gs, "std"), json_object_get(ws, "std"), 1e-5, 1e-8);
        const json_t *mask = json_object_get(gs, "mask");
        assert_int_equal(json_array_size(mask), 7);
        for (int i = 0; i < 7; i++)
            assert_int_equal(json_is_true(json_array_get(mask, i)), k == 1 || i < 6); /* bridge: gripper unmasked */
    }
    json_decref(got);
}

static void test_bridge_jpeg(void **state) {
    json_t *exp = load_json(bv_fixture_path("bridge_expect.json"));
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, "bridge"), BV_OK);
    const char *out = bv_test_path("bridge");
    bv_convert_opts o = opts(out);
    o.episodes_per_shard = 10;
    bv_status st = bv_convert_rlds(bv_fixture_path(BRIDGE), &s, &o);
    if (st) fail_msg("%s", bv_error_msg());
    bv_schema_free(&s);

    char p[600];
    snprintf(p, sizeof p, "%s/manifest.json", out);
    json_t *m = load_json(p);
    assert_string_equal(json_string_value(json_object_get(m, "format")), "bitvla-shards");
    assert_string_equal(json_string_value(json_object_get(m, "dataset_name")), "bridge_dataset");
    assert_int_equal(json_integer_value(json_object_get(m, "num_episodes")), 25);
    assert_int_equal(json_integer_value(json_object_get(m, "num_transitions")), 250);
    const json_t *lens = json_object_get(m, "episode_lengths"), *wl = json_object_get(exp, "lengths");
    assert_int_equal(json_array_size(lens), 25);
    for (int e = 0; e < 25; e++)
        assert_int_equal(json_integer_value(json_array_get(lens, e)), json_integer_value(json_array_get(wl, e)));
    const json_t *shards = json_object_get(m, "shards");
    assert_int_equal(json_array_size(shards), 3);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "schema"), "name")), "bridge");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "images"), "storage")), "jpeg");
    check_bridge_stats(out, exp);

    /* the shards against protobuf / PIL */
    const json_t *eps = json_object_get(exp, "episodes");
    const json_t *im0 = json_array_get(json_object_get(exp, "images"), 0); /* episode 0 image_0 step 0 */
    assert_string_equal(json_string_value(json_object_get(im0, "key")), "steps/observation/image_0");
    int64_t seen = 0;
    bv_image img = {0};
    uint8_t *scratch = NULL;
    size_t scap = 0;
    for (size_t k = 0; k < json_array_size(shards); k++) {
        const json_t *sh = json_array_get(shards, k);
        snprintf(p, sizeof p, "%s/%s", out, json_string_value(json_object_get(sh, "file")));
        bv_shard sd;
        if (bv_shard_open(&sd, p)) fail_msg("%s", bv_error_msg());
        assert_int_equal(sd.n_episodes, json_integer_value(json_object_get(sh, "episodes")));
        assert_int_equal(sd.n_steps, json_integer_value(json_object_get(sh, "transitions")));
        assert_int_equal(sd.action_dim, 7);
        assert_int_equal(sd.proprio_dim, 7);
        assert_int_equal(sd.n_cams, 1);
        assert_int_equal(sd.storage, BV_IMAGES_JPEG);
        assert_int_equal(bv_shard_find_camera(&sd, "primary"), 0);
        assert_int_equal(bv_shard_find_camera(&sd, "wrist"), -1);
        assert_true(sd.cams[0].height == 64 && sd.cams[0].width == 64);
        for (int64_t e = 0; e < sd.n_episodes; e++) {
            int64_t ge = sd.episode_index[e];
            assert_int_equal(ge, seen + e);
            char key[16];
            snprintf(key, sizeof key, "%lld", (long long)ge);
            const json_t *w = json_object_get(eps, key);
            int64_t s0 = sd.episode_offsets[e], T = sd.episode_offsets[e + 1] - s0;
            assert_int_equal(T, json_integer_value(json_array_get(wl, ge)));
            if (!w) continue;
            float *a = malloc((size_t)T * 7 * sizeof *a);
            assert_int_equal(bv_shard_read_action(&sd, s0, T, a), BV_OK);
            const json_t *wa = json_object_get(w, "action");
            for (int64_t i = 0; i < T * 7; i++)
                if (a[i] != (float)jnum(json_array_get(wa, i)))
                    fail_msg("episode %lld action[%lld]: %.9g vs %.9g", (long long)ge, (long long)i, a[i],
                             jnum(json_array_get(wa, i)));
            assert_int_equal(bv_shard_read_proprio(&sd, s0, T, a), BV_OK);
            const json_t *ws = json_object_get(w, "state");
            for (int64_t i = 0; i < T * 7; i++) assert_true(a[i] == (float)jnum(json_array_get(ws, i)));
            free(a);
            char *instr;
            assert_int_equal(bv_shard_read_instruction(&sd, e, &instr), BV_OK);
            assert_string_equal(instr, json_string_value(json_object_get(w, "instruction")));
            free(instr);
            if (ge == 0) {
                assert_int_equal(bv_shard_read_rgb(&sd, 0, s0, &img, &scratch, &scap), BV_OK);
                size_t len;
                assert_int_equal(bv_shard_read_jpeg(&sd, 0, s0, &scratch, &scap, &len), BV_OK);
                assert_int_equal(len, json_integer_value(json_object_get(im0, "jpeg_bytes"))); /* source bytes */
                const char *hex = json_string_value(json_object_get(im0, "rgb_hex"));
                for (size_t q = 0; q < (size_t)64 * 64 * 3; q++) {
                    unsigned v;
                    sscanf(hex + 2 * q, "%2x", &v);
                    if (img.rgb[q] != v) fail_msg("shard frame byte %zu: %d vs PIL %u", q, img.rgb[q], v);
                }
            }
        }
        seen += sd.n_episodes;
        bv_shard_close(&sd);
    }
    assert_int_equal(seen, 25);
    /* nothing else in the directory: no temporaries */
    DIR *d = opendir(out);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        if (strstr(de->d_name, ".tmp.")) fail_msg("leftover temporary %s", de->d_name);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 5);
    free(scratch);
    bv_image_free(&img);
    json_decref(m);

    /* converting again into the same directory needs --force */
    bv_schema_load(&s, "bridge");
    o.max_episodes = 2;
    assert_int_equal(bv_convert_rlds(bv_fixture_path(BRIDGE), &s, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "already holds a converted dataset");
    bv_test_expect_in(bv_error_msg(), "--force");
    o.force = true;
    assert_int_equal(bv_convert_rlds(bv_fixture_path(BRIDGE), &s, &o), BV_OK);
    snprintf(p, sizeof p, "%s/manifest.json", out);
    m = load_json(p);
    assert_int_equal(json_integer_value(json_object_get(m, "num_episodes")), 2);
    assert_int_equal(json_array_size(json_object_get(m, "shards")), 1); /* the old shards 1, 2 are gone */
    snprintf(p, sizeof p, "%s/shard-00001.h5", out);
    assert_int_equal(access(p, F_OK), -1);
    json_decref(m);
    bv_schema_free(&s);
    json_decref(exp);
}

static void test_bridge_raw(void **state) {
    json_t *exp = load_json(bv_fixture_path("bridge_expect.json"));
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, "bridge"), BV_OK);
    const char *out = bv_test_path("bridge_raw");
    bv_convert_opts o = opts(out);
    o.images = BV_IMAGES_RAW;
    o.max_episodes = 3;
    o.dataset_name = "bridge_small";
    if (bv_convert_rlds(bv_fixture_path(BRIDGE), &s, &o)) fail_msg("%s", bv_error_msg());
    char p[600];
    snprintf(p, sizeof p, "%s/shard-00000.h5", out);
    bv_shard sd;
    assert_int_equal(bv_shard_open(&sd, p), BV_OK);
    assert_int_equal(sd.storage, BV_IMAGES_RAW);
    assert_int_equal(sd.n_episodes, 3);
    assert_int_equal(sd.n_steps, 30);
    assert_string_equal(sd.dataset_name, "bridge_small");
    bv_image img = {0};
    assert_int_equal(bv_shard_read_rgb(&sd, 0, 0, &img, NULL, NULL), BV_OK);
    const char *hex = json_string_value(json_object_get(json_array_get(json_object_get(exp, "images"), 0), "rgb_hex"));
    for (size_t q = 0; q < (size_t)64 * 64 * 3; q++) {
        unsigned v;
        sscanf(hex + 2 * q, "%2x", &v);
        if (img.rgb[q] != v) fail_msg("raw frame byte %zu: %d vs PIL %u", q, img.rgb[q], v);
    }
    bv_image_free(&img);
    bv_shard_close(&sd);
    snprintf(p, sizeof p, "%s/dataset_statistics.json", out);
    json_t *st = load_json(p);
    assert_non_null(json_object_get(st, "bridge_small"));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(st, "bridge_small"), "num_transitions")), 30);
    json_decref(st);
    bv_schema_free(&s);
    json_decref(exp);
}

/* ---- a synthetic LIBERO-layout RLDS dataset ---- */

enum fault {
    F_NONE,
    F_MISSING_KEY,   /* episode 1 lacks steps/action */
    F_WRONG_DTYPE,   /* episode 1: steps/action stored as int64 */
    F_WRONG_SHAPE,   /* episode 1: 6 action values per step */
    F_BAD_JPEG,      /* episode 1 step 2: the primary frame is not an image */
    F_WRONG_SIZE,    /* episode 1 step 1: a 6 x 8 frame */
    F_NAN,           /* episode 2 step 0: a NaN action */
    F_EMPTY,         /* no episodes at all */
    F_COUNT,         /* dataset_info lists one episode more than the file has */
};

#define LH 8
#define LW 8
#define LT 5
#define LEPS 3

static float lib_action(int e, int t, int d) {
    if (d == 6) {
        static const float g[LT] = {-1.0f, 1.0f, 0.25f, 3.0f, -0.5f};
        return g[(t + e) % LT];
    }
    return 0.01f * (float)(e * 100 + t * 10 + d);
}
static float lib_state(int e, int t, int d) { return (float)(e + 1) * 0.5f + (float)t * 0.125f - (float)d; }

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void make_libero(const char *dir, enum fault fault) {
    mkdir(dir, 0777);
    char p[700];
    snprintf(p, sizeof p, "%s/features.json", dir);
    const char *tensor = "{\"pythonClassName\": \"tensorflow_datasets.core.features.tensor_feature.Tensor\", "
                         "\"tensor\": {\"shape\": {\"dimensions\": [\"%d\"]}, \"dtype\": \"float32\", \"encoding\": "
                         "\"none\"}}";
    const char *image = "{\"pythonClassName\": \"tensorflow_datasets.core.features.image_feature.Image\", \"image\": "
                        "{\"shape\": {\"dimensions\": [\"%d\", \"%d\", \"3\"]}, \"dtype\": \"uint8\", "
                        "\"encodingFormat\": \"%s\"}}";
    char act[400], st[400], im[400], wr[400], feat[4000];
    snprintf(act, sizeof act, tensor, 7);
    snprintf(st, sizeof st, tensor, 8);
    snprintf(im, sizeof im, image, LH, LW, "jpeg");
    snprintf(wr, sizeof wr, image, LH, LW, "png");
    snprintf(feat, sizeof feat,
             "{\"pythonClassName\": \"tensorflow_datasets.core.features.features_dict.FeaturesDict\", \"featuresDict\": "
             "{\"features\": {\"steps\": {\"pythonClassName\": \"tensorflow_datasets.core.features.dataset_feature."
             "Dataset\", \"sequence\": {\"feature\": {\"pythonClassName\": \"tensorflow_datasets.core.features."
             "features_dict.FeaturesDict\", \"featuresDict\": {\"features\": {\"action\": %s, \"language_instruction\": "
             "{\"pythonClassName\": \"tensorflow_datasets.core.features.text_feature.Text\", \"text\": {}}, "
             "\"observation\": {\"pythonClassName\": \"tensorflow_datasets.core.features.features_dict.FeaturesDict\", "
             "\"featuresDict\": {\"features\": {\"image\": %s, \"wrist_image\": %s, \"state\": %s}}}}}}, \"length\": "
             "\"-1\"}}}}}",
             act, im, wr, st);
    write_file(p, feat);
    int n_eps = fault == F_EMPTY ? 0 : LEPS;
    snprintf(p, sizeof p, "%s/dataset_info.json", dir);
    char info[600];
    snprintf(info, sizeof info,
             "{\"name\": \"libero_synth\", \"version\": \"1.0.0\", \"fileFormat\": \"tfrecord\", \"splits\": [{\"name\": "
             "\"train\", \"shardLengths\": [\"%d\"], \"filepathTemplate\": \"{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}\"}]}",
             n_eps + (fault == F_COUNT));
    write_file(p, info);
    snprintf(p, sizeof p, "%s/libero_synth-train.tfrecord-00000-of-00001", dir);
    bv_tfr_writer w;
    assert_int_equal(bv_tfr_writer_open(&w, p), BV_OK);
    bv_example_builder b = {0};
    uint8_t rgb[LH * LW * 3];
    for (int e = 0; e < n_eps; e++) {
        bv_example_builder_reset(&b);
        float a[LT * 7], s[LT * 8];
        int64_t ai[LT * 7];
        for (int t = 0; t < LT; t++) {
            for (int d = 0; d < 7; d++) a[t * 7 + d] = lib_action(e, t, d), ai[t * 7 + d] = t;
            for (int d = 0; d < 8; d++) s[t * 8 + d] = lib_state(e, t, d);
        }
        if (fault == F_NAN && e == 2) a[3] = NAN;
        if (!(fault == F_MISSING_KEY && e == 1)) {
            if (fault == F_WRONG_DTYPE && e == 1)
                bv_example_add_int64s(&b, "steps/action", LT * 7, ai);
            else
                bv_example_add_floats(&b, "steps/action", fault == F_WRONG_SHAPE && e == 1 ? LT * 6 : LT * 7, a);
        }
        bv_example_add_floats(&b, "steps/observation/state", LT * 8, s);
        const char *instr[LT];
        size_t il[LT];
        char text[64];
        snprintf(text, sizeof text, "Put the bowl %d on the plate", e);
        for (int t = 0; t < LT; t++) instr[t] = text, il[t] = strlen(text);
        bv_example_add_bytes(&b, "steps/language_instruction", LT, (const void *const *)instr, il);
        bv_image_bytes jp[LT], pn[LT];
        const void *jv[LT], *pv[LT];
        size_t jl[LT], pl[LT];
        for (int t = 0; t < LT; t++) {
            for (int i = 0; i < LH * LW * 3; i++) rgb[i] = (uint8_t)(40 * e + 20 * t + (i % 3) * 50 + i / 24);
            int h = fault == F_WRONG_SIZE && e == 1 && t == 1 ? 6 : LH;
            assert_int_equal(bv_image_encode_jpeg(rgb, LW, h, 90, &jp[t]), BV_OK);
            assert_int_equal(bv_image_encode_png(rgb, LW, LH, &pn[t]), BV_OK);
            jv[t] = jp[t].data;
            jl[t] = jp[t].len;
            pv[t] = pn[t].data;
            pl[t] = pn[t].len;
        }
        if (fault == F_BAD_JPEG && e == 1) jv[2] = "<html>oops</html>", jl[2] = 17;
        bv_example_add_bytes(&b, "steps/observation/image", LT, jv, jl);
        bv_example_add_bytes(&b, "steps/observation/wrist_image", LT, pv, pl);
        size_t n;
        const uint8_t *ser = bv_example_builder_finish(&b, &n);
        assert_int_equal(bv_tfr_writer_write(&w, ser, n), BV_OK);
        for (int t = 0; t < LT; t++) {
            bv_image_bytes_free(&jp[t]);
            bv_image_bytes_free(&pn[t]);
        }
    }
    assert_int_equal(bv_tfr_writer_close(&w), BV_OK);
    bv_example_builder_free(&b);
}

static void test_libero_schema(void **state) {
    const char *src = bv_test_path("libero_src"), *out = bv_test_path("libero_out");
    make_libero(src, F_NONE);
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, "libero"), BV_OK);
    bv_convert_opts o = opts(out);
    if (bv_convert_rlds(src, &s, &o)) fail_msg("%s", bv_error_msg());
    char p[700];
    snprintf(p, sizeof p, "%s/shard-00000.h5", out);
    bv_shard sd;
    assert_int_equal(bv_shard_open(&sd, p), BV_OK);
    assert_int_equal(sd.n_episodes, LEPS);
    assert_int_equal(sd.n_steps, LEPS * LT);
    assert_int_equal(sd.action_dim, 7);
    assert_int_equal(sd.proprio_dim, 8);
    assert_int_equal(sd.n_cams, 2);
    assert_string_equal(sd.cams[1].name, "wrist");
    float a[LEPS * LT * 7], pr[LEPS * LT * 8];
    assert_int_equal(bv_shard_read_action(&sd, 0, LEPS * LT, a), BV_OK);
    assert_int_equal(bv_shard_read_proprio(&sd, 0, LEPS * LT, pr), BV_OK);
    for (int e = 0; e < LEPS; e++)
        for (int t = 0; t < LT; t++) {
            for (int d = 0; d < 7; d++) {
                float want = lib_action(e, t, d);
                if (d == 6) want = 1.0f - (want < 0 ? 0 : want > 1 ? 1 : want); /* OFT: 1 - clip(a, 0, 1) */
                float got = a[(e * LT + t) * 7 + d];
                if (got != want) fail_msg("episode %d step %d action[%d]: %g, want %g", e, t, d, got, want);
            }
            for (int d = 0; d < 8; d++) assert_true(pr[(e * LT + t) * 8 + d] == lib_state(e, t, d)); /* proprio = state */
        }
    char *instr;
    assert_int_equal(bv_shard_read_instruction(&sd, 2, &instr), BV_OK);
    assert_string_equal(instr, "Put the bowl 2 on the plate");
    free(instr);
    /* the wrist frames were PNG: stored re-encoded as JPEG, close to the pixels */
    uint8_t *scratch = NULL;
    size_t scap = 0, len;
    assert_int_equal(bv_shard_read_jpeg(&sd, 1, 7, &scratch, &scap, &len), BV_OK);
    assert_int_equal(bv_image_sniff(scratch, len), BV_IMAGE_JPEG);
    bv_image img = {0};
    assert_int_equal(bv_shard_read_rgb(&sd, 1, 7, &img, &scratch, &scap), BV_OK);
    assert_true(img.w == LW && img.h == LH);
    free(scratch);
    bv_image_free(&img);
    bv_shard_close(&sd);
    snprintf(p, sizeof p, "%s/dataset_statistics.json", out);
    json_t *st = load_json(p);
    const json_t *ds = json_object_get(st, "libero_synth");
    assert_non_null(ds);
    const json_t *am = json_object_get(json_object_get(ds, "action"), "mask");
    assert_true(json_is_true(json_array_get(am, 0)) && json_is_false(json_array_get(am, 6)));
    /* gripper after the transform lies in [0, 1] */
    assert_true(jnum(json_array_get(json_object_get(json_object_get(ds, "action"), "min"), 6)) == 0.0);
    assert_true(jnum(json_array_get(json_object_get(json_object_get(ds, "action"), "max"), 6)) == 1.0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(ds, "proprio"), "q99")), 8);
    json_decref(st);
    bv_schema_free(&s);
}

/* Runs a conversion expected to fail and checks the status, the message fragments and that the
 * output directory (which the conversion created) does not exist afterwards. */
static void expect_fail(const char *src, const char *schema, bv_status want, const char *f1, const char *f2,
                        const char *f3) {
    const char *out = bv_test_path("out_fail");
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, schema), BV_OK);
    bv_convert_opts o = opts(out);
    o.episodes_per_shard = 1; /* so earlier episodes have finished shards to clean up */
    bv_error_clear();
    bv_status st = bv_convert_rlds(src, &s, &o);
    bv_schema_free(&s);
    const char *msg = bv_error_msg();
    if (getenv("BV_TEST_VERBOSE")) printf("    %s\n", msg);
    if (st != want) fail_msg("status %s, expected %s (message: %s)", bv_status_name(st), bv_status_name(want), msg);
    bv_test_expect_in(msg, f1);
    if (f2) bv_test_expect_in(msg, f2);
    if (f3) bv_test_expect_in(msg, f3);
    struct stat sb;
    if (stat(out, &sb) == 0) {
        DIR *d = opendir(out);
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') fail_msg("failed conversion left %s/%s", out, de->d_name);
        closedir(d);
        fail_msg("failed conversion left the directory %s", out);
    }
}

static void test_bad_inputs(void **state) {
    char file[1024], src[512];
    /* corrupt copies of the Bridge file */
    const char *bsrc = bv_fixture_path(BRIDGE);
    snprintf(src, sizeof src, "%s", bv_test_path("bridge_bad"));
    mkdir(src, 0777);
    char p[1200];
    const char *names[] = {"features.json", "dataset_info.json", "bridge_dataset-train.tfrecord-00000-of-00001"};
    size_t sizes[3];
    uint8_t *data[3];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", bsrc, names[i]);
        FILE *f = fopen(p, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        sizes[i] = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        data[i] = malloc(sizes[i]);
        assert_int_equal(fread(data[i], 1, sizes[i], f), sizes[i]);
        fclose(f);
        snprintf(p, sizeof p, "%s/%s", src, names[i]);
        f = fopen(p, "wb");
        fwrite(data[i], 1, sizes[i], f);
        fclose(f);
    }
    snprintf(file, sizeof file, "%s/%s", src, names[2]);
    /* offset of episode 3 */
    uint64_t off = 0;
    for (int e = 0; e < 3; e++) {
        uint64_t n;
        memcpy(&n, data[2] + off, 8);
        off += 16 + n;
    }
    char at[128];
    data[2][off + 12 + 1000] ^= 0x10;
    FILE *f = fopen(file, "wb");
    fwrite(data[2], 1, sizes[2], f);
    fclose(f);
    snprintf(at, sizeof at, "record 3 at byte offset %llu: data CRC mismatch", (unsigned long long)off);
    expect_fail(src, "bridge", BV_ERR_FORMAT, file, at, NULL);
    data[2][off + 12 + 1000] ^= 0x10;
    f = fopen(file, "wb");
    fwrite(data[2], 1, sizes[2] - 100, f); /* truncated inside the last episode */
    fclose(f);
    expect_fail(src, "bridge", BV_ERR_FORMAT, file, "record 24 at byte offset", "file truncated");
    for (int i = 0; i < 3; i++) free(data[i]);

    /* synthetic LIBERO sets with one fault each */
    struct {
        enum fault f;
        bv_status st;
        const char *a, *b;
    } cases[] = {
        {F_MISSING_KEY, BV_ERR_FORMAT, "key 'steps/action' is missing from the episode", NULL},
        {F_WRONG_DTYPE, BV_ERR_SHAPE, "key 'steps/action' is stored as int64_list", "float32"},
        {F_WRONG_SHAPE, BV_ERR_SHAPE, "key 'steps/action' has 30 values, not a whole number of steps of shape [7]",
         NULL},
        {F_BAD_JPEG, BV_ERR_FORMAT, "key 'steps/observation/image' step 2: not a JPEG or PNG image", NULL},
        {F_WRONG_SIZE, BV_ERR_SHAPE, "key 'steps/observation/image' step 1: image is 6 x 8, expected 8 x 8", NULL},
        {F_NAN, BV_ERR_FORMAT, "key 'steps/action' step 0 dim 3 is nan", NULL},
        {F_EMPTY, BV_ERR_FORMAT, "empty dataset", NULL},
        {F_COUNT, BV_ERR_FORMAT, "3 episodes, but", "lists 4 for this shard"},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        snprintf(src, sizeof src, "%s/synth_%zu", bv_test_dir(), i);
        make_libero(src, cases[i].f);
        snprintf(file, sizeof file, "%s/libero_synth-train.tfrecord-00000-of-00001", src);
        const char *ep = cases[i].f == F_NAN ? "episode 2 (byte offset" : "episode 1 (byte offset";
        if (cases[i].f == F_EMPTY || cases[i].f == F_COUNT) ep = NULL;
        expect_fail(src, "libero", cases[i].st, cases[i].f == F_EMPTY ? cases[i].a : file, ep ? ep : cases[i].a,
                    ep ? cases[i].a : cases[i].b);
        if (cases[i].b && ep) bv_test_expect_in(bv_error_msg(), cases[i].b);
    }
    /* a schema key the dataset lacks; a schema whose role has the wrong kind */
    snprintf(src, sizeof src, "%s/synth_0", bv_test_dir());
    expect_fail(src, "bridge", BV_ERR_ARG, "schema bridge: role primary_image -> key 'steps/observation/image_0'",
                "features.json", NULL);
    snprintf(p, sizeof p, "%s/kind.json", bv_test_dir());
    write_file(p, "{\"name\": \"k\", \"keys\": {\"primary_image\": \"steps/observation/state\", \"proprio\": "
                  "\"steps/observation/state\", \"action\": \"steps/action\", \"instruction\": "
                  "\"steps/language_instruction\"}}");
    expect_fail(src, p, BV_ERR_SHAPE, "role primary_image -> key 'steps/observation/state' is a Tensor", "an Image", NULL);
    snprintf(p, sizeof p, "%s/mask.json", bv_test_dir());
    write_file(p, "{\"name\": \"m\", \"keys\": {\"primary_image\": \"steps/observation/image\", \"proprio\": "
                  "\"steps/observation/state\", \"action\": \"steps/action\", \"instruction\": "
                  "\"steps/language_instruction\"}, \"action_mask\": [true, false]}");
    expect_fail(src, p, BV_ERR_SHAPE, "action_mask has 2 entries but the action has 7", NULL, NULL);

    /* unknown and malformed schemas */
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, "libro"), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "unknown schema 'libro' (expected libero, bridge or the path of a JSON schema file)");
    snprintf(p, sizeof p, "%s/bad.json", bv_test_dir());
    write_file(p, "{\"name\": \"x\", \"keys\": {\"action\": \"a\"}}");
    assert_int_equal(bv_schema_load(&s, p), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), p);
    bv_test_expect_in(bv_error_msg(), "missing key \"primary_image\"");
    write_file(p, "{\"name\": \"x\", \"keys\": {\"camera\": \"a\"}}");
    assert_int_equal(bv_schema_load(&s, p), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "unknown role \"camera\"");
    write_file(p, "{\"name\": \"x\", \"keys\": {}, \"transform\": {}}");
    assert_int_equal(bv_schema_load(&s, p), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "unknown key \"transform\"");
    write_file(p, "{\"name\": ");
    assert_int_equal(bv_schema_load(&s, p), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "invalid JSON");
    /* a missing source directory */
    assert_int_equal(bv_schema_load(&s, "bridge"), BV_OK);
    bv_convert_opts o = opts(bv_test_path("never"));
    assert_int_equal(bv_convert_rlds(bv_test_path("no_such_dir"), &s, &o), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "no_such_dir/features.json");
    assert_int_equal(access(bv_test_path("never"), F_OK), -1);
    bv_schema_free(&s);
}

/* ---- the command line ---- */

static int run(const char *args, char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = 0;
    char *slash = strrchr(exe, '/');
    snprintf(slash + 1, sizeof exe - (size_t)(slash + 1 - exe), "bitvla");
    if (access(exe, X_OK) != 0) fail_msg("%s not built (the test runs the CLI beside itself)", exe);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "BV_PROGRESS=plain %s %s 2>&1", exe, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t k = fread(out, 1, cap - 1, p);
    out[k] = 0;
    int rc = pclose(p);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli(void **state) {
    char out[8192], args[3000];
    assert_int_equal(run("convert --help", out, sizeof out), 0);
    bv_test_expect_in(out, "bitvla convert rlds SRC_DIR --schema libero|bridge|FILE.json --out SHARD_DIR");
    assert_int_equal(run("convert", out, sizeof out), 2);
    assert_int_equal(run("convert tfds x --out y", out, sizeof out), 2);
    bv_test_expect_in(out, "unknown source kind 'tfds' (expected rlds or libero-hdf5)");
    snprintf(args, sizeof args, "convert rlds %s --schema bridge", bv_fixture_path(BRIDGE));
    assert_int_equal(run(args, out, sizeof out), 2);
    bv_test_expect_in(out, "--out SHARD_DIR is required");
    snprintf(args, sizeof args, "convert rlds %s --out %s", bv_fixture_path(BRIDGE), bv_test_path("cli"));
    assert_int_equal(run(args, out, sizeof out), 2);
    bv_test_expect_in(out, "--schema libero|bridge|FILE.json is required");
    snprintf(args, sizeof args, "convert rlds %s --schema libro --out %s", bv_fixture_path(BRIDGE), bv_test_path("cli"));
    assert_int_equal(run(args, out, sizeof out), 2);
    bv_test_expect_in(out, "unknown schema 'libro'");
    snprintf(args, sizeof args, "convert rlds %s --schema bridge --out %s --images png", bv_fixture_path(BRIDGE),
             bv_test_path("cli"));
    assert_int_equal(run(args, out, sizeof out), 2);
    bv_test_expect_in(out, "--images expects jpeg or raw, got 'png'");
    snprintf(args, sizeof args, "convert rlds %s --schema bridge --out %s --episodes-per-shard 0", bv_fixture_path(BRIDGE),
             bv_test_path("cli"));
    assert_int_equal(run(args, out, sizeof out), 2);
    bv_test_expect_in(out, "--episodes-per-shard expects an integer");
    snprintf(args, sizeof args, "convert rlds %s --schema bridge --out %s --max-episodes 4 --episodes-per-shard 3",
             bv_fixture_path(BRIDGE), bv_test_path("cli"));
    int rc = run(args, out, sizeof out);
    if (rc) fail_msg("exit %d: %s", rc, out);
    bv_test_expect_in(out, "convert: 4/4 episodes (100.0%)"); /* the plain progress line */
    bv_test_expect_in(out, "converted into");
    snprintf(args, sizeof args, "%s/shard-00001.h5", bv_test_path("cli"));
    assert_int_equal(access(args, F_OK), 0);
    /* a failure exits 1 with the message */
    snprintf(args, sizeof args, "convert rlds %s --schema bridge --out %s", bv_test_path("nowhere"), bv_test_path("cli2"));
    assert_int_equal(run(args, out, sizeof out), 1);
    bv_test_expect_in(out, "bitvla convert: ");
    bv_test_expect_in(out, "nowhere/features.json");
}

static void test_progress_format(void **state) {
    char b[32];
    assert_string_equal(bv_progress_hms(0, b, sizeof b), "0:00");
    assert_string_equal(bv_progress_hms(61.4, b, sizeof b), "1:01");
    assert_string_equal(bv_progress_hms(3600 * 2 + 59, b, sizeof b), "2:00:59");
    assert_string_equal(bv_progress_hms(-1, b, sizeof b), "?");
    assert_string_equal(bv_progress_hms(NAN, b, sizeof b), "?");
}


/* ---- original LIBERO HDF5 ---- */

#define HH 6
#define HW 8

enum hfault { H_NONE, H_MISSING_EE, H_ACTIONS6, H_NO_PROBLEM_INFO, H_LEN_MISMATCH, H_IMG_SIZE };

static double h_action(int demo, int t, int d) {
    if (demo == 0) { /* no-op pattern: kept steps 1, 3, 5 */
        static const double a[6][7] = {{0, 0, 0, 0, 0, 0, -1},   {0.5, 0, 0, 0, 0, 0, -1}, {0, 0, 0, 0, 0, 0, -1},
                                       {0, 0, 0, 0, 0, 0, 1},    {1e-5, 0, 0, 0, 0, 0, 1}, {0, 0.2, 0, 0, 0, 0, 1}};
        return a[t][d];
    }
    return d == 6 ? (t % 2 ? 1.0 : -1.0) : 0.1 * (demo + 1) + 0.01 * t + 0.001 * d;
}
static double h_ee(int demo, int t, int d) { return 100.0 * demo + 10.0 * t + d + 0.25; }
static double h_grip(int demo, int t, int d) { return -0.01 * (demo + t) - 0.5 * d; }
static uint8_t h_pix(int cam, int demo, int t, int y, int x, int c) {
    return (uint8_t)(cam * 30 + demo * 3 + t * 5 + y * 12 + x * 6 + c * 20); /* <= 227: no wrap-around edges */
}

static void h5_write(hid_t g, const char *name, hid_t ftype, hid_t mtype, int rank, const hsize_t *dims,
                     const void *data) {
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(g, name, ftype, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_true(H5Dwrite(d, mtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Sclose(sp);
}

/* A LIBERO demo file with demos (number, T) as h5py writes them (variable-length UTF-8 string
 * attribute when vlen, else fixed-length). */
static void make_libero_h5(const char *path, int n, const int *nums, const int *Ts, const char *instr, bool vlen,
                           enum hfault fault) {
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t data = H5Gcreate2(f, "data", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (fault != H_NO_PROBLEM_INFO) {
        char pi[512];
        snprintf(pi, sizeof pi,
                 "{\"problem_name\": \"libero_tabletop_manipulation\", \"domain_name\": \"robosuite\", "
                 "\"language_instruction\": \"%s\"}",
                 instr);
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_cset(t, H5T_CSET_UTF8);
        hid_t sp = H5Screate(H5S_SCALAR);
        if (vlen) {
            H5Tset_size(t, H5T_VARIABLE);
            hid_t a = H5Acreate2(data, "problem_info", t, sp, H5P_DEFAULT, H5P_DEFAULT);
            const char *p = pi;
            assert_true(H5Awrite(a, t, &p) >= 0);
            H5Aclose(a);
        } else {
            H5Tset_size(t, strlen(pi));
            hid_t a = H5Acreate2(data, "problem_info", t, sp, H5P_DEFAULT, H5P_DEFAULT);
            assert_true(H5Awrite(a, t, pi) >= 0);
            H5Aclose(a);
        }
        H5Sclose(sp);
        H5Tclose(t);
    }
    for (int i = 0; i < n; i++) {
        int dn = nums[i], T = Ts[i];
        char name[32];
        snprintf(name, sizeof name, "demo_%d", dn);
        hid_t g = H5Gcreate2(data, name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hid_t obs = H5Gcreate2(g, "obs", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        double *a = malloc((size_t)T * 7 * sizeof *a), *ee = malloc((size_t)T * 6 * sizeof *ee),
               *gr = malloc((size_t)T * 2 * sizeof *gr), *js = calloc((size_t)T * 7, sizeof *js);
        for (int t = 0; t < T; t++) {
            for (int d = 0; d < 7; d++) a[t * 7 + d] = h_action(dn, t, d);
            for (int d = 0; d < 6; d++) ee[t * 6 + d] = h_ee(dn, t, d);
            for (int d = 0; d < 2; d++) gr[t * 2 + d] = h_grip(dn, t, d);
        }
        hsize_t da[2] = {(hsize_t)T, fault == H_ACTIONS6 && i == 1 ? 6 : 7}, de[2] = {(hsize_t)T, 6},
                dg[2] = {(hsize_t)(fault == H_LEN_MISMATCH && i == 1 ? T - 1 : T), 2}, dj[2] = {(hsize_t)T, 7};
        h5_write(g, "actions", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, da, a);
        if (!(fault == H_MISSING_EE && i == 1)) h5_write(obs, "ee_states", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, de, ee);
        h5_write(obs, "gripper_states", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dg, gr);
        h5_write(obs, "joint_states", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, 2, dj, js);
        uint8_t *rw = calloc((size_t)T, 1);
        hsize_t d1[1] = {(hsize_t)T};
        h5_write(g, "rewards", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, d1, rw);
        h5_write(g, "dones", H5T_STD_U8LE, H5T_NATIVE_UINT8, 1, d1, rw);
        const char *cams[2] = {"agentview_rgb", "eye_in_hand_rgb"};
        for (int c = 0; c < 2; c++) {
            int h = fault == H_IMG_SIZE && i == 1 && c == 1 ? HH + 2 : HH;
            uint8_t *im = malloc((size_t)T * h * HW * 3);
            for (int t = 0; t < T; t++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < HW; x++)
                        for (int k = 0; k < 3; k++) im[(((size_t)t * h + y) * HW + x) * 3 + k] = h_pix(c, dn, t, y, x, k);
            hsize_t di[4] = {(hsize_t)T, (hsize_t)h, HW, 3};
            h5_write(obs, cams[c], H5T_STD_U8LE, H5T_NATIVE_UINT8, 4, di, im);
            free(im);
        }
        free(a);
        free(ee);
        free(gr);
        free(js);
        free(rw);
        H5Gclose(obs);
        H5Gclose(g);
    }
    H5Gclose(data);
    H5Fclose(f);
}

static void test_noop_rule(void **state) {
    float still[7] = {0, 0, 0, 0, 0, 0, -1}, moving[7] = {0, 0, 2e-4, 0, 0, 0, -1}, tiny[7] = {5e-5, 5e-5, 0, 0, 0, 0, 1};
    float closed[7] = {0, 0, 0, 0, 0, 0, 1};
    assert_true(bv_libero_is_noop(still, NULL)); /* first step: only the norm counts */
    assert_false(bv_libero_is_noop(moving, NULL));
    assert_true(bv_libero_is_noop(still, still));
    assert_false(bv_libero_is_noop(still, closed)); /* the gripper command changed */
    assert_true(bv_libero_is_noop(tiny, closed));   /* |(5e-5, 5e-5)| = 7.1e-5 < 1e-4 */
    assert_false(bv_libero_is_noop(tiny, still));
}

static void test_libero_hdf5(void **state) {
    char A[600], B[600]; /* tpath's buffers rotate: keep copies */
    snprintf(A, sizeof A, "%s", bv_test_path("a.hdf5"));
    snprintf(B, sizeof B, "%s", bv_test_path("b.hdf5"));
    int na[3] = {10, 0, 2}, ta[3] = {4, 6, 3}, nb[1] = {0}, tb[1] = {2};
    make_libero_h5(A, 3, na, ta, "pick up the black bowl and place it on the plate", true, H_NONE);
    make_libero_h5(B, 1, nb, tb, "open the top drawer ", false, H_NONE);
    const char *files[2] = {A, B};
    /* episode order: a.hdf5 demo_0, demo_2, demo_10 (numeric, not alphabetical), then b.hdf5 demo_0 */
    const int ep_file[4] = {0, 0, 0, 1}, ep_demo[4] = {0, 2, 10, 0}, ep_T[4] = {6, 3, 4, 2};
    const char *ep_instr[2] = {"pick up the black bowl and place it on the plate", "open the top drawer"};

    for (int filt = 0; filt < 2; filt++) {
        const char *out = bv_test_path(filt ? "lh_jpeg" : "lh_raw");
        bv_convert_opts o = opts(out);
        o.images = filt ? BV_IMAGES_JPEG : BV_IMAGES_RAW;
        o.filter_noops = filt;
        o.dataset_name = "libero_goal";
        if (bv_convert_libero_hdf5(2, files, &o)) fail_msg("%s", bv_error_msg());
        char p[700];
        snprintf(p, sizeof p, "%s/shard-00000.h5", out);
        bv_shard sd;
        assert_int_equal(bv_shard_open(&sd, p), BV_OK);
        assert_int_equal(sd.n_episodes, 4);
        assert_int_equal(sd.action_dim, 7);
        assert_int_equal(sd.proprio_dim, 8);
        assert_int_equal(sd.n_cams, 2);
        assert_true(sd.cams[0].height == HH && sd.cams[0].width == HW);
        bv_image img = {0};
        uint8_t *scratch = NULL;
        size_t scap = 0;
        for (int e = 0; e < 4; e++) {
            int dn = ep_demo[e];
            /* steps kept: with the filter, demo_0 (both files) drops steps 0, 2, 4 */
            int keep[8], K = 0;
            for (int t = 0; t < ep_T[e]; t++)
                if (!(filt && dn == 0 && (t == 0 || t == 2 || t == 4))) keep[K++] = t;
            int64_t s0 = sd.episode_offsets[e];
            assert_int_equal(sd.episode_offsets[e + 1] - s0, K);
            float a[8 * 7], pr[8 * 8];
            assert_int_equal(bv_shard_read_action(&sd, s0, K, a), BV_OK);
            assert_int_equal(bv_shard_read_proprio(&sd, s0, K, pr), BV_OK);
            for (int j = 0; j < K; j++) {
                int t = keep[j];
                for (int d = 0; d < 7; d++) {
                    float want = (float)h_action(dn, t, d);
                    if (d == 6) want = 1.0f - (want < 0 ? 0.0f : want > 1 ? 1.0f : want);
                    if (a[j * 7 + d] != want)
                        fail_msg("episode %d step %d action[%d]: %g want %g", e, j, d, a[j * 7 + d], want);
                }
                for (int d = 0; d < 6; d++) assert_true(pr[j * 8 + d] == (float)h_ee(dn, t, d));
                for (int d = 0; d < 2; d++) assert_true(pr[j * 8 + 6 + d] == (float)h_grip(dn, t, d));
                for (int c = 0; c < 2; c++) {
                    assert_int_equal(bv_shard_read_rgb(&sd, c, s0 + j, &img, &scratch, &scap), BV_OK);
                    assert_true(img.h == HH && img.w == HW);
                    double err_rot = 0, err_src = 0;
                    for (int y = 0; y < HH; y++)
                        for (int x = 0; x < HW; x++)
                            for (int k = 0; k < 3; k++) {
                                int g = img.rgb[(y * HW + x) * 3 + k];
                                int want = h_pix(c, dn, t, HH - 1 - y, HW - 1 - x, k); /* rotated 180 */
                                if (!filt && g != want)
                                    fail_msg("episode %d step %d camera %d pixel (%d, %d, %d): %d, want %d", e, j, c, y,
                                             x, k, g, want);
                                err_rot += fabs((double)g - want);
                                err_src += fabs((double)g - h_pix(c, dn, t, y, x, k));
                            }
                    /* JPEG: close to the rotated frame, far from the unrotated one */
                    err_rot /= HH * HW * 3;
                    err_src /= HH * HW * 3;
                    if (filt && !(err_rot < 4 && err_rot * 4 < err_src))
                        fail_msg("episode %d camera %d: mean error %.2f to the rotated frame, %.2f to the source", e, c,
                                 err_rot, err_src);
                }
            }
            char *instr;
            assert_int_equal(bv_shard_read_instruction(&sd, e, &instr), BV_OK);
            assert_string_equal(instr, ep_instr[ep_file[e]]);
            free(instr);
        }
        free(scratch);
        bv_image_free(&img);
        bv_shard_close(&sd);
        snprintf(p, sizeof p, "%s/manifest.json", out);
        json_t *m = load_json(p);
        const json_t *src = json_object_get(m, "source");
        assert_string_equal(json_string_value(json_object_get(src, "kind")), "libero-hdf5");
        assert_int_equal(json_integer_value(json_object_get(src, "noops_removed")), filt ? 4 : 0);
        const json_t *demos = json_object_get(src, "demos");
        assert_int_equal(json_array_size(demos), 4);
        assert_string_equal(json_string_value(json_object_get(json_array_get(demos, 2), "demo")), "demo_10");
        assert_int_equal(json_integer_value(json_object_get(m, "num_transitions")), filt ? 11 : 15);
        assert_string_equal(json_string_value(json_object_get(json_object_get(m, "images"), "storage")),
                            filt ? "jpeg" : "raw");
        json_decref(m);
        snprintf(p, sizeof p, "%s/dataset_statistics.json", out);
        json_t *st = load_json(p);
        const json_t *ds = json_object_get(st, "libero_goal");
        assert_non_null(ds);
        assert_int_equal(json_integer_value(json_object_get(ds, "num_trajectories")), 4);
        assert_int_equal(json_array_size(json_object_get(json_object_get(ds, "proprio"), "mean")), 8);
        json_decref(st);
    }

    /* bad inputs (in the second demo written, demo_0 of bad.hdf5, after a.hdf5 converted fine): each
     * names file, episode and key, and leaves nothing */
    struct {
        enum hfault f;
        bv_status st;
        const char *frag;
    } cases[] = {
        {H_MISSING_EE, BV_ERR_FORMAT, "episode demo_0: key 'obs/ee_states' is missing"},
        {H_ACTIONS6, BV_ERR_SHAPE, "episode demo_0: key 'actions' has shape (6, 6), expected (*, 7)"},
        {H_LEN_MISMATCH, BV_ERR_SHAPE, "episode demo_0: key 'obs/gripper_states' has shape (5, 2), expected (6, 2)"},
        {H_IMG_SIZE, BV_ERR_SHAPE,
         "episode demo_0: key 'obs/eye_in_hand_rgb' has shape (6, 8, 8, 3), expected (6, 6, 8, 3)"},
        {H_NO_PROBLEM_INFO, BV_ERR_FORMAT, "group /data: missing attribute 'problem_info'"},
    };
    char out[600], bad[600];
    snprintf(out, sizeof out, "%s", bv_test_path("lh_fail"));
    snprintf(bad, sizeof bad, "%s", bv_test_path("bad.hdf5"));
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        make_libero_h5(bad, 3, na, ta, "x", true, cases[i].f);
        const char *two[2] = {A, bad};
        bv_convert_opts o = opts(out);
        o.episodes_per_shard = 1;
        bv_status st = bv_convert_libero_hdf5(2, two, &o);
        if (getenv("BV_TEST_VERBOSE")) printf("    %s\n", bv_error_msg());
        if (st != cases[i].st) fail_msg("case %zu: %s, expected %s: %s", i, bv_status_name(st), bv_status_name(cases[i].st),
                                        bv_error_msg());
        bv_test_expect_in(bv_error_msg(), bad);
        bv_test_expect_in(bv_error_msg(), cases[i].frag);
        if (access(out, F_OK) == 0) fail_msg("case %zu: the failed conversion left %s", i, out);
    }
    write_file(bv_test_path("text.hdf5"), "not hdf5\n");
    const char *txt[1] = {bv_test_path("text.hdf5")};
    bv_convert_opts o = opts(out);
    assert_int_equal(bv_convert_libero_hdf5(1, txt, &o), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "text.hdf5: not an HDF5 file");
    assert_int_equal(access(out, F_OK), -1);

    /* the command line */
    char args[3000], buf[8192];
    snprintf(args, sizeof args, "convert libero-hdf5 %s %s --out %s --filter-noops --images raw", A, B, bv_test_path("lh_cli"));
    int rc = run(args, buf, sizeof buf);
    if (rc) fail_msg("exit %d: %s", rc, buf);
    snprintf(args, sizeof args, "convert libero-hdf5 --out %s", bv_test_path("lh_cli2"));
    assert_int_equal(run(args, buf, sizeof buf), 2);
    bv_test_expect_in(buf, "expected one or more FILE.hdf5");
    snprintf(args, sizeof args, "convert libero-hdf5 %s --out %s --schema libero", A, bv_test_path("lh_cli2"));
    assert_int_equal(run(args, buf, sizeof buf), 2);
    bv_test_expect_in(buf, "--schema and --split apply to rlds only");
}


/* ---- failed writes, and what a failed or killed run leaves ---- */

/* Entries of the test directory whose name starts with `prefix`, hidden ones included. */
static int count_prefix(const char *prefix) {
    DIR *d = opendir(bv_test_dir());
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += !strncmp(de->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

/* Runs the `bitvla` beside this test with argv (argv[0] ignored) in a child whose files may not
 * grow past fsize bytes (SIGXFSZ ignored, so writes fail with EFBIG, as on a full disk); returns
 * the wait status, the output (stdout and stderr) in out. */
static int run_limited(char **argv, rlim_t fsize, char *out, size_t cap) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = 0;
    snprintf(strrchr(exe, '/') + 1, sizeof exe - (size_t)(strrchr(exe, '/') + 1 - exe), "bitvla");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        dup2(pfd[1], 2);
        close(pfd[0]);
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {fsize, fsize};
        setrlimit(RLIMIT_FSIZE, &rl);
        setenv("BV_PROGRESS", "0", 1);
        argv[0] = exe;
        execv(exe, argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t len = 0;
    ssize_t k;
    while (len < cap - 1 && (k = read(pfd[0], out + len, cap - 1 - len)) > 0) len += (size_t)k;
    out[len] = 0;
    close(pfd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* A write that fails (file-size limit, as a full disk) is a clear error naming the file and the
 * OS reason, exit 1, nothing left behind, and no crash in HDF5's exit handler (HDF5 1.10 crashed
 * there after a failed H5Fclose). The limits hit the failure at different points: the first
 * episode's frames, a later one, the episode tables, the final flush. */
static void test_write_failure(void **state) {
    char out[600], buf[8192];
    snprintf(out, sizeof out, "%s", bv_test_path("limited"));
    const struct {
        rlim_t kb;
        const char *images, *per_shard;
    } cases[] = {{8, "jpeg", "64"}, {40, "jpeg", "1"}, {100, "jpeg", "1"}, {256, "jpeg", "64"}, {256, "raw", "64"}};
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        char *argv[] = {"bitvla", "convert", "rlds", (char *)bv_fixture_path(BRIDGE), "--schema", "bridge", "--out", out,
                        "--images", (char *)cases[i].images, "--episodes-per-shard", (char *)cases[i].per_shard, NULL};
        int status = run_limited(argv, cases[i].kb << 10, buf, sizeof buf);
        if (getenv("BV_TEST_VERBOSE")) printf("    %s", buf);
        if (!WIFEXITED(status))
            fail_msg("case %zu (%llu KiB, %s): killed by signal %d; output: %s", i, (unsigned long long)cases[i].kb,
                     cases[i].images, WIFSIGNALED(status) ? WTERMSIG(status) : -1, buf);
        if (WEXITSTATUS(status) != 1) fail_msg("case %zu: exit %d, expected 1; output: %s", i, WEXITSTATUS(status), buf);
        bv_test_expect_in(buf, "bitvla convert: ");
        bv_test_expect_in(buf, "shard-00000.h5");
        bv_test_expect_in(buf, "failed: File too large");
        if (access(out, F_OK) == 0) fail_msg("case %zu: the failed conversion left %s", i, out);
        if (count_prefix(".limited.")) fail_msg("case %zu: the failed conversion left a temporary", i);
    }
}

/* --force replaces the old dataset only with a complete new one: a failing source leaves it as it
 * was; a successful one replaces it whole. */
static void test_force_keeps_old(void **state) {
    char out[600], bad[600], p[800];
    snprintf(out, sizeof out, "%s", bv_test_path("kept"));
    snprintf(bad, sizeof bad, "%s", bv_test_path("nan_src"));
    make_libero(bad, F_NAN);
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, "bridge"), BV_OK);
    bv_convert_opts o = opts(out);
    o.max_episodes = 3;
    o.episodes_per_shard = 1;
    if (bv_convert_rlds(bv_fixture_path(BRIDGE), &s, &o)) fail_msg("%s", bv_error_msg());
    bv_schema_free(&s);
    snprintf(p, sizeof p, "%s/manifest.json", out);
    json_t *m = load_json(p);
    char *before = json_dumps(m, 0);
    json_decref(m);
    assert_int_equal(bv_schema_load(&s, "libero"), BV_OK);
    o.force = true;
    o.max_episodes = 0;
    assert_int_equal(bv_convert_rlds(bad, &s, &o), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "is nan");
    m = load_json(p); /* the old dataset, untouched */
    char *after = json_dumps(m, 0);
    json_decref(m);
    assert_string_equal(before, after);
    for (int k = 0; k < 3; k++) {
        snprintf(p, sizeof p, "%s/shard-%05d.h5", out, k);
        if (access(p, F_OK) != 0) fail_msg("the failed --force run removed %s", p);
    }
    assert_int_equal(count_prefix(".kept."), 0);
    /* a good source with --force: replaced whole (the old shards 1, 2 gone) */
    make_libero(bv_test_path("good_src"), F_NONE);
    if (bv_convert_rlds(bv_test_path("good_src"), &s, &o)) fail_msg("%s", bv_error_msg());
    snprintf(p, sizeof p, "%s/manifest.json", out);
    m = load_json(p);
    assert_int_equal(json_integer_value(json_object_get(m, "num_episodes")), LEPS);
    json_decref(m);
    snprintf(p, sizeof p, "%s/shard-%05d.h5", out, LEPS);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(count_prefix(".kept."), 0);
    free(before);
    free(after);
    bv_schema_free(&s);
}

/* Killed runs: a stale temporary directory beside the output is removed by the next run and never
 * taken for a dataset; temporaries left inside an output directory by earlier versions are an
 * unfinished run, not "a converted dataset"; files that are not a dataset's are never replaced. */
static void test_output_dir_states(void **state) {
    char out[600], src[600], p[900];
    snprintf(out, sizeof out, "%s", bv_test_path("states"));
    snprintf(src, sizeof src, "%s", bv_test_path("states_src"));
    make_libero(src, F_NONE);
    bv_schema s;
    assert_int_equal(bv_schema_load(&s, "libero"), BV_OK);
    bv_convert_opts o = opts(out);
    /* a killed run's temporary (its pid no longer exists) with a complete-looking manifest */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    snprintf(p, sizeof p, "%s/.states.tmp.%d", bv_test_dir(), (int)pid);
    assert_int_equal(mkdir(p, 0777), 0);
    char q[1000];
    snprintf(q, sizeof q, "%s/manifest.json", p);
    bv_test_write_bytes(q, "{}", 2);
    if (bv_convert_rlds(src, &s, &o)) fail_msg("%s", bv_error_msg());
    assert_int_equal(access(p, F_OK), -1); /* cleaned */
    assert_int_equal(count_prefix(".states."), 0);

    /* only temporaries of an earlier version inside: unfinished, not a converted dataset */
    bv_test_rm_tree(out);
    assert_int_equal(mkdir(out, 0777), 0);
    snprintf(p, sizeof p, "%s/shard-00000.h5.tmp.999999", out);
    bv_test_write_bytes(p, "x", 1);
    assert_int_equal(bv_convert_rlds(src, &s, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "earlier run that did not finish");
    bv_test_expect_in(bv_error_msg(), "no manifest.json");
    o.force = true;
    if (bv_convert_rlds(src, &s, &o)) fail_msg("%s", bv_error_msg());
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof p, "%s/manifest.json", out);
    assert_int_equal(access(p, F_OK), 0);

    /* a file that is not part of a dataset: refused even with --force, and kept */
    snprintf(p, sizeof p, "%s/README.txt", out);
    bv_test_write_bytes(p, "mine", 4);
    assert_int_equal(bv_convert_rlds(src, &s, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "'README.txt'");
    assert_int_equal(access(p, F_OK), 0);
    /* an empty existing directory is used without --force */
    bv_test_rm_tree(out);
    assert_int_equal(mkdir(out, 0777), 0);
    o.force = false;
    if (bv_convert_rlds(src, &s, &o)) fail_msg("%s", bv_error_msg());
    assert_int_equal(count_prefix(".states."), 0);
    bv_schema_free(&s);
}

/* Image sizes in features.json are 64-bit in the file: a size that does not fit (or is absurd) is
 * an error naming the file, the feature and the expected range, not silently truncated. */
static void test_image_size_range(void **state) {
    const char *sizes[] = {"4294967360", "4294967296", "70000"};
    for (size_t i = 0; i < BV_ARRAY_LEN(sizes); i++) {
        char src[600], p[700];
        snprintf(src, sizeof src, "%s/size_%zu", bv_test_dir(), i);
        make_libero(src, F_NONE);
        snprintf(p, sizeof p, "%s/features.json", src);
        json_t *j = load_json(p);
        char *text = json_dumps(j, 0);
        json_decref(j);
        const char *from = "\"dimensions\": [\"8\", \"8\", \"3\"]"; /* the first image: steps/observation/image */
        char *at = strstr(text, from);
        assert_non_null(at);
        char *edited = malloc(strlen(text) + 64);
        snprintf(edited, strlen(text) + 64, "%.*s\"dimensions\": [\"%s\", \"8\", \"3\"]%s", (int)(at - text), text,
                 sizes[i], at + strlen(from));
        bv_test_write_bytes(p, edited, strlen(edited));
        free(text);
        free(edited);
        expect_fail(src, "libero", BV_ERR_FORMAT, p, "feature 'steps/observation/image'", "out of range");
        bv_test_expect_in(bv_error_msg(), sizes[i]);
        bv_test_expect_in(bv_error_msg(), "1..65535");
    }
}

/* libero-hdf5 inputs: a missing file says so (not "not an HDF5 file"); the same demos given twice
 * (the same file, or a copy) are converted with a warning naming both files; --name is checked. */
static void test_libero_inputs(void **state) {
    char A[600], C[600], args[3000], buf[8192];
    snprintf(A, sizeof A, "%s", bv_test_path("a.hdf5"));
    snprintf(C, sizeof C, "%s", bv_test_path("copy.hdf5"));
    int na[2] = {0, 1}, ta[2] = {3, 4};
    make_libero_h5(A, 2, na, ta, "put the bowl away", true, H_NONE);
    const char *missing[1] = {bv_test_path("no_such.hdf5")};
    bv_convert_opts o = opts(bv_test_path("li_out"));
    assert_int_equal(bv_convert_libero_hdf5(1, missing, &o), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "no_such.hdf5: cannot open: No such file or directory");
    const char *dir[1] = {bv_test_dir()};
    assert_int_equal(bv_convert_libero_hdf5(1, dir, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "not a regular file");
    assert_int_equal(access(bv_test_path("li_out"), F_OK), -1);

    /* the same file twice */
    snprintf(args, sizeof args, "convert libero-hdf5 %s %s --out %s", A, A, bv_test_path("li_twice"));
    int rc = run(args, buf, sizeof buf);
    if (rc) fail_msg("exit %d: %s", rc, buf);
    bv_test_expect_in(buf, "warning: ");
    char want[1400];
    snprintf(want, sizeof want, "%s is the same file as %s: its 2 demos are converted twice", A, A);
    bv_test_expect_in(buf, want);
    /* a copy */
    size_t n;
    FILE *f = fopen(A, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(n);
    assert_int_equal(fread(data, 1, n, f), n);
    fclose(f);
    bv_test_write_bytes(C, data, n);
    free(data);
    snprintf(args, sizeof args, "convert libero-hdf5 %s %s --out %s", A, C, bv_test_path("li_copy"));
    rc = run(args, buf, sizeof buf);
    if (rc) fail_msg("exit %d: %s", rc, buf);
    snprintf(want, sizeof want, "%s: 2 of its 2 demos have the same actions as demos of %s", C, A);
    bv_test_expect_in(buf, want);
    /* different files: no warning */
    int nb[1] = {0}, tb[1] = {5};
    make_libero_h5(C, 1, nb, tb, "open the drawer", true, H_NONE);
    snprintf(args, sizeof args, "convert libero-hdf5 %s %s --out %s", A, C, bv_test_path("li_two"));
    rc = run(args, buf, sizeof buf);
    if (rc) fail_msg("exit %d: %s", rc, buf);
    if (strstr(buf, "warning")) fail_msg("unexpected warning: %s", buf);

    /* the missing file on the command line */
    snprintf(args, sizeof args, "convert libero-hdf5 %s --out %s", missing[0], bv_test_path("li_cli"));
    assert_int_equal(run(args, buf, sizeof buf), 1);
    bv_test_expect_in(buf, "bitvla convert: ");
    bv_test_expect_in(buf, "no_such.hdf5: cannot open: No such file or directory");

    /* --name: empty, a path, a leading dot are refused (library and command line) */
    const char *bad[] = {"", "a/b", ".hidden", "x y"};
    const char *one[1] = {A};
    for (size_t i = 0; i < BV_ARRAY_LEN(bad); i++) {
        o = opts(bv_test_path("li_name"));
        o.dataset_name = bad[i];
        assert_int_equal(bv_convert_libero_hdf5(1, one, &o), BV_ERR_ARG);
        bv_test_expect_in(bv_error_msg(), "dataset name");
        bv_schema s;
        assert_int_equal(bv_schema_load(&s, "bridge"), BV_OK);
        assert_int_equal(bv_convert_rlds(bv_fixture_path(BRIDGE), &s, &o), BV_ERR_ARG);
        bv_schema_free(&s);
        snprintf(args, sizeof args, "convert libero-hdf5 %s --out %s --name '%s'", A, bv_test_path("li_name"), bad[i]);
        assert_int_equal(run(args, buf, sizeof buf), 2);
        bv_test_expect_in(buf, "bitvla convert: --name: dataset name");
        assert_int_equal(access(bv_test_path("li_name"), F_OK), -1);
    }
    o = opts(bv_test_path("li_name"));
    o.dataset_name = "libero_spatial_no-noops.v2";
    if (bv_convert_libero_hdf5(1, one, &o)) fail_msg("%s", bv_error_msg());
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantile_numpy),
        cmocka_unit_test(test_progress_format),
        cmocka_unit_test_setup_teardown(test_bridge_jpeg, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bridge_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libero_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cli, setup, teardown),
        cmocka_unit_test(test_noop_rule),
        cmocka_unit_test_setup_teardown(test_libero_hdf5, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_force_keeps_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_dir_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_size_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_libero_inputs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
