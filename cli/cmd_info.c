/* cmd_info.c - `bitvla info`: parameters and memory per module.
 *   --config C: for training (fp32 weights, gradients and the two AdamW moments, everything
 *     trainable) and for deployment (ternary weights packed at 2 bits (HF offline / I2_S) or
 *     1.6 bits (TQ5), everything else bf16), against the paper's 1.4 GB;
 *   --recipe R [--set k=v]...: the training plan of a recipe (recipes/plan.h): per module the
 *     weights, gradients, AdamW moments and BitLinear caches of what the recipe trains, the
 *     activations of one micro-batch, whether it fits this machine, and how many data-parallel
 *     ranks of a given memory it needs without sharding and with ZeRO-1 / ZeRO-2.
 * Builds the model shapes-only (BV_MODEL_SHAPES: nothing allocated), so it is instant at any size. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "models/build.h"
#include "recipes/plan.h"
#include "recipes/recipe.h"

#define GIB 1073741824.0
#define MAX_RANKS 65536

static void print_bytes(char *buf, size_t n, double b) {
    if (b >= 1e9) snprintf(buf, n, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, n, "%.1f MB", b / 1e6);
    else snprintf(buf, n, "%.1f kB", b / 1e3);
}

static void print_gib(char *buf, size_t n, double b) {
    if (b >= 0.1 * GIB) snprintf(buf, n, "%.2f GiB", b / GIB);
    else if (b >= 1048576.0) snprintf(buf, n, "%.1f MiB", b / 1048576.0);
    else snprintf(buf, n, "%.1f KiB", b / 1024.0);
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla info --config PRESET|config.json [--json]\n"
            "       bitvla info --recipe RECIPE.json [--set key.path=value]... [--rank-gib G] [--text-tokens N] [--json]\n"
            "\n"
            "--config: parameters and bytes per module: for training (fp32 weights + gradients + AdamW moments,\n"
            "16 bytes per parameter, all trainable) and for deployment (ternary weights packed at 2 bits\n"
            "(HF offline, I2_S) or 1.6 bits (TQ5) plus one fp32 scale each, everything else bf16),\n"
            "against the 1.4 GB the paper reports for BitVLA. Presets: bitvla-2b, tiny.\n"
            "\n"
            "--recipe: the training plan of a recipe (its model.config, model.train / model.freeze, micro_batch,\n"
            "data.n_images): per module fp32 weights, gradients and AdamW moments of the trainable parameters,\n"
            "BitLinear caches (int8 codes + fp32 dequantized copy per ternary weight); the activations of one\n"
            "micro-batch of the longest realistic prompt (BOS, image tokens, proprio, N text tokens, action\n"
            "tokens, EOS; --text-tokens N, default %d); whether it fits this machine's physical memory; and the\n"
            "fewest data-parallel ranks of G GiB each (--rank-gib, default 24) without sharding, with ZeRO-1\n"
            "(AdamW moments sharded) and ZeRO-2 (moments and gradients sharded). See docs/training.md.\n",
            BV_PLAN_TEXT_TOKENS);
}

/* ---- --config ---- */

static int info_config(const char *config, bool json) {
    bv_model model;
    bv_model_spec spec = {.config = config, .parts = BV_VLA_ALL, .purpose = BV_MODEL_SHAPES};
    if (bv_model_build(&model, &spec) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        return 1;
    }
    const bv_vla_config cfg = model.vla.cfg;
    bv_train_plan plan;
    bv_plan_modules(&model, &plan);
    const bv_plan_module *mc = plan.mod;
    double tot_params = 0, tot_train = 0, tot_d2 = 0, tot_d16 = 0, tot_bf16 = 0, tot_tern = 0;
    double train[BV_PLAN_MODULES], d2[BV_PLAN_MODULES], d16[BV_PLAN_MODULES];
    for (int k = 0; k < BV_PLAN_MODULES; k++) {
        double n = (double)mc[k].params, t = (double)mc[k].ternary, scales = 4.0 * (double)mc[k].ternary_tensors;
        train[k] = 16.0 * n;
        d2[k] = t / 4.0 + scales + 2.0 * (n - t);
        d16[k] = t / 5.0 + scales + 2.0 * (n - t);
        tot_params += n, tot_train += train[k], tot_d2 += d2[k], tot_d16 += d16[k];
        tot_bf16 += 2.0 * n, tot_tern += t;
    }
    const double paper = 1.4e9;
    if (json) {
        json_t *mods = json_array();
        for (int k = 0; k < BV_PLAN_MODULES; k++)
            json_array_append_new(mods, json_pack("{s:s, s:I, s:I, s:f, s:f, s:f}", "module", mc[k].name, "params",
                                                  (json_int_t)mc[k].params, "ternary_params",
                                                  (json_int_t)mc[k].ternary, "train_bytes", train[k],
                                                  "deploy_bytes_2bit", d2[k], "deploy_bytes_tq5", d16[k]));
        json_t *root = json_pack("{s:s, s:o, s:f, s:f, s:f, s:f, s:f, s:f}", "config", config, "modules", mods,
                                 "params", tot_params, "ternary_params", tot_tern, "train_bytes", tot_train,
                                 "deploy_bytes_2bit", tot_d2, "deploy_bytes_tq5", tot_d16, "paper_deploy_bytes",
                                 paper);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(root);
    } else {
        char a[32], b[32], c[32];
        printf("bitvla info: %s (vision W%s/A%d, LLM W1.58/A8)\n\n", config, cfg.vision.weight_bits == 1 ? "1.58" : "32",
               cfg.vision.act_bits);
        printf("%-20s %15s %15s %12s %14s %14s\n", "module", "params", "ternary", "train", "deploy 2-bit",
               "deploy TQ5");
        for (int k = 0; k < BV_PLAN_MODULES; k++) {
            print_bytes(a, sizeof a, train[k]);
            print_bytes(b, sizeof b, d2[k]);
            print_bytes(c, sizeof c, d16[k]);
            printf("%-20s %15lld %15lld %12s %14s %14s\n", mc[k].name, (long long)mc[k].params,
                   (long long)mc[k].ternary, a, b, c);
        }
        print_bytes(a, sizeof a, tot_train);
        print_bytes(b, sizeof b, tot_d2);
        print_bytes(c, sizeof c, tot_d16);
        printf("%-20s %15.0f %15.0f %12s %14s %14s\n", "total", tot_params, tot_tern, a, b, c);
        print_bytes(a, sizeof a, tot_bf16);
        printf("\ntrain = fp32 weights + gradients + AdamW m and v (16 bytes/param, all parameters trainable);\n"
               "deploy = ternary codes + one fp32 scale per tensor, the rest bf16 (all-bf16: %s).\n", a);
        double no_head = tot_d2 - d2[BV_PLAN_LLM_HEAD];
        print_bytes(a, sizeof a, no_head);
        printf("paper (BitVLA deployable weights): 1.4 GB. Ours at 2 bits: %s; %s without the LM head,\n"
               "which an action policy never runs (the action head reads hidden states) (%.2fx the paper).\n",
               b, a, no_head / paper);
        printf("('bitvla info --recipe RECIPE.json' gives the training plan of a recipe: what trains, caches, "
               "activations, ranks.)\n");
    }
    bv_model_free(&model);
    return 0;
}

/* ---- --recipe ---- */

static const char *k_zero_names[3] = {"without sharding", "ZeRO-1 (AdamW moments sharded)",
                                      "ZeRO-2 (moments and gradients sharded)"};

static json_t *module_json(const bv_plan_module *m) {
    double tot = m->weights + m->grads + m->moments + m->caches;
    return json_pack("{s:s, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f}", "module", m->name, "params",
                     (json_int_t)m->params, "trainable_params", (json_int_t)m->trainable, "ternary_params",
                     (json_int_t)m->ternary, "weights_bytes", m->weights, "grads_bytes", m->grads, "moments_bytes",
                     m->moments, "caches_bytes", m->caches, "total_bytes", tot);
}

static void print_module(const bv_plan_module *m) {
    char w[24], g[24], mo[24], c[24], t[24];
    print_gib(w, sizeof w, m->weights);
    print_gib(g, sizeof g, m->grads);
    print_gib(mo, sizeof mo, m->moments);
    print_gib(c, sizeof c, m->caches);
    print_gib(t, sizeof t, m->weights + m->grads + m->moments + m->caches);
    printf("%-18s %11lld %11lld %11s %11s %11s %11s %11s\n", m->name, (long long)m->params, (long long)m->trainable, w,
           g, mo, c, t);
}

static int info_recipe(const char *path, int n_sets, const char *const *sets, double rank_gib, int text_tokens,
                       bool json) {
    bv_recipe r;
    if (bv_recipe_load(&r, path, n_sets, sets) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        return 1;
    }
    bv_train_plan p;
    if (bv_train_plan_make(&p, &r, text_tokens) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        bv_recipe_free(&r);
        return 1;
    }
    const double rank_bytes = rank_gib * GIB;
    int ranks[3];
    for (int z = 0; z < 3; z++) ranks[z] = bv_train_plan_min_ranks(&p, z, rank_bytes, MAX_RANKS);
    const bool fits = p.physical <= 0 || p.bytes <= p.physical;
    const bool all_train = p.total.trainable == p.total.params;
    if (json) {
        json_t *mods = json_array();
        for (int k = 0; k < BV_PLAN_MODULES; k++) json_array_append_new(mods, module_json(&p.mod[k]));
        json_t *rk = json_object();
        const char *keys[3] = {"none", "zero1", "zero2"};
        for (int z = 0; z < 3; z++) {
            const double sharded = z == 0 ? 0 : p.total.moments + (z == 2 ? p.total.grads : 0);
            json_t *o = json_object();
            json_object_set_new(o, "ranks", ranks[z] ? json_integer(ranks[z]) : json_null());
            json_object_set_new(o, "unsharded_bytes", json_real(bv_train_plan_rank_bytes(&p, z, 1) - sharded));
            json_object_set_new(o, "sharded_bytes", json_real(sharded));
            json_object_set_new(o, "rank_bytes", ranks[z] ? json_real(bv_train_plan_rank_bytes(&p, z, ranks[z])) : json_null());
            json_object_set_new(rk, keys[z], o);
        }
        json_t *root = json_pack("{s:s, s:s, s:o, s:o, s:i, s:I, s:f, s:f, s:f, s:b, s:f, s:o}", "recipe", path,
                                 "config", r.model.config, "modules", mods, "totals", module_json(&p.total),
                                 "micro_batch", p.micro_batch, "tokens", (json_int_t)p.tokens, "activations_bytes",
                                 p.activations, "total_bytes", p.bytes, "physical_bytes", p.physical, "fits_physical",
                                 fits, "rank_gib", rank_gib, "data_parallel", rk);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("%s\n", s);
        free(s);
        json_decref(root);
        bv_recipe_free(&r);
        return 0;
    }
    char a[24], b[24], c[24];
    printf("bitvla info: training plan of %s: model %s, %s\n\n", path, r.model.config,
           all_train ? "every parameter trains" : "some parameters frozen (model.train / model.freeze)");
    printf("%-18s %11s %11s %11s %11s %11s %11s %11s\n", "module", "params", "trainable", "weights", "gradients",
           "AdamW m+v", "caches", "total");
    for (int k = 0; k < BV_PLAN_MODULES; k++) print_module(&p.mod[k]);
    print_module(&p.total);
    print_gib(a, sizeof a, p.activations);
    printf("%-18s %11s %11s %11s %11s %11s %11s %11s\n", "activations", "", "", "", "", "", "", a);
    print_gib(a, sizeof a, p.bytes);
    printf("%-18s %11s %11s %11s %11s %11s %11s %11s\n\n", "total", "", "", "", "", "", "", a);
    const double per = p.total.ternary ? p.total.caches / (double)p.total.ternary : 5.0;
    printf("weights: fp32, 4 B per parameter; gradients and AdamW m, v: 4 + 8 B per trainable parameter;\n"
           "caches: per ternary weight, int8 codes + fp32 dequantized copy%s = %.2f B;\n"
           "activations: forward + backward of one micro-batch, %d row%s x %lld tokens\n"
           "(BOS, %d x %d image, proprio, %d text, %d action tokens, EOS).\n\n",
           per > 5.0 ? " + 2-bit codes of the integer forward" : "", per, p.micro_batch, p.micro_batch == 1 ? "" : "s",
           (long long)p.tokens,
           p.n_images, p.image_tokens, p.text_tokens, p.action_tokens);
    if (p.physical > 0) {
        print_gib(b, sizeof b, p.physical);
        if (fits) printf("this machine: fits in its %s of physical memory (%.1f%% of it)\n", b, 100.0 * p.bytes / p.physical);
        else printf("this machine: does not fit: %s needed, %s of physical memory (%.2fx)\n", a, b, p.bytes / p.physical);
    }
    printf("data-parallel on %g GiB machines (per rank: weights + caches + activations, and the gradients and\n"
           "moments, sharded or not):\n", rank_gib);
    for (int z = 0; z < 3; z++) {
        const int n = ranks[z];
        if (z == 0) {
            print_gib(a, sizeof a, bv_train_plan_rank_bytes(&p, 0, 1));
            if (n) printf("  %-40s %s per rank: fits %g GiB, any number of ranks\n", k_zero_names[z], a, rank_gib);
            else printf("  %-40s %s per rank: does not fit %g GiB, on any number of ranks\n", k_zero_names[z], a, rank_gib);
            continue;
        }
        const double sharded = p.total.moments + (z == 2 ? p.total.grads : 0);
        print_gib(b, sizeof b, bv_train_plan_rank_bytes(&p, z, 1) - sharded);
        print_gib(c, sizeof c, sharded);
        if (n) {
            print_gib(a, sizeof a, bv_train_plan_rank_bytes(&p, z, n));
            printf("  %-40s %s + %s / N per rank: N >= %d (%s per rank)\n", k_zero_names[z], b, c, n, a);
        } else {
            printf("  %-40s %s + %s / N per rank: does not fit %g GiB for any N (the unsharded %s alone)\n",
                   k_zero_names[z], b, c, rank_gib, b);
        }
    }
    bv_recipe_free(&r);
    return 0;
}

int bv_cmd_info(int argc, char **argv) {
    const char *config = NULL, *recipe = NULL;
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int n_sets = 0, text_tokens = 0, rc = 2;
    double rank_gib = 24;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            rc = 0;
            goto done;
        } else if (!strcmp(a, "--config") && v) {
            config = v, i++;
        } else if (!strcmp(a, "--recipe") && v) {
            recipe = v, i++;
        } else if (!strcmp(a, "--set") && v) {
            if (!strchr(v, '=')) {
                fprintf(stderr, "bitvla info: --set expects key.path=value, got '%s'\n", v);
                goto done;
            }
            sets[n_sets++] = v, i++;
        } else if (!strcmp(a, "--rank-gib")) {
            if (!bv_cli_double("info", "--rank-gib", v, 0.001, 1e9, &rank_gib)) goto done;
            i++;
        } else if (!strcmp(a, "--text-tokens")) {
            if (!bv_cli_int("info", "--text-tokens", v, 1, 1000000, &text_tokens)) goto done;
            i++;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else {
            fprintf(stderr,
                    "bitvla info: unknown or incomplete option '%s' (expected --config C or --recipe R [--set K=V]... "
                    "[--rank-gib G] [--text-tokens N], --json)\n",
                    a);
            goto done;
        }
    }
    if (!config == !recipe) {
        fprintf(stderr, "bitvla info: give one of --config PRESET|config.json (presets: bitvla-2b, tiny) or --recipe "
                        "RECIPE.json\n");
        goto done;
    }
    if (config && (n_sets || text_tokens)) {
        fprintf(stderr, "bitvla info: --set and --text-tokens apply to --recipe only\n");
        goto done;
    }
    rc = config ? info_config(config, json) : info_recipe(recipe, n_sets, sets, rank_gib, text_tokens, json);
done:
    free(sets);
    return rc;
}
