/* closed_loop.c - closed-loop evaluation on the built-in task (see closed_loop.h). */
#include "eval/closed_loop.h"

#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/synth_env.h"
#include "recipes/dist.h"
#include "src/action_norm.h"
#include "src/atomic_file.h"
#include "src/progress.h"

#define CL_RANDOM_CHUNK 8

const char *bv_cl_agent_name(bv_cl_agent a) {
    switch (a) {
    case BV_CL_AGENT_POLICY: return "policy";
    case BV_CL_AGENT_EXPERT: return "expert";
    case BV_CL_AGENT_RANDOM: return "random";
    }
    return "?";
}

bv_status bv_cl_agent_parse(const char *s, bv_cl_agent *out) {
    for (int a = BV_CL_AGENT_POLICY; a <= BV_CL_AGENT_RANDOM; a++)
        if (s && !strcmp(s, bv_cl_agent_name((bv_cl_agent)a))) {
            *out = (bv_cl_agent)a;
            return BV_OK;
        }
    return bv_error_set(BV_ERR_ARG, "agent '%s' (expected policy, expert or random)", s ? s : "(null)");
}

void bv_cl_opts_default(bv_cl_opts *o) {
    memset(o, 0, sizeof *o);
    o->agent = BV_CL_AGENT_POLICY;
    bv_policy_opts_default(&o->policy_opts);
    o->episodes = 50;
    o->threads = 1;
    o->image_size = 256;
    o->max_steps = 300;
    o->wait_steps = 10;
    o->expert_noise = 0.0f;
    o->progress = true;
    o->world = 1;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t bv_cl_episode_seed(uint64_t seed, int task, int episode) {
    /* a constant apart from data/synth.h's episode seeds, so evaluation scenes are not the
     * training scenes of a dataset of the same seed */
    return splitmix64(splitmix64(splitmix64(seed ^ 0x65766C2D636C6F73ull) + (uint64_t)task) + (uint64_t)episode);
}

float bv_cl_gripper_to_env(float a) {
    /* OFT: normalize_gripper_action(binarize=True): sign(2a - 1) (+1 open in the dataset's terms);
     * invert_gripper_action: its negation, so open -> -1, the env's open. A NaN compares false:
     * it closes (+1). */
    return bv_action_gripper_open(a) ? -1.0f : 1.0f;
}

void bv_wilson(int k, int n, double z, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0.0, *hi = 1.0;
        return;
    }
    double p = (double)k / n, z2 = z * z;
    double den = 1.0 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / den;
    double half = z * sqrt(p * (1.0 - p) / n + z2 / (4.0 * (double)n * n)) / den;
    *lo = fmax(0.0, centre - half);
    *hi = fmin(1.0, centre + half);
}

/* ---- the workers ---- */

typedef struct {
    const bv_cl_opts *o;
    int total;
    bv_cl_episode *eps; /* the evaluation: total episodes to run */
    bv_cl_clip *clips;  /* or a recording: total clips to re-run */
    int fault;          /* the index in eps where BV_EVAL_FAULT fails (-1: none) */
    const char *fault_spec;
    atomic_int next, done;
    atomic_int failed;  /* stop: this rank or (under MPI) another failed */
    atomic_int errored; /* a thread of this rank failed (err says why) */
    atomic_int exited;  /* threads returned */
    pthread_mutex_t mu;
    bv_status err;
    char errmsg[1024];
} cl_shared;

typedef struct {
    cl_shared *sh;
    bv_policy *pol;
} cl_worker;

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static float uniform(uint64_t *s) { /* in [-1, 1) */
    *s = splitmix64(*s);
    return (float)((double)(*s >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

typedef struct {
    uint8_t *img, *wrist;
    float *act; /* chunk x action_dim */
} cl_bufs;

/* Render both cameras into the clip's frames due at agent step `step` (none when clip is NULL). */
static void record(bv_synth_env *env, bv_cl_clip *clip, int *next, int step) {
    if (!clip) return;
    const size_t frame = (size_t)clip->size * clip->size * 3;
    for (; *next < clip->n_frames && clip->steps[*next] <= step; (*next)++) {
        if (clip->steps[*next] < step) continue; /* a step the episode passed without reaching it: left black */
        bv_synth_env_render(env, BV_SYNTH_CAM_AGENT, clip->image + *next * frame);
        bv_synth_env_render(env, BV_SYNTH_CAM_WRIST, clip->wrist + *next * frame);
    }
}

/* One episode; the agent's state is made here from the episode's seed. With a clip, both cameras
 * are rendered at its steps (the agent acts exactly as without). */
static bv_status run_episode(cl_worker *w, bv_synth_env *env, cl_bufs *b, bv_cl_episode *ep, bv_cl_clip *clip) {
    const bv_cl_opts *o = w->sh->o;
    int next_frame = 0;
    BV_TRY(bv_synth_env_reset(env, ep->seed, ep->task));
    const float noop[BV_SYNTH_ACTION_DIM] = {0, 0, 0, 0, 0, 0, -1};
    for (int i = 0; i < o->wait_steps && !bv_synth_env_done(env); i++) bv_synth_env_step(env, noop);
    bv_synth_expert ex;
    uint64_t rng = splitmix64(ep->seed ^ 0x72616E646F6D21ull);
    if (o->agent == BV_CL_AGENT_EXPERT) bv_synth_expert_init(&ex, splitmix64(ep->seed ^ 0x6578706572742Eull), o->expert_noise);
    while (!bv_synth_env_done(env)) {
        int n = 0; /* actions in this chunk */
        if (o->agent == BV_CL_AGENT_EXPERT) {
            bv_synth_expert_act(&ex, env, b->act);
            n = 1;
        } else if (o->agent == BV_CL_AGENT_RANDOM) {
            n = CL_RANDOM_CHUNK;
            for (int t = 0; t < n; t++) {
                float *a = b->act + t * BV_SYNTH_ACTION_DIM;
                for (int d = 0; d < 6; d++) a[d] = uniform(&rng);
                a[6] = uniform(&rng) > 0 ? 1.0f : -1.0f;
            }
        } else {
            bv_synth_obs obs = {.image = b->img, .wrist_image = b->wrist};
            bv_synth_env_observe(env, &obs);
            const int S = o->image_size;
            bv_policy_obs po = {.full_image = b->img, .full_w = S, .full_h = S, .wrist_image = b->wrist,
                                .wrist_w = S, .wrist_h = S, .state = obs.state, .state_dim = BV_SYNTH_STATE_DIM,
                                .instruction = obs.instruction};
            bv_status st = bv_policy_act(w->pol, &po, b->act, NULL);
            if (st) return bv_error_prefix(st, "task %d episode %d step %d", ep->task, ep->episode,
                                           bv_synth_env_num_steps(env) - o->wait_steps);
            n = bv_policy_chunk(w->pol);
            for (int t = 0; t < n; t++) {
                float *a = b->act + t * BV_SYNTH_ACTION_DIM;
                a[6] = bv_cl_gripper_to_env(a[6]);
            }
        }
        for (int t = 0; t < n && !bv_synth_env_done(env); t++) {
            record(env, clip, &next_frame, bv_synth_env_num_steps(env) - o->wait_steps);
            bv_synth_env_step(env, b->act + t * BV_SYNTH_ACTION_DIM);
        }
    }
    ep->success = bv_synth_env_success(env);
    ep->steps = BV_MAX(0, bv_synth_env_num_steps(env) - o->wait_steps);
    record(env, clip, &next_frame, ep->steps);
    return BV_OK;
}

static void *worker_main(void *arg) {
    cl_worker *w = arg;
    cl_shared *sh = w->sh;
    const bv_cl_opts *o = sh->o;
    omp_set_num_threads(o->inner_threads);
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = o->image_size;
    cfg.max_steps = o->wait_steps + o->max_steps;
    cfg.unique_colour = o->unique_colour;
    bv_synth_env *env = NULL;
    bv_status st = bv_synth_env_init(&env, &cfg);
    const int S = o->image_size, chunk = w->pol ? bv_policy_chunk(w->pol) : CL_RANDOM_CHUNK;
    cl_bufs b = {0};
    if (!st) {
        b.img = bv_xmalloc((size_t)S * S * 3);
        b.wrist = bv_xmalloc((size_t)S * S * 3);
        b.act = bv_xmalloc((size_t)BV_MAX(chunk, CL_RANDOM_CHUNK) * BV_SYNTH_ACTION_DIM * sizeof(float));
    }
    while (!st && !atomic_load(&sh->failed)) {
        int i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->total) break;
        if (sh->clips) {
            bv_cl_clip *c = &sh->clips[i];
            bv_cl_episode ep = c->ep;
            st = run_episode(w, env, &b, &ep, c);
            if (!st && (ep.success != c->ep.success || ep.steps != c->ep.steps))
                st = bv_error_set(BV_ERR_INTERNAL,
                                  "task %d episode %d: re-run to record it, it ended in %s after %d steps, in the "
                                  "evaluation in %s after %d (the agent is not deterministic)",
                                  ep.task, ep.episode, ep.success ? "success" : "failure", ep.steps,
                                  c->ep.success ? "success" : "failure", c->ep.steps);
        } else if (i == sh->fault) {
            st = bv_error_set(BV_ERR_IO, "task %d episode %d: injected fault (BV_EVAL_FAULT=%s)", sh->eps[i].task,
                              sh->eps[i].episode, sh->fault_spec);
        } else {
            st = run_episode(w, env, &b, &sh->eps[i], NULL);
        }
        if (!st) atomic_fetch_add(&sh->done, 1);
    }
    if (st) {
        pthread_mutex_lock(&sh->mu);
        if (!sh->err) {
            sh->err = st;
            snprintf(sh->errmsg, sizeof sh->errmsg, "%s", bv_error_msg());
        }
        pthread_mutex_unlock(&sh->mu);
        atomic_store(&sh->errored, 1);
        atomic_store(&sh->failed, 1);
    }
    free(b.img), free(b.wrist), free(b.act);
    bv_synth_env_free(env);
    atomic_fetch_add(&sh->exited, 1); /* last: a rank that says its threads stopped has said why */
    return NULL;
}

static void summarize(bv_cl_summary *s, const bv_cl_episode *eps, int n, int task) {
    long steps = 0;
    s->task = task;
    s->successes = s->episodes = 0;
    for (int i = 0; i < n; i++) {
        if (task >= 0 && eps[i].task != task) continue;
        s->episodes++;
        s->successes += eps[i].success;
        steps += eps[i].steps;
    }
    s->rate = s->episodes ? (double)s->successes / s->episodes : 0.0;
    s->mean_steps = s->episodes ? (double)steps / s->episodes : 0.0;
    bv_wilson(s->successes, s->episodes, 1.96, &s->lo, &s->hi);
    if (task >= 0) bv_synth_task_instruction(bv_synth_task_get(task), s->instruction, sizeof s->instruction);
    else snprintf(s->instruction, sizeof s->instruction, "all tasks");
}

static bv_status check_opts(const bv_cl_opts *o) {
    if (o->episodes < 1) return bv_error_set(BV_ERR_ARG, "episodes %d (expected >= 1)", o->episodes);
    if (o->threads < 1 || o->threads > 1024) return bv_error_set(BV_ERR_ARG, "threads %d (expected 1..1024)", o->threads);
    if (o->image_size < 16 || o->image_size > 1024)
        return bv_error_set(BV_ERR_ARG, "image_size %d (expected 16..1024)", o->image_size);
    if (o->max_steps < 1) return bv_error_set(BV_ERR_ARG, "max_steps %d (expected >= 1)", o->max_steps);
    if (o->wait_steps < 0) return bv_error_set(BV_ERR_ARG, "wait_steps %d (expected >= 0)", o->wait_steps);
    if (o->tasks && o->n_tasks < 1) return bv_error_set(BV_ERR_ARG, "an empty task list");
    for (int i = 0; o->tasks && i < o->n_tasks; i++)
        if (o->tasks[i] < 0 || o->tasks[i] >= bv_synth_num_tasks())
            return bv_error_set(BV_ERR_ARG, "task %d (expected 0..%d)", o->tasks[i], bv_synth_num_tasks() - 1);
    if (o->agent == BV_CL_AGENT_POLICY && !o->policy_path && !o->policy_opts.random_config)
        return bv_error_set(BV_ERR_ARG, "the policy agent needs a bundle or checkpoint path");
    if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
        return bv_error_set(BV_ERR_ARG, "rank %d of %d (expected 0 <= rank < world)", o->rank, o->world);
    if (o->world > 1 && o->world != bv_dist_world_size())
        return bv_error_set(BV_ERR_ARG, "rank %d of %d, but the job has %d (start the ranks with mpirun)", o->rank,
                            o->world, bv_dist_world_size());
    return BV_OK;
}

static bv_status load_policy(bv_policy **p, const bv_cl_opts *o) {
    const char *path = o->policy_path ? o->policy_path : o->policy_opts.random_config;
    BV_TRY(bv_policy_load(p, path, &o->policy_opts));
    int A = bv_policy_action_dim(*p), D = bv_policy_state_dim(*p);
    if (A != BV_SYNTH_ACTION_DIM || D != BV_SYNTH_STATE_DIM) {
        bv_policy_free(*p);
        *p = NULL;
        return bv_error_set(BV_ERR_ARG,
                            "%s: the policy's action_dim %d and state_dim %d do not match the synth env's action_dim %d "
                            "and state_dim %d (a policy trained on another robot or dataset)",
                            path, A, D, BV_SYNTH_ACTION_DIM, BV_SYNTH_STATE_DIM);
    }
    return BV_OK;
}

/* o_in with its defaults resolved: the task list (into all_tasks when NULL) and inner_threads. */
static void resolve_opts(const bv_cl_opts *o_in, bv_cl_opts *o, int *all_tasks, int cap) {
    *o = *o_in;
    if (!o->tasks) {
        o->n_tasks = BV_MIN(bv_synth_num_tasks(), cap);
        for (int t = 0; t < o->n_tasks; t++) all_tasks[t] = t;
        o->tasks = all_tasks;
    }
    if (o->inner_threads <= 0) o->inner_threads = BV_MAX(1, bv_num_threads() / o->threads);
}

/* One worker per thread, each with its own policy for the policy agent (loaded here). */
static bv_status workers_init(const bv_cl_opts *o, cl_worker **ws_out) {
    cl_worker *ws = bv_xcalloc((size_t)o->threads, sizeof *ws);
    bv_status st = BV_OK;
    for (int k = 0; k < o->threads && !st; k++)
        if (o->agent == BV_CL_AGENT_POLICY) st = load_policy(&ws[k].pol, o);
    *ws_out = ws;
    return st;
}

static void workers_free(const bv_cl_opts *o, cl_worker *ws) {
    for (int k = 0; ws && k < o->threads; k++) bv_policy_free(ws[k].pol);
    free(ws);
}

/* The counters a rank tells the others in each exchange of a pass (bv_dist_tally). */
enum { TALLY_DONE, TALLY_STOPPED, TALLY_FAILED, TALLY_N };

/* The lowest rank whose counters say it failed (-1: none), and every rank's episodes done. */
static int tally_read(const int64_t *all, int world, int64_t *done, bool *stopped) {
    int bad = -1;
    *done = 0;
    *stopped = true;
    for (int k = 0; k < world; k++) {
        const int64_t *c = all + (size_t)k * TALLY_N;
        *done += c[TALLY_DONE];
        *stopped = *stopped && c[TALLY_STOPPED];
        if (c[TALLY_FAILED] && bad < 0) bad = k;
    }
    return bad;
}

static void nap_ms(long ms) {
    struct timespec ts = {0, ms * 1000 * 1000};
    nanosleep(&ts, NULL);
}

/* One exchange on t of a rank that has nothing running (failed or not): the lowest rank that
 * failed, -1 none. */
static int tally_agree(bv_dist_tally *t, int world, bool failed) {
    int64_t mine[TALLY_N] = {0, 1, failed}, done;
    int64_t *all = bv_xcalloc((size_t)world * TALLY_N, sizeof *all);
    bool stopped;
    while (!bv_dist_tally_poll(t, mine, all)) nap_ms(2);
    int bad = tally_read(all, world, &done, &stopped);
    free(all);
    return bad;
}

/* Run sh's episodes or clips on the workers' threads, counting them on pr after the first `base`;
 * the wall time into *seconds. With a tally (an evaluation shared out over MPI ranks), the ranks'
 * counts are exchanged while the threads run: pr counts every rank's episodes, a failure on any
 * rank stops the threads of all (each finishes the episode it is in), and every rank returns after
 * the same exchange, the first in which every rank's threads have stopped; *failed_rank: the
 * lowest rank that failed (-1: none). This rank's own error is the return value. */
static bv_status run_pass(const bv_cl_opts *o, cl_worker *ws, cl_shared *sh, bv_progress *pr, int base,
                          double *seconds, bv_dist_tally *tally, int *failed_rank) {
    const int world = tally ? o->world : 1;
    pthread_mutex_init(&sh->mu, NULL);
    for (int k = 0; k < o->threads; k++) ws[k].sh = sh;
    pthread_t *th = bv_xcalloc((size_t)o->threads, sizeof *th);
    int64_t *all = bv_xcalloc((size_t)world * TALLY_N, sizeof *all);
    double t0 = now_s();
    int started = 0, bad = -1;
    bv_status st = BV_OK;
    for (int k = 0; k < o->threads; k++) {
        if (pthread_create(&th[k], NULL, worker_main, &ws[k])) {
            atomic_store(&sh->failed, 1);
            st = bv_error_set(BV_ERR_INTERNAL, "cannot start evaluation thread %d", k);
            break;
        }
        started++;
    }
    for (;;) {
        int64_t mine[TALLY_N] = {atomic_load(&sh->done), atomic_load(&sh->exited) == started,
                                 st || atomic_load(&sh->errored)};
        bool got = true;
        if (tally) got = bv_dist_tally_poll(tally, mine, all);
        else memcpy(all, mine, sizeof mine);
        if (got) {
            int64_t done;
            bool stopped;
            bad = tally_read(all, world, &done, &stopped);
            bv_progress_update(pr, base + done);
            if (bad >= 0) atomic_store(&sh->failed, 1); /* here or on another rank: stop */
            if (stopped) break;
        }
        nap_ms(20);
    }
    for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
    if (seconds) *seconds = now_s() - t0;
    free(th);
    free(all);
    pthread_mutex_destroy(&sh->mu);
    if (!st && sh->err) st = bv_error_set(sh->err, "%s", sh->errmsg);
    if (failed_rank) *failed_rank = bad;
    return st;
}

/* BV_EVAL_FAULT (closed_loop.h, the test hook): whether it names this rank, and the index in its
 * share of the episodes (-1: at loading). */
static bool fault_spec(const bv_cl_opts *o, int *episode) {
    const char *f = getenv("BV_EVAL_FAULT");
    int rank;
    char what[24];
    if (!f || sscanf(f, "%d:%23s", &rank, what) != 2 || rank != o->rank) return false;
    *episode = -1;
    if (!strcmp(what, "load")) return true;
    char *end;
    long e = strtol(what, &end, 10);
    if (*end || e < 0 || e > INT32_MAX) return false;
    *episode = (int)e;
    return true;
}

bv_status bv_cl_run(const bv_cl_opts *o_in, bv_cl_result *r) {
    memset(r, 0, sizeof *r);
    r->failed_rank = 0; /* a bad option: every rank meets it alike */
    BV_TRY(check_opts(o_in));
    r->failed_rank = -1;
    bv_cl_opts o;
    int all_tasks[64];
    resolve_opts(o_in, &o, all_tasks, (int)BV_ARRAY_LEN(all_tasks));
    const int n_tasks = o.n_tasks, total = n_tasks * o.episodes;

    /* every episode, task-major; this rank runs those i with i % world == rank */
    bv_cl_episode *eps = bv_xcalloc((size_t)total, sizeof *eps);
    for (int t = 0, i = 0; t < n_tasks; t++)
        for (int e = 0; e < o.episodes; e++, i++)
            eps[i] = (bv_cl_episode){.task = o.tasks[t], .episode = e, .seed = bv_cl_episode_seed(o.seed, o.tasks[t], e)};
    const int mine = total / o.world + (o.rank < total % o.world);
    cl_shared sh = {.o = &o, .total = mine, .fault = -1};
    sh.eps = bv_xcalloc((size_t)BV_MAX(mine, 1), sizeof *sh.eps);
    for (int j = 0; j < mine; j++) sh.eps[j] = eps[o.rank + (size_t)j * o.world];
    int fault;
    const bool faulty = fault_spec(&o, &fault);
    if (faulty && fault >= 0) {
        sh.fault = fault;
        sh.fault_spec = getenv("BV_EVAL_FAULT");
    }

    cl_worker *ws = NULL;
    bv_status st = workers_init(&o, &ws);
    if (!st && faulty && fault < 0)
        st = bv_error_set(BV_ERR_IO, "injected fault after loading (BV_EVAL_FAULT=%s)", getenv("BV_EVAL_FAULT"));
    if (o.agent == BV_CL_AGENT_POLICY && !st)
        snprintf(r->source, sizeof r->source, "%s (%s)", o.policy_path ? o.policy_path : "random model",
                 bv_policy_source(ws[0].pol));
    else snprintf(r->source, sizeof r->source, "%s", bv_cl_agent_name(o.agent));
    bv_dist_tally *tally = o.world > 1 ? bv_dist_tally_open(TALLY_N) : NULL;
    /* every rank has its agent (or the first that has not says why) before any episode runs */
    int bad = st ? o.rank : -1;
    if (tally) bad = tally_agree(tally, o.world, st != BV_OK);
    if (bad < 0) {
        bv_progress pr;
        bv_progress_init(&pr, "eval", total, "episodes");
        if (!o.progress || o.rank != 0) pr.quiet = 1;
        st = run_pass(&o, ws, &sh, &pr, 0, &r->seconds, tally, &bad);
        bv_progress_finish(&pr);
    }
    workers_free(&o, ws);
    bv_dist_tally_free(tally);
    if (bad < 0) {
        /* the outcomes of every rank's episodes: each rank holds its own, zeros elsewhere */
        int *out = bv_xcalloc((size_t)total * 2, sizeof *out);
        for (int j = 0; j < mine; j++) {
            size_t i = o.rank + (size_t)j * o.world;
            out[2 * i] = sh.eps[j].success;
            out[2 * i + 1] = sh.eps[j].steps;
        }
        if (o.world > 1) bv_dist_sum_ints(out, 2 * total);
        for (int i = 0; i < total; i++) {
            eps[i].success = out[2 * i] != 0;
            eps[i].steps = out[2 * i + 1];
        }
        free(out);
    }
    free(sh.eps);
    if (bad >= 0) {
        free(eps);
        r->failed_rank = bad;
        return st ? st : bv_error_set(BV_ERR_INTERNAL, "rank %d of %d failed", bad, o.world);
    }
    r->agent = o.agent;
    r->n_episodes = total;
    r->eps = eps;
    r->n_tasks = n_tasks;
    r->tasks = bv_xcalloc((size_t)n_tasks, sizeof *r->tasks);
    for (int t = 0; t < n_tasks; t++) summarize(&r->tasks[t], r->eps, total, o.tasks[t]);
    summarize(&r->all, r->eps, total, -1);
    return BV_OK;
}

void bv_cl_clip_free(bv_cl_clip *c) {
    if (!c) return;
    free(c->image);
    free(c->wrist);
    c->image = c->wrist = NULL;
}

bv_status bv_cl_record(const bv_cl_opts *o_in, bv_cl_clip *clips, int n_clips, bv_cl_clip_fn fn, void *ctx) {
    BV_TRY(check_opts(o_in));
    if (n_clips < 0 || (n_clips && !clips)) return bv_error_set(BV_ERR_ARG, "%d clips to record and no array", n_clips);
    for (int i = 0; i < n_clips; i++) {
        const bv_cl_clip *c = &clips[i];
        if (c->ep.task < 0 || c->ep.task >= bv_synth_num_tasks())
            return bv_error_set(BV_ERR_ARG, "clip %d: task %d (expected 0..%d)", i, c->ep.task, bv_synth_num_tasks() - 1);
        if (c->n_frames < 1 || c->n_frames > BV_CL_CLIP_MAX_FRAMES)
            return bv_error_set(BV_ERR_ARG, "clip %d: %d frames (expected 1..%d)", i, c->n_frames, BV_CL_CLIP_MAX_FRAMES);
        for (int k = 0; k < c->n_frames; k++)
            if (c->steps[k] < 0 || c->steps[k] > c->ep.steps || (k && c->steps[k] < c->steps[k - 1]))
                return bv_error_set(BV_ERR_ARG, "clip %d: frame %d at step %d (expected steps in 0..%d, not decreasing)", i,
                                    k, c->steps[k], c->ep.steps);
    }
    bv_cl_opts o;
    int all_tasks[64];
    resolve_opts(o_in, &o, all_tasks, (int)BV_ARRAY_LEN(all_tasks));
    cl_worker *ws = NULL;
    bv_status st = workers_init(&o, &ws);
    const size_t frame = (size_t)o.image_size * o.image_size * 3;
    /* in batches of one clip per thread: with an fn that frees each clip, at most that many clips'
     * frames are held at a time */
    bv_progress pr;
    bv_progress_init(&pr, "media", n_clips, "episodes re-run");
    if (!o.progress || st) pr.quiet = 1;
    for (int b0 = 0; b0 < n_clips && !st; b0 += o.threads) {
        const int nb = BV_MIN(o.threads, n_clips - b0);
        for (int i = b0; i < b0 + nb; i++) {
            clips[i].size = o.image_size;
            clips[i].image = bv_xcalloc((size_t)clips[i].n_frames, frame);
            clips[i].wrist = bv_xcalloc((size_t)clips[i].n_frames, frame);
        }
        cl_shared sh = {.o = &o, .total = nb, .clips = clips + b0, .fault = -1};
        st = run_pass(&o, ws, &sh, &pr, b0, NULL, NULL, NULL);
        for (int i = b0; i < b0 + nb && !st && fn; i++)
            if ((st = fn(ctx, &clips[i])) != BV_OK) st = bv_error_prefix(st, "task %d episode %d", clips[i].ep.task,
                                                                          clips[i].ep.episode);
    }
    bv_progress_finish(&pr);
    workers_free(&o, ws);
    return st;
}

void bv_cl_result_free(bv_cl_result *r) {
    if (!r) return;
    free(r->tasks);
    free(r->eps);
    memset(r, 0, sizeof *r);
}

static json_t *ci_json(const bv_cl_summary *s) { return json_pack("[f, f]", s->lo, s->hi); }

/* The keys of one agent's result, in order, into obj; env and protocol (taken; NULL: left out)
 * before "seconds". */
static void result_json(json_t *obj, const bv_cl_result *r, json_t *protocol, json_t *env) {
    json_object_set_new(obj, "success_rate", json_real(r->all.rate));
    json_object_set_new(obj, "ci95", ci_json(&r->all));
    json_object_set_new(obj, "successes", json_integer(r->all.successes));
    json_object_set_new(obj, "episodes", json_integer(r->all.episodes));
    json_object_set_new(obj, "mean_steps", json_real(r->all.mean_steps));
    json_object_set_new(obj, "agent", json_string(bv_cl_agent_name(r->agent)));
    json_object_set_new(obj, "source", json_string(r->source));
    if (env) json_object_set_new(obj, "env", env);
    if (protocol) json_object_set_new(obj, "protocol", protocol);
    json_object_set_new(obj, "seconds", json_real(r->seconds));
    json_t *tasks = json_array();
    for (int t = 0; t < r->n_tasks; t++) {
        const bv_cl_summary *s = &r->tasks[t];
        json_array_append_new(tasks, json_pack("{s:i, s:s, s:i, s:i, s:f, s:o, s:f}", "task", s->task, "instruction",
                                               s->instruction, "successes", s->successes, "episodes", s->episodes,
                                               "success_rate", s->rate, "ci95", ci_json(s), "mean_steps",
                                               s->mean_steps));
    }
    json_object_set_new(obj, "tasks", tasks);
    json_t *eps = json_array();
    for (int i = 0; i < r->n_episodes; i++) {
        const bv_cl_episode *e = &r->eps[i];
        char seed[24];
        snprintf(seed, sizeof seed, "%llu", (unsigned long long)e->seed);
        /* the seed as a string: a uint64 does not fit JSON's safe integers */
        json_array_append_new(eps, json_pack("{s:i, s:i, s:s, s:b, s:i}", "task", e->task, "episode", e->episode,
                                             "seed", seed, "success", e->success, "steps", e->steps));
    }
    json_object_set_new(obj, "outcomes", eps);
}

bv_status bv_cl_write_json(const bv_cl_result *r, const bv_cl_result *const *baselines, int n_baselines,
                           const bv_cl_opts *o, const char *path) {
    json_t *root = json_object();
    json_t *proto = json_pack("{s:i, s:I, s:i, s:i, s:i, s:f, s:b}", "episodes_per_task", o->episodes, "seed",
                              (json_int_t)o->seed, "image_size", o->image_size, "max_steps", o->max_steps,
                              "wait_steps", o->wait_steps, "expert_noise", (double)o->expert_noise, "unique_colour",
                              o->unique_colour);
    result_json(root, r, proto, json_string("synth"));
    if (n_baselines > 0) {
        json_t *b = json_object();
        for (int i = 0; i < n_baselines; i++) {
            json_t *one = json_object();
            result_json(one, baselines[i], NULL, NULL);
            json_object_set_new(b, bv_cl_agent_name(baselines[i]->agent), one);
        }
        json_object_set_new(root, "baselines", b);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return bv_error_set(BV_ERR_INTERNAL, "%s: cannot format the results as JSON", path);
    bv_status st = bv_atomic_write_text(path, text);
    free(text);
    return st ? bv_error_prefix(st, "writing %s", path) : BV_OK;
}
