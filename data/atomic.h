/* atomic.h - write-then-rename helpers for output files of the data pipeline.
 *
 * Every file the pipeline produces (TFRecords, HDF5 shards, dataset_statistics.json, manifests) is
 * written under a temporary name beside its destination, `<path>.tmp.<pid>`, then fsynced and
 * renamed over the destination, and the directory is fsynced. A killed or failed writer therefore
 * leaves at most a `*.tmp.*` file, never a destination that looks complete.
 *
 * Owns: nothing (strings it returns are malloc'd and owned by the caller).
 * Must not: know about any file format.
 */
#ifndef BV_DATA_ATOMIC_H
#define BV_DATA_ATOMIC_H

#include "src/common.h"

/* "<path>.tmp.<pid>", malloc'd (caller frees). NULL when out of memory. */
char *bv_atomic_tmp_path(const char *path);

/* fsync `tmp` (already closed by the caller), rename it to `path`, fsync the parent directory.
 * On failure removes `tmp` and returns BV_ERR_IO with a message naming both. */
bv_status bv_atomic_commit(const char *tmp, const char *path);

/* Write n bytes to `path` atomically (temporary name, fsync, rename). */
bv_status bv_atomic_write_file(const char *path, const void *data, size_t n);

#endif
