/* Tests of the TFRecord reader/writer and CRC-32C: published CRC-32C vectors, hardware vs table
 * path, round trips (empty records, growable and caller buffers), the real Bridge RLDS file (every
 * CRC of 25 records), and one test per corruption (data CRC, length CRC, truncation in the header,
 * data and footer) checking status, the file name, record index and byte offset in the message.
 * The writer leaves no temporary file behind, and an aborted writer leaves nothing at all. */
#include <string.h>
#include <unistd.h>

#include "data/tfrecord.h"
#include "src/crc32c.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("tfr"); }

static int teardown(void **state) { return bv_test_dir_remove(); }

static void test_crc32c_vectors(void **state) {
    /* RFC 3720 B.4 and the common check value */
    assert_int_equal(bv_crc32c(0, "123456789", 9), 0xE3069283u);
    uint8_t z[32] = {0}, o[32], inc[32];
    memset(o, 0xff, 32);
    for (int i = 0; i < 32; i++) inc[i] = (uint8_t)i;
    assert_int_equal(bv_crc32c(0, z, 32), 0x8A9136AAu);
    assert_int_equal(bv_crc32c(0, o, 32), 0x62A8AB43u);
    assert_int_equal(bv_crc32c(0, inc, 32), 0x46DD794Eu);
    assert_int_equal(bv_crc32c(0, "", 0), 0u);
    /* incremental == one shot; software == dispatched, over odd lengths and alignments */
    bv_rng r = {7};
    uint8_t buf[1100];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)bv_rng_u64(&r);
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n < 1090; n += 1 + n / 3) {
            uint32_t a = bv_crc32c(0, buf + off, n), b = bv_crc32c_sw(0, buf + off, n);
            if (a != b) fail_msg("crc32c offset %zu length %zu: dispatched 0x%08x, software 0x%08x", off, n, a, b);
            uint32_t c = bv_crc32c(bv_crc32c(0, buf + off, n / 2), buf + off + n / 2, n - n / 2);
            if (a != c) fail_msg("crc32c offset %zu length %zu: incremental 0x%08x, one shot 0x%08x", off, n, c, a);
        }
    /* TFRecord's mask of the CRC of an 8-byte zero length, as TensorFlow writes for an empty record */
    uint64_t zero = 0;
    uint32_t c = bv_crc32c(0, &zero, 8);
    assert_int_equal(bv_crc32c_masked(&zero, 8), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

/* Writes records of the given lengths (byte i of record k = k * 31 + i) to name. */
static void write_records(const char *name, int n, const size_t *lens) {
    bv_tfr_writer w;
    assert_int_equal(bv_tfr_writer_open(&w, bv_test_path(name)), BV_OK);
    for (int k = 0; k < n; k++) {
        uint8_t *p = malloc(lens[k] + 1);
        for (size_t i = 0; i < lens[k]; i++) p[i] = (uint8_t)(k * 31 + i);
        assert_int_equal(bv_tfr_writer_write(&w, p, lens[k]), BV_OK);
        free(p);
    }
    /* nothing under the final name until close */
    assert_int_equal(access(bv_test_path(name), F_OK), -1);
    assert_int_equal(bv_tfr_writer_close(&w), BV_OK);
}

static void test_round_trip(void **state) {
    size_t lens[] = {5, 0, 1000, 1, 70000};
    int n = (int)BV_ARRAY_LEN(lens);
    write_records("rt.tfrecord", n, lens);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), NULL), 1); /* no temporary left */

    bv_tfr_reader r;
    assert_int_equal(bv_tfr_open(&r, bv_test_path("rt.tfrecord")), BV_OK);
    bv_tfr_buf b = {0};
    bool eof = false;
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        assert_int_equal(bv_tfr_next(&r, &b, &eof), BV_OK);
        assert_false(eof);
        assert_int_equal(b.len, lens[k]);
        for (size_t i = 0; i < lens[k]; i++)
            if (b.data[i] != (uint8_t)(k * 31 + i)) fail_msg("record %d byte %zu: %d", k, i, b.data[i]);
        assert_int_equal(r.last_offset, off);
        off += 16 + lens[k];
        assert_int_equal(r.index, k + 1);
    }
    assert_int_equal(bv_tfr_next(&r, &b, &eof), BV_OK);
    assert_true(eof);
    assert_int_equal(b.len, 0);
    assert_int_equal(bv_tfr_next(&r, &b, &eof), BV_OK); /* stays at EOF */
    assert_true(eof);
    bv_tfr_close(&r);

    /* caller buffer: too small leaves the reader on the record */
    assert_int_equal(bv_tfr_open(&r, bv_test_path("rt.tfrecord")), BV_OK);
    uint8_t small[4], big[70000];
    size_t len;
    assert_int_equal(bv_tfr_next_into(&r, small, sizeof small, &len, &eof), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "record 0 at byte offset 0 holds 5 bytes");
    assert_int_equal(bv_tfr_next_into(&r, big, sizeof big, &len, &eof), BV_OK);
    assert_int_equal(len, 5);
    assert_int_equal(big[4], 4);
    for (int k = 1; k < n; k++) {
        assert_int_equal(bv_tfr_next_into(&r, big, sizeof big, &len, &eof), BV_OK);
        assert_int_equal(len, lens[k]);
    }
    assert_int_equal(bv_tfr_next_into(&r, big, sizeof big, &len, &eof), BV_OK);
    assert_true(eof);
    bv_tfr_close(&r);
    bv_tfr_buf_free(&b);

    int64_t cnt;
    assert_int_equal(bv_tfr_count(bv_test_path("rt.tfrecord"), &cnt), BV_OK);
    assert_int_equal(cnt, n);

    /* an empty file has no records */
    write_records("empty.tfrecord", 0, NULL);
    assert_int_equal(bv_tfr_count(bv_test_path("empty.tfrecord"), &cnt), BV_OK);
    assert_int_equal(cnt, 0);
}

static void test_writer_abort(void **state) {
    bv_tfr_writer w;
    assert_int_equal(bv_tfr_writer_open(&w, bv_test_path("ab.tfrecord")), BV_OK);
    assert_int_equal(bv_tfr_writer_write(&w, "abc", 3), BV_OK);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), NULL), 1); /* the temporary */
    bv_tfr_writer_abort(&w);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), NULL), 0);
    /* an unwritable destination names the file */
    assert_int_equal(bv_tfr_writer_open(&w, "/nonexistent_dir_bv/x.tfrecord"), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent_dir_bv/x.tfrecord");
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc(*n + 1);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

static void spit(const char *path, const uint8_t *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Reads every record of name; expects failure `want` at record `idx`, with the message naming the
 * file, "record <idx> at byte offset <off>" and `frag`. */
static void expect_bad(const char *name, bv_status want, int idx, uint64_t off, const char *frag) {
    bv_tfr_reader r;
    assert_int_equal(bv_tfr_open(&r, bv_test_path(name)), BV_OK);
    bv_tfr_buf b = {0};
    bool eof = false;
    bv_status st;
    int k = 0;
    while (!(st = bv_tfr_next(&r, &b, &eof)) && !eof) k++;
    const char *msg = bv_error_msg();
    if (getenv("BV_TEST_VERBOSE")) printf("    %s\n", msg);
    if (st != want) fail_msg("%s: status %s after %d records, expected %s", name, bv_status_name(st), k, bv_status_name(want));
    assert_int_equal(k, idx);
    bv_test_expect_in(msg, bv_test_path(name));
    char at[96];
    snprintf(at, sizeof at, "record %d at byte offset %llu", idx, (unsigned long long)off);
    bv_test_expect_in(msg, at);
    bv_test_expect_in(msg, frag);
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);
}

static void test_corruption(void **state) {
    size_t lens[] = {10, 20, 30};
    write_records("good.tfrecord", 3, lens);
    size_t n;
    uint8_t *g = slurp(bv_test_path("good.tfrecord"), &n);
    assert_int_equal(n, 16 * 3 + 60);
    uint64_t off1 = 16 + 10, off2 = off1 + 16 + 20;

    uint8_t *p = malloc(n);
    memcpy(p, g, n);
    p[off1 + 12 + 3] ^= 1; /* a data byte of record 1 */
    spit(bv_test_path("data_crc.tfrecord"), p, n);
    expect_bad("data_crc.tfrecord", BV_ERR_FORMAT, 1, off1, "data CRC mismatch");

    memcpy(p, g, n);
    p[off1 + 12 + 20] ^= 0x80; /* the data CRC itself */
    spit(bv_test_path("data_crc2.tfrecord"), p, n);
    expect_bad("data_crc2.tfrecord", BV_ERR_FORMAT, 1, off1, "data CRC mismatch");

    memcpy(p, g, n);
    p[off2 + 0] = 31; /* length of record 2 (its CRC no longer matches) */
    spit(bv_test_path("len_crc.tfrecord"), p, n);
    expect_bad("len_crc.tfrecord", BV_ERR_FORMAT, 2, off2, "length CRC mismatch");

    memcpy(p, g, n);
    p[off2 + 8] ^= 0xff; /* the length CRC */
    spit(bv_test_path("len_crc2.tfrecord"), p, n);
    expect_bad("len_crc2.tfrecord", BV_ERR_FORMAT, 2, off2, "length CRC mismatch");

    /* truncated inside the header, the data, and the footer of the last record */
    spit(bv_test_path("trunc_hdr.tfrecord"), g, off2 + 7);
    expect_bad("trunc_hdr.tfrecord", BV_ERR_FORMAT, 2, off2, "truncated in the record header (7 of 12");
    spit(bv_test_path("trunc_data.tfrecord"), g, off2 + 12 + 5);
    expect_bad("trunc_data.tfrecord", BV_ERR_FORMAT, 2, off2, "claims 30 data bytes");
    spit(bv_test_path("trunc_foot.tfrecord"), g, n - 1);
    expect_bad("trunc_foot.tfrecord", BV_ERR_FORMAT, 2, off2, "truncated");

    /* a huge claimed length with a valid CRC must not allocate: truncated */
    memcpy(p, g, n);
    uint64_t huge = (uint64_t)1 << 60;
    memcpy(p + off1, &huge, 8);
    uint32_t c = bv_crc32c_masked(p + off1, 8);
    memcpy(p + off1 + 8, &c, 4);
    spit(bv_test_path("huge.tfrecord"), p, n);
    expect_bad("huge.tfrecord", BV_ERR_FORMAT, 1, off1, "claims 1152921504606846976 data bytes");

    /* not a TFRecord at all */
    spit(bv_test_path("text.tfrecord"), (const uint8_t *)"hello, this is not a tfrecord file\n", 35);
    expect_bad("text.tfrecord", BV_ERR_FORMAT, 0, 0, "length CRC mismatch");

    /* missing file */
    bv_tfr_reader r;
    assert_int_equal(bv_tfr_open(&r, bv_test_path("missing.tfrecord")), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), bv_test_path("missing.tfrecord"));
    bv_tfr_close(&r);
    free(p);
    free(g);
}

/* The real RLDS file: 25 records, every CRC valid, and re-writing them reproduces the file. */
static void test_bridge_fixture(void **state) {
    const char *path =
        bv_fixture_path("rlds_bridge_debug/1.0.0/bridge_dataset-train.tfrecord-00000-of-00001");
    int64_t n;
    assert_int_equal(bv_tfr_count(path, &n), BV_OK);
    assert_int_equal(n, 25);

    bv_tfr_reader r;
    bv_tfr_writer w;
    assert_int_equal(bv_tfr_open(&r, path), BV_OK);
    assert_int_equal(bv_tfr_writer_open(&w, bv_test_path("copy.tfrecord")), BV_OK);
    bv_tfr_buf b = {0};
    bool eof;
    while (bv_tfr_next(&r, &b, &eof) == BV_OK && !eof) assert_int_equal(bv_tfr_writer_write(&w, b.data, b.len), BV_OK);
    assert_true(eof);
    assert_int_equal(bv_tfr_writer_close(&w), BV_OK);
    bv_tfr_close(&r);
    bv_tfr_buf_free(&b);
    size_t n1, n2;
    uint8_t *a = slurp(path, &n1), *c = slurp(bv_test_path("copy.tfrecord"), &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, c, n1);
    free(a);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_vectors),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bridge_fixture, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
