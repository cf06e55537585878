#define _GNU_SOURCE /* renameat2 (RENAME_EXCHANGE) */
#include "src/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

bv_status bv_atomic_write_text(const char *path, const char *text) {
    bv_atomic_file f;
    bv_status st = bv_atomic_open(&f, path);
    if (st) return st;
    if (fputs(text, f.fp) == EOF || fputc('\n', f.fp) == EOF) {
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

/* ---- directories ---- */

bv_status bv_atomic_dir_make(const char *dir) {
    char p[PATH_MAX];
    if (!dir[0]) return bv_error_set(BV_ERR_ARG, "an empty directory name");
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p) return bv_error_set(BV_ERR_ARG, "%s: path too long", dir);
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char keep = *c;
            *c = 0;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                return bv_error_set(BV_ERR_IO, "%s: cannot create directory %s: %s", dir, p, strerror(errno));
            struct stat sb;
            if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
                return bv_error_set(BV_ERR_IO, "%s: %s exists and is not a directory", dir, p);
            *c = keep;
            if (!keep) break;
        }
    }
    return BV_OK;
}

/* Remove `name` (relative to dirfd) and, for a directory, everything under it, without following
 * symbolic links. 0, or -1 with errno of the first failure. */
static int remove_tree_at(int dirfd, const char *name) {
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        if (errno == ENOTDIR || errno == ELOOP) return unlinkat(dirfd, name, 0) == 0 || errno == ENOENT ? 0 : -1;
        return -1;
    }
    DIR *d = fdopendir(fd);
    if (!d) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    int rc = 0, err = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && remove_tree_at(fd, de->d_name) != 0 && !err) {
            err = errno;
            rc = -1;
        }
    closedir(d);
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT && !err) {
        err = errno;
        rc = -1;
    }
    errno = err;
    return rc;
}

int bv_atomic_dir_remove_tree(const char *dir) { return remove_tree_at(AT_FDCWD, dir); }

static void dir_release(bv_atomic_dir *d) {
    free(d->path);
    free(d->tmp);
    free(d->parent);
    memset(d, 0, sizeof *d);
}

static int fsync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    if (rc != 0 && (errno == EINVAL || errno == EROFS)) rc = 0;
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* "<parent>/.<base>.<kind>.<pid>" */
static char *sibling(const char *parent, const char *base, const char *kind, long pid) {
    size_t n = strlen(parent) + strlen(base) + strlen(kind) + 32;
    char *s = bv_xmalloc(n);
    snprintf(s, n, "%s/.%s.%s.%ld", parent, base, kind, pid);
    return s;
}

/* Delete `.<base>.tmp.<pid>` and `.<base>.old.<pid>` in parent whose process no longer exists (a
 * killed run's). Best effort: what cannot be removed stays for a later run. */
static void clean_stale(const char *parent, const char *base) {
    DIR *dd = opendir(parent);
    if (!dd) return;
    size_t bl = strlen(base);
    struct dirent *de;
    while ((de = readdir(dd))) {
        const char *n = de->d_name;
        if (n[0] != '.' || strncmp(n + 1, base, bl) || n[1 + bl] != '.') continue;
        const char *k = n + 2 + bl;
        if (strncmp(k, "tmp.", 4) && strncmp(k, "old.", 4)) continue;
        const char *num = k + 4;
        char *end;
        errno = 0;
        long pid = strtol(num, &end, 10);
        if (!*num || *end || errno || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
        size_t pl = strlen(parent) + strlen(n) + 2;
        char *p = bv_xmalloc(pl);
        snprintf(p, pl, "%s/%s", parent, n);
        bv_atomic_dir_remove_tree(p);
        free(p);
    }
    closedir(dd);
}

/* Split `path` into its parent and last component, trailing slashes dropped, and symbolic links
 * and "." / ".." resolved (so the temporary lands beside the real directory). */
static bv_status split_dest(const char *path, char **dest, char **parent, char **base) {
    *dest = *parent = *base = NULL;
    char *p = bv_xstrdup(path);
    size_t n = strlen(p);
    while (n > 1 && p[n - 1] == '/') p[--n] = 0;
    struct stat sb;
    const char *last = strrchr(p, '/');
    last = last ? last + 1 : p;
    bool is_link = lstat(p, &sb) == 0 && S_ISLNK(sb.st_mode);
    if (is_link || !strcmp(last, ".") || !strcmp(last, "..")) {
        char *r = realpath(p, NULL);
        if (!r) {
            bv_status st = bv_error_set(BV_ERR_IO, "%s: cannot resolve the path: %s", path, strerror(errno));
            free(p);
            return st;
        }
        free(p);
        p = r;
    }
    if (!strcmp(p, "/") || !p[0]) {
        free(p);
        return bv_error_set(BV_ERR_ARG, "'%s' cannot be an output directory (name a directory to create)", path);
    }
    char *slash = strrchr(p, '/');
    if (!slash) {
        *parent = bv_xstrdup(".");
        *base = bv_xstrdup(p);
    } else {
        *base = bv_xstrdup(slash + 1);
        *parent = slash == p ? bv_xstrdup("/") : strndup(p, (size_t)(slash - p));
        BV_ASSERT(*parent != NULL, "out of memory");
    }
    *dest = p;
    return BV_OK;
}

/* The destination exists as a directory: may it be replaced? */
static bv_status check_existing(const char *dest, const char *parent, const struct stat *sb,
                                const bv_atomic_dir_opts *o) {
    struct stat pb;
    if (stat(parent, &pb) != 0)
        return bv_error_set(BV_ERR_IO, "%s: cannot read its parent directory %s: %s", dest, parent, strerror(errno));
    if (pb.st_dev != sb->st_dev)
        return bv_error_set(BV_ERR_ARG,
                            "%s is a mount point: the output is written beside it and renamed into place, which "
                            "needs one filesystem; give a directory inside it instead",
                            dest);
    DIR *dd = opendir(dest);
    if (!dd) return bv_error_set(BV_ERR_IO, "%s: cannot list: %s", dest, strerror(errno));
    int n = 0;
    bool complete = false;
    char first[256] = "", foreign[256] = "";
    struct dirent *de;
    while ((de = readdir(dd))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (!(o->owned && o->owned(de->d_name))) {
            if (!foreign[0]) snprintf(foreign, sizeof foreign, "%s", de->d_name);
            continue;
        }
        if (!n) snprintf(first, sizeof first, "%s", de->d_name);
        if (o->complete_name && !strcmp(de->d_name, o->complete_name)) complete = true;
        n++;
    }
    closedir(dd);
    if (foreign[0])
        return bv_error_set(BV_ERR_ARG,
                            "%s: holds '%s', which is not part of %s; give a new or empty directory (only a "
                            "directory holding nothing but such output is ever replaced)",
                            dest, foreign, o->what);
    if (n == 0 || o->force) return BV_OK;
    if (complete)
        return bv_error_set(BV_ERR_ARG, "%s: already holds %s (%s and %d more files); use --force to replace it", dest,
                            o->what, o->complete_name, n - 1);
    return bv_error_set(BV_ERR_ARG,
                        "%s: holds files of an earlier run that did not finish (%s and %d more, no %s); use --force "
                        "to replace them",
                        dest, first, n - 1, o->complete_name ? o->complete_name : "complete output");
}

bv_status bv_atomic_dir_open(bv_atomic_dir *d, const char *path, const bv_atomic_dir_opts *o) {
    memset(d, 0, sizeof *d);
    char *base = NULL;
    bv_status st = split_dest(path, &d->path, &d->parent, &base);
    if (st) goto fail;
    if (o->make_parents && (st = bv_atomic_dir_make(d->parent))) goto fail;
    struct stat sb;
    if (stat(d->parent, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        st = bv_error_set(BV_ERR_IO, "%s: its parent directory %s %s", path, d->parent,
                          errno == ENOENT ? "does not exist" : "is not a directory");
        goto fail;
    }
    clean_stale(d->parent, base);
    if (lstat(d->path, &sb) != 0) {
        if (errno != ENOENT) {
            st = bv_error_set(BV_ERR_IO, "%s: %s", path, strerror(errno));
            goto fail;
        }
    } else if (!S_ISDIR(sb.st_mode)) {
        st = bv_error_set(BV_ERR_IO, "%s: exists and is not a directory", path);
        goto fail;
    } else {
        if ((st = check_existing(d->path, d->parent, &sb, o))) goto fail;
        d->exists = true;
    }
    d->tmp = sibling(d->parent, base, "tmp", (long)getpid());
    if (mkdir(d->tmp, 0777) != 0 && (errno != EEXIST || bv_atomic_dir_remove_tree(d->tmp) != 0 || mkdir(d->tmp, 0777) != 0)) {
        st = bv_error_set(BV_ERR_IO, "%s: cannot create the temporary directory %s: %s", path, d->tmp, strerror(errno));
        free(d->tmp);
        d->tmp = NULL;
        goto fail;
    }
    free(base);
    return BV_OK;
fail:
    free(base);
    dir_release(d);
    return st;
}

void bv_atomic_dir_abort(bv_atomic_dir *d) {
    if (d->tmp) bv_atomic_dir_remove_tree(d->tmp);
    dir_release(d);
}

bv_status bv_atomic_dir_commit(bv_atomic_dir *d) {
    if (!d->tmp) {
        dir_release(d);
        return BV_OK;
    }
    bv_status st = BV_OK;
    if (fsync_dir(d->tmp) != 0) {
        st = bv_error_set(BV_ERR_IO, "%s: fsync of %s failed: %s", d->path, d->tmp, strerror(errno));
        goto fail;
    }
    if (d->exists) {
        /* swap, so that the destination is never missing; d->tmp then holds the old output */
        int rc = -1;
#ifdef RENAME_EXCHANGE
        rc = renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->path, RENAME_EXCHANGE);
#else
        errno = EINVAL;
#endif
        if (rc != 0 && errno == ENOENT) { /* the old one vanished meanwhile */
            d->exists = false;
        } else if (rc != 0 && (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP)) {
            char *base = strrchr(d->path, '/');
            base = base ? base + 1 : d->path;
            char *old = sibling(d->parent, base, "old", (long)getpid());
            if (rename(d->path, old) != 0) {
                st = bv_error_set(BV_ERR_IO, "%s: renaming it to %s failed: %s", d->path, old, strerror(errno));
                free(old);
                goto fail;
            }
            if (rename(d->tmp, d->path) != 0) {
                st = bv_error_set(BV_ERR_IO, "%s: renaming %s to it failed: %s", d->path, d->tmp, strerror(errno));
                rename(old, d->path);
                free(old);
                goto fail;
            }
            bv_atomic_dir_remove_tree(old);
            free(old);
        } else if (rc != 0) {
            st = bv_error_set(BV_ERR_IO, "%s: exchanging it with %s failed: %s", d->path, d->tmp, strerror(errno));
            goto fail;
        }
    }
    if (!d->exists && rename(d->tmp, d->path) != 0) {
        if (errno == EEXIST || errno == ENOTEMPTY)
            st = bv_error_set(BV_ERR_IO, "%s: appeared while this run was writing (another run?); the output of this "
                                         "run is discarded",
                              d->path);
        else
            st = bv_error_set(BV_ERR_IO, "%s: renaming %s to it failed: %s", d->path, d->tmp, strerror(errno));
        goto fail;
    }
    bv_atomic_dir_remove_tree(d->tmp); /* the old output after an exchange; nothing otherwise */
    if (fsync_dir(d->parent) != 0) /* complete and in place; only the rename's durability is in doubt */
        st = bv_error_set(BV_ERR_IO, "%s: written, but fsync of %s failed: %s", d->path, d->parent, strerror(errno));
    dir_release(d);
    return st;
fail:
    bv_atomic_dir_abort(d);
    return st;
}

bv_status bv_atomic_copy_file(const char *src, const char *dst) {
    FILE *f = fopen(src, "rb");
    if (!f) return bv_error_set(BV_ERR_IO, "%s: cannot open (%s)", src, strerror(errno));
    bv_atomic_file out;
    bv_status st = bv_atomic_open(&out, dst);
    if (st) {
        fclose(f);
        return st;
    }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        if (fwrite(buf, 1, n, out.fp) != n) {
            int e = errno;
            fclose(f);
            bv_atomic_abort(&out);
            return bv_error_set(BV_ERR_IO, "%s: write failed (%s)", dst, strerror(e));
        }
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        bv_atomic_abort(&out);
        return bv_error_set(BV_ERR_IO, "%s: read failed", src);
    }
    return bv_atomic_commit(&out);
}
