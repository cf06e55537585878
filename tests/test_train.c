/* test_train.c - the trainer (recipes/train.h) and its checkpoints (recipes/checkpoint.h) on the
 * tiny preset and the built-in task, made by the recipe's own data.synth section (so the data
 * preparation path is tested too): 8 demonstrations of 32 x 32 cameras, 3 held out.
 * Checks:
 *  - exact resume: 12 steps in one run and 6 + 6 with --resume (prefetch threads on) give
 *    bit-identical weights and optimizer state, and identical metrics (timings aside); keep K;
 *  - kill -9 during a checkpoint write, at every stage of it: `latest` names a complete
 *    checkpoint, and resuming from it still gives the uninterrupted run's weights bit for bit;
 *  - the non-finite guard stops a diverging run, naming the first non-finite value;
 *  - frozen parameters stay bit-identical, and init_from loads a checkpoint;
 *  - a new run refuses a non-empty run directory; the loss falls.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "models/build.h"
#include "recipes/checkpoint.h"
#include "recipes/recipe.h"
#include "recipes/train.h"
#include "src/safetensors.h"
#include "tests/util/testutil.h"

static char g_root[256];

static void sh(const char *cmd) {
    if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

/* the test recipe, with overrides */
static void load_recipe(bv_recipe *r, int n, const char *const *sets) {
    char json[4096];
    snprintf(json, sizeof json,
             "{\"name\": \"test_train\","
             " \"model\": {\"config\": \"tiny\", \"seed\": 3},"
             " \"tokenizer\": \"%s/data/tokenizer.json\","
             " \"data\": {\"shards\": \"%s/data/train\", \"val_shards\": \"%s/data/val\", \"image_size\": 56,"
             "          \"n_images\": 2, \"threads\": 2, \"prefetch\": 2, \"seed\": 5,"
             "          \"synth\": {\"episodes\": 8, \"val_episodes\": 3, \"image_size\": 32, \"tasks\": 4, \"seed\": 1,"
             "                    \"rlds\": \"%s/data/rlds\", \"tokenizer_vocab\": 500}},"
             " \"optimizer\": {\"lr\": 3e-3, \"weight_decay\": 0.01, \"clip_grad_norm\": 1.0},"
             " \"schedule\": {\"type\": \"cosine\", \"warmup_steps\": 2},"
             " \"steps\": 12, \"micro_batch\": 4, \"accumulation\": 2, \"seed\": 7,"
             " \"validation\": {\"every\": 4, \"batches\": 2},"
             " \"checkpoint\": {\"every\": 3, \"keep\": 2},"
             " \"logging\": {\"every\": 1, \"tensorboard\": true},"
             " \"guard\": {\"max_nonfinite\": 2}}",
             g_root, g_root, g_root, g_root);
    if (bv_recipe_parse(r, json, strlen(json), "test recipe", n, sets)) fail_msg("%s", bv_error_msg());
}

static bv_status train(const char *run, const bv_recipe *r, bool resume, int64_t stop_at, bv_train_result *res) {
    bv_train_opts o = {.recipe = r, .run_dir = run, .resume = resume, .stop_at = stop_at, .world_size = 1};
    return bv_train_run(&o, res);
}

static void train_ok(const char *run, int n, const char *const *sets, bool resume, int64_t stop_at,
                     bv_train_result *res) {
    bv_recipe r;
    load_recipe(&r, n, sets);
    if (train(run, &r, resume, stop_at, res)) fail_msg("%s", bv_error_msg());
    bv_recipe_free(&r);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)len + 1);
    if (fread(b, 1, (size_t)len, f) != (size_t)len) fail_msg("cannot read %s", path);
    b[len] = 0;
    fclose(f);
    *n = (size_t)len;
    return b;
}

static void same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = read_all(a, &na), *y = read_all(b, &nb);
    if (na != nb || memcmp(x, y, na) != 0) {
        size_t i = 0;
        while (i < na && i < nb && x[i] == y[i]) i++;
        fail_msg("%s and %s differ (sizes %zu, %zu; first difference at byte %zu)", a, b, na, nb, i);
    }
    free(x);
    free(y);
}

/* metrics.jsonl without the timing fields: "samples_per_s", "step_s" (and "comm_wait_s") removed */
static char *metrics_no_timing(const char *run) {
    char p[512];
    snprintf(p, sizeof p, "%s/metrics.jsonl", run);
    size_t n;
    char *s = read_all(p, &n);
    char *out = malloc(n + 1), *o = out;
    for (char *c = s; *c;) {
        if (!strncmp(c, "\"samples_per_s\":", 16) || !strncmp(c, "\"step_s\":", 9) || !strncmp(c, "\"comm_wait_s\":", 14)) {
            c = strchr(c, ':') + 1;
            while (*c && *c != ',' && *c != '}') c++;
            if (*c == ',') c++;
            continue;
        }
        *o++ = *c++;
    }
    *o = 0;
    free(s);
    return out;
}

static void same_run(const char *a, const char *b, int64_t step) {
    char pa[512], pb[512];
    snprintf(pa, sizeof pa, "%s/checkpoints/step-%08lld/model.safetensors", a, (long long)step);
    snprintf(pb, sizeof pb, "%s/checkpoints/step-%08lld/model.safetensors", b, (long long)step);
    same_file(pa, pb);
    snprintf(pa, sizeof pa, "%s/checkpoints/step-%08lld/optimizer.safetensors", a, (long long)step);
    snprintf(pb, sizeof pb, "%s/checkpoints/step-%08lld/optimizer.safetensors", b, (long long)step);
    same_file(pa, pb);
    char *ma = metrics_no_timing(a), *mb = metrics_no_timing(b);
    if (strcmp(ma, mb) != 0) fail_msg("metrics differ:\n--- %s\n%s\n--- %s\n%s", a, ma, b, mb);
    free(ma);
    free(mb);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_root, sizeof g_root, "/tmp/bv_test_train_%d", (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", g_root, g_root);
    sh(cmd);
    setenv("BV_PROGRESS", "0", 1);
    /* the data, made once by the recipe's data.synth section */
    bv_recipe r;
    load_recipe(&r, 0, NULL);
    if (bv_train_prepare_data(&r, NULL)) fail_msg("%s", bv_error_msg());
    bv_recipe_free(&r);
    /* the reference run: 12 steps without interruption */
    char run[512];
    snprintf(run, sizeof run, "%s/ref", g_root);
    bv_train_result res;
    train_ok(run, 0, NULL, false, 0, &res);
    assert_int_equal(res.step, 12);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_root);
    sh(cmd);
    return 0;
}

static void test_resume_exact(void **state) {
    (void)state;
    char ref[512], run[512];
    snprintf(ref, sizeof ref, "%s/ref", g_root);
    snprintf(run, sizeof run, "%s/resumed", g_root);
    bv_train_result res;
    train_ok(run, 0, NULL, false, 6, &res);
    assert_int_equal(res.step, 6);
    train_ok(run, 0, NULL, true, 0, &res);
    assert_int_equal(res.step, 12);
    same_run(ref, run, 12);
    /* keep 2: steps 9 and 12, and latest -> step 12 */
    char p[600];
    struct stat sb;
    snprintf(p, sizeof p, "%s/checkpoints/step-00000006", run);
    assert_int_not_equal(stat(p, &sb), 0);
    snprintf(p, sizeof p, "%s/checkpoints/step-00000009/trainer_state.json", run);
    assert_int_equal(stat(p, &sb), 0);
    char *latest;
    if (bv_ckpt_latest(run, &latest)) fail_msg("%s", bv_error_msg());
    assert_non_null(strstr(latest, "step-00000012"));
    free(latest);
    /* a finished run resumed again does nothing and still ends at 12 */
    train_ok(run, 0, NULL, true, 0, &res);
    assert_int_equal(res.step, 12);
}

/* kill -9 at each stage of the checkpoint write of step 6 (the second), then resume */
static void test_kill_during_checkpoint(void **state) {
    (void)state;
    static const char *stages[] = {"begin", "weights", "before-commit", "before-latest", "before-prune"};
    char ref[512];
    snprintf(ref, sizeof ref, "%s/ref", g_root);
    for (size_t k = 0; k < sizeof stages / sizeof *stages; k++) {
        char run[512];
        snprintf(run, sizeof run, "%s/kill_%zu", g_root, k);
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) { /* a fresh process (OpenMP does not survive fork): this program in child mode */
            setenv("BV_CKPT_KILL_AT", stages[k], 1);
            setenv("BV_CKPT_KILL_NTH", "2", 1);
            execl("/proc/self/exe", "test_train", "--train-child", g_root, run, (char *)NULL);
            _exit(4);
        }
        int ws = 0;
        assert_int_equal(waitpid(pid, &ws, 0), pid);
        if (!WIFSIGNALED(ws) || WTERMSIG(ws) != SIGKILL)
            fail_msg("stage %s: the run was not killed (status 0x%x)", stages[k], ws);
        char *latest;
        if (bv_ckpt_latest(run, &latest)) fail_msg("stage %s: %s", stages[k], bv_error_msg());
        /* before the rename of the link, latest still names step 3; after it, step 6 */
        const char *want = !strcmp(stages[k], "before-prune") ? "step-00000006" : "step-00000003";
        if (!strstr(latest, want)) fail_msg("stage %s: latest is %s, expected %s", stages[k], latest, want);
        bv_trainer_state ts;
        if (bv_ckpt_read_state(latest, &ts)) fail_msg("%s", bv_error_msg());
        free(latest);
        bv_train_result res;
        train_ok(run, 0, NULL, true, 0, &res);
        assert_int_equal(res.step, 12);
        same_run(ref, run, 12);
    }
}

static void test_nonfinite_guard(void **state) {
    (void)state;
    char run[512];
    snprintf(run, sizeof run, "%s/diverge", g_root);
    const char *sets[] = {"optimizer.lr=1e30", "schedule.type=constant", "schedule.warmup_steps=0",
                          "optimizer.clip_grad_norm=0"};
    bv_recipe r;
    load_recipe(&r, 4, sets);
    bv_train_result res;
    bv_status st = train(run, &r, false, 0, &res);
    bv_recipe_free(&r);
    assert_int_equal(st, BV_ERR_NONFINITE);
    const char *m = bv_error_msg();
    if (!strstr(m, "2 steps in a row") || (!strstr(m, "the gradient of '") && !strstr(m, "the loss is")))
        fail_msg("unexpected message: %s", m);
    assert_true(res.skipped >= 2);
}

/* only the action head trains: everything else stays bit-identical to the initialisation */
static void test_frozen_and_init_from(void **state) {
    (void)state;
    char run[512], ck[600];
    snprintf(run, sizeof run, "%s/head_only", g_root);
    const char *sets[] = {"model.train=[\"action_head.\"]", "steps=3"};
    bv_train_result res;
    train_ok(run, 2, sets, false, 0, &res);
    snprintf(ck, sizeof ck, "%s/checkpoints/step-00000003", run);
    /* the run's config (the tiny preset with the tokenizer's vocabulary) is in the checkpoint */
    char cfg[700];
    snprintf(cfg, sizeof cfg, "%s/config.json", ck);
    bv_model init, trained;
    bv_model_spec s0 = {.config = cfg, .purpose = BV_MODEL_INFER, .seed = 3};
    bv_model_spec s1 = {.config = cfg, .purpose = BV_MODEL_INFER, .weights = ck};
    if (bv_model_build(&init, &s0) || bv_model_build(&trained, &s1)) fail_msg("%s", bv_error_msg());
    int changed = 0;
    for (int i = 0; i < init.params.n; i++) {
        const bv_param *p = &init.params.items[i];
        bool same = !memcmp(init.params.values + p->offset, trained.params.values + p->offset, (size_t)p->numel * 4);
        bool head = !strncmp(p->name, "action_head.", 12);
        if (!head && !same) fail_msg("frozen parameter %s changed", p->name);
        changed += head && !same;
    }
    assert_true(changed > 0);
    bv_model_free(&init);
    /* init_from that checkpoint, training the proprio projector only: the head is the checkpoint's */
    char run2[512], set_init[700];
    snprintf(run2, sizeof run2, "%s/from_ckpt", g_root);
    snprintf(set_init, sizeof set_init, "model.init_from=\"%s\"", ck);
    const char *sets2[] = {set_init, "model.train=[\"proprio_projector.\"]", "steps=1", "schedule.warmup_steps=0"};
    train_ok(run2, 4, sets2, false, 0, &res);
    snprintf(ck, sizeof ck, "%s/checkpoints/step-00000001", run2);
    bv_model second;
    bv_model_spec s2 = {.config = cfg, .purpose = BV_MODEL_INFER, .weights = ck};
    if (bv_model_build(&second, &s2)) fail_msg("%s", bv_error_msg());
    for (int i = 0; i < second.params.n; i++) {
        const bv_param *p = &second.params.items[i];
        if (!strncmp(p->name, "proprio_projector.", 18)) continue;
        if (memcmp(second.params.values + p->offset, trained.params.values + p->offset, (size_t)p->numel * 4))
            fail_msg("init_from: %s differs from the checkpoint", p->name);
    }
    bv_model_free(&second);
    bv_model_free(&trained);
}

static void test_refuses_nonempty_run_dir(void **state) {
    (void)state;
    char run[512], cmd[1200];
    snprintf(run, sizeof run, "%s/busy", g_root);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && touch %s/notes.txt", run, run);
    sh(cmd);
    bv_recipe r;
    load_recipe(&r, 0, NULL);
    bv_train_result res;
    bv_status st = train(run, &r, false, 0, &res);
    bv_recipe_free(&r);
    assert_int_equal(st, BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "not empty"));
    assert_non_null(strstr(bv_error_msg(), "notes.txt"));
    /* resuming a directory without checkpoints names it */
    load_recipe(&r, 0, NULL);
    st = train(run, &r, true, 0, &res);
    bv_recipe_free(&r);
    assert_int_equal(st, BV_ERR_IO);
    assert_non_null(strstr(bv_error_msg(), "no checkpoint to resume from"));
}

/* the reference run's training loss falls */
static void test_loss_falls(void **state) {
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/ref/metrics.jsonl", g_root);
    size_t n;
    char *s = read_all(p, &n);
    double first = -1, last = -1;
    for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strstr(line, "\"kind\": \"train\"")) continue;
        char *l = strstr(line, "\"loss\": ");
        if (!l) fail_msg("no loss in %s", line);
        double v = strtod(l + 8, NULL);
        if (first < 0) first = v;
        last = v;
    }
    free(s);
    if (!(last < first)) fail_msg("training loss did not fall: first %g, last %g", first, last);
}

int main(int argc, char **argv) {
    if (argc == 4 && !strcmp(argv[1], "--train-child")) { /* test_kill_during_checkpoint's child */
        snprintf(g_root, sizeof g_root, "%s", argv[2]);
        setenv("BV_PROGRESS", "0", 1);
        bv_recipe r;
        load_recipe(&r, 0, NULL);
        bv_train_result res;
        train(argv[3], &r, false, 0, &res);
        return 3; /* not reached: the kill point fires */
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_exact),
        cmocka_unit_test(test_kill_during_checkpoint),
        cmocka_unit_test(test_nonfinite_guard),
        cmocka_unit_test(test_frozen_and_init_from),
        cmocka_unit_test(test_refuses_nonempty_run_dir),
        cmocka_unit_test(test_loss_falls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
