/* bench_fullsize.c - the model code at the bitvla-2b sizes, forward + backward, random weights:
 *   tower: the whole quantized (W1.58 A8) SigLIP tower, 26 layers, on 2 images of 224x224
 *          (bv_siglip_forward: patch embedding + 26 encoder layers), loss = mean(features^2);
 *   llm:   one BitNet decoder layer (bv_bitnet_forward with n_layers = 1: seven W1.58 A8 linears,
 *          GQA 20/5 heads, RoPE, sub-norms, relu2 GLU, then the final RMSNorm) on B=1, T=600,
 *          bidirectional and causal, loss = mean(out^2).
 * Only the parameters each part needs are registered (the tower: 0.4e9; the layer: one layer of a
 * model built with num_hidden_layers = 1 and a one-row tied embedding, which the layer never reads).
 *
 * Each timed step runs twice: "requant", after bv_params_mark_updated, so every BitLinear
 * re-quantizes its weight as after an optimizer step (what the PyTorch peer does on every forward),
 * and "cached", with the quantized weights reused (a gradient-accumulation micro-batch). FLOPs are
 * bench/peer/torch_peer.py's formulas: the tower counts 26 times the peer's SigLIP layer at
 * B=2 T=256 (the patch embedding, 0.2% more, is not counted); the causal layer counts the full
 * attention like the bidirectional one. Figures are medians (and minima) over --reps steps after
 * one warm-up step. scripts/bench fullsize runs this beside the peer and prints the ratios. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "models/build.h"

#define MAX_REPS 64

typedef struct {
    const char *label;
    double flop;
    const char *json;
    int threads;
} fs_ctx;

static double peak_rss_gib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss / (1024.0 * 1024.0); /* ru_maxrss is in KiB on Linux */
}

static double min_of(const double *t, int n) {
    double m = t[0];
    for (int i = 1; i < n; i++) m = t[i] < m ? t[i] : m;
    return m;
}

/* Prints one line per variant and appends them to --json. Sorts the time arrays. */
static int report(const fs_ctx *c, double *t_req, double *t_cached, int reps, const bv_graph *g, size_t nparams) {
    double best_r = min_of(t_req, reps), best_c = min_of(t_cached, reps);
    double med_r = bv_bench_median(t_req, reps), med_c = bv_bench_median(t_cached, reps);
    double hw = (double)bv_arena_high_water(&g->arena) / (1 << 30), rss = peak_rss_gib();
    printf("%s requant: %.1f ms fwd+bwd, %.1f GFLOP/s (median of %d; best %.1f ms)\n", c->label, med_r * 1e3,
           c->flop / med_r / 1e9, reps, best_r * 1e3);
    printf("%s cached: %.1f ms fwd+bwd, %.1f GFLOP/s (median of %d; best %.1f ms)\n", c->label, med_c * 1e3,
           c->flop / med_c / 1e9, reps, best_c * 1e3);
    printf("  %.3f GFLOP per step, %zu parameters, arena high-water %.2f GiB, peak RSS %.2f GiB (bitvla, %d threads)\n",
           c->flop / 1e9, nparams, hw, rss, c->threads);
    fflush(stdout);
    if (!c->json) return 0;
    /* appended after each part, so the tower's figures survive a failure in the layer's run */
    bv_bench_text js = {0};
    bv_bench_text_printf(&js,
                         "{\"bench\": \"fullsize\", \"case\": \"%s\", \"threads\": %d, \"reps\": %d, \"gflop\": %.4f, "
                         "\"requant_ms_median\": %.3f, \"requant_ms_best\": %.3f, \"cached_ms_median\": %.3f, "
                         "\"cached_ms_best\": %.3f, \"params\": %zu, \"arena_high_water_bytes\": %zu, \"peak_rss_gib\": %.3f}\n",
                         c->label, c->threads, reps, c->flop / 1e9, med_r * 1e3, best_r * 1e3, med_c * 1e3, best_c * 1e3,
                         nparams, bv_arena_high_water(&g->arena), rss);
    int rc = bv_bench_json_append("fullsize", c->json, &js);
    bv_bench_text_free(&js);
    return rc;
}

/* ---- (a) the vision tower ---- */

static bv_var *tower_step(bv_graph *g, bv_params *p, bv_siglip *m, float *pix, int64_t N, int S) {
    bv_graph_reset(g);
    int64_t ps[4] = {N, 3, S, S};
    bv_tensor pt = bv_tensor_make(pix, BV_DTYPE_F32, 4, ps);
    bv_var *y = bv_siglip_forward(g, p, m, bv_var_wrap(g, &pt, false), NULL);
    bv_var *loss = bv_op_mean(g, bv_op_mul(g, y, y));
    bv_graph_backward(g, loss);
    return loss;
}

static int bench_tower(const bv_vla_config *cfg, const bv_bench_opts *o) {
    const bv_vision_config *vc = &cfg->vision;
    const int64_t N = 2, T = bv_config_vision_patches(cfg), D = vc->hidden_size, F = vc->intermediate_size;
    const int L = bv_siglip_layers_run(vc, cfg->vision_feature_layer);
    char wa[32];
    snprintf(wa, sizeof wa, vc->weight_bits == 1 ? "W1.58A%d" : "W32A%d", vc->act_bits);
    printf("== vision tower: %d SigLIP layers %s (D=%lld, MLP %lld, %d heads), %lld images %dx%d (%lld patches "
           "each), forward + backward\n",
           L, wa, (long long)D, (long long)F,
           vc->num_attention_heads, (long long)N, vc->image_size, vc->image_size, (long long)T);
    fflush(stdout);
    double t0 = bv_time_now();
    bv_model model; /* the tower alone, every parameter trainable */
    bv_model_spec spec = {.config = "bitvla-2b", .cfg = cfg, .parts = BV_VLA_VISION, .purpose = BV_MODEL_TRAIN, .seed = 1};
    if (bv_model_build(&model, &spec) != BV_OK) {
        fprintf(stderr, "bitvla bench fullsize: %s\n", bv_error_msg());
        return 1;
    }
    bv_params *p = &model.params;
    bv_siglip *m = &model.vla.vision;
    const int64_t npix = N * 3 * vc->image_size * vc->image_size;
    float *pix = bv_aligned_alloc((size_t)npix * sizeof(float));
    bv_bench_fill(pix, npix, 11);
    printf("  set-up (register, allocate values and gradients, random init): %.1f s\n", bv_time_now() - t0);
    fflush(stdout);

    bv_graph g;
    bv_graph_init(&g, 64u << 20);
    t0 = bv_time_now();
    bv_var *loss = tower_step(&g, p, m, pix, N, vc->image_size);
    printf("  warm-up step (arena grows, weights quantized): %.1f s, loss %.6g\n", bv_time_now() - t0,
           (double)((float *)loss->val.data)[0]);
    fflush(stdout);
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    double tr[MAX_REPS], tc[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        bv_params_mark_updated(p); /* as after an optimizer step: every BitLinear re-quantizes */
        t0 = bv_time_now();
        tower_step(&g, p, m, pix, N, vc->image_size);
        tr[r] = bv_time_now() - t0;
        t0 = bv_time_now();
        tower_step(&g, p, m, pix, N, vc->image_size);
        tc[r] = bv_time_now() - t0;
    }
    double layer = 6.0 * N * T * (4.0 * D * D + 2.0 * D * F) + 3.0 * 4 * N * T * T * D;
    char label[128];
    snprintf(label, sizeof label, "siglip tower %d layers B=%lld T=%lld quant=%s", L, (long long)N, (long long)T,
             vc->weight_bits == 1 ? "True" : "False");
    fs_ctx c = {label, L * layer, o->json, o->threads};
    int rc = report(&c, tr, tc, reps, &g, p->numel_total);
    bv_graph_free(&g);
    bv_aligned_free(pix);
    bv_model_free(&model);
    return rc;
}

/* ---- (b) one LLM layer ---- */

static void llm_step(bv_graph *g, bv_params *p, bv_bitnet *m, float *xin, int64_t B, int64_t T, bool causal) {
    bv_graph_reset(g);
    int64_t xs[3] = {B, T, m->cfg.hidden_size};
    bv_tensor xt = bv_tensor_make(xin, BV_DTYPE_F32, 3, xs);
    bv_var *y = bv_bitnet_forward(g, p, m, bv_var_wrap(g, &xt, true), NULL, causal, 1);
    bv_graph_backward(g, bv_op_mean(g, bv_op_mul(g, y, y)));
}

static int bench_llm(const bv_vla_config *cfg, const bv_bench_opts *o) {
    bv_text_config tc = cfg->text;
    const int64_t B = 1, T = 600, D = tc.hidden_size, F = tc.intermediate_size;
    const int64_t H = tc.num_attention_heads, Hkv = tc.num_key_value_heads, KV = Hkv * (D / H);
    printf("== one BitNet decoder layer W1.58A8 (D=%lld, FFN %lld, GQA %lld/%lld heads, RoPE, relu2 GLU) + final "
           "RMSNorm, B=%lld T=%lld, forward + backward\n",
           (long long)D, (long long)F, (long long)H, (long long)Hkv, (long long)B, (long long)T);
    fflush(stdout);
    /* one layer; a 1-row tied embedding that the layer never reads (frozen: no gradient). The LLM
     * alone: only text_config is validated, so the VLA's token ids may lie outside this vocabulary */
    bv_vla_config lc = *cfg;
    lc.text.num_hidden_layers = 1;
    lc.text.vocab_size = 1;
    lc.text.tie_word_embeddings = true;
    const char *freeze[] = {"language_model.model.embed_tokens.", NULL};
    bv_model model;
    bv_model_spec spec = {.config = "bitvla-2b, one LLM layer", .cfg = &lc, .parts = BV_VLA_LLM,
                          .purpose = BV_MODEL_TRAIN, .freeze = freeze, .seed = 1};
    if (bv_model_build(&model, &spec) != BV_OK) {
        fprintf(stderr, "bitvla bench fullsize: %s\n", bv_error_msg());
        return 1;
    }
    bv_params *p = &model.params;
    bv_bitnet *m = &model.vla.llm;
    float *xin = bv_aligned_alloc((size_t)(B * T * D) * sizeof(float));
    bv_bench_fill(xin, B * T * D, 7);
    bv_graph g;
    bv_graph_init(&g, 64u << 20);
    double fl = 6.0 * B * T * (2.0 * D * D + 2.0 * KV * D + 3.0 * D * F) + 3.0 * 4 * B * T * T * D;
    int reps = o->reps > MAX_REPS ? MAX_REPS : o->reps;
    int rc = 0;
    for (int causal = 0; causal <= 1 && rc == 0; causal++) {
        double t0 = bv_time_now();
        llm_step(&g, p, m, xin, B, T, causal);
        printf("  %s warm-up step: %.2f s\n", causal ? "causal" : "bidirectional", bv_time_now() - t0);
        double tr[MAX_REPS], tcach[MAX_REPS];
        for (int r = 0; r < reps; r++) {
            bv_params_mark_updated(p);
            t0 = bv_time_now();
            llm_step(&g, p, m, xin, B, T, causal);
            tr[r] = bv_time_now() - t0;
            t0 = bv_time_now();
            llm_step(&g, p, m, xin, B, T, causal);
            tcach[r] = bv_time_now() - t0;
        }
        char label[128];
        snprintf(label, sizeof label, "bitnet layer B=%lld T=%lld %s", (long long)B, (long long)T,
                 causal ? "causal" : "bidirectional");
        fs_ctx c = {label, fl, o->json, o->threads};
        rc = report(&c, tr, tcach, reps, &g, p->numel_total);
    }
    bv_graph_free(&g);
    bv_aligned_free(xin);
    bv_model_free(&model);
    return rc;
}

int bv_bench_fullsize(int argc, char **argv) {
    /* --part is ours; everything else goes to bv_bench_parse (default --reps 3 here: a tower step
     * takes seconds) */
    const char *part = "all";
    bool reps_given = false;
    char *rest[64];
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        if (i > 0 && !strcmp(argv[i], "--part")) {
            if (i + 1 >= argc || (strcmp(argv[i + 1], "tower") && strcmp(argv[i + 1], "llm") &&
                                  strcmp(argv[i + 1], "all"))) {
                fprintf(stderr, "bitvla bench fullsize: --part expects tower, llm or all, got '%s'\n",
                        i + 1 < argc ? argv[i + 1] : "(nothing)");
                return 2;
            }
            part = argv[++i];
            continue;
        }
        bool known = i == 0 || !strcmp(argv[i], "--reps") || !strcmp(argv[i], "--threads") || !strcmp(argv[i], "--json");
        if (!known) {
            fprintf(stderr,
                    "bitvla bench fullsize: unknown option '%s' (expected --part tower|llm|all, --reps N, --threads N, "
                    "--json FILE)\n",
                    argv[i]);
            return 2;
        }
        if (!strcmp(argv[i], "--reps")) reps_given = true;
        if (nrest + 2 > (int)(sizeof rest / sizeof rest[0])) {
            fprintf(stderr, "bitvla bench fullsize: too many arguments\n");
            return 2;
        }
        rest[nrest++] = argv[i];
        if (i > 0 && i + 1 < argc) rest[nrest++] = argv[++i]; /* the flag's value: bv_bench_parse checks it */
    }
    bv_bench_opts o;
    if (bv_bench_parse(nrest, rest, "fullsize", &o) != 0) return 2;
    if (!reps_given) o.reps = 3;
    if (o.reps > MAX_REPS) {
        fprintf(stderr, "bitvla bench fullsize: --reps %d is more than the %d this benchmark keeps\n", o.reps,
                MAX_REPS);
        return 2;
    }
    bv_vla_config cfg;
    if (bv_config_preset("bitvla-2b", &cfg) != BV_OK) {
        fprintf(stderr, "bitvla bench fullsize: %s\n", bv_error_msg());
        return 1;
    }
    int rc = 0;
    if (!strcmp(part, "tower") || !strcmp(part, "all")) rc = bench_tower(&cfg, &o);
    if (rc == 0 && (!strcmp(part, "llm") || !strcmp(part, "all"))) rc = bench_llm(&cfg, &o);
    return rc;
}
