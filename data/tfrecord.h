/* tfrecord.h - streaming reader and atomic writer of TFRecord files (CRC-32C: src/crc32c.h).
 *
 * Framing (`../shared/spec/bitvla.md` section 6), all little-endian, per record:
 *     u64 length | u32 masked_crc32c(length bytes) | data[length] | u32 masked_crc32c(data)
 * with mask(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 and CRC-32C (Castagnoli, reflected
 * polynomial 0x82F63B78). The reader verifies both CRCs of every record and checks every length
 * against what is left of the file before allocating; a file that ends inside a record is an error
 * (never a silent EOF). Every error names the file, the record index (0-based) and the byte offset
 * of the record's start, plus what was expected.
 *
 * Status codes: BV_ERR_IO (open/read/seek/write/rename), BV_ERR_FORMAT (bad CRC, truncated record,
 * a record longer than the reader's limit), BV_ERR_ARG (bv_tfr_next_into: record larger than the
 * caller's buffer; the reader stays on that record), BV_ERR_NOMEM.
 *
 * Owns: a reader owns its FILE and path copy until bv_tfr_close(); a bv_tfr_buf owns its bytes
 * (free with bv_tfr_buf_free). A writer owns its temporary file until bv_tfr_writer_close() (which
 * renames it to the destination) or bv_tfr_writer_abort() (which deletes it).
 * Must not: interpret record contents (see data/example.h for tf.train.Example).
 */
#ifndef BV_DATA_TFRECORD_H
#define BV_DATA_TFRECORD_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "src/atomic_file.h"
#include "src/common.h"
#include "src/crc32c.h" /* bv_crc32c, bv_crc32c_masked: the framing's checksums */

/* Default upper bound on one record (the file size is always a bound too). */
#define BV_TFR_DEFAULT_MAX_RECORD ((uint64_t)1 << 31)

typedef struct {
    FILE *fp;
    char *path;
    uint64_t file_size;
    uint64_t offset;     /* byte offset of the next record */
    int64_t index;       /* index of the next record (= records read so far) */
    uint64_t max_record; /* records longer than this are a format error (BV_TFR_DEFAULT_MAX_RECORD) */
    uint64_t last_offset; /* offset of the record last returned */
} bv_tfr_reader;

/* A growable byte buffer; zero-initialise, reuse across records, free with bv_tfr_buf_free. */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} bv_tfr_buf;
void bv_tfr_buf_free(bv_tfr_buf *b);

/* Open `path` for reading. A failed open leaves r zeroed (bv_tfr_close(r) is harmless). */
bv_status bv_tfr_open(bv_tfr_reader *r, const char *path);
/* Read from an already open stream (taken over: closed by bv_tfr_close). `label` names it in
 * messages. The stream must be seekable (its size is measured at open). Used by the fuzzer. */
bv_status bv_tfr_open_stream(bv_tfr_reader *r, FILE *fp, const char *label);
void bv_tfr_close(bv_tfr_reader *r);

/* Read the next record into buf (grown as needed; buf->len = record length). At the clean end of
 * the file returns BV_OK with *eof = true and buf->len = 0. */
bv_status bv_tfr_next(bv_tfr_reader *r, bv_tfr_buf *buf, bool *eof);
/* Same into a caller buffer of `cap` bytes; *len receives the record length. A record longer than
 * cap returns BV_ERR_ARG (message says how many bytes it needs) and leaves the reader on it. */
bv_status bv_tfr_next_into(bv_tfr_reader *r, void *dst, size_t cap, size_t *len, bool *eof);

/* Count the records of a file, verifying every CRC (reads the whole file). */
bv_status bv_tfr_count(const char *path, int64_t *n);

typedef struct {
    bv_atomic_file f; /* f.path: destination; f.tmp: the temporary file being written */
    int64_t index;
    uint64_t offset;
} bv_tfr_writer;

/* Create `path` (written as `<path>.tmp.<pid>` until bv_tfr_writer_close). */
bv_status bv_tfr_writer_open(bv_tfr_writer *w, const char *path);
bv_status bv_tfr_writer_write(bv_tfr_writer *w, const void *data, size_t n);
/* Flush, fsync and rename to the destination. On failure the temporary file is removed. Always
 * releases w. */
bv_status bv_tfr_writer_close(bv_tfr_writer *w);
/* Discard: close and delete the temporary file; the destination is untouched. */
void bv_tfr_writer_abort(bv_tfr_writer *w);

#endif
