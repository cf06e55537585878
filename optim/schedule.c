/* optim/schedule.c - LR and weight-decay schedules (optim/schedule.h).
 *
 * The formulas follow HF transformers' lambdas operation by operation, so the factors are the same
 * doubles: the warmup `step / max(1, warmup)`; cosine `0.5 * (1 + cos(pi * progress))` then
 * `factor * (1 - r) + r` (get_cosine_with_min_lr_schedule_with_warmup; with r = 0 that is
 * get_cosine_schedule_with_warmup's value exactly); polynomial with lr_init = 1, lr_end = r. Two
 * deliberate differences, both past total_steps: the progress is clamped to 1 (HF's cosine rises
 * again after total_steps), and the polynomial ends at r itself (HF's lr_end / lr_init can differ
 * from r in the last bit). tests/test_optim.c compares them with HF's values.
 */
#include "optim/schedule.h"

#include <math.h>
#include <string.h>

static const char *const kind_names[] = {"constant", "cosine", "polynomial"};

const char *bv_lr_kind_name(bv_lr_kind k) {
    return (unsigned)k < BV_ARRAY_LEN(kind_names) ? kind_names[k] : "unknown";
}

int bv_lr_kind_parse(const char *name) {
    for (int k = 0; name && k < (int)BV_ARRAY_LEN(kind_names); k++)
        if (strcmp(name, kind_names[k]) == 0) return k;
    return -1;
}

bv_status bv_schedule_check(const bv_schedule *s) {
    if ((unsigned)s->kind >= BV_ARRAY_LEN(kind_names))
        return bv_error_set(BV_ERR_ARG, "schedule: kind must be constant, cosine or polynomial, got %d", (int)s->kind);
    if (s->total_steps < 1)
        return bv_error_set(BV_ERR_ARG, "schedule: total_steps must be >= 1, got %lld", (long long)s->total_steps);
    if (s->warmup_steps < 0 || s->warmup_steps > s->total_steps)
        return bv_error_set(BV_ERR_ARG, "schedule: warmup_steps must be in [0, total_steps = %lld], got %lld",
                            (long long)s->total_steps, (long long)s->warmup_steps);
    if (!(s->min_lr_ratio >= 0 && s->min_lr_ratio <= 1))
        return bv_error_set(BV_ERR_ARG, "schedule: min_lr_ratio must be in [0, 1], got %g", s->min_lr_ratio);
    /* the power matters to the polynomial schedule alone: a cosine config need not set it */
    if (s->kind == BV_LR_POLYNOMIAL && !(s->power > 0 && isfinite(s->power)))
        return bv_error_set(BV_ERR_ARG, "schedule: power must be finite and > 0 for the polynomial schedule, got %g",
                            s->power);
    return BV_OK;
}

double bv_schedule_lr_factor(const bv_schedule *s, int64_t step) {
    if (step < 0) step = 0;
    int64_t warmup = s->warmup_steps;
    if (step < warmup) return (double)step / (double)BV_MAX(warmup, 1);
    if (s->kind == BV_LR_CONSTANT) return 1.0;
    double progress = (double)(step - warmup) / (double)BV_MAX(s->total_steps - warmup, 1);
    if (progress > 1) progress = 1;
    double r = s->min_lr_ratio;
    if (s->kind == BV_LR_COSINE) {
        double factor = 0.5 * (1.0 + cos(M_PI * progress));
        factor = factor * (1 - r) + r;
        return factor > 0 ? factor : 0;
    }
    /* HF: lr_range = lr_init - lr_end; decay = lr_range * pct_remaining**power + lr_end */
    double pct_remaining = 1 - progress;
    return (1 - r) * pow(pct_remaining, s->power) + r;
}

double bv_schedule_wd_factor(const bv_schedule *s, int64_t step) {
    return s->weight_decay_off_step >= 0 && step >= s->weight_decay_off_step ? 0.0 : 1.0;
}
