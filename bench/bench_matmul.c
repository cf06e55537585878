#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bv_bench_matmul(int argc, char **argv) {
    fprintf(stderr, "bitvla bench matmul: not built yet\n");
    return 1;
}
