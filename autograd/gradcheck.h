/* gradcheck.h - finite-difference check of an autograd function, in double precision.
 *
 * bv_gradcheck runs `fn` on F64 copies of the inputs, back-propagates a fixed random projection
 * of its output (so every output element matters), and compares each input gradient element with
 * a central difference (f(x+eps) - f(x-eps)) / 2eps computed with the same double-precision ops.
 * Owns: its own graph; the caller's input tensors are copied, never modified.
 */
#ifndef BV_GRADCHECK_H
#define BV_GRADCHECK_H

#include "autograd/autograd.h"

/* Build the function under test from the F64 leaf vars `in[0..n)`; return its output (any shape). */
typedef bv_var *(*bv_gradcheck_fn)(bv_graph *g, bv_var **in, void *user);

typedef struct {
    double eps;  /* finite-difference step (default 1e-6) */
    double atol; /* pass if |analytic - numeric| <= atol + rtol * |numeric| (defaults 1e-7, 1e-5) */
    double rtol;
    uint64_t seed; /* projection seed */
} bv_gradcheck_opts;

typedef struct {
    bool ok;
    int worst_input;       /* input index of the worst element (-1 when none checked) */
    int64_t worst_index;   /* flat element index */
    double analytic, numeric, tol;
    double worst_ratio;    /* |a - n| / tol of the worst element (<= 1 passes) */
    int64_t n_checked;
} bv_gradcheck_result;

/* inputs: n tensors (any float dtype, copied to F64); check[i]: whether input i is differentiated
 * (others are constants). opts may be NULL for defaults. */
bv_gradcheck_result bv_gradcheck(bv_gradcheck_fn fn, void *user, int n, const bv_tensor *inputs,
                                 const bool *check, const bv_gradcheck_opts *opts);
/* One line "input 1 element 17: analytic ... numeric ... |diff| ... > tol ..." into buf. */
const char *bv_gradcheck_describe(const bv_gradcheck_result *r, char *buf, size_t n);

#endif
