/* synth.h - demonstrations of the built-in tabletop task (data/synth_env.h), recorded by the
 * scripted expert and written as an RLDS (TFDS) dataset in LIBERO's schema, so the same conversion
 * path that reads LIBERO reads them (`../shared/spec/bitvla.md` section 6, docs/synth.md).
 *
 * Layout written into the output directory (TFDS's version directory):
 *     features.json, dataset_info.json, NAME-train.tfrecord-0000K-of-0000N
 * one tf.train.Example per episode with steps/observation/{image,wrist_image} (JPEG),
 * steps/observation/state float32[8], steps/observation/joint_state float32[7], steps/action
 * float32[7], steps/language_instruction, steps/{reward,discount} float32,
 * steps/{is_first,is_last,is_terminal} (bool as int64) and episode_metadata/file_path, which
 * records how to rebuild the episode's scene: "synth:env_seed=E,task=K,episode=I".
 *
 * Episode i of a dataset with seed S uses the scene seed bv_synth_episode_seed(S, i, attempt) and
 * task i mod n_tasks; an episode the expert fails (rare) is drawn again with the next attempt.
 * The output depends only on the options, not on the number of threads.
 *
 * Errors carry no "synth" prefix: the caller adds its own context ("bitvla synth: ...").
 *
 * Owns: a bv_synth_episode owns its arrays and encoded frames (bv_synth_episode_free).
 * Must not: know about training or the converter's shard format.
 */
#ifndef BV_DATA_SYNTH_H
#define BV_DATA_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "data/image.h"
#include "data/synth_env.h"
#include "src/common.h"

typedef struct {
    int episodes;     /* number of episodes (>= 1) */
    uint64_t seed;    /* dataset seed */
    int image_size;   /* camera images are image_size^2 (default 256) */
    int jpeg_quality; /* 1..100 (default 95) */
    int shards;       /* TFRecord files; 0 = one per 64 episodes */
    int tasks;        /* use task ids 0..tasks-1 in turn; 0 = all of them */
    float noise;      /* expert action noise std, action units (default 0.05) */
    bool unique_colour; /* the easier scenes (bv_synth_config.unique_colour; default false) */
    int max_attempts; /* scenes tried per episode before giving up (default 5) */
    int threads;      /* 0 = OpenMP's default */
    const char *name; /* dataset name, the shard file prefix (default "bitvla_synth") */
    bool quiet;       /* no progress on stderr */
    bool force;       /* replace an RLDS dataset already in the output directory */
} bv_synth_opts;

void bv_synth_opts_default(bv_synth_opts *o);
/* BV_ERR_ARG naming the option when out of range. */
bv_status bv_synth_opts_check(const bv_synth_opts *o);

/* The scene seed of episode i (attempt a) of a dataset with seed `seed`. */
uint64_t bv_synth_episode_seed(uint64_t seed, int64_t episode, int attempt);
/* The episode_metadata/file_path string, and its inverse (BV_ERR_FORMAT naming the string). */
void bv_synth_file_path(char *buf, size_t n, uint64_t env_seed, int task, int64_t episode);
bv_status bv_synth_parse_file_path(const char *s, uint64_t *env_seed, int *task, int64_t *episode);

/* One recorded episode: T steps of observations and the expert's actions. */
typedef struct {
    int T;
    int image_size;
    uint64_t env_seed;
    int task;
    bool success;
    char instruction[128];
    float *state;                            /* (T, 8) */
    float *joint_state;                      /* (T, 7) */
    float *action;                           /* (T, 7) */
    bv_image_bytes *jpeg_image, *jpeg_wrist; /* T each, or NULL when recorded without images */
} bv_synth_episode;

/* Reset env to (env_seed, task), run the expert (noise, seeded by env_seed) until success or the
 * env's max_steps, recording every step. jpeg_quality 0 records no images (fast). ep->success
 * says whether the target ended on the destination. */
bv_status bv_synth_episode_record(bv_synth_env *env, uint64_t env_seed, int task, float noise, int jpeg_quality,
                                  bv_synth_episode *ep);
void bv_synth_episode_free(bv_synth_episode *ep);

typedef struct {
    int64_t episodes, steps, failed_attempts;
    uint64_t bytes;
    double seconds;
} bv_synth_report;

/* Generate o->episodes demonstrations and write the dataset as the directory out_dir (parents
 * created if missing). It is written into a temporary directory beside out_dir and renamed into
 * place when complete (src/atomic_file.h, bv_atomic_dir), so out_dir appears whole or not at
 * all. An existing out_dir must be empty, or hold only such a dataset and o->force be set (it is
 * replaced only by a complete new one). rep may be NULL. */
bv_status bv_synth_write_rlds(const char *out_dir, const bv_synth_opts *o, bv_synth_report *rep);

/* Write PNGs of episode 0 of the dataset o describes into dir (created if missing), one per phase
 * of the expert (start, grasp, lift, place, release, end), third-person and wrist camera side by
 * side: "synth_0_start.png", ... For a look at the task and for the docs. */
bv_status bv_synth_write_preview(const char *dir, const bv_synth_opts *o);

/* Shard file name "NAME-train.tfrecord-0000K-of-0000N". */
void bv_synth_shard_name(char *buf, size_t n, const char *name, int k, int n_shards);

#endif
