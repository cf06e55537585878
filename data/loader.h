/* loader.h - the training and evaluation data loader: batches of the model's action-mode input
 * (src/vla_batch.h bv_vla_batch) from a shard directory written by `bitvla convert` (docs/data.md).
 *
 * Samples. A sample is a step t of an episode whose action chunk t .. t + chunk - 1 lies inside
 * the episode (start steps whose chunk would run past the end are not used; spec section 6).
 * Samples are numbered episode by episode in dataset order (the sample id).
 *
 * One sample becomes one row of the batch:
 *   input_ids      I64 (B, T)  the action prompt of the episode's instruction (src/tokenizer.h,
 *                              bv_tok_action_prompt: instruction lower-cased, n_images *
 *                              image_tokens <|image_pad|>, <proprio_pad>, chunk * action_dim
 *                              action tokens, <|end_of_text|>), right-padded with <|pad|> to the
 *                              longest row of the batch
 *   attention_mask U8  (B, T)  1 on the prompt, 0 on the padding
 *   action_mask    U8  (B, T)  1 at the action tokens
 *   pixel_values   F32 (B, n_images, 3, S, S)  camera "primary" then "wrist", each decoded and
 *                              put through data/augment.h (training: random crop + colour jitter;
 *                              evaluation: centre crop), SigLIP-normalised to [-1, 1]
 *   proprio        F32 (B, P)  the proprio of step t, normalised
 *   actions        F32 (B, chunk, A)  actions t .. t + chunk - 1, normalised
 * Normalisation is OFT's BOUNDS_Q99 (bv_action_norm_apply, src/action_norm.h) with the directory's
 * dataset_statistics.json, or with statistics the caller gives (opts.action_norm, proprio_norm):
 * held-out data normalised as the model's training data was (the trainer's validation with the
 * training shards' statistics, offline evaluation with the policy's), as OpenVLA-OFT evaluates
 * with the model's norm_stats. Given statistics must have the data's widths and the directory's
 * own statistics' masks (which dimensions are normalised: the same action schema).
 *
 * Order. Epoch e visits the samples in a pseudo-random permutation of the sample ids keyed by
 * (seed, e) (identity when shuffle is off). The global batch k of an epoch is positions
 * [k*G, (k+1)*G) of the permutation, G = B * A * world_size (A = accumulation, the micro-batches
 * each rank runs per global batch). It is cut into A * world_size micro-batches of B rows; rank r
 * takes the consecutive block of A of them starting at part r * A: its micro-batch j (the batch
 * index; k = j / A, a = j % A) is positions [k*G + (r*A + a)*B, + B). So a micro-batch's rows
 * depend on the global batch and the part only: global micro-batch u = r * A + a holds the same
 * samples whatever the split of A * world_size into A and world_size (rank-count invariance,
 * recipes/dist.h). An epoch has floor(N / G) global batches with drop_last, else ceil(N / G), the
 * last one completed by wrapping around to the start of the permutation (as PyTorch's
 * DistributedSampler pads); A micro-batches each. Augmentation draws are keyed by (seed, epoch, sample id, camera).
 * So a batch depends only on (opts, epoch, batch index): not on the number of threads, their
 * timing, or (for a given sample) the rank that loads it.
 *
 * Threads. With threads > 0, that many pthreads build whole batches ahead of the consumer into a
 * ring of prefetch + 1 batch buffers (the consumer holds one); bv_loader_next hands them out in
 * order. A worker's error (a corrupt frame, an unreadable shard) is passed to the consumer at
 * that batch's turn, with the file, the episode and the step named; later calls return it again.
 * bv_loader_free stops and joins the workers. With threads = 0, bv_loader_next builds the batch
 * on the caller's thread; the batches are identical.
 *
 * Owns: the shard readers (HDF5 handles), the normalised actions and proprio of every step, the
 * tokenized prompts, the batch buffers, the worker threads. Borrows the tokenizer (read-only,
 * must outlive the loader).
 * Must not: know about the model beyond the bv_vla_batch layout, or train.
 */
#ifndef BV_DATA_LOADER_H
#define BV_DATA_LOADER_H

#include <stdbool.h>
#include <stdint.h>

#include "data/augment.h"
#include "src/action_norm.h"
#include "src/common.h"
#include "src/tensor.h"
#include "src/tokenizer.h"
#include "src/vla_batch.h"

/* ---- the loader ---- */
typedef struct {
    const char *dir;   /* shard directory (manifest.json, shards, statistics) */
    const bv_tok *tok; /* BitVLA-edited tokenizer (bv_tok_bitvla_edit); borrowed */
    int batch_size;    /* rows per rank (B) */
    int rank, world_size;
    int accumulation;  /* micro-batches per rank in each global batch (A, default 1) */
    uint64_t seed;
    bool train;                       /* random crop + colour jitter; else the evaluation centre crop */
    bool shuffle;                     /* permute the samples each epoch (default on) */
    bool drop_last;                   /* floor(N / G) batches per epoch (default on); else wrap around */
    int64_t epochs;                   /* stop after this epoch count (0: endless) */
    int64_t start_epoch, start_batch; /* resume position */
    int image_size;                   /* model resolution S (224; the tiny preset 56) */
    int n_images;                     /* 1 (primary) or 2 (primary, wrist) */
    int image_tokens;                 /* <|image_pad|> per image (256; (S / patch)^2) */
    int chunk;                        /* actions per sample (8) */
    int threads;                      /* prefetch threads (0: build batches on the caller's thread) */
    int prefetch;                     /* batches kept ready ahead (0: 2 per thread) */
    const char *dataset_name;         /* statistics entry; NULL: the manifest's dataset_name */
    /* normalise with these rather than the directory's statistics: both or neither (copied at
     * open); norm_path names the file they came from in errors (NULL: "the given statistics") */
    const bv_action_norm *action_norm, *proprio_norm;
    const char *norm_path;
    bv_aug_cfg aug;
} bv_loader_opts;

/* Defaults: batch 8, rank 0 of 1, seed 0, train, shuffle, drop_last, endless, 224, 2 images of
 * 256 tokens, chunk 8, 2 threads, OFT's augmentation. dir and tok unset. */
void bv_loader_opts_default(bv_loader_opts *o);

typedef struct {
    int64_t B, T;         /* rows, longest prompt of the batch */
    int64_t epoch, index; /* which batch of which epoch */
    /* the model's inputs (layout at the top of this file) */
    bv_tensor input_ids, attention_mask, action_mask, pixel_values, proprio, actions;
    int64_t *sample;         /* (B) sample ids */
    int64_t *episode, *step; /* (B) episode (0-based, manifest order) and start step of each row */
    /* storage (the tensors view these) */
    int64_t *ids_buf;
    uint8_t *attn_buf, *amask_buf;
    float *pix_buf, *prop_buf, *act_buf;
} bv_loader_batch;

typedef struct bv_loader bv_loader;

/* Open a shard directory and start the workers. Errors (BV_ERR_IO / FORMAT / ARG / SHAPE) name
 * the directory or file: a missing manifest.json (not a converted directory, or an unfinished
 * conversion), a shard that does not open or disagrees with the manifest, a missing camera,
 * statistics without the dataset or of the wrong width, given statistics of other widths than the
 * data's (BV_ERR_SHAPE) or with another mask than the directory's (BV_ERR_ARG; both files named),
 * no samples, a batch larger than an epoch, a tokenizer without the BitVLA tokens. */
bv_status bv_loader_open(bv_loader **out, const bv_loader_opts *o);
/* Stop and join the workers, free everything. Harmless on NULL. */
void bv_loader_free(bv_loader *l);

/* The next batch of the stream (borrowed: valid until the next call or bv_loader_free), or NULL
 * at the end (opts.epochs reached). */
bv_status bv_loader_next(bv_loader *l, const bv_loader_batch **out);

/* The batch as the model takes it (views; labels NULL). */
bv_vla_batch bv_loader_batch_vla(const bv_loader_batch *b);

/* ---- what the loader holds ---- */
int64_t bv_loader_num_samples(const bv_loader *l);
int64_t bv_loader_num_episodes(const bv_loader *l);
/* micro-batches per epoch on each rank (global batches x accumulation); start_batch counts them */
int64_t bv_loader_batches_per_epoch(const bv_loader *l);
int bv_loader_action_dim(const bv_loader *l);
int bv_loader_proprio_dim(const bv_loader *l);
const char *bv_loader_dataset_name(const bv_loader *l);
/* The statistics the batches are normalised with: the given ones (opts.action_norm, proprio_norm),
 * else the directory's. */
const bv_action_norm *bv_loader_action_norm(const bv_loader *l);
const bv_action_norm *bv_loader_proprio_norm(const bv_loader *l);
/* The directory's own statistics, whichever the batches use, and their file (manifest.json's
 * "statistics", dataset_statistics.json by default). */
const bv_action_norm *bv_loader_dir_action_norm(const bv_loader *l);
const bv_action_norm *bv_loader_dir_proprio_norm(const bv_loader *l);
const char *bv_loader_statistics_path(const bv_loader *l);
/* Episode and start step of a sample id. */
void bv_loader_sample_info(const bv_loader *l, int64_t sample, int64_t *episode, int64_t *step);
/* Sample id at position pos of epoch e's permutation (0 <= pos < num_samples). */
int64_t bv_loader_permute(const bv_loader *l, int64_t epoch, int64_t pos);
/* Steps of an episode, and its raw (un-normalised) actions and proprio (borrowed; rows of the
 * episode, A and P wide). For tests and evaluation. */
int64_t bv_loader_episode_length(const bv_loader *l, int64_t episode);
/* An episode's instruction as its shard holds it (borrowed, lives as long as the loader): the task
 * evaluation groups samples by. */
const char *bv_loader_episode_instruction(const bv_loader *l, int64_t episode);
void bv_loader_episode_raw(const bv_loader *l, int64_t episode, const float **action, const float **proprio);

#endif
