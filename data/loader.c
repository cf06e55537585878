/* loader.c - shard directory -> model batches, with prefetch threads. See loader.h. */
#include "data/loader.h"

#include <hdf5.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "data/shards.h"

/* ---------------------------------------------------------------- loader state */

typedef struct {
    int32_t *ids;
    uint8_t *amask;
    int64_t len;
    char *instruction; /* as the shard holds it (the prompt lower-cases it) */
} prompt;

enum { SLOT_FREE = 0, SLOT_BUSY, SLOT_READY };

typedef struct {
    bv_loader_batch b;
    int64_t seq;
    int state;
    bv_status st;
    char *msg;
} slot;

typedef struct {
    bv_image img;
    uint8_t *jpeg;
    size_t jpeg_cap;
    bv_aug_scratch aug;
} worker_ctx;

struct bv_loader {
    bv_loader_opts o;
    char *dir, *dataset_name;
    char *stats_path; /* the directory's statistics file */
    char *norm_path;  /* where the given statistics came from (errors); NULL: none given */
    int n_shards;
    bv_shard *shards;
    int (*cams)[2]; /* per shard: camera index of primary, wrist */
    int A, P;
    int64_t n_eps, n_rows, n_samples, nb, G;
    int *ep_shard, *ep_prompt;
    int64_t *ep_row, *ep_local, *ep_len, *ep_j, *sample_off; /* ep_j: index within its shard */
    float *raw_act, *raw_prop, *nact, *nprop;
    int n_prompts;
    prompt *prompts;
    int64_t t_max;
    int32_t pad_id;
    bv_action_norm an, pn;   /* what the batches are normalised with: given, or the directory's */
    bv_action_norm dan, dpn; /* the directory's own */

    /* the stream */
    int n_slots;
    slot *slots;
    int64_t next_seq, end_seq, base; /* base: absolute batch number of seq 0 */
    bv_status failed;
    char *fail_msg;

    /* workers */
    int n_threads;
    pthread_t *th;
    worker_ctx *ctx; /* n_threads of them, or 1 for the caller's thread */
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_ready;
    int64_t claim, released, err_seq;
    bool stop, sync_init;
};

void bv_loader_opts_default(bv_loader_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 8;
    o->world_size = 1;
    o->accumulation = 1;
    o->train = true;
    o->shuffle = true;
    o->drop_last = true;
    o->image_size = 224;
    o->n_images = 2;
    o->image_tokens = 256;
    o->chunk = 8;
    o->threads = 2;
    bv_aug_cfg_default(&o->aug);
}

/* ---------------------------------------------------------------- permutation */

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* A keyed bijection of [0, n): a 6-round Feistel network on the smallest 2^(2h) >= n, walked
 * until the value falls inside [0, n) (cycle walking; fewer than 4 steps on average). Random
 * access, no state: any worker computes any position. */
static int64_t feistel(uint64_t key, int64_t n, int64_t i) {
    int bits = 2;
    while (bits < 62 && ((int64_t)1 << bits) < n) bits += 2;
    int half = bits / 2;
    uint64_t mask = ((uint64_t)1 << half) - 1, x = (uint64_t)i;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 6; round++) {
            uint64_t f = mix64(r ^ mix64(key + 0x9e3779b97f4a7c15ull * (uint64_t)(round + 1))) & mask;
            uint64_t nl = r;
            r = l ^ f;
            l = nl;
        }
        x = (l << half) | r;
    } while (x >= (uint64_t)n);
    return (int64_t)x;
}

int64_t bv_loader_permute(const bv_loader *l, int64_t epoch, int64_t pos) {
    BV_ASSERT(pos >= 0 && pos < l->n_samples, "position %lld of %lld samples", (long long)pos, (long long)l->n_samples);
    if (!l->o.shuffle) return pos;
    return feistel(bv_aug_key(l->o.seed, (uint64_t)epoch, 0x5045524dull /* "PERM" */, 0), l->n_samples, pos);
}

void bv_loader_sample_info(const bv_loader *l, int64_t sample, int64_t *episode, int64_t *step) {
    BV_ASSERT(sample >= 0 && sample < l->n_samples, "sample %lld of %lld", (long long)sample, (long long)l->n_samples);
    int64_t lo = 0, hi = l->n_eps; /* last e with sample_off[e] <= sample */
    while (hi - lo > 1) {
        int64_t mid = (lo + hi) / 2;
        if (l->sample_off[mid] <= sample)
            lo = mid;
        else
            hi = mid;
    }
    *episode = lo;
    *step = sample - l->sample_off[lo];
}

/* ---------------------------------------------------------------- building a batch */

static bv_status fail_sample(bv_status st, const bv_loader *l, int64_t e, int64_t t, int64_t epoch, int64_t k) {
    char *msg = bv_xstrdup(bv_error_msg());
    st = bv_error_set(st, "%s (episode %lld, step %lld; epoch %lld, batch %lld of %s)", msg, (long long)e, (long long)t,
                      (long long)epoch, (long long)k, l->dir);
    free(msg);
    return st;
}

static bv_status build_batch(bv_loader *l, worker_ctx *w, int64_t seq, bv_loader_batch *b) {
    const bv_loader_opts *o = &l->o;
    int64_t a = l->base + seq, epoch = a / l->nb, k = a % l->nb, B = o->batch_size;
    /* micro-batch k of the epoch: part k % A of global batch k / A, this rank's block of A parts */
    const int64_t A = o->accumulation, first = (k / A) * l->G + ((int64_t)o->rank * A + k % A) * B;
    int64_t S = o->image_size, img_sz = 3 * S * S;
    b->epoch = epoch;
    b->index = k;
    b->B = B;
    b->T = 0;
    for (int64_t i = 0; i < B; i++) {
        int64_t pos = (first + i) % l->n_samples;
        b->sample[i] = bv_loader_permute(l, epoch, pos);
        bv_loader_sample_info(l, b->sample[i], &b->episode[i], &b->step[i]);
        int64_t len = l->prompts[l->ep_prompt[b->episode[i]]].len;
        if (len > b->T) b->T = len;
    }
    const int64_t T = b->T;
    for (int64_t i = 0; i < B; i++) {
        int64_t e = b->episode[i], t = b->step[i];
        const prompt *p = &l->prompts[l->ep_prompt[e]];
        for (int64_t j = 0; j < T; j++) {
            bool real = j < p->len;
            b->ids_buf[i * T + j] = real ? p->ids[j] : l->pad_id;
            b->attn_buf[i * T + j] = real;
            b->amask_buf[i * T + j] = real ? p->amask[j] : 0;
        }
        int64_t row = l->ep_row[e] + t;
        memcpy(b->prop_buf + i * l->P, l->nprop + row * l->P, (size_t)l->P * sizeof(float));
        memcpy(b->act_buf + i * o->chunk * l->A, l->nact + row * l->A, (size_t)o->chunk * l->A * sizeof(float));
        const bv_shard *sh = &l->shards[l->ep_shard[e]];
        for (int c = 0; c < o->n_images; c++) {
            bv_status st =
                bv_shard_read_rgb(sh, l->cams[l->ep_shard[e]][c], l->ep_local[e] + t, &w->img, &w->jpeg, &w->jpeg_cap);
            if (st) return fail_sample(st, l, e, t, epoch, k);
            bv_aug_params ap;
            if (o->train)
                bv_aug_draw(&o->aug, bv_aug_key(o->seed, (uint64_t)epoch, (uint64_t)b->sample[i], (uint64_t)c), &ap);
            else
                bv_aug_center(&o->aug, &ap);
            bv_aug_apply(w->img.rgb, w->img.w, w->img.h, &ap, (int)S, b->pix_buf + (i * o->n_images + c) * img_sz,
                         &w->aug);
        }
    }
    int64_t s_ids[2] = {B, T}, s_pix[5] = {B, o->n_images, 3, S, S}, s_act[3] = {B, o->chunk, l->A};
    b->input_ids = bv_tensor_make(b->ids_buf, BV_DTYPE_I64, 2, s_ids);
    b->attention_mask = bv_tensor_make(b->attn_buf, BV_DTYPE_U8, 2, s_ids);
    b->action_mask = bv_tensor_make(b->amask_buf, BV_DTYPE_U8, 2, s_ids);
    b->pixel_values = bv_tensor_make(b->pix_buf, BV_DTYPE_F32, 5, s_pix);
    b->proprio = bv_tensor_make2(b->prop_buf, BV_DTYPE_F32, B, l->P);
    b->actions = bv_tensor_make(b->act_buf, BV_DTYPE_F32, 3, s_act);
    return BV_OK;
}

bv_vla_batch bv_loader_batch_vla(const bv_loader_batch *b) {
    return (bv_vla_batch){.input_ids = &b->input_ids,
                          .attention_mask = &b->attention_mask,
                          .pixel_values = &b->pixel_values,
                          .proprio = &b->proprio,
                          .action_mask = &b->action_mask,
                          .actions = &b->actions,
                          .labels = NULL};
}

/* ---------------------------------------------------------------- workers */

static void *worker_main(void *arg) {
    void **pa = arg;
    bv_loader *l = pa[0];
    worker_ctx *w = pa[1];
    free(pa);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* HDF5's error printing is per thread: errors come back as messages */
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !(l->claim < l->end_seq && l->claim < l->released + l->n_slots && l->claim <= l->err_seq))
            pthread_cond_wait(&l->cv_work, &l->mu);
        if (l->stop) break;
        int64_t seq = l->claim++;
        slot *s = &l->slots[seq % l->n_slots];
        s->state = SLOT_BUSY;
        free(s->msg);
        s->msg = NULL;
        pthread_mutex_unlock(&l->mu);
        bv_status st = build_batch(l, w, seq, &s->b);
        char *msg = st ? bv_xstrdup(bv_error_msg()) : NULL;
        pthread_mutex_lock(&l->mu);
        s->seq = seq;
        s->st = st;
        s->msg = msg;
        s->state = SLOT_READY;
        if (st && seq < l->err_seq) l->err_seq = seq;
        pthread_cond_broadcast(&l->cv_ready);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

bv_status bv_loader_next(bv_loader *l, const bv_loader_batch **out) {
    *out = NULL;
    if (l->failed) return bv_error_set(l->failed, "%s", l->fail_msg);
    int64_t seq = l->next_seq;
    if (seq >= l->end_seq) return BV_OK;
    slot *s;
    if (l->n_threads == 0) {
        s = &l->slots[0];
        bv_status st = build_batch(l, &l->ctx[0], seq, &s->b);
        if (st) {
            l->failed = st;
            l->fail_msg = bv_xstrdup(bv_error_msg());
            return st;
        }
    } else {
        pthread_mutex_lock(&l->mu);
        if (seq > l->released) {
            l->released = seq; /* the batch handed out last time goes back to the ring */
            pthread_cond_broadcast(&l->cv_work);
        }
        s = &l->slots[seq % l->n_slots];
        while (!(s->state == SLOT_READY && s->seq == seq)) pthread_cond_wait(&l->cv_ready, &l->mu);
        bv_status st = s->st;
        if (st) {
            l->failed = st;
            l->fail_msg = bv_xstrdup(s->msg ? s->msg : "worker failed");
        }
        pthread_mutex_unlock(&l->mu);
        if (st) return bv_error_set(st, "%s", l->fail_msg);
    }
    l->next_seq++;
    *out = &s->b;
    return BV_OK;
}

/* ---------------------------------------------------------------- opening */

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = bv_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static bv_status json_int(json_t *obj, const char *path, const char *key, int64_t lo, int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo)
        return bv_error_set(BV_ERR_FORMAT, "%s: '%s' missing or not an integer >= %lld", path, key, (long long)lo);
    *out = json_integer_value(v);
    return BV_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bv_status check_opts(const bv_loader_opts *o) {
    if (!o->dir || !o->tok)
        return bv_error_set(BV_ERR_ARG, "loader: the shard directory and the tokenizer are required");
    if (o->batch_size < 1) return bv_error_set(BV_ERR_ARG, "loader: batch_size must be >= 1, got %d", o->batch_size);
    if (o->accumulation < 1)
        return bv_error_set(BV_ERR_ARG, "loader: accumulation must be >= 1, got %d", o->accumulation);
    if (o->world_size < 1 || o->rank < 0 || o->rank >= o->world_size)
        return bv_error_set(BV_ERR_ARG, "loader: rank %d of world size %d", o->rank, o->world_size);
    if (o->image_size < 1 || o->image_size > 4096)
        return bv_error_set(BV_ERR_ARG, "loader: image_size must be in [1, 4096], got %d", o->image_size);
    if (o->n_images < 1 || o->n_images > 2)
        return bv_error_set(BV_ERR_ARG, "loader: n_images must be 1 (primary) or 2 (primary, wrist), got %d",
                            o->n_images);
    if (o->image_tokens < 1)
        return bv_error_set(BV_ERR_ARG, "loader: image_tokens must be >= 1, got %d", o->image_tokens);
    if (o->chunk < 1) return bv_error_set(BV_ERR_ARG, "loader: chunk must be >= 1, got %d", o->chunk);
    if (o->threads < 0 || o->threads > 256)
        return bv_error_set(BV_ERR_ARG, "loader: threads must be in [0, 256], got %d", o->threads);
    if (o->prefetch < 0) return bv_error_set(BV_ERR_ARG, "loader: prefetch must be >= 0, got %d", o->prefetch);
    if (o->epochs < 0 || o->start_epoch < 0 || o->start_batch < 0)
        return bv_error_set(BV_ERR_ARG, "loader: epochs, start_epoch and start_batch must be >= 0");
    if (!o->action_norm != !o->proprio_norm)
        return bv_error_set(BV_ERR_ARG, "loader: action_norm and proprio_norm are given together or not at all");
    return bv_aug_cfg_check(&o->aug);
}

/* Given statistics normalise the dimensions the directory's statistics do (the same action schema). */
static bv_status check_mask(const bv_loader *l, const char *key, const bv_action_norm *given,
                            const bv_action_norm *own) {
    for (int d = 0; d < own->dim; d++)
        if (given->mask[d] != own->mask[d])
            return bv_error_set(BV_ERR_ARG,
                                "%s: %s dimension %d is %s (mask %s), but %s %s (mask %s): statistics of another %s "
                                "schema", l->norm_path, key, d, given->mask[d] ? "normalised" : "left as it is",
                                given->mask[d] ? "true" : "false", l->stats_path,
                                own->mask[d] ? "normalises it" : "leaves it as it is", own->mask[d] ? "true" : "false",
                                key);
    return BV_OK;
}

/* manifest.json, the shards, the statistics: fills the dataset part of l. */
static bv_status open_dataset(bv_loader *l) {
    const bv_loader_opts *o = &l->o;
    char *mpath = path_join(l->dir, "manifest.json");
    json_error_t je;
    json_t *m = json_load_file(mpath, 0, &je);
    bv_status st = BV_OK;
    int64_t *lens = NULL;
#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        st = bv_error_set(__VA_ARGS__);                                                                                \
        goto done;                                                                                                     \
    } while (0)
#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        if ((st = (x))) goto done;                                                                                     \
    } while (0)
    if (!m) {
        FILE *f = fopen(mpath, "rb");
        if (!f)
            FAIL(BV_ERR_IO,
                 "%s: no manifest.json (not a shard directory written by `bitvla convert`, or a conversion "
                 "that did not finish)",
                 l->dir);
        fclose(f);
        FAIL(BV_ERR_FORMAT, "%s: line %d: %s", mpath, je.line, je.text);
    }
    json_t *fmt = json_object_get(m, "format");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "bitvla-shards"))
        FAIL(BV_ERR_FORMAT, "%s: 'format' is not \"bitvla-shards\"", mpath);
    int64_t ver, A, P, n_eps;
    TRY(json_int(m, mpath, "version", 0, &ver));
    if (ver != BV_SHARD_VERSION)
        FAIL(BV_ERR_UNSUPPORTED, "%s: shard directory version %lld (this build reads %d)", mpath, (long long)ver,
             BV_SHARD_VERSION);
    TRY(json_int(m, mpath, "action_dim", 1, &A));
    TRY(json_int(m, mpath, "proprio_dim", 1, &P));
    TRY(json_int(m, mpath, "num_episodes", 1, &n_eps));
    if (A > BV_ACTION_NORM_MAX_DIM || P > BV_ACTION_NORM_MAX_DIM)
        FAIL(BV_ERR_UNSUPPORTED, "%s: action_dim %lld / proprio_dim %lld above %d", mpath, (long long)A, (long long)P,
             BV_ACTION_NORM_MAX_DIM);
    l->A = (int)A, l->P = (int)P, l->n_eps = n_eps;
    if (l->norm_path && (l->an.dim != A || l->pn.dim != P))
        FAIL(BV_ERR_SHAPE,
             "%s: statistics for %d action and %d proprio dimensions, but %s has 'action_dim' %lld and 'proprio_dim' "
             "%lld (statistics of another robot or dataset)",
             l->norm_path, l->an.dim, l->pn.dim, mpath, (long long)A, (long long)P);
    json_t *dn = json_object_get(m, "dataset_name");
    if (!json_is_string(dn)) FAIL(BV_ERR_FORMAT, "%s: 'dataset_name' missing", mpath);
    if (!l->dataset_name) l->dataset_name = bv_xstrdup(json_string_value(dn));
    json_t *el = json_object_get(m, "episode_lengths"), *sh = json_object_get(m, "shards");
    if (!json_is_array(el) || json_array_size(el) != (size_t)n_eps)
        FAIL(BV_ERR_FORMAT, "%s: 'episode_lengths' must list the %lld episodes", mpath, (long long)n_eps);
    if (!json_is_array(sh) || json_array_size(sh) == 0) FAIL(BV_ERR_FORMAT, "%s: 'shards' missing or empty", mpath);
    lens = bv_xmalloc((size_t)n_eps * sizeof *lens);
    for (int64_t e = 0; e < n_eps; e++) {
        json_t *v = json_array_get(el, (size_t)e);
        if (!json_is_integer(v) || json_integer_value(v) < 1)
            FAIL(BV_ERR_FORMAT, "%s: 'episode_lengths[%lld]' is not a positive integer", mpath, (long long)e);
        lens[e] = json_integer_value(v);
    }

    /* shards */
    l->n_shards = (int)json_array_size(sh);
    l->shards = bv_xcalloc((size_t)l->n_shards, sizeof *l->shards);
    l->cams = bv_xcalloc((size_t)l->n_shards, sizeof *l->cams);
    l->ep_shard = bv_xmalloc((size_t)n_eps * sizeof *l->ep_shard);
    l->ep_row = bv_xmalloc((size_t)n_eps * sizeof *l->ep_row);
    l->ep_local = bv_xmalloc((size_t)n_eps * sizeof *l->ep_local);
    l->ep_len = bv_xmalloc((size_t)n_eps * sizeof *l->ep_len);
    l->ep_j = bv_xmalloc((size_t)n_eps * sizeof *l->ep_j);
    int64_t e0 = 0, rows = 0;
    for (int64_t e = 0; e < n_eps; e++) rows += lens[e];
    l->n_rows = rows;
    l->raw_act = bv_xmalloc((size_t)rows * A * sizeof(float));
    l->raw_prop = bv_xmalloc((size_t)rows * P * sizeof(float));
    rows = 0;
    for (int i = 0; i < l->n_shards; i++) {
        json_t *s = json_array_get(sh, (size_t)i), *f = json_object_get(s, "file");
        int64_t eps, tr;
        if (!json_is_string(f)) FAIL(BV_ERR_FORMAT, "%s: 'shards[%d].file' missing", mpath, i);
        TRY(json_int(s, mpath, "episodes", 1, &eps));
        TRY(json_int(s, mpath, "transitions", 1, &tr));
        char *p = path_join(l->dir, json_string_value(f));
        st = bv_shard_open(&l->shards[i], p);
        free(p);
        if (st) goto done;
        bv_shard *bs = &l->shards[i];
        if (bs->n_episodes != eps || bs->n_steps != tr || e0 + eps > n_eps)
            FAIL(BV_ERR_FORMAT, "%s: %lld episodes and %lld steps; the manifest says %lld and %lld", bs->path,
                 (long long)bs->n_episodes, (long long)bs->n_steps, (long long)eps, (long long)tr);
        if (bs->action_dim != A || bs->proprio_dim != P)
            FAIL(BV_ERR_FORMAT, "%s: action/proprio widths %d/%d; the manifest says %lld/%lld", bs->path,
                 bs->action_dim, bs->proprio_dim, (long long)A, (long long)P);
        const char *names[2] = {"primary", "wrist"};
        for (int c = 0; c < o->n_images; c++) {
            l->cams[i][c] = bv_shard_find_camera(bs, names[c]);
            if (l->cams[i][c] < 0)
                FAIL(BV_ERR_FORMAT, "%s: no '%s' camera (the loader was asked for %d image%s)", bs->path, names[c],
                     o->n_images, o->n_images > 1 ? "s" : "");
        }
        for (int64_t j = 0; j < eps; j++) {
            int64_t e = e0 + j, len = bs->episode_offsets[j + 1] - bs->episode_offsets[j];
            if (len != lens[e])
                FAIL(BV_ERR_FORMAT, "%s: episode %lld has %lld steps; the manifest says %lld", bs->path, (long long)e,
                     (long long)len, (long long)lens[e]);
            l->ep_shard[e] = i;
            l->ep_local[e] = bs->episode_offsets[j];
            l->ep_row[e] = rows + bs->episode_offsets[j];
            l->ep_len[e] = len;
            l->ep_j[e] = j;
        }
        TRY(bv_shard_read_action(bs, 0, bs->n_steps, l->raw_act + rows * A));
        TRY(bv_shard_read_proprio(bs, 0, bs->n_steps, l->raw_prop + rows * P));
        rows += bs->n_steps;
        e0 += eps;
    }
    if (e0 != n_eps)
        FAIL(BV_ERR_FORMAT, "%s: the shards hold %lld episodes; 'num_episodes' says %lld", mpath, (long long)e0,
             (long long)n_eps);
    for (int64_t r = 0; r < rows * A; r++)
        if (!isfinite(l->raw_act[r]))
            FAIL(BV_ERR_FORMAT, "%s: a non-finite action (row %lld)", l->dir, (long long)(r / A));
    for (int64_t r = 0; r < rows * P; r++)
        if (!isfinite(l->raw_prop[r]))
            FAIL(BV_ERR_FORMAT, "%s: a non-finite proprio value (row %lld)", l->dir, (long long)(r / P));

    /* statistics */
    json_t *sf = json_object_get(m, "statistics");
    l->stats_path = path_join(l->dir, json_is_string(sf) ? json_string_value(sf) : "dataset_statistics.json");
    TRY(bv_action_norm_read(l->stats_path, l->dataset_name, "action", &l->dan));
    TRY(bv_action_norm_read(l->stats_path, l->dataset_name, "proprio", &l->dpn));
    if (l->dan.dim != A || l->dpn.dim != P)
        FAIL(BV_ERR_FORMAT, "%s: statistics of widths %d (action) and %d (proprio); the data has %lld and %lld",
             l->stats_path, l->dan.dim, l->dpn.dim, (long long)A, (long long)P);
    if (l->norm_path) {
        TRY(check_mask(l, "action", &l->an, &l->dan));
        TRY(check_mask(l, "proprio", &l->pn, &l->dpn));
    } else {
        l->an = l->dan, l->pn = l->dpn;
    }
    l->nact = bv_xmalloc((size_t)rows * A * sizeof(float));
    l->nprop = bv_xmalloc((size_t)rows * P * sizeof(float));
    bv_action_norm_apply(&l->an, l->raw_act, rows, l->nact);
    bv_action_norm_apply(&l->pn, l->raw_prop, rows, l->nprop);
done:
#undef FAIL
#undef TRY
    free(lens);
    free(mpath);
    if (m) json_decref(m);
    return st;
}

/* One prompt per distinct instruction. */
static bv_status make_prompts(bv_loader *l) {
    const bv_loader_opts *o = &l->o;
    l->pad_id = bv_tok_token_id(o->tok, "<|pad|>");
    if (l->pad_id < 0)
        return bv_error_set(BV_ERR_ARG, "loader: the tokenizer has no <|pad|> token (apply BitVLA's edits, "
                                        "bv_tok_bitvla_edit / --bitvla)");
    char **ins = bv_xcalloc((size_t)l->n_eps, sizeof *ins);
    bv_status st = BV_OK;
    for (int64_t e = 0; e < l->n_eps && !st; e++) {
        st = bv_shard_read_instruction(&l->shards[l->ep_shard[e]], l->ep_j[e], &ins[e]);
    }
    char **uniq = NULL;
    if (!st) {
        uniq = bv_xmalloc((size_t)l->n_eps * sizeof *uniq);
        memcpy(uniq, ins, (size_t)l->n_eps * sizeof *uniq);
        qsort(uniq, (size_t)l->n_eps, sizeof *uniq, cmp_str);
        int n = 0;
        for (int64_t e = 0; e < l->n_eps; e++)
            if (n == 0 || strcmp(uniq[n - 1], uniq[e])) uniq[n++] = uniq[e];
        l->n_prompts = n;
        l->prompts = bv_xcalloc((size_t)n, sizeof *l->prompts);
        bv_tok_action_cfg tc = bv_tok_action_cfg_default();
        tc.n_images = o->n_images;
        tc.image_tokens = o->image_tokens;
        tc.num_actions_chunk = o->chunk;
        tc.action_dim = l->A;
        for (int i = 0; i < n && !st; i++) {
            bv_tok_action_seq seq;
            if ((st = bv_tok_action_prompt(o->tok, uniq[i], &tc, NULL, &seq))) {
                char *msg = bv_xstrdup(bv_error_msg());
                st = bv_error_set(st, "%s: instruction \"%s\": %s", l->dir, uniq[i], msg);
                free(msg);
                break;
            }
            prompt *p = &l->prompts[i];
            p->instruction = bv_xstrdup(uniq[i]);
            p->len = seq.len;
            p->ids = bv_xmalloc((size_t)seq.len * sizeof *p->ids);
            p->amask = bv_xmalloc((size_t)seq.len);
            memcpy(p->ids, seq.ids, (size_t)seq.len * sizeof *p->ids);
            memcpy(p->amask, seq.action_mask, (size_t)seq.len);
            if (seq.len > l->t_max) l->t_max = seq.len;
            bv_tok_action_seq_free(&seq);
        }
        l->ep_prompt = bv_xmalloc((size_t)l->n_eps * sizeof *l->ep_prompt);
        for (int64_t e = 0; !st && e < l->n_eps; e++) {
            int lo = 0, hi = n - 1;
            while (lo < hi) {
                int mid = (lo + hi) / 2;
                if (strcmp(uniq[mid], ins[e]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            l->ep_prompt[e] = lo;
        }
    }
    for (int64_t e = 0; e < l->n_eps; e++) free(ins[e]);
    free(ins);
    free(uniq);
    return st;
}

static void batch_alloc(bv_loader *l, bv_loader_batch *b) {
    const bv_loader_opts *o = &l->o;
    size_t B = (size_t)o->batch_size, S = (size_t)o->image_size;
    b->ids_buf = bv_xmalloc(B * (size_t)l->t_max * sizeof *b->ids_buf);
    b->attn_buf = bv_xmalloc(B * (size_t)l->t_max);
    b->amask_buf = bv_xmalloc(B * (size_t)l->t_max);
    b->pix_buf = bv_aligned_alloc(B * (size_t)o->n_images * 3 * S * S * sizeof(float));
    b->prop_buf = bv_xmalloc(B * (size_t)l->P * sizeof(float));
    b->act_buf = bv_xmalloc(B * (size_t)o->chunk * l->A * sizeof(float));
    b->sample = bv_xmalloc(B * sizeof(int64_t));
    b->episode = bv_xmalloc(B * sizeof(int64_t));
    b->step = bv_xmalloc(B * sizeof(int64_t));
}

static void batch_free(bv_loader_batch *b) {
    free(b->ids_buf);
    free(b->attn_buf);
    free(b->amask_buf);
    bv_aligned_free(b->pix_buf);
    free(b->prop_buf);
    free(b->act_buf);
    free(b->sample);
    free(b->episode);
    free(b->step);
}

bv_status bv_loader_open(bv_loader **out, const bv_loader_opts *o) {
    *out = NULL;
    bv_status st = check_opts(o);
    if (st) return st;
    bv_loader *l = bv_xcalloc(1, sizeof *l);
    l->o = *o;
    l->dir = bv_xstrdup(o->dir);
    l->o.dir = l->dir;
    l->dataset_name = o->dataset_name ? bv_xstrdup(o->dataset_name) : NULL;
    l->o.dataset_name = NULL; /* the caller's strings and statistics are not kept */
    if (o->action_norm) {
        l->an = *o->action_norm, l->pn = *o->proprio_norm;
        l->norm_path = bv_xstrdup(o->norm_path ? o->norm_path : "the given statistics");
    }
    l->o.action_norm = l->o.proprio_norm = NULL;
    l->o.norm_path = NULL;
    if ((st = open_dataset(l)) || (st = make_prompts(l))) goto fail;

    /* samples: start steps whose chunk stays inside the episode */
    l->sample_off = bv_xmalloc((size_t)(l->n_eps + 1) * sizeof *l->sample_off);
    l->sample_off[0] = 0;
    for (int64_t e = 0; e < l->n_eps; e++)
        l->sample_off[e + 1] = l->sample_off[e] + BV_MAX(0, l->ep_len[e] - o->chunk + 1);
    l->n_samples = l->sample_off[l->n_eps];
    if (l->n_samples == 0) {
        st = bv_error_set(BV_ERR_ARG, "%s: no samples: every episode is shorter than the action chunk (%d steps)",
                          l->dir, o->chunk);
        goto fail;
    }
    l->G = (int64_t)o->batch_size * o->accumulation * o->world_size;
    l->nb = (o->drop_last ? l->n_samples / l->G : (l->n_samples + l->G - 1) / l->G) * o->accumulation;
    if (l->nb == 0) {
        st = bv_error_set(BV_ERR_ARG,
                          "%s: %lld samples make no global batch of %lld (batch %d x accumulation %d x %d ranks) with "
                          "drop_last", l->dir, (long long)l->n_samples, (long long)l->G, o->batch_size,
                          o->accumulation, o->world_size);
        goto fail;
    }
    l->base = o->start_epoch * l->nb + o->start_batch;
    l->end_seq = o->epochs ? BV_MAX(0, o->epochs * l->nb - l->base) : INT64_MAX;

    l->n_threads = o->threads;
    l->n_slots = o->threads ? (o->prefetch ? o->prefetch : 2 * o->threads) + 1 : 1;
    l->slots = bv_xcalloc((size_t)l->n_slots, sizeof *l->slots);
    for (int i = 0; i < l->n_slots; i++) batch_alloc(l, &l->slots[i].b);
    l->ctx = bv_xcalloc((size_t)BV_MAX(1, l->n_threads), sizeof *l->ctx);
    l->err_seq = INT64_MAX;
    if (l->n_threads) {
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv_work, NULL);
        pthread_cond_init(&l->cv_ready, NULL);
        l->sync_init = true;
        l->th = bv_xcalloc((size_t)l->n_threads, sizeof *l->th);
        for (int i = 0; i < l->n_threads; i++) {
            void **arg = bv_xmalloc(2 * sizeof *arg);
            arg[0] = l, arg[1] = &l->ctx[i];
            if (pthread_create(&l->th[i], NULL, worker_main, arg)) {
                free(arg);
                l->n_threads = i; /* join the ones started */
                st = bv_error_set(BV_ERR_INTERNAL, "loader: cannot start prefetch thread %d", i);
                goto fail;
            }
        }
    }
    *out = l;
    return BV_OK;
fail:
    bv_loader_free(l);
    return st;
}

void bv_loader_free(bv_loader *l) {
    if (!l) return;
    if (l->sync_init) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_broadcast(&l->cv_work);
        pthread_mutex_unlock(&l->mu);
        for (int i = 0; i < l->n_threads; i++) pthread_join(l->th[i], NULL);
        pthread_cond_destroy(&l->cv_work);
        pthread_cond_destroy(&l->cv_ready);
        pthread_mutex_destroy(&l->mu);
    }
    free(l->th);
    for (int i = 0; l->ctx && i < BV_MAX(1, l->o.threads); i++) {
        bv_image_free(&l->ctx[i].img);
        free(l->ctx[i].jpeg);
        bv_aug_scratch_free(&l->ctx[i].aug);
    }
    free(l->ctx);
    for (int i = 0; i < l->n_slots; i++) {
        batch_free(&l->slots[i].b);
        free(l->slots[i].msg);
    }
    free(l->slots);
    for (int i = 0; i < l->n_shards; i++) bv_shard_close(&l->shards[i]);
    free(l->shards);
    free(l->cams);
    for (int i = 0; i < l->n_prompts; i++) {
        free(l->prompts[i].ids);
        free(l->prompts[i].amask);
        free(l->prompts[i].instruction);
    }
    free(l->prompts);
    free(l->ep_shard);
    free(l->ep_prompt);
    free(l->ep_row);
    free(l->ep_local);
    free(l->ep_len);
    free(l->ep_j);
    free(l->sample_off);
    free(l->raw_act);
    free(l->raw_prop);
    free(l->nact);
    free(l->nprop);
    free(l->fail_msg);
    free(l->dataset_name);
    free(l->stats_path);
    free(l->norm_path);
    free(l->dir);
    free(l);
}

/* ---------------------------------------------------------------- accessors */

int64_t bv_loader_num_samples(const bv_loader *l) { return l->n_samples; }
int64_t bv_loader_num_episodes(const bv_loader *l) { return l->n_eps; }
int64_t bv_loader_batches_per_epoch(const bv_loader *l) { return l->nb; }
int bv_loader_action_dim(const bv_loader *l) { return l->A; }
int bv_loader_proprio_dim(const bv_loader *l) { return l->P; }
const char *bv_loader_dataset_name(const bv_loader *l) { return l->dataset_name; }
const bv_action_norm *bv_loader_action_norm(const bv_loader *l) { return &l->an; }
const bv_action_norm *bv_loader_proprio_norm(const bv_loader *l) { return &l->pn; }
const bv_action_norm *bv_loader_dir_action_norm(const bv_loader *l) { return &l->dan; }
const bv_action_norm *bv_loader_dir_proprio_norm(const bv_loader *l) { return &l->dpn; }
const char *bv_loader_statistics_path(const bv_loader *l) { return l->stats_path; }

int64_t bv_loader_episode_length(const bv_loader *l, int64_t episode) {
    BV_ASSERT(episode >= 0 && episode < l->n_eps, "episode %lld of %lld", (long long)episode, (long long)l->n_eps);
    return l->ep_len[episode];
}

const char *bv_loader_episode_instruction(const bv_loader *l, int64_t episode) {
    BV_ASSERT(episode >= 0 && episode < l->n_eps, "episode %lld of %lld", (long long)episode, (long long)l->n_eps);
    return l->prompts[l->ep_prompt[episode]].instruction;
}

void bv_loader_episode_raw(const bv_loader *l, int64_t episode, const float **action, const float **proprio) {
    BV_ASSERT(episode >= 0 && episode < l->n_eps, "episode %lld of %lld", (long long)episode, (long long)l->n_eps);
    *action = l->raw_act + l->ep_row[episode] * l->A;
    *proprio = l->raw_prop + l->ep_row[episode] * l->P;
}
