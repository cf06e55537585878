/* action_metrics.c - offline action metrics, per unit and per task (recipes/action_metrics.h). */
#include "recipes/action_metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/kernels/loss.h"

/* One unit's record, doubles so that bv_am_sum can add the records of the processes:
 * [U_PRESENT] 1 once added, [U_L1] its l1 (the loss kernel's float), [U_WEIGHT] rows / batch_size,
 * [U_ROWS], [U_GRIP_OK], [U_GRIP_N], then A sums of |error| normalised and A in robot units. */
enum { U_PRESENT, U_L1, U_WEIGHT, U_ROWS, U_GRIP_OK, U_GRIP_N, U_DIMS };

typedef struct {
    char *task;
    int64_t samples, units, last_unit;
    int64_t grip_ok, grip_n;
    double ae[BV_ACTION_NORM_MAX_DIM], raw[BV_ACTION_NORM_MAX_DIM]; /* sums of |error|: normalised, robot units */
} group;

struct bv_am {
    bv_am_cfg c;
    int stride;           /* doubles per unit record: U_DIMS + 2 A */
    double *units;        /* cap records */
    int64_t n, cap;       /* units [0, n) may be present */
    group *groups;        /* in order of first appearance */
    int n_groups, cap_groups, last_group;
    float *pred_raw, *target_raw; /* chunk x A scratch */
};

bv_status bv_am_init(bv_am **out, const bv_am_cfg *c) {
    *out = NULL;
    if (c->chunk < 1 || c->action_dim < 1 || c->batch_size < 1)
        return bv_error_set(BV_ERR_ARG, "action metrics: chunk %d, action_dim %d and batch_size %d must be >= 1",
                            c->chunk, c->action_dim, c->batch_size);
    if (c->action_dim > BV_ACTION_NORM_MAX_DIM)
        return bv_error_set(BV_ERR_ARG, "action metrics: action_dim %d, at most %d", c->action_dim,
                            BV_ACTION_NORM_MAX_DIM);
    if (c->norm.dim != c->action_dim)
        return bv_error_set(BV_ERR_ARG, "action metrics: statistics of %d action dimensions for action_dim %d",
                            c->norm.dim, c->action_dim);
    if (c->gripper_dim < -1 || c->gripper_dim >= c->action_dim)
        return bv_error_set(BV_ERR_ARG, "action metrics: gripper_dim %d, expected -1 (none) or 0..%d", c->gripper_dim,
                            c->action_dim - 1);
    bv_am *m = bv_xcalloc(1, sizeof *m);
    m->c = *c;
    m->stride = U_DIMS + 2 * c->action_dim;
    m->last_group = -1;
    size_t n = (size_t)c->chunk * (size_t)c->action_dim;
    m->pred_raw = bv_xmalloc(n * sizeof(float));
    m->target_raw = bv_xmalloc(n * sizeof(float));
    *out = m;
    return BV_OK;
}

void bv_am_free(bv_am *m) {
    if (!m) return;
    for (int i = 0; i < m->n_groups; i++) free(m->groups[i].task);
    free(m->groups);
    free(m->units);
    free(m->pred_raw);
    free(m->target_raw);
    free(m);
}

/* room for units [0, n), new records zero */
static void reserve_units(bv_am *m, int64_t n) {
    if (n <= m->cap) return;
    int64_t cap = BV_MAX(n, 2 * m->cap);
    m->units = bv_xrealloc(m->units, (size_t)cap * (size_t)m->stride * sizeof(double));
    memset(m->units + m->cap * m->stride, 0, (size_t)(cap - m->cap) * (size_t)m->stride * sizeof(double));
    m->cap = cap;
}

static group *find_group(bv_am *m, const char *task) {
    /* rows of a batch mostly share a task: try the last one first */
    if (m->last_group >= 0 && !strcmp(m->groups[m->last_group].task, task)) return &m->groups[m->last_group];
    for (int i = 0; i < m->n_groups; i++)
        if (!strcmp(m->groups[i].task, task)) {
            m->last_group = i;
            return &m->groups[i];
        }
    if (m->n_groups == m->cap_groups) {
        m->cap_groups = m->cap_groups ? 2 * m->cap_groups : 8;
        m->groups = bv_xrealloc(m->groups, (size_t)m->cap_groups * sizeof *m->groups);
    }
    group *g = &m->groups[m->n_groups];
    memset(g, 0, sizeof *g);
    g->task = bv_xstrdup(task);
    g->last_unit = -1;
    m->last_group = m->n_groups++;
    return g;
}

void bv_am_add(bv_am *m, int64_t unit, const float *pred, const float *target, int rows, const char *const *tasks) {
    const int C = m->c.chunk, A = m->c.action_dim, G = m->c.gripper_dim;
    BV_ASSERT(unit >= 0, "unit %lld", (long long)unit);
    BV_ASSERT(rows >= 1 && rows <= m->c.batch_size, "%d rows in a unit of batch_size %d", rows, m->c.batch_size);
    reserve_units(m, unit + 1);
    double *u = m->units + unit * m->stride;
    BV_ASSERT(u[U_PRESENT] == 0, "unit %lld added twice", (long long)unit);
    if (unit >= m->n) m->n = unit + 1;
    const int64_t per_row = (int64_t)C * A;
    u[U_PRESENT] = 1;
    u[U_L1] = (double)bv_k_l1_loss_fwd(pred, target, rows * per_row);
    u[U_WEIGHT] = (double)rows / (double)m->c.batch_size;
    u[U_ROWS] = rows;
    double *uabs = u + U_DIMS, *uraw = u + U_DIMS + A;
    for (int r = 0; r < rows; r++) {
        const float *p = pred + r * per_row, *t = target + r * per_row;
        bv_action_norm_invert(&m->c.norm, p, C, m->pred_raw);
        bv_action_norm_invert(&m->c.norm, t, C, m->target_raw);
        double ae[BV_ACTION_NORM_MAX_DIM] = {0}, raw[BV_ACTION_NORM_MAX_DIM] = {0};
        int64_t ok = 0;
        for (int s = 0; s < C; s++)
            for (int d = 0; d < A; d++) {
                int64_t i = (int64_t)s * A + d;
                ae[d] += fabsf(p[i] - t[i]); /* the loss kernel's float difference */
                raw[d] += fabs((double)m->pred_raw[i] - (double)m->target_raw[i]);
                if (d == G) ok += bv_action_gripper_open(m->pred_raw[i]) == bv_action_gripper_open(m->target_raw[i]);
            }
        for (int d = 0; d < A; d++) uabs[d] += ae[d], uraw[d] += raw[d];
        if (G >= 0) u[U_GRIP_OK] += (double)ok, u[U_GRIP_N] += C;
        if (!tasks || !tasks[r]) continue;
        group *g = find_group(m, tasks[r]);
        g->samples++;
        if (g->last_unit != unit) g->units++, g->last_unit = unit;
        for (int d = 0; d < A; d++) g->ae[d] += ae[d], g->raw[d] += raw[d];
        if (G >= 0) g->grip_ok += ok, g->grip_n += C;
    }
}

void bv_am_sum(bv_am *m, int64_t n_units, void (*sum)(void *ctx, double *x, int64_t n), void *ctx) {
    BV_ASSERT(m->n <= n_units, "units up to %lld were added, beyond the %lld summed", (long long)m->n,
              (long long)n_units);
    reserve_units(m, BV_MAX(n_units, 1));
    sum(ctx, m->units, n_units * m->stride);
    m->n = n_units;
}

static void finish_group(const bv_am *m, bv_am_group *g, const double *ae, const double *raw, int64_t ok,
                         int64_t n) {
    const int C = m->c.chunk, A = m->c.action_dim;
    double total = 0;
    for (int d = 0; d < A; d++) {
        total += ae[d];
        g->dim_l1[d] = g->samples ? ae[d] / ((double)g->samples * C) : NAN;
        g->dim_l1_raw[d] = g->samples ? raw[d] / ((double)g->samples * C) : NAN;
    }
    g->l1 = g->samples ? total / ((double)g->samples * C * A) : NAN;
    g->gripper_correct = ok;
    g->gripper_total = n;
    g->gripper_acc = n ? (double)ok / (double)n : NAN;
}

static int cmp_group(const void *a, const void *b) {
    return strcmp(((const bv_am_group *)a)->task, ((const bv_am_group *)b)->task);
}

void bv_am_summarize(const bv_am *m, bv_am_summary *out) {
    memset(out, 0, sizeof *out);
    const int A = m->c.action_dim;
    out->chunk = m->c.chunk;
    out->action_dim = A;
    out->gripper_dim = m->c.gripper_dim;
    /* overall: the units in unit order */
    double ae[BV_ACTION_NORM_MAX_DIM] = {0}, raw[BV_ACTION_NORM_MAX_DIM] = {0}, l1 = 0, w = 0, ok = 0, n = 0;
    bv_am_group *all = &out->all;
    for (int64_t k = 0; k < m->n; k++) {
        const double *u = m->units + k * m->stride;
        if (!u[U_PRESENT]) continue;
        all->units++;
        all->samples += (int64_t)u[U_ROWS];
        l1 += u[U_WEIGHT] * u[U_L1];
        w += u[U_WEIGHT];
        ok += u[U_GRIP_OK];
        n += u[U_GRIP_N];
        for (int d = 0; d < A; d++) ae[d] += u[U_DIMS + d], raw[d] += u[U_DIMS + A + d];
    }
    finish_group(m, all, ae, raw, (int64_t)ok, (int64_t)n);
    all->l1 = w > 0 ? l1 / w : NAN; /* the units' losses, not the element mean finish_group made */
    out->n_tasks = m->n_groups;
    out->tasks = m->n_groups ? bv_xcalloc((size_t)m->n_groups, sizeof *out->tasks) : NULL;
    for (int i = 0; i < m->n_groups; i++) {
        const group *g = &m->groups[i];
        bv_am_group *o = &out->tasks[i];
        o->task = bv_xstrdup(g->task);
        o->samples = g->samples;
        o->units = g->units;
        finish_group(m, o, g->ae, g->raw, g->grip_ok, g->grip_n);
    }
    if (out->n_tasks > 1) qsort(out->tasks, (size_t)out->n_tasks, sizeof *out->tasks, cmp_group);
}

void bv_am_summary_free(bv_am_summary *s) {
    if (!s) return;
    for (int i = 0; i < s->n_tasks; i++) free(s->tasks[i].task);
    free(s->tasks);
    memset(s, 0, sizeof *s);
}
