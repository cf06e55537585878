/* bench_bitlinear.c - the cost of quantization-aware training: BitLinear W1.58A8 forward+backward
 * (bv_op_bitlinear) against the full-precision linear layer (bv_op_linear) on the same shapes, in
 * the same process, interleaved rep by rep so both see the same machine load.
 * Shapes: the linear layers of a SigLIP-so400m encoder layer at B*T = 512 tokens.
 * "bitlinear" re-quantizes the weights every step (a new params version each rep: one optimizer
 * step per forward/backward); "cached" reuses them (a second micro-batch of the same step).
 * QAT overhead = bitlinear time / linear time (PyTorch's is about 1.48x; scripts/bench measures it).
 * Also the quantizers alone. Prints figures, never fails. */
#include <stdio.h>
#include <string.h>

#include "autograd/autograd.h"
#include "bench/bench.h"
#include "bench/bench_util.h"
#include "src/kernels/bitlinear.h"

typedef struct {
    const char *name;
    int64_t N, C, OC;
} bl_shape;

static const bl_shape k_shapes[] = {
    {"siglip q/k/v/out 512x1152->1152", 512, 1152, 1152},
    {"siglip fc1 512x1152->4304", 512, 1152, 4304},
    {"siglip fc2 512x4304->1152", 512, 4304, 1152},
};

/* One forward + backward of a linear layer (bitlinear when cfg != NULL), with bias; weight and bias
 * gradients accumulate into persistent buffers like parameters. Returns seconds. */
static double step(bv_graph *g, const bl_shape *s, float *x, float *w, float *b, float *dy, float *dx, float *dw,
                   float *db, const bv_bitlinear_cfg *cfg, bv_qweight *cache, uint64_t version) {
    bv_graph_reset(g);
    bv_tensor xt = bv_tensor_make2(x, BV_DTYPE_F32, s->N, s->C), wt = bv_tensor_make2(w, BV_DTYPE_F32, s->OC, s->C);
    bv_tensor bt = bv_tensor_make1(b, BV_DTYPE_F32, s->OC);
    bv_var *xv = bv_var_wrap(g, &xt, true), *wv = bv_var_wrap(g, &wt, true), *bv = bv_var_wrap(g, &bt, true);
    xv->grad = dx, wv->grad = dw, bv->grad = db;
    double t0 = bv_time_now();
    bv_var *y = cfg ? bv_op_bitlinear(g, xv, wv, bv, cfg, cache, version) : bv_op_linear(g, xv, wv, bv);
    bv_graph_backward_seed(g, y, dy);
    return bv_time_now() - t0;
}

int bv_bench_bitlinear(int argc, char **argv) {
    bv_bench_opts o;
    if (bv_bench_parse(argc, argv, "bitlinear", &o) != 0) return 2;
    printf("BitLinear W1.58A8 vs full-precision linear, forward+backward with bias, %d threads, %d reps "
           "(median ms)\n", o.threads, o.reps);
    printf("%-34s %9s %10s %7s %9s %7s %9s %9s\n", "shape", "linear", "bitlinear", "ratio", "cached", "ratio",
           "wquant", "aquant");
    bv_bench_text js = {0};
    bv_graph g;
    bv_graph_init(&g, 64u << 20);
    bv_bitlinear_cfg cfg = {1, 8};
    double sum_lin = 0, sum_bl = 0, sum_cached = 0;
    for (size_t si = 0; si < BV_ARRAY_LEN(k_shapes); si++) {
        const bl_shape *s = &k_shapes[si];
        int64_t N = s->N, C = s->C, OC = s->OC;
        float *x = bv_aligned_alloc(N * C * 4), *w = bv_aligned_alloc(OC * C * 4), *b = bv_aligned_alloc(OC * 4);
        float *dy = bv_aligned_alloc(N * OC * 4), *dx = bv_aligned_alloc(N * C * 4), *dw = bv_aligned_alloc(OC * C * 4);
        float *db = bv_aligned_alloc(OC * 4), *xq = bv_aligned_alloc(N * C * 4);
        bv_bench_fill(x, N * C, 1);
        bv_bench_fill(w, OC * C, 2);
        bv_bench_fill(b, OC, 3);
        bv_bench_fill(dy, N * OC, 4);
        memset(dx, 0, N * C * 4), memset(dw, 0, OC * C * 4), memset(db, 0, OC * 4);
        bv_qweight cache;
        memset(&cache, 0, sizeof cache);
        enum { MAXR = 64 };
        double tl[MAXR], tb[MAXR], tc[MAXR], tw[MAXR], ta[MAXR], rb[MAXR], rc[MAXR];
        int reps = o.reps > MAXR ? MAXR : o.reps;
        uint64_t version = 1;
        for (int r = -1; r < reps; r++) { /* r = -1 warms up */
            double l = step(&g, s, x, w, b, dy, dx, dw, db, NULL, NULL, 0);
            double q = step(&g, s, x, w, b, dy, dx, dw, db, &cfg, &cache, ++version);
            double c = step(&g, s, x, w, b, dy, dx, dw, db, &cfg, &cache, version);
            double t0 = bv_time_now();
            bv_k_quant_weight_fwd(cache.codes, cache.wq, w, OC * C);
            double t1 = bv_time_now();
            bv_k_quant_act_fwd(xq, NULL, NULL, x, N, C);
            double t2 = bv_time_now();
            if (r >= 0) tl[r] = l, tb[r] = q, tc[r] = c, tw[r] = t1 - t0, ta[r] = t2 - t1, rb[r] = q / l, rc[r] = c / l;
        }
        double ml = bv_bench_median(tl, reps), mb = bv_bench_median(tb, reps), mc = bv_bench_median(tc, reps);
        double mw = bv_bench_median(tw, reps), ma = bv_bench_median(ta, reps);
        double uses = si == 0 ? 4 : 1; /* q, k, v and out_proj share the first shape */
        sum_lin += uses * ml, sum_bl += uses * mb, sum_cached += uses * mc;
        printf("%-34s %9.2f %10.2f %7.3f %9.2f %7.3f %9.2f %9.2f\n", s->name, ml * 1e3, mb * 1e3,
               bv_bench_median(rb, reps), mc * 1e3, bv_bench_median(rc, reps), mw * 1e3, ma * 1e3);
        bv_bench_text_printf(&js,
                             "{\"bench\": \"bitlinear\", \"case\": \"%s\", \"threads\": %d, \"reps\": %d, "
                             "\"linear_ms\": %.4f, \"bitlinear_ms\": %.4f, \"bitlinear_ratio\": %.4f, "
                             "\"cached_ms\": %.4f, \"cached_ratio\": %.4f, \"wquant_ms\": %.4f, \"aquant_ms\": %.4f}\n",
                             s->name, o.threads, reps, ml * 1e3, mb * 1e3, bv_bench_median(rb, reps), mc * 1e3,
                             bv_bench_median(rc, reps), mw * 1e3, ma * 1e3);
        bv_qweight_free(&cache);
        bv_aligned_free(x), bv_aligned_free(w), bv_aligned_free(b), bv_aligned_free(dy);
        bv_aligned_free(dx), bv_aligned_free(dw), bv_aligned_free(db), bv_aligned_free(xq);
    }
    printf("ratio: median over reps of bitlinear / linear time (each rep runs both back to back)\n");
    printf("QAT overhead of a SigLIP layer's six projections (4 x q/k/v/out + fc1 + fc2, medians): %.3fx "
           "re-quantizing every step, %.3fx with cached weights\n", sum_bl / sum_lin, sum_cached / sum_lin);
    bv_bench_text_printf(&js,
                         "{\"bench\": \"bitlinear\", \"case\": \"siglip layer projections\", \"threads\": %d, "
                         "\"reps\": %d, \"qat_overhead\": %.4f, \"qat_overhead_cached\": %.4f}\n",
                         o.threads, o.reps > 64 ? 64 : o.reps, sum_bl / sum_lin, sum_cached / sum_lin);
    bv_graph_free(&g);
    int rc = bv_bench_json_append("bitlinear", o.json, &js);
    bv_bench_text_free(&js);
    return rc;
}
