/* tb_events.c - TensorBoard event files: protobuf encoding by hand, TFRecord framing. See
 * tb_events.h. */
#include "src/tb_events.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/crc32c.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tb_events.c assumes a little-endian host (protobuf and TFRecord store little-endian)"
#endif

struct bv_tb_writer {
    FILE *fp;
    char *path;
    int64_t records; /* records written, for messages */
    uint8_t *buf;    /* the event being encoded: grown as needed, kept across events */
    size_t len, cap;
};

/* ---- protobuf wire format: varint (type 0), fixed64 (type 1), length-delimited (type 2),
 * fixed32 (type 5); a key is (field number << 3) | wire type ---- */

enum { WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5 };

static void buf_reserve(bv_tb_writer *w, size_t extra) {
    if (w->cap - w->len >= extra) return;
    size_t cap = w->cap ? w->cap : 256;
    while (cap - w->len < extra) cap *= 2;
    w->buf = bv_xrealloc(w->buf, cap);
    w->cap = cap;
}

static void put_bytes(bv_tb_writer *w, const void *p, size_t n) {
    buf_reserve(w, n);
    if (n) memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(bv_tb_writer *w, uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    put_bytes(w, b, n);
}

static void put_key(bv_tb_writer *w, int field, int wire) { put_varint(w, ((uint64_t)field << 3) | (uint64_t)wire); }

/* Length-delimited: key, length, bytes. */
static void put_len(bv_tb_writer *w, int field, const void *p, size_t n) {
    put_key(w, field, WIRE_LEN);
    put_varint(w, n);
    put_bytes(w, p, n);
}

/* proto3 leaves out a scalar field equal to its default; for floating point protobuf compares the
 * bits, so -0.0 is written and +0.0 is not. */
static void put_double(bv_tb_writer *w, int field, double v) {
    uint64_t bits;
    memcpy(&bits, &v, 8);
    if (!bits) return;
    put_key(w, field, WIRE_I64);
    put_bytes(w, &bits, 8);
}

/* A float in a oneof (Value.simple_value): it has presence, so it is written even when zero. */
static void put_float(bv_tb_writer *w, int field, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    put_key(w, field, WIRE_I32);
    put_bytes(w, &bits, 4);
}

static void put_int64(bv_tb_writer *w, int field, int64_t v) {
    if (!v) return;
    put_key(w, field, WIRE_VARINT);
    put_varint(w, (uint64_t)v); /* negative: ten bytes, two's complement, as protobuf does */
}

/* Field numbers of tensorboard/compat/proto/event.proto and summary.proto. */
enum { EVENT_WALL_TIME = 1, EVENT_STEP = 2, EVENT_FILE_VERSION = 3, EVENT_SUMMARY = 5, EVENT_SESSION_LOG = 7 };
enum { SESSION_LOG_STATUS = 1, SESSION_LOG_START = 1 };
enum { SUMMARY_VALUE = 1 };
enum { VALUE_TAG = 1, VALUE_SIMPLE_VALUE = 2 };

/* Size of an encoded Summary.Value {tag, simple_value}. */
static size_t value_size(const char *tag) {
    size_t t = strlen(tag);
    return (t ? 1 + varint_size(t) + t : 0) + 1 + 4;
}

/* ---- TFRecord framing ---- */

static bv_status write_record(bv_tb_writer *w) {
    uint8_t h[12], c[4];
    uint64_t n = w->len;
    memcpy(h, &n, 8);
    uint32_t lc = bv_crc32c_masked(h, 8), dc = bv_crc32c_masked(w->buf, w->len);
    memcpy(h + 8, &lc, 4);
    memcpy(c, &dc, 4);
    if (fwrite(h, 1, 12, w->fp) != 12 || (w->len && fwrite(w->buf, 1, w->len, w->fp) != w->len) ||
        fwrite(c, 1, 4, w->fp) != 4 || fflush(w->fp) != 0)
        return bv_error_set(BV_ERR_IO, "%s: writing TensorBoard event %lld failed: %s", w->path,
                            (long long)w->records, strerror(errno));
    w->records++;
    return BV_OK;
}

/* ---- files ---- */

double bv_tb_wall_time_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* fsync the directory holding `path`, so the new file's name survives a crash. */
static bv_status sync_parent(const char *path) {
    char *dir = bv_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        slash[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    bv_status st = BV_OK;
    if (fd < 0 || fsync(fd) != 0)
        st = bv_error_set(BV_ERR_IO, "%s: fsync of its directory %s failed: %s", path, dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(dir);
    return st;
}

/* Create `path` exclusively. *exists = the name is taken (EEXIST), so the caller may try another. */
static bv_status create_excl(bv_tb_writer *w, const char *path, int *exists) {
    *exists = 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        *exists = errno == EEXIST;
        return bv_error_set(BV_ERR_IO, "%s: cannot create the TensorBoard event file: %s", path, strerror(errno));
    }
    w->fp = fdopen(fd, "wb");
    if (!w->fp) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: fdopen failed: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return st;
    }
    w->path = bv_xstrdup(path);
    return BV_OK;
}

/* Write the first record {wall_time, file_version} into a freshly created file. */
static bv_status start(bv_tb_writer *w, double wall_time) {
    w->len = 0;
    put_double(w, EVENT_WALL_TIME, wall_time);
    put_len(w, EVENT_FILE_VERSION, BV_TB_FILE_VERSION, strlen(BV_TB_FILE_VERSION));
    BV_TRY(write_record(w));
    return sync_parent(w->path);
}

static void writer_free(bv_tb_writer *w) {
    if (!w) return;
    free(w->path);
    free(w->buf);
    free(w);
}

/* Discard a writer whose file was created but could not be started: close and delete the file. */
static void discard(bv_tb_writer *w) {
    if (w->fp) {
        fclose(w->fp); /* the error being reported is the one that matters */
        unlink(w->path);
    }
    writer_free(w);
}

bv_status bv_tb_open_path(bv_tb_writer **out, const char *path, double wall_time) {
    *out = NULL;
    bv_tb_writer *w = bv_xcalloc(1, sizeof *w);
    int exists;
    bv_status st = create_excl(w, path, &exists);
    if (!st) st = start(w, wall_time);
    if (st) {
        discard(w);
        return st;
    }
    *out = w;
    return BV_OK;
}

bv_status bv_tb_open(bv_tb_writer **out, const char *dir, double wall_time) {
    *out = NULL;
    if (!isfinite(wall_time) || wall_time < 0 || wall_time >= 1e11)
        return bv_error_set(BV_ERR_ARG, "%s: TensorBoard wall time %g is not a time since 1970", dir, wall_time);
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    for (char *p = host; *p; p++)
        if (*p == '/') *p = '_';
    long long secs = (long long)floor(wall_time);
    size_t cap = strlen(dir) + strlen(host) + 64;
    char *path = bv_xmalloc(cap);
    bv_tb_writer *w = bv_xcalloc(1, sizeof *w);
    bv_status st = BV_ERR_IO;
    for (int k = 0; k < 1000; k++) {
        if (k == 0)
            snprintf(path, cap, "%s/events.out.tfevents.%010lld.%s", dir, secs, host);
        else
            snprintf(path, cap, "%s/events.out.tfevents.%010lld.%s.%d", dir, secs, host, k);
        int exists;
        st = create_excl(w, path, &exists);
        if (!st || !exists) break;
    }
    free(path);
    if (!st) st = start(w, wall_time);
    if (st) {
        discard(w);
        return st;
    }
    *out = w;
    return BV_OK;
}

const char *bv_tb_path(const bv_tb_writer *w) { return w->path; }

bv_status bv_tb_write_scalars(bv_tb_writer *w, double wall_time, int64_t step, int n, const char *const *tags,
                              const float *values) {
    BV_ASSERT(w && w->fp, "bv_tb_write_scalars on a closed writer");
    BV_ASSERT(n >= 0, "n = %d", n);
    /* Summary { Value { tag, simple_value } ... }: its size first, for the length prefix. */
    size_t summary = 0;
    for (int i = 0; i < n; i++) {
        size_t v = value_size(tags[i]);
        summary += 1 + varint_size(v) + v;
    }
    w->len = 0;
    put_double(w, EVENT_WALL_TIME, wall_time);
    put_int64(w, EVENT_STEP, step);
    put_key(w, EVENT_SUMMARY, WIRE_LEN); /* a oneof member: written even when empty */
    put_varint(w, summary);
    for (int i = 0; i < n; i++) {
        put_key(w, SUMMARY_VALUE, WIRE_LEN);
        put_varint(w, value_size(tags[i]));
        size_t t = strlen(tags[i]);
        if (t) put_len(w, VALUE_TAG, tags[i], t);
        put_float(w, VALUE_SIMPLE_VALUE, values[i]);
    }
    return write_record(w);
}

bv_status bv_tb_write_scalar(bv_tb_writer *w, double wall_time, int64_t step, const char *tag, float value) {
    return bv_tb_write_scalars(w, wall_time, step, 1, &tag, &value);
}

bv_status bv_tb_write_session_start(bv_tb_writer *w, double wall_time, int64_t step) {
    BV_ASSERT(w && w->fp, "bv_tb_write_session_start on a closed writer");
    w->len = 0;
    put_double(w, EVENT_WALL_TIME, wall_time);
    put_int64(w, EVENT_STEP, step);
    const uint8_t status[2] = {SESSION_LOG_STATUS << 3 | WIRE_VARINT, SESSION_LOG_START};
    put_len(w, EVENT_SESSION_LOG, status, sizeof status);
    return write_record(w);
}

bv_status bv_tb_sync(bv_tb_writer *w) {
    if (fflush(w->fp) != 0 || fsync(fileno(w->fp)) != 0)
        return bv_error_set(BV_ERR_IO, "%s: flushing the TensorBoard event file to disk failed: %s", w->path,
                            strerror(errno));
    return BV_OK;
}

bv_status bv_tb_close(bv_tb_writer *w) {
    if (!w) return BV_OK;
    bv_status st = BV_OK;
    if (w->fp && fclose(w->fp) != 0)
        st = bv_error_set(BV_ERR_IO, "%s: closing the TensorBoard event file failed: %s", w->path, strerror(errno));
    writer_free(w);
    return st;
}
