/* common.h - error codes, error messages, assertions and small helpers shared by every module.
 *
 * Owns: the thread-local "last error" message buffer.
 * Must not: allocate, print on success paths, or depend on any other bitvla module.
 *
 * Two kinds of failure (see ../shared/CONVENTIONS.md):
 *  - user errors (files, configs, flags, data shapes) return a bv_status and set a message with
 *    bv_error_set() that names the file/key/value and what was expected; bv_error_msg() reads it.
 *  - programmer errors (impossible shapes inside kernels, broken invariants) use BV_ASSERT, which
 *    prints file, line, the expression and a formatted explanation, then aborts.
 */
#ifndef BV_COMMON_H
#define BV_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef enum {
    BV_OK = 0,
    BV_ERR_IO = 1,       /* open/read/write/rename failed */
    BV_ERR_FORMAT = 2,   /* malformed file contents */
    BV_ERR_ARG = 3,      /* bad flag, config value or argument */
    BV_ERR_SHAPE = 4,    /* data of the wrong shape or dtype */
    BV_ERR_NOMEM = 5,    /* allocation failed */
    BV_ERR_UNSUPPORTED = 6,
    BV_ERR_INTERNAL = 7,
    BV_ERR_NONFINITE = 8, /* training diverged: NaN/Inf losses or gradients */
} bv_status;

/* Set the thread's error message (printf-style). Returns `st` so callers can write
 * `return bv_error_set(BV_ERR_FORMAT, "%s: tensor '%s': ...", path, name);` */
bv_status bv_error_set(bv_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The last message set on this thread ("" if none). Borrowed; valid until the next set. */
const char *bv_error_msg(void);
void bv_error_clear(void);
/* Put context in front of the thread's current message, libgit2 style: the message becomes
 * "<context>: <previous message>" (printf-style context). Returns `st`, so a layer passing an error
 * up writes `return bv_error_prefix(st, "loading checkpoint %s", path);`. */
bv_status bv_error_prefix(bv_status st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *bv_status_name(bv_status st);
/* Evaluate a bv_status expression; return it from the enclosing function unless it is BV_OK. */
#define BV_TRY(x)                                                                                                      \
    do {                                                                                                               \
        bv_status bv_try_st_ = (x);                                                                                    \
        if (bv_try_st_ != BV_OK) return bv_try_st_;                                                                    \
    } while (0)

void bv_assert_fail(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 4, 5)));

/* BV_ASSERT(cond, "fmt", args...) - programmer errors only. Always on (cheap checks outside
 * inner loops); use BV_DASSERT inside inner loops (compiled out in Release). */
#define BV_ASSERT(cond, ...)                                                          \
    do {                                                                              \
        if (__builtin_expect(!(cond), 0)) bv_assert_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)
#ifdef NDEBUG
#define BV_DASSERT(cond, ...) ((void)0)
#else
#define BV_DASSERT(cond, ...) BV_ASSERT(cond, __VA_ARGS__)
#endif

/* Allocation that aborts on failure: for internal buffers whose size the program controls.
 * Sizes that come from user input must use plain malloc and return BV_ERR_NOMEM instead. */
void *bv_xmalloc(size_t n);
void *bv_xcalloc(size_t n, size_t sz);
void *bv_xrealloc(void *p, size_t n);
/* Read the whole file `path` into *buf (malloc'd, the caller frees it; *n bytes). Files larger
 * than max_bytes are refused (BV_ERR_FORMAT). Errors name the file and `what` it is
 * ("<path>: cannot open config: No such file or directory"). */
bv_status bv_read_file(const char *path, const char *what, size_t max_bytes, char **buf, size_t *n);
/* 64-byte aligned allocation (free with bv_aligned_free). Aborts on failure. */
void *bv_aligned_alloc(size_t n);
/* The same, returning NULL when the allocation fails: for sizes that come from user input (a
 * config, a file), whose callers return BV_ERR_NOMEM naming the bytes. */
void *bv_aligned_alloc_try(size_t n);
void bv_aligned_free(void *p);
/* Physical memory of this machine in bytes (sysconf: pages * page size); 0 if unknown. The limit
 * memory plans are checked against before allocating (models/build.h). */
uint64_t bv_mem_physical(void);
/* BV_ERR_NOMEM with "<what> needs N bytes (X GiB), more than the M bytes (Y GiB) of physical
 * memory" when `bytes` (a plan: a double, so absurd plans cannot overflow) exceeds
 * bv_mem_physical(); BV_OK otherwise, or when the physical memory is unknown. */
bv_status bv_mem_check(double bytes, const char *what);
char *bv_xstrdup(const char *s);

#define BV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BV_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The one way to read a number from a flag or a config string: the whole of `text` must be a
 * decimal integer in [lo, hi] (bv_parse_double: a finite number in [lo, hi]). On failure returns
 * BV_ERR_ARG with the message "WHAT expects an integer in [LO, HI], got 'TEXT'" (text NULL: a
 * missing value, "got nothing"); *out is left alone. */
bv_status bv_parse_int(const char *what, const char *text, long long lo, long long hi, long long *out);
bv_status bv_parse_double(const char *what, const char *text, double lo, double hi, double *out);

/* Wall-clock seconds (monotonic). */
double bv_time_now(void);

/* Number of OpenMP threads bitvla kernels use, and setter (also sets OpenBLAS's threads, which
 * share OpenMP's pool because we link the OpenMP build of OpenBLAS). The setter returns the count
 * now in effect, which is min(n, bv_max_threads()): OpenBLAS caps it silently. */
int bv_num_threads(void);
int bv_set_num_threads(int n);
/* The most threads bv_set_num_threads can give: OpenBLAS's compile-time MAX_THREADS (64 in
 * Debian's build) or OMP_THREAD_LIMIT, whichever is lower; *limit (if not NULL) names it
 * ("OpenBLAS MAX_THREADS", "OMP_THREAD_LIMIT" or "" when neither is known). For flags that take a
 * thread count: refuse a larger one rather than run fewer threads than the user asked for. */
int bv_max_threads(const char **limit);

#define BV_VERSION_STRING "0.1.0"

#endif
