/* args.c - the flag helpers every subcommand shares. See cli.h. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "src/common.h"

int bv_cli_wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
    return 0;
}

bool bv_cli_int64(const char *cmd, const char *flag, const char *v, long long lo, long long hi, int64_t *out) {
    long long x;
    if (bv_parse_int(flag, v, lo, hi, &x)) {
        fprintf(stderr, "bitvla %s: %s\n", cmd, bv_error_msg());
        return false;
    }
    *out = (int64_t)x;
    return true;
}

bool bv_cli_int(const char *cmd, const char *flag, const char *v, int lo, int hi, int *out) {
    int64_t x;
    if (!bv_cli_int64(cmd, flag, v, lo, hi, &x)) return false;
    *out = (int)x;
    return true;
}

bool bv_cli_double(const char *cmd, const char *flag, const char *v, double lo, double hi, double *out) {
    if (bv_parse_double(flag, v, lo, hi, out)) {
        fprintf(stderr, "bitvla %s: %s\n", cmd, bv_error_msg());
        return false;
    }
    return true;
}

int bv_cli_rank_threads(int ranks_here) {
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    int bound = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    if (bound > 0 && bound < online) return bound;
    return (int)BV_MAX(1, online / BV_MAX(1, ranks_here));
}
