#include "src/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

char *bv_atomic_tmp_path(const char *path) {
    size_t n = strlen(path) + 32;
    char *t = malloc(n);
    if (t) snprintf(t, n, "%s.tmp.%ld", path, (long)getpid());
    return t;
}

/* fsync the directory holding `path`, so that the rename itself is durable. Some file systems
 * refuse fsync on a directory (EINVAL, EROFS): durability we cannot get is not an error. */
static int fsync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char dir[4096];
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == path)
        snprintf(dir, sizeof dir, "/");
    else
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc != 0 && (errno == EINVAL || errno == EROFS)) rc = 0;
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* The temporary is complete, durable and closed: move it into place. */
static bv_status rename_into_place(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: renaming %s to it failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    if (fsync_parent_dir(path) != 0) /* the file is complete and in place; only the rename's durability is in doubt */
        return bv_error_set(BV_ERR_IO, "%s: written, but fsync of its directory failed: %s", path, strerror(errno));
    return BV_OK;
}

static void release(bv_atomic_file *f) {
    free(f->path);
    free(f->tmp);
    memset(f, 0, sizeof *f);
}

bv_status bv_atomic_open(bv_atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    f->tmp = bv_atomic_tmp_path(path);
    if (!f->path || !f->tmp) {
        release(f);
        return bv_error_set(BV_ERR_NOMEM, "%s: out of memory", path);
    }
    int fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: cannot create temporary file %s: %s", path, f->tmp, strerror(errno));
        release(f);
        return st;
    }
    f->fp = fdopen(fd, "wb");
    if (!f->fp) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: fdopen of %s failed: %s", path, f->tmp, strerror(errno));
        close(fd);
        unlink(f->tmp);
        release(f);
        return st;
    }
    return BV_OK;
}

bv_status bv_atomic_commit(bv_atomic_file *f) {
    if (!f->fp) {
        release(f);
        return BV_OK;
    }
    bv_status st = BV_OK;
    if (fflush(f->fp) != 0)
        st = bv_error_set(BV_ERR_IO, "%s: flushing %s failed: %s", f->path, f->tmp, strerror(errno));
    else if (fsync(fileno(f->fp)) != 0)
        st = bv_error_set(BV_ERR_IO, "%s: fsync of %s failed: %s", f->path, f->tmp, strerror(errno));
    if (fclose(f->fp) != 0 && !st)
        st = bv_error_set(BV_ERR_IO, "%s: closing %s failed: %s", f->path, f->tmp, strerror(errno));
    f->fp = NULL;
    if (st)
        unlink(f->tmp);
    else
        st = rename_into_place(f->tmp, f->path);
    release(f);
    return st;
}

void bv_atomic_abort(bv_atomic_file *f) {
    if (f->fp) {
        fclose(f->fp);
        unlink(f->tmp);
    }
    release(f);
}

bv_status bv_atomic_write_file(const char *path, const void *data, size_t n) {
    bv_atomic_file f;
    bv_status st = bv_atomic_open(&f, path);
    if (st) return st;
    if (n && fwrite(data, 1, n, f.fp) != n) {
        st = bv_error_set(BV_ERR_IO, "%s: writing %s failed: %s", path, f.tmp, strerror(errno));
        bv_atomic_abort(&f);
        return st;
    }
    return bv_atomic_commit(&f);
}

bv_status bv_atomic_commit_tmp(const char *tmp, const char *path) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: fsync of %s failed: %s", path, tmp, strerror(errno));
        if (fd >= 0) close(fd);
        unlink(tmp);
        return st;
    }
    close(fd);
    return rename_into_place(tmp, path);
}
