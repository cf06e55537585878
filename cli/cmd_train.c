/* bitvla train - train a policy from a recipe (recipes/train.h does the work; docs/training.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "recipes/checkpoint.h"
#include "recipes/dist.h"
#include "recipes/recipe.h"
#include "recipes/train.h"
#include "src/common.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla train RECIPE.json --out RUN_DIR [--set key.path=value]... [options]\n"
            "       bitvla train --resume RUN_DIR [RECIPE.json] [--set key.path=value]... [options]\n"
            "\n"
            "Trains a policy as the recipe says (recipes/*.json; every key in docs/recipes.md) and writes\n"
            "RUN_DIR/metrics.jsonl, TensorBoard events, and checkpoints under RUN_DIR/checkpoints/\n"
            "(latest -> the newest complete one). When the recipe's data is missing and the recipe has a\n"
            "'data.synth' section (recipes/tiny_synth.json), the built-in task's data is made first.\n"
            "\n"
            "options:\n"
            "  --out DIR           the run directory (created; must be new or empty)\n"
            "  --set K=V           override a recipe key, e.g. --set steps=100 --set optimizer.lr=3e-4\n"
            "                      (V is read as JSON when it parses, else as a string)\n"
            "  --resume DIR        continue the run in DIR from its latest checkpoint, exactly: the same\n"
            "                      weights and metrics as a run that was never stopped. The recipe is the\n"
            "                      checkpoint's unless RECIPE.json is given\n"
            "  --stop-at N         stop after step N (with a checkpoint), to be resumed later\n"
            "  --threads N         OpenMP threads per rank (default: OMP_NUM_THREADS, else the cores this rank\n"
            "                      is bound to, else the machine's cores shared among its ranks)\n"
            "\n"
            "Data parallel: mpirun -np N bitvla train RECIPE.json --out RUN_DIR (on several machines:\n"
            "mpirun --hostfile HOSTS ...; RUN_DIR and the data on a shared filesystem). Each rank trains on\n"
            "its slice of every global batch, gradients are reduced while the backward pass runs, rank 0\n"
            "writes everything; recipe keys global_batch and distributed.* (docs/distributed.md). A rank that\n"
            "fails ends the job with a message naming it.\n"
            "Progress goes to stderr (BV_PROGRESS=0 silences it). Exit status: 0 done, 1 failed, 2 bad flags.\n");
}

/* a failure after MPI started: name the rank, and end every rank of the job */
static int fail(const bv_dist_proc *p, bool collective, int rc) {
    if (p->world == 1) {
        fprintf(stderr, "bitvla train: %s\n", bv_error_msg());
        return rc;
    }
    /* an error every rank meets alike (the recipe, the non-finite guard) is told once, by rank 0 */
    if (!collective || p->rank == 0)
        fprintf(stderr, "bitvla train: rank %d of %d: %s\n", p->rank, p->world, bv_error_msg());
    if (collective && p->rank != 0) {
        bv_dist_finalize();
        exit(rc);
    }
    bv_dist_abort(rc);
}

int bv_cmd_train(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *recipe_path = NULL, *out = NULL, *resume = NULL;
    const char **sets = calloc((size_t)argc, sizeof *sets);
    int n_sets = 0, threads = 0;
    int64_t stop_at = 0;
    int rc = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = !strcmp(a, "--out") || !strcmp(a, "--set") || !strcmp(a, "--resume") || !strcmp(a, "--stop-at") ||
                     !strcmp(a, "--threads");
        if (takes && !v) {
            fprintf(stderr, "bitvla train: %s needs a value\n", a);
            goto done;
        }
        if (!strcmp(a, "--out")) {
            out = v;
            i++;
        } else if (!strcmp(a, "--set")) {
            if (!strchr(v, '=')) {
                fprintf(stderr, "bitvla train: --set expects key.path=value, got '%s'\n", v);
                goto done;
            }
            sets[n_sets++] = v;
            i++;
        } else if (!strcmp(a, "--resume")) {
            resume = v;
            i++;
        } else if (!strcmp(a, "--stop-at")) {
            if (!bv_cli_int64("train", a, v, 1, INT64_MAX, &stop_at)) goto done;
            i++;
        } else if (!strcmp(a, "--threads")) {
            /* at most what OpenBLAS/OpenMP can run (bv_set_num_threads would cap it silently) */
            if (!bv_cli_int("train", a, v, 1, bv_max_threads(NULL), &threads)) goto done;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "bitvla train: unknown option '%s' (see 'bitvla train --help')\n", a);
            goto done;
        } else if (!recipe_path) {
            recipe_path = a;
        } else {
            fprintf(stderr, "bitvla train: unexpected argument '%s' (one recipe only)\n", a);
            goto done;
        }
    }
    if (resume && out && strcmp(resume, out) != 0) {
        fprintf(stderr, "bitvla train: --resume %s and --out %s name different run directories\n", resume, out);
        goto done;
    }
    if (!resume && (!recipe_path || !out)) {
        fprintf(stderr, "bitvla train: a RECIPE and --out RUN_DIR are required (see 'bitvla train --help')\n");
        goto done;
    }
    bv_dist_proc proc;
    if (bv_dist_init(&argc, &argv, &proc)) {
        fprintf(stderr, "bitvla train: %s\n", bv_error_msg());
        rc = 1;
        goto done;
    }
    if (!threads && proc.world > 1 && !getenv("OMP_NUM_THREADS"))
        threads = BV_MIN(bv_cli_rank_threads(proc.local_size), bv_max_threads(NULL));
    if (threads) bv_set_num_threads(threads);
    rc = 1;
    const char *run_dir = resume ? resume : out;
    char *ckpt_recipe = NULL;
    if (resume && !recipe_path) {
        char *ck = NULL;
        if (bv_ckpt_latest(run_dir, &ck)) {
            bv_error_prefix(BV_ERR_IO, "--resume");
            rc = fail(&proc, true, 1);
            goto done;
        }
        size_t n = strlen(ck) + 16;
        ckpt_recipe = malloc(n);
        snprintf(ckpt_recipe, n, "%s/recipe.json", ck);
        free(ck);
        recipe_path = ckpt_recipe;
    }
    bv_recipe r;
    if (bv_recipe_load(&r, recipe_path, n_sets, sets)) {
        free(ckpt_recipe);
        rc = fail(&proc, true, 1);
        goto done;
    }
    bv_train_opts o = {.recipe = &r, .run_dir = run_dir, .resume = resume != NULL, .stop_at = stop_at,
                       .rank = proc.rank, .world_size = proc.world, .log = proc.rank == 0 ? stderr : NULL};
    if (proc.world > 1 && proc.rank == 0)
        fprintf(stderr, "bitvla train: %d ranks (%d on this machine), %d thread(s) each\n", proc.world, proc.local_size,
                bv_num_threads());
    bv_train_result res;
    bv_status st = bv_train_run(&o, &res);
    if (st) {
        rc = fail(&proc, st == BV_ERR_NONFINITE, 1);
    } else if (proc.rank == 0) {
        printf("trained %lld steps in %.1f s: loss %.4f", (long long)res.step, res.seconds, res.loss);
        if (res.val_l1 == res.val_l1) printf(", validation L1 %.4f", res.val_l1);
        if (res.skipped) printf(", %lld steps skipped (non-finite)", (long long)res.skipped);
        printf("\ncheckpoint: %s\n", res.checkpoint[0] ? res.checkpoint : "(none)");
        rc = 0;
    }
    else
        rc = 0;
    bv_recipe_free(&r);
    free(ckpt_recipe);
    bv_dist_finalize();
done:
    free(sets);
    return rc;
}
