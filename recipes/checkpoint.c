#include "recipes/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "models/weights.h"
#include "src/atomic_file.h"
#include "src/safetensors.h"

/* 2: trainer_state's "batch" counts global batches (version 1 counted one rank's micro-batches) */
#define CKPT_VERSION 2

/* Fault injection for the kill tests (tests/test_train.c): BV_CKPT_KILL_AT=<stage> makes the process
 * SIGKILL itself the BV_CKPT_KILL_NTH-th time (default the first) a save reaches that stage, as a
 * `kill -9` at that moment would. */
static void kill_point(const char *stage) {
    static int reached;
    const char *e = getenv("BV_CKPT_KILL_AT");
    if (!e || strcmp(e, stage)) return;
    const char *nth = getenv("BV_CKPT_KILL_NTH");
    if (++reached >= (nth ? atoi(nth) : 1)) raise(SIGKILL);
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = bv_xmalloc(n);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

char *bv_ckpt_path(const char *run_dir, int64_t step) {
    char name[64];
    snprintf(name, sizeof name, "checkpoints/step-%08lld", (long long)step);
    return join(run_dir, name);
}

/* step-NNNNNNNN and the temporaries and links this module makes in checkpoints/ */
static bool is_step_name(const char *name, int64_t *step) {
    if (strncmp(name, "step-", 5) != 0) return false;
    const char *d = name + 5;
    if (strlen(d) < 8) return false;
    int64_t v = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9') return false;
        v = v * 10 + (*d - '0');
    }
    if (step) *step = v;
    return true;
}

static bool owned_name(const char *name) {
    /* a checkpoint directory holds only the files this module writes */
    static const char *k[] = {"model.safetensors",       "model.safetensors.index.json", "optimizer.safetensors",
                              "trainer_state.json",      "recipe.json",                  "config.json",
                              "dataset_statistics.json", "tokenizer.json"};
    for (size_t i = 0; i < BV_ARRAY_LEN(k); i++)
        if (!strcmp(name, k[i])) return true;
    return !strncmp(name, "model-", 6) || strstr(name, ".tmp.") != NULL;
}


static bv_status write_text(const char *dir, const char *name, const char *text) {
    char *path = join(dir, name);
    bv_status st = bv_atomic_write_file(path, text, strlen(text));
    free(path);
    return st;
}

/* AdamW moments per trainable parameter, all exp_avg then all exp_avg_sq, in the flat layout's
 * order: the data section is m[0, n) then v[0, n), so a data writer (sharded moments:
 * recipes/dist.h) streams it piece by piece, and the file is the same bytes either way. */
static bv_status save_optimizer(const char *path, const bv_params *p, const bv_adamw *o, bv_st_data_fn data,
                                void *data_ctx) {
    int n = o->n_params;
    bv_st_item *items = bv_xcalloc((size_t)(2 * n), sizeof *items);
    char **names = bv_xcalloc((size_t)(2 * n), sizeof *names);
    for (int k = 0; k < n; k++) {
        const bv_param *pp = &p->items[o->param[k]];
        for (int j = 0; j < 2; j++) {
            int i = j * n + k;
            size_t len = strlen(pp->name) + 16;
            names[i] = bv_xmalloc(len);
            snprintf(names[i], len, "%s.%s", j ? "exp_avg_sq" : "exp_avg", pp->name);
            float *base = data ? NULL : j ? o->v + pp->offset : o->m + pp->offset;
            items[i].name = names[i];
            items[i].t = bv_tensor_make(base, BV_DTYPE_F32, pp->ndim, pp->shape);
        }
    }
    char stepbuf[32];
    snprintf(stepbuf, sizeof stepbuf, "%lld", (long long)o->step);
    const char *meta[] = {"step", stepbuf, "format", "bitvla-adamw-1"};
    bv_status st = data ? bv_st_save_stream(path, 2 * n, items, 2, meta, data, data_ctx)
                        : bv_st_save(path, 2 * n, items, 2, meta);
    for (int i = 0; i < 2 * n; i++) free(names[i]);
    free(names);
    free(items);
    return st;
}

static char *state_json(const bv_trainer_state *s) {
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "step", (json_int_t)s->step, "epoch",
                          (json_int_t)s->epoch, "batch", (json_int_t)s->batch, "skipped", (json_int_t)s->skipped,
                          "nonfinite_in_row", (json_int_t)s->nonfinite_in_row, "samples", (json_int_t)s->samples, "seed",
                          (json_int_t)s->seed, "data_seed", (json_int_t)s->data_seed, "model_seed",
                          (json_int_t)s->model_seed, "version", CKPT_VERSION);
    char *t = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    size_t n = strlen(t);
    char *r = bv_xmalloc(n + 2);
    memcpy(r, t, n);
    r[n] = '\n';
    r[n + 1] = 0;
    free(t);
    return r;
}

/* Point RUN_DIR/checkpoints/latest at `name` by renaming a fresh link over it. */
static bv_status set_latest(const char *ck_dir, const char *name) {
    char *link = join(ck_dir, "latest");
    char *tmp = bv_atomic_tmp_path(link);
    unlink(tmp);
    bv_status st = BV_OK;
    if (symlink(name, tmp) != 0)
        st = bv_error_set(BV_ERR_IO, "%s: cannot create link (%s)", tmp, strerror(errno));
    else if (rename(tmp, link) != 0) {
        st = bv_error_set(BV_ERR_IO, "%s: cannot rename onto %s (%s)", tmp, link, strerror(errno));
        unlink(tmp);
    } else {
        int fd = open(ck_dir, O_RDONLY | O_DIRECTORY);
        if (fd >= 0) {
            fsync(fd);
            close(fd);
        }
    }
    free(tmp);
    free(link);
    return st;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Delete all but the newest `keep` step directories (never the one `latest` names). */
static void prune(const char *run_dir, const char *ck_dir, int keep, int64_t latest_step) {
    DIR *d = opendir(ck_dir);
    if (!d) return;
    int64_t *steps = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s;
        if (!is_step_name(e->d_name, &s)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            steps = bv_xrealloc(steps, cap * sizeof *steps);
        }
        steps[n++] = s;
    }
    closedir(d);
    if (n > (size_t)keep) {
        qsort(steps, n, sizeof *steps, cmp_i64);
        for (size_t i = 0; i + (size_t)keep < n; i++) {
            if (steps[i] == latest_step) continue;
            char *p = bv_ckpt_path(run_dir, steps[i]);
            if (bv_atomic_dir_remove_tree(p) != 0)
                fprintf(stderr, "warning: %s: cannot delete an old checkpoint (%s)\n", p, strerror(errno));
            free(p);
        }
    }
    free(steps);
}

bv_status bv_ckpt_save(const char *run_dir, const bv_ckpt_contents *c, int keep) {
    char *path = bv_ckpt_path(run_dir, c->state->step);
    char *ck_dir = join(run_dir, "checkpoints");
    bv_atomic_dir d;
    const bv_atomic_dir_opts dopt = {.force = true,
                                     .make_parents = true,
                                     .owned = owned_name,
                                     .complete_name = "trainer_state.json",
                                     .what = "a checkpoint"};
    bv_status st = bv_atomic_dir_open(&d, path, &dopt);
    if (st) goto out;
    kill_point("begin");
    char *f = join(d.tmp, "model.safetensors");
    st = bv_weights_save(c->params, f, BV_DTYPE_F32, BV_WEIGHTS_DEFAULT_SHARD_BYTES);
    free(f);
    if (!st && c->opt) {
        f = join(d.tmp, "optimizer.safetensors");
        st = save_optimizer(f, c->params, c->opt, c->opt_data, c->opt_data_ctx);
        free(f);
    }
    kill_point("weights");
    if (!st && c->recipe_json) st = write_text(d.tmp, "recipe.json", c->recipe_json);
    if (!st && c->config_json) st = write_text(d.tmp, "config.json", c->config_json);
    if (!st && c->statistics_path) {
        f = join(d.tmp, "dataset_statistics.json");
        st = bv_atomic_copy_file(c->statistics_path, f);
        free(f);
    }
    if (!st && c->tokenizer_path) {
        f = join(d.tmp, "tokenizer.json");
        st = bv_atomic_copy_file(c->tokenizer_path, f);
        free(f);
    }
    if (!st) { /* last: its presence marks a complete checkpoint */
        char *t = state_json(c->state);
        st = write_text(d.tmp, "trainer_state.json", t);
        free(t);
    }
    if (st) {
        bv_atomic_dir_abort(&d);
        goto out;
    }
    kill_point("before-commit");
    st = bv_atomic_dir_commit(&d);
    if (st) goto out;
    kill_point("before-latest");
    const char *name = strrchr(path, '/') + 1;
    st = set_latest(ck_dir, name);
    kill_point("before-prune");
    if (!st) prune(run_dir, ck_dir, keep < 1 ? 1 : keep, c->state->step);
out:
    if (st) st = bv_error_prefix(st, "saving checkpoint %s", path);
    free(ck_dir);
    free(path);
    return st;
}

bool bv_ckpt_is_checkpoint(const char *dir) {
    char *p = join(dir, "trainer_state.json");
    struct stat sb;
    bool yes = stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
    free(p);
    return yes;
}

bv_status bv_ckpt_latest(const char *run_dir, char **path) {
    *path = NULL;
    char *link = join(run_dir, "checkpoints/latest");
    char target[PATH_MAX];
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n < 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: no checkpoint to resume from (%s: %s)", run_dir, link,
                                    strerror(errno));
        free(link);
        return st;
    }
    target[n] = 0;
    free(link);
    if (!is_step_name(target, NULL) || strchr(target, '/'))
        return bv_error_set(BV_ERR_FORMAT, "%s/checkpoints/latest: points at '%s' (expected step-NNNNNNNN)", run_dir,
                            target);
    char *ck = join(run_dir, "checkpoints");
    char *p = join(ck, target);
    free(ck);
    if (!bv_ckpt_is_checkpoint(p)) {
        bv_status st = bv_error_set(BV_ERR_FORMAT, "%s: not a complete checkpoint (no trainer_state.json)", p);
        free(p);
        return st;
    }
    *path = p;
    return BV_OK;
}

static bv_status get_i64(json_t *o, const char *path, const char *key, int64_t *out) {
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s' missing or not a non-negative integer", path, key);
    *out = json_integer_value(v);
    return BV_OK;
}

bv_status bv_ckpt_read_state(const char *ckpt_dir, bv_trainer_state *s) {
    memset(s, 0, sizeof *s);
    char *path = join(ckpt_dir, "trainer_state.json");
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    bv_status st = BV_OK;
    if (!o) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: line %d: %s", path, err.line, err.text);
        goto out;
    }
    if (!json_is_object(o)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: expected a JSON object", path);
        goto out;
    }
    int64_t seed = 0, dseed = 0, mseed = 0, version = 0;
    if ((st = get_i64(o, path, "version", &version))) goto out;
    if (version != CKPT_VERSION) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: 'version' is %lld (this build reads %d%s)", path, (long long)version,
                          CKPT_VERSION, version == 1 ? ": version 1 counted the data position in one rank's "
                                                       "micro-batches; resume it with the build that wrote it" : "");
        goto out;
    }
    if ((st = get_i64(o, path, "step", &s->step)) || (st = get_i64(o, path, "epoch", &s->epoch)) ||
        (st = get_i64(o, path, "batch", &s->batch)) || (st = get_i64(o, path, "skipped", &s->skipped)) ||
        (st = get_i64(o, path, "nonfinite_in_row", &s->nonfinite_in_row)) ||
        (st = get_i64(o, path, "samples", &s->samples)) || (st = get_i64(o, path, "seed", &seed)) ||
        (st = get_i64(o, path, "data_seed", &dseed)) || (st = get_i64(o, path, "model_seed", &mseed)))
        goto out;
    s->seed = (uint64_t)seed;
    s->data_seed = (uint64_t)dseed;
    s->model_seed = (uint64_t)mseed;
out:
    json_decref(o);
    free(path);
    return st;
}

/* The moments of o's owned ranges (all of them when unsharded) from the unsharded layout of the
 * file: any rank count reads any checkpoint. */
static bv_status load_optimizer(const char *path, const bv_params *p, bv_adamw *o) {
    bv_st_file f;
    bv_status st = bv_st_open(&f, path);
    if (st) return st;
    const char *step = bv_st_meta(&f, "step");
    long long sv = 0;
    if (!step || bv_parse_int("metadata 'step'", step, 0, INT64_MAX, &sv)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: metadata 'step' missing or not a non-negative integer", path);
        goto out;
    }
    bool whole = o->n_ranges == 1 && o->ranges[0].lo == 0 && o->ranges[0].hi == p->numel_trainable;
    for (int k = 0, r0 = 0; k < o->n_params && !st; k++) {
        const bv_param *pp = &p->items[o->param[k]];
        size_t plo = pp->offset, phi = pp->offset + (size_t)pp->numel;
        for (int j = 0; j < 2 && !st; j++) {
            char name[1024];
            snprintf(name, sizeof name, "%s.%s", j ? "exp_avg_sq" : "exp_avg", pp->name);
            int idx = bv_st_find(&f, name);
            if (idx < 0) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s' missing (the run trains '%s')", path, name, pp->name);
                break;
            }
            float *dst = j ? o->v : o->m;
            if (whole) {
                st = bv_st_read(&f, name, BV_DTYPE_F32, pp->ndim, pp->shape, pp->numel, dst + pp->offset);
                continue;
            }
            /* sharded: the owned pieces of this tensor, straight from the mapping */
            bv_tensor t = bv_st_view(&f, idx);
            if (t.dtype != BV_DTYPE_F32 || bv_tensor_numel(&t) != pp->numel) {
                st = bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s' is %s with %lld elements, expected F32 with %lld", path,
                                  name, bv_dtype_name(t.dtype), (long long)bv_tensor_numel(&t), (long long)pp->numel);
                break;
            }
            while (r0 < o->n_ranges && o->ranges[r0].hi <= plo) r0++;
            for (int r = r0; r < o->n_ranges && o->ranges[r].lo < phi; r++) {
                size_t lo = BV_MAX(plo, o->ranges[r].lo), hi = BV_MIN(phi, o->ranges[r].hi);
                if (lo < hi)
                    memcpy(dst + o->range_moff[r] + (lo - o->ranges[r].lo), (const float *)t.data + (lo - plo),
                           (hi - lo) * sizeof(float));
            }
        }
    }
    if (!st) o->step = sv;
out:
    bv_st_close(&f);
    return st;
}

bv_status bv_ckpt_load(const char *ckpt_dir, bv_params *p, bv_adamw *opt) {
    bv_status st;
    char *f = join(ckpt_dir, "model.safetensors");
    struct stat sb;
    if (stat(f, &sb) != 0) { /* sharded */
        free(f);
        f = join(ckpt_dir, "model.safetensors.index.json");
    }
    bv_weights_opts wo = {.layout = BV_WEIGHTS_LLAVA};
    st = bv_weights_load(p, f, &wo, NULL);
    free(f);
    if (!st && opt) {
        f = join(ckpt_dir, "optimizer.safetensors");
        st = load_optimizer(f, p, opt);
        free(f);
    }
    if (st) st = bv_error_prefix(st, "loading checkpoint %s", ckpt_dir);
    return st;
}
