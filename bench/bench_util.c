#include "bench/bench_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "data/synth.h"
#include "src/atomic_file.h"
#include "src/common.h"
#include "src/cpu.h"

static int parse_pos_int(const char *cmd, const char *flag, const char *v, int *out) {
    long long x;
    if (bv_parse_int(flag, v, 1, 100000, &x)) {
        fprintf(stderr, "bitvla bench %s: %s\n", cmd, bv_error_msg());
        return 2;
    }
    *out = (int)x;
    return 0;
}

int bv_bench_check_threads(const char *name, int n) {
    const char *limit;
    int max = bv_max_threads(&limit);
    if (n <= max) return 0;
    fprintf(stderr, "bitvla bench %s: --threads %d is more than this build can run: at most %d (%s)\n", name, n, max,
            limit);
    return 2;
}

int bv_bench_parse(int argc, char **argv, const char *name, bv_bench_opts *o) {
    o->reps = 5;
    o->threads = bv_num_threads();
    o->json = NULL;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--reps")) {
            if (parse_pos_int(name, "--reps", v, &o->reps)) return 2;
            i++;
        } else if (!strcmp(argv[i], "--threads")) {
            if (parse_pos_int(name, "--threads", v, &o->threads) || bv_bench_check_threads(name, o->threads)) return 2;
            i++;
        } else if (!strcmp(argv[i], "--json")) {
            if (!v) {
                fprintf(stderr, "bitvla bench %s: --json expects a file name\n", name);
                return 2;
            }
            o->json = v;
            i++;
        } else {
            fprintf(stderr, "bitvla bench %s: unknown option '%s' (expected --reps N, --threads N, --json FILE)\n",
                    name, argv[i]);
            return 2;
        }
    }
    if (o->json && bv_bench_json_check(name, o->json)) return 2;
    o->threads = bv_set_num_threads(o->threads);
    return 0;
}

void bv_bench_fill(float *x, int64_t n, uint64_t seed) {
    uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = (float)((double)(s >> 11) / 4503599627370496.0 - 1.0);
    }
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bv_bench_median(double *t, int n) {
    qsort(t, (size_t)n, sizeof *t, cmp_d);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ---- --json ---- */

void bv_bench_text_printf(bv_bench_text *b, const char *fmt, ...) {
    if (b->oom) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p, b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bv_bench_text_free(bv_bench_text *b) {
    free(b->p);
    *b = (bv_bench_text){0};
}

/* the current contents of path (empty when it does not exist): malloc'd in *data, or -1 with errno */
static int read_existing(const char *path, char **data, size_t *len) {
    *data = NULL, *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return errno == ENOENT ? 0 : -1;
    size_t cap = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 4096;
            char *p = realloc(*data, cap);
            if (!p) {
                free(*data);
                fclose(f);
                errno = ENOMEM;
                return -1;
            }
            *data = p;
        }
        size_t k = fread(*data + *len, 1, cap - *len, f);
        *len += k;
        if (k == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(*data);
        *data = NULL;
        errno = EIO;
        return -1;
    }
    return 0;
}

int bv_bench_json_check(const char *name, const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) {
        if (!S_ISREG(sb.st_mode)) {
            fprintf(stderr, "bitvla bench %s: --json %s: not a regular file (expected a file to append JSON lines to)\n",
                    name, path);
            return 2;
        }
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "bitvla bench %s: --json %s: cannot read it to append to it: %s\n", name, path,
                    strerror(errno));
            return 2;
        }
        fclose(f);
    }
    /* a temporary beside it, created and removed: the directory exists and takes new files */
    bv_atomic_file af;
    if (bv_atomic_open(&af, path) != BV_OK) {
        fprintf(stderr, "bitvla bench %s: --json: %s\n", name, bv_error_msg());
        return 2;
    }
    bv_atomic_abort(&af);
    return 0;
}

int bv_bench_json_append(const char *name, const char *path, const bv_bench_text *text) {
    if (!path) return 0;
    if (text->oom) {
        fprintf(stderr, "bitvla bench %s: --json %s: out of memory collecting the figures; file left unchanged\n", name,
                path);
        return 1;
    }
    char *old;
    size_t n_old;
    if (read_existing(path, &old, &n_old) != 0) {
        fprintf(stderr, "bitvla bench %s: --json %s: cannot read it to append to it: %s\n", name, path,
                strerror(errno));
        return 1;
    }
    bv_atomic_file af;
    bv_status st = bv_atomic_open(&af, path);
    if (st == BV_OK) {
        bool ok = (n_old == 0 || fwrite(old, 1, n_old, af.fp) == n_old) &&
                  (n_old == 0 || old[n_old - 1] == '\n' || fputc('\n', af.fp) != EOF) &&
                  (text->len == 0 || fwrite(text->p, 1, text->len, af.fp) == text->len);
        if (!ok) {
            int e = errno;
            bv_atomic_abort(&af);
            st = bv_error_set(BV_ERR_IO, "%s: write failed: %s", path, strerror(e));
        } else {
            st = bv_atomic_commit(&af);
        }
    }
    free(old);
    if (st != BV_OK) {
        fprintf(stderr, "bitvla bench %s: --json: %s (figures not saved)\n", name, bv_error_msg());
        return 1;
    }
    return 0;
}

bv_status bv_bench_tokenizer(bv_tok **tok) {
    char text[16384] = "";
    for (int rep = 0; rep < 3; rep++) {
        strcat(text, BV_TOK_SYSTEM_PROMPT " User: What action should the robot take to ");
        for (int k = 0; k < bv_synth_num_tasks(); k++) {
            char ins[128];
            bv_synth_task_instruction(bv_synth_task_get(k), ins, sizeof ins);
            strcat(text, ins);
            strcat(text, "? ");
        }
        strcat(text, "<|eot_id|>Assistant: ");
    }
    bv_tok_train_opts to = {.vocab_size = 500, .min_frequency = 2, .bitvla = 1};
    return bv_tok_train(tok, text, strlen(text), &to);
}

double bv_bench_peak_rss(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1.0;
    return (double)ru.ru_maxrss * 1024.0; /* KiB on Linux */
}

/* ---- memory read bandwidth: streaming sum ---- */

/* sum of the bytes of p[0..n), read as BV_BENCH_BW_STREAMS interleaved sequential streams (n a
 * multiple of BV_BENCH_BW_STREAMS * 64): one core keeps more misses in flight on several streams
 * than on one (about 1.7x on the development VM), so this measures what the memory system can
 * deliver rather than the latency of a single stream. The GEMV kernel reads four streams per
 * thread for that reason. */
#define BW_STREAMS BV_BENCH_BW_STREAMS
#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, int64_t n) {
    const __m256i z = _mm256_setzero_si256();
    __m256i a0 = z, a1 = z;
    const int64_t q = n / BW_STREAMS;
    for (int64_t i = 0; i < q; i += 64)
        for (int k = 0; k < BW_STREAMS; k++) {
            a0 = _mm256_add_epi64(a0, _mm256_sad_epu8(_mm256_load_si256((const __m256i *)(p + k * q + i)), z));
            a1 = _mm256_add_epi64(a1, _mm256_sad_epu8(_mm256_load_si256((const __m256i *)(p + k * q + i + 32)), z));
        }
    uint64_t l[4];
    _mm256_storeu_si256((__m256i *)l, _mm256_add_epi64(a0, a1));
    return l[0] + l[1] + l[2] + l[3];
}
#endif

static uint64_t sum_plain(const uint8_t *p, int64_t n) {
    const int64_t q = n / BW_STREAMS / 8;
    const uint64_t *w = (const uint64_t *)p;
    uint64_t a = 0;
    for (int64_t i = 0; i < q; i++)
        for (int k = 0; k < BW_STREAMS; k++) a += w[k * q + i];
    return a;
}

#define BW_PIECE ((int64_t)4 << 20)
#define BW_MAX_SAMPLES 4096
double bv_bench_read_bandwidth(const uint8_t *buf, int64_t bytes, int passes, uint64_t *sink) {
    static double t[BW_MAX_SAMPLES];
    const int64_t sub = 256 << 10, npiece = bytes / BW_PIECE;
    const bool avx2 = bv_cpu()->avx2;
    int n = 0;
    for (int r = 0; r < passes; r++)
        for (int64_t pc = 0; pc < npiece && n < BW_MAX_SAMPLES; pc++) {
            const uint8_t *p = buf + pc * BW_PIECE;
            uint64_t s = 0;
            double t0 = bv_time_now();
#pragma omp parallel for schedule(static) reduction(+ : s)
            for (int64_t c = 0; c < BW_PIECE / sub; c++) {
#if defined(__x86_64__)
                s += avx2 ? sum_avx2(p + c * sub, sub) : sum_plain(p + c * sub, sub);
#else
                s += sum_plain(p + c * sub, sub);
#endif
            }
            t[n++] = bv_time_now() - t0;
            *sink += s;
        }
    return (double)BW_PIECE / bv_bench_median(t, n) / 1e9;
}

/* /proc/self/status field (kB) in bytes; -1 if unknown */
static double proc_status_bytes(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1.0;
    char line[256];
    double v = -1.0;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = 1024.0 * strtod(line + kl + 1, NULL);
            break;
        }
    fclose(f);
    return v;
}

double bv_bench_rss(void) { return proc_status_bytes("VmRSS"); }

double bv_bench_rss_peak_since_reset(void) {
    double v = proc_status_bytes("VmHWM");
    return v >= 0 ? v : bv_bench_peak_rss();
}

bool bv_bench_rss_peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return false;
    bool ok = fputs("5", f) >= 0;
    return fclose(f) == 0 && ok;
}
