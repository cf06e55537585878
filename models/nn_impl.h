/* models/nn_impl.h - building blocks shared by the model modules (internal to models/):
 * named parameter registration, Linear / BitLinear, LayerNorm / RMSNorm, activations and the
 * random initialisation of parameters.
 *
 * A block holds indices into a bv_params store (never pointers: the store's buffers are allocated
 * at finalize, after the model registered its names) and, for BitLinear, the bv_qweight cache of
 * its quantized weight. Forward functions wrap the parameters as graph leaves with bv_var_param on
 * every call, so trainable/frozen is whatever the store says.
 * Must not: be used outside models/ (the public API is siglip.h, bitnet.h, heads.h, vla.h).
 */
#ifndef BV_MODELS_NN_IMPL_H
#define BV_MODELS_NN_IMPL_H

#include <stdbool.h>

#include "autograd/autograd.h"
#include "models/config.h"

#define BV_NAME_MAX 256

/* Register prefix+name with the given shape (trainable). Returns the index, or -1 with the store's
 * error message (duplicate name). */
int bv_nn_param(bv_params *p, const char *prefix, const char *name, int ndim, const int64_t *shape);

typedef struct {
    int w, b;              /* parameter indices; b = -1 when there is no bias */
    bool quant;            /* BitLinear (cfg) rather than a plain linear layer */
    bv_bitlinear_cfg cfg;
    bv_qweight cache;      /* the quantized weight (BitLinear only) */
} bv_nn_linear;

/* Registers prefix+name+".weight" (out, in) and, with bias, ".bias" (out). q == NULL or 32/32 bits:
 * a plain full-precision linear layer. */
bv_status bv_nn_linear_init(bv_nn_linear *l, bv_params *p, const char *prefix, const char *name, int64_t in,
                            int64_t out, bool bias, const bv_bitlinear_cfg *q);
void bv_nn_linear_free(bv_nn_linear *l);
/* x (..., in) -> (..., out) */
bv_var *bv_nn_linear_fwd(bv_graph *g, const bv_params *p, bv_nn_linear *l, bv_var *x);

typedef struct {
    int w, b; /* b = -1 for RMSNorm */
    double eps;
} bv_nn_norm;

bv_status bv_nn_layernorm_init(bv_nn_norm *n, bv_params *p, const char *prefix, const char *name, int64_t dim,
                               double eps);
bv_status bv_nn_rmsnorm_init(bv_nn_norm *n, bv_params *p, const char *prefix, const char *name, int64_t dim,
                             double eps);
/* x (..., dim): LayerNorm when the norm has a bias index, RMSNorm otherwise */
bv_var *bv_nn_norm_fwd(bv_graph *g, const bv_params *p, const bv_nn_norm *n, bv_var *x);

bv_var *bv_nn_act(bv_graph *g, bv_act a, bv_var *x);

/* ---- initialisation (random weights for training from scratch and for tests) ---- */
/* Fill parameter i with N(0, std^2) / the constant v. The stream of parameter i is derived from
 * (seed, its name), so the values do not depend on the registration order or on other parts. */
void bv_nn_init_normal(bv_params *p, int i, double std, uint64_t seed);
void bv_nn_init_const(bv_params *p, int i, float v);
/* Linear: weight N(0, std^2), bias 0. Norm: weight 1, bias 0. */
void bv_nn_linear_init_weights(bv_params *p, const bv_nn_linear *l, double std, uint64_t seed);
void bv_nn_norm_init_weights(bv_params *p, const bv_nn_norm *n);

#endif
