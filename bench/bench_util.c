#include "bench/bench_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/common.h"

static int parse_pos_int(const char *cmd, const char *flag, const char *v, int *out) {
    long long x;
    if (bv_parse_int(flag, v, 1, 100000, &x)) {
        fprintf(stderr, "bitvla bench %s: %s\n", cmd, bv_error_msg());
        return 2;
    }
    *out = (int)x;
    return 0;
}

int bv_bench_parse(int argc, char **argv, const char *name, bv_bench_opts *o) {
    o->reps = 5;
    o->threads = bv_num_threads();
    o->json = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--reps")) {
            if (parse_pos_int(name, "--reps", v, &o->reps)) return 2;
            i++;
        } else if (!strcmp(argv[i], "--threads")) {
            if (parse_pos_int(name, "--threads", v, &o->threads)) return 2;
            i++;
        } else if (!strcmp(argv[i], "--json")) {
            if (!v) {
                fprintf(stderr, "bitvla bench %s: --json expects a file name\n", name);
                return 2;
            }
            o->json = v;
            i++;
        } else {
            fprintf(stderr, "bitvla bench %s: unknown option '%s' (expected --reps N, --threads N, --json FILE)\n",
                    name, argv[i]);
            return 2;
        }
    }
    bv_set_num_threads(o->threads);
    return 0;
}

void bv_bench_fill(float *x, int64_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 4503599627370496.0 - 1.0);
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bv_bench_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}
