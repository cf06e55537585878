/* cmd_forward.c - `bitvla forward`: the parity harness (models/harness.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "src/common.h"
#include "models/harness.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla forward --config C.json|PRESET --weights W.safetensors --inputs IN.safetensors\n"
            "                      [--out OUT.safetensors] [--mode action|lm] [--backward]\n"
            "                      [--compare REF.safetensors [--rtol 1e-4] [--grad-rtol 1e-3]]\n"
            "                      [--allow-missing] [--threads N]\n"
            "\n"
            "Run the model once on the tensors of IN and write what it computes to OUT: the parity harness\n"
            "for checking this implementation against another (e.g. PyTorch) on the same weights and inputs.\n"
            "\n"
            "  --config       a config.json (HF LLaVA layout) or a preset (bitvla-2b, tiny)\n"
            "  --weights      safetensors checkpoint (file, model.safetensors.index.json or directory), HF names\n"
            "  --inputs       input_ids I64 [B,T], attention_mask U8 [B,T], pixel_values F32 [B,n_images,3,H,W],\n"
            "                 proprio F32 [B,proprio_dim], action_mask U8 [B,T] (action mode), actions F32\n"
            "                 [B,chunk,action_dim] (action-mode targets), labels I64 [B,T] (lm-mode targets, -100 ignored)\n"
            "  --mode         action (default): bidirectional, actions_pred and the L1 loss;\n"
            "                 lm: causal, logits and the shifted cross-entropy\n"
            "  --out          writes actions_pred or logits, loss, last_hidden_state, image_features and, with\n"
            "                 --backward, grad.<name> for every parameter\n"
            "  --backward     differentiate the loss (needs actions or labels)\n"
            "  --compare      check every tensor of REF against the outputs (norm-relative error; tensors named\n"
            "                 grad.* use --grad-rtol); exit status 1 on any mismatch\n"
            "  --allow-missing  weights absent from the checkpoint keep a random initialisation (seed 0)\n"
            "  --threads      OpenMP threads (default: OMP_NUM_THREADS or all cores; at most what OpenBLAS can run)\n");
}

static int need_value(int i, int argc, char **argv) {
    if (i + 1 >= argc) {
        fprintf(stderr, "bitvla forward: option %s needs a value\n", argv[i]);
        return 0;
    }
    return 1;
}

int bv_cmd_forward(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    bv_harness_opts o = {0};
    o.log = stderr;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--backward")) {
            o.backward = true;
        } else if (!strcmp(a, "--allow-missing")) {
            o.allow_missing = true;
        } else if (!strcmp(a, "--config") || !strcmp(a, "--weights") || !strcmp(a, "--inputs") || !strcmp(a, "--out") ||
                   !strcmp(a, "--compare") || !strcmp(a, "--mode") || !strcmp(a, "--rtol") ||
                   !strcmp(a, "--grad-rtol") || !strcmp(a, "--threads")) {
            if (!need_value(i, argc, argv)) return 2;
            const char *v = argv[++i];
            if (!strcmp(a, "--config")) o.config = v;
            else if (!strcmp(a, "--weights")) o.weights = v;
            else if (!strcmp(a, "--inputs")) o.inputs = v;
            else if (!strcmp(a, "--out")) o.out = v;
            else if (!strcmp(a, "--compare")) o.compare = v;
            else if (!strcmp(a, "--mode")) {
                if (!strcmp(v, "action")) o.mode = BV_VLA_MODE_ACTION;
                else if (!strcmp(v, "lm")) o.mode = BV_VLA_MODE_LM;
                else {
                    fprintf(stderr, "bitvla forward: --mode must be action or lm, got '%s'\n", v);
                    return 2;
                }
            } else if (!strcmp(a, "--rtol")) {
                if (!bv_cli_double("forward", a, v, 1e-30, 1e30, &o.rtol)) return 2;
            } else if (!strcmp(a, "--grad-rtol")) {
                if (!bv_cli_double("forward", a, v, 1e-30, 1e30, &o.grad_rtol)) return 2;
            } else {
                int n; /* at most what OpenBLAS/OpenMP can run (bv_set_num_threads would cap it silently) */
                if (!bv_cli_int("forward", a, v, 1, bv_max_threads(NULL), &n)) return 2;
                bv_set_num_threads(n);
            }
        } else {
            fprintf(stderr, "bitvla forward: unknown option '%s' (see bitvla forward --help)\n", a);
            return 2;
        }
    }
    const char *missing = !o.config ? "--config" : !o.weights ? "--weights" : !o.inputs ? "--inputs" : NULL;
    if (missing) {
        fprintf(stderr, "bitvla forward: %s is required (see bitvla forward --help)\n", missing);
        return 2;
    }
    if (!o.out && !o.compare) {
        fprintf(stderr, "bitvla forward: give --out, --compare or both (otherwise nothing comes of the run)\n");
        return 2;
    }
    bv_harness_result r;
    bv_status st = bv_harness_run(&o, &r);
    if (st) {
        fprintf(stderr, "bitvla forward: %s\n", bv_error_msg());
        return 1;
    }
    if (o.out) fprintf(stderr, "wrote %d tensors to %s\n", r.n_outputs, o.out);
    if (o.compare && r.n_mismatch) {
        fprintf(stderr, "bitvla forward: %d of %d tensors differ from %s beyond tolerance\n", r.n_mismatch,
                r.n_compared, o.compare);
        return 1;
    }
    return 0;
}
