/* recipes/export.h - `bitvla export`: a checkpoint (or a randomly initialised model) -> a deployable
 * bundle (models/bundle.h, docs/formats.md "Bundles").
 *
 * What it is for: build the model (models/build.h, inference purpose, the checkpoint's weights),
 * plan the bundle's tensors (bv_bundle_plan_make: every shape checked before anything is written),
 * then write the bundle into a temporary directory and put it in place in one step
 * (src/atomic_file.h): model.safetensors streamed tensor by tensor (each ternary weight quantized
 * exactly as the BitLinear forward quantizes it, src/kernels/bitlinear.h, then packed), so beside
 * the fp32 model only one layer's codes and bytes are in memory; config.json; tokenizer.json and
 * dataset_statistics.json copied; memory_report.json; manifest.json last.
 * An existing destination is refused unless `force` (then swapped atomically); a failure leaves the
 * destination as it was.
 *
 * Owns: the result's report and strings (bv_export_result_free).
 * Must not: parse command lines or print tables (cli/cmd_export.c does); train or run forwards.
 */
#ifndef BV_RECIPES_EXPORT_H
#define BV_RECIPES_EXPORT_H

#include <stdio.h>

#include "models/bundle.h"

typedef struct {
    /* the source: a checkpoint directory (recipes/checkpoint.h) or a run directory (its
     * checkpoints/latest is followed); or, with random_init, a config (preset or config.json) and a
     * seed (bv_vla_init_weights) */
    const char *checkpoint;
    bool random_init;
    const char *config;
    uint64_t seed;
    /* tokenizer.json and dataset_statistics.json to copy: the checkpoint's when NULL; required with
     * random_init */
    const char *tokenizer, *statistics;
    const char *out; /* the bundle directory */
    bv_tpack_format layout;
    bv_dtype dtype; /* BV_DTYPE_BF16 or BV_DTYPE_F32 */
    bool force, keep_lm_head;
    FILE *log; /* progress lines (NULL: none) */
} bv_export_opts;

typedef struct {
    bv_bundle_report report;
    char *checkpoint;     /* the checkpoint directory exported (resolved), NULL with random_init */
    int64_t step;         /* its step, -1 when unknown */
    uint64_t model_bytes; /* size of model.safetensors */
    uint64_t total_bytes; /* of every file in the bundle */
    double seconds;
} bv_export_result;

/* Export as described above. Errors name the checkpoint, the file, the tensor or the flag's value
 * ("exporting ckpt/ to b/: tensor '...' (4304 x 1152) cannot be stored in layout i2s: ..."). */
bv_status bv_export(const bv_export_opts *o, bv_export_result *r);
void bv_export_result_free(bv_export_result *r);

#endif
