/* bench_encoder.c - one SigLIP-so400m encoder layer (pre-LN: x + out_proj(MHA(LN1 x));
 * x + fc2(gelu_tanh(fc1(LN2 x)))) forward + backward at B=2, T=256, D=1152, MLP 4304, 16 heads,
 * built from the autograd ops on the parameters of a one-layer bitvla-2b tower (bv_model_build:
 * HF names, the model's random init). Loss = mean(y^2), as bench/peer/torch_peer.py does.
 * Prints ms per step and GFLOP/s (same FLOP formula as the peer); scripts/bench prints the ratio.
 * --quant: also the layer with q,k,v,out_proj,fc1,fc2 as BitLinear W1.58A8 (bv_op_bitlinear, one
 * bv_qweight cache per weight), as the peer's quant=True layer, its steps alternating with the
 * full-precision ones; prints both and the QAT overhead (median of the per-pair time ratios). The
 * params version is bumped every step (an optimizer step per forward/backward), so the weights are
 * re-quantized every step. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "models/build.h"

typedef struct {
    int ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b;
} enc_idx;

static bv_var *P(bv_graph *g, const bv_params *p, int i) { return bv_var_param(g, p, i); }

/* A projection of the layer: full-precision linear, or BitLinear W1.58A8 with the weight's cache. */
typedef struct {
    bool quant;
    bv_qweight cache[6]; /* q, k, v, out, fc1, fc2 */
} proj_ctx;

static bv_var *proj(bv_graph *g, const bv_params *p, proj_ctx *c, int k, bv_var *x, int iw, int ib) {
    if (!c->quant) return bv_op_linear(g, x, P(g, p, iw), P(g, p, ib));
    static const bv_bitlinear_cfg cfg = {1, 8};
    return bv_op_bitlinear(g, x, P(g, p, iw), P(g, p, ib), &cfg, &c->cache[k], p->version);
}

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One training step of the layer (forward, loss, backward) after an optimizer step: wall-clock
 * seconds; *cpu gets the process CPU seconds (all threads). */
static double layer_step(bv_graph *g, bv_params *p, const enc_idx *ixp, proj_ctx *pc, float *xin, double *cpu) {
    const int64_t B = 2, T = 256, D = 1152, H = 16, hd = D / H;
    const enc_idx ix = *ixp;
    double c0 = cpu_now(), t0 = bv_time_now();
    bv_graph_reset(g);
    bv_params_mark_updated(p); /* as after an optimizer step: quantized weights are stale */
    int64_t xs[3] = {B, T, D};
    bv_tensor xt = bv_tensor_make(xin, BV_DTYPE_F32, 3, xs);
    bv_var *x = bv_var_wrap(g, &xt, true);
    bv_var *h = bv_op_layernorm(g, x, P(g, p, ix.ln1_w), P(g, p, ix.ln1_b), 1e-6);
    int64_t hs[4] = {B, T, H, hd};
    bv_var *q = bv_op_reshape(g, proj(g, p, pc, 0, h, ix.q_w, ix.q_b), 4, hs);
    bv_var *k = bv_op_reshape(g, proj(g, p, pc, 1, h, ix.k_w, ix.k_b), 4, hs);
    bv_var *v = bv_op_reshape(g, proj(g, p, pc, 2, h, ix.v_w, ix.v_b), 4, hs);
    bv_attn_mask m = {0};
    bv_var *a = bv_op_reshape(g, bv_op_sdpa(g, q, k, v, &m), 3, xs);
    x = bv_op_add(g, x, proj(g, p, pc, 3, a, ix.o_w, ix.o_b));
    h = bv_op_layernorm(g, x, P(g, p, ix.ln2_w), P(g, p, ix.ln2_b), 1e-6);
    h = bv_op_gelu_tanh(g, proj(g, p, pc, 4, h, ix.fc1_w, ix.fc1_b));
    bv_var *y = bv_op_add(g, x, proj(g, p, pc, 5, h, ix.fc2_w, ix.fc2_b));
    bv_var *loss = bv_op_mean(g, bv_op_mul(g, y, y));
    bv_graph_backward(g, loss);
    double t = bv_time_now() - t0;
    *cpu = cpu_now() - c0;
    return t;
}

int bv_bench_encoder(int argc, char **argv) {
    /* --quant is ours; the rest goes to the shared flag parser */
    proj_ctx pc;
    memset(&pc, 0, sizeof pc);
    char *args[64];
    int nargs = 0;
    for (int i = 0; i < argc && nargs < 64; i++) {
        if (i > 0 && !strcmp(argv[i], "--quant")) {
            pc.quant = true;
        } else if (i > 0 && strcmp(argv[i], "--reps") && strcmp(argv[i], "--threads") && strcmp(argv[i], "--json")) {
            fprintf(stderr, "bitvla bench encoder: unknown option '%s' (expected --quant, --reps N, --threads N, "
                            "--json FILE)\n", argv[i]);
            return 2;
        } else {
            args[nargs++] = argv[i];
            if (i > 0 && i + 1 < argc) args[nargs++] = argv[++i]; /* the flag's value */
        }
    }
    bv_bench_opts o;
    if (bv_bench_parse(nargs, args, "encoder", &o) != 0) return 2;
    const int64_t B = 2, T = 256, D = 1152, F = 4304;
    /* the layer's parameters: a one-layer tower of the bitvla-2b sizes (so400m: T = 256 patches),
     * built the one way models are built; the forward below is the layer's, written out so that the
     * same weights run as full-precision linears or as BitLinears */
    bv_vla_config c;
    if (bv_config_preset("bitvla-2b", &c) != BV_OK) {
        fprintf(stderr, "bitvla bench encoder: %s\n", bv_error_msg());
        return 1;
    }
    c.vision.num_hidden_layers = 1;
    c.vision_feature_layer = -1;
    bv_model model;
    bv_model_spec spec = {.config = "bitvla-2b, one SigLIP layer", .cfg = &c, .parts = BV_VLA_VISION,
                          .purpose = BV_MODEL_TRAIN, .seed = 100};
    if (bv_model_build(&model, &spec) != BV_OK) {
        fprintf(stderr, "bitvla bench encoder: %s\n", bv_error_msg());
        return 1;
    }
    bv_params *p = &model.params;
    const bv_siglip_layer *L = &model.vla.vision.layers[0];
    BV_ASSERT(c.vision.hidden_size == D && c.vision.intermediate_size == F && bv_config_vision_patches(&c) == T,
              "bench encoder: so400m sizes");
    const enc_idx ix = {L->ln1.w, L->ln1.b, L->q.w, L->q.b, L->k.w, L->k.b, L->v.w, L->v.b,
                        L->o.w,   L->o.b,   L->ln2.w, L->ln2.b, L->fc1.w, L->fc1.b, L->fc2.w, L->fc2.b};
    float *xin = bv_aligned_alloc(B * T * D * 4);
    bv_bench_fill(xin, B * T * D, 7);
    bv_graph g;
    bv_graph_init(&g, 256u << 20);
    double times[256], qtimes[256], ratios[256], cpu_ratios[256];
    int reps = o.reps > 256 ? 256 : o.reps;
    proj_ctx fp;
    memset(&fp, 0, sizeof fp);
    size_t mallocs_after_warmup = 0;
    /* With --quant, full-precision and quantized steps alternate, so both see the same machine load;
     * the overhead is the median of the per-pair ratios. */
    for (int r = -2; r < reps; r++) { /* two warm-up steps */
        if (r == 0) mallocs_after_warmup = g.arena.n_block_mallocs;
        double tf = 0, tq = 0, cf = 0, cq = 0;
        if (pc.quant && (r & 1)) tq = layer_step(&g, p, &ix, &pc, xin, &cq);
        tf = layer_step(&g, p, &ix, &fp, xin, &cf);
        if (pc.quant && !(r & 1)) tq = layer_step(&g, p, &ix, &pc, xin, &cq);
        if (r >= 0) times[r] = tf, qtimes[r] = tq, ratios[r] = tq / tf, cpu_ratios[r] = cq / cf;
    }
    double fl = 6.0 * B * T * (4.0 * D * D + 2.0 * D * F) + 3.0 * 4 * B * T * T * D;
    double t = bv_bench_median(times, reps);
    printf("siglip-so400m layer B=2 T=256 quant=False: %.1f ms fwd+bwd, %.1f GFLOP/s (bitvla, %d threads)\n",
           t * 1e3, fl / t / 1e9, o.threads);
    bv_bench_text js = {0};
    bv_bench_text_printf(&js,
                         "{\"bench\": \"encoder\", \"case\": \"siglip-so400m layer B=2 T=256 quant=False\", "
                         "\"threads\": %d, \"reps\": %d, \"ms\": %.4f, \"gflops\": %.2f, "
                         "\"arena_high_water_bytes\": %zu, \"block_mallocs_after_warmup\": %zu}\n",
                         o.threads, reps, t * 1e3, fl / t / 1e9, bv_arena_high_water(&g.arena),
                         g.arena.n_block_mallocs - mallocs_after_warmup);
    if (pc.quant) {
        double tq = bv_bench_median(qtimes, reps), ratio = bv_bench_median(ratios, reps);
        printf("siglip-so400m layer B=2 T=256 quant=True: %.1f ms fwd+bwd, %.1f GFLOP/s (bitvla, %d threads)\n",
               tq * 1e3, fl / tq / 1e9, o.threads);
        printf("QAT overhead (quant / full precision, median of %d interleaved pairs): %.3fx\n", reps, ratio);
        /* CPU time is steadier than wall time on a shared machine (with OMP_WAIT_POLICY=passive,
         * idle threads do not spin and it is the work done) */
        printf("  in process CPU time: %.3fx\n", bv_bench_median(cpu_ratios, reps));
        bv_bench_text_printf(&js,
                             "{\"bench\": \"encoder\", \"case\": \"siglip-so400m layer B=2 T=256 quant=True\", "
                             "\"threads\": %d, \"reps\": %d, \"ms\": %.4f, \"gflops\": %.2f, "
                             "\"qat_overhead\": %.4f, \"qat_overhead_cpu\": %.4f}\n",
                             o.threads, reps, tq * 1e3, fl / tq / 1e9, ratio, bv_bench_median(cpu_ratios, reps));
    }
    printf("  arena high-water %.1f MiB, block mallocs after warm-up: %zu\n",
           (double)bv_arena_high_water(&g.arena) / (1 << 20), g.arena.n_block_mallocs - mallocs_after_warmup);
    for (int i = 0; i < 6; i++) bv_qweight_free(&pc.cache[i]);
    bv_graph_free(&g);
    bv_model_free(&model);
    bv_aligned_free(xin);
    int rc = bv_bench_json_append("encoder", o.json, &js);
    bv_bench_text_free(&js);
    return rc;
}
