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
 * MPI ranks (o.world > 1, under mpirun: recipes/dist.h): every rank calls bv_cl_run with the same
 * options but its rank, and runs the episodes i of the task-major list with i % world == rank on
 * its threads. While they run, the ranks exchange their counts without waiting on each other
 * (bv_dist_tally): the progress bar (rank 0's) counts every rank's episodes, and a failure on one
 * rank stops the others after the episodes they are in. At the end the outcomes are summed over
 * the ranks, so every rank returns the whole result, the same as one process's. The thread that
 * initialised MPI calls bv_cl_run; bv_cl_record runs on the calling rank alone.
 *
 * Recording (bv_cl_record): the episodes a film strip or an animation shows are re-run with the
 * same agent, rendering both cameras at chosen steps; an evaluation without media renders nothing
 * it does not need.
 *
 * Owns: a bv_cl_result owns its arrays (bv_cl_result_free); a bv_cl_clip its frames once recorded
 * (bv_cl_clip_free). Must not: print to stdout (the CLI prints the table), know about flags.
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
    bool unique_colour;          /* the env's easier scenes (data/synth_env.h; default false) */
    bool progress;               /* a progress bar on stderr (default true; rank 0's only) */
    int rank, world;             /* this process's MPI rank and the number of ranks (default 0, 1) */
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
    int failed_rank;      /* set on failure too: the lowest rank that failed (0 for an error every rank
                           * meets alike, such as a bad option), whose error is the one to report;
                           * -1: none */
} bv_cl_result;

/* Run the evaluation (with o->world > 1: this rank's share, above). Errors: a bad option (named),
 * a policy that cannot be loaded (the loader's message, prefixed with the path), a policy whose
 * action or state dimension is not the env's, what an episode returned (its task and episode);
 * with several ranks, a failure on any rank fails every rank's call after the same exchange: the
 * ranks that failed return their own error, the others "rank F of N failed" (r->failed_rank = F).
 * On failure r holds nothing but failed_rank.
 * Test hook: BV_EVAL_FAULT="RANK:load" fails rank RANK after loading its agent, "RANK:I" when it
 * comes to the I-th episode of its share (from 0; one process: rank 0, its I-th episode). */
bv_status bv_cl_run(const bv_cl_opts *o, bv_cl_result *r);
void bv_cl_result_free(bv_cl_result *r);

/* The result as JSON (docs/evaluation.md), written atomically. Errors name the path. With
 * n_baselines > 0, "baselines" holds each of baselines[0 .. n_baselines) (results of the same
 * options with another agent) under its agent's name, each with r's keys but the protocol and env. */
bv_status bv_cl_write_json(const bv_cl_result *r, const bv_cl_result *const *baselines, int n_baselines,
                           const bv_cl_opts *o, const char *path);

/* ---- recording episodes: the frames of film strips and animations (eval/media.h) ---- */

#define BV_CL_CLIP_MAX_FRAMES 64

typedef struct {
    bv_cl_episode ep;  /* the episode as the evaluation ran it (task, episode, seed, success, steps) */
    int n_frames;      /* 1 .. BV_CL_CLIP_MAX_FRAMES */
    int steps[BV_CL_CLIP_MAX_FRAMES]; /* the agent step of each frame, not decreasing, in [0, ep.steps]:
                                       * the scene after that many agent steps (0: after the wait
                                       * steps, before the agent's first action; ep.steps: the end) */
    /* set by bv_cl_record: */
    int size;                /* pixels of each square image (the options' image_size) */
    uint8_t *image, *wrist;  /* n_frames x (size, size, 3): the third-person and the wrist camera */
} bv_cl_clip;

/* Called with each recorded clip, in order, from bv_cl_record's calling thread. */
typedef bv_status (*bv_cl_clip_fn)(void *ctx, bv_cl_clip *clip);

/* Re-run the clips' episodes with o's agent (a policy loaded again, one per thread; o as the
 * evaluation ran, so the same OpenMP threads per policy) and render both cameras at their steps,
 * which changes nothing the agent does. The clips run in batches of one per thread; after each
 * batch fn (may be NULL) gets its clips in order. The frames are malloc'd here and belong to the
 * clip (whatever image and wrist held is overwritten): free them with bv_cl_clip_free, in fn once
 * used (so that a long list needs little memory) or after this returns, success or failure.
 * Errors: bad options or clips (named), what loading the policy or fn returned (prefixed with the
 * clip's task and episode), and BV_ERR_INTERNAL when an episode does not end as ep says (an agent
 * that is not deterministic). */
bv_status bv_cl_record(const bv_cl_opts *o, bv_cl_clip *clips, int n_clips, bv_cl_clip_fn fn, void *ctx);
/* Free a clip's frames (a clip without frames is fine). */
void bv_cl_clip_free(bv_cl_clip *c);

/* The env seed of episode e of task t under seed S (splitmix64 of the three). */
uint64_t bv_cl_episode_seed(uint64_t seed, int task, int episode);

/* A policy's gripper action (the libero schema's invert_clip01 units: [0, 1], 1 = open) -> the
 * env's (+1 close, -1 open): OFT's normalize_gripper_action (binarize 2a - 1 at 0) then
 * invert_gripper_action. */
float bv_cl_gripper_to_env(float a);

/* Wilson score interval for k successes of n trials at z (1.96 for 95%); n = 0 gives [0, 1]. */
void bv_wilson(int k, int n, double z, double *lo, double *hi);

#endif
