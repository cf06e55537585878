/* eval/policy.h - a BitVLA policy that acts: load it from an exported bundle (models/bundle.h) or
 * from a training checkpoint (recipes/checkpoint.h), give it an observation, get back the action
 * chunk in robot units. What `bitvla infer`, `bitvla serve`, the C API (eval/bitvla.h) and
 * evaluation run.
 *
 * An observation becomes the model's input as OFT's `get_vla_action` builds it (spec sections 4, 6
 * and 10): each camera image (RGB, any size) centre-cropped to 90% of its area (crop_scale 0.9,
 * as in evaluation; `center_crop` off: the whole image) and resized bicubically to the model's
 * resolution, SigLIP-normalised (data/augment.h, the loader's evaluation path); the 8-d state
 * normalised with the statistics' proprio BOUNDS_Q99; the instruction put into the action prompt
 * (src/tokenizer.h bv_tok_action_prompt: lower-cased, n_images x image tokens, <proprio_pad>, the
 * chat template, chunk x action_dim action tokens). One forward in action mode (bidirectional,
 * without a graph: BitLinear runs the int8 x ternary kernels) gives the normalised chunk, which the
 * statistics' action BOUNDS_Q99 inverse takes back to robot units.
 *
 * From a bundle the weights stay packed: every ternary linear's 2-bit codes sit in its BitLinear
 * cache (autograd.h bv_qweight_set_packed, the integer-forward layout), its fp32 weight is never
 * made; embed_tokens is read in place from the mapped file (bf16 or f32) and only the rows a prompt
 * uses are paged in; the other full-precision tensors (norms, biases, connector, proprio
 * projector, action head, patch and position embeddings) are converted to fp32. The LM head is
 * not loaded (an action policy never runs it). From a checkpoint the training model is built
 * (fp32 masters, quantized by the forward) and run the same way: the two give the same actions to
 * float rounding when the bundle came from that checkpoint (tests/cli/infer.sh).
 *
 * Threads: a policy is not reentrant (one act at a time); separate policies in separate threads
 * are independent. The OpenMP threads a forward uses are the process's (bv_set_num_threads).
 * Owns: everything it loads (model, mapped file, tokenizer, buffers): bv_policy_free.
 * Must not: train, write files, or know how observations arrive (files, HTTP: cli/, eval/serve.h).
 */
#ifndef BV_EVAL_POLICY_H
#define BV_EVAL_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "data/loader.h"
#include "src/common.h"
#include "src/vla_batch.h"

typedef struct bv_policy bv_policy;

typedef struct {
    const uint8_t *full_image; /* third-person camera, RGB (H, W, 3) row-major */
    int full_w, full_h;
    const uint8_t *wrist_image; /* wrist camera (needed when the policy takes 2 images) */
    int wrist_w, wrist_h;
    const float *state; /* proprio_dim values (8 for LIBERO) */
    int state_dim;
    const char *instruction;
} bv_policy_obs;

typedef struct {
    bool center_crop; /* the evaluation centre crop (default true, as BitVLA's LIBERO evaluation) */
    int n_images;     /* 0: what the bundle or checkpoint says (2 when it says nothing) */
    /* instead of a path: the training model of config `random_config` (a preset or config.json)
     * with random weights of `seed` (the weights `bitvla export --random-init SEED` packs), and
     * the tokenizer and statistics given here (they are also used, when set, by a checkpoint) */
    const char *random_config;
    uint64_t seed;
    const char *tokenizer, *statistics;
} bv_policy_opts;

void bv_policy_opts_default(bv_policy_opts *o);

/* Load a bundle directory or a checkpoint directory (a run directory: its checkpoints/latest), or
 * with o->random_config a random model (path is then only a label).
 * Errors name the file and the tensor or field (a missing tensor, a bad checksum, a shape that
 * does not match the config). */
bv_status bv_policy_load(bv_policy **out, const char *path, const bv_policy_opts *o);
void bv_policy_free(bv_policy *p);

/* The observation -> actions (chunk x action_dim floats, robot units); `normalized` (optional, the
 * same size) gets the model's raw output in [-1, 1]. Errors: a missing or mis-sized input (named). */
bv_status bv_policy_act(bv_policy *p, const bv_policy_obs *obs, float *actions, float *normalized);

/* Batches of recorded data, as offline evaluation runs them (eval/offline.h): the loader options
 * that make batches this policy takes (the tokenizer and the statistics, borrowed from the policy:
 * inputs and targets normalised as its training data was, whatever the directory's own statistics;
 * its resolution, images, image tokens and chunk; evaluation: the centre crop as opts.center_crop
 * says, no augmentation, no shuffling, every sample); the caller sets dir, batch_size and the rest. */
void bv_policy_loader_opts(const bv_policy *p, bv_loader_opts *lo);
/* One forward of a batch (such a loader's, bv_loader_batch_vla) -> the normalised action chunks
 * (B, chunk, action_dim) into `normalized`, the model's raw output as the training loss sees it.
 * Errors: a batch the model refuses (bv_vla_batch_check, naming `label`). */
bv_status bv_policy_act_batch(bv_policy *p, const bv_vla_batch *b, const char *label, float *normalized);

/* The statistics the policy normalises its state and un-normalises its actions with (its training
 * data's, from the bundle or checkpoint, or opts.statistics); borrowed. */
const bv_action_norm *bv_policy_action_norm(const bv_policy *p);
const bv_action_norm *bv_policy_proprio_norm(const bv_policy *p);
const char *bv_policy_statistics_path(const bv_policy *p); /* the file they came from */
int bv_policy_chunk(const bv_policy *p);      /* actions per chunk (8) */
int bv_policy_action_dim(const bv_policy *p); /* 7 */
int bv_policy_state_dim(const bv_policy *p);  /* 8 */
int bv_policy_n_images(const bv_policy *p);   /* 1 or 2 */
const char *bv_policy_source(const bv_policy *p); /* "bundle (hf, bf16)" or "checkpoint" */
int64_t bv_policy_tokens(const bv_policy *p);    /* the sequence length of the last act (0 before one) */
/* Bytes the policy holds for weights: packed ternary codes, fp32 tensors, the embedding table. */
double bv_policy_weight_bytes(const bv_policy *p);

#endif
