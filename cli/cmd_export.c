/* cmd_export.c - `bitvla export`: a checkpoint (or a random model) -> a deployable bundle
 * (recipes/export.h; docs/formats.md "Bundles"). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "recipes/export.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla export CHECKPOINT --out BUNDLE_DIR [--format hf|tq5|i2s] [--dtype bf16|f32] [--force]\n"
            "                     [--keep-lm-head] [--tokenizer T.json] [--statistics S.json]\n"
            "       bitvla export --config PRESET|config.json --random-init SEED --tokenizer T.json\n"
            "                     --statistics S.json --out BUNDLE_DIR [same options]\n"
            "\n"
            "Packs a trained policy into a deployable bundle: every ternary (BitLinear) weight quantized exactly\n"
            "as training's forward does and packed, everything else in --dtype, plus config.json, tokenizer.json,\n"
            "dataset_statistics.json, memory_report.json and manifest.json (sizes and CRC-32C of every file).\n"
            "\n"
            "CHECKPOINT        a checkpoint directory (RUN/checkpoints/step-N) or a run directory (its\n"
            "                  checkpoints/latest is exported)\n"
            "--out DIR         the bundle directory; written whole or not at all. An existing one is refused\n"
            "                  unless --force, which replaces it atomically\n"
            "--format F        ternary layout: hf (default; transformers' BitNet offline packing with\n"
            "                  weight_scale, loadable by transformers), tq5 (1.6 bits/weight, bitvla's), i2s\n"
            "                  (bitnet.cpp's I2_S; every ternary input dimension must be a multiple of 128)\n"
            "--dtype D         bf16 (default) or f32: embeddings, norms, connector, heads\n"
            "--keep-lm-head    keep language_model.lm_head.weight (an action policy never runs it: dropped by\n"
            "                  default)\n"
            "--tokenizer T     tokenizer.json to put in the bundle (default: the checkpoint's)\n"
            "--statistics S    dataset_statistics.json to put in the bundle (default: the checkpoint's)\n"
            "--config C --random-init SEED\n"
            "                  export a randomly initialised model of config C instead of a checkpoint (e.g. the\n"
            "                  full-size bitvla-2b, to measure its bundle); needs --tokenizer and --statistics\n"
            "\n"
            "Prints the memory report (bytes per module, what was dropped); 'bitvla info BUNDLE_DIR' prints it\n"
            "again. Exit status: 0 done, 1 failed (nothing written), 2 bad usage.\n");
}

int bv_cmd_export(int argc, char **argv) {
    bv_export_opts o = {.layout = BV_TPACK_HF, .dtype = BV_DTYPE_BF16, .log = stderr};
    const char *seed_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        const bool has_value = !strcmp(a, "--out") || !strcmp(a, "--format") || !strcmp(a, "--dtype") ||
                               !strcmp(a, "--tokenizer") || !strcmp(a, "--statistics") || !strcmp(a, "--config") ||
                               !strcmp(a, "--random-init");
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        if (has_value && !v) {
            fprintf(stderr, "bitvla export: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--out")) o.out = v, i++;
        else if (!strcmp(a, "--format")) {
            if (bv_bundle_layout_parse(v, &o.layout)) {
                fprintf(stderr, "bitvla export: --format expects hf, tq5 or i2s, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--dtype")) {
            if (bv_bundle_dtype_parse(v, &o.dtype)) {
                fprintf(stderr, "bitvla export: --dtype expects bf16 or f32, got '%s'\n", v);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--tokenizer")) o.tokenizer = v, i++;
        else if (!strcmp(a, "--statistics")) o.statistics = v, i++;
        else if (!strcmp(a, "--config")) o.config = v, i++;
        else if (!strcmp(a, "--random-init")) {
            int64_t s;
            if (!bv_cli_int64("export", "--random-init", v, 0, INT64_MAX, &s)) return 2;
            o.random_init = true, o.seed = (uint64_t)s, seed_arg = v, i++;
        } else if (!strcmp(a, "--force")) o.force = true;
        else if (!strcmp(a, "--keep-lm-head")) o.keep_lm_head = true;
        else if (a[0] == '-' && a[1]) {
            fprintf(stderr,
                    "bitvla export: unknown option '%s' (expected --out, --format, --dtype, --force, --keep-lm-head, "
                    "--tokenizer, --statistics, --config, --random-init; see --help)\n",
                    a);
            return 2;
        } else if (o.checkpoint) {
            fprintf(stderr, "bitvla export: expected one CHECKPOINT, got '%s' and '%s'\n", o.checkpoint, a);
            return 2;
        } else o.checkpoint = a;
    }
    (void)seed_arg;
    if (!o.out) {
        fprintf(stderr, "bitvla export: --out BUNDLE_DIR is required\n");
        return 2;
    }
    if (o.random_init) {
        if (o.checkpoint) {
            fprintf(stderr, "bitvla export: give a CHECKPOINT or --random-init SEED, not both\n");
            return 2;
        }
        if (!o.config || !o.tokenizer || !o.statistics) {
            fprintf(stderr, "bitvla export: --random-init needs --config PRESET|config.json, --tokenizer T.json and "
                            "--statistics S.json\n");
            return 2;
        }
    } else {
        if (!o.checkpoint) {
            fprintf(stderr, "bitvla export: give a CHECKPOINT (or --config C --random-init SEED)\n");
            return 2;
        }
        if (o.config) {
            fprintf(stderr, "bitvla export: --config applies to --random-init only (a checkpoint has its config.json)\n");
            return 2;
        }
    }
    bv_export_result r;
    if (bv_export(&o, &r) != BV_OK) {
        fprintf(stderr, "bitvla export: %s\n", bv_error_msg());
        return 1;
    }
    printf("exported %s to %s in %.1f s: model.safetensors %.3f MB, bundle %.3f MB\n",
           r.checkpoint ? r.checkpoint : (o.config ? o.config : "?"), o.out, r.seconds, (double)r.model_bytes / 1e6,
           (double)r.total_bytes / 1e6);
    bv_bundle_report_print(&r.report, stdout);
    bv_export_result_free(&r);
    return 0;
}
