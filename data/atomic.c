#include "data/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

char *bv_atomic_tmp_path(const char *path) {
    size_t n = strlen(path) + 32;
    char *t = malloc(n);
    if (t) snprintf(t, n, "%s.tmp.%ld", path, (long)getpid());
    return t;
}

static int fsync_path(const char *p, int flags) {
    int fd = open(p, flags | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    /* some file systems refuse fsync on directories: not an error for durability we cannot get */
    if (rc != 0 && (errno == EINVAL || errno == EROFS) && (flags & O_DIRECTORY)) rc = 0;
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

bv_status bv_atomic_commit(const char *tmp, const char *path) {
    if (fsync_path(tmp, O_RDONLY) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: fsync of %s failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    if (rename(tmp, path) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: renaming %s to it failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        return st;
    }
    char *d = bv_xstrdup(path);
    int rc = fsync_path(dirname(d), O_RDONLY | O_DIRECTORY);
    int e = errno;
    free(d);
    if (rc != 0) return bv_error_set(BV_ERR_IO, "%s: fsync of its directory failed: %s", path, strerror(e));
    return BV_OK;
}

bv_status bv_atomic_write_file(const char *path, const void *data, size_t n) {
    char *tmp = bv_atomic_tmp_path(path);
    if (!tmp) return bv_error_set(BV_ERR_NOMEM, "%s: out of memory", path);
    bv_status st = BV_OK;
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        st = bv_error_set(BV_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return st;
    }
    if (n && fwrite(data, 1, n, fp) != n) {
        st = bv_error_set(BV_ERR_IO, "%s: writing %s failed: %s", path, tmp, strerror(errno));
        fclose(fp);
        unlink(tmp);
        free(tmp);
        return st;
    }
    if (fclose(fp) != 0) {
        st = bv_error_set(BV_ERR_IO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
        unlink(tmp);
        free(tmp);
        return st;
    }
    st = bv_atomic_commit(tmp, path);
    free(tmp);
    return st;
}
