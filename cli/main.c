/* main.c - the `bitvla` command: dispatches subcommands.
 *
 * Each subcommand is a function `int cmd_X(int argc, char **argv)` (argv[0] is the subcommand
 * name) that returns the process exit code: 0 on success, 2 for usage errors, 1 for other failures,
 * with a message on stderr that names the flag/file and what was expected. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "src/common.h"
#include "src/cpu.h"

static const bv_cli_command k_commands[] = {
    {"version", "print the version and the build's libraries", bv_cmd_version},
    {"train", "train a policy from a recipe (recipes/*.json), resumable exactly", bv_cmd_train},
    {"bench", "run a built-in benchmark (matmul, encoder)", bv_cmd_bench},
    {"convert", "convert a robot dataset (RLDS, LIBERO HDF5) into shards", bv_cmd_convert},
    {"synth", "write demonstrations of the built-in tabletop task as an RLDS dataset", bv_cmd_synth},
    {"forward", "run the model once on given inputs (parity harness)", bv_cmd_forward},
    {"export", "pack a checkpoint into a deployable bundle (ternary weights packed, manifest, memory report)",
     bv_cmd_export},
    {"info", "parameters and memory per module of a model config or a bundle (training and deployment)", bv_cmd_info},
    {"tokenize", "text <-> token ids with a tokenizer.json (chat template, action prompt)", bv_cmd_tokenize},
    {"tokenizer", "train a small byte-level BPE tokenizer, or convert/edit a tokenizer.json", bv_cmd_tokenizer},
    {"plot", "draw a run's training curves (metrics.jsonl) as a PNG", bv_cmd_plot},
    {"infer", "one action chunk from a bundle or checkpoint on an observation (images, state, task)", bv_cmd_infer},
    {"eval", "closed-loop success rate on the built-in task; offline action metrics on recorded data", bv_cmd_eval},
    {"serve", "serve a policy over HTTP, compatible with OpenVLA-OFT's deploy.py (POST /act)", bv_cmd_serve},
};

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla <command> [options]\n"
            "\n"
            "bitvla trains, distills and exports 1-bit (ternary) vision-language-action policies.\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < BV_ARRAY_LEN(k_commands); i++)
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
    fprintf(f, "\nRun 'bitvla <command> --help' for the options of a command.\n");
}

int main(int argc, char **argv) {
    bv_cpu_fix_blas_core(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) return bv_cmd_version(1, argv + 1);
    for (size_t i = 0; i < BV_ARRAY_LEN(k_commands); i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "bitvla: unknown command '%s' (expected one of:", argv[1]);
    for (size_t i = 0; i < BV_ARRAY_LEN(k_commands); i++) fprintf(stderr, " %s", k_commands[i].name);
    fprintf(stderr, "); see 'bitvla --help'\n");
    return 2;
}
