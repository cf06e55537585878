/* kernels/elementwise.h - element-wise kernels: broadcasting add/sub/mul, scaling, activations.
 *
 * For: the arithmetic between activations (residual adds, bias-like broadcasts, gating products)
 * and the activations of the models (GELU tanh in SigLIP, exact GELU in the connector and the
 * proprio projector, squared ReLU in BitNet, ReLU in the action head, SiLU).
 * Owns: nothing; every kernel works on caller buffers. The broadcast plan (bv_bcast) is a small
 * value type built once per op.
 * Must not: allocate, or depend on the autograd layer.
 *
 * Fast versions are fp32, OpenMP over disjoint outputs, inner loops written for the vectoriser
 * (`#pragma omp simd`, no branches; the exp inside GELU tanh and SiLU is an inlined polynomial so
 * those loops vectorise too; exact GELU calls libm's erfcf, which stays scalar). Every output
 * element is computed by exactly one thread in a fixed order, so results do not depend on the
 * thread count (bit-identical). Gradients of broadcast operands are summed in float (double for a
 * reduction along the innermost dim), in a fixed order.
 * The _ref versions are plain single-threaded double loops: the reference the fast ones are
 * tested against and the kernels of the F64 autograd path (gradient checks).
 * Backward functions accumulate (+=) into every gradient pointer that is not NULL.
 *
 * Formulas (PyTorch definitions):
 *   gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   (gelu(approximate='tanh'))
 *   gelu_erf(x)  = 0.5 x (1 + erf(x / sqrt(2)))                      (gelu())
 *   relu(x) = max(x, 0), gradient 0 at x = 0;  relu2(x) = relu(x)^2;  silu(x) = x sigmoid(x)
 * The fast GELU tanh evaluates the same function as x * sigmoid(2u) (= 0.5 x (1 + tanh u)), which
 * avoids the cancellation of 1 + tanh(u) for negative x; exact GELU uses 0.5 x erfc(-x/sqrt(2)) for
 * the same reason.
 */
#ifndef BV_KERNELS_ELEMENTWISE_H
#define BV_KERNELS_ELEMENTWISE_H

#include <stdbool.h>
#include <stdint.h>

#include "src/tensor.h"

/* ---- broadcasting binary ops ---- */

/* Iteration plan of out = a op b, with a and b contiguous and broadcast against each other with
 * numpy rules. The output is contiguous with shape `shape` (ndim >= 1 dims); a and b are read at
 * element strides sa / sb (0 on the dims where they are broadcast). A merged plan drops size-1
 * dims and merges adjacent dims that are laid out alike in a and b, so (B, T, C) + (C) becomes
 * (B*T, C) with sb = (0, 1): the last dim is then the vectorised inner loop. */
typedef struct {
    int ndim;
    int64_t shape[BV_MAX_DIMS];
    int64_t sa[BV_MAX_DIMS], sb[BV_MAX_DIMS];
    int64_t n, na, nb;           /* element counts of out, a and b */
    int out_ndim;                /* the broadcast shape of the result (rank 0..5) */
    int64_t out_shape[BV_MAX_DIMS];
} bv_bcast;

/* Plan for a (na dims, shape_a) op b (nb dims, shape_b). merge: merge dims (fast kernels; the
 * reference kernels take either). Returns BV_ERR_SHAPE with a message when the shapes do not
 * broadcast. */
bv_status bv_k_bcast_plan(bv_bcast *p, int na, const int64_t *shape_a, int nb, const int64_t *shape_b, bool merge);

/* out (p->n) = a (p->na) + b (p->nb), broadcast by the plan */
void bv_k_add_fwd(float *out, const float *a, const float *b, const bv_bcast *p);
/* da (p->na) += dout summed over a's broadcast dims; db likewise */
void bv_k_add_bwd(float *da, float *db, const float *dout, const bv_bcast *p);
/* out (p->n) = a - b */
void bv_k_sub_fwd(float *out, const float *a, const float *b, const bv_bcast *p);
/* da += reduce(dout); db -= reduce(dout) */
void bv_k_sub_bwd(float *da, float *db, const float *dout, const bv_bcast *p);
/* out (p->n) = a * b */
void bv_k_mul_fwd(float *out, const float *a, const float *b, const bv_bcast *p);
/* da += reduce(dout * b); db += reduce(dout * a) */
void bv_k_mul_bwd(float *da, float *db, const float *dout, const float *a, const float *b, const bv_bcast *p);

void bv_k_add_fwd_ref(double *out, const double *a, const double *b, const bv_bcast *p);
void bv_k_add_bwd_ref(double *da, double *db, const double *dout, const bv_bcast *p);
void bv_k_sub_fwd_ref(double *out, const double *a, const double *b, const bv_bcast *p);
void bv_k_sub_bwd_ref(double *da, double *db, const double *dout, const bv_bcast *p);
void bv_k_mul_fwd_ref(double *out, const double *a, const double *b, const bv_bcast *p);
void bv_k_mul_bwd_ref(double *da, double *db, const double *dout, const double *a, const double *b,
                      const bv_bcast *p);

/* ---- unary ops: x (n) -> out (n); backward dx (n) += dout (n) * f'(x) ---- */

/* out = s * x */
void bv_k_scale_fwd(float *out, const float *x, float s, int64_t n);
/* dx += s * dout */
void bv_k_scale_bwd(float *dx, const float *dout, float s, int64_t n);
void bv_k_scale_fwd_ref(double *out, const double *x, double s, int64_t n);
void bv_k_scale_bwd_ref(double *dx, const double *dout, double s, int64_t n);

void bv_k_gelu_tanh_fwd(float *out, const float *x, int64_t n);
void bv_k_gelu_tanh_bwd(float *dx, const float *dout, const float *x, int64_t n);
void bv_k_gelu_tanh_fwd_ref(double *out, const double *x, int64_t n);
void bv_k_gelu_tanh_bwd_ref(double *dx, const double *dout, const double *x, int64_t n);

void bv_k_gelu_erf_fwd(float *out, const float *x, int64_t n);
void bv_k_gelu_erf_bwd(float *dx, const float *dout, const float *x, int64_t n);
void bv_k_gelu_erf_fwd_ref(double *out, const double *x, int64_t n);
void bv_k_gelu_erf_bwd_ref(double *dx, const double *dout, const double *x, int64_t n);

void bv_k_relu_fwd(float *out, const float *x, int64_t n);
void bv_k_relu_bwd(float *dx, const float *dout, const float *x, int64_t n);
void bv_k_relu_fwd_ref(double *out, const double *x, int64_t n);
void bv_k_relu_bwd_ref(double *dx, const double *dout, const double *x, int64_t n);

void bv_k_relu2_fwd(float *out, const float *x, int64_t n);
void bv_k_relu2_bwd(float *dx, const float *dout, const float *x, int64_t n);
void bv_k_relu2_fwd_ref(double *out, const double *x, int64_t n);
void bv_k_relu2_bwd_ref(double *dx, const double *dout, const double *x, int64_t n);

void bv_k_silu_fwd(float *out, const float *x, int64_t n);
void bv_k_silu_bwd(float *dx, const float *dout, const float *x, int64_t n);
void bv_k_silu_fwd_ref(double *out, const double *x, int64_t n);
void bv_k_silu_bwd_ref(double *dx, const double *dout, const double *x, int64_t n);

#endif
