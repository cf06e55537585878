/* cmd_eval.c - `bitvla eval`: evaluation of a policy. `closed-loop` runs it (or a baseline agent)
 * on the built-in tabletop task with LIBERO's protocol (eval/closed_loop.h), with the baselines in
 * the same table (--baselines) and pictures (--media, eval/media.h); `offline` scores its action
 * chunks on recorded data (eval/offline.h). docs/evaluation.md. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "data/synth_env.h"
#include "eval/closed_loop.h"
#include "eval/media.h"
#include "eval/offline.h"
#include "recipes/dist.h"
#include "src/atomic_file.h"
#include "src/common.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla eval closed-loop BUNDLE_DIR|CHECKPOINT --env synth [--episodes N] [--tasks 0,1,...]\n"
            "                               [--seed S] [--threads T] [--json OUT] [--image-size 64..256]\n"
            "                               [--max-steps N] [--no-center-crop] [--unique-colour]\n"
            "                               [--baselines] [--media DIR]\n"
            "       bitvla eval closed-loop --agent expert|random --env synth ...\n"
            "       bitvla eval closed-loop --config C --random-init SEED --tokenizer T.json --statistics S.json --env synth ...\n"
            "\n"
            "closed-loop: success rate of a policy on the built-in tabletop task (data/synth_env.h) with LIBERO's\n"
            "protocol as BitVLA runs it: per task N episodes from fixed seeded initial states (the same for every\n"
            "agent), 10 no-op steps, then chunks of 8 actions executed open-loop until success or --max-steps.\n"
            "Prints per task and overall: successes, rate with its Wilson 95%% interval, mean episode length.\n"
            "\n"
            "  --agent        policy (default: the BUNDLE_DIR or CHECKPOINT), expert (the scripted expert, privileged,\n"
            "                 re-planning every step: the upper bound) or random (uniform actions: the floor)\n"
            "  --env          the environment: synth (the only one)\n"
            "  --episodes     episodes per task (default 50, as LIBERO's protocol)\n"
            "  --tasks        task ids, comma-separated (default: all %d; docs/synth.md, \"Tasks\")\n"
            "  --seed         seed of the initial states (default 0)\n"
            "  --threads      episodes run in T threads, each with its own env and policy (default 1); the OpenMP\n"
            "                 threads of each policy are the process's count / T (OMP_NUM_THREADS or all cores)\n"
            "  --json OUT     the results as JSON: success_rate, ci95, episodes, tasks [...], outcomes [...]\n"
            "                 (and baselines {random, expert} with --baselines)\n"
            "  --baselines    also run the random agent and the scripted expert on the same initial states: their\n"
            "                 rates and intervals as more columns of the table, in the JSON and the chart\n"
            "  --media DIR    pictures into DIR: success.png (success per task with Wilson error bars, next to the\n"
            "                 baselines), task-NN-strip.png (6 frames of the task's first success and first\n"
            "                 failure, both cameras) and task-NN-rollout.png (an animated PNG of episode 0); the\n"
            "                 episodes shown are re-run with rendering after the evaluation\n"
            "  --image-size   camera images, pixels (default 256, as LIBERO; 64..256)\n"
            "  --max-steps    agent steps before an episode fails (default 300)\n"
            "  --expert-noise the expert's action noise std (default 0)\n"
            "  --unique-colour  the env's easier scenes (no other object of the target's colour), as a policy\n"
            "                 trained on `bitvla synth --unique-colour` data saw\n"
            "  --no-center-crop  feed the policy the whole images (default: the evaluation centre crop)\n"
            "  --config, --random-init  a policy with the random weights of SEED (as `bitvla infer`); needs --tokenizer\n"
            "                 and --statistics (which also replace a checkpoint's)\n"
            "\n"
            "MPI: mpirun -np N bitvla eval closed-loop ... shares the episodes out over N ranks, each running its\n"
            "share on its --threads T threads (OpenMP threads per rank: OMP_NUM_THREADS, else the cores it is bound\n"
            "to, else the machine's cores shared among its ranks). The outcomes are the same as one process's;\n"
            "rank 0 prints the table, shows the progress bar (every rank's episodes) and writes --json and --media\n"
            "(re-running the episodes shown alone). A rank that fails stops the others after the episodes they\n"
            "are in and the job exits 1, the message naming the rank (docs/evaluation.md, \"MPI\").\n"
            "\n"
            "usage: bitvla eval offline BUNDLE_DIR|CHECKPOINT --shards DIR [--json OUT] [--batches N] [--batch-size B]\n"
            "                           [--threads T] [--shard-statistics] [--no-center-crop]\n"
            "       bitvla eval offline --config C --random-init SEED --tokenizer T.json --statistics S.json --shards DIR ...\n"
            "\n"
            "offline: the policy's action chunks on recorded data (a shard directory of `bitvla convert`, e.g. the\n"
            "held-out episodes of a recipe's data.val_shards), every sample in order with the evaluation centre crop,\n"
            "states and target actions normalised with the policy's statistics (its training data's, which it acts\n"
            "in; as the trainer's validation does). Prints per task (instruction) and overall: samples, L1 on\n"
            "normalised actions (overall: the trainer's val_l1), gripper open/closed accuracy (the last dimension,\n"
            "> 0.5 = open, as deployed) and the mean |error| of each dimension, normalised and in robot units.\n"
            "\n"
            "  --shards DIR   the shard directory (manifest.json, shards, dataset_statistics.json)\n"
            "  --json OUT     the results as JSON: l1, gripper_accuracy, samples, dim_l1, dim_l1_unnormalized,\n"
            "                 statistics (policy or shards), tasks [...]\n"
            "  --batches N    only the first N batches (default: all; the first validation.batches batches of\n"
            "                 --batch-size micro_batch are the trainer's validation)\n"
            "  --batch-size B samples per forward (default 8)\n"
            "  --threads T    OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --shard-statistics  normalise with DIR's own dataset_statistics.json instead of the policy's (to\n"
            "                 compare; not the normalisation the policy learnt, nor the trainer's val_l1)\n"
            "  --no-center-crop, --config, --random-init, --tokenizer, --statistics  as for closed-loop\n",
            bv_synth_num_tasks());
}

static bool parse_tasks(const char *v, int *tasks, int *n) {
    *n = 0;
    const char *p = v;
    while (*p) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char word[32];
        if (len == 0 || len >= sizeof word || *n >= 64 || (c && !c[1])) {
            fprintf(stderr, "bitvla eval: --tasks expects task ids 0..%d separated by commas, got '%s'\n",
                    bv_synth_num_tasks() - 1, v);
            return false;
        }
        memcpy(word, p, len);
        word[len] = 0;
        if (!bv_cli_int("eval", "--tasks", word, 0, bv_synth_num_tasks() - 1, &tasks[(*n)++])) return false;
        p += len + (c ? 1 : 0);
    }
    if (*n == 0) {
        fprintf(stderr, "bitvla eval: --tasks expects task ids 0..%d separated by commas, got '%s'\n",
                bv_synth_num_tasks() - 1, v);
        return false;
    }
    return true;
}

static void print_cells(const bv_cl_summary *s) {
    printf("%4d/%-4d %6.1f%%  [%5.1f%%, %5.1f%%]", s->successes, s->episodes, 100 * s->rate, 100 * s->lo, 100 * s->hi);
}

/* One row: the task, the evaluated agent's cells and mean length, then each baseline's cells. */
static void print_row(const bv_cl_summary *s, const bv_cl_summary *const *base, int nb) {
    char name[16];
    if (s->task >= 0) snprintf(name, sizeof name, "%d", s->task);
    else snprintf(name, sizeof name, "all");
    printf("%-5s %-52s ", name, s->task >= 0 ? s->instruction : "");
    print_cells(s);
    printf("  %6.1f", s->mean_steps);
    for (int b = 0; b < nb; b++) {
        printf("  | ");
        print_cells(base[b]);
    }
    printf("\n");
}

/* The table of r, each baseline's rate and interval in columns of its own. */
static void print_table(const bv_cl_result *r, const bv_cl_result *const *base, int nb) {
    if (nb) {
        /* the columns of print_row: 59 of task and instruction, 37 of cells, 8 of steps */
        printf("%-59s%-45s", "", bv_cl_agent_name(r->agent));
        for (int b = 0; b < nb; b++) printf("  | %-*s", b + 1 < nb ? 37 : 0, bv_cl_agent_name(base[b]->agent));
        printf("\n");
    }
    printf("%-5s %-52s %9s %7s  %-18s  %6s", "task", "instruction", "success", "rate", "95% CI (Wilson)", "steps");
    for (int b = 0; b < nb; b++) printf("  | %9s %7s  %-*s", "success", "rate", b + 1 < nb ? 18 : 0, "95% CI (Wilson)");
    printf("\n");
    const bv_cl_summary *cells[2];
    for (int t = 0; t <= r->n_tasks; t++) {
        for (int b = 0; b < nb; b++) cells[b] = t < r->n_tasks ? &base[b]->tasks[t] : &base[b]->all;
        print_row(t < r->n_tasks ? &r->tasks[t] : &r->all, cells, nb);
    }
}

/* An error of the evaluation (bv_error_msg, after `what`): under mpirun said once, by the rank
 * failed_rank names, with its rank. */
static void eval_error(const bv_cl_opts *o, int failed_rank, const char *what) {
    if (o->world == 1) fprintf(stderr, "bitvla eval: %s%s\n", what, bv_error_msg());
    else if (o->rank == failed_rank)
        fprintf(stderr, "bitvla eval: rank %d of %d: %s%s\n", o->rank, o->world, what, bv_error_msg());
}

/* The evaluation of the parsed options o on this rank (every rank runs its share of the episodes;
 * rank 0 alone prints the table and writes the files). The exit status. */
static int closed_loop_run(const bv_cl_opts *o, bool baselines, const char *json, const char *media) {
    bv_cl_result r;
    if (bv_cl_run(o, &r)) {
        eval_error(o, r.failed_rank, "");
        return 1;
    }
    /* the baselines on the same initial states: random then expert, the evaluated agent's own result
     * standing in for its own kind */
    bv_cl_result base_runs[2];
    const bv_cl_result *base_all[2], *base_shown[2];
    int n_all = 0, n_shown = 0, n_runs = 0, rc = 0;
    const bv_cl_agent kinds[2] = {BV_CL_AGENT_RANDOM, BV_CL_AGENT_EXPERT};
    for (int k = 0; baselines && k < 2; k++) {
        if (kinds[k] == r.agent) {
            base_all[n_all++] = &r;
            continue;
        }
        bv_cl_opts bo = *o;
        bo.agent = kinds[k];
        bo.policy_path = NULL;
        if (bv_cl_run(&bo, &base_runs[n_runs])) {
            char what[64];
            snprintf(what, sizeof what, "the %s baseline: ", bv_cl_agent_name(kinds[k]));
            eval_error(o, base_runs[n_runs].failed_rank, what);
            rc = 1;
            break;
        }
        base_all[n_all++] = base_shown[n_shown++] = &base_runs[n_runs++];
    }
    if (!rc && o->rank == 0) {
        char ranks[64] = "";
        if (o->world > 1) snprintf(ranks, sizeof ranks, ", %d ranks x %d thread%s", o->world, o->threads,
                                   o->threads == 1 ? "" : "s");
        printf("bitvla eval closed-loop: %s on synth, %d episodes per task, seed %llu, %dpx, max %d steps%s, %.1f s "
               "(%.2f episodes/s)\n",
               r.source, o->episodes, (unsigned long long)o->seed, o->image_size, o->max_steps, ranks, r.seconds,
               r.seconds > 0 ? r.n_episodes / r.seconds : 0.0);
        print_table(&r, base_shown, n_shown);
        fflush(stdout);
        /* the media directory first: the JSON may go into it (scripts/demo puts it there) */
        if (media && bv_atomic_dir_make(media)) {
            eval_error(o, 0, "");
            rc = 1;
        } else if (json && bv_cl_write_json(&r, base_all, n_all, o, json)) {
            eval_error(o, 0, "");
            rc = 1;
        }
    }
    if (!rc && media && o->rank == 0) {
        /* the episodes shown are re-run on rank 0 alone */
        bv_cl_media_opts mo;
        bv_cl_media_opts_default(&mo);
        mo.dir = media;
        const bv_cl_result *charted[3] = {&r, n_shown > 0 ? base_shown[0] : NULL, n_shown > 1 ? base_shown[1] : NULL};
        if (bv_cl_media_write(&mo, o, charted, 1 + n_shown)) {
            eval_error(o, 0, "");
            rc = 1;
        } else {
            printf("media: %s/success.png, %s/task-NN-strip.png (film strips), %s/task-NN-rollout.png (animated)\n",
                   media, media, media);
        }
    }
    for (int k = 0; k < n_runs; k++) bv_cl_result_free(&base_runs[k]);
    bv_cl_result_free(&r);
    return rc;
}

/* The flags both modes take to say which policy and how it sees: --no-center-crop, --config,
 * --random-init, --tokenizer, --statistics. 1: argv[*i] was one (its value consumed), 0: it was
 * not, -1: a bad or missing value (said on stderr). */
static int policy_flag(int argc, char **argv, int *i, bv_policy_opts *po, bool *seeded) {
    const char *a = argv[*i];
    if (!strcmp(a, "--no-center-crop")) {
        po->center_crop = false;
        return 1;
    }
    if (strcmp(a, "--config") && strcmp(a, "--random-init") && strcmp(a, "--tokenizer") && strcmp(a, "--statistics"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "bitvla eval: option %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (!strcmp(a, "--config")) {
        po->random_config = v;
    } else if (!strcmp(a, "--tokenizer")) {
        po->tokenizer = v;
    } else if (!strcmp(a, "--statistics")) {
        po->statistics = v;
    } else {
        int64_t sd;
        if (!bv_cli_int64("eval", a, v, 0, INT64_MAX, &sd)) return -1;
        po->seed = (uint64_t)sd;
        *seeded = true;
    }
    return 1;
}

/* A random-weight policy's flags go together and replace a path. */
static bool policy_flags_check(const char *path, const bv_policy_opts *po, bool seeded) {
    if (!!po->random_config != seeded || (po->random_config && path)) {
        fprintf(stderr, "bitvla eval: --config and --random-init go together, without a BUNDLE_DIR or CHECKPOINT\n");
        return false;
    }
    if (po->random_config && (!po->tokenizer || !po->statistics)) {
        fprintf(stderr, "bitvla eval: --random-init needs --tokenizer T.json and --statistics S.json\n");
        return false;
    }
    return true;
}

static int closed_loop(int argc, char **argv) {
    bv_cl_opts o;
    bv_cl_opts_default(&o);
    const char *json = NULL, *env = NULL, *media = NULL;
    int tasks[64], n_tasks = 0;
    bool agent_set = false, seeded = false, baselines = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int pf = policy_flag(argc, argv, &i, &o.policy_opts, &seeded);
        if (pf < 0) return 2;
        if (pf > 0) continue;
        if (!strcmp(a, "--baselines")) {
            baselines = true;
            continue;
        }
        if (!strcmp(a, "--unique-colour")) {
            o.unique_colour = true;
            continue;
        }
        if (!strcmp(a, "--agent") || !strcmp(a, "--env") || !strcmp(a, "--episodes") || !strcmp(a, "--tasks") ||
            !strcmp(a, "--seed") || !strcmp(a, "--threads") || !strcmp(a, "--json") || !strcmp(a, "--image-size") ||
            !strcmp(a, "--max-steps") || !strcmp(a, "--expert-noise") || !strcmp(a, "--media")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bitvla eval: option %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--agent")) {
                if (bv_cl_agent_parse(v, &o.agent)) {
                    fprintf(stderr, "bitvla eval: --agent: %s\n", bv_error_msg());
                    return 2;
                }
                agent_set = true;
            } else if (!strcmp(a, "--env")) {
                env = v;
            } else if (!strcmp(a, "--episodes")) {
                if (!bv_cli_int("eval", a, v, 1, 1000000, &o.episodes)) return 2;
            } else if (!strcmp(a, "--tasks")) {
                if (!parse_tasks(v, tasks, &n_tasks)) return 2;
                o.tasks = tasks, o.n_tasks = n_tasks;
            } else if (!strcmp(a, "--seed")) {
                int64_t s;
                if (!bv_cli_int64("eval", a, v, 0, INT64_MAX, &s)) return 2;
                o.seed = (uint64_t)s;
            } else if (!strcmp(a, "--threads")) {
                if (!bv_cli_int("eval", a, v, 1, 1024, &o.threads)) return 2;
            } else if (!strcmp(a, "--json")) {
                json = v;
            } else if (!strcmp(a, "--media")) {
                media = v;
            } else if (!strcmp(a, "--image-size")) {
                if (!bv_cli_int("eval", a, v, 64, 256, &o.image_size)) return 2;
            } else if (!strcmp(a, "--max-steps")) {
                if (!bv_cli_int("eval", a, v, 1, 100000, &o.max_steps)) return 2;
            } else {
                double x;
                if (!bv_cli_double("eval", a, v, 0, 1, &x)) return 2;
                o.expert_noise = (float)x;
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "bitvla eval: unknown option '%s' (see bitvla eval --help)\n", a);
            return 2;
        } else if (!o.policy_path) {
            o.policy_path = a;
        } else {
            fprintf(stderr, "bitvla eval: unexpected argument '%s' (one BUNDLE_DIR or CHECKPOINT)\n", a);
            return 2;
        }
    }
    if (!env || strcmp(env, "synth")) {
        fprintf(stderr, "bitvla eval: --env expects synth (the built-in tabletop task), got '%s'\n",
                env ? env : "nothing");
        return 2;
    }
    if (!policy_flags_check(o.policy_path, &o.policy_opts, seeded)) return 2;
    if (o.agent == BV_CL_AGENT_POLICY && !o.policy_path && !o.policy_opts.random_config) {
        fprintf(stderr, "bitvla eval: give a BUNDLE_DIR or CHECKPOINT (or --agent expert|random)\n");
        return 2;
    }
    if (agent_set && o.agent != BV_CL_AGENT_POLICY && (o.policy_path || o.policy_opts.random_config)) {
        fprintf(stderr, "bitvla eval: --agent %s takes no BUNDLE_DIR or CHECKPOINT (got '%s')\n",
                bv_cl_agent_name(o.agent), o.policy_path ? o.policy_path : o.policy_opts.random_config);
        return 2;
    }
    /* under mpirun: the episodes shared out over the ranks (recipes/dist.h) */
    bv_dist_proc proc;
    if (bv_dist_init(&argc, &argv, &proc)) {
        fprintf(stderr, "bitvla eval: %s\n", bv_error_msg());
        return 1;
    }
    if (proc.world > 1 && !getenv("OMP_NUM_THREADS"))
        bv_set_num_threads(BV_MIN(bv_cli_rank_threads(proc.local_size), bv_max_threads(NULL)));
    o.rank = proc.rank;
    o.world = proc.world;
    int rc = closed_loop_run(&o, baselines, json, media);
    bv_dist_finalize();
    return rc;
}

/* ---- offline ---- */

/* The table of one kind of per-dimension error: a row per task, then the overall row; the
 * instruction last, whole. */
static void print_offline_table(const bv_am_summary *s, bool normalised) {
    printf("%8s", "samples");
    if (normalised) printf(" %8s %8s", "L1", "gripper");
    for (int d = 0; d < s->action_dim; d++) {
        char h[16];
        snprintf(h, sizeof h, "d%d", d);
        printf(" %8s", h);
    }
    printf("  instruction\n");
    for (int t = 0; t <= s->n_tasks; t++) {
        const bv_am_group *g = t < s->n_tasks ? &s->tasks[t] : &s->all;
        printf("%8lld", (long long)g->samples);
        if (normalised) {
            printf(" %8.4f", g->l1);
            if (isfinite(g->gripper_acc)) printf(" %7.1f%%", 100 * g->gripper_acc);
            else printf(" %8s", "-");
        }
        const double *v = normalised ? g->dim_l1 : g->dim_l1_raw;
        for (int d = 0; d < s->action_dim; d++) printf(" %8.4f", v[d]);
        printf("  %s\n", g->task ? g->task : "all");
    }
}

static int offline(int argc, char **argv) {
    bv_offline_opts o;
    bv_offline_opts_default(&o);
    const char *json = NULL;
    bool seeded = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int pf = policy_flag(argc, argv, &i, &o.policy_opts, &seeded);
        if (pf < 0) return 2;
        if (pf > 0) continue;
        if (!strcmp(a, "--shard-statistics")) {
            o.shard_statistics = true;
        } else if (!strcmp(a, "--shards") || !strcmp(a, "--json") || !strcmp(a, "--batches") ||
                   !strcmp(a, "--batch-size") || !strcmp(a, "--threads")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bitvla eval: option %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--shards")) {
                o.shards = v;
            } else if (!strcmp(a, "--json")) {
                json = v;
            } else if (!strcmp(a, "--batches")) {
                if (!bv_cli_int64("eval", a, v, 1, INT64_MAX, &o.batches)) return 2;
            } else if (!strcmp(a, "--batch-size")) {
                if (!bv_cli_int("eval", a, v, 1, 4096, &o.batch_size)) return 2;
            } else {
                int n;
                /* at most what OpenBLAS/OpenMP can run (bv_set_num_threads would cap it silently) */
                if (!bv_cli_int("eval", a, v, 1, bv_max_threads(NULL), &n)) return 2;
                bv_set_num_threads(n);
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "bitvla eval: unknown option '%s' (see bitvla eval --help)\n", a);
            return 2;
        } else if (!o.policy_path) {
            o.policy_path = a;
        } else {
            fprintf(stderr, "bitvla eval: unexpected argument '%s' (one BUNDLE_DIR or CHECKPOINT)\n", a);
            return 2;
        }
    }
    if (!policy_flags_check(o.policy_path, &o.policy_opts, seeded)) return 2;
    if (!o.policy_path && !o.policy_opts.random_config) {
        fprintf(stderr, "bitvla eval: offline needs a BUNDLE_DIR or CHECKPOINT (or --config C --random-init SEED)\n");
        return 2;
    }
    if (!o.shards) {
        fprintf(stderr, "bitvla eval: offline needs --shards DIR (a shard directory written by `bitvla convert`)\n");
        return 2;
    }
    bv_offline_result r;
    if (bv_offline_run(&o, &r)) {
        fprintf(stderr, "bitvla eval: %s\n", bv_error_msg());
        return 1;
    }
    const bv_am_summary *s = &r.m;
    printf("bitvla eval offline: %s on %s (dataset %s): %lld of %lld samples in %lld batches of %d, %.1f s\n",
           r.source, o.shards, r.dataset, (long long)s->all.samples, (long long)r.shard_samples,
           (long long)r.batches, o.batch_size, r.seconds);
    if (o.shard_statistics && r.norm_differs)
        fprintf(stderr, "bitvla eval: note: normalised with the statistics of %s (--shard-statistics), which are not "
                "the policy's (its training data's): not the normalisation the policy acts in, nor the trainer's "
                "val_l1 (docs/evaluation.md, \"Normalisation\")\n", o.shards);
    printf("\nmean |error| on normalised actions (L1 and per dimension), gripper (d%d) open/closed accuracy:\n",
           s->gripper_dim);
    print_offline_table(s, true);
    printf("\nmean |error| per dimension in robot units (un-normalised with %s):\n", r.statistics);
    print_offline_table(s, false);
    int rc = 0;
    if (json && bv_offline_write_json(&r, &o, json)) {
        fprintf(stderr, "bitvla eval: %s\n", bv_error_msg());
        rc = 1;
    }
    bv_offline_result_free(&r);
    return rc;
}

int bv_cmd_eval(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "closed-loop")) {
        if (bv_cli_wants_help(argc - 1, argv + 1)) {
            usage(stdout);
            return 0;
        }
        return closed_loop(argc - 1, argv + 1);
    }
    if (!strcmp(argv[1], "offline")) {
        if (bv_cli_wants_help(argc - 1, argv + 1)) {
            usage(stdout);
            return 0;
        }
        return offline(argc - 1, argv + 1);
    }
    fprintf(stderr, "bitvla eval: unknown mode '%s' (expected closed-loop or offline)\n", argv[1]);
    return 2;
}
