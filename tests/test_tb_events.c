/* Tests of src/tb_events.h:
 *  - the bytes: the events of tests/gen/gen_tb_events.py (Google's protobuf runtime, a bitwise
 *    CRC-32C) written by bv_tb_* are byte-identical to tests/fixtures/tb_events.bin;
 *  - read back: the file decodes with the TFRecord reader (both CRCs of every record checked) and
 *    a protobuf decoder written here into the events that were written; a flipped byte is caught;
 *  - files: the name events.out.tfevents.<10-digit seconds>.<hostname>, a ".1" suffix when two
 *    writers start in the same second, an existing file never opened, errors naming the path. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/tfrecord.h"
#include "src/tb_events.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("tb_events"); }
static int teardown(void **state) { return bv_test_dir_remove(); }

/* The same list as EVENTS in tests/gen/gen_tb_events.py. */
typedef struct {
    const char *tag;
    float value;
} scalar;
typedef struct {
    double wall;
    int64_t step;
    int n; /* -1: the file_version event; -2: a SessionLog START */
    scalar v[3];
} event;

static char g_long_tag[201];

static const event *events(int *n) {
    memset(g_long_tag, 't', 200);
    static event ev[10];
    const event e[10] = {
        {1700000000.25, 0, -1, {{0}}},
        {1700000001.5, 1, 1, {{"train/loss", 2.5f}}},
        {1700000002.0, 2, 3, {{"train/loss", 1.25f}, {"train/lr", (float)3e-4}, {"train/grad_norm", (float)0.1}}},
        {1700000002.75, 0, 2, {{"train/zero", 0.0f}, {"", -1.5f}}},
        {1700000003.125, ((int64_t)1 << 40) + 3, 2, {{"val/val_l1", (float)-1.5e-8}, {"train/neg_zero", -0.0f}}},
        {0.0, -1, 2, {{g_long_tag, INFINITY}, {"train/\xc3\xa9t\xc3\xa9", -INFINITY}}},
        {1700000004.0, 5, 1, {{"train/nan", NAN}}},
        {1700000005.0, 6, 0, {{0}}},
        {1700000006.5, 4, -2, {{0}}},
        {1700000007.0, 4, 1, {{"train/loss", 0.875f}}},
    };
    memcpy(ev, e, sizeof e);
    *n = 10;
    return ev;
}

static void write_events(const char *path) {
    int n;
    const event *ev = events(&n);
    bv_tb_writer *w;
    if (bv_tb_open_path(&w, path, ev[0].wall)) fail_msg("%s", bv_error_msg());
    for (int i = 1; i < n; i++) {
        if (ev[i].n == -2) {
            if (bv_tb_write_session_start(w, ev[i].wall, ev[i].step)) fail_msg("%s", bv_error_msg());
            continue;
        }
        const char *tags[3];
        float vals[3];
        for (int k = 0; k < ev[i].n; k++) {
            tags[k] = ev[i].v[k].tag;
            vals[k] = ev[i].v[k].value;
        }
        if (bv_tb_write_scalars(w, ev[i].wall, ev[i].step, ev[i].n, tags, vals)) fail_msg("%s", bv_error_msg());
    }
    assert_int_equal(bv_tb_sync(w), BV_OK);
    assert_int_equal(bv_tb_close(w), BV_OK);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long sz = ftell(f);
    assert_true(sz >= 0);
    rewind(f);
    uint8_t *p = malloc((size_t)sz + 1);
    assert_int_equal(fread(p, 1, (size_t)sz, f), (size_t)sz);
    fclose(f);
    *n = (size_t)sz;
    return p;
}

static void test_bytes_match_protobuf(void **state) {
    const char *path = bv_test_path("events.bin");
    write_events(path);
    size_t n_got, n_want;
    uint8_t *got = slurp(path, &n_got), *want = slurp(bv_fixture_path("tb_events.bin"), &n_want);
    size_t n = BV_MIN(n_got, n_want);
    for (size_t i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("first mismatch at byte %zu: got 0x%02x want 0x%02x (tests/fixtures/tb_events.bin, from "
                     "tests/gen/gen_tb_events.py)",
                     i, got[i], want[i]);
    if (n_got != n_want) fail_msg("wrote %zu bytes, the fixture has %zu", n_got, n_want);
    free(got);
    free(want);
}

/* ---- a protobuf decoder, just enough for Event / Summary / Value ---- */

typedef struct {
    const uint8_t *p, *end;
} cursor;

static uint64_t get_varint(cursor *c) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        assert_true(c->p < c->end);
        uint8_t b = *c->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) return v;
    }
    fail_msg("varint longer than 10 bytes");
    return 0;
}

static cursor get_len(cursor *c) {
    uint64_t n = get_varint(c);
    assert_true(n <= (uint64_t)(c->end - c->p));
    cursor s = {c->p, c->p + n};
    c->p += n;
    return s;
}

typedef struct {
    double wall;
    int64_t step;
    char version[32];
    int has_summary, n, session_status;
    char tags[4][256];
    float values[4];
} decoded;

static void decode_value(cursor c, decoded *d) {
    assert_true(d->n < 4);
    int i = d->n++;
    d->tags[i][0] = 0;
    d->values[i] = 0;
    int has_value = 0;
    while (c.p < c.end) {
        uint64_t key = get_varint(&c);
        if (key == (1 << 3 | 2)) {
            cursor s = get_len(&c);
            size_t n = (size_t)(s.end - s.p);
            assert_true(n < 256);
            memcpy(d->tags[i], s.p, n);
            d->tags[i][n] = 0;
        } else if (key == (2 << 3 | 5)) {
            assert_true(c.end - c.p >= 4);
            memcpy(&d->values[i], c.p, 4);
            c.p += 4;
            has_value = 1;
        } else {
            fail_msg("Summary.Value: unexpected key %llu", (unsigned long long)key);
        }
    }
    assert_true(has_value); /* simple_value is a oneof member: always present */
}

static void decode_event(const uint8_t *p, size_t n, decoded *d) {
    memset(d, 0, sizeof *d);
    cursor c = {p, p + n};
    int last_field = 0;
    while (c.p < c.end) {
        uint64_t key = get_varint(&c);
        int field = (int)(key >> 3);
        assert_true(field > last_field); /* fields in number order, each once */
        last_field = field;
        if (key == (1 << 3 | 1)) {
            assert_true(c.end - c.p >= 8);
            memcpy(&d->wall, c.p, 8);
            c.p += 8;
        } else if (key == (2 << 3 | 0)) {
            d->step = (int64_t)get_varint(&c);
        } else if (key == (3 << 3 | 2)) {
            cursor s = get_len(&c);
            assert_true(s.end - s.p < 32);
            memcpy(d->version, s.p, (size_t)(s.end - s.p));
        } else if (key == (7 << 3 | 2)) {
            cursor s = get_len(&c);
            assert_int_equal(get_varint(&s), 1 << 3 | 0);
            d->session_status = (int)get_varint(&s);
            assert_true(s.p == s.end);
        } else if (key == (5 << 3 | 2)) {
            d->has_summary = 1;
            cursor s = get_len(&c);
            while (s.p < s.end) {
                assert_int_equal(get_varint(&s), 1 << 3 | 2);
                decode_value(get_len(&s), d);
            }
        } else {
            fail_msg("Event: unexpected key %llu", (unsigned long long)key);
        }
    }
}

static bool same_float(float a, float b) { return !memcmp(&a, &b, 4) || (isnan(a) && isnan(b)); }

static void test_read_back(void **state) {
    const char *path = bv_test_path("events_rb.bin");
    write_events(path);
    int n;
    const event *ev = events(&n);
    bv_tfr_reader r;
    if (bv_tfr_open(&r, path)) fail_msg("%s", bv_error_msg());
    bv_tfr_buf b = {0};
    bool eof = false;
    int i = 0;
    for (;; i++) {
        if (bv_tfr_next(&r, &b, &eof)) fail_msg("record %d: %s", i, bv_error_msg()); /* checks both CRCs */
        if (eof) break;
        assert_true(i < n);
        decoded d;
        decode_event(b.data, b.len, &d);
        if (memcmp(&d.wall, &ev[i].wall, 8)) fail_msg("event %d: wall_time %.17g, wrote %.17g", i, d.wall, ev[i].wall);
        if (ev[i].n == -1) {
            assert_string_equal(d.version, BV_TB_FILE_VERSION);
            assert_false(d.has_summary);
            assert_int_equal(d.step, 0);
            continue;
        }
        if (ev[i].n == -2) {
            assert_int_equal(d.session_status, 1); /* START */
            assert_int_equal(d.step, ev[i].step);
            assert_false(d.has_summary);
            continue;
        }
        assert_true(d.has_summary);
        assert_int_equal(d.step, ev[i].step);
        assert_int_equal(d.n, ev[i].n);
        for (int k = 0; k < d.n; k++) {
            assert_string_equal(d.tags[k], ev[i].v[k].tag);
            if (!same_float(d.values[k], ev[i].v[k].value))
                fail_msg("event %d value %d: got %.9g want %.9g", i, k, d.values[k], ev[i].v[k].value);
        }
    }
    assert_int_equal(i, n);
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);

    /* a flipped byte inside a record's data is caught by its CRC */
    size_t len;
    uint8_t *bytes = slurp(path, &len);
    bytes[12 + 3] ^= 0x01; /* inside the first record's data */
    const char *bad = bv_test_path("events_bad.bin");
    bv_test_write_bytes(bad, bytes, len);
    free(bytes);
    assert_int_equal(bv_tfr_open(&r, bad), BV_OK);
    assert_int_equal(bv_tfr_next(&r, &b, &eof), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "data CRC mismatch");
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);
}

static void test_file_names(void **state) {
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) strcpy(host, "localhost");
    host[255] = 0;
    const char *dir = bv_test_path("names");
    assert_int_equal(mkdir(dir, 0755), 0);
    bv_tb_writer *a, *b;
    if (bv_tb_open(&a, dir, 1700000123.9)) fail_msg("%s", bv_error_msg());
    if (bv_tb_open(&b, dir, 1700000123.2)) fail_msg("%s", bv_error_msg());
    char want[1024];
    snprintf(want, sizeof want, "%s/events.out.tfevents.1700000123.%s", dir, host);
    assert_string_equal(bv_tb_path(a), want);
    strcat(want, ".1");
    assert_string_equal(bv_tb_path(b), want);
    assert_int_equal(bv_tb_write_scalar(b, 1700000124.0, 3, "train/loss", 0.5f), BV_OK);
    assert_int_equal(bv_tb_close(a), BV_OK);
    assert_int_equal(bv_tb_close(b), BV_OK);
    assert_int_equal(bv_test_count_entries(dir, "tfevents"), 2);
    int64_t count;
    assert_int_equal(bv_tfr_count(want, &count), BV_OK);
    assert_int_equal(count, 2);

    /* small times keep ten digits, as TensorFlow's writer does */
    if (bv_tb_open(&a, dir, 12.5)) fail_msg("%s", bv_error_msg());
    snprintf(want, sizeof want, "%s/events.out.tfevents.0000000012.%s", dir, host);
    assert_string_equal(bv_tb_path(a), want);
    assert_int_equal(bv_tb_close(a), BV_OK);
}

static void test_errors(void **state) {
    bv_tb_writer *w = (bv_tb_writer *)1;
    assert_int_equal(bv_tb_open(&w, "/nonexistent/run", 1700000000.0), BV_ERR_IO);
    assert_null(w);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/run/events.out.tfevents.1700000000.");
    bv_test_expect_in(bv_error_msg(), "No such file or directory");
    assert_int_equal(bv_tb_open(&w, bv_test_dir(), NAN), BV_ERR_ARG);

    /* an existing file is never opened, nor changed */
    const char *path = bv_test_path("taken");
    bv_test_write_bytes(path, "keep", 4);
    assert_int_equal(bv_tb_open_path(&w, path, 1.0), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), path);
    bv_test_expect_in(bv_error_msg(), "File exists");
    size_t n;
    uint8_t *p = slurp(path, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(p, "keep", 4);
    free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_match_protobuf),
        cmocka_unit_test(test_read_back),
        cmocka_unit_test(test_file_names),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
