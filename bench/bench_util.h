/* bench_util.h - shared helpers of the built-in benchmarks: flag parsing, fills, medians. */
#ifndef BV_BENCH_UTIL_H
#define BV_BENCH_UTIL_H

#include <stdint.h>

typedef struct {
    int reps;
    int threads;
    const char *json; /* --json FILE: also append the figures as one JSON object per line */
} bv_bench_opts;

/* Parses --reps N (default 5), --threads N (default: current), --json FILE; sets the threads.
 * Prints a message naming the flag and returns 2 on a bad flag. */
int bv_bench_parse(int argc, char **argv, const char *name, bv_bench_opts *o);
void bv_bench_fill(float *x, int64_t n, uint64_t seed); /* uniform [-1, 1) */
double bv_bench_median(double *t, int n);              /* sorts t */

#endif
