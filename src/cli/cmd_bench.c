#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "cli.h"

int bv_cmd_bench(int argc, char **argv) {
    if (argc < 2 || bv_cli_wants_help(argc, argv)) {
        printf("usage: bitvla bench <matmul|encoder|fullsize> [--reps N] [--threads N]\n\n"
               "  matmul   the matmul path (linear, batched matmul) vs raw cblas_sgemm on the same shapes\n"
               "  encoder  a full-precision SigLIP-so400m encoder layer forward+backward (B=2, T=256)\n"
               "  fullsize bitvla-2b model code: the 26-layer W1.58A8 vision tower on 2 images and one BitNet\n"
               "           layer at T=600, forward+backward [--part tower|llm|all] (default --reps 3; ~8 GB, minutes)\n\n"
               "Prints figures; scripts/bench runs these beside the PyTorch peer and prints ratios.\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "matmul")) return bv_bench_matmul(argc - 1, argv + 1);
    if (!strcmp(argv[1], "encoder")) return bv_bench_encoder(argc - 1, argv + 1);
    if (!strcmp(argv[1], "fullsize")) return bv_bench_fullsize(argc - 1, argv + 1);
    fprintf(stderr, "bitvla bench: unknown benchmark '%s' (expected matmul, encoder or fullsize)\n", argv[1]);
    return 2;
}
