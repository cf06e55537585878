/* convert_impl.h - internals of `bitvla convert` shared by its sources (convert.c: schemas and
 * RLDS; convert_libero.c: original LIBERO HDF5 files) and the output side (convert_sink.c): the
 * sink that turns episodes into a shard directory, and the per-episode helpers (gripper transform,
 * finiteness check, camera frames). Not a public interface.
 *
 * The sink writes everything into a temporary directory beside the output directory
 * (src/atomic_file.h, bv_atomic_dir) and renames it into place only after the manifest is
 * written, so the output directory appears whole or not at all and an earlier dataset there is
 * replaced only by a complete new one. */
#ifndef BV_DATA_CONVERT_IMPL_H
#define BV_DATA_CONVERT_IMPL_H

#include <jansson.h>

#include "data/convert.h"
#include "data/image.h"
#include "data/shards.h"
#include "src/atomic_file.h"

#define NAMEF "%.200s"

/* ---- the sink: episodes -> shards, statistics rows, manifest ---- */

typedef struct {
    const char *out_dir; /* as given (messages) */
    bv_atomic_dir dir;   /* dir.tmp receives every file until bv_cv_sink_finish */
    char *dataset_name;
    bv_shard_writer *w;
    int action_dim, proprio_dim;
    const bool *action_mask, *proprio_mask;
    float *acts, *props;
    int64_t rows, cap_rows;
    int64_t *lengths;
    int64_t n_eps, cap_eps;
    bv_shard_opts so;
} bv_cv_sink;

/* Check the output directory (refused if it holds a dataset and o->force is not set, or holds
 * files that are not a dataset's) and start writing beside it. */
bv_status bv_cv_sink_open(bv_cv_sink *k, const bv_convert_opts *o, const char *dataset_name, bv_image_storage storage,
                          int action_dim, int proprio_dim, int n_cams, const bv_shard_camera *cams);
bv_status bv_cv_sink_add(bv_cv_sink *k, const bv_shard_episode *ep);
/* Shards renamed, statistics, the manifest, then the directory into place (source/schema JSON are
 * taken over). Releases k on success and on failure. */
bv_status bv_cv_sink_finish(bv_cv_sink *k, json_t *source, json_t *schema, const bv_shard_camera *cams);
/* Remove everything written; the output directory is as before. */
void bv_cv_sink_abort(bv_cv_sink *k);

/* The schema as recorded in the manifest. */
json_t *bv_cv_schema_json(const bv_schema *s);

/* ---- per-episode helpers ---- */

void bv_cv_gripper_transform(const bv_schema *s, float *act, int64_t T, int A);
/* BV_ERR_FORMAT naming label, key, step and dimension of the first NaN or infinity. */
bv_status bv_cv_check_finite(const float *x, int64_t T, int D, const char *label, const char *key);

/* Per camera scratch: decoded pixels and, for JPEG storage, frames re-encoded from PNG. */
typedef struct {
    bv_image img;
    uint8_t *rgb; /* T x H x W x 3 (raw storage) */
    size_t rgb_cap;
    bv_bytes *frames; /* T views (JPEG storage) */
    int64_t cap_frames;
    bv_image_bytes *owned; /* re-encoded frames */
    int64_t n_owned, cap_owned;
} bv_cv_cam_buf;

void bv_cv_cam_buf_reset(bv_cv_cam_buf *c);
void bv_cv_cam_buf_free(bv_cv_cam_buf *c);

/* Takes frame t of a camera: decodes it (validating it and its size), stores the pixels (raw) or
 * the encoded bytes (JPEG; non-JPEG frames re-encoded). `rgb_in` != NULL: the frame is already
 * pixels (LIBERO HDF5), `rotate`: rotate by 180 degrees first. */
bv_status bv_cv_take_frame(bv_cv_cam_buf *c, bv_shard_camera *cam, bv_image_storage storage, int quality, int64_t t,
                           int64_t T, const bv_bytes *enc, const uint8_t *rgb_in, bool rotate, const char *label,
                           const char *key);

/* Image sizes a camera may have (features.json, HDF5 datasets): each side 1..BV_CV_MAX_SIDE,
 * at most BV_IMAGE_MAX_PIXELS pixels. */
#define BV_CV_MAX_SIDE 65535
bool bv_cv_image_size_ok(int64_t h, int64_t w);

#endif
