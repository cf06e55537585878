/* testutil.h - helpers shared by the CMocka tests: deterministic random data, array comparison
 * that reports the first/worst mismatch, gradient-check and thread-agreement wrappers, and paths
 * to committed fixtures. Test-only code; never linked into the library. */
#ifndef BV_TESTUTIL_H
#define BV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the three headers above */
#include <cmocka.h>

#include "autograd/autograd.h"
#include "autograd/gradcheck.h"
#include "src/safetensors.h"

/* Deterministic generator (splitmix64). */
typedef struct {
    uint64_t s;
} bv_rng;
uint64_t bv_rng_u64(bv_rng *r);
double bv_rng_uniform(bv_rng *r);               /* [0, 1) */
double bv_rng_normal(bv_rng *r);                /* N(0, 1) */
void bv_rng_fill_f32(bv_rng *r, float *x, int64_t n, double lo, double hi);
void bv_rng_fill_f64(bv_rng *r, double *x, int64_t n, double lo, double hi);
void bv_rng_fill_normal_f32(bv_rng *r, float *x, int64_t n, double std);

/* Compare `got` against `want` element-wise: |got - want| <= atol + rtol * |want|. On failure
 * prints "<what>: first mismatch at index i: got g want w (tol t); worst ..." and fails the test. */
void bv_check_close_f32(const char *what, const float *got, const float *want, int64_t n, double atol, double rtol);
/* float result vs double reference */
void bv_check_close_f32_f64(const char *what, const float *got, const double *want, int64_t n, double atol,
                            double rtol);
void bv_check_close_f64(const char *what, const double *got, const double *want, int64_t n, double atol,
                        double rtol);

/* For results that legitimately depend on the BLAS blocking (sgemm with another thread count or
 * kernel set; docs/architecture.md, "Threads and CPU kernels"): |got - want| <= 2 K 2^-24
 * bound[i], the rounding error bound of two K-term fp32 dot products whose terms have absolute
 * sum bound[i]. Fails like bv_check_close_f32, naming the first and worst elements. */
void bv_check_within_dot_bound(const char *what, const float *got, const float *want, const double *bound, int64_t n,
                               int64_t K);
/* The absolute sums of the terms of linear's outputs: y = x w^T + b (by: N x OC, K = C + 1 with a
 * bias), dx = dy w (bdx: N x C, K = OC), dW = dy^T x (bdw: OC x C, K = N). b may be NULL. */
void bv_test_linear_bounds(const float *x, const float *w, const float *b, const float *dy, int64_t N, int64_t C,
                           int64_t OC, double *by, double *bdx, double *bdw);

/* Run bv_gradcheck and fail the test with the worst element, both values and the tolerance. */
void bv_check_gradients(const char *what, bv_gradcheck_fn fn, void *user, int n, const bv_tensor *inputs,
                        const bool *check, const bv_gradcheck_opts *opts);

/* Random F64 tensor (malloc'd data; free with free(t.data)). */
bv_tensor bv_test_rand_f64(bv_rng *r, int ndim, const int64_t *shape, double lo, double hi);

/* Buffers for kernel tests. Each returns memory the caller frees with free(); n may be 0 (a
 * one-element buffer is allocated so the pointer is never NULL). */
/* n floats uniform in [lo, hi) (one bv_rng_uniform draw per element, in order). */
float *bv_test_rand_f32(bv_rng *r, int64_t n, double lo, double hi);
/* n zero floats / doubles. */
float *bv_test_zeros_f32(int64_t n);
double *bv_test_zeros_f64(int64_t n);
/* A copy of x (n floats). */
float *bv_test_copy_f32(const float *x, int64_t n);
/* x widened to double: a new buffer, or into dst (n elements). */
double *bv_test_to_f64(const float *x, int64_t n);
void bv_test_to_f64_into(double *dst, const float *x, int64_t n);
/* n int64 ids uniform in [0, hi) (one bv_rng_uniform draw per id, in order). */
int64_t *bv_test_rand_ids(bv_rng *r, int64_t n, int64_t hi);

/* Run fn in a forked child (one thread, stderr captured); the test fails unless the child aborts
 * (SIGABRT) and its stderr contains n1 and, if not NULL, n2. For BV_ASSERT messages. */
void bv_test_expect_abort(const char *what, void (*fn)(void), const char *n1, const char *n2);

/* Fails the test unless `msg` contains `want` (for error messages). */
void bv_test_expect_in(const char *msg, const char *want);

/* A fresh directory for a test program's files: /tmp/bv_test_<tag>_XXXXXX. bv_test_dir_make
 * returns 0, or -1 when it cannot be created, and bv_test_dir_remove (which deletes it and
 * everything under it) returns 0, so both can be the body of a CMocka setup/teardown. One such
 * directory per program at a time; bv_test_dir() is its path. */
int bv_test_dir_make(const char *tag);
int bv_test_dir_remove(void);
const char *bv_test_dir(void);
/* "<bv_test_dir()>/<name>", in one of 8 rotating static buffers. */
const char *bv_test_path(const char *name);
/* Delete dir and everything under it (symbolic links are removed, not followed). */
void bv_test_rm_tree(const char *dir);
/* Entries of dir whose name does not start with '.' and contains `substr` (every one when NULL). */
int bv_test_count_entries(const char *dir, const char *substr);
/* Create (or truncate) `path` holding the n bytes at p; fails the test on any error. */
void bv_test_write_bytes(const char *path, const void *p, size_t n);

/* An 8-bit RGB image read back from a PNG with libpng (any colour type converted to RGB; an APNG
 * reads as its first frame). Fails the test when the file cannot be read or decoded. */
typedef struct {
    int w, h;
    uint8_t *rgb; /* h rows of w RGB pixels, malloc'd: free(im.rgb) */
} bv_test_image;
bv_test_image bv_test_read_png(const char *path);
/* The pixel (x, y) of im as 0xRRGGBB. */
uint32_t bv_test_pixel(const bv_test_image *im, int x, int y);

/* A committed PyTorch fixture (tests/fixtures/NAME.safetensors, made by tests/gen/gen_*.py).
 * bv_fx_get returns tensor `name` converted to dtype dt; its memory lives until bv_fx_close.
 * A missing file or tensor fails the test with a message naming the generator to rerun. */
typedef struct {
    bv_st_file f;
    void **keep;
    int n_keep, cap_keep;
} bv_fx;
void bv_fx_open(bv_fx *fx, const char *name);
bv_tensor bv_fx_get(bv_fx *fx, const char *name, bv_dtype dt);
void bv_fx_close(bv_fx *fx);
/* Parity of an op with PyTorch: the fixture holds NAME.in0.. (F32 inputs), NAME.out and
 * NAME.grad0.. (F64, computed by PyTorch in double from those inputs) and NAME.dout (the seed:
 * gradients are of sum(out * dout)). Runs fn on F32 inputs (fast kernels; |err| <= tol32 +
 * tol32*|want|) and on F64 inputs (reference kernels; 1e-12), forward and every gradient. */
void bv_fx_check_op(bv_fx *fx, const char *name, int n_in, bv_gradcheck_fn fn, void *user, double tol32);
/* Pieces of bv_fx_check_op for tests with their own fixture layout. */
/* Fixture tensor `name` (converted to dt) as a leaf var that requires a gradient. */
bv_var *bv_fx_var(bv_fx *fx, bv_graph *g, const char *name, bv_dtype dt);
/* Compare `got` (a value or gradient buffer of dtype dt, shaped like got_shape) with the fixture's
 * tensor `name` read as F64: same shape, then F32 within atol + rtol*|want|, F64 within 1e-12 +
 * 1e-12*|want|. Fails the test naming `what`, the dtype and both shapes on a mismatch. */
void bv_fx_expect(bv_fx *fx, const char *what, bv_dtype dt, const void *got, const bv_tensor *got_shape,
                  const char *name, double atol, double rtol);
/* Backward of y seeded with the fixture's tensor `dout_name` (in y's dtype; same element count). */
void bv_fx_backward(bv_fx *fx, bv_graph *g, bv_var *y, const char *dout_name);

/* Fuzzing seeds from the tests: when BV_FUZZ_SEED_DIR is set, writes the n bytes at p to
 * "$BV_FUZZ_SEED_DIR/seed_<hash of the bytes>.json" (fuzz/gen_corpus_json.sh sets it to collect
 * every tokenizer.json and config.json the tests parse); otherwise does nothing. */
void bv_test_fuzz_seed(const void *p, size_t n);

/* Path of a committed fixture: BV_TEST_FIXTURES "/" name (static buffer). */
const char *bv_fixture_path(const char *name);

#endif
