#include <stdio.h>

#include "bench.h"

int bv_bench_encoder(int argc, char **argv) {
    fprintf(stderr, "bitvla bench encoder: not built yet\n");
    return 1;
}
