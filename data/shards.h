/* shards.h - the converted dataset on disk: HDF5 shards, dataset_statistics.json, manifest.json.
 *
 * A shard directory (docs/data.md has the full description):
 *     shard-00000.h5 ...      episodes in source order, up to episodes_per_shard per file
 *     dataset_statistics.json OFT's format (data/stats.h)
 *     manifest.json           written LAST: the directory is complete only when it exists
 * One shard (HDF5, format "bitvla-shard" version 1), N steps of E episodes:
 *     /action   float32 (N, A)   /proprio float32 (N, P)      chunked, shuffle + deflate
 *     /episode_offsets int64 (E + 1): steps of episode e are [off[e], off[e+1])
 *     /episode_index   int64 (E): the episode's index in the whole dataset (0-based)
 *     /instruction     variable-length UTF-8 strings (E)
 *     /images/<camera> (group; attrs height, width, key) holding, with storage "jpeg",
 *         jpeg uint8 (total bytes; chunked, unfiltered) + offsets int64 (N + 1): frame i is
 *         jpeg[offsets[i] : offsets[i+1]], an encoded JPEG of height x width x 3;
 *     or, with storage "raw", rgb uint8 (N, height, width, 3), one chunk per frame, deflate 1.
 *     root attributes: format, version, dataset_name, image_storage, cameras (comma-separated).
 * Every file is written under a temporary name (`*.tmp.<pid>`) and renamed only when the whole
 * conversion has succeeded; bv_shards_abort() deletes the temporaries. So an interrupted or failed
 * conversion never leaves a shard, statistics or manifest that looks complete.
 * A write that fails (disk full, file-size limit) is an error naming the shard and the OS reason
 * ("File too large", "No space left on device"). HDF5 1.10 cannot close such a file safely (a
 * failed H5Fclose leaves a dangling id that crashes HDF5's exit handler), so the writer abandons
 * its handles instead, and a process in which that happened exits without HDF5's exit handler
 * (an on_exit handler flushes stdio and calls _exit with the same status).
 *
 * Owns: a writer owns its open HDF5 file, the per-shard episode table and the list of finished
 * temporaries until bv_shards_finish() / bv_shards_abort(). A reader owns its HDF5 handles and
 * episode offsets until bv_shard_close().
 * Must not: know about the source format (RLDS, LIBERO HDF5) or compute statistics.
 */
#ifndef BV_DATA_SHARDS_H
#define BV_DATA_SHARDS_H

#include <stdbool.h>
#include <stdint.h>

#include "data/example.h"
#include "data/image.h"
#include "src/common.h"

#define BV_SHARD_FORMAT "bitvla-shard"
#define BV_SHARD_VERSION 1
#define BV_SHARD_MAX_CAMS 4

typedef enum { BV_IMAGES_JPEG = 0, BV_IMAGES_RAW = 1 } bv_image_storage;
const char *bv_image_storage_name(bv_image_storage s); /* "jpeg", "raw" */

typedef struct {
    const char *name; /* "primary", "wrist" */
    const char *key;  /* source key, recorded as an attribute */
    int height, width;
} bv_shard_camera;

typedef struct {
    const char *dir;          /* output directory (must exist) */
    const char *dataset_name;
    bv_image_storage storage;
    int episodes_per_shard;   /* > 0 */
    int action_dim, proprio_dim;
    int n_cams;
    bv_shard_camera cams[BV_SHARD_MAX_CAMS];
} bv_shard_opts;

/* One episode to append: T steps. For camera c, with storage JPEG: jpeg[c][t] the encoded frame;
 * with storage RAW: rgb[c] the T x height x width x 3 pixels. */
typedef struct {
    int64_t n_steps;
    const float *action;  /* T x A */
    const float *proprio; /* T x P */
    const char *instruction;
    int64_t episode_index;
    const bv_bytes *jpeg[BV_SHARD_MAX_CAMS];
    const uint8_t *rgb[BV_SHARD_MAX_CAMS];
} bv_shard_episode;

typedef struct bv_shard_writer bv_shard_writer;

bv_status bv_shards_open(bv_shard_writer **w, const bv_shard_opts *o);
bv_status bv_shards_add(bv_shard_writer *w, const bv_shard_episode *ep);
/* Close the last shard and rename every shard to its final name (shard-%05d.h5). The caller then
 * writes the statistics and, last, the manifest. *n_shards receives the count; shard_files,
 * shard_episodes and shard_steps (each may be NULL) receive per-shard tables (malloc'd; the caller
 * frees each name and the arrays). Frees w on success and on failure (temporaries removed). */
bv_status bv_shards_finish(bv_shard_writer *w, int *n_shards, char ***shard_files, int64_t **shard_episodes,
                           int64_t **shard_steps);
/* Remove every temporary and free w. Harmless on NULL. */
void bv_shards_abort(bv_shard_writer *w);

/* ---- reading one shard ---- */
typedef struct {
    char *path;
    int64_t file, action, proprio; /* hid_t (int64_t in HDF5 1.10) */
    int64_t n_episodes, n_steps;
    int64_t *episode_offsets; /* E + 1 */
    int64_t *episode_index;   /* E */
    int action_dim, proprio_dim;
    bv_image_storage storage;
    int n_cams;
    struct {
        char name[32];
        int height, width;
        int64_t data, offsets; /* hid_t: jpeg + offsets, or rgb */
    } cams[BV_SHARD_MAX_CAMS];
    char dataset_name[128];
} bv_shard;

bv_status bv_shard_open(bv_shard *s, const char *path);
void bv_shard_close(bv_shard *s);
/* rows [step0, step0 + n) of action / proprio (row-major into dst) */
bv_status bv_shard_read_action(const bv_shard *s, int64_t step0, int64_t n, float *dst);
bv_status bv_shard_read_proprio(const bv_shard *s, int64_t step0, int64_t n, float *dst);
/* the instruction of episode e (malloc'd; caller frees) */
bv_status bv_shard_read_instruction(const bv_shard *s, int64_t e, char **out);
/* camera index by name, or -1 */
int bv_shard_find_camera(const bv_shard *s, const char *name);
/* The encoded JPEG of one frame (storage JPEG only) into *buf (grown; *len its size). */
bv_status bv_shard_read_jpeg(const bv_shard *s, int cam, int64_t step, uint8_t **buf, size_t *cap, size_t *len);
/* One frame as RGB (either storage; JPEG frames are decoded). */
bv_status bv_shard_read_rgb(const bv_shard *s, int cam, int64_t step, bv_image *img, uint8_t **scratch,
                            size_t *scratch_cap);

#endif
