/* cmd_bench.c - `bitvla bench <name>`: the built-in benchmarks (printed figures, never pass/fail).
 * scripts/bench runs them beside their peers (PyTorch, raw BLAS) and prints ratios. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "src/common.h"

static const struct {
    const char *name, *help;
    int (*fn)(int argc, char **argv);
} k_benches[] = {
    {"matmul", "the matmul path (linear, batched matmul) vs raw cblas_sgemm on the same shapes", bv_bench_matmul},
    {"encoder", "a SigLIP-so400m encoder layer forward+backward (B=2, T=256); --quant: W1.58A8 projections",
     bv_bench_encoder},
    {"bitlinear", "QAT overhead: BitLinear W1.58A8 vs full-precision linear at the SigLIP shapes", bv_bench_bitlinear},
    {"ternary", "int8 x ternary GEMV/GEMM at the BitNet 2B4T shapes vs sgemm and memory bandwidth", bv_bench_ternary},
    {"loader", "data loader samples/s (JPEG and raw shards) beside the model's time per sample", bv_bench_loader},
    {"fullsize", "bitvla-2b: the 26-layer W1.58A8 tower on 2 images and one BitNet layer at T=600, fwd+bwd",
     bv_bench_fullsize},
    {"train", "a full training step (fwd, bwd, AdamW) of the tiny preset and a mid-size model: time, shares, peak RSS",
     bv_bench_train},
    {"mpi", "data-parallel training steps under mpirun: step time, communication wait, bytes vs a ring all-reduce",
     bv_bench_mpi},
    {"infer", "the runtime on a bundle (tiny, bitvla-2b): latency per action chunk, peak RSS, time split, share of the "
              "ternary kernel's peak, fp32 beside it", bv_bench_infer},
};

int bv_cmd_bench(int argc, char **argv) {
    if (argc < 2 || (argc == 2 && bv_cli_wants_help(argc, argv))) {
        printf("usage: bitvla bench <name> [--reps N] [--threads N] [--json FILE] [options of the benchmark]\n\n");
        for (size_t i = 0; i < BV_ARRAY_LEN(k_benches); i++) printf("  %-10s %s\n", k_benches[i].name, k_benches[i].help);
        printf("\nPrints figures; scripts/bench runs these beside their peers and prints ratios.\n"
               "--json FILE appends them to FILE as JSON lines (rewritten atomically; checked before the run).\n"
               "--threads N: at most what OpenBLAS/OpenMP can run (this build: %d).\n", bv_max_threads(NULL));
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < BV_ARRAY_LEN(k_benches); i++)
        if (!strcmp(argv[1], k_benches[i].name)) return k_benches[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "bitvla bench: unknown benchmark '%s' (expected one of:", argv[1]);
    for (size_t i = 0; i < BV_ARRAY_LEN(k_benches); i++) fprintf(stderr, " %s", k_benches[i].name);
    fprintf(stderr, ")\n");
    return 2;
}
