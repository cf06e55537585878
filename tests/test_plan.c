/* Tests of the training plan (recipes/plan.h) beyond what bitvla info prints: the per-rank
 * arithmetic of data-parallel training on plans with chosen numbers (moments / N with ZeRO-1,
 * gradients / N with ZeRO-2, the all-reduce's communication buffers, the exact accumulation's
 * floor(log2 A) partial-sum buffers, A from global_batch and the error when it does not divide,
 * rank 0's checkpoint streaming buffer), the smallest rank count (including a global batch that allows only
 * some N, and more ranks helping without sharding through a smaller A), and the largest trainable
 * tensor bv_plan_modules records for the tiny preset. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "recipes/plan.h"
#include "tests/util/testutil.h"

static const char *k_min =
    "{\"model\": {\"config\": \"tiny\"}, \"tokenizer\": \"tok.json\", \"data\": {\"shards\": \"d\"}}";

/* the minimal recipe with the overrides, labelled dir/plan.json */
static void recipe(bv_recipe *r, int n, const char *const *ov) {
    if (bv_recipe_parse(r, k_min, strlen(k_min), "dir/plan.json", n, ov) != BV_OK)
        fail_msg("recipe: %s", bv_error_msg());
}

/* a plan with chosen totals (bytes): weights W, caches C, activations A, gradients G, moments 2G,
 * largest trainable tensor T */
static bv_train_plan plan(double W, double C, double A, double G, double T, int micro_batch) {
    bv_train_plan p;
    memset(&p, 0, sizeof p);
    p.total.name = "total";
    p.total.weights = W, p.total.caches = C, p.total.grads = G, p.total.moments = 2 * G;
    p.activations = A;
    p.bytes = W + C + A + 3 * G;
    p.max_trainable_tensor = T;
    p.micro_batch = micro_batch;
    return p;
}

static void expect_eq(const char *what, double got, double want) {
    if (got != want) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

static bv_rank_plan rank(const bv_train_plan *p, const bv_recipe *r, int n, int zero) {
    bv_rank_plan rp;
    if (bv_train_plan_rank(p, r, n, zero, &rp) != BV_OK) fail_msg("rank %d zero %d: %s", n, zero, bv_error_msg());
    return rp;
}

static void test_sharding(void **state) {
    (void)state;
    const char *ov[] = {"distributed.exact=false", "accumulation=4", "micro_batch=2"};
    bv_recipe r;
    recipe(&r, 3, ov);
    const double G = 12e9, T = 1.3e9;
    bv_train_plan p = plan(12e9, 13e9, 31e9, G, T, 2);
    bv_rank_plan one = rank(&p, &r, 1, 0);
    expect_eq("N=1 zero 0 gradients", one.grads, G);
    expect_eq("N=1 zero 0 moments", one.moments, 2 * G);
    expect_eq("N=1 comm", one.comm, 0);
    expect_eq("N=1 exact partials (exact off)", one.exact_partials, 0);
    expect_eq("N=1 save gather", one.save_gather, 0);
    expect_eq("N=1 total: the plan's", one.bytes, p.bytes);
    assert_int_equal(one.accumulation, 4);
    assert_int_equal(one.global_batch, 8);
    /* ZeRO-1 on 8 ranks: the moments are 1/8 of one rank's, the gradients whole */
    bv_rank_plan z1 = rank(&p, &r, 8, 1);
    expect_eq("N=8 zero 1 moments = N=1 moments / 8", z1.moments, one.moments / 8);
    expect_eq("N=8 zero 1 gradients", z1.grads, G);
    assert_int_equal(z1.global_batch, 64);
    /* buckets: 25 MB rounded up to whole 64 KiB norm chunks, 2 in flight (buckets cut across
     * tensors, so the largest tensor does not matter) */
    const double B25 = ceil(25e6 / 65536.0) * 65536.0;
    expect_eq("N=8 comm = 2 x bucket", z1.comm, 2 * B25);
    expect_eq("N=8 zero 1 save gather = one bucket", z1.save_gather, B25);
    expect_eq("N=8 total", z1.bytes, 12e9 + 13e9 + 31e9 + G + 2 * G / 8 + 2 * B25);
    expect_eq("N=8 rank 0 peak", z1.rank0_peak, z1.bytes + B25);
    /* ZeRO-2: gradients / N too */
    bv_rank_plan z2 = rank(&p, &r, 8, 2);
    expect_eq("N=8 zero 2 gradients", z2.grads, G / 8);
    expect_eq("N=8 zero 2 moments", z2.moments, 2 * G / 8);
    /* ZeRO-1 on one rank: nothing sharded, nothing to gather */
    bv_rank_plan z1one = rank(&p, &r, 1, 1);
    expect_eq("N=1 zero 1 moments", z1one.moments, 2 * G);
    expect_eq("N=1 zero 1 save gather", z1one.save_gather, 0);
    bv_recipe_free(&r);
}

static void test_comm_buffers(void **state) {
    (void)state;
    bv_recipe r;
    const char *ov[] = {"distributed.bucket_mb=25"};
    recipe(&r, 1, ov);
    /* 2 x 25e6 rounded up to whole norm chunks (16384 floats) */
    const double B25 = ceil(25e6 / 65536.0) * 65536.0;
    bv_train_plan p = plan(1e9, 0, 1e9, 1e9, 10e6, 2);
    expect_eq("bucket_mb", rank(&p, &r, 2, 0).comm, 2 * B25);
    /* a tensor larger than the bucket changes nothing: buckets cut across tensors */
    p.max_trainable_tensor = 40e6;
    expect_eq("largest tensor", rank(&p, &r, 2, 0).comm, 2 * B25);
    /* a gradient smaller than one bucket: never more than the whole gradient */
    p = plan(1e6, 0, 1e6, 1e6, 1e5, 2);
    expect_eq("whole gradient", rank(&p, &r, 4, 1).comm, 2 * 1e6);
    /* nothing trains: nothing to reduce */
    p = plan(1e6, 0, 1e6, 0, 0, 2);
    expect_eq("nothing trains", rank(&p, &r, 4, 1).comm, 0);
    bv_recipe_free(&r);
}

static void test_exact_partials(void **state) {
    (void)state;
    const double G = 3e9;
    bv_train_plan p = plan(1e9, 1e9, 1e9, G, 1e8, 2);
    /* the recipe's accumulation: floor(log2 A) x the full gradient (the binary counter's most
     * partial sums), on any N and ZeRO stage */
    const int acc[] = {1, 2, 3, 4, 5, 8, 9, 32};
    const double levels[] = {0, 1, 1, 2, 2, 3, 3, 5};
    for (size_t i = 0; i < BV_ARRAY_LEN(acc); i++) {
        char a[32];
        snprintf(a, sizeof a, "accumulation=%d", acc[i]);
        const char *ov[] = {a, "distributed.exact=true"};
        bv_recipe r;
        recipe(&r, 2, ov);
        for (int z = 0; z < 3; z++) {
            bv_rank_plan rp = rank(&p, &r, 4, z);
            if (rp.exact_partials != levels[i] * G)
                fail_msg("accumulation %d, zero %d: partials %.17g, want %.0f x %.17g", acc[i], z, rp.exact_partials,
                         levels[i], G);
        }
        bv_recipe_free(&r);
    }
    /* exact off: none */
    const char *off[] = {"accumulation=8", "distributed.exact=false"};
    bv_recipe r;
    recipe(&r, 2, off);
    expect_eq("exact off", rank(&p, &r, 1, 0).exact_partials, 0);
    bv_recipe_free(&r);
    /* A from global_batch 64, micro-batch 2: 32 on 1 rank, 8 on 4, 1 on 32 */
    const char *gb[] = {"global_batch=64", "micro_batch=2", "accumulation=3", "distributed.exact=true"};
    recipe(&r, 4, gb);
    const int ns[] = {1, 4, 32}, as[] = {32, 8, 1};
    const double lv[] = {5, 3, 0};
    for (int i = 0; i < 3; i++) {
        bv_rank_plan rp = rank(&p, &r, ns[i], 1);
        assert_int_equal(rp.accumulation, as[i]);
        assert_int_equal(rp.global_batch, 64);
        expect_eq("partials from global_batch", rp.exact_partials, lv[i] * G);
    }
    bv_recipe_free(&r);
}

static void test_global_batch_error(void **state) {
    (void)state;
    bv_train_plan p = plan(1e9, 1e9, 1e9, 1e9, 1e8, 2);
    const char *ov[] = {"global_batch=64", "micro_batch=2"};
    bv_recipe r;
    recipe(&r, 2, ov);
    bv_rank_plan rp;
    memset(&rp, 0x5a, sizeof rp);
    bv_status st = bv_train_plan_rank(&p, &r, 3, 1, &rp);
    const char *m = bv_error_msg();
    if (st != BV_ERR_ARG || !strstr(m, "dir/plan.json") || !strstr(m, "global_batch 64") ||
        !strstr(m, "micro_batch 2") || !strstr(m, "3 ranks"))
        fail_msg("3 ranks of global batch 64 / micro-batch 2: status %d, \"%s\"", st, m);
    assert_int_equal(rp.world_size, 0); /* zeroed */
    /* more ranks than the global batch has micro-batches */
    assert_int_equal(bv_train_plan_rank(&p, &r, 64, 0, &rp), BV_ERR_ARG);
    bv_recipe_free(&r);
    const char *odd[] = {"global_batch=3", "micro_batch=2"};
    recipe(&r, 2, odd);
    assert_int_equal(bv_train_plan_rank(&p, &r, 1, 0, &rp), BV_ERR_ARG);
    if (!strstr(bv_error_msg(), "global_batch 3") || !strstr(bv_error_msg(), "1 rank ="))
        fail_msg("global batch 3 / micro-batch 2: \"%s\"", bv_error_msg());
    /* no N divides it: no rank count */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 1, true, 1e30, 1024, &rp), 0);
    assert_int_equal(rp.world_size, 0);
    bv_recipe_free(&r);
}

static void test_min_ranks(void **state) {
    (void)state;
    /* W + C + A = 10, gradients 4, moments 8 (units of 1e9 bytes); comm on N > 1: 2 buckets of
     * 1 MB rounded up to whole 64 KiB norm chunks */
    const double U = 1e9, C = 2 * ceil(1e6 / 65536.0) * 65536.0;
    bv_train_plan p = plan(4 * U, 2 * U, 4 * U, 4 * U, 0.5 * U, 2);
    const char *ov[] = {"distributed.exact=false", "accumulation=1", "distributed.bucket_mb=1"};
    bv_recipe r;
    recipe(&r, 3, ov);
    bv_rank_plan at;
    /* ZeRO-1, every rank: 10 + 4 + 8 / N + C <= 15 + C from N = 8 */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 1, false, 15 * U + C, 1024, &at), 8);
    assert_int_equal(at.world_size, 8);
    expect_eq("N=8 bytes", at.bytes, 15 * U + C);
    /* with rank 0's streaming buffer (one bucket, C / 2, on N > 1) N = 8 is just over: N = 9 */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 1, true, 15 * U + C, 1024, &at), 9);
    expect_eq("N=9 peak", at.rank0_peak, 14 * U + 8 * U / 9 + 1.5 * C);
    /* below every N's peak: none, and the least peak is reported */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 1, true, 14 * U, 16, &at), 0);
    assert_int_equal(at.world_size, 16);
    expect_eq("least peak", at.rank0_peak, 14.5 * U + 1.5 * C);
    /* 22 fits one rank */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 1, true, 22 * U, 1024, NULL), 1);
    /* ZeRO-2, every rank: 10 + 12 / N + C <= 12.4 + C from N = 5; max_n 4: none */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 2, false, 12.4 * U + C, 1024, NULL), 5);
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 2, false, 12.4 * U + C, 4, NULL), 0);
    /* the floor: what no N takes off */
    char what[96];
    expect_eq("floor zero 0", bv_train_plan_floor(&p, &r, 0, what, sizeof what), 22 * U);
    assert_string_equal(what, "weights + caches + activations + gradients + AdamW moments");
    expect_eq("floor zero 1", bv_train_plan_floor(&p, &r, 1, what, sizeof what), 14 * U);
    expect_eq("floor zero 2", bv_train_plan_floor(&p, &r, 2, what, sizeof what), 10 * U);
    assert_string_equal(what, "weights + caches + activations");
    bv_recipe_free(&r);
    /* global batch 16 / micro-batch 2 allows N = 1, 2, 4, 8: N = 5 would do, 8 is the answer */
    const char *gb[] = {"distributed.exact=false", "global_batch=16", "micro_batch=2", "distributed.bucket_mb=1"};
    recipe(&r, 4, gb);
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 2, false, 12.4 * U + C, 1024, &at), 8);
    assert_int_equal(at.accumulation, 1);
    /* nothing past 8 is allowed */
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 2, false, 11.4 * U + C, 1024, &at), 0);
    assert_int_equal(at.world_size, 8);
    bv_recipe_free(&r);
    /* without sharding, exact: more ranks help through a smaller A (partials floor(log2 8) = 3 x 4
       on N = 1, A = 8; 2 x 4 + comm C on N = 2, A = 4) */
    const char *ex[] = {"distributed.exact=true", "global_batch=16", "micro_batch=2", "distributed.bucket_mb=1"};
    recipe(&r, 4, ex);
    expect_eq("N=1 exact", rank(&p, &r, 1, 0).bytes, 34 * U);
    expect_eq("N=2 exact", rank(&p, &r, 2, 0).bytes, 30 * U + C);
    assert_int_equal(bv_train_plan_min_ranks(&p, &r, 0, true, 30 * U + C, 1024, NULL), 2);
    /* the floor leaves the partials out: they shrink with N here */
    expect_eq("floor with global_batch", bv_train_plan_floor(&p, &r, 0, NULL, 0), 22 * U);
    bv_recipe_free(&r);
    /* ...and counts them when A is fixed */
    const char *fx[] = {"distributed.exact=true", "accumulation=8"};
    recipe(&r, 2, fx);
    expect_eq("floor with accumulation 8", bv_train_plan_floor(&p, &r, 1, what, sizeof what), 26 * U);
    assert_string_equal(what, "weights + caches + activations + gradients + exact partial sums");
    bv_recipe_free(&r);
}

/* the tiny preset's plan: the largest trainable tensor is the largest trainable parameter, frozen
 * ones left out */
static double largest(const bv_model *m) {
    double b = 0;
    for (int i = 0; i < m->params.n; i++)
        if (m->params.items[i].trainable) b = BV_MAX(b, 4.0 * (double)m->params.items[i].numel);
    return b;
}

static void test_largest_tensor(void **state) {
    (void)state;
    const char *const freeze[] = {"language_model.", NULL};
    for (int f = 0; f < 2; f++) {
        bv_model m;
        bv_model_spec spec = {.config = "tiny", .purpose = BV_MODEL_SHAPES, .freeze = f ? freeze : NULL};
        if (bv_model_build(&m, &spec) != BV_OK) fail_msg("tiny: %s", bv_error_msg());
        bv_train_plan p;
        bv_plan_modules(&m, &p);
        const double want = largest(&m);
        assert_true(want > 0);
        expect_eq(f ? "largest trainable tensor, LLM frozen" : "largest trainable tensor", p.max_trainable_tensor,
                  want);
        bv_model_free(&m);
    }
    /* through a recipe: bv_train_plan_make keeps it, and one rank's plan is the plan's total */
    bv_recipe r;
    recipe(&r, 0, NULL);
    bv_train_plan p;
    if (bv_train_plan_make(&p, &r, 0) != BV_OK) fail_msg("plan: %s", bv_error_msg());
    assert_true(p.max_trainable_tensor > 0);
    r.distributed.exact = false;
    expect_eq("one rank = the plan", rank(&p, &r, 1, 0).bytes, p.bytes);
    bv_recipe_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sharding),        cmocka_unit_test(test_comm_buffers),
        cmocka_unit_test(test_exact_partials),  cmocka_unit_test(test_global_batch_error),
        cmocka_unit_test(test_min_ranks),       cmocka_unit_test(test_largest_tensor),
    };
    return cmocka_run_group_tests_name("plan", tests, NULL, NULL);
}
