/* kernels/loss.h - scalar training losses: cross-entropy over logits, L1 and MSE.
 *
 * Cross-entropy is built for LM heads (V = 128256 and more): the forward keeps one logsumexp per
 * row, never a probability matrix; the backward recomputes softmax(logits) row by row from the
 * saved logsumexp and writes the gradient straight into dlogits. Rows whose target is
 * ignore_index are skipped in both directions. OpenMP over rows (dynamic chunks, because ignored
 * rows cost nothing), exp through the vectorisable bv_expf_simd (kernels/simd_math.h).
 * L1/MSE reduce in double over fixed chunks combined in order.
 * All fast results are bit-identical for any thread count. _ref versions are plain double loops.
 * Backward functions accumulate (+=) into every gradient pointer that is not NULL.
 *
 * Owns: nothing. Must not: allocate.
 * A target outside [0, V) that is not ignore_index is a programmer error: BV_ASSERT naming the row
 * and the value.
 */
#ifndef BV_KERNELS_LOSS_H
#define BV_KERNELS_LOSS_H

#include <stdint.h>

/* ---- cross-entropy ---- */
/* logits (N, V), targets (N) -> *loss = mean over rows with target != ignore_index of
 * lse - logits[target] (0 when there are none), lse (N) = logsumexp of each kept row (ignored rows
 * are left untouched). Returns the number of kept rows. */
int64_t bv_k_cross_entropy_fwd(float *loss, float *lse, const float *logits, const int64_t *targets, int64_t N,
                               int64_t V, int64_t ignore_index);
/* dlogits (N, V) += scale * (softmax(logits) - onehot(target)) on kept rows, with softmax
 * recomputed as exp(logits - lse); scale = dloss / number of kept rows. */
void bv_k_cross_entropy_bwd(float *dlogits, const float *logits, const int64_t *targets, const float *lse,
                            float scale, int64_t N, int64_t V, int64_t ignore_index);
int64_t bv_k_cross_entropy_fwd_ref(double *loss, double *lse, const double *logits, const int64_t *targets,
                                   int64_t N, int64_t V, int64_t ignore_index);
void bv_k_cross_entropy_bwd_ref(double *dlogits, const double *logits, const int64_t *targets, const double *lse,
                                double scale, int64_t N, int64_t V, int64_t ignore_index);

/* ---- L1 (mean absolute error) ---- */
/* pred (n), target (n) -> mean |pred - target| */
float bv_k_l1_loss_fwd(const float *pred, const float *target, int64_t n);
/* dpred (n) += dloss / n * sign(pred - target) (0 where equal), dtarget (n) -= the same; either may be NULL */
void bv_k_l1_loss_bwd(float *dpred, float *dtarget, const float *pred, const float *target, float dloss, int64_t n);
double bv_k_l1_loss_fwd_ref(const double *pred, const double *target, int64_t n);
void bv_k_l1_loss_bwd_ref(double *dpred, double *dtarget, const double *pred, const double *target, double dloss,
                          int64_t n);

/* ---- MSE (mean squared error) ---- */
/* pred (n), target (n) -> mean (pred - target)^2 */
float bv_k_mse_loss_fwd(const float *pred, const float *target, int64_t n);
/* dpred (n) += 2 dloss / n * (pred - target), dtarget (n) -= the same; either may be NULL */
void bv_k_mse_loss_bwd(float *dpred, float *dtarget, const float *pred, const float *target, float dloss, int64_t n);
double bv_k_mse_loss_fwd_ref(const double *pred, const double *target, int64_t n);
void bv_k_mse_loss_bwd_ref(double *dpred, double *dtarget, const double *pred, const double *target, double dloss,
                           int64_t n);

#endif
