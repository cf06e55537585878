#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "cli.h"

int bv_cmd_bench(int argc, char **argv) {
    if (argc < 2 || bv_cli_wants_help(argc, argv)) {
        printf("usage: bitvla bench <matmul|encoder|bitlinear|ternary> [--reps N] [--threads N]\n\n"
               "  matmul     the matmul path (linear, batched matmul) vs raw cblas_sgemm on the same shapes\n"
               "  encoder    a SigLIP-so400m encoder layer forward+backward (B=2, T=256); --quant adds the\n"
               "             layer with q,k,v,out_proj,fc1,fc2 as BitLinear W1.58A8 and the QAT overhead\n"
               "  bitlinear  BitLinear W1.58A8 vs full-precision linear forward+backward at the SigLIP\n"
               "             layer shapes (the QAT overhead)\n"
               "  ternary    the integer BitLinear forward (int8 x ternary) vs fp32 sgemv/sgemm\n\n"
               "Prints figures; scripts/bench runs these beside the PyTorch peer and prints ratios.\n");
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "matmul")) return bv_bench_matmul(argc - 1, argv + 1);
    if (!strcmp(argv[1], "encoder")) return bv_bench_encoder(argc - 1, argv + 1);
    if (!strcmp(argv[1], "bitlinear")) return bv_bench_bitlinear(argc - 1, argv + 1);
    if (!strcmp(argv[1], "ternary")) return bv_bench_ternary(argc - 1, argv + 1);
    fprintf(stderr, "bitvla bench: unknown benchmark '%s' (expected matmul, encoder, bitlinear or ternary)\n",
            argv[1]);
    return 2;
}
