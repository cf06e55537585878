#include "data/tfrecord.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tfrecord.c assumes a little-endian host"
#endif

static uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}
static uint32_t rd32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- reader ---- */

void bv_tfr_buf_free(bv_tfr_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

bv_status bv_tfr_open_stream(bv_tfr_reader *r, FILE *fp, const char *label) {
    memset(r, 0, sizeof *r);
    if (fseeko(fp, 0, SEEK_END) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: cannot seek (TFRecord input must be a regular file): %s", label,
                                    strerror(errno));
        fclose(fp);
        return st;
    }
    off_t sz = ftello(fp);
    if (sz < 0 || fseeko(fp, 0, SEEK_SET) != 0) {
        bv_status st = bv_error_set(BV_ERR_IO, "%s: cannot measure the file size: %s", label, strerror(errno));
        fclose(fp);
        return st;
    }
    r->path = strdup(label);
    if (!r->path) {
        fclose(fp);
        return bv_error_set(BV_ERR_NOMEM, "%s: out of memory", label);
    }
    r->fp = fp;
    r->file_size = (uint64_t)sz;
    r->max_record = BV_TFR_DEFAULT_MAX_RECORD;
    return BV_OK;
}

bv_status bv_tfr_open(bv_tfr_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    FILE *fp = fopen(path, "rb");
    if (!fp) return bv_error_set(BV_ERR_IO, "%s: cannot open TFRecord file: %s", path, strerror(errno));
    return bv_tfr_open_stream(r, fp, path);
}

void bv_tfr_close(bv_tfr_reader *r) {
    if (r->fp) fclose(r->fp);
    free(r->path);
    memset(r, 0, sizeof *r);
}

/* Read n bytes at the current position; a short read is "truncated" (format) unless ferror. */
static bv_status read_exact(bv_tfr_reader *r, void *dst, size_t n, const char *what) {
    size_t got = n ? fread(dst, 1, n, r->fp) : 0;
    if (got == n) return BV_OK;
    if (ferror(r->fp))
        return bv_error_set(BV_ERR_IO, "%s: record %lld at byte offset %llu: reading the %s failed: %s", r->path,
                            (long long)r->index, (unsigned long long)r->offset, what, strerror(errno));
    return bv_error_set(BV_ERR_FORMAT,
                        "%s: record %lld at byte offset %llu: file truncated in the %s (got %zu of %zu bytes)",
                        r->path, (long long)r->index, (unsigned long long)r->offset, what, got, n);
}

/* Reads and checks the 12-byte header; *len = payload length. *eof at a clean end of file. */
static bv_status read_header(bv_tfr_reader *r, uint64_t *len, bool *eof) {
    *eof = false;
    if (r->offset == r->file_size) {
        *eof = true;
        return BV_OK;
    }
    uint8_t h[12];
    uint64_t left = r->file_size - r->offset;
    if (left < 12)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: record %lld at byte offset %llu: file truncated in the record header (%llu of 12 "
                            "bytes left)",
                            r->path, (long long)r->index, (unsigned long long)r->offset, (unsigned long long)left);
    bv_status st = read_exact(r, h, 12, "record header");
    if (st) return st;
    uint64_t n = rd64(h);
    uint32_t want = rd32(h + 8), got = bv_crc32c_masked(h, 8);
    if (want != got)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: record %lld at byte offset %llu: length CRC mismatch (stored 0x%08x, computed 0x%08x "
                            "over length %llu): corrupt file or not a TFRecord",
                            r->path, (long long)r->index, (unsigned long long)r->offset, want, got,
                            (unsigned long long)n);
    if (n > left - 12 || left - 12 - n < 4)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: record %lld at byte offset %llu: file truncated: the record claims %llu data bytes + "
                            "4 CRC bytes but only %llu bytes follow its header",
                            r->path, (long long)r->index, (unsigned long long)r->offset, (unsigned long long)n,
                            (unsigned long long)(left - 12));
    if (n > r->max_record)
        return bv_error_set(BV_ERR_FORMAT, "%s: record %lld at byte offset %llu: %llu bytes, more than the limit %llu",
                            r->path, (long long)r->index, (unsigned long long)r->offset, (unsigned long long)n,
                            (unsigned long long)r->max_record);
    *len = n;
    return BV_OK;
}

/* Reads the payload (n bytes) into dst and checks the data CRC; advances the reader. */
static bv_status read_payload(bv_tfr_reader *r, uint8_t *dst, uint64_t n) {
    bv_status st = read_exact(r, dst, (size_t)n, "record data");
    if (st) return st;
    uint8_t c[4];
    if ((st = read_exact(r, c, 4, "data CRC"))) return st;
    uint32_t want = rd32(c), got = bv_crc32c_masked(dst, (size_t)n);
    if (want != got)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: record %lld at byte offset %llu: data CRC mismatch (stored 0x%08x, computed 0x%08x "
                            "over %llu bytes): corrupt record",
                            r->path, (long long)r->index, (unsigned long long)r->offset, want, got,
                            (unsigned long long)n);
    r->last_offset = r->offset;
    r->offset += 16 + n;
    r->index++;
    return BV_OK;
}

bv_status bv_tfr_next(bv_tfr_reader *r, bv_tfr_buf *buf, bool *eof) {
    buf->len = 0;
    uint64_t n = 0;
    bv_status st = read_header(r, &n, eof);
    if (st || *eof) return st;
    if (n > SIZE_MAX - 1) return bv_error_set(BV_ERR_NOMEM, "%s: record %lld too large", r->path, (long long)r->index);
    if (buf->cap < n || !buf->data) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < n) cap = cap > SIZE_MAX / 2 ? (size_t)n : cap * 2;
        uint8_t *p = realloc(buf->data, cap);
        if (!p)
            return bv_error_set(BV_ERR_NOMEM, "%s: record %lld at byte offset %llu: cannot allocate %llu bytes",
                                r->path, (long long)r->index, (unsigned long long)r->offset, (unsigned long long)n);
        buf->data = p;
        buf->cap = cap;
    }
    if ((st = read_payload(r, buf->data, n))) return st;
    buf->len = (size_t)n;
    return BV_OK;
}

bv_status bv_tfr_next_into(bv_tfr_reader *r, void *dst, size_t cap, size_t *len, bool *eof) {
    *len = 0;
    uint64_t n = 0;
    bv_status st = read_header(r, &n, eof);
    if (st || *eof) return st;
    if (n > cap) {
        if (fseeko(r->fp, (off_t)r->offset, SEEK_SET) != 0)
            return bv_error_set(BV_ERR_IO, "%s: seek back to byte offset %llu failed: %s", r->path,
                                (unsigned long long)r->offset, strerror(errno));
        return bv_error_set(BV_ERR_ARG,
                            "%s: record %lld at byte offset %llu holds %llu bytes, more than the buffer's %zu", r->path,
                            (long long)r->index, (unsigned long long)r->offset, (unsigned long long)n, cap);
    }
    if ((st = read_payload(r, dst, n))) return st;
    *len = (size_t)n;
    return BV_OK;
}

bv_status bv_tfr_count(const char *path, int64_t *count) {
    *count = 0;
    bv_tfr_reader r;
    bv_status st = bv_tfr_open(&r, path);
    if (st) return st;
    bv_tfr_buf b = {0};
    bool eof = false;
    while (!(st = bv_tfr_next(&r, &b, &eof)) && !eof) (*count)++;
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);
    return st;
}

/* ---- writer ---- */

bv_status bv_tfr_writer_open(bv_tfr_writer *w, const char *path) {
    memset(w, 0, sizeof *w);
    return bv_atomic_open(&w->f, path);
}

bv_status bv_tfr_writer_write(bv_tfr_writer *w, const void *data, size_t n) {
    BV_ASSERT(w->f.fp != NULL, "bv_tfr_writer_write on a closed writer");
    uint8_t h[12], c[4];
    uint64_t n64 = n;
    memcpy(h, &n64, 8);
    uint32_t lc = bv_crc32c_masked(h, 8), dc = bv_crc32c_masked(data, n);
    memcpy(h + 8, &lc, 4);
    memcpy(c, &dc, 4);
    if (fwrite(h, 1, 12, w->f.fp) != 12 || (n && fwrite(data, 1, n, w->f.fp) != n) || fwrite(c, 1, 4, w->f.fp) != 4)
        return bv_error_set(BV_ERR_IO, "%s: writing record %lld at byte offset %llu to %s failed: %s", w->f.path,
                            (long long)w->index, (unsigned long long)w->offset, w->f.tmp, strerror(errno));
    w->index++;
    w->offset += 16 + n64;
    return BV_OK;
}

bv_status bv_tfr_writer_close(bv_tfr_writer *w) {
    bv_status st = bv_atomic_commit(&w->f);
    memset(w, 0, sizeof *w);
    return st;
}

void bv_tfr_writer_abort(bv_tfr_writer *w) {
    bv_atomic_abort(&w->f);
    memset(w, 0, sizeof *w);
}
