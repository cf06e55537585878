/* optim/schedule.h - learning-rate and weight-decay schedules, as pure functions of the step.
 *
 * The LR factor f(step) in [0, 1] multiplies every group's peak LR (step 0-based: the LR used by
 * the step-th update), with HF transformers' formulas (the ones the BitVLA and OFT scripts use):
 *   constant   : f = 1 after warmup
 *   warmup     : f = step / warmup for step < warmup (linear from 0)
 *   cosine     : f = r + (1 - r) * 0.5 * (1 + cos(pi * p)), p = (step - warmup) / (total - warmup)
 *                clamped to [0, 1], r = min_lr_ratio (get_cosine_schedule_with_warmup when r = 0)
 *   polynomial : f = r + (1 - r) * (1 - p)^power          (get_polynomial_decay_schedule_with_warmup
 *                with lr_end = r * lr)
 * Weight-decay factor: 1 before weight_decay_off_step, 0 from it (stage II's two-stage decay);
 * off_step < 0: always 1.
 * Owns: nothing. Must not: keep state (resume needs only the step).
 */
#ifndef BV_OPTIM_SCHEDULE_H
#define BV_OPTIM_SCHEDULE_H

#include <stdint.h>

#include "src/common.h"

typedef enum { BV_LR_CONSTANT = 0, BV_LR_COSINE, BV_LR_POLYNOMIAL } bv_lr_kind;

typedef struct {
    bv_lr_kind kind;
    int64_t warmup_steps, total_steps;
    double min_lr_ratio, power;
    int64_t weight_decay_off_step;
} bv_schedule;

/* BV_ERR_ARG naming the field when a value is out of range (warmup in [0, total], total >= 1,
 * ratio in [0, 1], power finite and > 0 for the polynomial kind; other kinds ignore it). */
bv_status bv_schedule_check(const bv_schedule *s);
/* "constant", "cosine", "polynomial"; and back (-1 when unknown). */
const char *bv_lr_kind_name(bv_lr_kind k);
int bv_lr_kind_parse(const char *name);
double bv_schedule_lr_factor(const bv_schedule *s, int64_t step);
double bv_schedule_wd_factor(const bv_schedule *s, int64_t step);

#endif
