/* example.h - tf.train.Example decoding and encoding (hand-written protobuf wire format).
 *
 * Schema (tensorflow/core/example/{example,feature}.proto):
 *     Example   { Features features = 1; }
 *     Features  { map<string, Feature> feature = 1; }      map entry: { string key = 1; Feature value = 2; }
 *     Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
 *     BytesList { repeated bytes value = 1; }
 *     FloatList { repeated float value = 1 [packed = true]; }
 *     Int64List { repeated int64 value = 1 [packed = true]; }
 *
 * Why hand-written rather than protobuf-c: the schema is six tiny messages, fixed for a decade; a
 * direct decoder needs no code generator in the build, gives zero-copy views of the byte strings
 * (JPEG frames are most of an episode's bytes), reuses its storage from record to record (no
 * malloc per message), and bounds everything it does by the input length. It is fuzzed
 * (fuzz/fuzz_example.c) with a decode -> encode -> decode round-trip property.
 *
 * Decoding follows protobuf's rules: unknown fields (wire types 0, 1, 2, 5) are skipped; repeated
 * numeric values are accepted packed and unpacked, mixed; a sub-message given twice is merged (a
 * Feature whose list appears twice gets both lists' values; a different list kind replaces the
 * earlier one); of two map entries with the same key the last one wins; a map entry without a key
 * has the key "" and one without a value is a feature of kind BV_FEAT_NONE; a known field with an
 * unexpected wire type is skipped as an unknown field (as protobuf's own parsers do). Rejected,
 * with BV_ERR_FORMAT and a message naming the input, the byte offset and the problem: a length
 * running past its enclosing message, a varint longer than 10 bytes or running past the end, a tag
 * above 2^32 or with field number 0, wire types 3, 4 (groups, never produced for these messages),
 * 6 and 7, a packed float payload whose length is not a multiple of 4, and a feature name
 * containing a NUL byte. Nesting is fixed at five levels by the schema and each level is its own
 * loop (no recursion, so no depth bomb); every count is bounded by the input length.
 *
 * Owns: a bv_example owns its feature table, names and value arrays (reused across decodes; free
 * with bv_example_free). Byte strings (bv_bytes) are BORROWED from the decoded input buffer, which
 * must outlive their use. A bv_example_builder owns its output buffer.
 * Must not: do I/O (see data/tfrecord.h) or interpret feature meaning (see data/rlds.h).
 */
#ifndef BV_DATA_EXAMPLE_H
#define BV_DATA_EXAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

typedef enum {
    BV_FEAT_NONE = 0, /* a map entry whose Feature has no list set */
    BV_FEAT_BYTES = 1,
    BV_FEAT_FLOAT = 2,
    BV_FEAT_INT64 = 3,
} bv_feat_kind;

const char *bv_feat_kind_name(bv_feat_kind k); /* "bytes_list", "float_list", "int64_list", "none" */

typedef struct {
    const uint8_t *data; /* borrowed from the decoded buffer */
    size_t len;
} bv_bytes;

typedef struct {
    const char *name; /* NUL-terminated, owned by the bv_example */
    bv_feat_kind kind;
    size_t n; /* number of values */
    const bv_bytes *bytes;  /* kind BV_FEAT_BYTES */
    const float *floats;    /* kind BV_FEAT_FLOAT */
    const int64_t *int64s;  /* kind BV_FEAT_INT64 */
} bv_feature;

typedef struct {
    bv_feature *features; /* unique names, in order of appearance (a repeated key: its last entry) */
    int n_features;
    /* storage, reused across decodes */
    int cap_features;
    char *names;
    size_t names_len, names_cap;
    bv_bytes *bytes;
    size_t bytes_len, bytes_cap;
    float *floats;
    size_t floats_len, floats_cap;
    int64_t *int64s;
    size_t int64s_len, int64s_cap;
    struct bv_example_slot *slots; /* internal: per-entry offsets into the storage */
    int n_slots, cap_slots;
    int *sorted; /* internal: feature indices sorted by name (bv_example_find bisects) */
    int cap_sorted;
} bv_example;

/* Decode one serialized Example (buf[0..len), kept borrowed by the bytes views). `label` names the
 * input in messages, e.g. "file.tfrecord record 3 (byte offset 1234)". Reuses ex's storage; ex must
 * be zero-initialised before first use. On failure ex holds no features. */
bv_status bv_example_decode(bv_example *ex, const uint8_t *buf, size_t len, const char *label);
void bv_example_free(bv_example *ex);

/* The feature called `name`, or NULL. */
const bv_feature *bv_example_find(const bv_example *ex, const char *name);

/* Encoder: build an Example feature by feature, then take the serialized bytes (map entries in the
 * order added; floats packed, int64s packed). Names should be unique: of a repeated name a decoder
 * keeps the last. Zero-initialise before first use; bv_example_builder_reset to reuse. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
    int n_features;
} bv_example_builder;

void bv_example_builder_reset(bv_example_builder *b);
void bv_example_builder_free(bv_example_builder *b);
/* Adds a BytesList feature of n values (vals[i], lens[i]). */
void bv_example_add_bytes(bv_example_builder *b, const char *name, size_t n, const void *const *vals,
                          const size_t *lens);
/* Convenience: a BytesList with one NUL-terminated string. */
void bv_example_add_string(bv_example_builder *b, const char *name, const char *s);
void bv_example_add_floats(bv_example_builder *b, const char *name, size_t n, const float *vals);
void bv_example_add_int64s(bv_example_builder *b, const char *name, size_t n, const int64_t *vals);
/* The serialized Example (borrowed from b; valid until b changes). */
const uint8_t *bv_example_builder_finish(bv_example_builder *b, size_t *len);

#endif
