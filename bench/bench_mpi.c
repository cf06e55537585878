/* bench_mpi.c - `mpirun -np N bitvla bench mpi`: data-parallel training steps (recipes/dist.h) and
 * what communication costs in them.
 *
 * Every rank builds the same model as `bitvla bench train` (tiny, or mid: bitvla-2b widths with
 * --vision-layers SigLIP-so400m and --text-layers BitNet-2B layers, default 3 and 2, so that two
 * ranks fit one 24 GiB machine) and runs --reps steps on a fixed batch of its own: zero the
 * gradients, --accumulation micro-batches of forward + backward, the reduction (overlapped with
 * the last backward, or after it with --overlap 0), the gradient norm, clipping and AdamW
 * (ZeRO-1 with --zero 1: sharded, then the weights all-gathered).
 * Rank 0 prints the step time (median), the time blocked waiting for messages and the time inside
 * MPI calls as shares of the step (medians over the steps of the slowest rank's figures), and the
 * bytes each rank sent per step beside a ring all-reduce's 2 (N - 1) / N x the gradient bytes.
 * Run without mpirun it measures one rank (no communication): the baseline. scripts/bench mpi
 * runs the matrix (1 and 2 ranks, with and without overlap and sharding). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "models/build.h"
#include "optim/adamw.h"
#include "recipes/dist.h"

#define MAX_REPS 256

typedef struct {
    const char *size;
    int zero, overlap, accumulation, vision_layers, text_layers, batch;
    double bucket_mb;
    bv_bench_opts b;
} mpi_opts;

static int usage(FILE *f, int rc) {
    fprintf(f, "usage: [mpirun -np N] bitvla bench mpi [--size tiny|mid] [--zero 0|1] [--overlap 0|1] [--bucket-mb X]\n"
               "       [--accumulation A] [--vision-layers L] [--text-layers L] [--batch B] [--reps N] [--threads N]\n"
               "       [--json FILE]\n"
               "Data-parallel training steps: step time, time waiting on communication and inside MPI (shares of the\n"
               "step), bytes sent per rank against a ring all-reduce's 2 (N-1)/N x gradient bytes. Defaults: tiny,\n"
               "zero 0, overlap 1, bucket 25 MB (tiny: 0.25), accumulation 1, mid 3 + 2 layers, 1 row (tiny 8).\n");
    return rc;
}

static int parse(int argc, char **argv, mpi_opts *o) {
    char *rest[64];
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout, 3);
        bool takes = !strcmp(a, "--size") || !strcmp(a, "--zero") || !strcmp(a, "--overlap") ||
                     !strcmp(a, "--bucket-mb") || !strcmp(a, "--accumulation") || !strcmp(a, "--vision-layers") ||
                     !strcmp(a, "--text-layers") || !strcmp(a, "--batch");
        if (!takes) {
            if (nrest < 63) rest[nrest++] = argv[i];
            continue;
        }
        if (!v) {
            fprintf(stderr, "bitvla bench mpi: %s needs a value\n", a);
            return 2;
        }
        char *end;
        double x = strtod(v, &end);
        bool num = *v && !*end;
        i++;
        if (!strcmp(a, "--size")) {
            if (strcmp(v, "tiny") && strcmp(v, "mid")) {
                fprintf(stderr, "bitvla bench mpi: --size expects tiny or mid, got '%s'\n", v);
                return 2;
            }
            o->size = v;
            continue;
        }
        struct {
            const char *flag;
            double lo, hi;
            bool integer;
        } k[] = {{"--zero", 0, 1, true},          {"--overlap", 0, 1, true},      {"--bucket-mb", 1e-3, 65536, false},
                 {"--accumulation", 1, 64, true}, {"--vision-layers", 1, 27, true}, {"--text-layers", 1, 30, true},
                 {"--batch", 1, 64, true}};
        for (size_t j = 0; j < BV_ARRAY_LEN(k); j++) {
            if (strcmp(a, k[j].flag)) continue;
            if (!num || x < k[j].lo || x > k[j].hi || (k[j].integer && x != floor(x))) {
                fprintf(stderr, "bitvla bench mpi: %s expects %s in [%g, %g], got '%s'\n", a,
                        k[j].integer ? "an integer" : "a number", k[j].lo, k[j].hi, v);
                return 2;
            }
            if (!strcmp(a, "--zero")) o->zero = (int)x;
            else if (!strcmp(a, "--overlap")) o->overlap = (int)x;
            else if (!strcmp(a, "--bucket-mb")) o->bucket_mb = x;
            else if (!strcmp(a, "--accumulation")) o->accumulation = (int)x;
            else if (!strcmp(a, "--vision-layers")) o->vision_layers = (int)x;
            else if (!strcmp(a, "--text-layers")) o->text_layers = (int)x;
            else o->batch = (int)x;
        }
    }
    return bv_bench_parse(nrest, rest, "mpi", &o->b);
}

typedef struct {
    double step, wait, comm, bytes;
} step_fig;

static bv_status run_step(bv_graph *g, bv_model *m, bv_adamw *opt, bv_dist *d, const bv_vla_batch *b, int A,
                          step_fig *f) {
    bv_params *p = &m->params;
    double t0 = bv_time_now();
    bv_params_zero_grad(p);
    const float seed = bv_dist_seed(d);
    double losses[64];
    for (int a = 0; a < A; a++) {
        bv_dist_micro_begin(d, a);
        bv_graph_reset(g);
        bv_vla_out y = bv_vla_forward(g, p, &m->vla, b, BV_VLA_MODE_ACTION);
        losses[a] = (double)bv_var_f32(y.loss)[0];
        bv_graph_backward_seed(g, y.loss, &seed);
        BV_TRY(bv_dist_micro_end(d, a));
    }
    (void)bv_dist_loss(d, losses);
    float bad;
    if (bv_dist_first_nonfinite(d, &bad) < 0) {
        double norm = bv_dist_grad_norm(d);
        bv_dist_clip(d, norm, 1.0);
        bv_adamw_step(opt, p, 1e-4, 1.0);
        BV_TRY(bv_dist_after_update(d));
    }
    const bv_dist_stats *s = bv_dist_last_stats(d);
    f->step = bv_time_now() - t0;
    f->wait = s->wait_s, f->comm = s->comm_s, f->bytes = s->bytes_sent;
    return BV_OK;
}

int bv_bench_mpi(int argc, char **argv) {
    mpi_opts o = {.size = "tiny", .zero = 0, .overlap = 1, .accumulation = 1, .vision_layers = 3, .text_layers = 2,
                  .bucket_mb = -1};
    int rc = parse(argc, argv, &o);
    if (rc) return rc == 3 ? 0 : rc;
    bv_dist_proc proc;
    if (bv_dist_init(&argc, &argv, &proc)) {
        fprintf(stderr, "bitvla bench mpi: %s\n", bv_error_msg());
        return 1;
    }
    const bool tiny = !strcmp(o.size, "tiny");
    if (o.bucket_mb < 0) o.bucket_mb = tiny ? 0.25 : 25;
    const int reps = BV_MIN(o.b.reps, MAX_REPS), A = o.accumulation, N = proc.world, r0 = proc.rank == 0;
    bv_vla_config c;
    bv_status st = bv_bench_train_config(o.size, 1024, &c);
    if (!st && !tiny) {
        c.vision.num_hidden_layers = o.vision_layers;
        c.text.num_hidden_layers = o.text_layers;
        st = bv_config_validate(&c, "bench mpi mid");
    }
    if (st) {
        fprintf(stderr, "bitvla bench mpi: %s\n", bv_error_msg());
        bv_dist_finalize();
        return 1;
    }
    const int B = o.batch ? o.batch : (tiny ? 8 : 1);
    bv_bench_batch mb;
    bv_bench_batch_make(&mb, &c, B, 2, 40);
    const double act = bv_vla_plan_forward(&c, &mb.b, BV_VLA_MODE_ACTION, true);
    bv_model m;
    bv_model_spec spec = {.config = tiny ? "tiny" : "bench mpi mid", .cfg = &c, .purpose = BV_MODEL_TRAIN, .seed = 1,
                          .reserve_bytes = act};
    bv_adamw opt = {0};
    bv_dist *d = NULL;
    bv_graph g;
    bool graph = false;
    st = bv_model_build(&m, &spec);
    if (!st) {
        bv_dist_cfg dc = {.rank = proc.rank, .world = N, .accumulation = A, .zero = o.zero, .exact = true,
                          .bucket_bytes = o.bucket_mb * 1e6};
        st = bv_dist_open(&d, &m.params, &dc);
    }
    if (!st) {
        bv_adamw_cfg oc;
        bv_adamw_cfg_default(&oc);
        const bv_range *own;
        int n_own = bv_dist_owned(d, &own);
        st = o.zero ? bv_adamw_init_shard(&opt, &m.params, &oc, n_own, own) : bv_adamw_init(&opt, &m.params, &oc);
    }
    step_fig w = {0};
    if (!st) {
        bv_graph_init(&g, (size_t)act);
        graph = true;
        if (o.overlap) bv_dist_attach(d, &g);
        if (r0)
            printf("== mpi %s: %d rank(s) x %d thread(s), %lld parameters (%.1f MB of gradients, %d bucket(s) of %.2f MB), "
                   "micro-batch %d x accumulation %d per rank, ZeRO-%d, overlap %s\n",
                   o.size, N, o.b.threads, (long long)m.params.numel_trainable, 4e-6 * (double)m.params.numel_trainable,
                   bv_dist_last_stats(d)->buckets, o.bucket_mb, B, A, o.zero, o.overlap ? "on" : "off");
        fflush(stdout);
        st = run_step(&g, &m, &opt, d, &mb.b, A, &w); /* warm-up */
    }
    double ts[MAX_REPS], tw[MAX_REPS], tc[MAX_REPS], bytes = 0;
    for (int r = 0; r < reps && !st; r++) {
        st = run_step(&g, &m, &opt, d, &mb.b, A, &w);
        /* the slowest rank's step and waits: the sum over ranks of one-hot slots, rank-ordered */
        double v[3] = {w.step, w.wait, w.comm};
        for (int k = 0; k < 3; k++) {
            double mx = v[k];
            if (N > 1) {
                double *slot = calloc((size_t)N, sizeof *slot);
                slot[proc.rank] = v[k];
                bv_dist_sum_doubles(d, slot, N);
                mx = 0;
                for (int j = 0; j < N; j++) mx = BV_MAX(mx, slot[j]);
                free(slot);
            }
            v[k] = mx;
        }
        ts[r] = v[0], tw[r] = v[1], tc[r] = v[2];
        bytes = w.bytes;
    }
    if (st) {
        fprintf(stderr, "bitvla bench mpi: rank %d of %d: %s\n", proc.rank, N, bv_error_msg());
        bv_dist_abort(1);
    }
    const double grad_bytes = 4.0 * (double)m.params.numel_trainable;
    const double ring = N > 1 ? 2.0 * (N - 1) / N * grad_bytes : 0;
    const double med = bv_bench_median(ts, reps), wait = bv_bench_median(tw, reps), comm = bv_bench_median(tc, reps);
    if (r0) {
        printf("mpi %s np=%d zero=%d overlap=%d: %.1f ms per step (median of %d); waiting on communication %.2f ms = "
               "%.1f%% of the step, inside MPI %.2f ms = %.1f%%; sent %.2f MB per rank per step",
               o.size, N, o.zero, o.overlap, med * 1e3, reps, wait * 1e3, 100 * wait / med, comm * 1e3, 100 * comm / med,
               bytes / 1e6);
        if (N > 1) printf(" = %.3fx a ring all-reduce's 2(N-1)/N x %.2f MB = %.2f MB", bytes / ring, grad_bytes / 1e6, ring / 1e6);
        printf("; peak RSS %.3f GiB (rank 0)\n", bv_bench_peak_rss() / 1073741824.0);
        fflush(stdout);
    }
    rc = 0;
    if (r0 && o.b.json) {
        bv_bench_text js = {0};
        bv_bench_text_printf(&js,
                             "{\"bench\": \"mpi\", \"size\": \"%s\", \"ranks\": %d, \"threads\": %d, \"zero\": %d, "
                             "\"overlap\": %d, \"accumulation\": %d, \"bucket_mb\": %g, \"reps\": %d, \"step_ms\": %.3f, "
                             "\"wait_ms\": %.3f, \"mpi_ms\": %.3f, \"bytes_sent\": %.0f, \"ring_bytes\": %.0f, "
                             "\"gradient_bytes\": %.0f, \"peak_rss_bytes\": %.0f}\n",
                             o.size, N, o.b.threads, o.zero, o.overlap, A, o.bucket_mb, reps, med * 1e3, wait * 1e3,
                             comm * 1e3, bytes, ring, grad_bytes, bv_bench_peak_rss());
        if (bv_bench_json_append("mpi", o.b.json, &js)) rc = 1;
        bv_bench_text_free(&js);
    }
    if (graph) bv_graph_free(&g);
    bv_adamw_free(&opt);
    bv_dist_free(d);
    bv_model_free(&m);
    bv_bench_batch_free(&mb);
    bv_dist_finalize();
    return rc;
}
