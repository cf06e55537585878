/* Tests of closed-loop evaluation (eval/closed_loop.h):
 *  - the Wilson interval against known values;
 *  - the gripper mapping of a policy's [0, 1] (1 = open) to the env's +1 close / -1 open;
 *  - the scripted expert succeeds on nearly every episode, the random agent on few (printed);
 *  - outcomes are identical for 1 and 2 threads, and the episode seeds do not depend on them;
 *  - bad options are refused naming the value;
 *  - recording (bv_cl_record): the frame at step 0 is the scene after the wait steps, rendered
 *    directly; the frames are the same with 1 and 2 threads and for the expert and the random
 *    agent alike deterministic; the callback sees the clips in order; an episode that does not end
 *    as the evaluation said is refused as not deterministic; bad clips are refused;
 *  - the JSON with baselines: the evaluated agent's keys at the top as before, each baseline's
 *    under "baselines".
 * The expert and the random agent render nothing (but the recorded frames), so this runs in about
 * a second. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "data/synth_env.h"
#include "eval/closed_loop.h"
#include "tests/util/testutil.h"

static void check_wilson(int k, int n, double lo_want, double hi_want) {
    double lo, hi;
    bv_wilson(k, n, 1.96, &lo, &hi);
    if (fabs(lo - lo_want) > 5e-4 || fabs(hi - hi_want) > 5e-4)
        fail_msg("wilson(%d, %d): got [%.4f, %.4f], want [%.4f, %.4f] (tol 5e-4)", k, n, lo, hi, lo_want, hi_want);
}

static void test_wilson(void **state) {
    (void)state;
    /* reference values: statsmodels proportion_confint(k, n, method="wilson") */
    check_wilson(8, 10, 0.4902, 0.9433);
    check_wilson(0, 10, 0.0, 0.2775);
    check_wilson(10, 10, 0.7225, 1.0);
    check_wilson(5, 10, 0.2366, 0.7634);
    check_wilson(45, 50, 0.7864, 0.9565);
    check_wilson(1, 100, 0.0018, 0.0545);
    double lo, hi;
    bv_wilson(0, 0, 1.96, &lo, &hi);
    assert_true(lo == 0.0 && hi == 1.0);
}

static void test_gripper_mapping(void **state) {
    (void)state;
    assert_true(bv_cl_gripper_to_env(1.0f) == -1.0f); /* open */
    assert_true(bv_cl_gripper_to_env(0.9f) == -1.0f);
    assert_true(bv_cl_gripper_to_env(0.51f) == -1.0f);
    assert_true(bv_cl_gripper_to_env(0.5f) == 1.0f); /* 2a - 1 = 0 is not > 0 */
    assert_true(bv_cl_gripper_to_env(0.0f) == 1.0f); /* closed */
    assert_true(bv_cl_gripper_to_env(-0.3f) == 1.0f);
    assert_true(bv_cl_gripper_to_env(NAN) == 1.0f);
}

static void run(bv_cl_agent agent, int threads, int episodes, const int *tasks, int n_tasks, bv_cl_result *r) {
    bv_cl_opts o;
    bv_cl_opts_default(&o);
    o.agent = agent;
    o.episodes = episodes;
    o.tasks = tasks, o.n_tasks = n_tasks;
    o.seed = 7;
    o.threads = threads;
    o.inner_threads = 1;
    o.image_size = 64;
    o.progress = false;
    if (bv_cl_run(&o, r)) fail_msg("bv_cl_run(%s, %d threads): %s", bv_cl_agent_name(agent), threads, bv_error_msg());
    assert_int_equal(r->n_episodes, episodes * n_tasks);
    assert_int_equal(r->n_tasks, n_tasks);
}

static void test_expert_and_random(void **state) {
    (void)state;
    const int tasks[] = {0, 5, 13};
    bv_cl_result ex, rnd;
    run(BV_CL_AGENT_EXPERT, 1, 8, tasks, 3, &ex);
    run(BV_CL_AGENT_RANDOM, 1, 8, tasks, 3, &rnd);
    print_message("expert: %d/%d (%.1f steps); random: %d/%d\n", ex.all.successes, ex.all.episodes, ex.all.mean_steps,
                  rnd.all.successes, rnd.all.episodes);
    if (ex.all.successes < 22) fail_msg("the expert succeeded on only %d of 24 episodes", ex.all.successes);
    if (rnd.all.successes > 2) fail_msg("the random agent succeeded on %d of 24 episodes", rnd.all.successes);
    for (int t = 0; t < 3; t++) {
        const bv_cl_summary *s = &ex.tasks[t];
        assert_int_equal(s->task, tasks[t]);
        assert_int_equal(s->episodes, 8);
        assert_true(s->lo <= s->rate && s->rate <= s->hi);
        assert_true(s->mean_steps > 0 && s->mean_steps <= 300);
        char want[128];
        bv_synth_task_instruction(bv_synth_task_get(tasks[t]), want, sizeof want);
        assert_string_equal(s->instruction, want);
    }
    /* a failed episode runs to max_steps; a success stops there */
    for (int i = 0; i < rnd.n_episodes; i++)
        if (!rnd.eps[i].success) assert_int_equal(rnd.eps[i].steps, 300);
    /* the same initial states for both agents, task-major */
    for (int i = 0; i < ex.n_episodes; i++) {
        assert_true(ex.eps[i].seed == rnd.eps[i].seed);
        assert_true(ex.eps[i].seed == bv_cl_episode_seed(7, tasks[i / 8], i % 8));
        assert_int_equal(ex.eps[i].task, tasks[i / 8]);
        assert_int_equal(ex.eps[i].episode, i % 8);
    }
    bv_cl_result_free(&ex);
    bv_cl_result_free(&rnd);
}

static void test_threads_agree(void **state) {
    (void)state;
    const int tasks[] = {2, 3};
    for (int a = BV_CL_AGENT_EXPERT; a <= BV_CL_AGENT_RANDOM; a++) {
        bv_cl_result r1, r2;
        run((bv_cl_agent)a, 1, 6, tasks, 2, &r1);
        run((bv_cl_agent)a, 2, 6, tasks, 2, &r2);
        for (int i = 0; i < r1.n_episodes; i++)
            if (r1.eps[i].success != r2.eps[i].success || r1.eps[i].steps != r2.eps[i].steps ||
                r1.eps[i].seed != r2.eps[i].seed)
                fail_msg("%s: episode %d differs: 1 thread success %d steps %d, 2 threads success %d steps %d",
                         bv_cl_agent_name((bv_cl_agent)a), i, r1.eps[i].success, r1.eps[i].steps, r2.eps[i].success,
                         r2.eps[i].steps);
        bv_cl_result_free(&r1);
        bv_cl_result_free(&r2);
    }
}

static void test_bad_options(void **state) {
    (void)state;
    bv_cl_opts o;
    bv_cl_result r;
    const int bad_task[] = {999};
    bv_cl_opts_default(&o);
    o.agent = BV_CL_AGENT_EXPERT;
    o.tasks = bad_task, o.n_tasks = 1;
    assert_int_equal(bv_cl_run(&o, &r), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "task 999"));
    bv_cl_opts_default(&o);
    o.agent = BV_CL_AGENT_POLICY;
    assert_int_equal(bv_cl_run(&o, &r), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "needs a bundle or checkpoint"));
    bv_cl_opts_default(&o);
    o.agent = BV_CL_AGENT_POLICY;
    o.policy_path = "/nonexistent/bundle";
    o.progress = false;
    assert_int_not_equal(bv_cl_run(&o, &r), BV_OK);
    assert_non_null(strstr(bv_error_msg(), "/nonexistent/bundle"));
    assert_int_equal(r.failed_rank, 0);
    /* ranks: in range, and as many as the job has (one here: no mpirun) */
    bv_cl_opts_default(&o);
    o.agent = BV_CL_AGENT_EXPERT;
    o.rank = 1;
    assert_int_equal(bv_cl_run(&o, &r), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "rank 1 of 1 (expected 0 <= rank < world)");
    o.world = 2;
    assert_int_equal(bv_cl_run(&o, &r), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "rank 1 of 2, but the job has 1 (start the ranks with mpirun)");
    assert_int_equal(r.failed_rank, 0);
    bv_cl_agent ag;
    assert_int_equal(bv_cl_agent_parse("oracle", &ag), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "'oracle'"));
    assert_int_equal(bv_cl_agent_parse("random", &ag), BV_OK);
    assert_int_equal(ag, BV_CL_AGENT_RANDOM);
}

typedef struct {
    int calls;
    bv_cl_clip *seen[8];
    int fail_at; /* return an error at this call (-1: never) */
} record_log;

static bv_status log_clip(void *ctx, bv_cl_clip *c) {
    record_log *l = ctx;
    if (l->calls == l->fail_at) return bv_error_set(BV_ERR_IO, "told to fail");
    l->seen[l->calls++] = c;
    return BV_OK;
}

static void record_opts(bv_cl_opts *o, bv_cl_agent agent, int threads) {
    bv_cl_opts_default(o);
    o->agent = agent;
    o->episodes = 2;
    o->seed = 7;
    o->threads = threads;
    o->inner_threads = 1;
    o->image_size = 64;
    o->progress = false;
}

static void test_record(void **state) {
    (void)state;
    const int tasks[] = {3};
    for (int a = BV_CL_AGENT_EXPERT; a <= BV_CL_AGENT_RANDOM; a++) {
        bv_cl_result r;
        run((bv_cl_agent)a, 1, 2, tasks, 1, &r);
        const size_t frame = 64 * 64 * 3;
        /* episode 0 twice and episode 1, with 1 and with 2 threads */
        bv_cl_clip clips[2][3];
        for (int t = 0; t < 2; t++) {
            memset(clips[t], 0, sizeof clips[t]);
            for (int k = 0; k < 3; k++) {
                bv_cl_clip *c = &clips[t][k];
                c->ep = r.eps[k == 2];
                c->n_frames = 3;
                c->steps[0] = 0, c->steps[1] = 5, c->steps[2] = c->ep.steps;
            }
            bv_cl_opts o;
            record_opts(&o, (bv_cl_agent)a, t + 1);
            o.tasks = tasks, o.n_tasks = 1;
            record_log log = {.fail_at = -1};
            if (bv_cl_record(&o, clips[t], 3, log_clip, &log)) fail_msg("bv_cl_record: %s", bv_error_msg());
            assert_int_equal(log.calls, 3);
            for (int k = 0; k < 3; k++) assert_ptr_equal(log.seen[k], &clips[t][k]);
            assert_int_equal(clips[t][0].size, 64);
        }
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 3; k++) {
                const bv_cl_clip *c = &clips[t][k], *ref = &clips[0][k == 1 ? 0 : k];
                if (memcmp(c->image, ref->image, 3 * frame) || memcmp(c->wrist, ref->wrist, 3 * frame))
                    fail_msg("%s: clip %d recorded with %d threads differs from episode %d's first recording",
                             bv_cl_agent_name((bv_cl_agent)a), k, t + 1, c->ep.episode);
            }
        /* frame 0: the scene after the wait steps, as the env renders it directly */
        bv_synth_config cfg;
        bv_synth_config_default(&cfg);
        cfg.image_size = 64;
        cfg.max_steps = 310;
        bv_synth_env *env;
        assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
        assert_int_equal(bv_synth_env_reset(env, r.eps[0].seed, 3), BV_OK);
        const float noop[BV_SYNTH_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
        for (int i = 0; i < 10; i++) bv_synth_env_step(env, noop);
        uint8_t *img = malloc(frame), *wrist = malloc(frame);
        bv_synth_env_render(env, BV_SYNTH_CAM_AGENT, img);
        bv_synth_env_render(env, BV_SYNTH_CAM_WRIST, wrist);
        assert_memory_equal(img, clips[0][0].image, frame);
        assert_memory_equal(wrist, clips[0][0].wrist, frame);
        /* the agent moved: the last frame is another picture */
        assert_true(memcmp(clips[0][0].wrist, clips[0][0].wrist + 2 * frame, frame) != 0);
        free(img), free(wrist);
        bv_synth_env_free(env);
        for (int t = 0; t < 2; t++)
            for (int k = 0; k < 3; k++) bv_cl_clip_free(&clips[t][k]);

        /* an episode said to end otherwise: the agent would not be deterministic */
        bv_cl_clip bad = {.ep = r.eps[0], .n_frames = 1};
        bad.ep.steps += 1;
        bv_cl_opts o;
        record_opts(&o, (bv_cl_agent)a, 1);
        assert_int_equal(bv_cl_record(&o, &bad, 1, NULL, NULL), BV_ERR_INTERNAL);
        bv_test_expect_in(bv_error_msg(), "is not deterministic");
        bv_cl_clip_free(&bad);
        /* fn's error stops it, prefixed with the clip */
        bv_cl_clip two[2] = {{.ep = r.eps[0], .n_frames = 1}, {.ep = r.eps[1], .n_frames = 1}};
        record_log log = {.fail_at = 0};
        assert_int_equal(bv_cl_record(&o, two, 2, log_clip, &log), BV_ERR_IO);
        bv_test_expect_in(bv_error_msg(), "task 3 episode 0: told to fail");
        bv_cl_clip_free(&two[0]), bv_cl_clip_free(&two[1]);
        bv_cl_result_free(&r);
    }
    /* bad clips */
    bv_cl_opts o;
    record_opts(&o, BV_CL_AGENT_EXPERT, 1);
    bv_cl_clip c = {.ep = {.task = 0, .steps = 10}, .n_frames = 2, .steps = {0, 11}};
    assert_int_equal(bv_cl_record(&o, &c, 1, NULL, NULL), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "clip 0: frame 1 at step 11");
    c.n_frames = 0;
    assert_int_equal(bv_cl_record(&o, &c, 1, NULL, NULL), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "clip 0: 0 frames");
    c.n_frames = 1, c.ep.task = 99;
    assert_int_equal(bv_cl_record(&o, &c, 1, NULL, NULL), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "clip 0: task 99");
}

static void test_json_baselines(void **state) {
    (void)state;
    const int tasks[] = {0, 1};
    bv_cl_result ex, rnd;
    run(BV_CL_AGENT_EXPERT, 1, 2, tasks, 2, &ex);
    run(BV_CL_AGENT_RANDOM, 1, 2, tasks, 2, &rnd);
    bv_cl_opts o;
    record_opts(&o, BV_CL_AGENT_EXPERT, 1);
    char path[4096];
    const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(path, sizeof path, "%s/bv_test_closed_loop_%d.json", dir, (int)getpid());
    const bv_cl_result *base[2] = {&rnd, &ex};
    if (bv_cl_write_json(&ex, base, 2, &o, path)) fail_msg("%s", bv_error_msg());
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) fail_msg("%s: %s", path, err.text);
    remove(path);
    const char *keys[] = {"success_rate", "ci95", "successes", "episodes", "mean_steps", "agent", "source",
                          "env",          "protocol", "seconds", "tasks",    "outcomes", "baselines"};
    size_t i = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (i >= BV_ARRAY_LEN(keys) || strcmp(key, keys[i]))
            fail_msg("top-level key %zu is '%s', expected '%s'", i, key, i < BV_ARRAY_LEN(keys) ? keys[i] : "(none)");
        i++;
    }
    assert_int_equal(i, BV_ARRAY_LEN(keys));
    assert_true(json_real_value(json_object_get(root, "success_rate")) == ex.all.rate);
    json_t *b = json_object_get(root, "baselines");
    assert_int_equal(json_object_size(b), 2);
    json_t *br = json_object_get(b, "random"), *be = json_object_get(b, "expert");
    assert_non_null(br);
    assert_non_null(be);
    assert_string_equal(json_string_value(json_object_get(br, "agent")), "random");
    assert_true(json_real_value(json_object_get(br, "success_rate")) == rnd.all.rate);
    assert_int_equal(json_array_size(json_object_get(br, "tasks")), 2);
    assert_int_equal(json_array_size(json_object_get(br, "outcomes")), 4);
    assert_int_equal(json_array_size(json_object_get(br, "ci95")), 2);
    assert_null(json_object_get(br, "protocol"));
    assert_true(json_real_value(json_object_get(be, "success_rate")) == ex.all.rate);
    json_decref(root);
    /* without baselines: no such key */
    if (bv_cl_write_json(&ex, NULL, 0, &o, path)) fail_msg("%s", bv_error_msg());
    root = json_load_file(path, 0, &err);
    remove(path);
    assert_non_null(root);
    assert_null(json_object_get(root, "baselines"));
    json_decref(root);
    bv_cl_result_free(&ex);
    bv_cl_result_free(&rnd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_gripper_mapping),
        cmocka_unit_test(test_expert_and_random),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_json_baselines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
