/* ops_impl.h - checks shared by the op files of autograd/ (internal to autograd/).
 * Programmer errors: every check is a BV_ASSERT naming the op and the dtypes found.
 */
#ifndef BV_AUTOGRAD_OPS_IMPL_H
#define BV_AUTOGRAD_OPS_IMPL_H

#include "autograd/autograd.h"

/* x is F32 (the fast kernels) or F64 (the reference kernels). */
static inline void bv_ops_check_float(const char *op, const bv_var *x) {
    BV_ASSERT(x->val.dtype == BV_DTYPE_F32 || bv_var_is_f64(x), "%s: dtype %s (need F32 or F64)", op,
              bv_dtype_name(x->val.dtype));
}

/* a and b are both F32 or both F64. */
static inline void bv_ops_check_float_same(const char *op, const bv_var *a, const bv_var *b) {
    BV_ASSERT(a->val.dtype == b->val.dtype && (bv_var_is_f64(a) || a->val.dtype == BV_DTYPE_F32),
              "%s: dtypes %s and %s (need both F32 or both F64)", op, bv_dtype_name(a->val.dtype),
              bv_dtype_name(b->val.dtype));
}

#endif
