/* kernels/reduce.h - sum/mean reductions over one dimension viewed as (outer, n, inner).
 * Fast fp32 versions accumulate in double per output element (so 1 vs 2 threads agree exactly);
 * _ref versions are plain double loops. Backward functions accumulate (+=). */
#ifndef BV_KERNELS_REDUCE_H
#define BV_KERNELS_REDUCE_H

#include <stdint.h>

/* out (outer, inner) = scale * sum_j inp (outer, n, inner) */
void bv_k_reduce_fwd(float *out, const float *inp, int64_t outer, int64_t n, int64_t inner, double scale);
/* dinp (outer, n, inner) += scale * dout (outer, inner) broadcast over n */
void bv_k_reduce_bwd(float *dinp, const float *dout, int64_t outer, int64_t n, int64_t inner, double scale);
void bv_k_reduce_fwd_ref(double *out, const double *inp, int64_t outer, int64_t n, int64_t inner, double scale);
void bv_k_reduce_bwd_ref(double *dinp, const double *dout, int64_t outer, int64_t n, int64_t inner, double scale);

#endif
