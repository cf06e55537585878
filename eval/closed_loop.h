/* closed_loop.h - closed-loop evaluation on the built-in tabletop task (data/synth_env.h) with
 * LIBERO's protocol as BitVLA runs it (run_libero_eval_bitnet.py), see docs/evaluation.md:
 *
 *   for each task t, for each episode e < episodes:
 *     reset the env from seed bv_cl_episode_seed(seed, t, e) with task t (the same initial states
 *       for every agent evaluated);
 *     wait_steps (10) no-op steps: zero arm deltas, gripper open (-1);
 *     until bv_synth_env_done (success, or wait_steps + max_steps steps):
 *       observe (both cameras at image_size), the agent returns a chunk of actions, all of them
 *       executed open-loop (stopping early when the episode ends).
 *
 * Agents: a policy (eval/policy.h; chunk of 8, its gripper in [0, 1] with 1 = open, mapped to the
 * env's +1 close / -1 open by bv_cl_gripper_to_env), the scripted expert (privileged, re-plans
 * every step: a chunk of 1; the upper bound) and a uniformly random agent (chunk of 8; the floor).
 * The expert and the random agent are seeded per episode, so every episode is deterministic and
 * the outcomes do not depend on the number of threads.
 *
 * Threads: episodes are shared out over `threads` POSIX threads, each with its own env and its own
 * policy (policies are not reentrant); each sets its OpenMP thread count to inner_threads.
 *
 * Owns: a bv_cl_result owns its arrays (bv_cl_result_free). Must not: print to stdout (the CLI
 * prints the table), know about flags.
 */
#ifndef BV_EVAL_CLOSED_LOOP_H
#define BV_EVAL_CLOSED_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "eval/policy.h"
#include "src/common.h"

typedef enum { BV_CL_AGENT_POLICY, BV_CL_AGENT_EXPERT, BV_CL_AGENT_RANDOM } bv_cl_agent;

const char *bv_cl_agent_name(bv_cl_agent a); /* "policy", "expert", "random" */
/* "policy" | "expert" | "random" -> the agent; BV_ERR_ARG naming the word otherwise. */
bv_status bv_cl_agent_parse(const char *s, bv_cl_agent *out);

typedef struct {
    bv_cl_agent agent;
    const char *policy_path;     /* BV_CL_AGENT_POLICY: a bundle or checkpoint (eval/policy.h) */
    bv_policy_opts policy_opts;  /* how to load it (bv_policy_opts_default) */
    int episodes;                /* per task (default 50, as LIBERO's protocol) */
    const int *tasks;            /* task ids (borrowed); NULL: 0 .. bv_synth_num_tasks()-1 */
    int n_tasks;
    uint64_t seed;               /* the initial states (default 0) */
    int threads;                 /* episode threads (default 1) */
    int inner_threads;           /* OpenMP threads in each (0: the process's count / threads, >= 1) */
    int image_size;              /* camera images, pixels (default 256) */
    int max_steps;               /* agent steps before an episode fails (default 300) */
    int wait_steps;              /* no-op steps first (default 10) */
    float expert_noise;          /* the expert's action noise std (default 0: the upper bound) */
    bool progress;               /* a progress bar on stderr (default true) */
} bv_cl_opts;

void bv_cl_opts_default(bv_cl_opts *o);

typedef struct {
    int task, episode;
    uint64_t seed; /* the env seed */
    bool success;
    int steps; /* agent steps taken (the wait steps not counted) */
} bv_cl_episode;

typedef struct {
    int task;
    char instruction[128];
    int successes, episodes;
    double rate, lo, hi; /* success rate and its Wilson 95% interval */
    double mean_steps;   /* mean agent steps over all the task's episodes */
} bv_cl_summary;

typedef struct {
    bv_cl_agent agent;
    int n_tasks;
    bv_cl_summary *tasks; /* n_tasks */
    bv_cl_summary all;    /* task = -1 */
    int n_episodes;
    bv_cl_episode *eps;   /* n_episodes, task-major in the order of opts.tasks */
    double seconds;       /* wall time of the episodes (policy loading not counted) */
    char source[96];      /* "expert", "random", or the policy's path and source */
} bv_cl_result;

/* Run the evaluation. Errors: a bad option (named), a policy that cannot be loaded (the loader's
 * message, prefixed with the path), a policy whose action or state dimension is not the env's. */
bv_status bv_cl_run(const bv_cl_opts *o, bv_cl_result *r);
void bv_cl_result_free(bv_cl_result *r);

/* The result as JSON (docs/evaluation.md), written atomically. Errors name the path. */
bv_status bv_cl_write_json(const bv_cl_result *r, const bv_cl_opts *o, const char *path);

/* The env seed of episode e of task t under seed S (splitmix64 of the three). */
uint64_t bv_cl_episode_seed(uint64_t seed, int task, int episode);

/* A policy's gripper action (the libero schema's invert_clip01 units: [0, 1], 1 = open) -> the
 * env's (+1 close, -1 open): OFT's normalize_gripper_action (binarize 2a - 1 at 0) then
 * invert_gripper_action. */
float bv_cl_gripper_to_env(float a);

/* Wilson score interval for k successes of n trials at z (1.96 for 95%); n = 0 gives [0, 1]. */
void bv_wilson(int k, int n, double z, double *lo, double *hi);

#endif
