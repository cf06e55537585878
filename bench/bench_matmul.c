/* bench_matmul.c - the matmul path (bv_op_linear forward+backward, bv_op_matmul) against raw
 * cblas_sgemm calls doing the same arithmetic on the same shapes, in the same process.
 * Shapes: the linear layers of a SigLIP-so400m encoder layer (B*T = 512 tokens) and of a BitNet
 * 2B4T decoder layer (600 tokens), and the attention score matmul. Prints figures, never fails. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "bench/bench.h"
#include "bench/bench_util.h"

typedef struct {
    const char *name;
    int64_t N, C, OC;
} lin_shape;

static const lin_shape k_shapes[] = {
    {"siglip q/k/v/out 512x1152->1152", 512, 1152, 1152}, {"siglip fc1 512x1152->4304", 512, 1152, 4304},
    {"siglip fc2 512x4304->1152", 512, 4304, 1152},       {"bitnet q/o 600x2560->2560", 600, 2560, 2560},
    {"bitnet k/v 600x2560->640", 600, 2560, 640},         {"bitnet gate/up 600x2560->6912", 600, 2560, 6912},
    {"bitnet down 600x6912->2560", 600, 6912, 2560},
};

int bv_bench_matmul(int argc, char **argv) {
    bv_bench_opts o;
    if (bv_bench_parse(argc, argv, "matmul", &o) != 0) return 2;
    printf("matmul path vs raw cblas_sgemm, %d threads, %d reps (median ms; ratio = ours / sgemm)\n", o.threads,
           o.reps);
    printf("%-34s %10s %10s %7s %10s %10s %7s %8s\n", "shape", "fwd ours", "fwd sgemm", "ratio", "f+b ours",
           "f+b sgemm", "ratio", "GFLOP/s");
    bv_bench_text js = {0};
    bv_graph g;
    bv_graph_init(&g, 64u << 20);
    for (size_t si = 0; si < sizeof k_shapes / sizeof k_shapes[0]; si++) {
        const lin_shape *s = &k_shapes[si];
        int64_t N = s->N, C = s->C, OC = s->OC;
        float *x = bv_aligned_alloc(N * C * 4), *w = bv_aligned_alloc(OC * C * 4), *y = bv_aligned_alloc(N * OC * 4);
        float *dy = bv_aligned_alloc(N * OC * 4), *dx = bv_aligned_alloc(N * C * 4), *dw = bv_aligned_alloc(OC * C * 4);
        bv_bench_fill(x, N * C, 1);
        bv_bench_fill(w, OC * C, 2);
        bv_bench_fill(dy, N * OC, 3);
        memset(dw, 0, OC * C * 4);
        double t_raw_f[64], t_raw_fb[64], t_ours_f[64], t_ours_fb[64];
        int reps = o.reps > 64 ? 64 : o.reps;
        for (int r = -1; r < reps; r++) { /* r = -1 warms up */
            double t0 = bv_time_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, x, C, w, C, 0.0f, y, OC);
            double t1 = bv_time_now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dy, OC, w, C, 0.0f, dx, C);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dy, OC, x, C, 1.0f, dw, C);
            double t2 = bv_time_now();
            /* ours: forward only, then forward + backward through the tape */
            bv_graph_reset(&g);
            bv_tensor xt = bv_tensor_make2(x, BV_DTYPE_F32, N, C), wt = bv_tensor_make2(w, BV_DTYPE_F32, OC, C);
            bv_var *xv = bv_var_wrap(&g, &xt, false), *wv = bv_var_wrap(&g, &wt, false);
            double t3 = bv_time_now();
            (void)bv_op_linear(&g, xv, wv, NULL);
            double t4 = bv_time_now();
            bv_graph_reset(&g);
            xv = bv_var_wrap(&g, &xt, true);
            wv = bv_var_wrap(&g, &wt, true);
            wv->grad = dw; /* like a parameter: gradient accumulates into a persistent buffer */
            xv->grad = dx;
            double t5 = bv_time_now();
            bv_var *yv = bv_op_linear(&g, xv, wv, NULL);
            bv_graph_backward_seed(&g, yv, dy);
            double t6 = bv_time_now();
            if (r >= 0) {
                t_raw_f[r] = t1 - t0;
                t_raw_fb[r] = t2 - t0;
                t_ours_f[r] = t4 - t3;
                t_ours_fb[r] = t6 - t5;
            }
        }
        double rf = bv_bench_median(t_raw_f, reps), rfb = bv_bench_median(t_raw_fb, reps);
        double of = bv_bench_median(t_ours_f, reps), ofb = bv_bench_median(t_ours_fb, reps);
        double flops = 6.0 * N * C * OC;
        printf("%-34s %10.2f %10.2f %7.3f %10.2f %10.2f %7.3f %8.1f\n", s->name, of * 1e3, rf * 1e3, of / rf,
               ofb * 1e3, rfb * 1e3, ofb / rfb, flops / ofb / 1e9);
        bv_bench_text_printf(&js,
                             "{\"bench\": \"matmul\", \"case\": \"%s\", \"threads\": %d, \"reps\": %d, "
                             "\"fwd_ms\": %.4f, \"fwd_sgemm_ms\": %.4f, \"fwd_ratio\": %.4f, \"fwd_bwd_ms\": %.4f, "
                             "\"fwd_bwd_sgemm_ms\": %.4f, \"fwd_bwd_ratio\": %.4f, \"gflops\": %.2f}\n",
                             s->name, o.threads, reps, of * 1e3, rf * 1e3, of / rf, ofb * 1e3, rfb * 1e3, ofb / rfb,
                             flops / ofb / 1e9);
        bv_aligned_free(x), bv_aligned_free(w), bv_aligned_free(y);
        bv_aligned_free(dy), bv_aligned_free(dx), bv_aligned_free(dw);
    }
    /* attention scores: (B*H) batched (T, hd) @ (T, hd)^T */
    {
        int64_t nb = 32, T = 256, hd = 72;
        float *q = bv_aligned_alloc(nb * T * hd * 4), *k = bv_aligned_alloc(nb * T * hd * 4),
              *s = bv_aligned_alloc(nb * T * T * 4);
        bv_bench_fill(q, nb * T * hd, 4);
        bv_bench_fill(k, nb * T * hd, 5);
        double tr[64], to[64];
        int reps = o.reps > 64 ? 64 : o.reps;
        for (int r = -1; r < reps; r++) {
            double t0 = bv_time_now();
            for (int64_t i = 0; i < nb; i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, q + i * T * hd, hd,
                            k + i * T * hd, hd, 0.0f, s + i * T * T, T);
            double t1 = bv_time_now();
            bv_graph_reset(&g);
            int64_t sh[3] = {nb, T, hd};
            bv_tensor qt = bv_tensor_make(q, BV_DTYPE_F32, 3, sh), kt = bv_tensor_make(k, BV_DTYPE_F32, 3, sh);
            bv_var *qv = bv_var_wrap(&g, &qt, false), *kv = bv_var_wrap(&g, &kt, false);
            double t2 = bv_time_now();
            (void)bv_op_matmul(&g, qv, kv, false, true);
            double t3 = bv_time_now();
            if (r >= 0) tr[r] = t1 - t0, to[r] = t3 - t2;
        }
        double a = bv_bench_median(to, reps), b = bv_bench_median(tr, reps);
        printf("%-34s %10.2f %10.2f %7.3f\n", "scores 32x(256x72 @ 72x256)", a * 1e3, b * 1e3, a / b);
        bv_bench_text_printf(&js,
                             "{\"bench\": \"matmul\", \"case\": \"scores 32x(256x72 @ 72x256)\", \"threads\": %d, "
                             "\"reps\": %d, \"fwd_ms\": %.4f, \"fwd_sgemm_ms\": %.4f, \"fwd_ratio\": %.4f}\n",
                             o.threads, reps, a * 1e3, b * 1e3, a / b);
        bv_aligned_free(q), bv_aligned_free(k), bv_aligned_free(s);
    }
    bv_graph_free(&g);
    int rc = bv_bench_json_append("matmul", o.json, &js);
    bv_bench_text_free(&js);
    return rc;
}
