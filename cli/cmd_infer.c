/* cmd_infer.c - `bitvla infer`: one action chunk from an exported bundle (or a checkpoint) on an
 * observation given as files (eval/observation.h, eval/policy.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "eval/observation.h"
#include "eval/policy.h"
#include "src/common.h"
#include "src/profile.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla infer BUNDLE_DIR|CHECKPOINT --observation OBS.json [--json] [--normalized] [--profile]\n"
            "                    [--no-center-crop] [--n-images 1|2] [--threads N]\n"
            "       bitvla infer --config C --random-init SEED --tokenizer T.json --statistics S.json --observation OBS.json ...\n"
            "\n"
            "Loads a policy (a bundle written by `bitvla export`, weights kept packed; or a training checkpoint\n"
            "or run directory) and prints the action chunk it gives for one observation: chunk x action_dim\n"
            "numbers in robot units (un-normalised with the bundle's dataset_statistics.json, BOUNDS_Q99).\n"
            "\n"
            "  --observation  a JSON file: {\"task_description\": \"...\", \"state\": [8 numbers],\n"
            "                 \"full_image\": \"a.png\", \"wrist_image\": \"b.png\"} (images PNG or JPEG, relative to the\n"
            "                 JSON's directory), as tests/fixtures/libero_observation/observation.json\n"
            "  --json         one JSON object on stdout: {\"actions\": [[7 numbers] x 8], \"normalized\": [...],\n"
            "                 \"source\", \"load_s\", \"act_s\"}\n"
            "  --normalized   also print the model's normalised output (in [-1, 1])\n"
            "  --profile      print where the chunk's time went (GEMMs, quantization, attention, the rest)\n"
            "  --no-center-crop  feed the whole images (default: the evaluation centre crop, 90%% of the area)\n"
            "  --n-images     cameras the policy takes (default: what the bundle or checkpoint says)\n"
            "  --threads      OpenMP threads (default: OMP_NUM_THREADS or all cores)\n"
            "  --config, --random-init  the training model with random weights of SEED (what `bitvla export\n"
            "                 --random-init SEED` packs: the same actions as its bundle), fp32 masters quantized by\n"
            "                 the forward; needs --tokenizer and --statistics (which also replace a checkpoint's)\n");
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void print_rows(const char *label, const float *a, int chunk, int A) {
    printf("%s\n", label);
    for (int t = 0; t < chunk; t++) {
        printf("  [%d]", t);
        for (int d = 0; d < A; d++) printf(" %+.6f", (double)a[t * A + d]);
        printf("\n");
    }
}

static void json_rows(const float *a, int chunk, int A) {
    printf("[");
    for (int t = 0; t < chunk; t++) {
        printf("%s[", t ? ", " : "");
        for (int d = 0; d < A; d++) printf("%s%.9g", d ? ", " : "", (double)a[t * A + d]);
        printf("]");
    }
    printf("]");
}

int bv_cmd_infer(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL, *obs_path = NULL;
    bool json = false, show_norm = false, profile = false, seeded = false;
    bv_policy_opts po;
    bv_policy_opts_default(&po);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--normalized")) {
            show_norm = true;
        } else if (!strcmp(a, "--profile")) {
            profile = true;
        } else if (!strcmp(a, "--no-center-crop")) {
            po.center_crop = false;
        } else if (!strcmp(a, "--observation") || !strcmp(a, "--n-images") || !strcmp(a, "--threads") ||
                   !strcmp(a, "--config") || !strcmp(a, "--random-init") || !strcmp(a, "--tokenizer") ||
                   !strcmp(a, "--statistics")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bitvla infer: option %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--observation")) {
                obs_path = v;
            } else if (!strcmp(a, "--config")) {
                po.random_config = v;
            } else if (!strcmp(a, "--tokenizer")) {
                po.tokenizer = v;
            } else if (!strcmp(a, "--statistics")) {
                po.statistics = v;
            } else if (!strcmp(a, "--random-init")) {
                int64_t sd;
                if (!bv_cli_int64("infer", a, v, 0, INT64_MAX, &sd)) return 2;
                po.seed = (uint64_t)sd;
                seeded = true;
            } else if (!strcmp(a, "--n-images")) {
                if (!bv_cli_int("infer", a, v, 1, 2, &po.n_images)) return 2;
            } else {
                int n;
                if (!bv_cli_int("infer", a, v, 1, bv_max_threads(NULL), &n)) return 2;
                bv_set_num_threads(n);
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "bitvla infer: unknown option '%s' (see bitvla infer --help)\n", a);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bitvla infer: unexpected argument '%s' (one BUNDLE_DIR or CHECKPOINT)\n", a);
            return 2;
        }
    }
    if (!!po.random_config != seeded || (po.random_config && path)) {
        fprintf(stderr, "bitvla infer: --config and --random-init go together, without a BUNDLE_DIR or CHECKPOINT\n");
        return 2;
    }
    if (po.random_config && (!po.tokenizer || !po.statistics)) {
        fprintf(stderr, "bitvla infer: --random-init needs --tokenizer T.json and --statistics S.json\n");
        return 2;
    }
    if (po.random_config) path = po.random_config;
    if (!path || !obs_path) {
        fprintf(stderr, "bitvla infer: %s (see bitvla infer --help)\n",
                !path ? "give a BUNDLE_DIR or CHECKPOINT" : "--observation OBS.json is required");
        return 2;
    }
    bv_obs_file of;
    if (bv_obs_file_load(&of, obs_path)) {
        fprintf(stderr, "bitvla infer: %s\n", bv_error_msg());
        return 1;
    }
    double t0 = now_s();
    bv_policy *p;
    if (bv_policy_load(&p, path, &po)) {
        fprintf(stderr, "bitvla infer: %s\n", bv_error_msg());
        bv_obs_file_free(&of);
        return 1;
    }
    double t1 = now_s();
    int chunk = bv_policy_chunk(p), A = bv_policy_action_dim(p);
    float *act = bv_xmalloc((size_t)chunk * A * sizeof(float)), *norm = bv_xmalloc((size_t)chunk * A * sizeof(float));
    int rc = 0;
    if (profile) bv_prof_enable(true);
    if (bv_policy_act(p, &of.obs, act, norm)) {
        fprintf(stderr, "bitvla infer: %s: %s\n", obs_path, bv_error_msg());
        rc = 1;
    } else {
        double t2 = now_s();
        if (json) {
            printf("{\"actions\": ");
            json_rows(act, chunk, A);
            printf(", \"normalized\": ");
            json_rows(norm, chunk, A);
            printf(", \"source\": \"%s\", \"load_s\": %.3f, \"act_s\": %.3f}\n", bv_policy_source(p), t1 - t0, t2 - t1);
        } else {
            printf("bitvla infer: %s (%s, %.1f MB of weights held), loaded in %.2f s\n", path, bv_policy_source(p),
                   bv_policy_weight_bytes(p) / 1e6, t1 - t0);
            printf("task: %s\n", of.instruction);
            char label[96];
            snprintf(label, sizeof label, "actions (%d x %d, robot units), in %.3f s:", chunk, A, t2 - t1);
            print_rows(label, act, chunk, A);
            if (show_norm) print_rows("normalized:", norm, chunk, A);
            if (profile) {
                double rest = t2 - t1;
                printf("profile:");
                for (int k = 0; k < BV_PROF_KINDS; k++) {
                    printf(" %s %.3f s,", bv_prof_kind_name((bv_prof_kind)k), bv_prof_seconds[k]);
                    rest -= bv_prof_seconds[k];
                }
                printf(" the rest %.3f s\n", rest);
            }
        }
    }
    free(act), free(norm);
    bv_policy_free(p);
    bv_obs_file_free(&of);
    return rc;
}
