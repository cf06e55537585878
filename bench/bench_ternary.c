/* bench_ternary.c - the integer BitLinear forward (int8 activations x 2-bit ternary weights,
 * kernels/ternary_gemm.h) at the BitNet b1.58 2B4T linear shapes, for every kernel this CPU runs,
 * against fp32 cblas_sgemv / cblas_sgemm on the same shapes, and against the bytes-moved limit of
 * the packed weights: the machine's memory read bandwidth is measured in the same run with a
 * streaming sum over a buffer much larger than the caches.
 *
 * GEMV (N = 1, decoding) is bound by weight bytes. Two figures per kernel:
 *  - hot:    the same weights again and again (they stay in L2/L3: 0.4-4.4 MB packed);
 *  - stream: a pool of copies of the weights, >= 1 GiB in all, called in turn, so every call
 *            reads its weights from DRAM, as a decoding step does through 30 layers.
 * GB/s = packed weight bytes / time (fp32: 4 bytes per weight), and the share (%bw) of the best
 * read bandwidth measured so far in the run (measured again before each shape: on a shared machine
 * it moves with the other jobs). "hot" above 100% means cache-resident weights. GEMM (N = 600, a prefill or training-sized batch) is compute-bound: GOP/s
 * (2 N C OC / time) and the time ratio to sgemm. Prints figures, never fails. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "src/common.h"
#include "src/cpu.h"
#include "src/kernels/bitlinear.h"
#include "src/kernels/ternary_gemm.h"

#define POOL_BYTES ((int64_t)1 << 30) /* >> any cache of the machines this runs on */
#define GEMM_N 600
#define MAX_REPS 64
#define MAX_SAMPLES 4096
#define REF_ROWS 96

typedef struct {
    const char *name;
    int64_t OC, C;
} tshape;

static const tshape k_shapes[] = {
    {"q/o 2560x2560", 2560, 2560},
    {"k/v 640x2560", 640, 2560},
    {"gate/up 6912x2560", 6912, 2560},
    {"down 2560x6912", 2560, 6912},
};

/* ---- timing helpers ---- */

typedef enum { OP_TERNARY, OP_FUSED, OP_SGEMV, OP_SGEMM } op_kind;

typedef struct {
    op_kind op;
    bv_ternary_kernel k;
    int64_t N, C, OC;
    const int8_t *x8;
    const float *sx, *xf;
    int32_t *o32;
    float *of;
    /* the weights to use on call i: mats[i % nw] or wf[i % nw] */
    const bv_ternary_mat *mats;
    const float *const *wf;
    int64_t nw;
} job;

static void call(const job *j, int64_t i) {
    switch (j->op) {
    case OP_TERNARY: bv_k_ternary_gemm_fwd_with(j->k, j->o32, j->x8, &j->mats[i % j->nw], j->N); break;
    case OP_FUSED: bv_k_ternary_linear_fwd_with(j->k, j->of, j->x8, j->sx, &j->mats[i % j->nw], NULL, j->N); break;
    case OP_SGEMV:
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)j->OC, (int)j->C, 1.0f, j->wf[i % j->nw], (int)j->C, j->xf, 1,
                    0.0f, j->of, 1);
        break;
    case OP_SGEMM:
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->N, (int)j->OC, (int)j->C, 1.0f, j->xf,
                    (int)j->C, j->wf[i % j->nw], (int)j->C, 0.0f, j->of, (int)j->OC);
        break;
    }
}

/* Median seconds per call, each call timed on its own: at least `reps` calls and at least 0.25 s
 * of them (at most MAX_SAMPLES), after a warm-up call (and, with a pool, a warm-up pass over it).
 * Per call, not per batch: on a machine shared with other jobs an OpenMP barrier sometimes waits
 * a whole time slice for a preempted thread; that stretches a few calls, which the median skips,
 * where it would stretch every batch. reps <= 0: one call, no warm-up. */
static double time_job(const job *j, int reps) {
    static double t[MAX_SAMPLES];
    if (reps <= 0) {
        double t0 = bv_time_now();
        call(j, 0);
        return bv_time_now() - t0;
    }
    call(j, 0);
    if (j->nw > 1)
        for (int64_t i = 1; i <= j->nw; i++) call(j, i);
    int n = 0;
    double start = bv_time_now();
    int64_t ic = j->nw > 1 ? j->nw + 1 : 0;
    while (n < MAX_SAMPLES && (n < reps || bv_time_now() - start < 0.25)) {
        double a = bv_time_now();
        call(j, ic++);
        t[n++] = bv_time_now() - a;
    }
    return bv_bench_median(t, n);
}

static void json_line(bv_bench_text *js, const char *shape, const char *what, const char *kernel, int64_t N,
                      double sec, double gbs, double gops) {
    bv_bench_text_printf(js,
                         "{\"bench\":\"ternary\",\"shape\":\"%s\",\"what\":\"%s\",\"kernel\":\"%s\",\"N\":%lld,"
                         "\"ms\":%.6f,\"weight_GBps\":%.3f,\"GOPs\":%.3f}\n",
                         shape, what, kernel, (long long)N, sec * 1e3, gbs, gops);
}

int bv_bench_ternary(int argc, char **argv) {
    bv_bench_opts o;
    if (bv_bench_parse(argc, argv, "ternary", &o) != 0) return 2;
    int reps = o.reps > MAX_REPS ? MAX_REPS : o.reps;
    bv_bench_text jl = {0};
    bv_ternary_kernel ks[BV_TERNARY_KERNEL_COUNT];
    int nk = 0;
    for (int k = 0; k < BV_TERNARY_KERNEL_COUNT; k++)
        if (bv_ternary_kernel_supported((bv_ternary_kernel)k)) ks[nk++] = (bv_ternary_kernel)k;

    uint8_t *pool = bv_aligned_alloc((size_t)POOL_BYTES);
    for (int64_t i = 0; i < POOL_BYTES; i++) pool[i] = (uint8_t)(i * 7 + (i >> 12));
    uint64_t sink = 0;
    double bw = bv_bench_read_bandwidth(pool, POOL_BYTES, 2, &sink);
    printf("ternary GEMV/GEMM: int8 x ternary (2-bit packed) vs fp32 OpenBLAS, %d threads, median per call (>= %d calls, >= 0.25 s)\n",
           o.threads, reps);
    printf("cpu: %s; default kernel: %s\n", bv_cpu_describe(), bv_ternary_kernel_active_name());
    printf("memory read bandwidth (streaming sum over %lld MiB in 4 MiB pieces, %d streams per thread, median): "
           "%.1f GB/s\n", (long long)(POOL_BYTES >> 20), BV_BENCH_BW_STREAMS, bw);
    json_line(&jl, "-", "read_bandwidth", "-", 0, 0, bw, 0);

    for (size_t si = 0; si < BV_ARRAY_LEN(k_shapes); si++) {
        const tshape *s = &k_shapes[si];
        const int64_t OC = s->OC, C = s->C, N = GEMM_N;
        int8_t *codes = bv_xmalloc((size_t)(OC * C)), *x8 = bv_aligned_alloc((size_t)(N * C));
        float *xf = bv_aligned_alloc((size_t)(N * C * 4)), *wf = bv_aligned_alloc((size_t)(OC * C * 4));
        float *sx = bv_xmalloc((size_t)N * 4), *of = bv_aligned_alloc((size_t)(N * OC * 4));
        int32_t *o32 = bv_aligned_alloc((size_t)(N * OC * 4));
        bv_bench_fill(xf, N * C, 10 + si);
        bv_bench_fill(wf, OC * C, 20 + si);
        for (int64_t i = 0; i < OC * C; i++) codes[i] = wf[i] < -0.33f ? -1 : wf[i] > 0.33f ? 1 : 0;
        bv_k_quant_act_fwd(NULL, x8, sx, xf, N, C);
        bv_ternary_mat m;
        if (bv_ternary_mat_pack(&m, codes, OC, C, 1.5f) != BV_OK) {
            fprintf(stderr, "bitvla bench ternary: %s\n", bv_error_msg());
            bv_bench_text_free(&jl);
            return 1;
        }
        const int64_t wbytes = bv_ternary_mat_bytes(&m);
        /* the pool of packed copies */
        const int64_t ncopy = POOL_BYTES / wbytes;
        bv_ternary_mat *copies = bv_xmalloc((size_t)ncopy * sizeof *copies);
        for (int64_t i = 0; i < ncopy; i++) {
            copies[i] = m;
            copies[i].packed = pool + i * wbytes;
            memcpy(copies[i].packed, m.packed, (size_t)wbytes);
        }
        /* the machine is shared: bandwidth moves with the other jobs, so measure it again next to
         * the streaming runs and compare against the best seen in this run */
        double bw_here = bv_bench_read_bandwidth(pool, POOL_BYTES, 1, &sink);
        if (bw_here > bw) bw = bw_here;
        printf("\n%s: packed weights %.2f MB (fp32 %.1f MB); stream pool %lld copies; read bandwidth now %.1f GB/s, "
               "best %.1f\n", s->name, wbytes / 1e6, OC * C * 4 / 1e6, (long long)ncopy, bw_here, bw);
        json_line(&jl, s->name, "read_bandwidth", "-", 0, 0, bw_here, 0);
        printf("  GEMV N=1           %10s %9s %6s %10s %9s %6s %9s\n", "hot us", "GB/s", "%bw", "stream us",
               "GB/s", "%bw", "x sgemv");
        double t_sgemv_stream = 0, t_sgemv_hot = 0;
        {
            const float *one[1] = {wf};
            job j = {.op = OP_SGEMV, .N = 1, .C = C, .OC = OC, .xf = xf, .of = of, .wf = one, .nw = 1};
            t_sgemv_hot = time_job(&j, reps);
        }
        double t_hot[BV_TERNARY_KERNEL_COUNT], t_stream[BV_TERNARY_KERNEL_COUNT];
        for (int i = 0; i < nk; i++) {
            job j = {.op = OP_TERNARY, .k = ks[i], .N = 1, .C = C, .OC = OC, .x8 = x8, .o32 = o32, .mats = &m,
                     .nw = 1};
            t_hot[i] = time_job(&j, reps);
            t_stream[i] = 0;
            if (ks[i] != BV_TERNARY_KERNEL_REF) { /* ref is compute-bound many times over: no pool pass */
                j.mats = copies, j.nw = ncopy;
                t_stream[i] = time_job(&j, reps);
            }
        }
        { /* fp32 weights through the same pool */
            const int64_t nf = POOL_BYTES / (OC * C * 4);
            const float **ptrs = bv_xmalloc((size_t)nf * sizeof *ptrs);
            for (int64_t i = 0; i < nf; i++) {
                float *dst = (float *)(pool + i * OC * C * 4);
                memcpy(dst, wf, (size_t)(OC * C * 4));
                ptrs[i] = dst;
            }
            job j = {.op = OP_SGEMV, .N = 1, .C = C, .OC = OC, .xf = xf, .of = of, .wf = ptrs, .nw = nf};
            t_sgemv_stream = time_job(&j, reps);
            free(ptrs);
        }
        for (int i = 0; i < nk; i++) {
            const char *kn = bv_ternary_kernel_name(ks[i]);
            double gh = wbytes / t_hot[i] / 1e9;
            json_line(&jl, s->name, "gemv_hot", kn, 1, t_hot[i], gh, 2.0 * C * OC / t_hot[i] / 1e9);
            if (t_stream[i] > 0) {
                double gs = wbytes / t_stream[i] / 1e9;
                printf("  %-18s %10.1f %9.1f %5.0f%% %10.1f %9.1f %5.0f%% %8.1fx\n", kn, t_hot[i] * 1e6, gh,
                       100 * gh / bw, t_stream[i] * 1e6, gs, 100 * gs / bw, t_sgemv_stream / t_stream[i]);
                json_line(&jl, s->name, "gemv_stream", kn, 1, t_stream[i], gs, 2.0 * C * OC / t_stream[i] / 1e9);
            } else {
                printf("  %-18s %10.1f %9.1f %5.0f%% %10s %9s %6s %8.1fx\n", kn, t_hot[i] * 1e6, gh, 100 * gh / bw,
                       "-", "-", "-", t_sgemv_hot / t_hot[i]);
            }
        }
        {
            double gh = OC * C * 4 / t_sgemv_hot / 1e9, gs = OC * C * 4 / t_sgemv_stream / 1e9;
            printf("  %-18s %10.1f %9.1f %5.0f%% %10.1f %9.1f %5.0f%% %8.1fx\n", "fp32 sgemv", t_sgemv_hot * 1e6, gh,
                   100 * gh / bw, t_sgemv_stream * 1e6, gs, 100 * gs / bw, 1.0);
            json_line(&jl, s->name, "gemv_hot", "sgemv", 1, t_sgemv_hot, gh, 2.0 * C * OC / t_sgemv_hot / 1e9);
            json_line(&jl, s->name, "gemv_stream", "sgemv", 1, t_sgemv_stream, gs,
                      2.0 * C * OC / t_sgemv_stream / 1e9);
        }

        /* GEMM N = 600 */
        printf("  GEMM N=%d         %10s %9s %9s\n", GEMM_N, "ms", "GOP/s", "x sgemm");
        const float *one[1] = {wf};
        job js = {.op = OP_SGEMM, .N = N, .C = C, .OC = OC, .xf = xf, .of = of, .wf = one, .nw = 1};
        double t_sgemm = time_job(&js, reps), ops = 2.0 * N * C * OC;
        for (int i = 0; i < nk; i++) {
            const char *kn = bv_ternary_kernel_name(ks[i]);
            job j = {.op = OP_TERNARY, .k = ks[i], .N = N, .C = C, .OC = OC, .x8 = x8, .o32 = o32, .mats = &m,
                     .nw = 1};
            /* ref: seconds at these sizes; timed once on REF_ROWS rows and scaled (its cost is
             * linear in N beyond one 48-row panel) */
            const bool ref = ks[i] == BV_TERNARY_KERNEL_REF;
            if (ref) j.N = REF_ROWS;
            double t = time_job(&j, ref ? 0 : reps) * (double)N / (double)j.N;
            printf("  %-18s %10.2f %9.1f %8.2fx%s\n", kn, t * 1e3, ops / t / 1e9, t_sgemm / t,
                   ref ? "  (one call on 96 rows, scaled)" : "");
            json_line(&jl, s->name, "gemm", kn, N, t, 0, ops / t / 1e9);
        }
        {
            bv_ternary_kernel k = bv_ternary_kernel_active();
            job j = {.op = OP_FUSED, .k = k, .N = N, .C = C, .OC = OC, .x8 = x8, .sx = sx, .of = of, .mats = &m,
                     .nw = 1};
            double t = time_job(&j, k == BV_TERNARY_KERNEL_REF ? 0 : reps);
            char name[48];
            snprintf(name, sizeof name, "%s fused f32", bv_ternary_kernel_name(k));
            printf("  %-18s %10.2f %9.1f %8.2fx\n", name, t * 1e3, ops / t / 1e9, t_sgemm / t);
            json_line(&jl, s->name, "gemm_fused", bv_ternary_kernel_name(k), N, t, 0, ops / t / 1e9);
        }
        printf("  %-18s %10.2f %9.1f %8.2fx\n", "fp32 sgemm", t_sgemm * 1e3, ops / t_sgemm / 1e9, 1.0);
        json_line(&jl, s->name, "gemm", "sgemm", N, t_sgemm, 0, ops / t_sgemm / 1e9);

        free(copies);
        bv_ternary_mat_free(&m);
        free(codes), free(sx);
        bv_aligned_free(x8), bv_aligned_free(xf), bv_aligned_free(wf), bv_aligned_free(of), bv_aligned_free(o32);
    }
    bv_aligned_free(pool);
    if (sink == 42) printf(" \n"); /* keeps the bandwidth sums alive */
    int rc = bv_bench_json_append("ternary", o.json, &jl);
    bv_bench_text_free(&jl);
    return rc;
}
