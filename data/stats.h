/* stats.h - dataset statistics in OpenVLA-OFT's format (dataset_statistics.json).
 *
 * For each of `action` and `proprio`, per dimension over every transition of every episode:
 * mean, std (population, ddof = 0), max, min, q01, q99, and the normalization mask, plus
 * num_transitions and num_trajectories, under the dataset's name:
 *     {"NAME": {"action": {"mean": [...], "std": [...], "max": [...], "min": [...],
 *                          "q01": [...], "q99": [...], "mask": [true, ...]},
 *               "proprio": {...}, "num_transitions": N, "num_trajectories": E}}
 * OFT computes these with numpy on float32 arrays (`get_dataset_statistics`). Here:
 *  - q01 / q99 reproduce np.quantile(x, q, axis=0) with its default method 'linear' exactly:
 *    sorted values v, h = (n - 1) * q, i = floor(h), g = h - i, d = v[i+1] - v[i] computed in
 *    float32 (numpy subtracts the float32 values), result v[i] + d * g in double, or
 *    v[i+1] - d * (1 - g) when g >= 0.5 (numpy's _lerp), i + 1 clipped to n - 1;
 *  - max and min are the float32 extremes, exact;
 *  - mean and std are computed in double precision (two passes). numpy's float32 reduction along
 *    axis 0 accumulates in float32, so its figures differ from these by float32 rounding (about
 *    1e-6 relative on small sets, more on millions of rows); these are the more accurate ones.
 *
 * Owns: a bv_stats owns its arrays (bv_stats_free).
 * Must not: know where the data comes from.
 */
#ifndef BV_DATA_STATS_H
#define BV_DATA_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

typedef struct {
    int dim;
    double *mean, *std, *max, *min, *q01, *q99;
} bv_stats;

/* Statistics of n rows of d floats (row-major x[n][d]); n >= 1. */
void bv_stats_compute(const float *x, int64_t n, int d, bv_stats *out);
void bv_stats_free(bv_stats *s);
/* np.quantile(v, q) with method 'linear' of n >= 1 ascending float32 values. */
double bv_quantile_linear(const float *sorted, int64_t n, double q);

/* Write dataset_statistics.json atomically. Masks may be NULL (all true). */
bv_status bv_stats_write(const char *path, const char *dataset_name, const bv_stats *action, const bool *action_mask,
                         const bv_stats *proprio, const bool *proprio_mask, int64_t num_transitions,
                         int64_t num_trajectories);

#endif
