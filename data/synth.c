/* synth.c - record expert demonstrations of the tabletop task and write them as RLDS (synth.h). */
#include "data/synth.h"

#include <inttypes.h>
#include <jansson.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "src/atomic_file.h"
#include "src/progress.h"
#include "data/example.h"
#include "data/tfrecord.h"

/* ---- options ---- */

void bv_synth_opts_default(bv_synth_opts *o) {
    memset(o, 0, sizeof *o);
    o->episodes = 50;
    o->seed = 0;
    o->image_size = 256;
    o->jpeg_quality = 95;
    o->shards = 0;
    o->tasks = 0;
    o->noise = 0.05f;
    o->max_attempts = 5;
    o->threads = 0;
    o->name = "bitvla_synth";
}

bv_status bv_synth_opts_check(const bv_synth_opts *o) {
    if (o->episodes < 1 || o->episodes > 10000000)
        return bv_error_set(BV_ERR_ARG, "episodes %d out of range (expected 1..10000000)", o->episodes);
    if (o->image_size < 16 || o->image_size > 1024)
        return bv_error_set(BV_ERR_ARG, "image size %d out of range (expected 16..1024)", o->image_size);
    if (o->jpeg_quality < 1 || o->jpeg_quality > 100)
        return bv_error_set(BV_ERR_ARG, "JPEG quality %d out of range (expected 1..100)", o->jpeg_quality);
    if (o->shards < 0 || o->shards > 99999 || o->shards > o->episodes)
        return bv_error_set(BV_ERR_ARG, "%d shards for %d episodes (expected 0 for automatic, or 1..episodes)",
                            o->shards, o->episodes);
    if (o->tasks < 0 || o->tasks > bv_synth_num_tasks())
        return bv_error_set(BV_ERR_ARG, "tasks %d out of range (expected 0 for all, or 1..%d)", o->tasks,
                            bv_synth_num_tasks());
    if (!(o->noise >= 0 && o->noise <= 1))
        return bv_error_set(BV_ERR_ARG, "noise %g out of range (expected 0..1, in action units)",
                            (double)o->noise);
    if (o->max_attempts < 1 || o->max_attempts > 1000)
        return bv_error_set(BV_ERR_ARG, "max attempts %d out of range (expected 1..1000)", o->max_attempts);
    if (o->threads < 0 || o->threads > 1024)
        return bv_error_set(BV_ERR_ARG, "threads %d out of range (expected 0..1024)", o->threads);
    if (!o->name || !o->name[0] || strlen(o->name) > 100)
        return bv_error_set(BV_ERR_ARG, "dataset name '%.120s' must be 1..100 characters (letters, digits and _)",
                            o->name ? o->name : "");
    for (const char *p = o->name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return bv_error_set(BV_ERR_ARG, "dataset name '%s' has '%c' (expected letters, digits and _)",
                                o->name, *p);
    return BV_OK;
}

/* ---- seeds and metadata ---- */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t bv_synth_episode_seed(uint64_t seed, int64_t episode, int attempt) {
    return mix64(mix64(mix64(seed) + (uint64_t)episode * 0x9E3779B97F4A7C15ull) + (uint64_t)attempt);
}

void bv_synth_file_path(char *buf, size_t n, uint64_t env_seed, int task, int64_t episode) {
    snprintf(buf, n, "synth:env_seed=%" PRIu64 ",task=%d,episode=%" PRId64, env_seed, task, episode);
}

bv_status bv_synth_parse_file_path(const char *s, uint64_t *env_seed, int *task, int64_t *episode) {
    unsigned long long es;
    int t, used = 0;
    long long ep;
    if (sscanf(s, "synth:env_seed=%llu,task=%d,episode=%lld%n", &es, &t, &ep, &used) != 3 || s[used] != 0 || t < 0 ||
        t >= bv_synth_num_tasks())
        return bv_error_set(BV_ERR_FORMAT,
                            "episode_metadata/file_path '%s' is not a synth episode (expected "
                            "'synth:env_seed=E,task=K,episode=I' with K in 0..%d)",
                            s, bv_synth_num_tasks() - 1);
    *env_seed = es;
    *task = t;
    *episode = ep;
    return BV_OK;
}

void bv_synth_shard_name(char *buf, size_t n, const char *name, int k, int n_shards) {
    snprintf(buf, n, "%s-train.tfrecord-%05d-of-%05d", name, k, n_shards);
}

/* ---- recording ---- */

void bv_synth_episode_free(bv_synth_episode *ep) {
    free(ep->state);
    free(ep->joint_state);
    free(ep->action);
    for (int t = 0; t < ep->T; t++) {
        if (ep->jpeg_image) bv_image_bytes_free(&ep->jpeg_image[t]);
        if (ep->jpeg_wrist) bv_image_bytes_free(&ep->jpeg_wrist[t]);
    }
    free(ep->jpeg_image);
    free(ep->jpeg_wrist);
    memset(ep, 0, sizeof *ep);
}

bv_status bv_synth_episode_record(bv_synth_env *env, uint64_t env_seed, int task, float noise, int jpeg_quality,
                                  bv_synth_episode *ep) {
    memset(ep, 0, sizeof *ep);
    if (jpeg_quality < 0 || jpeg_quality > 100)
        return bv_error_set(BV_ERR_ARG, "JPEG quality %d out of range (expected 0 for no images, 1..100)",
                            jpeg_quality);
    bv_status st = bv_synth_env_reset(env, env_seed, task);
    if (st) return st;
    const bv_synth_config *cfg = bv_synth_env_config(env);
    const int cap = cfg->max_steps, S = cfg->image_size;
    ep->image_size = S;
    ep->env_seed = env_seed;
    ep->task = bv_synth_env_task_id(env);
    snprintf(ep->instruction, sizeof ep->instruction, "%s", bv_synth_env_instruction(env));
    ep->state = bv_xmalloc((size_t)cap * BV_SYNTH_STATE_DIM * sizeof(float));
    ep->joint_state = bv_xmalloc((size_t)cap * BV_SYNTH_JOINT_DIM * sizeof(float));
    ep->action = bv_xmalloc((size_t)cap * BV_SYNTH_ACTION_DIM * sizeof(float));
    uint8_t *img = NULL, *wrist = NULL;
    if (jpeg_quality > 0) {
        ep->jpeg_image = bv_xcalloc((size_t)cap, sizeof(bv_image_bytes));
        ep->jpeg_wrist = bv_xcalloc((size_t)cap, sizeof(bv_image_bytes));
        img = bv_xmalloc((size_t)S * S * 3);
        wrist = bv_xmalloc((size_t)S * S * 3);
    }
    bv_synth_expert ex;
    bv_synth_expert_init(&ex, env_seed, noise);
    for (int t = 0; t < cap; t++) {
        bv_synth_obs obs = {.image = img, .wrist_image = wrist};
        bv_synth_env_observe(env, &obs);
        memcpy(ep->state + (size_t)t * BV_SYNTH_STATE_DIM, obs.state, sizeof obs.state);
        memcpy(ep->joint_state + (size_t)t * BV_SYNTH_JOINT_DIM, obs.joint_state, sizeof obs.joint_state);
        ep->T = t + 1; /* from here on step t owns what it holds (freed by episode_free on error) */
        if (jpeg_quality > 0) {
            if ((st = bv_image_encode_jpeg(img, S, S, jpeg_quality, &ep->jpeg_image[t])) ||
                (st = bv_image_encode_jpeg(wrist, S, S, jpeg_quality, &ep->jpeg_wrist[t])))
                break;
        }
        float *a = ep->action + (size_t)t * BV_SYNTH_ACTION_DIM;
        bv_synth_expert_act(&ex, env, a);
        bv_synth_env_step(env, a);
        if (bv_synth_env_success(env)) {
            ep->success = true;
            break;
        }
    }
    free(img);
    free(wrist);
    if (st) bv_synth_episode_free(ep);
    return st;
}

/* ---- RLDS serialization ---- */

static void serialize_episode(const bv_synth_episode *ep, int64_t index, bv_example_builder *b) {
    const int T = ep->T;
    bv_example_builder_reset(b);
    const void **vals = bv_xmalloc((size_t)T * sizeof(void *));
    size_t *lens = bv_xmalloc((size_t)T * sizeof(size_t));
    for (int cam = 0; cam < 2; cam++) {
        const bv_image_bytes *jp = cam == 0 ? ep->jpeg_image : ep->jpeg_wrist;
        for (int t = 0; t < T; t++) vals[t] = jp[t].data, lens[t] = jp[t].len;
        bv_example_add_bytes(b, cam == 0 ? "steps/observation/image" : "steps/observation/wrist_image", (size_t)T, vals,
                             lens);
    }
    bv_example_add_floats(b, "steps/observation/state", (size_t)T * BV_SYNTH_STATE_DIM, ep->state);
    bv_example_add_floats(b, "steps/observation/joint_state", (size_t)T * BV_SYNTH_JOINT_DIM, ep->joint_state);
    bv_example_add_floats(b, "steps/action", (size_t)T * BV_SYNTH_ACTION_DIM, ep->action);
    size_t il = strlen(ep->instruction);
    for (int t = 0; t < T; t++) vals[t] = ep->instruction, lens[t] = il;
    bv_example_add_bytes(b, "steps/language_instruction", (size_t)T, vals, lens);
    float *f = bv_xmalloc((size_t)T * sizeof(float));
    int64_t *flag = bv_xmalloc((size_t)T * sizeof(int64_t));
    for (int t = 0; t < T; t++) f[t] = (t == T - 1 && ep->success) ? 1.0f : 0.0f;
    bv_example_add_floats(b, "steps/reward", (size_t)T, f);
    for (int t = 0; t < T; t++) f[t] = 1.0f;
    bv_example_add_floats(b, "steps/discount", (size_t)T, f);
    for (int t = 0; t < T; t++) flag[t] = t == 0;
    bv_example_add_int64s(b, "steps/is_first", (size_t)T, flag);
    for (int t = 0; t < T; t++) flag[t] = t == T - 1;
    bv_example_add_int64s(b, "steps/is_last", (size_t)T, flag);
    for (int t = 0; t < T; t++) flag[t] = t == T - 1 && ep->success;
    bv_example_add_int64s(b, "steps/is_terminal", (size_t)T, flag);
    char path[160];
    bv_synth_file_path(path, sizeof path, ep->env_seed, ep->task, index);
    bv_example_add_string(b, "episode_metadata/file_path", path);
    free(vals);
    free(lens);
    free(f);
    free(flag);
}

/* ---- features.json and dataset_info.json (TFDS) ---- */

#define TFDS "tensorflow_datasets.core.features."

static json_t *node_tensor(int ndim, const int *dims, const char *dtype, const char *desc) {
    json_t *d = json_array();
    for (int i = 0; i < ndim; i++) {
        char s[16];
        snprintf(s, sizeof s, "%d", dims[i]);
        json_array_append_new(d, json_string(s));
    }
    json_t *shape = ndim ? json_pack("{s:o}", "dimensions", d) : (json_decref(d), json_object());
    return json_pack("{s:s, s:{s:o, s:s, s:s}, s:s}", "pythonClassName",
                     ndim ? TFDS "tensor_feature.Tensor" : TFDS "scalar.Scalar", "tensor", "shape", shape, "dtype",
                     dtype, "encoding", "none", "description", desc);
}

static json_t *node_image(int S, const char *desc) {
    char d[16];
    snprintf(d, sizeof d, "%d", S);
    return json_pack("{s:s, s:{s:{s:[s,s,s]}, s:s, s:s}, s:s}", "pythonClassName", TFDS "image_feature.Image", "image",
                     "shape", "dimensions", d, d, "3", "dtype", "uint8", "encodingFormat", "jpeg", "description", desc);
}

static json_t *node_text(const char *desc) {
    return json_pack("{s:s, s:{}, s:s}", "pythonClassName", TFDS "text_feature.Text", "text", "description", desc);
}

static json_t *node_dict(json_t *features) {
    return json_pack("{s:s, s:{s:o}}", "pythonClassName", TFDS "features_dict.FeaturesDict", "featuresDict", "features",
                     features);
}

static json_t *features_json(int S) {
    const int d8[1] = {8}, d7[1] = {7};
    json_t *img = node_image(S, "Main camera RGB observation.");
    json_t *wr = node_image(S, "Wrist camera RGB observation.");
    json_t *obs = node_dict(json_pack("{s:o, s:o, s:o, s:o}", "image", img, "wrist_image", wr, "state",
                                      node_tensor(1, d8, "float32", "Robot EEF state (6D pose, 2D gripper)."),
                                      "joint_state", node_tensor(1, d7, "float32", "Robot joint angles.")));
    json_t *step = node_dict(json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "observation", obs, "action",
        node_tensor(1, d7, "float32", "Robot EEF action."), "discount",
        node_tensor(0, NULL, "float32", "Discount if provided, default to 1."), "reward",
        node_tensor(0, NULL, "float32", "Reward if provided, 1 on final step for demos."), "is_first",
        node_tensor(0, NULL, "bool", "True on first step of the episode."), "is_last",
        node_tensor(0, NULL, "bool", "True on last step of the episode."), "is_terminal",
        node_tensor(0, NULL, "bool", "True on last step of the episode if it is a terminal step, True for demos."),
        "language_instruction", node_text("Language Instruction.")));
    json_t *steps = json_pack("{s:s, s:{s:o, s:s}}", "pythonClassName", TFDS "dataset_feature.Dataset", "sequence",
                              "feature", step, "length", "-1");
    json_t *meta = node_dict(json_pack("{s:o}", "file_path", node_text("Path to the original data file.")));
    return node_dict(json_pack("{s:o, s:o}", "steps", steps, "episode_metadata", meta));
}

static json_t *dataset_info_json(const bv_synth_opts *o, int n_shards, const int64_t *lengths, uint64_t bytes) {
    json_t *sl = json_array();
    for (int k = 0; k < n_shards; k++) {
        char s[24];
        snprintf(s, sizeof s, "%" PRId64, lengths[k]);
        json_array_append_new(sl, json_string(s));
    }
    char nb[24], desc[512];
    snprintf(nb, sizeof nb, "%" PRIu64, bytes);
    snprintf(desc, sizeof desc,
             "bitvla's built-in tabletop pick-and-place task (docs/synth.md): %d scripted-expert demonstrations, "
             "seed %" PRIu64 ", %dx%d third-person and wrist cameras, LIBERO's RLDS schema%s.",
             o->episodes, o->seed, o->image_size, o->image_size,
             o->unique_colour ? "; the easier scenes (no other object of the target's colour)" : "");
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s}, s:[{s:s, s:s, s:s, s:o}], s:s}", "citation", "", "description",
                     desc, "fileFormat", "tfrecord", "moduleName", "bitvla.synth", "name", o->name, "releaseNotes",
                     "1.0.0", "Initial release.", "splits", "filepathTemplate",
                     "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}", "name", "train", "numBytes", nb, "shardLengths",
                     sl, "version", "1.0.0");
}

static bv_status write_json(const char *dir, const char *file, json_t *j) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!s) return bv_error_set(BV_ERR_NOMEM, "%s: cannot build the JSON", path);
    size_t n = strlen(s);
    char *t = bv_xmalloc(n + 2);
    memcpy(t, s, n);
    t[n] = '\n';
    free(s);
    bv_status st = bv_atomic_write_file(path, t, n + 1);
    free(t);
    return st;
}

bv_status bv_synth_write_preview(const char *dir, const bv_synth_opts *o) {
    bv_status st = bv_synth_opts_check(o);
    if (st || (st = bv_atomic_dir_make(dir))) return st;
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = o->image_size;
    cfg.unique_colour = o->unique_colour;
    bv_synth_env *env;
    if ((st = bv_synth_env_init(&env, &cfg))) return st;
    const int S = o->image_size, n_tasks = o->tasks ? o->tasks : bv_synth_num_tasks();
    uint8_t *a = bv_xmalloc((size_t)S * S * 3), *wr = bv_xmalloc((size_t)S * S * 3),
            *pair = bv_xmalloc((size_t)S * S * 6);
    /* the first scene the expert solves, as the dataset would record it */
    for (int att = 0; att < o->max_attempts && !st; att++) {
        uint64_t seed = bv_synth_episode_seed(o->seed, 0, att);
        if ((st = bv_synth_env_reset(env, seed, 0 % n_tasks))) break;
        bv_synth_expert ex;
        bv_synth_expert_init(&ex, seed, o->noise);
        const char *last = "";
        int shot = 0;
        bool done = false;
        for (int t = 0; t <= cfg.max_steps && !st && !done; t++) {
            /* the state each phase starts from, and the end */
            float act[BV_SYNTH_ACTION_DIM];
            const char *label = NULL;
            if (bv_synth_env_success(env)) {
                label = "end";
                done = true;
            } else if (t < cfg.max_steps) {
                bv_synth_expert_act(&ex, env, act);
                const char *ph = bv_synth_expert_phase(&ex);
                if (t == 0) label = "start";
                else if (strcmp(ph, last) && (!strcmp(ph, "grasp") || !strcmp(ph, "lift") || !strcmp(ph, "place") ||
                                              !strcmp(ph, "release")))
                    label = ph;
                last = ph;
            }
            if (label) {
                bv_synth_obs obs = {.image = a, .wrist_image = wr};
                bv_synth_env_observe(env, &obs);
                for (int j = 0; j < S; j++) {
                    memcpy(pair + (size_t)j * S * 6, a + (size_t)j * S * 3, (size_t)S * 3);
                    memcpy(pair + (size_t)j * S * 6 + (size_t)S * 3, wr + (size_t)j * S * 3, (size_t)S * 3);
                }
                bv_image_bytes png = {0};
                char path[4096 + 64];
                snprintf(path, sizeof path, "%s/synth_%d_%s.png", dir, shot++, label);
                if (!(st = bv_image_encode_png(pair, 2 * S, S, &png)))
                    st = bv_atomic_write_file(path, png.data, png.len);
                bv_image_bytes_free(&png);
            }
            if (!done && t < cfg.max_steps) bv_synth_env_step(env, act);
        }
        if (done) break;
    }
    free(a);
    free(wr);
    free(pair);
    bv_synth_env_free(env);
    return st;
}

/* The names an RLDS directory written here holds (and the preview PNGs, which may share it, and
 * temporaries of earlier versions): only a directory holding nothing else may be replaced. */
static bool is_output_name(const char *n) {
    return !strcmp(n, "features.json") || !strcmp(n, "dataset_info.json") || strstr(n, ".tfrecord-") ||
           (!strncmp(n, "synth_", 6) && strstr(n, ".png")) || !strncmp(n, "features.json.tmp.", 18) ||
           !strncmp(n, "dataset_info.json.tmp.", 22);
}

bv_status bv_synth_write_rlds(const char *out, const bv_synth_opts *o, bv_synth_report *rep) {
    bv_status st = bv_synth_opts_check(o);
    if (st) return st;
    double t0 = bv_time_now();
    const bv_atomic_dir_opts dopt = {.force = o->force, .make_parents = true, .owned = is_output_name,
                                     .complete_name = "dataset_info.json", .what = "an RLDS dataset"};
    bv_atomic_dir dir;
    if ((st = bv_atomic_dir_open(&dir, out, &dopt))) return st;
    const char *out_dir = dir.tmp; /* everything goes here; renamed to `out` when complete */
    if ((st = write_json(out_dir, "features.json", features_json(o->image_size)))) {
        bv_atomic_dir_abort(&dir);
        return st;
    }

    const int64_t N = o->episodes;
    const int n_shards = o->shards ? o->shards : (int)((N + 63) / 64);
    const int n_tasks = o->tasks ? o->tasks : bv_synth_num_tasks();
    const int threads = o->threads ? o->threads : omp_get_max_threads();
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = o->image_size;
    cfg.unique_colour = o->unique_colour;
    bv_synth_env **envs = bv_xcalloc((size_t)threads, sizeof *envs);
    for (int k = 0; k < threads && !st; k++) st = bv_synth_env_init(&envs[k], &cfg);
    const int batch = 2 * threads;
    bv_synth_episode *eps = bv_xcalloc((size_t)batch, sizeof *eps);
    bv_status *ep_st = bv_xcalloc((size_t)batch, sizeof *ep_st);
    int *fails = bv_xcalloc((size_t)batch, sizeof *fails);
    char(*ep_err)[512] = bv_xcalloc((size_t)batch, sizeof *ep_err);
    int64_t *lengths = bv_xcalloc((size_t)n_shards, sizeof *lengths);
    bv_example_builder b = {0};
    bv_tfr_writer w = {0};
    int shard = -1;
    uint64_t bytes = 0;
    int64_t steps = 0, failed = 0;
    bv_progress pr;
    bv_progress_init(&pr, "synth", N, "episodes");
    if (o->quiet) pr.quiet = 1;
    for (int64_t base = 0; base < N && !st; base += batch) {
        const int nb = (int)BV_MIN((int64_t)batch, N - base);
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
        for (int k = 0; k < nb; k++) {
            bv_synth_env *env = envs[omp_get_thread_num()];
            const int64_t i = base + k;
            ep_st[k] = BV_OK;
            fails[k] = 0;
            for (int a = 0; a < o->max_attempts; a++) {
                bv_synth_episode_free(&eps[k]);
                ep_st[k] = bv_synth_episode_record(env, bv_synth_episode_seed(o->seed, i, a), (int)(i % n_tasks),
                                                   o->noise, o->jpeg_quality, &eps[k]);
                if (ep_st[k] || eps[k].success) break;
                fails[k]++;
            }
            if (ep_st[k]) snprintf(ep_err[k], sizeof ep_err[k], "%s", bv_error_msg());
            else if (!eps[k].success) {
                ep_st[k] = BV_ERR_INTERNAL;
                snprintf(ep_err[k], sizeof ep_err[k],
                         "the expert failed episode %" PRId64 " in all %d scenes tried (seed %" PRIu64 ")", i,
                         o->max_attempts, o->seed);
            }
        }
        for (int k = 0; k < nb && !st; k++) {
            const int64_t i = base + k;
            if (ep_st[k]) {
                st = bv_error_set(ep_st[k], "%s", ep_err[k]);
                break;
            }
            const int sh = (int)(i * n_shards / N); /* contiguous ranges, none empty */
            if (sh != shard) {
                if (shard >= 0) {
                    bytes += w.offset;
                    if ((st = bv_tfr_writer_close(&w))) break;
                }
                char name[256], path[4096 + 256];
                bv_synth_shard_name(name, sizeof name, o->name, sh, n_shards);
                snprintf(path, sizeof path, "%s/%s", out_dir, name);
                if ((st = bv_tfr_writer_open(&w, path))) break;
                shard = sh;
            }
            serialize_episode(&eps[k], i, &b);
            size_t len;
            const uint8_t *buf = bv_example_builder_finish(&b, &len);
            if ((st = bv_tfr_writer_write(&w, buf, len))) break;
            lengths[sh]++;
            steps += eps[k].T;
            failed += fails[k];
        }
        for (int k = 0; k < nb; k++) bv_synth_episode_free(&eps[k]);
        if (!st) bv_progress_update(&pr, BV_MIN(base + batch, N));
    }
    bv_progress_finish(&pr);
    if (shard >= 0) {
        if (st) bv_tfr_writer_abort(&w);
        else {
            bytes += w.offset;
            st = bv_tfr_writer_close(&w);
        }
    }
    if (!st) st = write_json(out_dir, "dataset_info.json", dataset_info_json(o, n_shards, lengths, bytes));
    if (!st) st = bv_atomic_dir_commit(&dir); /* releases dir; on failure removes it */
    else bv_atomic_dir_abort(&dir);
    if (rep) {
        rep->episodes = st ? 0 : N;
        rep->steps = steps;
        rep->failed_attempts = failed;
        rep->bytes = bytes;
        rep->seconds = bv_time_now() - t0;
    }
    bv_example_builder_free(&b);
    for (int k = 0; k < threads; k++) bv_synth_env_free(envs[k]);
    free(envs);
    free(eps);
    free(ep_st);
    free(fails);
    free(ep_err);
    free(lengths);
    return st;
}
