/* convert.h - conversion of robot datasets into bitvla shard directories (data/shards.h).
 *
 * Two sources:
 *  - RLDS / TFDS directories (data/rlds.h), through a schema that maps source keys to roles and
 *    names the per-dataset transforms; built-in schemas `libero` (modified_libero_rlds) and
 *    `bridge` (the Bridge debug set), or a JSON file in the same form (docs/data.md):
 *        {"name": "libero", "split": "train",
 *         "keys": {"primary_image": "steps/observation/image",
 *                  "wrist_image": "steps/observation/wrist_image",      (optional)
 *                  "proprio": "steps/observation/state", "action": "steps/action",
 *                  "instruction": "steps/language_instruction"},
 *         "transforms": {"gripper": "invert_clip01" | "none", "gripper_dim": -1},
 *         "action_mask": [true, true, true, true, true, true, false],    (optional; all true)
 *         "proprio_mask": [...],                                         (optional; all true)
 *         "images": "jpeg" | "raw", "jpeg_quality": 95}                   (optional)
 *    `invert_clip01` is OFT's LIBERO gripper transform a[g] = 1 - clip(a[g], 0, 1) (1 = open).
 *  - original LIBERO HDF5 demo files (layout in ../shared/spec/bitvla.md section 6): both cameras
 *    rotated by 180 degrees, proprio = ee_states (6) ++ gripper_states (2), the LIBERO gripper
 *    transform, optionally without no-op steps (OFT's rule: |a[:6]| < 1e-4 and the gripper
 *    command equal to the previous kept step's).
 * Output: shards, dataset_statistics.json (OFT format, on the transformed actions and proprio),
 * manifest.json last, all written into a temporary directory beside out_dir that is renamed onto
 * it when complete (src/atomic_file.h, bv_atomic_dir): out_dir appears whole or not at all. On any
 * failure the temporary directory is removed and out_dir is as it was (with force, the old
 * dataset stays until the new one is complete). out_dir must be missing, empty, or (with force)
 * hold only a converted dataset. LIBERO demo files given twice (same file or a copy) are
 * converted twice with a warning naming both.
 *
 * Errors name the file, the episode and the key with what was expected.
 * Owns: a bv_schema owns its strings (bv_schema_free).
 * Must not: print anything but the progress indicator and warnings on stderr.
 */
#ifndef BV_DATA_CONVERT_H
#define BV_DATA_CONVERT_H

#include <stdbool.h>
#include <stdint.h>

#include "data/shards.h"
#include "src/common.h"

#define BV_SCHEMA_MAX_DIM 64

typedef enum { BV_GRIPPER_NONE = 0, BV_GRIPPER_INVERT_CLIP01 = 1 } bv_gripper_transform;

typedef struct {
    char *name;   /* "libero", "bridge" or the file's "name" */
    char *source; /* "built-in" or the JSON file's path */
    char *split;
    char *primary_image, *wrist_image, *proprio, *action, *instruction; /* wrist_image may be NULL */
    bv_gripper_transform gripper;
    int gripper_dim; /* -1: the last */
    int n_action_mask, n_proprio_mask; /* 0: all true */
    bool action_mask[BV_SCHEMA_MAX_DIM], proprio_mask[BV_SCHEMA_MAX_DIM];
    bv_image_storage images;
    int jpeg_quality;
} bv_schema;

/* "libero", "bridge", or a path to a JSON schema file. Errors name the file and key, or list the
 * built-in names for an unknown one. */
bv_status bv_schema_load(bv_schema *s, const char *name_or_path);
void bv_schema_free(bv_schema *s);
/* The schema as JSON text (malloc'd), as recorded in the manifest. */
char *bv_schema_to_json(const bv_schema *s);

typedef struct {
    const char *out_dir;
    const char *dataset_name; /* NULL: the source's (dataset_info.json "name"; "libero" for HDF5) */
    const char *split;        /* NULL: the schema's */
    int images;               /* -1: the schema's; else a bv_image_storage */
    int jpeg_quality;         /* 0: the schema's (95 by default) */
    int episodes_per_shard;   /* 0: 64 */
    int64_t max_episodes;     /* 0: all */
    bool force;               /* replace an existing shard directory (once the new one is complete) */
    bool filter_noops;        /* libero-hdf5 only */
} bv_convert_opts;

/* The --name rule: 1..100 letters, digits, '_', '-', '.', not starting with '.' or '-' (a name
 * that is also a safe file name). BV_ERR_ARG naming the name and the offending character. Both
 * conversions check opts.dataset_name with it. */
bv_status bv_convert_name_check(const char *name);

bv_status bv_convert_rlds(const char *src_dir, const bv_schema *schema, const bv_convert_opts *o);
bv_status bv_convert_libero_hdf5(int n_files, const char *const *files, const bv_convert_opts *o);

/* OFT's no-op rule: |a[0:6]|_2 < 1e-4 and (no previous kept action, or a[6] == prev[6]). */
bool bv_libero_is_noop(const float *a, const float *prev_kept);

#endif
