/* Tests of closed-loop evaluation (eval/closed_loop.h):
 *  - the Wilson interval against known values;
 *  - the gripper mapping of a policy's [0, 1] (1 = open) to the env's +1 close / -1 open;
 *  - the scripted expert succeeds on nearly every episode, the random agent on few (printed);
 *  - outcomes are identical for 1 and 2 threads, and the episode seeds do not depend on them;
 *  - bad options are refused naming the value.
 * The expert and the random agent render nothing, so this runs in well under a second. */
#include <math.h>
#include <stdio.h>
#include <string.h>

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
    bv_cl_agent ag;
    assert_int_equal(bv_cl_agent_parse("oracle", &ag), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "'oracle'"));
    assert_int_equal(bv_cl_agent_parse("random", &ag), BV_OK);
    assert_int_equal(ag, BV_CL_AGENT_RANDOM);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_gripper_mapping),
        cmocka_unit_test(test_expert_and_random),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_bad_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
