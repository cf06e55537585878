/* Tests of the safetensors reader and writer: round trips of every dtype and rank 0..5 (empty
 * tensors, strided sources, metadata), reading what tests/gen/stio.py writes, dtype conversion from
 * unaligned data, and one test per malformed file, each checking the status and that the message
 * names the file and the tensor. Files live in a fresh temporary directory. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/safetensors.h"
#include "src/safetensors_impl.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("st"); }

static int teardown(void **state) { return bv_test_dir_remove(); }

/* Writes u64 `claimed` (or strlen(json) if claimed == UINT64_MAX), the JSON, then data_len bytes
 * (0, 1, 2, ...), and opens the result. */
static bv_status open_raw(const char *fname, const char *json, uint64_t claimed, size_t data_len, bv_st_file *f) {
    /* a claimed length of 8 with a JSON shorter than 8 bytes means: the JSON is 8 bytes with NULs */
    size_t jl = claimed == 8 && strlen(json) < 8 ? 8 : strlen(json);
    uint64_t hl = claimed == UINT64_MAX ? jl : claimed;
    size_t n = 8 + jl + data_len;
    uint8_t *b = malloc(n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(hl >> (8 * i));
    memcpy(b + 8, json, jl);
    for (size_t i = 0; i < data_len; i++) b[8 + jl + i] = (uint8_t)i;
    bv_test_write_bytes(bv_test_path(fname), b, n);
    free(b);
    return bv_st_open(f, bv_test_path(fname));
}

/* Opens a malformed file and checks the status and that the message names the file and each of
 * the (NULL-terminated) fragments. */
static void expect_bad(const char *fname, const char *json, uint64_t claimed, size_t data_len, bv_status want, ...) {
    bv_st_file f;
    bv_error_clear();
    bv_status st = open_raw(fname, json, claimed, data_len, &f);
    const char *msg = bv_error_msg();
    if (getenv("BV_TEST_VERBOSE")) printf("    %s\n", msg); /* to read the messages */
    if (st != want)
        fail_msg("%s: status %s, expected %s (message: %s)", fname, bv_status_name(st), bv_status_name(want), msg);
    bv_test_expect_in(msg, bv_test_path(fname));
    va_list ap;
    va_start(ap, want);
    for (const char *s; (s = va_arg(ap, const char *));) bv_test_expect_in(msg, s);
    va_end(ap);
    /* a failed open leaves f zeroed, so closing it is harmless */
    assert_null(f.entries);
    assert_null(f.map);
    bv_st_close(&f);
}

/* ---- round trips ---- */

static void fill_random(bv_rng *r, uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (uint8_t)bv_rng_u64(r);
}

static void test_round_trip_all_dtypes_and_ranks(void **state) {
    static const int64_t shapes[][BV_MAX_DIMS] = {
        {0}, {7}, {3, 5}, {2, 0, 4}, {2, 3, 1, 5}, {1, 2, 3, 2, 2},
    };
    bv_rng r = {42};
    enum { NT = BV_DTYPE_COUNT * 6 + 2 };
    bv_st_item items[NT];
    char names[NT][48];
    void *bufs[NT];
    int n = 0;
    for (int dt = 0; dt < BV_DTYPE_COUNT; dt++)
        for (int rank = 0; rank <= 5; rank++) {
            bv_tensor t = bv_tensor_make(NULL, (bv_dtype)dt, rank, shapes[rank]);
            size_t nb = bv_tensor_nbytes(&t);
            bufs[n] = malloc(nb ? nb : 1);
            fill_random(&r, bufs[n], nb);
            t.data = bufs[n];
            snprintf(names[n], sizeof names[n], "layer.%s.rank%d", bv_dtype_name((bv_dtype)dt), rank);
            items[n].name = names[n];
            items[n].t = t;
            n++;
        }
    /* a strided source: the transpose of a (4, 3) F32 matrix is written contiguously */
    float m[12];
    for (int i = 0; i < 12; i++) m[i] = (float)i;
    bv_tensor m43 = bv_tensor_make2(m, BV_DTYPE_F32, 4, 3), mt;
    assert_int_equal(bv_tensor_transpose(&m43, 0, 1, &mt), BV_OK);
    assert_false(bv_tensor_is_contiguous(&mt));
    items[n].name = "transposed";
    items[n].t = mt;
    bufs[n++] = NULL;
    /* a name that is not ASCII and needs escaping in JSON */
    uint16_t one = bv_f32_to_bf16(1.0f);
    items[n].name = "w\xc3\xa9ight \"q\"\\";
    items[n].t = bv_tensor_make1(&one, BV_DTYPE_BF16, 1);
    bufs[n++] = NULL;
    const char *meta[] = {"format", "pt", "step", "1200", "empty", "", "unicode \xe2\x9c\x93", "v\"al\n"};
    const char *p = bv_test_path("rt.safetensors");
    assert_int_equal(bv_st_save(p, n, items, 4, meta), BV_OK);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);

    /* layout: header length a multiple of 8, padded with spaces, data right after */
    FILE *fp = fopen(p, "rb");
    uint8_t len8[8];
    assert_int_equal(fread(len8, 1, 8, fp), 8);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | len8[i];
    assert_int_equal(hl % 8, 0);
    char *hdr = malloc(hl);
    assert_int_equal(fread(hdr, 1, hl, fp), hl);
    assert_int_equal(hdr[0], '{');
    size_t last = hl - 1;
    while (hdr[last] == ' ') last--;
    assert_int_equal(hdr[last], '}');
    assert_true(hl - 1 - last < 8);
    free(hdr);
    fclose(fp);

    bv_st_file f;
    assert_int_equal(bv_st_open(&f, p), BV_OK);
    assert_int_equal(f.n, n);
    assert_int_equal((uint64_t)f.map_size, 8 + hl + f.data_size);
    for (int i = 0; i < n; i++) {
        const bv_tensor *t = &items[i].t;
        int k = bv_st_find(&f, items[i].name);
        assert_true(k >= 0);
        assert_int_equal(f.entries[k].dtype, t->dtype);
        assert_int_equal(f.entries[k].ndim, t->ndim);
        for (int d = 0; d < t->ndim; d++) assert_int_equal(f.entries[k].shape[d], t->shape[d]);
        size_t nb = bv_tensor_nbytes(t);
        uint8_t *want = malloc(nb + 1), *got = malloc(nb + 1);
        bv_tensor c = bv_tensor_make(want, t->dtype, t->ndim, t->shape);
        bv_tensor_copy_into(&c, t);
        assert_int_equal(bv_st_read(&f, items[i].name, t->dtype, t->ndim, t->shape, 0, got), BV_OK);
        if (nb) assert_memory_equal(got, want, nb);
        /* the view sees the same bytes */
        bv_tensor v = bv_st_view(&f, k);
        assert_int_equal(bv_tensor_nbytes(&v), nb);
        if (nb) assert_memory_equal(bv_tensor_ptr(&v), want, nb);
        /* numel-only form */
        assert_int_equal(bv_st_read(&f, items[i].name, t->dtype, -1, NULL, bv_tensor_numel(t), got), BV_OK);
        if (nb) assert_memory_equal(got, want, nb);
        free(want);
        free(got);
    }
    /* entries come in file order of data_offsets and tile the data section */
    uint64_t cur = 0;
    for (int i = 0; i < f.n; i++) {
        assert_int_equal(f.entries[i].begin, cur);
        cur = f.entries[i].end;
    }
    assert_int_equal(cur, f.data_size);
    assert_int_equal(f.n_meta, 4);
    for (int i = 0; i < 4; i++) assert_string_equal(bv_st_meta(&f, meta[2 * i]), meta[2 * i + 1]);
    assert_null(bv_st_meta(&f, "missing"));
    assert_int_equal(bv_st_find(&f, "missing"), -1);
    float tr[12];
    assert_int_equal(bv_st_read(&f, "transposed", BV_DTYPE_F32, 2, (int64_t[]){3, 4}, 0, tr), BV_OK);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) assert_true(tr[i * 4 + j] == m[j * 3 + i]);
    bv_st_close(&f);
    for (int i = 0; i < n; i++) free(bufs[i]);
}

static void test_round_trip_empty_file(void **state) {
    const char *p = bv_test_path("none.safetensors");
    assert_int_equal(bv_st_save(p, 0, NULL, 0, NULL), BV_OK);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, p), BV_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(f.n_meta, 0);
    assert_int_equal(f.data_size, 0);
    assert_int_equal(f.map_size % 8, 0);
    bv_st_close(&f);
    /* metadata only */
    const char *meta[] = {"k", "v"};
    assert_int_equal(bv_st_save(p, 0, NULL, 1, meta), BV_OK);
    assert_int_equal(bv_st_open(&f, p), BV_OK);
    assert_string_equal(bv_st_meta(&f, "k"), "v");
    bv_st_close(&f);
}

/* Overwriting an existing file replaces it. */
static void test_save_overwrites(void **state) {
    const char *p = bv_test_path("over.safetensors");
    float a[3] = {1, 2, 3}, b[2] = {4, 5};
    bv_st_item ia = {"a", bv_tensor_make1(a, BV_DTYPE_F32, 3)}, ib = {"b", bv_tensor_make1(b, BV_DTYPE_F32, 2)};
    assert_int_equal(bv_st_save(p, 1, &ia, 0, NULL), BV_OK);
    assert_int_equal(bv_st_save(p, 1, &ib, 0, NULL), BV_OK);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, p), BV_OK);
    assert_int_equal(f.n, 1);
    assert_string_equal(f.entries[0].name, "b");
    bv_st_close(&f);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);
}

/* Reading with conversion, from data that is not aligned for its type. */
static void test_read_convert_unaligned(void **state) {
    uint8_t pad[3] = {1, 2, 3};
    float x[1500];
    uint16_t h[1500];
    bv_rng r = {7};
    bv_rng_fill_f32(&r, x, 1500, -100, 100);
    for (int i = 0; i < 1500; i++) h[i] = bv_f32_to_bf16(x[i]);
    /* "a" (3 bytes) comes first in file order, so "b" starts at offset 3 and "c" at 6003 */
    bv_st_item it[3] = {{"a", bv_tensor_make1(pad, BV_DTYPE_U8, 3)},
                        {"b", bv_tensor_make2(x, BV_DTYPE_F32, 30, 50)},
                        {"c", bv_tensor_make1(h, BV_DTYPE_BF16, 1500)}};
    const char *p = bv_test_path("unaligned.safetensors");
    assert_int_equal(bv_st_save(p, 3, it, 0, NULL), BV_OK);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, p), BV_OK);
    assert_int_equal(f.entries[bv_st_find(&f, "b")].begin, 3);
    double *d = malloc(1500 * sizeof *d);
    assert_int_equal(bv_st_read(&f, "b", BV_DTYPE_F64, 2, (int64_t[]){30, 50}, 0, d), BV_OK);
    for (int i = 0; i < 1500; i++)
        if (d[i] != (double)x[i]) fail_msg("b[%d]: got %.9g want %.9g", i, d[i], (double)x[i]);
    float *g = malloc(1500 * sizeof *g);
    assert_int_equal(bv_st_read(&f, "c", BV_DTYPE_F32, -1, NULL, 1500, g), BV_OK);
    for (int i = 0; i < 1500; i++)
        if (g[i] != bv_bf16_to_f32(h[i])) fail_msg("c[%d]: got %.9g want %.9g", i, g[i], bv_bf16_to_f32(h[i]));
    uint16_t *hb = malloc(1500 * sizeof *hb);
    assert_int_equal(bv_st_read(&f, "b", BV_DTYPE_BF16, -1, NULL, 1500, hb), BV_OK);
    assert_memory_equal(hb, h, 1500 * sizeof *hb);
    int64_t i64[3];
    assert_int_equal(bv_st_read(&f, "a", BV_DTYPE_I64, 1, (int64_t[]){3}, 0, i64), BV_OK);
    assert_true(i64[0] == 1 && i64[1] == 2 && i64[2] == 3);
    free(d), free(g), free(hb);
    bv_st_close(&f);
}

static void test_read_errors(void **state) {
    float x[6] = {0};
    bv_st_item it = {"enc.proj.weight", bv_tensor_make2(x, BV_DTYPE_F32, 2, 3)};
    const char *p = bv_test_path("rd.safetensors");
    assert_int_equal(bv_st_save(p, 1, &it, 0, NULL), BV_OK);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, p), BV_OK);
    float y[6];
    assert_int_equal(bv_st_read(&f, "enc.proj.weight", BV_DTYPE_F32, 2, (int64_t[]){3, 2}, 0, y), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), p);
    bv_test_expect_in(bv_error_msg(), "'enc.proj.weight'");
    bv_test_expect_in(bv_error_msg(), "[2, 3]");
    bv_test_expect_in(bv_error_msg(), "[3, 2]");
    assert_int_equal(bv_st_read(&f, "enc.proj.weight", BV_DTYPE_F32, 1, (int64_t[]){6}, 0, y), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "[6]");
    assert_int_equal(bv_st_read(&f, "enc.proj.weight", BV_DTYPE_F32, -1, NULL, 5, y), BV_ERR_SHAPE);
    bv_test_expect_in(bv_error_msg(), "expected 5");
    bv_test_expect_in(bv_error_msg(), "'enc.proj.weight'");
    assert_int_equal(bv_st_read(&f, "enc.proj.bias", BV_DTYPE_F32, -1, NULL, 6, y), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), p);
    bv_test_expect_in(bv_error_msg(), "'enc.proj.bias'");
    bv_st_close(&f);
}

/* ---- the file written by tests/gen/stio.py ---- */

static void test_read_python_fixture(void **state) {
    const char *p = bv_fixture_path("st_python.safetensors");
    bv_st_file f;
    if (bv_st_open(&f, p) != BV_OK) fail_msg("%s", bv_error_msg());
    assert_int_equal(f.n, 12);
    assert_string_equal(bv_st_meta(&f, "format"), "pt");
    assert_string_equal(bv_st_meta(&f, "generator"), "gen_safetensors.py");
    float v[8];
    double d[8];
    assert_int_equal(bv_st_read(&f, "f32", BV_DTYPE_F32, 2, (int64_t[]){2, 3}, 0, v), BV_OK);
    for (int i = 0; i < 6; i++) assert_true(v[i] == i * 0.25f - 1);
    assert_int_equal(bv_st_read(&f, "f64", BV_DTYPE_F64, 1, (int64_t[]){4}, 0, d), BV_OK);
    for (int i = 0; i < 4; i++) assert_true(d[i] == i / 3.0);
    assert_int_equal(bv_st_read(&f, "bf16", BV_DTYPE_F32, 1, (int64_t[]){5}, 0, v), BV_OK);
    for (int i = 0; i < 5; i++) assert_true(v[i] == i * 0.25f - 1);
    assert_int_equal(bv_st_read(&f, "f16", BV_DTYPE_F64, 3, (int64_t[]){2, 2, 2}, 0, d), BV_OK);
    for (int i = 0; i < 8; i++) assert_true(d[i] == i * 0.25 - 1);
    assert_int_equal(bv_st_read(&f, "rank5", BV_DTYPE_F32, 5, (int64_t[]){1, 2, 1, 2, 2}, 0, v), BV_OK);
    for (int i = 0; i < 8; i++) assert_true(v[i] == i * 0.25f - 1);
    int8_t i8[7];
    assert_int_equal(bv_st_read(&f, "i8", BV_DTYPE_I8, 1, (int64_t[]){7}, 0, i8), BV_OK);
    for (int i = 0; i < 7; i++) assert_int_equal(i8[i], i - 3);
    uint8_t u8[9];
    assert_int_equal(bv_st_read(&f, "u8", BV_DTYPE_U8, 2, (int64_t[]){3, 3}, 0, u8), BV_OK);
    for (int i = 0; i < 9; i++) assert_int_equal(u8[i], i * 7 % 256);
    int32_t i32[3];
    assert_int_equal(bv_st_read(&f, "i32", BV_DTYPE_I32, 2, (int64_t[]){1, 3}, 0, i32), BV_OK);
    for (int i = 0; i < 3; i++) assert_int_equal(i32[i], i * 1000 - 2000);
    int64_t i64[2];
    assert_int_equal(bv_st_read(&f, "i64", BV_DTYPE_I64, 1, (int64_t[]){2}, 0, i64), BV_OK);
    assert_true(i64[0] == 0 && i64[1] == (int64_t)1 << 40);
    assert_int_equal(bv_st_read(&f, "scalar", BV_DTYPE_F64, 0, NULL, 0, d), BV_OK);
    assert_true(d[0] == 2.5);
    assert_int_equal(bv_st_read(&f, "empty", BV_DTYPE_F32, 2, (int64_t[]){0, 3}, 0, v), BV_OK);
    assert_int_equal(bv_st_read(&f, "mask", BV_DTYPE_U8, 1, (int64_t[]){3}, 0, u8), BV_OK);
    assert_true(u8[0] == 1 && u8[1] == 0 && u8[2] == 1);
    bv_st_close(&f);
}

/* ---- malformed files: one test per case ---- */

static const char *T = "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";

static void test_bad_truncated_length(void **state) {
    uint8_t b[5] = {8, 0, 0, 0, 0};
    bv_test_write_bytes(bv_test_path("short.safetensors"), b, 5);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, bv_test_path("short.safetensors")), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), bv_test_path("short.safetensors"));
    bv_test_expect_in(bv_error_msg(), "5 bytes");
    bv_test_write_bytes(bv_test_path("zero.safetensors"), b, 0);
    assert_int_equal(bv_st_open(&f, bv_test_path("zero.safetensors")), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), bv_test_path("zero.safetensors"));
}

static void test_bad_header_longer_than_file(void **state) {
    expect_bad("hlong.safetensors", T, 1000, 24, BV_ERR_FORMAT, "1000", NULL);
}

static void test_bad_header_over_limit(void **state) {
    expect_bad("h200m.safetensors", T, 200000000, 24, BV_ERR_FORMAT, "200000000", "limit", NULL);
    expect_bad("hhuge.safetensors", T, UINT64_MAX - 1, 24, BV_ERR_FORMAT, "limit", NULL);
}

static void test_bad_json(void **state) {
    expect_bad("json.safetensors", "{\"a.weight\": {\"dtype\": \"F32\",\n \"shape\": [2, 3}}", UINT64_MAX, 24,
               BV_ERR_FORMAT, "not valid JSON", "line 2", "column", NULL);
    expect_bad("json2.safetensors", "[1, 2]", UINT64_MAX, 0, BV_ERR_FORMAT, "expected a JSON object", NULL);
    /* padding must be spaces (JSON whitespace), not NUL bytes */
    expect_bad("json3.safetensors", "{}\0\0\0\0\0\0", 8, 0, BV_ERR_FORMAT, "not valid JSON", "NUL", NULL);
}

static void test_bad_entry_not_object(void **state) {
    expect_bad("entry.safetensors", "{\"a.weight\": [0, 24]}", UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'",
               "JSON array", NULL);
}

static void test_bad_missing_fields(void **state) {
    expect_bad("nooff.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", UINT64_MAX, 24,
               BV_ERR_FORMAT, "'a.weight'", "missing \"data_offsets\"", NULL);
    expect_bad("nodt.safetensors", "{\"a.weight\":{\"shape\":[2,3],\"data_offsets\":[0,24]}}", UINT64_MAX, 24,
               BV_ERR_FORMAT, "'a.weight'", "missing \"dtype\"", NULL);
    expect_bad("noshape.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"data_offsets\":[0,24]}}", UINT64_MAX, 24,
               BV_ERR_FORMAT, "'a.weight'", "missing \"shape\"", NULL);
    expect_bad("off3.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,12,24]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "array of 3", NULL);
    expect_bad("offneg.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[-4,20]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "data_offsets[0] is -4", NULL);
    expect_bad("offrev.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[24,0]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "end before", NULL);
}

static void test_bad_dtype(void **state) {
    expect_bad("dtype.safetensors", "{\"a.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,3],\"data_offsets\":[0,6]}}",
               UINT64_MAX, 6, BV_ERR_UNSUPPORTED, "'a.weight'", "F8_E4M3", NULL);
    expect_bad("dtype2.safetensors", "{\"a.weight\":{\"dtype\":4,\"shape\":[2,3],\"data_offsets\":[0,24]}}", UINT64_MAX,
               24, BV_ERR_FORMAT, "'a.weight'", "\"dtype\" is 4", NULL);
}

static void test_bad_shape(void **state) {
    expect_bad("neg.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[-2,3],\"data_offsets\":[0,24]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "shape[0] is -2", NULL);
    expect_bad("real.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3.5],\"data_offsets\":[0,24]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "shape[1] is 3.5", NULL);
    expect_bad("str.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[\"2\",3],\"data_offsets\":[0,24]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "shape[0] is the string", NULL);
    expect_bad("shobj.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":6,\"data_offsets\":[0,24]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "'a.weight'", "\"shape\" is 6", NULL);
    expect_bad("rank6.safetensors",
               "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[1,1,1,2,3,1],\"data_offsets\":[0,24]}}", UINT64_MAX, 24,
               BV_ERR_UNSUPPORTED, "'a.weight'", "rank 6", NULL);
    /* 2^62 * 2^62 elements: the product overflows and must not wrap to a small size */
    expect_bad("ovf.safetensors",
               "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904,0],"
               "\"data_offsets\":[0,0]}}",
               UINT64_MAX, 0, BV_ERR_FORMAT, "'a.weight'", "overflows", NULL);
    expect_bad("ovf2.safetensors",
               "{\"a.weight\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,0]}}",
               UINT64_MAX, 0, BV_ERR_FORMAT, "'a.weight'", "overflows", NULL);
}

static void test_bad_size_mismatch(void **state) {
    expect_bad("size.safetensors", "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,10]}}",
               UINT64_MAX, 10, BV_ERR_FORMAT, "tensor 'a.weight': data_offsets [0, 10] hold 10 bytes, but F32 [2, 3] needs 24",
               NULL);
}

static void test_bad_overlap(void **state) {
    expect_bad("overlap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               UINT64_MAX, 12, BV_ERR_FORMAT, "tensor 'b'", "overlap tensor 'a'", NULL);
    /* the same offsets twice */
    expect_bad("overlap2.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
               UINT64_MAX, 8, BV_ERR_FORMAT, "tensor 'b'", "overlap tensor 'a'", NULL);
}

static void test_bad_gap(void **state) {
    expect_bad("gap.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
               UINT64_MAX, 20, BV_ERR_FORMAT, "tensor 'b'", "gap of 4 bytes", "'a'", NULL);
    expect_bad("gap0.safetensors", "{\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", UINT64_MAX, 12,
               BV_ERR_FORMAT, "tensor 'b'", "begin at 0", NULL);
    /* unused bytes after the last tensor */
    expect_bad("tail.safetensors", T, UINT64_MAX, 30, BV_ERR_FORMAT, "tensor 'a.weight'", "6 unused", NULL);
    expect_bad("tail0.safetensors", "{}", UINT64_MAX, 3, BV_ERR_FORMAT, "no tensors", NULL);
}

static void test_bad_offsets_beyond_file(void **state) {
    expect_bad("beyond.safetensors", T, UINT64_MAX, 20, BV_ERR_FORMAT, "tensor 'a.weight'", "[0, 24]",
               "past the end", NULL);
    /* an offset near 2^63: begin + size must not wrap */
    expect_bad("beyond2.safetensors",
               "{\"a.weight\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[9223372036854775800,"
               "9223372036854775804]}}",
               UINT64_MAX, 4, BV_ERR_FORMAT, "tensor 'a.weight'", "past the end", NULL);
}

static void test_bad_duplicate_keys(void **state) {
    expect_bad("dup.safetensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               UINT64_MAX, 8, BV_ERR_FORMAT, "'a'", "twice", NULL);
    /* a long name (jansson only quotes tokens up to 20 bytes itself) with an escaped quote */
    expect_bad("dup2.safetensors",
               "{\"model.layers.17.self_attn.q_\\\"proj.weight\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\n  \"model.layers.17.self_attn.q_\\\"proj.weight\" :{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
               UINT64_MAX, 8, BV_ERR_FORMAT, "'model.layers.17.self_attn.q_\\\"proj.weight'", "line 2", NULL);
}

static void test_bad_metadata(void **state) {
    expect_bad("meta.safetensors",
               "{\"__metadata__\":{\"format\":\"pt\",\"epoch\":3},"
               "\"a.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}",
               UINT64_MAX, 24, BV_ERR_FORMAT, "__metadata__ key 'epoch'", "is 3", NULL);
    expect_bad("meta2.safetensors", "{\"__metadata__\":[\"pt\"]}", UINT64_MAX, 0, BV_ERR_FORMAT, "\"__metadata__\"",
               "JSON array", NULL);
}

static void test_open_io_errors(void **state) {
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, bv_test_path("does-not-exist.safetensors")), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), bv_test_path("does-not-exist.safetensors"));
    bv_test_expect_in(bv_error_msg(), strerror(ENOENT));
    assert_int_equal(bv_st_open(&f, bv_test_dir()), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "not a regular file");
}

/* The buffer entry point used by the fuzzer behaves like bv_st_open. */
static void test_parse_buffer(void **state) {
    float x[2] = {1, 2};
    bv_st_item it = {"x", bv_tensor_make1(x, BV_DTYPE_F32, 2)};
    const char *p = bv_test_path("buf.safetensors");
    assert_int_equal(bv_st_save(p, 1, &it, 0, NULL), BV_OK);
    FILE *fp = fopen(p, "rb");
    uint8_t b[256];
    size_t n = fread(b, 1, sizeof b, fp);
    fclose(fp);
    bv_st_file f;
    assert_int_equal(bv_st_parse_buffer(&f, "<mem>", b, n), BV_OK);
    assert_null(f.map);
    assert_int_equal(f.n, 1);
    assert_ptr_equal(f.data, b + n - 8);
    bv_st_close(&f);
    assert_int_equal(bv_st_parse_buffer(&f, "<mem>", b, n - 1), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "<mem>: tensor 'x'");
    assert_int_equal(bv_st_parse_buffer(&f, "<mem>", NULL, 0), BV_ERR_FORMAT);
}

/* ---- writer failures leave nothing behind and the destination untouched ---- */

static void test_save_failures(void **state) {
    float x[2] = {1, 2};
    bv_st_item it[2] = {{"x", bv_tensor_make1(x, BV_DTYPE_F32, 2)}, {"x", bv_tensor_make1(x, BV_DTYPE_F32, 1)}};
    /* directory does not exist */
    const char *p = bv_test_path("no/such/dir/out.safetensors");
    assert_int_equal(bv_st_save(p, 1, it, 0, NULL), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), p);
    bv_test_expect_in(bv_error_msg(), strerror(ENOENT));
    /* destination is a directory: the rename fails, the temporary is removed */
    const char *dp = bv_test_path("isdir.safetensors");
    assert_int_equal(mkdir(dp, 0755), 0);
    assert_int_equal(bv_st_save(dp, 1, it, 0, NULL), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), dp);
    bv_test_expect_in(bv_error_msg(), "renam");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);
    struct stat sb;
    assert_int_equal(stat(dp, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    /* invalid arguments: an existing destination stays as it was */
    const char *keep = bv_test_path("keep.safetensors");
    assert_int_equal(bv_st_save(keep, 1, it, 0, NULL), BV_OK);
    assert_int_equal(bv_st_save(keep, 2, it, 0, NULL), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "'x' given twice");
    bv_st_item md = {"__metadata__", bv_tensor_make1(x, BV_DTYPE_F32, 2)};
    assert_int_equal(bv_st_save(keep, 1, &md, 0, NULL), BV_ERR_ARG);
    const char *meta[] = {"k", "1", "k", "2"};
    assert_int_equal(bv_st_save(keep, 1, it, 2, meta), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "'k' given twice");
    bv_st_item bad = {"bad\xff", bv_tensor_make1(x, BV_DTYPE_F32, 2)};
    assert_int_equal(bv_st_save(keep, 1, &bad, 0, NULL), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "UTF-8");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);
    bv_st_file f;
    assert_int_equal(bv_st_open(&f, keep), BV_OK);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.entries[0].shape[0], 2);
    bv_st_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_all_dtypes_and_ranks),
        cmocka_unit_test(test_round_trip_empty_file),
        cmocka_unit_test(test_save_overwrites),
        cmocka_unit_test(test_read_convert_unaligned),
        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_read_python_fixture),
        cmocka_unit_test(test_bad_truncated_length),
        cmocka_unit_test(test_bad_header_longer_than_file),
        cmocka_unit_test(test_bad_header_over_limit),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_entry_not_object),
        cmocka_unit_test(test_bad_missing_fields),
        cmocka_unit_test(test_bad_dtype),
        cmocka_unit_test(test_bad_shape),
        cmocka_unit_test(test_bad_size_mismatch),
        cmocka_unit_test(test_bad_overlap),
        cmocka_unit_test(test_bad_gap),
        cmocka_unit_test(test_bad_offsets_beyond_file),
        cmocka_unit_test(test_bad_duplicate_keys),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_open_io_errors),
        cmocka_unit_test(test_parse_buffer),
        cmocka_unit_test(test_save_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
