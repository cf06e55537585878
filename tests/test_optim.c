/* Tests of optim/: AdamW with parameter groups, gradient norm / clipping / non-finite search, and the
 * LR and weight-decay schedules.
 *
 * Parity with PyTorch (tests/fixtures/optim.safetensors, written by tests/gen/gen_optim.py with
 * torch 1.13 on CPU): three runs of 6 steps of torch.optim.AdamW (foreach=False) with six param
 * groups under a LambdaLR (warmup + cosine with stage II's weight-decay switch at step 3, polynomial
 * with power 2 and min ratio 0.1 run past its end, constant with warmup), clip_grad_norm_ before
 * each step (clipping steps 0, 2 and 4), zero gradients on a few elements. What is reached:
 *  - the parameters after every step and the final moments: BIT-IDENTICAL (tolerance 0). bitvla
 *    rounds each Python scalar to float where ATen does and uses an fma exactly where torch's AVX2
 *    kernels do (optim/adamw.c); the LR scales are powers of two, so base * scale * factor is the
 *    same double in either order of the products.
 *  - the clipping norm: bv_grad_norm rounded to float equals torch's float total norm here
 *    (bit-identical); in general the two may differ in the last bit, as torch sums in another order.
 *  - the LR of each step, base * bv_schedule_lr_factor (what the steps above use), vs torch's group
 *    LR: the same double at every step but one, within 1e-15 relative: HF's polynomial computes
 *    (lr_init - lr_end) * 1 + lr_end over lr_init and so peaks at 1.0000000000000002 (poly step 1);
 *    the scalars rounded to float coincide, so the parameters stay bit-identical. The factors vs
 *    HF's lambdas over longer schedules: within 1e-12 relative (cosine and constant are the same
 *    doubles; the polynomial differs in the last bits, as above).
 * Also: group assignment, configuration and rule errors, schedule checks, 1 vs 2 threads identical,
 * resume from saved moments identical, norm thread-invariant, clip and first_nonfinite cases. */
#include <math.h>
#include <string.h>

#include "optim/adamw.h"
#include "optim/schedule.h"
#include "tests/util/testutil.h"

/* must match tests/gen/gen_optim.py (checked against the fixture's `config`) */
#define BASE_LR 1e-2
#define BETA1 0.9
#define BETA2 0.999
#define EPS 1e-8
#define WD 0.01
#define MAX_NORM 30.0
#define N_STEPS 6

typedef struct {
    const char *name;
    int ndim;
    int64_t shape[2];
    int group;   /* 0 default, 1 vision, 2 head */
    bool decays; /* weight decay applies */
} pspec;

/* the generator's PARAMS, in its order; the C store adds a frozen parameter in the middle */
static const pspec PARAMS[] = {
    {"vision_tower.blocks.0.attn.weight", 2, {12, 20}, 1, true},
    {"vision_tower.blocks.0.norm.weight", 1, {20}, 1, false},
    {"language_model.embed_tokens.weight", 2, {16, 12}, 0, false},
    {"vision_tower.blocks.0.attn.bias", 1, {12}, 1, false},
    {"language_model.layers.0.mlp.weight", 2, {9, 17}, 0, true},
    {"language_model.layers.0.post_norm.weight", 1, {17}, 0, false},
    {"action_head.fc.weight", 2, {5, 11}, 2, true},
    {"action_head.fc.bias", 1, {5}, 2, false},
};
#define N_PARAMS ((int)BV_ARRAY_LEN(PARAMS))
#define FROZEN "frozen_tower.weight"

static const char *const VISION_PREFIXES[] = {"vision_tower.", NULL};
static const char *const HEAD_PREFIXES[] = {"action_head.", "proprio_projector.", NULL};
static const bv_adamw_group_rule RULES[] = {
    {"vision", VISION_PREFIXES, 0.5, 0.05},
    {"head", HEAD_PREFIXES, 2.0, -1},
};

static bv_adamw_cfg fixture_cfg(void) {
    bv_adamw_cfg c;
    bv_adamw_cfg_default(&c);
    c.beta1 = BETA1, c.beta2 = BETA2, c.eps = EPS, c.weight_decay = WD;
    c.n_rules = (int)BV_ARRAY_LEN(RULES);
    c.rules = RULES;
    return c;
}

/* Fails naming the first element whose bits differ, both values and their bits. */
static void expect_bits(const char *what, const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t a, b;
        memcpy(&a, &got[i], 4);
        memcpy(&b, &want[i], 4);
        if (a != b)
            fail_msg("%s: first mismatch at index %lld: got %.9g (0x%08x) want %.9g (0x%08x) "
                     "(tolerance: bit-identical)",
                     what, (long long)i, got[i], a, want[i], b);
    }
}

/* The fixture's parameters in a store, with a frozen one registered between them; values from
 * param.NAME (the frozen one: 0.25 everywhere). */
static void fixture_store(bv_params *p, bv_fx *fx) {
    bv_params_init(p);
    for (int i = 0; i < N_PARAMS; i++) {
        assert_true(bv_params_add(p, PARAMS[i].name, PARAMS[i].ndim, PARAMS[i].shape, true) >= 0);
        if (i == 3) {
            int64_t s[2] = {4, 6};
            assert_true(bv_params_add(p, FROZEN, 2, s, false) >= 0);
        }
    }
    assert_int_equal(bv_params_finalize(p), BV_OK);
    char key[160];
    for (int i = 0; i < N_PARAMS; i++) {
        snprintf(key, sizeof key, "param.%s", PARAMS[i].name);
        bv_tensor t = bv_fx_get(fx, key, BV_DTYPE_F32);
        bv_tensor v = bv_params_value(p, bv_params_find(p, PARAMS[i].name));
        assert_int_equal(bv_tensor_numel(&t), bv_tensor_numel(&v));
        memcpy(v.data, t.data, (size_t)bv_tensor_numel(&t) * 4);
    }
    bv_tensor fz = bv_params_value(p, bv_params_find(p, FROZEN));
    for (int64_t j = 0; j < bv_tensor_numel(&fz); j++) ((float *)fz.data)[j] = 0.25f;
}

/* ---- parity with torch.optim.AdamW ---- */

typedef struct {
    const char *run;
    bv_schedule s;
} run_spec;

static const run_spec RUNS[] = {
    {"cosine", {BV_LR_COSINE, 2, 6, 0.0, 1.0, 3}},
    {"poly", {BV_LR_POLYNOMIAL, 1, 4, 0.1, 2.0, -1}},
    {"const", {BV_LR_CONSTANT, 3, 6, 0.0, 1.0, -1}},
};

static void test_fixture_config(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "optim.safetensors");
    bv_tensor c = bv_fx_get(&fx, "config", BV_DTYPE_F64);
    const double want[] = {BASE_LR, BETA1, BETA2, EPS, WD, MAX_NORM, N_STEPS};
    assert_int_equal(bv_tensor_numel(&c), BV_ARRAY_LEN(want));
    for (size_t i = 0; i < BV_ARRAY_LEN(want); i++)
        if (((double *)c.data)[i] != want[i])
            fail_msg("fixture config[%zu] = %g, the test's constant is %g: keep tests/gen/gen_optim.py and "
                     "tests/test_optim.c in step",
                     i, ((double *)c.data)[i], want[i]);
    bv_fx_close(&fx);
}

static void test_adamw_torch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "optim.safetensors");
    bv_tensor norms = bv_fx_get(&fx, "norm", BV_DTYPE_F32);
    char key[200], what[240];
    int n_clipped = 0;
    for (size_t r = 0; r < BV_ARRAY_LEN(RUNS); r++) {
        const run_spec *rs = &RUNS[r];
        assert_int_equal(bv_schedule_check(&rs->s), BV_OK);
        bv_params p;
        fixture_store(&p, &fx);
        bv_adamw_cfg cfg = fixture_cfg();
        bv_adamw o;
        assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_OK);
        snprintf(key, sizeof key, "%s.lr", rs->run);
        bv_tensor lrs = bv_fx_get(&fx, key, BV_DTYPE_F64);
        for (int t = 0; t < N_STEPS; t++) {
            for (int i = 0; i < N_PARAMS; i++) {
                snprintf(key, sizeof key, "grad.%d.%s", t, PARAMS[i].name);
                bv_tensor g = bv_fx_get(&fx, key, BV_DTYPE_F32);
                memcpy(bv_params_grad(&p, bv_params_find(&p, PARAMS[i].name)), g.data,
                       (size_t)bv_tensor_numel(&g) * 4);
            }
            double norm = bv_grad_norm(p.grads, p.numel_trainable);
            float normf = (float)norm;
            snprintf(what, sizeof what, "%s step %d: gradient norm (float) vs torch", rs->run, t);
            expect_bits(what, &normf, &((float *)norms.data)[t], 1);
            n_clipped += bv_grad_clip(p.grads, p.numel_trainable, norm, MAX_NORM);
            double lr = BASE_LR * bv_schedule_lr_factor(&rs->s, t);
            /* equal but for poly step 1, where HF's peak factor is 1.0000000000000002 */
            snprintf(what, sizeof what, "%s step %d: lr vs torch's", rs->run, t);
            bv_check_close_f64(what, &lr, &((double *)lrs.data)[t], 1, 0, 1e-15);
            uint64_t version = p.version;
            bv_adamw_step(&o, &p, lr, bv_schedule_wd_factor(&rs->s, t));
            assert_true(p.version != version);
            for (int i = 0; i < N_PARAMS; i++) {
                snprintf(key, sizeof key, "%s.step%d.%s", rs->run, t, PARAMS[i].name);
                snprintf(what, sizeof what, "%s: %s after step %d vs torch", rs->run, PARAMS[i].name, t);
                bv_tensor want = bv_fx_get(&fx, key, BV_DTYPE_F32);
                bv_tensor got = bv_params_value(&p, bv_params_find(&p, PARAMS[i].name));
                expect_bits(what, got.data, want.data, bv_tensor_numel(&want));
            }
        }
        assert_int_equal(o.step, N_STEPS);
        for (int i = 0; i < N_PARAMS; i++) {
            const bv_param *e = &p.items[bv_params_find(&p, PARAMS[i].name)];
            const char *mv[2] = {"m", "v"};
            for (int k = 0; k < 2; k++) {
                snprintf(key, sizeof key, "%s.%s.%s", rs->run, mv[k], PARAMS[i].name);
                snprintf(what, sizeof what, "%s: %s of %s vs torch", rs->run, mv[k], PARAMS[i].name);
                bv_tensor want = bv_fx_get(&fx, key, BV_DTYPE_F32);
                expect_bits(what, (k ? o.v : o.m) + e->offset, want.data, e->numel);
            }
        }
        bv_tensor fz = bv_params_value(&p, bv_params_find(&p, FROZEN));
        for (int64_t j = 0; j < bv_tensor_numel(&fz); j++) assert_true(((float *)fz.data)[j] == 0.25f);
        bv_adamw_free(&o);
        bv_params_free(&p);
    }
    assert_int_equal(n_clipped, 3 * 3); /* steps 0, 2, 4 of each run: the test cannot pass unclipped */
    bv_fx_close(&fx);
}

/* ---- groups and configuration errors ---- */

static void test_adamw_groups(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "optim.safetensors");
    bv_params p;
    fixture_store(&p, &fx);
    bv_adamw_cfg cfg = fixture_cfg();
    bv_adamw o;
    assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_OK);
    assert_int_equal(o.n_params, N_PARAMS); /* the frozen parameter is not the optimizer's */
    for (int k = 0; k < o.n_params; k++) {
        const char *name = p.items[o.param[k]].name;
        int i = 0;
        while (i < N_PARAMS && strcmp(PARAMS[i].name, name) != 0) i++;
        assert_true(i < N_PARAMS);
        assert_int_equal(o.group[k], PARAMS[i].group);
        double scale = PARAMS[i].group == 1 ? 0.5 : PARAMS[i].group == 2 ? 2.0 : 1.0;
        double wd = !PARAMS[i].decays ? 0 : PARAMS[i].group == 1 ? 0.05 : WD;
        if (o.lr_scale[k] != scale || o.wd[k] != wd)
            fail_msg("%s: lr_scale %g wd %g, want %g and %g", name, o.lr_scale[k], o.wd[k], scale, wd);
    }
    /* moments zeroed, one per trainable element */
    for (size_t j = 0; j < p.numel_trainable; j++) assert_true(o.m[j] == 0 && o.v[j] == 0);
    bv_adamw_free(&o);
    /* without no-decay substrings, 2-d embed_tokens decays and 1-d parameters still do not */
    cfg.no_decay = NULL;
    assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_OK);
    for (int k = 0; k < o.n_params; k++) {
        const bv_param *e = &p.items[o.param[k]];
        assert_true(o.wd[k] == (e->ndim < 2 ? 0 : o.group[k] == 1 ? 0.05 : WD));
    }
    bv_adamw_free(&o);
    bv_params_free(&p);
    bv_fx_close(&fx);
}

static void test_adamw_errors(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "optim.safetensors");
    bv_params p;
    fixture_store(&p, &fx);
    bv_adamw o;
    /* a rule matching nothing, and one matching only a frozen parameter, name themselves */
    static const char *const none_prefixes[] = {"lm_head.", "proprio_projector.", NULL};
    static const char *const frozen_prefixes[] = {"frozen_tower.", NULL};
    bv_adamw_group_rule rules[2] = {RULES[0], {"lm", none_prefixes, 1.0, -1}};
    bv_adamw_cfg cfg = fixture_cfg();
    cfg.rules = rules;
    cfg.n_rules = 2;
    assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "AdamW group 'lm' (name prefixes 'lm_head.', 'proprio_projector.') matches "
                                      "no trainable parameter");
    assert_null(o.m);
    bv_adamw_free(&o);
    rules[1] = (bv_adamw_group_rule){"frozen", frozen_prefixes, 1.0, -1};
    assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "group 'frozen'");
    /* a parameter goes to the first matching rule: a second rule shadowed by the first is empty */
    rules[1] = (bv_adamw_group_rule){"shadowed", VISION_PREFIXES, 3.0, -1};
    assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "group 'shadowed'");
    /* hyperparameters out of range name the field */
    struct {
        double beta1, beta2, eps, wd, lr_scale;
        const char *want;
    } bad[] = {
        {1.0, BETA2, EPS, WD, 1, "beta1 must be in [0, 1), got 1"},
        {BETA1, -0.1, EPS, WD, 1, "beta2 must be in [0, 1), got -0.1"},
        {BETA1, BETA2, -1e-8, WD, 1, "eps must be finite and >= 0"},
        {BETA1, BETA2, EPS, NAN, 1, "weight_decay must be finite and >= 0, got nan"},
        {BETA1, BETA2, EPS, WD, -2, "AdamW group 'vision': lr_scale must be finite and >= 0, got -2"},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(bad); i++) {
        bv_adamw_group_rule r1 = RULES[0];
        r1.lr_scale = bad[i].lr_scale;
        cfg = fixture_cfg();
        cfg.rules = &r1;
        cfg.n_rules = 1;
        cfg.beta1 = bad[i].beta1, cfg.beta2 = bad[i].beta2, cfg.eps = bad[i].eps, cfg.weight_decay = bad[i].wd;
        assert_int_equal(bv_adamw_init(&o, &p, &cfg), BV_ERR_ARG);
        bv_test_expect_in(bv_error_msg(), bad[i].want);
    }
    bv_adamw_free(&o);
    bv_params_free(&p);
    bv_fx_close(&fx);
}

/* ---- threads, resume ---- */

/* A store big enough for the parallel paths (> 32768 elements, parameters split across threads),
 * values and gradients from a fixed seed. */
static void big_store(bv_params *p) {
    bv_params_init(p);
    int64_t s1[2] = {301, 257}, s2[1] = {70001}, s3[2] = {64, 1000}, s4[1] = {33};
    assert_true(bv_params_add(p, "vision_tower.a.weight", 2, s1, true) >= 0);
    assert_true(bv_params_add(p, "language_model.b.bias", 1, s2, true) >= 0);
    assert_true(bv_params_add(p, "frozen.c.weight", 2, s3, false) >= 0);
    assert_true(bv_params_add(p, "language_model.d.weight", 2, s3, true) >= 0);
    assert_true(bv_params_add(p, "language_model.norm.weight", 1, s4, true) >= 0);
    assert_int_equal(bv_params_finalize(p), BV_OK);
    bv_rng r = {31};
    bv_rng_fill_normal_f32(&r, p->values, (int64_t)p->numel_total, 1.0);
}

static void fill_grads(bv_params *p, int step) {
    bv_rng r = {(uint64_t)(1000 + step)};
    bv_rng_fill_normal_f32(&r, p->grads, (int64_t)p->numel_trainable, 0.01 * (1 + step));
}

static bv_adamw_cfg big_cfg(void) {
    bv_adamw_cfg c;
    bv_adamw_cfg_default(&c);
    c.n_rules = 1;
    c.rules = RULES; /* vision */
    return c;
}

static void test_adamw_threads_agree(void **state) {
    bv_params p[2];
    bv_adamw o[2];
    bv_adamw_cfg cfg = big_cfg();
    for (int k = 0; k < 2; k++) {
        bv_set_num_threads(k + 1);
        big_store(&p[k]);
        assert_int_equal(bv_adamw_init(&o[k], &p[k], &cfg), BV_OK);
        for (int t = 0; t < 3; t++) {
            fill_grads(&p[k], t);
            bv_grad_clip(p[k].grads, p[k].numel_trainable, bv_grad_norm(p[k].grads, p[k].numel_trainable), 5.0);
            bv_adamw_step(&o[k], &p[k], 1e-3 * (t + 1), t < 2 ? 1.0 : 0.0);
        }
    }
    bv_set_num_threads(2);
    expect_bits("values, 2 threads vs 1", p[1].values, p[0].values, (int64_t)p[0].numel_total);
    expect_bits("m, 2 threads vs 1", o[1].m, o[0].m, (int64_t)p[0].numel_trainable);
    expect_bits("v, 2 threads vs 1", o[1].v, o[0].v, (int64_t)p[0].numel_trainable);
    /* the test can fail: the values moved */
    bv_params fresh;
    big_store(&fresh);
    assert_true(memcmp(fresh.values, p[0].values, p[0].numel_trainable * 4) != 0);
    bv_params_free(&fresh);
    for (int k = 0; k < 2; k++) bv_adamw_free(&o[k]), bv_params_free(&p[k]);
}

/* m, v and step are the whole state: 3 steps, a new optimizer given them, 3 more steps gives the
 * values of 6 steps straight. */
static void test_adamw_resume(void **state) {
    bv_params p[2];
    bv_adamw o[2];
    bv_adamw_cfg cfg = big_cfg();
    for (int k = 0; k < 2; k++) {
        big_store(&p[k]);
        assert_int_equal(bv_adamw_init(&o[k], &p[k], &cfg), BV_OK);
    }
    for (int t = 0; t < 6; t++) {
        fill_grads(&p[0], t);
        bv_adamw_step(&o[0], &p[0], 1e-3, 1.0);
    }
    for (int t = 0; t < 6; t++) {
        if (t == 3) { /* "checkpoint": values, m, v, step into a fresh optimizer */
            bv_adamw o2;
            assert_int_equal(bv_adamw_init(&o2, &p[1], &cfg), BV_OK);
            memcpy(o2.m, o[1].m, p[1].numel_trainable * 4);
            memcpy(o2.v, o[1].v, p[1].numel_trainable * 4);
            o2.step = o[1].step;
            bv_adamw_free(&o[1]);
            o[1] = o2;
        }
        fill_grads(&p[1], t);
        bv_adamw_step(&o[1], &p[1], 1e-3, 1.0);
    }
    expect_bits("values, resumed vs straight", p[1].values, p[0].values, (int64_t)p[0].numel_total);
    for (int k = 0; k < 2; k++) bv_adamw_free(&o[k]), bv_params_free(&p[k]);
}

/* ZeRO-1: each of 3 "ranks" owns pieces of the flat layout (cut inside parameters, empty pieces
 * too) and updates only those; stitched together, values and moments are bit-identical to the
 * unsharded optimizer's after 3 steps with groups, clipping and the weight-decay switch. */
static void test_adamw_shard_matches_full(void **state) {
    bv_params full, part[3];
    bv_adamw of, os[3];
    bv_adamw_cfg cfg = big_cfg();
    big_store(&full);
    assert_int_equal(bv_adamw_init(&of, &full, &cfg), BV_OK);
    size_t n = full.numel_trainable;
    /* pieces: 7 buckets of unequal sizes, each cut in 3 (rank k owns piece k of every bucket) */
    size_t cuts[8] = {0, 1000, 77395, 77396, 100000, 100000, 140001, n};
    bv_range own[3][7];
    for (int k = 0; k < 3; k++) {
        for (int b = 0; b < 7; b++) {
            size_t lo = cuts[b], len = cuts[b + 1] - lo;
            own[k][b] = (bv_range){lo + len * (size_t)k / 3, lo + len * (size_t)(k + 1) / 3};
        }
        big_store(&part[k]);
        assert_int_equal(bv_adamw_init_shard(&os[k], &part[k], &cfg, 7, own[k]), BV_OK);
    }
    assert_int_equal(os[0].numel_shard + os[1].numel_shard + os[2].numel_shard, n);
    for (int t = 0; t < 3; t++) {
        fill_grads(&full, t);
        bv_grad_clip(full.grads, n, bv_grad_norm(full.grads, n), 5.0);
        bv_adamw_step(&of, &full, 1e-3 * (t + 1), t < 2 ? 1.0 : 0.0);
        for (int k = 0; k < 3; k++) {
            fill_grads(&part[k], t);
            bv_grad_clip(part[k].grads, n, bv_grad_norm(part[k].grads, n), 5.0);
            bv_adamw_step(&os[k], &part[k], 1e-3 * (t + 1), t < 2 ? 1.0 : 0.0);
        }
        /* the all-gather: every rank's owned values into the others' */
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 3; j++)
                for (int b = 0; b < 7 && j != k; b++)
                    memcpy(part[j].values + own[k][b].lo, part[k].values + own[k][b].lo,
                           (own[k][b].hi - own[k][b].lo) * sizeof(float));
    }
    for (int k = 0; k < 3; k++) {
        expect_bits("sharded values vs unsharded", part[k].values, full.values, (int64_t)full.numel_total);
        for (int b = 0; b < 7; b++) {
            size_t lo = own[k][b].lo, len = own[k][b].hi - lo, mo = os[k].range_moff[b];
            expect_bits("sharded m", os[k].m + mo, of.m + lo, (int64_t)len);
            expect_bits("sharded v", os[k].v + mo, of.v + lo, (int64_t)len);
        }
        bv_adamw_free(&os[k]);
        bv_params_free(&part[k]);
    }
    bv_adamw_free(&of);
    bv_params_free(&full);
}

/* ---- gradient norm, clipping, non-finite search ---- */

static void test_grad_norm(void **state) {
    bv_rng r = {41};
    size_t n = 1000003;
    float *g = bv_test_rand_f32(&r, (int64_t)n, -2, 2);
    double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (double)g[i] * g[i];
    ref = sqrt(ref);
    double got[3];
    for (int k = 0; k < 3; k++) {
        bv_set_num_threads(k + 1);
        got[k] = bv_grad_norm(g, n);
    }
    bv_set_num_threads(2);
    bv_check_close_f64("grad norm vs sequential double sum", &got[0], &ref, 1, 0, 1e-12);
    for (int k = 1; k < 3; k++)
        if (got[k] != got[0]) fail_msg("grad norm with %d threads %.17g, with 1 %.17g (identical expected)", k + 1,
                                       got[k], got[0]);
    /* the norm from chunk sums computed in pieces (as ranks do) is the same bits */
    double *cs = bv_xcalloc(bv_grad_norm_chunks(n), sizeof *cs);
    size_t mid = 20 * BV_GRAD_NORM_CHUNK;
    bv_grad_sumsq_chunks(g, n, mid, n, cs);
    bv_grad_sumsq_chunks(g, n, 0, mid, cs);
    if (bv_grad_norm_of_chunks(cs, n) != got[0]) fail_msg("grad norm from chunk sums differs");
    free(cs);
    /* small sizes: fewer elements than parts */
    float small[3] = {3, 4, 12};
    assert_true(bv_grad_norm(small, 3) == 13.0);
    assert_true(bv_grad_norm(small, 0) == 0.0);
    free(g);
}

static void test_grad_clip(void **state) {
    bv_rng r = {42};
    int64_t n = 50001;
    float *g = bv_test_rand_f32(&r, n, -1, 1), *g0 = bv_test_copy_f32(g, n);
    double norm = bv_grad_norm(g, (size_t)n);
    /* at or under the limit, or off: untouched */
    assert_false(bv_grad_clip(g, (size_t)n, norm, norm + 1.0));
    assert_false(bv_grad_clip(g, (size_t)n, norm, 0.0));
    assert_false(bv_grad_clip(g, (size_t)n, norm, -1.0));
    assert_false(bv_grad_clip(g, (size_t)n, NAN, 1.0));
    expect_bits("gradients not clipped", g, g0, n);
    /* over: each element times torch's float coefficient */
    assert_true(bv_grad_clip(g, (size_t)n, norm, norm / 3));
    float coef = (1.0f / ((float)norm + 1e-6f)) * (float)(norm / 3);
    for (int64_t i = 0; i < n; i++) g0[i] *= coef;
    expect_bits("clipped gradients", g, g0, n);
    double after = bv_grad_norm(g, (size_t)n), want = norm / 3;
    bv_check_close_f64("norm after clipping", &after, &want, 1, 0, 1e-6);
    free(g), free(g0);
    /* torch 1.13's own result on a case where max_norm * (1 / (norm + 1e-6)), torch's order, and
     * max_norm / (norm + 1e-6) round differently (coefficient 0x1.a40fp-5, not 0x1.a40efep-5) */
    float t3[3] = {1.0f, -3.0f, 0.7f}, w3[3] = {0x1.a40fp-5f, -0x1.3b0b4p-3f, 0x1.260a8p-5f};
    assert_true(bv_grad_clip(t3, 3, 69.26140594482422, 3.55149507522583));
    expect_bits("clipped as torch clip_grad_norm_", t3, w3, 3);
}

static void test_grad_first_nonfinite(void **state) {
    bv_rng r = {43};
    size_t n = 1000003;
    float *g = bv_test_rand_f32(&r, (int64_t)n, -1, 1);
    assert_int_equal(bv_grad_first_nonfinite(g, n), -1);
    assert_int_equal(bv_grad_first_nonfinite(g, 0), -1);
    g[n - 1] = INFINITY;
    assert_int_equal(bv_grad_first_nonfinite(g, n), (int64_t)n - 1);
    assert_int_equal(bv_grad_first_nonfinite(g, n - 1), -1);
    g[900000] = -INFINITY;
    g[777777] = NAN;
    for (int k = 0; k < 2; k++) {
        bv_set_num_threads(k + 1);
        assert_int_equal(bv_grad_first_nonfinite(g, n), 777777);
    }
    bv_set_num_threads(2);
    g[0] = NAN;
    assert_int_equal(bv_grad_first_nonfinite(g, n), 0);
    free(g);
}

/* ---- schedules ---- */

static void check_factors(const char *what, const bv_schedule *s, const bv_tensor *want) {
    int64_t n = bv_tensor_numel(want);
    double *got = bv_xmalloc((size_t)n * sizeof *got);
    for (int64_t t = 0; t < n; t++) got[t] = bv_schedule_lr_factor(s, t);
    bv_check_close_f64(what, got, want->data, n, 1e-15, 1e-12);
    free(got);
}

static void test_schedule_vs_hf(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "optim.safetensors");
    char key[64];
    for (size_t r = 0; r < BV_ARRAY_LEN(RUNS); r++) {
        snprintf(key, sizeof key, "%s.factor", RUNS[r].run);
        bv_tensor f = bv_fx_get(&fx, key, BV_DTYPE_F64);
        check_factors(key, &RUNS[r].s, &f);
    }
    const struct {
        const char *key;
        bv_schedule s;
    } longs[] = {
        {"sched.cosine_long", {BV_LR_COSINE, 100, 1000, 0.05, 1.0, -1}},
        {"sched.poly_long", {BV_LR_POLYNOMIAL, 10, 300, 0.02, 1.5, -1}},
        {"sched.const_long", {BV_LR_CONSTANT, 50, 80, 0.0, 1.0, -1}},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(longs); i++) {
        assert_int_equal(bv_schedule_check(&longs[i].s), BV_OK);
        bv_tensor f = bv_fx_get(&fx, longs[i].key, BV_DTYPE_F64);
        check_factors(longs[i].key, &longs[i].s, &f);
    }
    bv_fx_close(&fx);
}

static void test_schedule_shapes(void **state) {
    bv_schedule s = {BV_LR_COSINE, 10, 110, 0.1, 1.0, 50};
    assert_true(bv_schedule_lr_factor(&s, 0) == 0.0);
    assert_true(bv_schedule_lr_factor(&s, 5) == 0.5);
    assert_true(bv_schedule_lr_factor(&s, 10) == 1.0);
    assert_true(fabs(bv_schedule_lr_factor(&s, 60) - 0.55) < 1e-15); /* halfway: r + (1 - r) / 2 */
    assert_true(fabs(bv_schedule_lr_factor(&s, 110) - 0.1) < 1e-15);
    assert_true(bv_schedule_lr_factor(&s, 500) == bv_schedule_lr_factor(&s, 110)); /* clamped past the end */
    assert_true(bv_schedule_lr_factor(&s, -3) == 0.0);
    assert_true(bv_schedule_wd_factor(&s, 49) == 1.0 && bv_schedule_wd_factor(&s, 50) == 0.0);
    assert_true(bv_schedule_wd_factor(&s, 1000) == 0.0);
    s.weight_decay_off_step = -1;
    assert_true(bv_schedule_wd_factor(&s, 1000000) == 1.0);
    s = (bv_schedule){BV_LR_POLYNOMIAL, 0, 100, 0.0, 1.0, -1}; /* power 1: linear decay */
    assert_true(bv_schedule_lr_factor(&s, 0) == 1.0);
    assert_true(fabs(bv_schedule_lr_factor(&s, 25) - 0.75) < 1e-15);
    assert_true(bv_schedule_lr_factor(&s, 100) == 0.0 && bv_schedule_lr_factor(&s, 101) == 0.0);
    s = (bv_schedule){BV_LR_CONSTANT, 0, 1, 0.0, 0.0, -1};
    assert_true(bv_schedule_lr_factor(&s, 0) == 1.0);
    /* warmup == total: the decay phase is empty, the LR stays at its peak at total_steps */
    s = (bv_schedule){BV_LR_POLYNOMIAL, 8, 8, 0.0, 2.0, -1};
    assert_true(bv_schedule_lr_factor(&s, 7) == 0.875 && bv_schedule_lr_factor(&s, 8) == 1.0);
}

static void test_schedule_check(void **state) {
    struct {
        bv_schedule s;
        const char *want;
    } bad[] = {
        {{BV_LR_COSINE, 0, 0, 0, 1, -1}, "total_steps must be >= 1, got 0"},
        {{BV_LR_COSINE, -1, 10, 0, 1, -1}, "warmup_steps must be in [0, total_steps = 10], got -1"},
        {{BV_LR_COSINE, 11, 10, 0, 1, -1}, "warmup_steps must be in [0, total_steps = 10], got 11"},
        {{BV_LR_COSINE, 1, 10, 1.5, 1, -1}, "min_lr_ratio must be in [0, 1], got 1.5"},
        {{BV_LR_COSINE, 1, 10, NAN, 1, -1}, "min_lr_ratio must be in [0, 1], got nan"},
        {{BV_LR_POLYNOMIAL, 1, 10, 0, 0, -1}, "power must be finite and > 0 for the polynomial schedule, got 0"},
        {{BV_LR_POLYNOMIAL, 1, 10, 0, INFINITY, -1}, "power must be finite and > 0"},
        {{(bv_lr_kind)7, 1, 10, 0, 1, -1}, "kind must be constant, cosine or polynomial, got 7"},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(bad); i++) {
        assert_int_equal(bv_schedule_check(&bad[i].s), BV_ERR_ARG);
        bv_test_expect_in(bv_error_msg(), bad[i].want);
    }
    /* the power is the polynomial schedule's alone */
    bv_schedule ok = {BV_LR_COSINE, 0, 10, 0, 0, -1};
    assert_int_equal(bv_schedule_check(&ok), BV_OK);
    ok = (bv_schedule){BV_LR_CONSTANT, 10, 10, 1, 0, 5};
    assert_int_equal(bv_schedule_check(&ok), BV_OK);
}

static void test_lr_kind_names(void **state) {
    for (int k = BV_LR_CONSTANT; k <= BV_LR_POLYNOMIAL; k++)
        assert_int_equal(bv_lr_kind_parse(bv_lr_kind_name((bv_lr_kind)k)), k);
    assert_string_equal(bv_lr_kind_name(BV_LR_COSINE), "cosine");
    assert_int_equal(bv_lr_kind_parse("linear"), -1);
    assert_int_equal(bv_lr_kind_parse("Cosine"), -1);
    assert_int_equal(bv_lr_kind_parse(NULL), -1);
    assert_string_equal(bv_lr_kind_name((bv_lr_kind)9), "unknown");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_config),
        cmocka_unit_test(test_adamw_torch_parity),
        cmocka_unit_test(test_adamw_groups),
        cmocka_unit_test(test_adamw_errors),
        cmocka_unit_test(test_adamw_threads_agree),
        cmocka_unit_test(test_adamw_resume),
        cmocka_unit_test(test_adamw_shard_matches_full),
        cmocka_unit_test(test_grad_norm),
        cmocka_unit_test(test_grad_clip),
        cmocka_unit_test(test_grad_first_nonfinite),
        cmocka_unit_test(test_schedule_vs_hf),
        cmocka_unit_test(test_schedule_shapes),
        cmocka_unit_test(test_schedule_check),
        cmocka_unit_test(test_lr_kind_names),
    };
    return cmocka_run_group_tests_name("optim", tests, NULL, NULL);
}
