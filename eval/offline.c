/* offline.c - a policy scored on recorded data (eval/offline.h). */
#include "eval/offline.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/loader.h"
#include "src/atomic_file.h"
#include "src/progress.h"

void bv_offline_opts_default(bv_offline_opts *o) {
    memset(o, 0, sizeof *o);
    bv_policy_opts_default(&o->policy_opts);
    o->batch_size = 8;
    o->loader_threads = 1;
    o->progress = true;
}

static bv_status check_opts(const bv_offline_opts *o) {
    if (!o->policy_path && !o->policy_opts.random_config)
        return bv_error_set(BV_ERR_ARG, "offline evaluation needs a bundle or checkpoint path");
    if (!o->shards) return bv_error_set(BV_ERR_ARG, "offline evaluation needs a shard directory");
    if (o->batch_size < 1) return bv_error_set(BV_ERR_ARG, "batch_size %d (expected >= 1)", o->batch_size);
    if (o->batches < 0) return bv_error_set(BV_ERR_ARG, "batches %lld (expected >= 0; 0: all)", (long long)o->batches);
    if (o->loader_threads < 0 || o->loader_threads > 256)
        return bv_error_set(BV_ERR_ARG, "loader_threads %d (expected 0..256)", o->loader_threads);
    /* before minutes of loading a policy: the directory and its manifest are there */
    struct stat sb;
    if (stat(o->shards, &sb))
        return bv_error_set(BV_ERR_IO, "%s: cannot open the shard directory (%s)", o->shards, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return bv_error_set(BV_ERR_IO, "%s: not a directory (expected a shard directory written by `bitvla convert`)",
                            o->shards);
    char mpath[4200];
    snprintf(mpath, sizeof mpath, "%s/manifest.json", o->shards);
    if (stat(mpath, &sb))
        return bv_error_set(BV_ERR_IO, "%s: no manifest.json (not a shard directory written by `bitvla convert`, or a "
                            "conversion that did not finish)", o->shards);
    return BV_OK;
}

/* the same normalisation: widths, bounds and masks */
static bool same_norm(const bv_action_norm *a, const bv_action_norm *b) {
    if (a->dim != b->dim) return false;
    for (int d = 0; d < a->dim; d++)
        if (a->q01[d] != b->q01[d] || a->q99[d] != b->q99[d] || a->mask[d] != b->mask[d]) return false;
    return true;
}

bv_status bv_offline_run(const bv_offline_opts *o, bv_offline_result *r) {
    memset(r, 0, sizeof *r);
    BV_TRY(check_opts(o));
    const char *path = o->policy_path ? o->policy_path : o->policy_opts.random_config;
    bv_policy *p = NULL;
    bv_loader *l = NULL;
    bv_am *m = NULL;
    float *pred = NULL;
    const char **tasks = NULL;
    bv_status st = bv_policy_load(&p, path, &o->policy_opts);
    if (st) return st;
    snprintf(r->source, sizeof r->source, "%s (%s)", o->policy_path ? o->policy_path : "random model",
             bv_policy_source(p));
    bv_loader_opts lo;
    bv_policy_loader_opts(p, &lo); /* the policy's statistics */
    if (o->shard_statistics) lo.action_norm = lo.proprio_norm = NULL, lo.norm_path = NULL;
    lo.dir = o->shards;
    lo.batch_size = o->batch_size;
    lo.threads = o->loader_threads;
    if ((st = bv_loader_open(&l, &lo))) goto out;
    const int A = bv_policy_action_dim(p), P = bv_policy_state_dim(p), C = bv_policy_chunk(p);
    if (bv_loader_action_dim(l) != A || bv_loader_proprio_dim(l) != P) {
        st = bv_error_set(BV_ERR_ARG,
                          "%s/manifest.json: 'action_dim' %d and 'proprio_dim' %d, but the policy %s takes action_dim %d "
                          "and state_dim %d (a policy trained on another robot or dataset)",
                          o->shards, bv_loader_action_dim(l), bv_loader_proprio_dim(l), path, A, P);
        goto out;
    }
    snprintf(r->dataset, sizeof r->dataset, "%s", bv_loader_dataset_name(l));
    snprintf(r->statistics, sizeof r->statistics, "%s",
             o->shard_statistics ? bv_loader_statistics_path(l) : bv_policy_statistics_path(p));
    r->norm_differs = !same_norm(bv_loader_dir_action_norm(l), bv_policy_action_norm(p)) ||
                      !same_norm(bv_loader_dir_proprio_norm(l), bv_policy_proprio_norm(p));
    bv_am_cfg mc = {.chunk = C, .action_dim = A, .batch_size = o->batch_size, .gripper_dim = A - 1,
                    .norm = *bv_loader_action_norm(l)};
    if ((st = bv_am_init(&m, &mc))) goto out;
    const int64_t N = bv_loader_num_samples(l), all = bv_loader_batches_per_epoch(l);
    const int64_t nb = o->batches > 0 ? BV_MIN(o->batches, all) : all;
    r->shard_samples = N;
    pred = bv_xmalloc((size_t)o->batch_size * (size_t)C * (size_t)A * sizeof *pred);
    tasks = bv_xmalloc((size_t)o->batch_size * sizeof *tasks);
    bv_progress bar;
    bv_progress_init(&bar, "eval", nb, "batches");
    if (!o->progress) bar.quiet = 1;
    double t0 = bv_time_now();
    for (int64_t k = 0; k < nb; k++) {
        const bv_loader_batch *b;
        if ((st = bv_loader_next(l, &b))) break;
        if (!b) { /* cannot happen: nb batches make one epoch at most */
            st = bv_error_set(BV_ERR_INTERNAL, "%s: the data ended after %lld of %lld batches", o->shards,
                              (long long)k, (long long)nb);
            break;
        }
        bv_vla_batch vb = bv_loader_batch_vla(b);
        if ((st = bv_policy_act_batch(p, &vb, o->shards, pred))) break;
        /* the samples of this batch; the rest of a last batch wrapped around to the start */
        int rows = (int)BV_MIN(b->B, N - b->index * (int64_t)o->batch_size);
        for (int i = 0; i < rows; i++) tasks[i] = bv_loader_episode_instruction(l, b->episode[i]);
        bv_am_add(m, b->index, pred, b->actions.data, rows, tasks);
        r->batches++;
        bv_progress_update(&bar, k + 1);
    }
    bv_progress_finish(&bar);
    r->seconds = bv_time_now() - t0;
    if (!st) bv_am_summarize(m, &r->m);
out:
    free(pred);
    free(tasks);
    bv_am_free(m);
    bv_loader_free(l);
    bv_policy_free(p);
    if (st) st = bv_error_prefix(st, "evaluating %s on %s", path, o->shards);
    return st;
}

void bv_offline_result_free(bv_offline_result *r) {
    if (!r) return;
    bv_am_summary_free(&r->m);
}

/* a number, or null where there is none (NaN: no samples, no gripper) */
static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *dims(const double *v, int n) {
    json_t *a = json_array();
    for (int d = 0; d < n; d++) json_array_append_new(a, num(v[d]));
    return a;
}

/* l1 and gripper_accuracy first: the root's top-level figures */
static void put_group(json_t *o, const bv_am_group *g, int A) {
    json_object_set_new(o, "l1", num(g->l1));
    json_object_set_new(o, "gripper_accuracy", num(g->gripper_acc));
    json_object_set_new(o, "samples", json_integer(g->samples));
    json_object_set_new(o, "gripper_correct", json_integer(g->gripper_correct));
    json_object_set_new(o, "gripper_steps", json_integer(g->gripper_total));
    json_object_set_new(o, "dim_l1", dims(g->dim_l1, A));
    json_object_set_new(o, "dim_l1_unnormalized", dims(g->dim_l1_raw, A));
}

bv_status bv_offline_write_json(const bv_offline_result *r, const bv_offline_opts *o, const char *path) {
    const bv_am_summary *s = &r->m;
    json_t *root = json_object();
    put_group(root, &s->all, s->action_dim);
    json_object_set_new(root, "policy", json_string(r->source));
    json_object_set_new(root, "shards", json_string(o->shards));
    json_object_set_new(root, "dataset", json_string(r->dataset));
    json_object_set_new(root, "statistics", json_string(o->shard_statistics ? "shards" : "policy"));
    json_object_set_new(root, "statistics_path", json_string(r->statistics));
    json_object_set_new(root, "statistics_match_policy", json_boolean(!r->norm_differs));
    json_object_set_new(root, "shard_samples", json_integer(r->shard_samples));
    json_object_set_new(root, "batches", json_integer(r->batches));
    json_object_set_new(root, "batch_size", json_integer(o->batch_size));
    json_object_set_new(root, "chunk", json_integer(s->chunk));
    json_object_set_new(root, "action_dim", json_integer(s->action_dim));
    json_object_set_new(root, "gripper_dim", json_integer(s->gripper_dim));
    json_object_set_new(root, "seconds", json_real(r->seconds));
    json_t *tasks = json_array();
    for (int t = 0; t < s->n_tasks; t++) {
        json_t *g = json_object();
        json_object_set_new(g, "instruction", json_string(s->tasks[t].task));
        put_group(g, &s->tasks[t], s->action_dim);
        json_array_append_new(tasks, g);
    }
    json_object_set_new(root, "tasks", tasks);
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text) return bv_error_set(BV_ERR_INTERNAL, "%s: cannot format the results as JSON", path);
    bv_status st = bv_atomic_write_text(path, text);
    free(text);
    return st ? bv_error_prefix(st, "writing %s", path) : BV_OK;
}
