/* cmd_info.c - `bitvla info --config C [--json]`: parameters and memory per module, for training
 * (fp32 weights, gradients and the two AdamW moments) and for deployment (ternary weights packed
 * at 2 bits (HF offline / I2_S) or 1.6 bits (TQ5), everything else bf16), against the paper's
 * 1.4 GB. Builds the model shapes-only (BV_MODEL_SHAPES: nothing allocated), so it is instant at any size. */
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "models/build.h"

enum { M_VISION, M_CONNECTOR, M_LLM_EMBED, M_LLM_LAYERS, M_LLM_HEAD, M_PROPRIO, M_ACTION, M_COUNT };
static const char *k_module_names[M_COUNT] = {"vision tower",      "connector",         "llm embed_tokens",
                                              "llm layers + norm", "llm lm_head",       "proprio projector",
                                              "action head"};

typedef struct {
    int64_t params, ternary; /* all parameters; those stored as ternary codes */
    int64_t n_ternary_tensors;
} module_count;

static int module_of(const char *name) {
    if (!strncmp(name, "vision_tower.", 13)) return M_VISION;
    if (!strncmp(name, "multi_modal_projector.", 22)) return M_CONNECTOR;
    if (!strcmp(name, "language_model.model.embed_tokens.weight")) return M_LLM_EMBED;
    if (!strcmp(name, "language_model.lm_head.weight")) return M_LLM_HEAD;
    if (!strncmp(name, "language_model.", 15)) return M_LLM_LAYERS;
    if (!strncmp(name, "proprio_projector.", 18)) return M_PROPRIO;
    return M_ACTION;
}

static void print_bytes(char *buf, size_t n, double b) {
    if (b >= 1e9) snprintf(buf, n, "%.2f GB", b / 1e9);
    else if (b >= 1e6) snprintf(buf, n, "%.1f MB", b / 1e6);
    else snprintf(buf, n, "%.1f kB", b / 1e3);
}

int bv_cmd_info(int argc, char **argv) {
    const char *config = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: bitvla info --config PRESET|config.json [--json]\n\n"
                   "Parameters and bytes per module: for training (fp32 weights + gradients + AdamW moments,\n"
                   "16 bytes per trainable parameter) and for deployment (ternary weights packed at 2 bits\n"
                   "(HF offline, I2_S) or 1.6 bits (TQ5) plus one fp32 scale each, everything else bf16),\n"
                   "against the 1.4 GB the paper reports for BitVLA. Presets: bitvla-2b, tiny.\n");
            return 0;
        } else if (!strcmp(argv[i], "--config") && i + 1 < argc) {
            config = argv[++i];
        } else if (!strcmp(argv[i], "--json")) {
            json = true;
        } else {
            fprintf(stderr, "bitvla info: unknown or incomplete option '%s' (expected --config C, --json)\n", argv[i]);
            return 2;
        }
    }
    if (!config) {
        fprintf(stderr, "bitvla info: --config PRESET|config.json is required (presets: bitvla-2b, tiny)\n");
        return 2;
    }
    bv_model model;
    bv_model_spec spec = {.config = config, .parts = BV_VLA_ALL, .purpose = BV_MODEL_SHAPES};
    if (bv_model_build(&model, &spec) != BV_OK) {
        fprintf(stderr, "bitvla info: %s\n", bv_error_msg());
        return 1;
    }
    const bv_vla_config cfg = model.vla.cfg;
    const bv_params *p = &model.params;
    /* ternary weights: every LLM projection; vision projections when the tower is quantized */
    regex_t re_llm, re_vis;
    int rc1 = regcomp(&re_llm, "^language_model\\.model\\.layers\\.[0-9]+\\.(self_attn\\.[qkvo]_proj|mlp\\.(gate|up|down)_proj)\\.weight$", REG_EXTENDED | REG_NOSUB);
    int rc2 = regcomp(&re_vis, "encoder\\.layers\\.[0-9]+\\.(self_attn\\.(q|k|v|out)_proj|mlp\\.fc[12])\\.weight$", REG_EXTENDED | REG_NOSUB);
    BV_ASSERT(rc1 == 0 && rc2 == 0, "info: regcomp failed");
    module_count mc[M_COUNT];
    memset(mc, 0, sizeof mc);
    for (int i = 0; i < p->n; i++) {
        const bv_param *q = &p->items[i];
        int mod = module_of(q->name);
        mc[mod].params += q->numel;
        bool tern = regexec(&re_llm, q->name, 0, NULL, 0) == 0 ||
                    (mod == M_VISION && cfg.vision.weight_bits == 1 && regexec(&re_vis, q->name, 0, NULL, 0) == 0);
        if (tern) {
            mc[mod].ternary += q->numel;
            mc[mod].n_ternary_tensors++;
        }
    }
    regfree(&re_llm);
    regfree(&re_vis);
    double tot_params = 0, tot_train = 0, tot_d2 = 0, tot_d16 = 0, tot_bf16 = 0, tot_tern = 0;
    double train[M_COUNT], d2[M_COUNT], d16[M_COUNT];
    for (int k = 0; k < M_COUNT; k++) {
        double n = (double)mc[k].params, t = (double)mc[k].ternary, scales = 4.0 * (double)mc[k].n_ternary_tensors;
        train[k] = 16.0 * n;
        d2[k] = t / 4.0 + scales + 2.0 * (n - t);
        d16[k] = t / 5.0 + scales + 2.0 * (n - t);
        tot_params += n, tot_train += train[k], tot_d2 += d2[k], tot_d16 += d16[k];
        tot_bf16 += 2.0 * n, tot_tern += t;
    }
    const double paper = 1.4e9;
    if (json) {
        json_t *mods = json_array();
        for (int k = 0; k < M_COUNT; k++)
            json_array_append_new(mods, json_pack("{s:s, s:I, s:I, s:f, s:f, s:f}", "module", k_module_names[k],
                                                  "params", (json_int_t)mc[k].params, "ternary_params",
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
        for (int k = 0; k < M_COUNT; k++) {
            print_bytes(a, sizeof a, train[k]);
            print_bytes(b, sizeof b, d2[k]);
            print_bytes(c, sizeof c, d16[k]);
            printf("%-20s %15lld %15lld %12s %14s %14s\n", k_module_names[k], (long long)mc[k].params,
                   (long long)mc[k].ternary, a, b, c);
        }
        print_bytes(a, sizeof a, tot_train);
        print_bytes(b, sizeof b, tot_d2);
        print_bytes(c, sizeof c, tot_d16);
        printf("%-20s %15.0f %15.0f %12s %14s %14s\n", "total", tot_params, tot_tern, a, b, c);
        print_bytes(a, sizeof a, tot_bf16);
        printf("\ntrain = fp32 weights + gradients + AdamW m and v (16 bytes/param, all parameters trainable);\n"
               "deploy = ternary codes + one fp32 scale per tensor, the rest bf16 (all-bf16: %s).\n", a);
        double no_head = tot_d2 - d2[M_LLM_HEAD];
        print_bytes(a, sizeof a, no_head);
        printf("paper (BitVLA deployable weights): 1.4 GB. Ours at 2 bits: %s; %s without the LM head,\n"
               "which an action policy never runs (the action head reads hidden states) (%.2fx the paper).\n",
               b, a, no_head / paper);
    }
    bv_model_free(&model);
    return 0;
}
