/* safetensors.h - reader (mmap, validated) and atomic writer of the safetensors format.
 *
 * Format (`../shared/spec/bitvla.md` section 7): u64 N (little-endian) + N bytes of JSON header
 * {name: {"dtype", "shape", "data_offsets": [b, e]}, "__metadata__": {str: str}} + data.
 * Offsets are relative to the data start. The reader rejects, with a message naming the file, the
 * tensor and the problem: a header larger than 100 MB or than the file, invalid JSON, an unknown
 * dtype, a bad shape, e - b != numel * itemsize, offsets out of bounds, overlapping or leaving gaps
 * (the tensors must tile the data section exactly), duplicate names.
 * The writer pads the header with spaces to a multiple of 8 and writes atomically (temporary file
 * in the same directory, fsync, rename); on any failure the destination is untouched.
 *
 * Status codes: BV_ERR_IO (open, mmap, create, write, fsync, rename), BV_ERR_FORMAT (malformed file;
 * also bv_st_read of a name the file lacks), BV_ERR_UNSUPPORTED (a dtype outside bv_dtype, rank > 5),
 * BV_ERR_SHAPE (bv_st_read: stored shape differs from the expected one), BV_ERR_ARG (bv_st_save:
 * duplicate, reserved "__metadata__" or non-UTF-8 names), BV_ERR_NOMEM. A failed bv_st_open leaves
 * *f zeroed, so bv_st_close(f) is harmless either way. Host byte order must be little-endian.
 *
 * Owns: a bv_st_file owns its mapping and entry table until bv_st_close(). Views returned by
 * bv_st_view() borrow the mapping (read-only).
 */
#ifndef BV_SAFETENSORS_H
#define BV_SAFETENSORS_H

#include <stdio.h>

#include "src/tensor.h"

#define BV_ST_MAX_HEADER (100u * 1000u * 1000u)

typedef struct {
    char *name;
    bv_dtype dtype;
    int ndim;
    int64_t shape[BV_MAX_DIMS];
    uint64_t begin, end; /* byte offsets relative to the data section */
} bv_st_entry;

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    const uint8_t *data; /* start of the data section */
    size_t data_size;
    bv_st_entry *entries; /* in file order of data_offsets */
    int n;
    char **meta_keys, **meta_vals; /* __metadata__ */
    int n_meta;
} bv_st_file;

bv_status bv_st_open(bv_st_file *f, const char *path);
void bv_st_close(bv_st_file *f);
/* Index of tensor `name`, or -1. */
int bv_st_find(const bv_st_file *f, const char *name);
/* Borrowed view of entry i in its stored dtype (data may be unaligned: use bv_st_read to copy). */
bv_tensor bv_st_view(const bv_st_file *f, int i);
/* Copy tensor `name` into dst, converting to dtype `dt`. If ndim >= 0 the stored shape must equal
 * (ndim, shape); otherwise only the element count must equal `numel`. Errors name the file, the
 * tensor, and the expected vs found shape. */
bv_status bv_st_read(const bv_st_file *f, const char *name, bv_dtype dt, int ndim, const int64_t *shape,
                     int64_t numel, void *dst);
/* Metadata value for key, or NULL. */
const char *bv_st_meta(const bv_st_file *f, const char *key);

typedef struct {
    const char *name;
    bv_tensor t; /* any strides; written contiguous in t.dtype */
} bv_st_item;

/* Write n tensors (and n_meta key/value pairs, meta[2*i], meta[2*i+1]) to path atomically. */
bv_status bv_st_save(const char *path, int n, const bv_st_item *items, int n_meta, const char *const *meta);
/* The same with the data section written by fn (items give names, dtypes and shapes; their data
 * may be NULL): fn must write every tensor's bytes, contiguous, in item order, to fp (tmp: the
 * temporary file's name, for messages); a byte count other than the header's is BV_ERR_INTERNAL.
 * For data that never sits whole in memory (sharded optimizer state gathered piece by piece). */
typedef bv_status (*bv_st_data_fn)(void *ctx, FILE *fp, const char *tmp);
bv_status bv_st_save_stream(const char *path, int n, const bv_st_item *items, int n_meta, const char *const *meta,
                            bv_st_data_fn fn, void *ctx);

#endif
