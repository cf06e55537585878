/* rlds.h - RLDS / TFDS datasets on disk: the schema (features.json), the splits and shard files
 * (dataset_info.json), and typed access to the features of one episode's tf.train.Example.
 *
 * A TFDS dataset directory holds `features.json` (a tree of FeaturesDict / Dataset / Tensor /
 * Scalar / Image / Text nodes), `dataset_info.json` (name, version, splits with shard lengths and
 * a file-path template) and the TFRecord shards. Episodes are one Example each; feature names are
 * flattened with '/' (`steps/observation/image`), and the per-step values of the `steps` sequence
 * are concatenated over the episode (`../shared/spec/bitvla.md` section 6):
 *   float dtypes -> float_list, T * numel values;   ints and bool -> int64_list;
 *   Text -> bytes_list, one string per step;        Image -> bytes_list, one JPEG/PNG per step.
 *
 * Errors name the file (features.json, dataset_info.json or the shard), and for episodes the
 * caller's label (file and episode index) and the key, with what was expected: a key missing from
 * features.json or from the episode, a list of the wrong kind for its dtype, a value count that is
 * not steps x per-step size, per-step keys that disagree on the number of steps.
 *
 * Owns: a bv_rlds_dataset owns its feature table, split table and strings (bv_rlds_close). A
 * bv_rlds_value borrows from the bv_example it was taken from and from the dataset.
 * Must not: decode images or write anything (see data/image.h and data/shards.h).
 */
#ifndef BV_DATA_RLDS_H
#define BV_DATA_RLDS_H

#include <stdbool.h>
#include <stdint.h>

#include "data/example.h"
#include "src/common.h"

#define BV_RLDS_MAX_DIMS 8

typedef enum {
    BV_RLDS_TENSOR = 0, /* Tensor, Scalar, ClassLabel */
    BV_RLDS_IMAGE = 1,
    BV_RLDS_TEXT = 2,
    BV_RLDS_OTHER = 3, /* a node this reader cannot decode (reason in `note`); an error only when used */
} bv_rlds_kind;

typedef struct {
    char *name;           /* flattened with '/' */
    bv_rlds_kind kind;
    char *class_name;     /* last component of pythonClassName, e.g. "Image" */
    char dtype[16];       /* "float32", "uint8", "bool", "string", ... */
    bv_feat_kind list;    /* how an Example stores it */
    int ndim;             /* per-step shape (images: H, W, C); -1 entries are unknown */
    int64_t shape[BV_RLDS_MAX_DIMS];
    char encoding[8];     /* images: "jpeg" or "png"; otherwise "none" */
    bool per_step;        /* inside the steps sequence */
    char *note;           /* kind OTHER: why */
} bv_rlds_feature;

typedef struct {
    char *name;             /* "train", "val", ... */
    int n_shards;
    int64_t *shard_lengths; /* episodes per shard */
    int64_t n_episodes;
    char **files;           /* shard paths (dir + expanded filepathTemplate) */
} bv_rlds_split;

typedef struct {
    char *dir;
    char *name;    /* dataset_info.json "name" */
    char *version; /* "version" */
    char *file_format;
    bv_rlds_feature *features;
    int n_features;
    bv_rlds_split *splits;
    int n_splits;
} bv_rlds_dataset;

/* Read DIR/features.json and DIR/dataset_info.json. A failed open leaves ds zeroed. */
bv_status bv_rlds_open(bv_rlds_dataset *ds, const char *dir);
void bv_rlds_close(bv_rlds_dataset *ds);
const bv_rlds_feature *bv_rlds_feature_find(const bv_rlds_dataset *ds, const char *name);
const bv_rlds_split *bv_rlds_split_find(const bv_rlds_dataset *ds, const char *name);
/* Every shard file of the split exists and is readable (error names the first that is not). */
bv_status bv_rlds_split_check(const bv_rlds_dataset *ds, const bv_rlds_split *sp);
/* Number of values per step of a feature (product of its shape; 1 for images and text); -1 if a
 * dimension is unknown. */
int64_t bv_rlds_feature_numel(const bv_rlds_feature *f);

/* One feature of one episode, checked against the schema. */
typedef struct {
    const bv_rlds_feature *feat;
    const bv_feature *raw; /* borrowed from the bv_example */
    int64_t n_steps;       /* T (1 for an episode-level feature) */
    int64_t per_step;      /* values per step: numel for tensors, 1 for images and text */
} bv_rlds_value;

/* Look up `key` in the schema and the episode and check kind and count. label names the episode
 * ("FILE episode 3"). For a per-step tensor with an unknown dimension, per_step must divide the
 * count with the known dimensions only, which is not supported: such keys are BV_ERR_UNSUPPORTED. */
bv_status bv_rlds_get(const bv_rlds_dataset *ds, const bv_example *ex, const char *key, bv_rlds_value *out,
                      const char *label);
/* All values of v as float (int64_list values are converted); dst holds n_steps * per_step. */
void bv_rlds_value_f32(const bv_rlds_value *v, float *dst);
/* The bytes of step t (images and text). */
bv_bytes bv_rlds_value_bytes(const bv_rlds_value *v, int64_t t);

/* Several keys of one episode at once, also checking that the per-step ones agree on the number
 * of steps; *n_steps receives it (0 when every key is episode-level). */
bv_status bv_rlds_get_many(const bv_rlds_dataset *ds, const bv_example *ex, int n, const char *const *keys,
                           bv_rlds_value *out, int64_t *n_steps, const char *label);

#endif
