/* train.c - the training loop (recipes/train.h). */
#include "recipes/train.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/loader.h"
#include "models/build.h"
#include "optim/adamw.h"
#include "optim/schedule.h"
#include "recipes/action_metrics.h"
#include "recipes/dist.h"
#include "src/atomic_file.h"
#include "src/metrics.h"
#include "src/progress.h"
#include "src/tokenizer.h"

typedef struct {
    const bv_train_opts *o;
    const bv_recipe *r;
    bv_tok *tok;
    bv_model model;
    bv_loader *train;
    bv_adamw opt;
    bv_dist *dist;
    int accum; /* micro-batches per rank per step (A) */
    bv_schedule sched;
    bv_metrics *metrics;
    bv_graph g;
    bool graph_ready;
    bv_trainer_state state;
    char *recipe_json, *config_json, *stats_path;
    int image_tokens;
    double moments_bytes;
    FILE *log;
} run;

static char *path_join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = bv_xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

/* a new run needs an empty (or missing) run directory */
static bv_status check_run_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT) return BV_OK; /* made once the run is known to fit */
        return bv_error_set(BV_ERR_IO, "%s: cannot open the run directory (%s)", dir, strerror(errno));
    }
    struct dirent *e;
    const char *found = NULL;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            found = e->d_name;
            break;
        }
    bv_status st = BV_OK;
    if (found)
        st = bv_error_set(BV_ERR_ARG, "%s: the run directory is not empty (it holds '%s'): give a new --out, or --resume %s "
                          "to continue that run", dir, found, dir);
    closedir(d);
    return st;
}

/* A model trained from scratch takes the tokenizer's vocabulary and special ids (as HF's
 * resize_token_embeddings would); one that starts from weights must already agree with it. */
static bv_status fit_tokenizer(const run *R, bv_vla_config *c, bool from_scratch) {
    if (from_scratch) {
        c->text.vocab_size = bv_tok_vocab_size(R->tok);
        c->image_token_index = bv_tok_token_id(R->tok, "<|image_pad|>");
        c->proprio_token_index = bv_tok_token_id(R->tok, "<proprio_pad>");
        if (c->image_token_index < 0 || c->proprio_token_index < 0)
            return bv_error_set(BV_ERR_FORMAT, "%s: tokenizer %s has no <|image_pad|> / <proprio_pad> token (apply the "
                                "BitVLA edits: 'bitvla tokenizer ... --bitvla')", R->r->source, R->r->tokenizer);
        return bv_config_validate(c, R->r->model.config);
    }
    int32_t img = bv_tok_token_id(R->tok, "<|image_pad|>"), pro = bv_tok_token_id(R->tok, "<proprio_pad>");
    int32_t v = bv_tok_vocab_size(R->tok);
    if (v > c->text.vocab_size || img != c->image_token_index || pro != c->proprio_token_index)
        return bv_error_set(BV_ERR_ARG, "%s: tokenizer %s does not fit model config %s: vocabulary %d vs %lld, "
                            "<|image_pad|> %d vs image_token_index %lld, <proprio_pad> %d vs proprio_token_index %lld",
                            R->r->source, R->r->tokenizer, R->r->model.config, v, (long long)c->text.vocab_size, img,
                            (long long)c->image_token_index, pro, (long long)c->proprio_token_index);
    return BV_OK;
}

static bv_loader_opts loader_opts(const run *R, const char *dir, bool train) {
    const bv_recipe *r = R->r;
    bv_loader_opts lo;
    bv_loader_opts_default(&lo);
    lo.dir = dir;
    lo.tok = R->tok;
    lo.batch_size = r->micro_batch;
    lo.rank = R->o->rank;
    lo.world_size = R->o->world_size;
    lo.accumulation = train ? R->accum : 1;
    lo.seed = r->data.seed;
    lo.train = train && r->data.augment;
    lo.shuffle = train;
    lo.drop_last = train;
    lo.image_size = R->model.vla.cfg.vision.image_size;
    lo.n_images = r->data.n_images;
    lo.image_tokens = R->image_tokens;
    lo.chunk = R->model.vla.cfg.num_actions_chunk;
    lo.threads = r->data.threads;
    lo.prefetch = r->data.prefetch;
    lo.dataset_name = r->data.dataset_name;
    return lo;
}

/* The model with its gradients; the AdamW moments (8 bytes per trainable parameter) are planned
 * with it. `shapes`: only the plan, checked against the memory before any data is made or read. */
static bv_status build_model(run *R, const bv_vla_config *cfg, const char *weights, bool shapes) {
    const bv_recipe *r = R->r;
    bv_model_spec spec = {.config = r->model.config,
                          .cfg = cfg,
                          .purpose = shapes ? BV_MODEL_SHAPES : BV_MODEL_TRAIN,
                          .train = (const char *const *)r->model.train,
                          .freeze = (const char *const *)r->model.freeze,
                          .seed = r->model.seed,
                          .weights = weights,
                          .load = {.allow_missing = r->model.allow_missing}};
    if (!shapes) {
        spec.reserve_bytes = R->moments_bytes;
        return bv_model_build(&R->model, &spec);
    }
    bv_model m;
    bv_status st = bv_model_build(&m, &spec);
    if (st) return st;
    R->moments_bytes = 2.0 * m.grads_bytes;
    char what[768];
    const double gib = 1073741824.0;
    snprintf(what, sizeof what,
             "training model %s (%.2f GiB of fp32 weights, %.2f GiB of gradients, %.2f GiB of AdamW moments, %.2f GiB "
             "of BitLinear caches; the activations of a micro-batch come on top: 'bitvla info --recipe %s' shows them, "
             "the plan per module and the data-parallel ranks it needs)",
             r->model.config, m.values_bytes / gib, m.grads_bytes / gib, R->moments_bytes / gib, m.cache_bytes / gib,
             r->source);
    st = bv_mem_check(bv_model_bytes(&m) + R->moments_bytes, what);
    bv_model_free(&m);
    return st;
}

static bv_status build_optimizer(run *R) {
    const bv_recipe *r = R->r;
    bv_adamw_group_rule rules[BV_RECIPE_MAX_GROUPS];
    for (int i = 0; i < r->optimizer.n_groups; i++) {
        const bv_recipe_group *g = &r->optimizer.groups[i];
        rules[i] = (bv_adamw_group_rule){.name = g->name,
                                         .prefixes = (const char *const *)g->prefixes,
                                         .lr_scale = g->lr / r->optimizer.lr,
                                         .weight_decay = g->weight_decay};
    }
    bv_adamw_cfg c;
    bv_adamw_cfg_default(&c);
    c.beta1 = r->optimizer.beta1;
    c.beta2 = r->optimizer.beta2;
    c.eps = r->optimizer.eps;
    c.weight_decay = r->optimizer.weight_decay;
    c.no_decay = (const char *const *)r->optimizer.no_decay;
    c.n_rules = r->optimizer.n_groups;
    c.rules = rules;
    const bv_range *own;
    int n_own = bv_dist_owned(R->dist, &own);
    bv_status st = r->distributed.zero ? bv_adamw_init_shard(&R->opt, &R->model.params, &c, n_own, own)
                                       : bv_adamw_init(&R->opt, &R->model.params, &c);
    if (st) return bv_error_prefix(st, "%s: optimizer", r->source);
    R->sched = (bv_schedule){.kind = r->schedule.type,
                             .warmup_steps = r->schedule.warmup_steps,
                             .total_steps = r->steps,
                             .min_lr_ratio = r->schedule.min_lr_ratio,
                             .power = r->schedule.power,
                             .weight_decay_off_step = r->schedule.weight_decay_off_step};
    st = bv_schedule_check(&R->sched);
    if (st) return bv_error_prefix(st, "%s: schedule", r->source);
    return BV_OK;
}

/* The graph, its arena sized by the plan of a training batch (it grows if a later batch needs
 * more); the plan is checked against the memory with the model first, so a micro-batch that cannot
 * fit is an error naming the bytes rather than an abort in the middle of a step. */
static bv_status ensure_graph(run *R, const bv_vla_batch *vb) {
    if (R->graph_ready) return BV_OK;
    double act = bv_vla_plan_forward(&R->model.vla.cfg, vb, BV_VLA_MODE_ACTION, true);
    char what[256];
    snprintf(what, sizeof what, "training with micro-batch %d (%.2f GiB for the model and optimizer, %.2f GiB of activations)",
             R->r->micro_batch, (bv_model_bytes(&R->model) + R->moments_bytes) / 1073741824.0, act / 1073741824.0);
    double dist = bv_dist_buffer_bytes(R->dist);
    bv_status st = bv_mem_check(bv_model_bytes(&R->model) + R->moments_bytes + dist + act, what);
    if (st) return st;
    bv_graph_init(&R->g, (size_t)act);
    bv_dist_attach(R->dist, &R->g);
    R->graph_ready = true;
    return BV_OK;
}

/* bv_am_sum's sum over the ranks */
static void sum_over_ranks(void *ctx, double *x, int64_t n) { bv_dist_sum_doubles(ctx, x, (int)n); }

/* The action metrics (recipes/action_metrics.h) of the first validation.batches micro-batches
 * ("units") of the held-out set, in held-out order: rank r runs units r, r + N, r + 2N, ... (the
 * loader's rank slices), each into its own record, the records are summed over the ranks (zeros
 * elsewhere: exact) and combined in unit order, so any rank count gives the same bits. The
 * held-out set is normalised with the training shards' statistics, not its own: those the model
 * learns in and the checkpoints carry (every rank, a resumed run too, reads the same file). *l1: the
 * mean of the units' losses (the L1 on normalised actions), *gripper_acc: open/closed agreement
 * of the last action dimension (the gripper) over every step of every chunk. */
static bv_status validate(run *R, double *l1, double *gripper_acc) {
    const bv_recipe *r = R->r;
    const int N = R->o->world_size, U = r->validation.batches;
    bv_loader_opts lo = loader_opts(R, r->data.val_shards, false);
    lo.epochs = 1;
    lo.action_norm = bv_loader_action_norm(R->train);
    lo.proprio_norm = bv_loader_proprio_norm(R->train);
    lo.norm_path = R->stats_path;
    bv_loader *l;
    bv_status st = bv_loader_open(&l, &lo);
    if (st) return bv_error_prefix(st, "validation");
    const bv_vla_config *c = &R->model.vla.cfg;
    bv_am_cfg mc = {.chunk = (int)c->num_actions_chunk,
                    .action_dim = (int)c->action_dim,
                    .batch_size = r->micro_batch,
                    .gripper_dim = (int)c->action_dim - 1,
                    .norm = *bv_loader_action_norm(l)};
    bv_am *m = NULL;
    if ((st = bv_am_init(&m, &mc))) {
        bv_loader_free(l);
        return bv_error_prefix(st, "validation on %s", r->data.val_shards);
    }
    for (int64_t k = 0; k * N + R->o->rank < U; k++) {
        const bv_loader_batch *b;
        if ((st = bv_loader_next(l, &b)) || !b) break;
        bv_vla_batch vb = bv_loader_batch_vla(b);
        if ((st = bv_vla_batch_check(&R->model.vla, &vb, BV_VLA_MODE_ACTION, r->data.val_shards))) break;
        if ((st = ensure_graph(R, &vb))) break;
        bv_graph_reset(&R->g);
        bv_graph_no_grad_begin(&R->g);
        bv_vla_out y = bv_vla_forward(&R->g, &R->model.params, &R->model.vla, &vb, BV_VLA_MODE_ACTION);
        /* every row, as the loss counts them (a last batch completed by wrapping around too) */
        bv_am_add(m, k * N + R->o->rank, bv_var_f32(y.actions_pred), b->actions.data, (int)b->B, NULL);
        bv_graph_no_grad_end(&R->g);
    }
    bv_loader_free(l);
    if (!st) {
        bv_am_sum(m, U, sum_over_ranks, R->dist);
        bv_am_summary s;
        bv_am_summarize(m, &s);
        *l1 = s.all.l1;
        *gripper_acc = s.all.gripper_acc;
        bv_am_summary_free(&s);
    }
    bv_am_free(m);
    return st;
}

/* the checkpoint writer's data callback on rank 0 (ZeRO-1): the moments streamed from the ranks */
static bv_status write_moments(void *ctx, FILE *fp, const char *tmp) {
    run *R = ctx;
    return bv_dist_write_moments(R->dist, &R->opt, fp, tmp);
}

/* Every rank calls it (ZeRO-1 streams the moments through rank 0); rank 0 writes. */
static bv_status save(run *R, bv_train_result *res) {
    const bool sharded = R->r->distributed.zero;
    if (R->o->rank != 0) return sharded ? bv_dist_write_moments(R->dist, &R->opt, NULL, NULL) : BV_OK;
    bv_status st = bv_metrics_sync(R->metrics);
    if (st) return st; /* the job ends (cli/cmd_train.c): the others' gathers are cut short */
    bv_ckpt_contents c = {.params = &R->model.params,
                          .opt = &R->opt,
                          .opt_data = sharded ? write_moments : NULL,
                          .opt_data_ctx = R,
                          .state = &R->state,
                          .recipe_json = R->recipe_json,
                          .config_json = R->config_json,
                          .statistics_path = R->stats_path,
                          .tokenizer_path = R->r->tokenizer};
    st = bv_ckpt_save(R->o->run_dir, &c, R->r->checkpoint.keep);
    if (!st) {
        char *p = bv_ckpt_path(R->o->run_dir, R->state.step);
        snprintf(res->checkpoint, sizeof res->checkpoint, "%s", p);
        free(p);
    }
    return st;
}

/* name of the parameter holding gradient element k */
static const char *grad_owner(const bv_params *p, int64_t k) {
    for (int i = 0; i < p->n; i++)
        if (p->items[i].trainable && (size_t)k >= p->items[i].offset &&
            (size_t)k < p->items[i].offset + (size_t)p->items[i].numel)
            return p->items[i].name;
    return "?";
}

/* Fault injection for the tests of failure handling (docs/distributed.md): BV_TRAIN_FAULT=
 * "RANK:STEP:kill" makes rank RANK kill itself with SIGKILL as step STEP starts, "RANK:STEP:error"
 * makes it fail there with BV_ERR_IO as a bad shard would. */
static bv_status fault_point(const run *R) {
    const char *f = getenv("BV_TRAIN_FAULT");
    int rank, step;
    char what[16];
    if (!f || sscanf(f, "%d:%d:%15s", &rank, &step, what) != 3) return BV_OK;
    if (rank != R->o->rank || step != R->state.step + 1) return BV_OK;
    if (!strcmp(what, "kill")) raise(SIGKILL);
    return bv_error_set(BV_ERR_IO, "%s: injected fault at step %d (BV_TRAIN_FAULT=%s)", R->r->data.shards, step, f);
}

/* One optimizer step: accumulation micro-batches, reduction, guard, clip, update. */
static bv_status step(run *R, double *loss_out, double *gnorm_out, double *lr_out, bool *skipped, char *why,
                      size_t why_n) {
    const bv_recipe *r = R->r;
    bv_params *p = &R->model.params;
    bv_status st = BV_OK;
    const int A = R->accum;
    const float seed = bv_dist_seed(R->dist);
    BV_TRY(fault_point(R));
    double losses[64], *loss = A <= 64 ? losses : bv_xmalloc((size_t)A * sizeof *loss);
    bv_params_zero_grad(p);
    for (int a = 0; a < A; a++) {
        const bv_loader_batch *b;
        bv_dist_micro_begin(R->dist, a);
        if ((st = bv_loader_next(R->train, &b))) goto out;
        if (!b) {
            st = bv_error_set(BV_ERR_INTERNAL, "the training data stream ended");
            goto out;
        }
        bv_vla_batch vb = bv_loader_batch_vla(b);
        if ((st = bv_vla_batch_check(&R->model.vla, &vb, BV_VLA_MODE_ACTION, r->data.shards))) goto out;
        if ((st = ensure_graph(R, &vb))) goto out;
        bv_graph_reset(&R->g);
        bv_vla_out y = bv_vla_forward(&R->g, p, &R->model.vla, &vb, BV_VLA_MODE_ACTION);
        loss[a] = (double)bv_var_f32(y.loss)[0];
        bv_graph_backward_seed(&R->g, y.loss, &seed);
        if ((st = bv_dist_micro_end(R->dist, a))) goto out;
        /* the next global batch to load */
        if ((b->index + 1) % A == 0) {
            R->state.epoch = b->epoch;
            R->state.batch = (b->index + 1) / A;
            if (R->state.batch * A >= bv_loader_batches_per_epoch(R->train)) {
                R->state.epoch++;
                R->state.batch = 0;
            }
        }
    }
    R->state.samples += (int64_t)r->micro_batch * A * R->o->world_size;
    *loss_out = bv_dist_loss(R->dist, loss);
    *lr_out = r->optimizer.lr * bv_schedule_lr_factor(&R->sched, R->state.step);
    float badv = 0;
    int64_t bad = bv_dist_first_nonfinite(R->dist, &badv);
    if (!isfinite(*loss_out) || bad >= 0) {
        *skipped = true;
        *gnorm_out = NAN;
        if (!isfinite(*loss_out))
            snprintf(why, why_n, "the loss is %g", *loss_out);
        else
            snprintf(why, why_n, "the gradient of '%s' is %g", grad_owner(p, bad), (double)badv);
        goto out;
    }
    *skipped = false;
    double norm = bv_dist_grad_norm(R->dist);
    *gnorm_out = norm;
    bv_dist_clip(R->dist, norm, r->optimizer.clip_grad_norm);
    bv_adamw_step(&R->opt, p, *lr_out, bv_schedule_wd_factor(&R->sched, R->state.step));
    if ((st = bv_dist_after_update(R->dist))) goto out;
    R->state.step++;
out:
    if (loss != losses) free(loss);
    return st;
}

static bv_status setup(run *R, bv_train_result *res) {
    const bv_train_opts *o = R->o;
    const bv_recipe *r = R->r;
    bv_status st;
    char *ckpt = NULL;
    if (o->resume) {
        if ((st = bv_ckpt_latest(o->run_dir, &ckpt))) return st;
        if ((st = bv_ckpt_read_state(ckpt, &R->state))) goto out;
        if (R->state.step > r->steps) {
            st = bv_error_set(BV_ERR_ARG, "%s: the checkpoint is at step %lld, beyond the recipe's 'steps' %lld", ckpt,
                              (long long)R->state.step, (long long)r->steps);
            goto out;
        }
    } else {
        if ((st = check_run_dir(o->run_dir))) return st;
        R->state.seed = r->seed;
        R->state.data_seed = r->data.seed;
        R->state.model_seed = r->model.seed;
    }
    /* the micro-batches per rank: a fixed global batch sets them by the rank count */
    R->accum = r->accumulation;
    if (r->global_batch > 0) {
        int64_t per = (int64_t)r->micro_batch * o->world_size;
        if (r->global_batch % per) {
            st = bv_error_set(BV_ERR_ARG, "%s: 'global_batch' %d is not a multiple of micro_batch %d x %d rank(s) = %lld",
                              r->source, r->global_batch, r->micro_batch, o->world_size, (long long)per);
            goto out;
        }
        R->accum = (int)(r->global_batch / per);
    }
    if ((st = build_model(R, NULL, NULL, true))) goto out; /* fits? before any data is made or read */
    /* rank 0 makes missing data while the others wait; the run directory comes after the others
     * checked it is new */
    if (o->rank == 0 && (st = bv_train_prepare_data(r, R->log))) goto out; /* the job ends (cli/cmd_train.c) */
    bv_dist_barrier();
    if (!o->resume && o->rank == 0 && (st = bv_atomic_dir_make(o->run_dir))) goto out;
    if ((st = bv_tok_load(&R->tok, r->tokenizer))) goto out;
    /* the architecture: init_from's config.json when it has one (the weights define it, as HF's
     * from_pretrained), else the recipe's model.config */
    bv_vla_config cfg;
    char *init_cfg = r->model.init_from ? path_join(r->model.init_from, "config.json") : NULL;
    struct stat sb;
    bool use_init_cfg = init_cfg && stat(init_cfg, &sb) == 0;
    st = bv_config_load(use_init_cfg ? init_cfg : r->model.config, false, &cfg);
    free(init_cfg);
    if (st) goto out;
    if ((st = fit_tokenizer(R, &cfg, !r->model.init_from))) goto out;
    /* a resumed run loads everything from the checkpoint; a new one starts from init_from */
    if ((st = build_model(R, &cfg, o->resume ? NULL : r->model.init_from, false))) goto out;
    if (r->data.image_size && r->data.image_size != R->model.vla.cfg.vision.image_size) {
        st = bv_error_set(BV_ERR_ARG, "%s: 'data.image_size' is %d but model %s takes %d x %d images", r->source,
                          r->data.image_size, r->model.config, R->model.vla.cfg.vision.image_size,
                          R->model.vla.cfg.vision.image_size);
        goto out;
    }
    R->image_tokens = bv_config_vision_patches(&R->model.vla.cfg);
    bv_dist_cfg dc = {.rank = o->rank,
                      .world = o->world_size,
                      .accumulation = R->accum,
                      .zero = r->distributed.zero,
                      .exact = r->distributed.exact,
                      .bucket_bytes = r->distributed.bucket_mb * 1e6};
    if ((st = bv_dist_open(&R->dist, &R->model.params, &dc))) goto out;
    if ((st = build_optimizer(R))) goto out;
    if (o->resume && (st = bv_ckpt_load(ckpt, &R->model.params, &R->opt))) goto out;
    bv_loader_opts lo = loader_opts(R, r->data.shards, true);
    lo.start_epoch = R->state.epoch;
    lo.start_batch = R->state.batch * R->accum;
    if ((st = bv_loader_open(&R->train, &lo))) goto out;
    R->stats_path = bv_xstrdup(bv_loader_statistics_path(R->train)); /* into checkpoints; validation uses them */
    R->recipe_json = bv_recipe_to_json(r);
    R->config_json = bv_config_to_json(&R->model.vla.cfg);
    if (o->rank == 0) {
        char *rp = path_join(o->run_dir, "recipe.json");
        st = bv_atomic_write_file(rp, R->recipe_json, strlen(R->recipe_json));
        free(rp);
        if (st) goto out;
        if ((st = bv_metrics_open(&R->metrics, o->run_dir, r->logging.tensorboard, o->resume ? R->state.step : -1)))
            goto out;
    }
    if (R->log) {
        fprintf(R->log, "bitvla train: %s: model %s, %lld parameters (%lld trainable), %lld samples in %s\n", r->source,
                r->model.config, (long long)R->model.params.numel_total, (long long)R->model.params.numel_trainable,
                (long long)bv_loader_num_samples(R->train), r->data.shards);
        fprintf(R->log, "bitvla train: global batch %d = micro-batch %d x accumulation %d x %d rank(s); %lld steps\n",
                r->micro_batch * R->accum * o->world_size, r->micro_batch, R->accum, o->world_size,
                (long long)r->steps);
        if (o->world_size > 1)
            fprintf(R->log, "bitvla train: %d gradient buckets, %s, micro-batch gradients %s\n",
                    bv_dist_last_stats(R->dist)->buckets,
                    r->distributed.zero ? "ZeRO-1 (AdamW moments sharded over the ranks)" : "every rank keeps all moments",
                    r->distributed.exact ? "summed in a fixed tree (the same bits on any rank count)"
                                         : "accumulated in place");
        if (o->resume)
            fprintf(R->log, "bitvla train: resuming from %s (step %lld)\n", ckpt, (long long)R->state.step);
    }
out:
    (void)res;
    free(ckpt);
    return st;
}

static void teardown(run *R) {
    if (R->graph_ready) bv_graph_free(&R->g);
    bv_metrics_close(R->metrics);
    bv_loader_free(R->train);
    bv_adamw_free(&R->opt);
    bv_dist_free(R->dist);
    bv_model_free(&R->model);
    bv_tok_free(R->tok);
    free(R->recipe_json);
    free(R->config_json);
    free(R->stats_path);
}

bv_status bv_train_run(const bv_train_opts *o, bv_train_result *res) {
    memset(res, 0, sizeof *res);
    res->val_l1 = NAN;
    res->val_gripper_acc = NAN;
    res->loss = NAN;
    run R = {.o = o, .r = o->recipe, .log = o->log};
    const bv_recipe *r = o->recipe;
    double t0 = bv_time_now();
    bv_status st = setup(&R, res);
    if (st) goto out;
    int64_t end = r->steps;
    if (o->stop_at > 0 && o->stop_at < end) end = o->stop_at;
    bv_progress bar;
    bv_progress_init(&bar, "train", r->steps, "steps");
    bv_progress_start_at(&bar, R.state.step);
    if (o->rank != 0) bar.quiet = 1;
    char why[512] = "";
    int64_t first_bad_step = -1;
    /* the untrained model's validation L1: the curve's starting point */
    if (R.state.step == 0 && r->data.val_shards && r->validation.every > 0) {
        double l1 = NAN, gacc = NAN;
        if ((st = validate(&R, &l1, &gacc))) goto out;
        bv_metric m[] = {{"val_l1", l1}, {"val_gripper_acc", gacc}};
        if (o->rank == 0 && (st = bv_metrics_log(R.metrics, 0, "val", (int)BV_ARRAY_LEN(m), m))) goto out;
    }
    while (R.state.step < end) {
        double ts = bv_time_now(), loss = NAN, gnorm = NAN, lr = 0;
        bool skipped = false;
        char w[512];
        if ((st = step(&R, &loss, &gnorm, &lr, &skipped, w, sizeof w))) break;
        double dt = bv_time_now() - ts;
        double sps = (double)r->micro_batch * R.accum * o->world_size / (dt > 0 ? dt : 1e-9);
        res->loss = loss;
        if (skipped) {
            R.state.skipped++;
            if (R.state.nonfinite_in_row++ == 0) {
                snprintf(why, sizeof why, "%s", w);
                first_bad_step = R.state.step + 1;
            }
            if (R.log)
                fprintf(R.log, "\nbitvla train: step %lld skipped: %s\n", (long long)R.state.step + 1, w);
            if (R.state.nonfinite_in_row >= r->guard.max_nonfinite) {
                st = bv_error_set(BV_ERR_NONFINITE, "%lld steps in a row had non-finite values (guard.max_nonfinite = %d); "
                                  "the first, at step %lld: %s",
                                  (long long)R.state.nonfinite_in_row, r->guard.max_nonfinite,
                                  (long long)first_bad_step, why);
                break;
            }
            continue;
        }
        R.state.nonfinite_in_row = 0;
        int64_t s = R.state.step;
        if (o->rank == 0 && (s % r->logging.every == 0 || s == end)) {
            const bv_dist_stats *ds = bv_dist_last_stats(R.dist);
            bv_metric m[] = {{"loss", loss},        {"lr", lr},
                             {"grad_norm", gnorm},  {"samples_per_s", sps},
                             {"epoch", (double)R.state.epoch}, {"skipped", (double)R.state.skipped},
                             {"step_s", dt},        {"comm_wait_s", ds->wait_s}};
            int nm = o->world_size > 1 ? (int)BV_ARRAY_LEN(m) : (int)BV_ARRAY_LEN(m) - 1;
            if ((st = bv_metrics_log(R.metrics, s, "train", nm, m))) break;
        }
        bv_progress_set_extra(&bar, "loss %.4f  lr %.2e  %.1f samples/s", loss, lr, sps);
        bv_progress_update(&bar, s);
        bool last = s == end;
        if (r->data.val_shards && r->validation.every > 0 && (s % r->validation.every == 0 || s == r->steps)) {
            double l1 = NAN, gacc = NAN;
            if ((st = validate(&R, &l1, &gacc))) break;
            res->val_l1 = l1;
            res->val_gripper_acc = gacc;
            if (o->rank == 0) {
                bv_metric m[] = {{"val_l1", l1}, {"val_gripper_acc", gacc}};
                if ((st = bv_metrics_log(R.metrics, s, "val", (int)BV_ARRAY_LEN(m), m))) break;
            }
        }
        if ((r->checkpoint.every > 0 && s % r->checkpoint.every == 0) || last)
            if ((st = save(&R, res))) break;
    }
    bv_progress_finish(&bar);
out:
    res->step = R.state.step;
    res->skipped = R.state.skipped;
    res->seconds = bv_time_now() - t0;
    teardown(&R);
    if (st) st = bv_error_prefix(st, "training %s into %s", r->source, o->run_dir);
    return st;
}
