/* test_loader.c - the data loader (data/loader.h) on a small dataset made by the project's own
 * path: `bitvla synth` (6 episodes, 32x32 cameras, 4 tasks so instructions repeat) converted with
 * the `libero` schema into JPEG shards (2 episodes per shard) and raw-pixel shards, and a tiny
 * byte-level BPE tokenizer with BitVLA's tokens. Checks:
 *  - samples: counts, no chunk crosses an episode end, the last valid start is used, the actions
 *    and proprio of each row are the episode's own, normalised;
 *  - BOUNDS_Q99 normalisation against the formula, the gripper mask, dimensions with min == max,
 *    the inverse round trip, statistics errors; given statistics (another dataset's, as held-out
 *    data is normalised with the training data's) used instead of the directory's, and refused
 *    when their widths or masks do not fit, naming both files;
 *  - the prompt of each row: the tokenizer's action prompt of its episode's instruction, image /
 *    proprio / action token counts, masks, right padding with <|pad|>; the batch passes the tiny
 *    model's batch check and runs forward + backward;
 *  - determinism across runs and across prefetch thread counts (0, 1, 3; several queue depths);
 *  - ranks: disjoint slices of each global batch, full coverage of an epoch, augmentation
 *    independent of the rank; epochs reshuffle (order and augmentation), resume, epoch limit;
 *  - evaluation mode: the centre crop, the same every epoch; JPEG and raw shards give the same
 *    bits;
 *  - errors: missing manifest, corrupt shard file, corrupt JPEG frame (reported through the
 *    prefetch threads, naming the file and the episode), no <|pad|>, batch larger than an epoch.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "data/convert.h"
#include "data/loader.h"
#include "data/shards.h"
#include "data/synth.h"
#include "models/build.h"
#include "tests/util/testutil.h"

#define N_EPS 6
#define IMG 28      /* model resolution in most tests (small: the tests run under ASan too) */
#define IMG_TOK 4   /* image tokens per image there */
#define TINY_IMG 56 /* the tiny preset's resolution and tokens (the model test) */
#define TINY_TOK 16

typedef struct {
    char root[256], rlds[300], jpeg[300], raw[300];
    bv_tok *tok;
} fixture;

static void sh(const char *cmd) {
    if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static void expect_in(const char *msg, const char *want) {
    if (!strstr(msg, want)) fail_msg("message \"%s\" does not mention \"%s\"", msg, want);
}

static void convert(const char *src, const char *dst, int images) {
    bv_schema schema;
    if (bv_schema_load(&schema, "libero")) fail_msg("%s", bv_error_msg());
    bv_convert_opts co = {.out_dir = dst, .images = images, .episodes_per_shard = 2};
    if (bv_convert_rlds(src, &schema, &co)) fail_msg("%s", bv_error_msg());
    bv_schema_free(&schema);
}

static int setup(void **state) {
    fixture *f = bv_xcalloc(1, sizeof *f);
    snprintf(f->root, sizeof f->root, "/tmp/bv_test_loader_%d", (int)getpid());
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", f->root, f->root);
    sh(cmd);
    snprintf(f->rlds, sizeof f->rlds, "%s/rlds", f->root);
    snprintf(f->jpeg, sizeof f->jpeg, "%s/jpeg", f->root);
    snprintf(f->raw, sizeof f->raw, "%s/raw", f->root);
    bv_synth_opts so;
    bv_synth_opts_default(&so);
    so.episodes = N_EPS;
    so.image_size = 32;
    so.tasks = 4;
    so.seed = 3;
    so.quiet = true;
    if (bv_synth_write_rlds(f->rlds, &so, NULL)) fail_msg("%s", bv_error_msg());
    setenv("BV_PROGRESS", "0", 1);
    convert(f->rlds, f->jpeg, BV_IMAGES_JPEG);
    convert(f->rlds, f->raw, BV_IMAGES_RAW);
    /* a tiny tokenizer that knows the words of the prompts but not all object and destination
     * names, so the prompts of different instructions have different lengths */
    char text[8192] = "";
    for (int rep = 0; rep < 3; rep++)
        strcat(text, BV_TOK_SYSTEM_PROMPT " User: What action should the robot take to pick up the red cube and "
                                          "place it on the? Assistant: ");
    bv_tok_train_opts to = {.vocab_size = 300, .min_frequency = 2, .bitvla = 1};
    if (bv_tok_train(&f->tok, text, strlen(text), &to)) fail_msg("%s", bv_error_msg());
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->root);
    sh(cmd);
    bv_tok_free(f->tok);
    free(f);
    return 0;
}

static bv_loader_opts base_opts(const fixture *f, const char *dir) {
    bv_loader_opts o;
    bv_loader_opts_default(&o);
    o.dir = dir;
    o.tok = f->tok;
    o.batch_size = 4;
    o.image_size = IMG;
    o.image_tokens = IMG_TOK;
    o.seed = 11;
    return o;
}

static bv_loader *open_ok(const bv_loader_opts *o) {
    bv_loader *l = NULL;
    if (bv_loader_open(&l, o)) fail_msg("bv_loader_open: %s", bv_error_msg());
    return l;
}

static const bv_loader_batch *next_ok(bv_loader *l) {
    const bv_loader_batch *b = NULL;
    if (bv_loader_next(l, &b)) fail_msg("bv_loader_next: %s", bv_error_msg());
    return b;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *c = p;
    for (size_t i = 0; i < n; i++) h = (h ^ c[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t batch_hash(const bv_loader_batch *b) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, &b->T, sizeof b->T);
    h = fnv(h, &b->epoch, sizeof b->epoch);
    h = fnv(h, &b->index, sizeof b->index);
    h = fnv(h, b->input_ids.data, bv_tensor_nbytes(&b->input_ids));
    h = fnv(h, b->attention_mask.data, bv_tensor_nbytes(&b->attention_mask));
    h = fnv(h, b->action_mask.data, bv_tensor_nbytes(&b->action_mask));
    h = fnv(h, b->pixel_values.data, bv_tensor_nbytes(&b->pixel_values));
    h = fnv(h, b->proprio.data, bv_tensor_nbytes(&b->proprio));
    h = fnv(h, b->actions.data, bv_tensor_nbytes(&b->actions));
    h = fnv(h, b->sample, (size_t)b->B * sizeof *b->sample);
    return h;
}

/* the rows' content alone (not the batch index) */
static uint64_t content_hash(const bv_loader_batch *b) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, &b->epoch, sizeof b->epoch);
    h = fnv(h, b->input_ids.data, bv_tensor_nbytes(&b->input_ids));
    h = fnv(h, b->pixel_values.data, bv_tensor_nbytes(&b->pixel_values));
    h = fnv(h, b->proprio.data, bv_tensor_nbytes(&b->proprio));
    h = fnv(h, b->actions.data, bv_tensor_nbytes(&b->actions));
    h = fnv(h, b->sample, (size_t)b->B * sizeof *b->sample);
    return h;
}

/* Hashes of the first n batches of a stream (n_out: how many there were). */
static uint64_t *stream_hashes(const bv_loader_opts *o, int n, int *n_out) {
    bv_loader *l = open_ok(o);
    uint64_t *h = bv_xcalloc((size_t)n, sizeof *h);
    int k = 0;
    for (; k < n; k++) {
        const bv_loader_batch *b = next_ok(l);
        if (!b) break;
        h[k] = batch_hash(b);
    }
    *n_out = k;
    bv_loader_free(l);
    return h;
}

static int64_t total_samples(const bv_loader *l, int chunk) {
    int64_t n = 0;
    for (int64_t e = 0; e < bv_loader_num_episodes(l); e++) n += BV_MAX(0, bv_loader_episode_length(l, e) - chunk + 1);
    return n;
}

/* ---- samples and chunks ---- */

static void test_samples_and_chunks(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.drop_last = false;
    o.epochs = 1;
    bv_loader *l = open_ok(&o);
    assert_int_equal(bv_loader_num_episodes(l), N_EPS);
    assert_int_equal(bv_loader_num_samples(l), total_samples(l, 8));
    assert_int_equal(bv_loader_action_dim(l), 7);
    assert_int_equal(bv_loader_proprio_dim(l), 8);
    int64_t N = bv_loader_num_samples(l);
    assert_int_equal(bv_loader_batches_per_epoch(l), (N + 3) / 4);
    uint8_t *seen = bv_xcalloc((size_t)N, 1);
    bool last_start_used[N_EPS] = {0};
    const bv_action_norm *an = bv_loader_action_norm(l), *pn = bv_loader_proprio_norm(l);
    float want_a[8 * 7], want_p[8];
    const bv_loader_batch *b;
    int64_t nb = 0;
    while ((b = next_ok(l))) {
        assert_int_equal(b->index, nb);
        nb++;
        const float *act = b->actions.data, *prop = b->proprio.data;
        for (int64_t i = 0; i < b->B; i++) {
            int64_t e = b->episode[i], t = b->step[i], L = bv_loader_episode_length(l, e);
            /* the chunk t .. t+7 stays inside the episode */
            if (t < 0 || t + 8 > L)
                fail_msg("batch %lld row %lld: episode %lld step %lld: chunk ends at %lld, episode has %lld steps",
                         (long long)b->index, (long long)i, (long long)e, (long long)t, (long long)(t + 7),
                         (long long)L);
            int64_t e2, t2;
            bv_loader_sample_info(l, b->sample[i], &e2, &t2);
            assert_true(e2 == e && t2 == t);
            if (t == L - 8) last_start_used[e] = true;
            if (b->index < (N / 4)) { /* full batches: no wrap-around yet */
                if (seen[b->sample[i]]) fail_msg("sample %lld twice in one epoch", (long long)b->sample[i]);
            }
            seen[b->sample[i]] = 1;
            /* its own actions and proprio, normalised */
            const float *ra, *rp;
            bv_loader_episode_raw(l, e, &ra, &rp);
            bv_action_norm_apply(an, ra + t * 7, 8, want_a);
            bv_action_norm_apply(pn, rp + t * 8, 1, want_p);
            assert_memory_equal(act + i * 56, want_a, sizeof want_a);
            assert_memory_equal(prop + i * 8, want_p, sizeof want_p);
        }
    }
    assert_int_equal(nb, (N + 3) / 4);
    for (int64_t s = 0; s < N; s++)
        if (!seen[s]) fail_msg("sample %lld never loaded in an epoch without drop_last", (long long)s);
    for (int e = 0; e < N_EPS; e++) assert_true(last_start_used[e]);
    free(seen);
    bv_loader_free(l);
}

/* ---- normalisation ---- */

static void test_normalisation(void **state) {
    fixture *f = *state;
    char path[400];
    snprintf(path, sizeof path, "%s/dataset_statistics.json", f->jpeg);
    bv_action_norm an;
    if (bv_action_norm_read(path, NULL, "action", &an)) fail_msg("%s", bv_error_msg());
    assert_int_equal(an.dim, 7);
    for (int d = 0; d < 6; d++) assert_true(an.mask[d]);
    assert_false(an.mask[6]); /* the gripper stays as it is */
    bv_action_norm pn;
    if (bv_action_norm_read(path, "bitvla_synth", "proprio", &pn)) fail_msg("%s", bv_error_msg());
    assert_int_equal(pn.dim, 8);
    for (int d = 0; d < 8; d++) assert_true(pn.mask[d]);

    /* the formula, on values inside, at and outside [q01, q99] */
    bv_rng r = {5};
    const int rows = 300;
    float *x = bv_xmalloc(rows * 7 * sizeof(float)), *y = bv_xmalloc(rows * 7 * sizeof(float)),
          *z = bv_xmalloc(rows * 7 * sizeof(float));
    for (int i = 0; i < rows; i++)
        for (int d = 0; d < 7; d++) {
            double lo = an.q01[d], hi = an.q99[d], u = bv_rng_uniform(&r);
            x[i * 7 + d] = (float)(i < 200 ? lo + u * (hi - lo) : lo - 0.5 * (hi - lo) + u * 2.0 * (hi - lo));
        }
    x[0] = (float)an.q01[0], x[1] = (float)an.q99[1];
    bv_action_norm_apply(&an, x, rows, y);
    for (int i = 0; i < rows; i++)
        for (int d = 0; d < 7; d++) {
            double v = x[i * 7 + d], want = v;
            if (d < 6) {
                want = 2.0 * (v - an.q01[d]) / (an.q99[d] - an.q01[d] + 1e-8) - 1.0;
                want = fmax(-1.0, fmin(1.0, want));
            }
            if (fabs(y[i * 7 + d] - want) > 1e-6 * (1 + fabs(want)))
                fail_msg("normalise row %d dim %d: x %.9g -> %.9g, want %.9g", i, d, v, y[i * 7 + d], want);
        }
    assert_true(fabsf(y[0] + 1.0f) < 1e-6f && fabsf(y[1] - 1.0f) < 1e-6f);
    /* the inverse: back to x inside [q01, q99], to the bound outside; in place */
    memcpy(z, y, rows * 7 * sizeof(float));
    bv_action_norm_invert(&an, z, rows, z);
    for (int i = 0; i < rows; i++)
        for (int d = 0; d < 7; d++) {
            double v = x[i * 7 + d], lo = an.q01[d], hi = an.q99[d];
            double want = d < 6 ? fmax(lo, fmin(hi, v)) : v;
            if (fabs(z[i * 7 + d] - want) > 1e-6 * (hi - lo) + 1e-7 * fabs(want))
                fail_msg("round trip row %d dim %d: %.9g -> %.9g -> %.9g, want %.9g", i, d, v, y[i * 7 + d],
                         z[i * 7 + d], want);
        }
    /* a dimension with min == max (an unused one) becomes 0; masked, its inverse is the constant */
    bv_action_norm c = an;
    c.min[2] = c.max[2] = c.q01[2] = c.q99[2] = 0.25;
    c.min[6] = c.max[6] = 1.0; /* unmasked and constant */
    float row[7] = {0.1f, 0.2f, 0.25f, 0.3f, 0.4f, 0.5f, 1.0f}, nr[7], back[7];
    bv_action_norm_apply(&c, row, 1, nr);
    assert_true(nr[2] == 0.0f && nr[6] == 0.0f);
    bv_action_norm_invert(&c, nr, 1, back);
    assert_true(fabsf(back[2] - 0.25f) < 1e-7f);
    free(x);
    free(y);
    free(z);

    /* errors name the file and what is missing */
    assert_int_equal(bv_action_norm_read(path, "no_such_set", "action", &c), BV_ERR_FORMAT);
    expect_in(bv_error_msg(), "no_such_set");
    expect_in(bv_error_msg(), path);
    assert_int_equal(bv_action_norm_read(path, NULL, "gripper", &c), BV_ERR_FORMAT);
    expect_in(bv_error_msg(), "gripper");
    assert_int_equal(bv_action_norm_read("/nonexistent/stats.json", NULL, "action", &c), BV_ERR_IO);
    expect_in(bv_error_msg(), "/nonexistent/stats.json");
}

/* Statistics given to the loader (opts.action_norm, proprio_norm) normalise the batches instead
 * of the directory's: each value checked against BOUNDS_Q99 computed here from the given q01/q99. */
static void test_given_statistics(void **state) {
    fixture *f = *state;
    /* another dataset's: the directory's bounds moved by a quarter of their width and narrowed */
    char path[400];
    snprintf(path, sizeof path, "%s/dataset_statistics.json", f->jpeg);
    bv_action_norm an, pn;
    if (bv_action_norm_read(path, NULL, "action", &an) || bv_action_norm_read(path, NULL, "proprio", &pn))
        fail_msg("%s", bv_error_msg());
    for (int k = 0; k < 2; k++) {
        bv_action_norm *n = k ? &pn : &an;
        for (int d = 0; d < n->dim; d++) {
            double w = fmax(n->q99[d] - n->q01[d], 0.1);
            n->q01[d] += 0.25 * w, n->q99[d] = n->q01[d] + 0.6 * w;
            n->min[d] = n->q01[d] - 1, n->max[d] = n->q99[d] + 1;
        }
    }
    assert_false(an.mask[6]); /* the libero schema's gripper, as the directory's statistics have it */
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.shuffle = false;
    o.drop_last = false;
    o.epochs = 1;
    o.threads = 0;
    o.action_norm = &an, o.proprio_norm = &pn;
    o.norm_path = "/elsewhere/train_statistics.json";
    bv_loader *l = open_ok(&o);
    assert_true(bv_loader_action_norm(l)->q99[3] == an.q99[3] && bv_loader_proprio_norm(l)->q01[7] == pn.q01[7]);
    assert_true(bv_loader_dir_action_norm(l)->q99[3] != an.q99[3]);
    expect_in(bv_loader_statistics_path(l), "dataset_statistics.json");
    const bv_loader_batch *b;
    int64_t differs = 0, inside = 0, values = 0;
    float own[8];
    while ((b = next_ok(l))) {
        const float *act = b->actions.data, *prop = b->proprio.data;
        for (int64_t i = 0; i < b->B; i++) {
            const float *ra, *rp;
            bv_loader_episode_raw(l, b->episode[i], &ra, &rp);
            ra += b->step[i] * 7, rp += b->step[i] * 8;
            for (int j = 0; j < 8 * 7 + 8; j++) {
                const bool is_act = j < 56;
                const bv_action_norm *n = is_act ? &an : &pn;
                int d = is_act ? j % 7 : j - 56;
                double x = is_act ? ra[j] : rp[d], got = is_act ? act[i * 56 + j] : prop[i * 8 + d], want = x;
                if (n->mask[d]) want = fmax(-1.0, fmin(1.0, 2.0 * (x - n->q01[d]) / (n->q99[d] - n->q01[d]) - 1.0));
                inside += fabs(want) < 1, values++;
                if (fabs(got - want) > 1e-5)
                    fail_msg("batch %lld row %lld %s %d (dimension %d): %.9g normalised to %.9g, the given statistics "
                             "give %.9g", (long long)b->index, (long long)i, is_act ? "action value" : "proprio", j, d,
                             x, got, want);
            }
            bv_action_norm_apply(bv_loader_dir_proprio_norm(l), rp, 1, own);
            differs += memcmp(own, prop + i * 8, sizeof own) != 0;
        }
    }
    assert_true(differs > 0);         /* not what the directory's own statistics give */
    assert_true(inside > values / 3); /* the formula, not only its clipping */
    bv_loader_free(l);

    /* statistics that do not fit: another width, another mask, one of the two */
    char manifest[400];
    snprintf(manifest, sizeof manifest, "%s/manifest.json", f->jpeg);
    bv_action_norm bad = an;
    bad.dim = 6;
    o.action_norm = &bad;
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_SHAPE);
    assert_null(l);
    expect_in(bv_error_msg(), "/elsewhere/train_statistics.json: statistics for 6 action and 8 proprio dimensions");
    expect_in(bv_error_msg(), manifest);
    expect_in(bv_error_msg(), "'action_dim' 7");
    bad = an;
    bad.mask[6] = true;
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_ARG);
    expect_in(bv_error_msg(), "/elsewhere/train_statistics.json: action dimension 6 is normalised");
    expect_in(bv_error_msg(), f->jpeg);
    expect_in(bv_error_msg(), "dataset_statistics.json");
    o.action_norm = NULL;
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_ARG);
    expect_in(bv_error_msg(), "together");
}

/* ---- prompts ---- */

static char *episode_instruction(const char *dir, int64_t episode) {
    char p[400];
    snprintf(p, sizeof p, "%s/shard-%05d.h5", dir, (int)(episode / 2));
    bv_shard s;
    if (bv_shard_open(&s, p)) fail_msg("%s", bv_error_msg());
    char *ins = NULL;
    if (bv_shard_read_instruction(&s, episode % 2, &ins)) fail_msg("%s", bv_error_msg());
    bv_shard_close(&s);
    return ins;
}

static void test_prompt_layout(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.batch_size = 6;
    bv_loader *l = open_ok(&o);
    const int32_t img = bv_tok_token_id(f->tok, "<|image_pad|>"), prop = bv_tok_token_id(f->tok, "<proprio_pad>"),
                  act0 = bv_tok_token_id(f->tok, "<action_0>"), eos = bv_tok_token_id(f->tok, "<|end_of_text|>"),
                  pad = bv_tok_token_id(f->tok, "<|pad|>"), bos = bv_tok_bos_id(f->tok);
    bv_tok_action_cfg tc = bv_tok_action_cfg_default();
    tc.image_tokens = IMG_TOK;
    int lengths_differ = 0;
    for (int k = 0; k < 6; k++) {
        const bv_loader_batch *b = next_ok(l);
        const int64_t *ids = b->input_ids.data;
        const uint8_t *am = b->attention_mask.data, *xm = b->action_mask.data;
        int64_t maxlen = 0, minlen = INT64_MAX;
        for (int64_t i = 0; i < b->B; i++) {
            char *ins = episode_instruction(f->jpeg, b->episode[i]);
            bv_tok_action_seq want;
            if (bv_tok_action_prompt(f->tok, ins, &tc, NULL, &want)) fail_msg("%s", bv_error_msg());
            const int64_t *row = ids + i * b->T;
            maxlen = BV_MAX(maxlen, want.len), minlen = BV_MIN(minlen, want.len);
            int n_img = 0, n_prop = 0, n_act = 0, first_act = -1;
            for (int64_t j = 0; j < b->T; j++) {
                bool real = j < want.len;
                if (real && row[j] != want.ids[j])
                    fail_msg("row %lld (\"%s\") position %lld: id %lld, tokenizer %d", (long long)i, ins, (long long)j,
                             (long long)row[j], want.ids[j]);
                if (!real && row[j] != pad)
                    fail_msg("row %lld position %lld: padding id %lld, want <|pad|> %d", (long long)i, (long long)j,
                             (long long)row[j], pad);
                assert_int_equal(am[i * b->T + j], real);
                assert_int_equal(xm[i * b->T + j], real && row[j] >= act0 && row[j] < act0 + 256);
                n_img += row[j] == img, n_prop += row[j] == prop;
                if (xm[i * b->T + j]) {
                    if (first_act < 0) first_act = (int)j;
                    n_act++;
                }
            }
            assert_int_equal(row[0], bos);
            assert_int_equal(n_img, 2 * IMG_TOK);
            assert_int_equal(n_prop, 1);
            assert_int_equal(n_act, 56);
            /* 56 contiguous action tokens, then <|end_of_text|>; the readout position before them is real */
            for (int j = first_act; j < first_act + 56; j++) assert_int_equal(xm[i * b->T + j], 1);
            assert_int_equal(row[first_act + 56], eos);
            assert_int_equal(first_act + 57, want.len);
            assert_true(first_act >= 1 && am[i * b->T + first_act - 1] == 1);
            /* the instruction appears lower-cased in the decoded text */
            char *text = NULL;
            size_t tl;
            int32_t *ids32 = bv_xmalloc((size_t)want.len * sizeof *ids32);
            for (int64_t j = 0; j < want.len; j++) ids32[j] = (int32_t)row[j];
            if (bv_tok_decode(f->tok, ids32, (size_t)want.len, 0, &text, &tl)) fail_msg("%s", bv_error_msg());
            char phrase[256];
            snprintf(phrase, sizeof phrase, "What action should the robot take to %s?", ins);
            for (char *c = phrase + 37; *c; c++) *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
            expect_in(text, phrase);
            free(text);
            free(ids32);
            free(ins);
            bv_tok_action_seq_free(&want);
        }
        assert_int_equal(b->T, maxlen); /* padded to the longest row of this batch */
        lengths_differ |= maxlen != minlen;
    }
    assert_true(lengths_differ); /* the padding path ran */
    bv_loader_free(l);
}

/* The batch is what the model takes: the tiny preset (ids from this tokenizer) checks it and runs
 * forward and backward on it. */
static void test_batch_runs_tiny_model(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.batch_size = 2;
    o.image_size = TINY_IMG;
    o.image_tokens = TINY_TOK;
    bv_loader *l = open_ok(&o);
    bv_vla_config c;
    assert_int_equal(bv_config_preset("tiny", &c), BV_OK);
    assert_int_equal(c.vision.image_size, TINY_IMG);
    assert_int_equal((TINY_IMG / c.vision.patch_size) * (TINY_IMG / c.vision.patch_size), TINY_TOK);
    c.text.vocab_size = bv_tok_vocab_size(f->tok);
    c.image_token_index = bv_tok_token_id(f->tok, "<|image_pad|>");
    c.proprio_token_index = bv_tok_token_id(f->tok, "<proprio_pad>");
    bv_model model; /* validates the edited config */
    bv_model_spec spec = {.config = "tiny+loader", .cfg = &c, .purpose = BV_MODEL_TRAIN, .seed = 1};
    if (bv_model_build(&model, &spec) != BV_OK) fail_msg("%s", bv_error_msg());
    const bv_loader_batch *b = next_ok(l);
    bv_vla_batch vb = bv_loader_batch_vla(b);
    if (bv_vla_batch_check(&model.vla, &vb, BV_VLA_MODE_ACTION, "loader batch")) fail_msg("%s", bv_error_msg());
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    bv_vla_out y = bv_vla_forward(&g, &model.params, &model.vla, &vb, BV_VLA_MODE_ACTION);
    assert_non_null(y.loss);
    double loss = bv_var_f32(y.loss)[0];
    assert_true(isfinite(loss) && loss > 0);
    bv_graph_backward(&g, y.loss);
    bv_graph_free(&g);
    bv_model_free(&model);
    bv_loader_free(l);
}

/* ---- determinism ---- */

static void test_determinism_threads(void **state) {
    fixture *f = *state;
    const int n = 40;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.threads = 0;
    bv_loader *l = open_ok(&o);
    o.start_batch = bv_loader_batches_per_epoch(l) - n / 2; /* the stream crosses into epoch 1 */
    bv_loader_free(l);
    int n_ref, n_k;
    uint64_t *ref = stream_hashes(&o, n, &n_ref);
    assert_int_equal(n_ref, n);
    struct {
        int threads, prefetch;
    } cfgs[] = {{0, 0}, {1, 0}, {1, 1}, {3, 0}, {3, 1}, {2, 7}};
    for (size_t c = 0; c < BV_ARRAY_LEN(cfgs); c++) {
        o.threads = cfgs[c].threads;
        o.prefetch = cfgs[c].prefetch;
        uint64_t *h = stream_hashes(&o, n, &n_k);
        assert_int_equal(n_k, n);
        for (int k = 0; k < n; k++)
            if (h[k] != ref[k])
                fail_msg("batch %d differs with %d threads, prefetch %d (from 0 threads)", k, cfgs[c].threads,
                         cfgs[c].prefetch);
        free(h);
    }
    /* another seed gives another stream */
    o.seed = 12;
    uint64_t *h = stream_hashes(&o, 1, &n_k);
    assert_true(h[0] != ref[0]);
    free(h);
    free(ref);
}

/* ---- ranks and epochs ---- */

static void test_ranks_disjoint_and_cover(void **state) {
    fixture *f = *state;
    const int W = 3;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.epochs = 1;
    o.drop_last = false;
    bv_loader *ls[3];
    for (int r = 0; r < W; r++) {
        o.rank = r, o.world_size = W, o.threads = r; /* thread counts differ too */
        ls[r] = open_ok(&o);
    }
    o.rank = 0, o.world_size = 1, o.threads = 1;
    bv_loader *single = open_ok(&o); /* world 1: for the per-sample pixel comparison */
    int64_t N = bv_loader_num_samples(ls[0]), G = 4 * W, nb = bv_loader_batches_per_epoch(ls[0]);
    assert_int_equal(nb, (N + G - 1) / G);
    int *count = bv_xcalloc((size_t)N, sizeof *count);
    /* pixels of every sample as rank r saw them, to compare with world size 1 */
    size_t img_sz = 2 * 3 * IMG * IMG;
    float *pix = bv_xmalloc((size_t)N * img_sz * sizeof(float));
    for (int64_t k = 0; k < nb; k++) {
        int64_t in_batch[12];
        for (int r = 0; r < W; r++) {
            const bv_loader_batch *b = next_ok(ls[r]);
            assert_non_null(b);
            assert_int_equal(b->index, k);
            for (int i = 0; i < 4; i++) {
                /* rank r's slice of global batch k */
                int64_t pos = (k * G + r * 4 + i) % N;
                assert_int_equal(b->sample[i], bv_loader_permute(ls[r], 0, pos));
                in_batch[r * 4 + i] = b->sample[i];
                count[b->sample[i]]++;
                memcpy(pix + (size_t)b->sample[i] * img_sz, (const float *)b->pixel_values.data + i * img_sz,
                       img_sz * sizeof(float));
            }
        }
        /* disjoint within the global batch (it wraps around only past the end of the epoch) */
        if ((k + 1) * G <= N)
            for (int a = 0; a < 12; a++)
                for (int c = a + 1; c < 12; c++)
                    if (in_batch[a] == in_batch[c])
                        fail_msg("global batch %lld: sample %lld on two ranks/rows (%d, %d)", (long long)k,
                                 (long long)in_batch[a], a, c);
    }
    for (int r = 0; r < W; r++) {
        const bv_loader_batch *b = next_ok(ls[r]);
        assert_null(b); /* the epoch limit */
    }
    for (int64_t s = 0; s < N; s++) {
        if (count[s] < 1) fail_msg("sample %lld not loaded by any rank in the epoch", (long long)s);
        if (count[s] > 2) fail_msg("sample %lld loaded %d times", (long long)s, count[s]);
    }
    int64_t dup = 0;
    for (int64_t s = 0; s < N; s++) dup += count[s] - 1;
    assert_int_equal(dup, nb * G - N); /* only the wrap-around of the last global batch repeats */
    /* the same sample in the same epoch looks the same whatever rank loads it */
    const bv_loader_batch *b = next_ok(single);
    for (int i = 0; i < 4; i++)
        if (memcmp(pix + (size_t)b->sample[i] * img_sz, (const float *)b->pixel_values.data + i * img_sz,
                   img_sz * sizeof(float)))
            fail_msg("sample %lld: pixels differ between world size 3 and 1", (long long)b->sample[i]);
    free(pix);
    free(count);
    for (int r = 0; r < W; r++) bv_loader_free(ls[r]);
    bv_loader_free(single);
}

/* The same global batch on 1, 2 and 4 ranks (accumulation 4, 2, 1): global micro-batch
 * u = r * A + a holds the same samples and pixels whatever the split, over two epochs and after a
 * resume in the middle (the trainer's rank-count invariance rests on this). */
static void test_accumulation_split_invariant(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.batch_size = 2;
    o.epochs = 2;
    o.threads = 0;
    const int K = 4; /* micro-batches per global batch */
    o.accumulation = K, o.rank = 0, o.world_size = 1;
    bv_loader *one = open_ok(&o);
    int64_t nb = bv_loader_batches_per_epoch(one);
    int64_t N = bv_loader_num_samples(one);
    assert_int_equal(nb, N / (2 * K) * K);
    int64_t total = 2 * nb; /* micro-batches of rank 0 at world size 1 = global micro-batches */
    uint64_t *ref = bv_xmalloc((size_t)total * sizeof *ref);
    for (int64_t j = 0; j < total; j++) ref[j] = content_hash(next_ok(one));
    assert_null(next_ok(one));
    bv_loader_free(one);
    for (int W = 2; W <= 4; W *= 2) {
        int A = K / W;
        for (int r = 0; r < W; r++) {
            o.accumulation = A, o.rank = r, o.world_size = W;
            for (int resume = 0; resume < 2; resume++) {
                /* resume: start at global batch 3 (micro-batch 3 * A of this rank) */
                o.start_epoch = 0, o.start_batch = resume ? 3 * A : 0;
                bv_loader *l = open_ok(&o);
                assert_int_equal(bv_loader_batches_per_epoch(l), nb / W);
                for (int64_t j = o.start_batch; j < 2 * nb / W; j++) {
                    const bv_loader_batch *b = next_ok(l);
                    assert_non_null(b);
                    int64_t k = j / A, a = j % A, u = k * K + r * A + a;
                    if (content_hash(b) != ref[u])
                        fail_msg("world %d rank %d micro-batch %lld: not global micro-batch %lld of world 1", W, r,
                                 (long long)j, (long long)u);
                }
                assert_null(next_ok(l));
                bv_loader_free(l);
            }
        }
    }
    o.accumulation = 0;
    bv_loader *bad = NULL;
    assert_int_equal(bv_loader_open(&bad, &o), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "accumulation"));
    free(ref);
}

static void test_epochs(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.epochs = 2;
    bv_loader *l = open_ok(&o);
    int64_t N = bv_loader_num_samples(l), nb = bv_loader_batches_per_epoch(l);
    assert_int_equal(nb, N / 4);
    /* each epoch's order is a permutation, and they differ */
    uint8_t *hit = bv_xcalloc((size_t)N, 1);
    int64_t same = 0;
    for (int64_t p = 0; p < N; p++) {
        int64_t s0 = bv_loader_permute(l, 0, p), s1 = bv_loader_permute(l, 1, p);
        assert_true(s0 >= 0 && s0 < N);
        if (hit[s0]) fail_msg("epoch 0: sample %lld at two positions", (long long)s0);
        hit[s0] = 1;
        same += s0 == s1;
    }
    if (same > N / 10) fail_msg("epochs 0 and 1 agree at %lld of %lld positions", (long long)same, (long long)N);
    /* the stream: epoch 0's batches, then epoch 1's, then the end; a sample's augmentation differs
     * between epochs */
    size_t img_sz = 2 * 3 * IMG * IMG;
    float *pix0 = bv_xmalloc((size_t)N * img_sz * sizeof(float));
    uint8_t *got0 = bv_xcalloc((size_t)N, 1);
    uint64_t *hashes = bv_xmalloc((size_t)(2 * nb) * sizeof *hashes);
    int64_t compared = 0, differ = 0;
    for (int64_t k = 0; k < 2 * nb; k++) {
        const bv_loader_batch *b = next_ok(l);
        assert_non_null(b);
        assert_true(b->epoch == k / nb && b->index == k % nb);
        hashes[k] = batch_hash(b);
        for (int i = 0; i < 4; i++) {
            const float *px = (const float *)b->pixel_values.data + i * img_sz;
            if (b->epoch == 0) {
                memcpy(pix0 + (size_t)b->sample[i] * img_sz, px, img_sz * sizeof(float));
                got0[b->sample[i]] = 1;
            } else if (got0[b->sample[i]]) {
                compared++;
                differ += memcmp(pix0 + (size_t)b->sample[i] * img_sz, px, img_sz * sizeof(float)) != 0;
            }
        }
    }
    assert_null(next_ok(l));
    assert_null(next_ok(l));
    assert_true(compared > 0);
    assert_int_equal(differ, compared);
    bv_loader_free(l);
    /* resuming at (epoch 1, batch 2) continues the same stream */
    o.start_epoch = 1;
    o.start_batch = 2;
    o.threads = 1;
    l = open_ok(&o);
    for (int64_t k = nb + 2; k < 2 * nb; k++) {
        const bv_loader_batch *b = next_ok(l);
        if (batch_hash(b) != hashes[k]) fail_msg("resumed stream: batch %lld differs", (long long)k);
    }
    assert_null(next_ok(l));
    bv_loader_free(l);
    free(hashes);
    free(pix0);
    free(got0);
    free(hit);
}

/* ---- evaluation mode, storage ---- */

static void test_eval_mode(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    o.train = false;
    o.shuffle = false;
    o.threads = 1;
    bv_loader *l = open_ok(&o);
    int64_t nb = bv_loader_batches_per_epoch(l);
    const bv_loader_batch *b = next_ok(l);
    /* no shuffle: samples in order */
    for (int i = 0; i < 4; i++) assert_int_equal(b->sample[i], i);
    /* row 0 = episode 0 step 0: the centre crop of its decoded frames */
    char p[400];
    snprintf(p, sizeof p, "%s/shard-00000.h5", f->jpeg);
    bv_shard s;
    if (bv_shard_open(&s, p)) fail_msg("%s", bv_error_msg());
    bv_image img = {0};
    uint8_t *scratch = NULL;
    size_t cap = 0;
    bv_aug_params ap;
    bv_aug_center(&o.aug, &ap);
    bv_aug_scratch as = {0};
    float *want = bv_xmalloc((size_t)3 * IMG * IMG * sizeof(float));
    const char *cams[2] = {"primary", "wrist"};
    for (int c = 0; c < 2; c++) {
        if (bv_shard_read_rgb(&s, bv_shard_find_camera(&s, cams[c]), 0, &img, &scratch, &cap))
            fail_msg("%s", bv_error_msg());
        bv_aug_apply(img.rgb, img.w, img.h, &ap, IMG, want, &as);
        if (memcmp(want, (const float *)b->pixel_values.data + (size_t)c * 3 * IMG * IMG,
                   3 * IMG * IMG * sizeof(float)))
            fail_msg("eval batch: camera %s of episode 0 step 0 is not its centre crop", cams[c]);
    }
    uint64_t h0 = batch_hash(b);
    /* the next epoch's first batch is the same (no randomness), apart from its epoch number */
    for (int64_t k = 1; k < nb; k++) next_ok(l);
    b = next_ok(l);
    assert_int_equal(b->epoch, 1);
    bv_loader_batch copy = *b;
    copy.epoch = 0;
    assert_true(batch_hash(&copy) == h0);
    free(want);
    bv_aug_scratch_free(&as);
    bv_image_free(&img);
    free(scratch);
    bv_shard_close(&s);
    bv_loader_free(l);
}

static void test_jpeg_and_raw_agree(void **state) {
    fixture *f = *state;
    bv_loader_opts o = base_opts(f, f->jpeg);
    int n1, n2;
    uint64_t *a = stream_hashes(&o, 12, &n1);
    o.dir = f->raw;
    uint64_t *b = stream_hashes(&o, 12, &n2);
    assert_int_equal(n1, n2);
    for (int k = 0; k < n1; k++)
        if (a[k] != b[k]) fail_msg("batch %d: JPEG and raw shards give different batches", k);
    free(a);
    free(b);
}

/* ---- errors ---- */

static void copy_dir(const char *src, const char *dst) {
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s && cp -r %s %s", dst, src, dst);
    sh(cmd);
}

static void test_errors(void **state) {
    fixture *f = *state;
    bv_loader *l = NULL;
    char dir[400], p[500];
    /* no manifest: not a shard directory, or an unfinished conversion */
    snprintf(dir, sizeof dir, "%s/nomanifest", f->root);
    copy_dir(f->jpeg, dir);
    snprintf(p, sizeof p, "%s/manifest.json", dir);
    assert_int_equal(unlink(p), 0);
    bv_loader_opts o = base_opts(f, dir);
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_IO);
    assert_null(l);
    expect_in(bv_error_msg(), dir);
    expect_in(bv_error_msg(), "manifest.json");

    /* a shard cut short */
    snprintf(dir, sizeof dir, "%s/truncated", f->root);
    copy_dir(f->jpeg, dir);
    snprintf(p, sizeof p, "%s/shard-00001.h5", dir);
    assert_int_equal(truncate(p, 2000), 0);
    o = base_opts(f, dir);
    assert_int_not_equal(bv_loader_open(&l, &o), BV_OK);
    assert_null(l);
    expect_in(bv_error_msg(), "shard-00001.h5");

    /* a corrupt JPEG frame: the first frame stored in shard 0 loses its start marker. The workers
     * hit it while prefetching; the consumer gets the error at that batch, naming file and episode */
    snprintf(dir, sizeof dir, "%s/badjpeg", f->root);
    copy_dir(f->jpeg, dir);
    snprintf(p, sizeof p, "%s/shard-00000.h5", dir);
    FILE *fp = fopen(p, "r+b");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    uint8_t *buf = bv_xmalloc((size_t)n);
    fseek(fp, 0, SEEK_SET);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    long at = -1;
    for (long i = 0; i + 3 < n && at < 0; i++)
        if (buf[i] == 0xFF && buf[i + 1] == 0xD8 && buf[i + 2] == 0xFF) at = i;
    assert_true(at >= 0);
    fseek(fp, at, SEEK_SET);
    const uint8_t zero[3] = {0, 0, 0};
    assert_int_equal(fwrite(zero, 1, 3, fp), 3);
    assert_int_equal(fclose(fp), 0);
    free(buf);
    o = base_opts(f, dir);
    o.drop_last = false;
    o.threads = 2;
    o.prefetch = 3;
    l = open_ok(&o);
    bv_status st = BV_OK;
    const bv_loader_batch *b = NULL;
    int64_t good = 0;
    while ((st = bv_loader_next(l, &b)) == BV_OK && b) good++;
    assert_int_equal(st, BV_ERR_FORMAT);
    assert_true(good < bv_loader_batches_per_epoch(l));
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", bv_error_msg());
    expect_in(msg, p);
    expect_in(msg, "episode 0, step 0");
    expect_in(msg, "not a JPEG");
    /* it stays failed */
    assert_int_equal(bv_loader_next(l, &b), BV_ERR_FORMAT);
    assert_null(b);
    expect_in(bv_error_msg(), "episode 0, step 0");
    bv_loader_free(l); /* joins workers that were waiting */
    /* the same without threads */
    o.threads = 0;
    l = open_ok(&o);
    while ((st = bv_loader_next(l, &b)) == BV_OK && b) {
    }
    assert_int_equal(st, BV_ERR_FORMAT);
    expect_in(bv_error_msg(), "episode 0, step 0");
    bv_loader_free(l);

    /* a tokenizer without BitVLA's tokens */
    bv_tok *plain = NULL;
    const char txt[] = "what action should the robot take to pick up the cube the cube the cube";
    bv_tok_train_opts to = {.vocab_size = 270, .min_frequency = 2, .bitvla = 0};
    assert_int_equal(bv_tok_train(&plain, txt, strlen(txt), &to), BV_OK);
    o = base_opts(f, f->jpeg);
    o.tok = plain;
    assert_int_not_equal(bv_loader_open(&l, &o), BV_OK);
    expect_in(bv_error_msg(), "<|pad|>");
    bv_tok_free(plain);

    /* statistics of another dataset than the one asked for */
    o = base_opts(f, f->jpeg);
    o.dataset_name = "libero_spatial_no_noops";
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_FORMAT);
    expect_in(bv_error_msg(), "libero_spatial_no_noops");
    expect_in(bv_error_msg(), "dataset_statistics.json");
    o.dataset_name = "bitvla_synth";
    l = open_ok(&o);
    bv_loader_free(l);

    /* a batch larger than the epoch, bad options */
    o = base_opts(f, f->jpeg);
    o.batch_size = 100000;
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_ARG);
    expect_in(bv_error_msg(), "drop_last");
    o = base_opts(f, f->jpeg);
    o.rank = 2;
    o.world_size = 2;
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_ARG);
    expect_in(bv_error_msg(), "rank 2");
    o = base_opts(f, f->jpeg);
    o.chunk = 100000;
    assert_int_equal(bv_loader_open(&l, &o), BV_ERR_ARG);
    expect_in(bv_error_msg(), "shorter than the action chunk");
    /* freeing a loader in the middle of an epoch with full queues does not hang */
    o = base_opts(f, f->jpeg);
    o.threads = 3;
    l = open_ok(&o);
    next_ok(l);
    usleep(20000);
    bv_loader_free(l);
    bv_loader_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_samples_and_chunks),
        cmocka_unit_test(test_normalisation),
        cmocka_unit_test(test_given_statistics),
        cmocka_unit_test(test_prompt_layout),
        cmocka_unit_test(test_batch_runs_tiny_model),
        cmocka_unit_test(test_determinism_threads),
        cmocka_unit_test(test_ranks_disjoint_and_cover),
        cmocka_unit_test(test_accumulation_split_invariant),
        cmocka_unit_test(test_epochs),
        cmocka_unit_test(test_eval_mode),
        cmocka_unit_test(test_jpeg_and_raw_agree),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
