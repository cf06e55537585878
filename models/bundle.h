/* models/bundle.h - the deployable bundle format: a directory holding a model with its ternary
 * linears packed (src/ternary_pack.h), the rest in bf16 or f32, and what a policy needs beside the
 * weights (docs/formats.md, "Bundles"):
 *
 *   BUNDLE_DIR/model.safetensors        HF tensor names (LLaVA layout); __metadata__ {"format":
 *                                       "bitvla-bundle", "layout": hf|tq5|i2s, "dtype": bf16|f32}
 *              config.json              the model config + quantization_config + torch_dtype
 *              tokenizer.json           copied from the checkpoint
 *              dataset_statistics.json  copied from the checkpoint (un-normalising actions)
 *              memory_report.json       bytes per module, what was dropped
 *              manifest.json            written last: format, version, layout, dtype, source, and
 *                                       every other file's size and CRC-32C
 *
 * What it is for: the one definition of which tensors a bundle of a given model holds
 * (bv_bundle_plan_make: names, dtypes, shapes, bytes, and the memory report computed from them,
 * which `bitvla info --config` prints for any layout too), the writers of manifest.json and
 * memory_report.json, and the reader (bv_bundle_open) that checks a bundle whole before anyone
 * trusts it: every file the manifest lists exists with its size and CRC-32C, config.json parses,
 * model.safetensors opens (mmap) and says the same layout and dtype as the manifest.
 *
 * Owns: a bv_bundle owns its strings, the open safetensors mapping and the report (bv_bundle_close);
 * a bv_bundle_plan owns its tensor table (bv_bundle_plan_free).
 * Must not: quantize, pack or write tensors (recipes/export.c does), or fill a model from the
 * tensors (the runtime does): this module knows the layout, not the policy.
 */
#ifndef BV_MODELS_BUNDLE_H
#define BV_MODELS_BUNDLE_H

#include <stdbool.h>
#include <stdint.h>

#include "models/vla.h"
#include "src/safetensors.h"
#include "src/ternary_pack.h"

#define BV_BUNDLE_FORMAT "bitvla-bundle"
#define BV_BUNDLE_VERSION 1
#define BV_BUNDLE_MANIFEST "manifest.json"
#define BV_BUNDLE_MODEL "model.safetensors"
#define BV_BUNDLE_CONFIG "config.json"
#define BV_BUNDLE_TOKENIZER "tokenizer.json"
#define BV_BUNDLE_STATISTICS "dataset_statistics.json"
#define BV_BUNDLE_REPORT "memory_report.json"
/* The deployable weights the BitVLA paper reports (for comparison in reports). */
#define BV_BUNDLE_PAPER_BYTES 1.4e9

/* "hf", "tq5", "i2s" (the --format values and the manifest's "layout"); "?" for others. */
const char *bv_bundle_layout_name(bv_tpack_format layout);
/* Parse a layout name; BV_ERR_ARG naming the value and the expected ones. */
bv_status bv_bundle_layout_parse(const char *s, bv_tpack_format *out);
/* "bf16" or "f32" (the --dtype values and the manifest's "dtype"); parse accepts those two only. */
const char *bv_bundle_dtype_name(bv_dtype dt);
bv_status bv_bundle_dtype_parse(const char *s, bv_dtype *out);

/* ---- the memory report ---- */

typedef enum {
    BV_BUNDLE_MOD_VISION_TERNARY = 0, /* SigLIP q/k/v/o/fc1/fc2: codes + scales + f32 biases */
    BV_BUNDLE_MOD_VISION_REST,        /* patch and position embeddings, layer norms */
    BV_BUNDLE_MOD_CONNECTOR,          /* multi_modal_projector */
    BV_BUNDLE_MOD_LLM_EMBED,          /* embed_tokens */
    BV_BUNDLE_MOD_LLM_TERNARY,        /* BitNet q/k/v/o/gate/up/down: codes + scales */
    BV_BUNDLE_MOD_LLM_NORMS,          /* every RMSNorm of the LLM (layers, sub-norms, final) */
    BV_BUNDLE_MOD_LM_HEAD,            /* language_model.lm_head (dropped unless kept; absent when tied) */
    BV_BUNDLE_MOD_PROPRIO,            /* proprio_projector */
    BV_BUNDLE_MOD_ACTION_HEAD,        /* action_head */
    BV_BUNDLE_MODS,
} bv_bundle_module_id;

typedef struct {
    char name[32];   /* "vision ternary linears", ... */
    char kind[32];   /* "ternary hf" / "ternary tq5" / "ternary i2s", "bf16", "f32", "dropped", "tied", "-" */
    int64_t params;  /* parameters stored in the bundle */
    int64_t tensors; /* safetensors tensors written */
    double bytes;    /* bytes of those tensors (data only) */
    int64_t dropped_params;
} bv_bundle_module;

typedef struct {
    char layout[8], dtype[8];
    bv_bundle_module mod[BV_BUNDLE_MODS];
    int64_t params, ternary_params, dropped_params;
    double bytes, ternary_bytes, dense_bytes; /* data bytes of model.safetensors: all, packed ternary
                                                 (codes + scales + their biases), the rest */
    double paper_bytes;                       /* BV_BUNDLE_PAPER_BYTES */
    int tq5_fallback; /* i2s bundles: ternary weights stored as TQ5 (shapes I2_S cannot hold) */
    int n_dropped;
    char **dropped; /* one line per dropped group: names, parameters, why (malloc'd) */
} bv_bundle_report;

void bv_bundle_report_free(bv_bundle_report *r);
/* Write r as memory_report.json at path (atomically). */
bv_status bv_bundle_report_write(const bv_bundle_report *r, const char *path);
/* Read a memory_report.json; errors name the file and the key. */
bv_status bv_bundle_report_read(bv_bundle_report *r, const char *path);
/* The report as a table (one row per module, totals, what was dropped, the paper's 1.4 GB). */
void bv_bundle_report_print(const bv_bundle_report *r, FILE *f);
/* The report as the JSON object memory_report.json holds (new reference). */
struct json_t;
struct json_t *bv_bundle_report_json(const bv_bundle_report *r);

/* ---- the plan: the tensors of a bundle of a model ---- */

typedef enum {
    BV_BUNDLE_T_DENSE = 0, /* a parameter as is, in the bundle dtype */
    BV_BUNDLE_T_CODES,     /* a ternary weight, packed (U8) */
    BV_BUNDLE_T_SCALE,     /* its weight_scale m, F32 [1] (hf only) */
    BV_BUNDLE_T_BIAS,      /* its bias, F32 (hf: bias / m) */
} bv_bundle_role;

typedef struct {
    char *name; /* malloc'd */
    bv_bundle_role role;
    int param;          /* the parameter it comes from (bv_params index) */
    int ternary;        /* CODES/SCALE/BIAS: index of the layer among the plan's ternary layers; else -1 */
    int64_t rows, cols; /* CODES: the weight's (OC, C) */
    bv_tpack_format fmt; /* CODES: how they are packed: the bundle's layout, or TQ5 in an i2s bundle
                            for a shape I2_S cannot hold (C % 128 != 0: SigLIP's fc2, 4304 inputs);
                            such tensors are listed in __metadata__ "tq5_tensors" */
    bv_dtype dtype;
    int ndim;
    int64_t shape[BV_MAX_DIMS];
    size_t bytes;
    bv_bundle_module_id mod;
} bv_bundle_tensor;

typedef struct {
    bv_bundle_tensor *t; /* in file order; a layer's codes, scale and bias consecutive */
    int n;
    int n_ternary; /* ternary layers kept */
    bv_bundle_report report;
} bv_bundle_plan;

/* The tensors a bundle of model m (its parameters p: shapes suffice, a BV_MODEL_SHAPES model
 * works) holds in `layout` and `dtype` (BF16 or F32), and the memory report. Every used ternary
 * layer (bv_vla_ternary_list) is packed; vision layers the forward never runs are dropped, as is
 * an untied language_model.lm_head.weight unless keep_lm_head. A ternary weight whose shape the
 * layout cannot hold is BV_ERR_SHAPE naming the tensor, the shape and the layout. */
bv_status bv_bundle_plan_make(bv_bundle_plan *pl, bv_vla *m, const bv_params *p, bv_tpack_format layout,
                              bv_dtype dtype, bool keep_lm_head);
void bv_bundle_plan_free(bv_bundle_plan *pl);

/* ---- writing ---- */

typedef struct {
    const char *checkpoint; /* NULL: none (random init) */
    int64_t step;           /* < 0: unknown */
    bool random_init;
    uint64_t seed; /* when random_init */
    int n_images;  /* cameras the policy takes (the training recipe's data.n_images); 0: unknown */
} bv_bundle_source;

/* The model config as a bundle's config.json: bv_config_to_json + quantization_config + torch_dtype
 * (malloc'd; NULL only when out of memory). */
char *bv_bundle_config_json(const bv_vla_config *c, bv_tpack_format layout, bv_dtype dtype);
/* Size and CRC-32C of a file; errors name it. */
bv_status bv_bundle_file_crc(const char *path, uint64_t *bytes, uint32_t *crc);
/* Write dir/manifest.json listing every bundle file present in dir (sizes, CRC-32C). Last step of
 * writing a bundle. */
bv_status bv_bundle_manifest_write(const char *dir, bv_tpack_format layout, bv_dtype dtype, const bv_bundle_source *src);
/* Whether a name is one a bundle directory holds (for bv_atomic_dir_opts.owned: a bundle may be
 * replaced by a new one, anything else in the directory makes it foreign). */
bool bv_bundle_owned_name(const char *name);

/* ---- reading ---- */

typedef struct {
    char *dir;
    bv_tpack_format layout;
    bv_dtype dtype; /* of the full-precision tensors: BV_DTYPE_BF16 or BV_DTYPE_F32 */
    bv_vla_config cfg;
    bv_st_file st; /* model.safetensors, mmapped */
    char *tokenizer_path, *statistics_path; /* malloc'd paths inside dir */
    char *dataset;                          /* the first key of dataset_statistics.json (malloc'd) */
    int n_images;                           /* manifest "policy": {"n_images"}; 0 when absent */
    bv_bundle_report report;
} bv_bundle;

/* Open and check a bundle (see the top of this file). Every error names the file (and the field or
 * tensor) and what was expected, e.g. "b/model.safetensors: CRC-32C 0x1234abcd but manifest.json
 * says 0x89ab0123". On error *b is zeroed. */
bv_status bv_bundle_open(bv_bundle *b, const char *dir);
void bv_bundle_close(bv_bundle *b);
/* Whether dir holds a manifest.json whose "format" is "bitvla-bundle" (no other check). */
bool bv_bundle_is_bundle(const char *dir);

#endif
