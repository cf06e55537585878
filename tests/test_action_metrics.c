/* Tests of the offline action metrics (recipes/action_metrics.h), on chunks small enough to score
 * by hand (chunk 2, 3 dimensions, the last the gripper):
 *  - per unit, overall and per task: L1, per-dimension errors normalised and in robot units,
 *    gripper accuracy with the threshold at 0.5 (closed) as OFT binarises it;
 *  - a partial unit weighs rows / batch_size in the overall L1, a full one exactly 1 (the plain
 *    mean of the units' losses, as the trainer has always logged val_l1);
 *  - the same units in another order, or spread over two "processes" and summed (bv_am_sum),
 *    give the same bits;
 *  - no gripper dimension, no tasks, bad configurations. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "recipes/action_metrics.h"
#include "src/kernels/loss.h"
#include "tests/util/testutil.h"

enum { C = 2, A = 3 };

static void close_to(double got, double want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol)) fail_msg("%s: got %.17g, want %.17g (tol %g)", what, got, want, tol);
}

/* dim 0: q01 0, q99 4 (robot units = 2 (a + 1)); dim 1: q01 -1, q99 1 (= a); dim 2, the gripper:
 * not normalised (mask off) */
static bv_am_cfg cfg(int gripper_dim) {
    bv_am_cfg c = {.chunk = C, .action_dim = A, .batch_size = 2, .gripper_dim = gripper_dim};
    c.norm.dim = A;
    c.norm.q01[0] = 0, c.norm.q99[0] = 4, c.norm.min[0] = -1, c.norm.max[0] = 5, c.norm.mask[0] = true;
    c.norm.q01[1] = -1, c.norm.q99[1] = 1, c.norm.min[1] = -1, c.norm.max[1] = 1, c.norm.mask[1] = true;
    c.norm.q01[2] = 0, c.norm.q99[2] = 1, c.norm.min[2] = 0, c.norm.max[2] = 1, c.norm.mask[2] = false;
    return c;
}

/* unit 0: two rows ("stack the cube", "open the drawer"), unit 1: one row ("stack the cube") */
static const float U0_PRED[2 * C * A] = {0.5f, 0.25f, 0.75f, 0.0f, -0.5f, 0.25f,   /* |err| 0.5 0 0.25, 0.5 1 0.25 */
                                         0.25f, 0.0f, 0.5f, 0.0f, 0.0f, 0.875f};   /* |err| 0.25 0 0.5, 0 0.75 0.125 */
static const float U0_TARGET[2 * C * A] = {0.0f, 0.25f, 1.0f, 0.5f, 0.5f, 0.0f,   /* gripper: open/open, closed/closed */
                                           0.0f, 0.0f, 1.0f, 0.0f, 0.75f, 1.0f};  /* 0.5 is closed vs open; open/open */
static const float U1_PRED[C * A] = {1.0f, 0.5f, 0.0f, -1.0f, 0.0f, 1.0f};        /* |err| 0.5 0 1, 0 0.25 0 */
static const float U1_TARGET[C * A] = {0.5f, 0.5f, 1.0f, -1.0f, 0.25f, 1.0f};     /* closed vs open; open/open */
static const char *const U0_TASKS[2] = {"stack the cube", "open the drawer"};
static const char *const U1_TASKS[1] = {"stack the cube"};

static bv_am *make(int gripper_dim, bool tasks, bool reverse) {
    bv_am_cfg c = cfg(gripper_dim);
    bv_am *m;
    if (bv_am_init(&m, &c)) fail_msg("bv_am_init: %s", bv_error_msg());
    for (int k = 0; k < 2; k++) {
        if ((k == 0) != reverse) bv_am_add(m, 0, U0_PRED, U0_TARGET, 2, tasks ? U0_TASKS : NULL);
        else bv_am_add(m, 1, U1_PRED, U1_TARGET, 1, tasks ? U1_TASKS : NULL);
    }
    return m;
}

static void check_dims(const bv_am_group *g, const double *norm, double n, const char *what) {
    char w[96];
    for (int d = 0; d < A; d++) {
        snprintf(w, sizeof w, "%s dim_l1[%d]", what, d);
        close_to(g->dim_l1[d], norm[d] / n, 1e-12, w);
        /* robot units: dimension 0 twice the normalised error, 1 the same (to the 1e-8 of the
         * un-normalisation and float rounding), the gripper unchanged */
        snprintf(w, sizeof w, "%s dim_l1_raw[%d]", what, d);
        close_to(g->dim_l1_raw[d], (d == 0 ? 2 : 1) * norm[d] / n, d == 2 ? 1e-12 : 1e-6, w);
    }
}

static void test_hand_computed(void **state) {
    (void)state;
    bv_am *m = make(2, true, false);
    bv_am_summary s;
    bv_am_summarize(m, &s);
    /* overall: unit 0's L1 4.125 / 12 (weight 1), unit 1's 1.75 / 6 as the loss kernel's float
     * (weight 1 row / batch 2) */
    double u1 = (double)(float)(1.75 / 6.0);
    assert_true((double)bv_k_l1_loss_fwd(U1_PRED, U1_TARGET, C * A) == u1);
    close_to(s.all.l1, (0.34375 + 0.5 * u1) / 1.5, 1e-15, "overall l1");
    assert_int_equal(s.all.samples, 3);
    assert_int_equal(s.all.units, 2);
    const double all_dims[A] = {1.75, 2.0, 2.125};
    check_dims(&s.all, all_dims, 6, "overall");
    assert_int_equal(s.all.gripper_correct, 4);
    assert_int_equal(s.all.gripper_total, 6);
    close_to(s.all.gripper_acc, 4.0 / 6.0, 1e-15, "overall gripper");
    /* per task, sorted by instruction */
    assert_int_equal(s.n_tasks, 2);
    const bv_am_group *od = &s.tasks[0], *sc = &s.tasks[1];
    assert_string_equal(od->task, "open the drawer");
    assert_string_equal(sc->task, "stack the cube");
    assert_int_equal(od->samples, 1);
    assert_int_equal(od->units, 1);
    assert_int_equal(sc->samples, 2);
    assert_int_equal(sc->units, 2);
    close_to(od->l1, 1.625 / 6, 1e-15, "'open the drawer' l1");
    close_to(sc->l1, 4.25 / 12, 1e-15, "'stack the cube' l1");
    const double od_dims[A] = {0.25, 0.75, 0.625}, sc_dims[A] = {1.5, 1.25, 1.5};
    check_dims(od, od_dims, 2, "'open the drawer'");
    check_dims(sc, sc_dims, 4, "'stack the cube'");
    assert_int_equal(od->gripper_correct, 1);
    assert_int_equal(od->gripper_total, 2);
    assert_int_equal(sc->gripper_correct, 3);
    assert_int_equal(sc->gripper_total, 4);
    bv_am_summary_free(&s);
    bv_am_free(m);
}

/* full units: the plain mean of their losses, bit for bit (the trainer's val_l1) */
static void test_full_units_mean(void **state) {
    (void)state;
    bv_am_cfg c = cfg(2);
    bv_am *m;
    assert_int_equal(bv_am_init(&m, &c), BV_OK);
    bv_am_add(m, 0, U0_PRED, U0_TARGET, 2, NULL);
    static const float u2[2 * C * A] = {0.3f, -0.7f, 0.1f, 0.9f, 0.2f, -0.4f, 0.6f, 0.05f, -0.2f, 0.33f, 0.71f, 0.0f};
    bv_am_add(m, 1, u2, U0_TARGET, 2, NULL); /* another full unit */
    bv_am_summary s;
    bv_am_summarize(m, &s);
    double l0 = (double)bv_k_l1_loss_fwd(U0_PRED, U0_TARGET, 2 * C * A);
    double l1 = (double)bv_k_l1_loss_fwd(u2, U0_TARGET, 2 * C * A);
    double sum = 0;
    sum += l0, sum += l1;
    if (s.all.l1 != sum / 2) fail_msg("full units: l1 %.17g, the mean of the losses %.17g", s.all.l1, sum / 2);
    assert_int_equal(s.n_tasks, 0); /* no tasks given: overall only */
    bv_am_summary_free(&s);
    bv_am_free(m);
}

static void same_overall(const bv_am_summary *a, const bv_am_summary *b, const char *what) {
    if (memcmp(&a->all.l1, &b->all.l1, sizeof(double)) || memcmp(a->all.dim_l1, b->all.dim_l1, sizeof a->all.dim_l1) ||
        memcmp(a->all.dim_l1_raw, b->all.dim_l1_raw, sizeof a->all.dim_l1_raw) ||
        a->all.gripper_correct != b->all.gripper_correct || a->all.samples != b->all.samples ||
        a->all.units != b->all.units)
        fail_msg("%s: overall l1 %.17g vs %.17g, samples %lld vs %lld, gripper %lld vs %lld", what, a->all.l1, b->all.l1,
                 (long long)a->all.samples, (long long)b->all.samples, (long long)a->all.gripper_correct,
                 (long long)b->all.gripper_correct);
}

typedef struct {
    double *keep;  /* capture: a copy of this process's records */
    const double *add; /* add: the other process's records */
    int64_t n;
} fake_mpi;

static void capture(void *ctx, double *x, int64_t n) {
    fake_mpi *f = ctx;
    f->keep = test_malloc((size_t)n * sizeof(double));
    memcpy(f->keep, x, (size_t)n * sizeof(double));
    f->n = n;
}

static void add_other(void *ctx, double *x, int64_t n) {
    fake_mpi *f = ctx;
    assert_int_equal(n, f->n);
    for (int64_t i = 0; i < n; i++) x[i] += f->add[i];
}

static void test_order_and_processes(void **state) {
    (void)state;
    bv_am *ref = make(2, true, false), *rev = make(2, true, true);
    bv_am_summary a, b;
    bv_am_summarize(ref, &a);
    bv_am_summarize(rev, &b);
    same_overall(&a, &b, "units added in reverse");
    bv_am_summary_free(&b);
    /* two processes: unit 0 on one, unit 1 on the other, summed element-wise */
    bv_am_cfg c = cfg(2);
    bv_am *p0, *p1;
    assert_int_equal(bv_am_init(&p0, &c), BV_OK);
    assert_int_equal(bv_am_init(&p1, &c), BV_OK);
    bv_am_add(p0, 0, U0_PRED, U0_TARGET, 2, U0_TASKS);
    bv_am_add(p1, 1, U1_PRED, U1_TARGET, 1, U1_TASKS);
    fake_mpi f0 = {0}, f1 = {0};
    bv_am_sum(p0, 2, capture, &f0);
    bv_am_sum(p1, 2, capture, &f1);
    f0.add = f1.keep, f1.add = f0.keep;
    bv_am_sum(p0, 2, add_other, &f0);
    bv_am_sum(p1, 2, add_other, &f1);
    for (int k = 0; k < 2; k++) {
        bv_am_summarize(k ? p1 : p0, &b);
        same_overall(&a, &b, k ? "process 1 after the sum" : "process 0 after the sum");
        assert_int_equal(b.n_tasks, k ? 1 : 2); /* the task groups stay each process's own */
        bv_am_summary_free(&b);
    }
    test_free(f0.keep);
    test_free(f1.keep);
    bv_am_summary_free(&a);
    bv_am_free(ref);
    bv_am_free(rev);
    bv_am_free(p0);
    bv_am_free(p1);
}

static void test_gripper_threshold(void **state) {
    (void)state;
    assert_true(bv_action_gripper_open(1.0f));
    assert_true(bv_action_gripper_open(0.51f));
    assert_false(bv_action_gripper_open(0.5f)); /* 2a - 1 = 0 is not > 0 */
    assert_false(bv_action_gripper_open(0.0f));
    assert_false(bv_action_gripper_open(NAN));
    /* no gripper dimension: no accuracy, the errors as before */
    bv_am *m = make(-1, true, false);
    bv_am_summary s;
    bv_am_summarize(m, &s);
    assert_true(isnan(s.all.gripper_acc) && s.all.gripper_total == 0);
    assert_true(isnan(s.tasks[0].gripper_acc));
    close_to(s.all.dim_l1[2], 2.125 / 6, 1e-12, "dim_l1[2] without a gripper");
    bv_am_summary_free(&s);
    bv_am_free(m);
    /* nothing added: NaN figures, no samples */
    bv_am_cfg c = cfg(2);
    assert_int_equal(bv_am_init(&m, &c), BV_OK);
    bv_am_summarize(m, &s);
    assert_true(isnan(s.all.l1) && isnan(s.all.gripper_acc) && s.all.samples == 0 && s.n_tasks == 0);
    bv_am_summary_free(&s);
    bv_am_free(m);
}

static void test_bad_config(void **state) {
    (void)state;
    bv_am *m = NULL;
    bv_am_cfg c = cfg(3);
    assert_int_equal(bv_am_init(&m, &c), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "gripper_dim 3, expected -1 (none) or 0..2"));
    c = cfg(2);
    c.norm.dim = 7;
    assert_int_equal(bv_am_init(&m, &c), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "statistics of 7 action dimensions for action_dim 3"));
    c = cfg(2);
    c.batch_size = 0;
    assert_int_equal(bv_am_init(&m, &c), BV_ERR_ARG);
    assert_null(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_full_units_mean),
        cmocka_unit_test(test_order_and_processes),
        cmocka_unit_test(test_gripper_threshold),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
