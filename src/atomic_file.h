/* atomic_file.h - write a file, or a whole directory, so that it appears whole or not at all.
 *
 * Files: every file the project writes (safetensors checkpoints and their index, tokenizer.json,
 * TFRecords, HDF5 shards, dataset statistics, manifests) goes through here: it is written under a
 * temporary name beside its destination, `<path>.tmp.<pid>`, then flushed, fsynced and renamed
 * over the destination, and the directory is fsynced. A killed writer therefore leaves at most a
 * `*.tmp.*` file, never a destination that looks complete; a failed one removes its temporary.
 *
 * Directories (bv_atomic_dir_*): an output made of several files (a shard directory, an RLDS
 * dataset) is written into a temporary directory beside its destination, `<parent>/.<name>.tmp.<pid>`
 * (same filesystem), which is renamed onto the destination in one step when complete. An existing
 * destination is swapped with it atomically (renameat2 RENAME_EXCHANGE; where the filesystem lacks
 * it, renamed aside to `.<name>.old.<pid>` first) and deleted only after the new one is in place.
 * A failed writer removes its temporary directory; a killed one leaves it, and the next
 * bv_atomic_dir_open for the same destination deletes every `.<name>.tmp.<pid>` and
 * `.<name>.old.<pid>` whose process is gone.
 *
 * Every error message names the destination, the temporary and the OS error.
 *
 * Owns: the FILE and both names of an open bv_atomic_file, until bv_atomic_commit or
 * bv_atomic_abort (each always releases it); the names of a bv_atomic_dir until
 * bv_atomic_dir_commit or bv_atomic_dir_abort. Strings it returns are malloc'd, owned by the caller.
 * Must not: know about any file format.
 */
#ifndef BV_ATOMIC_FILE_H
#define BV_ATOMIC_FILE_H

#include <stdbool.h>
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
/* Write the NUL-terminated `text` and a final newline to `path` atomically (a JSON document). */
bv_status bv_atomic_write_text(const char *path, const char *text);
/* Copy the file `src` to `dst` atomically. Errors name the file that failed. */
bv_status bv_atomic_copy_file(const char *src, const char *dst);

/* For files another library creates and closes itself (HDF5): the temporary name to create,
 * "<path>.tmp.<pid>", malloc'd (caller frees); NULL when out of memory. */
char *bv_atomic_tmp_path(const char *path);

/* fsync `tmp` (already written and closed), rename it to `path`, fsync the directory. On a failure
 * before the rename `tmp` is removed. */
bv_status bv_atomic_commit_tmp(const char *tmp, const char *path);

/* ---- directories ---- */

/* mkdir -p: create dir and its missing parents. An existing directory is fine; an existing
 * non-directory is BV_ERR_IO naming it. */
bv_status bv_atomic_dir_make(const char *dir);

/* Delete dir and everything under it (symbolic links are removed, not followed). 0, or -1 with
 * errno set by the first removal that failed (the rest is still attempted). */
int bv_atomic_dir_remove_tree(const char *dir);

typedef struct {
    bool force;                      /* replace a destination that already holds output */
    bool make_parents;               /* create missing parent directories (else the parent must exist) */
    bool (*owned)(const char *name); /* the names this writer produces, stale temporaries of
                                      * older versions included; a destination holding any other
                                      * name is never replaced (NULL: every name counts as foreign) */
    const char *complete_name;       /* the file that marks a complete output, e.g. "manifest.json" */
    const char *what;                /* for messages, e.g. "a converted dataset" */
} bv_atomic_dir_opts;

typedef struct {
    char *path;   /* the destination, symbolic links resolved */
    char *tmp;    /* write everything here: <parent>/.<name>.tmp.<pid> */
    char *parent; /* the destination's parent directory */
    bool exists;  /* the destination existed at open (it is replaced at commit) */
} bv_atomic_dir;

/* Prepare to write the directory `path`: delete stale temporaries of killed runs (same
 * destination, process gone), check the destination and create the temporary directory d->tmp.
 * The destination may be missing, an empty directory, or (with o->force) a directory holding only
 * names o->owned accepts; anything else is BV_ERR_ARG (BV_ERR_IO for a non-directory or an OS
 * error) naming the destination and the offending entry. A destination that is a mount point
 * cannot be replaced by a rename and is refused. Nothing is changed on failure (d is zeroed). */
bv_status bv_atomic_dir_open(bv_atomic_dir *d, const char *path, const bv_atomic_dir_opts *o);

/* Put d->tmp in place of the destination in one step, delete the old destination (if any), fsync
 * the parent. On failure the destination is as before and the temporary is removed. Always
 * releases d. */
bv_status bv_atomic_dir_commit(bv_atomic_dir *d);

/* Delete the temporary directory; the destination is untouched. Releases d; harmless on a zeroed d. */
void bv_atomic_dir_abort(bv_atomic_dir *d);

#endif
