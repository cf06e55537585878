/* models/harness.h - the parity harness behind `bitvla forward`: check the inputs against a
 * config, build the model with its weights (models/build.h, with the forward's memory planned
 * beforehand: a batch or model that cannot fit is an error, not an abort), run one forward (and
 * optionally backward) on the tensors of an inputs file,
 * write the outputs to a safetensors file and optionally compare them with a reference file (for
 * example PyTorch's outputs on the same inputs).
 *
 * Inputs file (safetensors; every tensor validated, unknown names rejected):
 *   input_ids I64 [B, T]; attention_mask U8 [B, T]; pixel_values F32 [B, n_images, C, H, W] (normalised);
 *   proprio F32 [B, proprio_dim]; action_mask U8 [B, T] (action mode); actions F32 [B, chunk, action_dim]
 *   (optional targets, action mode); labels I64 [B, T] (optional targets, LM mode, -100 ignored).
 * Outputs file: actions_pred F32 [B, chunk, action_dim] (action mode) or logits F32 [B, T, V] (LM
 * mode); loss F32 [] when targets are given; last_hidden_state F32 [B, T, D]; image_features F32
 * [B, n_images*P, D] when there are images; with backward (of the loss), grad.<name> for every
 * parameter.
 * Comparison: for every tensor of the reference file, the output of the same name must exist, have
 * its shape and satisfy ||got - want|| <= tol*||want|| + atol*sqrt(n) (2-norms over the n elements;
 * tol = rtol, or grad_rtol for grad.* tensors), i.e. a norm-relative error with an absolute floor:
 * an RMS difference of atol always passes, which matters only for tensors whose true value is 0,
 * such as the gradient of SigLIP's k_proj bias (softmax cancels it; both sides hold rounding noise).
 * The reported error is ||got - want|| / (||want|| + atol/tol*sqrt(n)), compared with tol.
 * The reference file is opened and its header validated before the model is built, so a bad
 * --compare path fails before any work.
 * Owns: everything it allocates, freed before returning.
 */
#ifndef BV_MODELS_HARNESS_H
#define BV_MODELS_HARNESS_H

#include <stdio.h>

#include "models/vla.h"

#define BV_HARNESS_RTOL 1e-4
#define BV_HARNESS_GRAD_RTOL 1e-3
#define BV_HARNESS_ATOL 1e-6

typedef struct {
    const char *config;  /* preset name or config.json path */
    const char *weights; /* safetensors file, index.json or directory */
    const char *inputs;
    const char *out;     /* NULL: do not write */
    const char *compare; /* reference file or NULL */
    bv_vla_mode mode;
    bool backward;
    bool allow_missing;  /* missing weights keep their random initialisation (seed 0) */
    double rtol, grad_rtol, atol; /* 0: BV_HARNESS_RTOL, BV_HARNESS_GRAD_RTOL, BV_HARNESS_ATOL */
    FILE *log;              /* progress and the comparison table; NULL: silent */
} bv_harness_opts;

typedef struct {
    int n_outputs;     /* tensors written */
    int n_compared;    /* reference tensors compared */
    int n_mismatch;    /* of which outside tolerance (or absent) */
    double worst_out, worst_grad; /* largest norm-relative errors seen */
    double forward_s, backward_s;
} bv_harness_result;

/* Runs the harness. A mismatch is not an error: the status is BV_OK and res->n_mismatch says it. */
bv_status bv_harness_run(const bv_harness_opts *o, bv_harness_result *res);

#endif
