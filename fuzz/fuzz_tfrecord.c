/* libFuzzer target for the TFRecord reader (data/tfrecord.c): the input is a file image read
 * through fmemopen. Every record the reader returns must have passed both CRC checks, lie inside
 * the input and be consistent with the reader's offsets; reading stops at a clean end or at an
 * error whose message names the input. Each accepted record is also decoded as an Example.
 * Build and run: fuzz/build.sh (not part of the CMake build). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/example.h"
#include "data/tfrecord.h"
#include "src/crc32c.h"

static bv_example g_ex;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0; /* fmemopen rejects an empty buffer */
    FILE *fp = fmemopen((void *)data, size, "rb");
    if (!fp) return 0;
    bv_tfr_reader r;
    if (bv_tfr_open_stream(&r, fp, "<fuzz>") != BV_OK) abort();
    r.max_record = 1 << 20;
    bv_tfr_buf b = {0};
    bool eof = false;
    bv_status st;
    uint64_t off = 0;
    while (!(st = bv_tfr_next(&r, &b, &eof)) && !eof) {
        if (r.last_offset != off || off + 16 + b.len > size) abort();
        uint32_t c;
        memcpy(&c, data + off + 12 + b.len, 4);
        if (c != bv_crc32c_masked(b.data, b.len) || memcmp(b.data, data + off + 12, b.len)) abort();
        off += 16 + b.len;
        (void)bv_example_decode(&g_ex, b.data, b.len, "<record>");
    }
    if (st == BV_OK && off != size) abort();
    if (st != BV_OK && strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);
    return 0;
}
