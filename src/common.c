#include "src/common.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <cblas.h>

static _Thread_local char g_errmsg[2048];

bv_status bv_error_set(bv_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_errmsg, sizeof g_errmsg, fmt, ap);
    va_end(ap);
    return st;
}

bv_status bv_error_prefix(bv_status st, const char *fmt, ...) {
    char prev[sizeof g_errmsg];
    memcpy(prev, g_errmsg, sizeof prev);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(g_errmsg, sizeof g_errmsg, fmt, ap);
    va_end(ap);
    /* then ": " and as much of the previous message as fits (the end is cut, never the context) */
    size_t used = n < 0 ? 0 : BV_MIN((size_t)n, sizeof g_errmsg - 1);
    if (sizeof g_errmsg - used > 3) {
        size_t len = strnlen(prev, sizeof g_errmsg - used - 3);
        memcpy(g_errmsg + used, ": ", 2);
        memcpy(g_errmsg + used + 2, prev, len);
        g_errmsg[used + 2 + len] = 0;
    }
    return st;
}

const char *bv_error_msg(void) { return g_errmsg; }
void bv_error_clear(void) { g_errmsg[0] = 0; }

const char *bv_status_name(bv_status st) {
    switch (st) {
    case BV_OK: return "ok";
    case BV_ERR_IO: return "I/O error";
    case BV_ERR_FORMAT: return "format error";
    case BV_ERR_ARG: return "invalid argument";
    case BV_ERR_SHAPE: return "shape error";
    case BV_ERR_NOMEM: return "out of memory";
    case BV_ERR_UNSUPPORTED: return "unsupported";
    case BV_ERR_INTERNAL: return "internal error";
    case BV_ERR_NONFINITE: return "non-finite values";
    }
    return "unknown error";
}

void bv_assert_fail(const char *file, int line, const char *expr, const char *fmt, ...) {
    fprintf(stderr, "bitvla: assertion failed at %s:%d: %s\n  ", file, line, expr);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    abort();
}

void *bv_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    BV_ASSERT(p != NULL, "out of memory allocating %zu bytes", n);
    return p;
}

void *bv_xcalloc(size_t n, size_t sz) {
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    BV_ASSERT(p != NULL, "out of memory allocating %zu x %zu bytes", n, sz);
    return p;
}

void *bv_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    BV_ASSERT(q != NULL, "out of memory reallocating %zu bytes", n);
    return q;
}

void *bv_aligned_alloc(size_t n) {
    void *p = NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    int rc = posix_memalign(&p, 64, sz ? sz : 64);
    BV_ASSERT(rc == 0 && p != NULL, "out of memory allocating %zu aligned bytes", n);
    return p;
}

void *bv_aligned_alloc_try(size_t n) {
    void *p = NULL;
    if (n > SIZE_MAX - 63) return NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    return posix_memalign(&p, 64, sz ? sz : 64) == 0 ? p : NULL;
}

void bv_aligned_free(void *p) { free(p); }

uint64_t bv_mem_physical(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : 0;
}

bv_status bv_mem_check(double bytes, const char *what) {
    uint64_t lim = bv_mem_physical();
    if (lim == 0 || bytes <= (double)lim) return BV_OK;
    return bv_error_set(BV_ERR_NOMEM,
                        "%s needs %.0f bytes (%.3g GiB), more than the %llu bytes (%.3g GiB) of physical memory",
                        what, bytes, bytes / 1073741824.0, (unsigned long long)lim, (double)lim / 1073741824.0);
}

char *bv_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = bv_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

bv_status bv_parse_int(const char *what, const char *text, long long lo, long long hi, long long *out) {
    char *end = NULL;
    errno = 0;
    long long v = text ? strtoll(text, &end, 10) : 0;
    if (!text || !*text || *end || errno || v < lo || v > hi)
        return bv_error_set(BV_ERR_ARG, "%s expects an integer in [%lld, %lld], got %s%s%s", what, lo, hi,
                            text ? "'" : "", text ? text : "nothing", text ? "'" : "");
    *out = v;
    return BV_OK;
}

bv_status bv_parse_double(const char *what, const char *text, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double v = text ? strtod(text, &end) : 0;
    if (!text || !*text || *end || errno || !isfinite(v) || v < lo || v > hi)
        return bv_error_set(BV_ERR_ARG, "%s expects a number in [%g, %g], got %s%s%s", what, lo, hi, text ? "'" : "",
                            text ? text : "nothing", text ? "'" : "");
    *out = v;
    return BV_OK;
}

double bv_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int bv_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

int bv_set_num_threads(int n) {
    if (n < 1) n = 1;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
    openblas_set_num_threads(n); /* the OpenMP build clamps n and sets OpenMP's count to the result */
    return bv_num_threads();
}

int bv_max_threads(const char **limit) {
    int max = INT_MAX;
    const char *why = "";
#ifdef _OPENMP
    int tl = omp_get_thread_limit();
    if (tl > 0 && tl < max) max = tl, why = "OMP_THREAD_LIMIT";
#endif
    /* not exported as a function; the build string says it ("... USE_OPENMP Haswell MAX_THREADS=64") */
    const char *cfg = openblas_get_config(), *p = cfg ? strstr(cfg, "MAX_THREADS=") : NULL;
    if (p) {
        long v = strtol(p + strlen("MAX_THREADS="), NULL, 10);
        if (v > 0 && v < max) max = (int)v, why = "OpenBLAS MAX_THREADS";
    }
    if (limit) *limit = why;
    return max;
}

bv_status bv_read_file(const char *path, const char *what, size_t max_bytes, char **out, size_t *out_n) {
    *out = NULL, *out_n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return bv_error_set(BV_ERR_IO, "%s: cannot open %s: %s", path, what, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= max_bytes + 1) {
                free(buf);
                fclose(f);
                return bv_error_set(BV_ERR_FORMAT, "%s: %s larger than %zu bytes", path, what, max_bytes);
            }
            cap = cap ? 2 * cap : 1 << 16;
            if (cap > max_bytes + 1) cap = max_bytes + 1;
            buf = bv_xrealloc(buf, cap);
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return bv_error_set(BV_ERR_IO, "%s: read error (%s)", path, what);
    }
    *out = buf, *out_n = n;
    return BV_OK;
}
