/* atomic_file.h - write a file so that it appears whole or not at all.
 *
 * Every file the project writes (safetensors checkpoints and their index, tokenizer.json,
 * TFRecords, HDF5 shards, dataset statistics, manifests) goes through here: it is written under a
 * temporary name beside its destination, `<path>.tmp.<pid>`, then flushed, fsynced and renamed
 * over the destination, and the directory is fsynced. A killed writer therefore leaves at most a
 * `*.tmp.*` file, never a destination that looks complete; a failed one removes its temporary.
 * Every error message names the destination, the temporary and the OS error.
 *
 * Owns: the FILE and both names of an open bv_atomic_file, until bv_atomic_commit or
 * bv_atomic_abort (each always releases it). Strings it returns are malloc'd, owned by the caller.
 * Must not: know about any file format.
 */
#ifndef BV_ATOMIC_FILE_H
#define BV_ATOMIC_FILE_H

#include <stdio.h>

#include "src/common.h"

typedef struct {
    FILE *fp;   /* write here between bv_atomic_open and bv_atomic_commit/abort; NULL when not open */
    char *path; /* destination */
    char *tmp;  /* the temporary file being written */
} bv_atomic_file;

/* Create `<path>.tmp.<pid>` for writing. On failure f is zeroed (committing or aborting it is a
 * no-op) and nothing is left on disk. */
bv_status bv_atomic_open(bv_atomic_file *f, const char *path);

/* Flush, fsync and close the temporary, rename it to the destination, fsync the directory. On a
 * failure before the rename the temporary is removed and the destination is untouched. Always
 * releases f; committing a zeroed (never opened) f returns BV_OK. */
bv_status bv_atomic_commit(bv_atomic_file *f);

/* Close and delete the temporary; the destination is untouched. Releases f. */
void bv_atomic_abort(bv_atomic_file *f);

/* Write n bytes to `path` atomically (open, write, commit). */
bv_status bv_atomic_write_file(const char *path, const void *data, size_t n);

/* For files another library creates and closes itself (HDF5): the temporary name to create,
 * "<path>.tmp.<pid>", malloc'd (caller frees); NULL when out of memory. */
char *bv_atomic_tmp_path(const char *path);

/* fsync `tmp` (already written and closed), rename it to `path`, fsync the directory. On a failure
 * before the rename `tmp` is removed. */
bv_status bv_atomic_commit_tmp(const char *tmp, const char *path);

#endif
