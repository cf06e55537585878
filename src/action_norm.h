/* action_norm.h - OFT's BOUNDS_Q99 normalisation of actions and proprio, and its inverse (spec
 * section 6; openvla-oft `normalize_action_and_proprio` and the un-normalisation of
 * `get_action`), from the statistics of a dataset_statistics.json (written by data/stats.h).
 *
 * Used by the loader (training targets and inputs), evaluation and the runtime (the model's
 * outputs back to robot units) without linking either.
 * Owns: nothing (a bv_action_norm is a plain value).
 * Must not: compute statistics (data/stats.h does) or know where the data comes from.
 */
#ifndef BV_ACTION_NORM_H
#define BV_ACTION_NORM_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

#define BV_ACTION_NORM_MAX_DIM 64

typedef struct {
    int dim;
    float q01[BV_ACTION_NORM_MAX_DIM], q99[BV_ACTION_NORM_MAX_DIM], min[BV_ACTION_NORM_MAX_DIM],
        max[BV_ACTION_NORM_MAX_DIM];
    bool mask[BV_ACTION_NORM_MAX_DIM];
} bv_action_norm;

/* Read the "action" or "proprio" entry of dataset `dataset_name` from a dataset_statistics.json
 * (NULL name: the file must hold exactly one dataset). Errors name the file and the key. */
bv_status bv_action_norm_read(const char *path, const char *dataset_name, const char *key, bv_action_norm *out);
/* rows x dim values: where mask, clip(2 (x - q01) / (q99 - q01 + 1e-8) - 1, -1, 1), in float32 as
 * TensorFlow computes it; then every dimension with min == max becomes 0. In place is fine. */
void bv_action_norm_apply(const bv_action_norm *n, const float *x, int64_t rows, float *out);
/* The inverse, for inference: where mask, 0.5 (a + 1) (q99 - q01 + 1e-8) + q01 (in double, as
 * OFT's numpy); other dimensions unchanged. In place is fine. */
void bv_action_norm_invert(const bv_action_norm *n, const float *a, int64_t rows, float *out);

/* A gripper action in robot units of the libero schema ([0, 1], 1 = open; spec section 6) as OFT
 * binarises it at deployment (normalize_gripper_action(binarize=True): sign(2a - 1)): open when
 * 2a - 1 > 0 in float32, so 0.5 and NaN are closed. Closed-loop evaluation maps it to the env's
 * gripper, offline evaluation scores it (recipes/action_metrics.h). */
bool bv_action_gripper_open(float a);

#endif
