/* Tests of the tf.train.Example decoder and encoder: the encoder's bytes equal Python protobuf's
 * (hex strings below, from python3-protobuf 3.21 with tests/gen/feature.proto), encode -> decode
 * round trips of every kind (negative int64, NaN bits, empty lists, binary bytes), protobuf's
 * decoding rules on hand-made wire bytes (unpacked and mixed repeated values, unknown fields of
 * every wire type, merging of repeated sub-messages, last key wins, oneof replacement, missing key
 * or value, storage reuse), and one test per malformed input, each checking the status and that
 * the message names the input and the byte offset. */
#include <math.h>
#include <string.h>

#include "data/example.h"
#include "tests/util/testutil.h"

static size_t unhex(const char *h, uint8_t *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
    return n;
}

/* ---- a tiny protobuf writer for hand-made inputs ---- */
typedef struct {
    uint8_t b[2048];
    size_t n;
} pb;
static void pv(pb *p, uint64_t v) {
    while (v >= 0x80) {
        p->b[p->n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p->b[p->n++] = (uint8_t)v;
}
static void pt(pb *p, int f, int wt) { pv(p, (uint64_t)f << 3 | (uint64_t)wt); }
static void praw(pb *p, const void *d, size_t n) {
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void plen(pb *p, int f, const void *d, size_t n) {
    pt(p, f, 2);
    pv(p, n);
    praw(p, d, n);
}
static void psub(pb *p, int f, const pb *s) { plen(p, f, s->b, s->n); }
static void pf32(pb *p, int f, float x) {
    pt(p, f, 5);
    praw(p, &x, 4);
}
/* entry {key, value} appended to a Features body */
static void pentry(pb *feats, const char *key, const pb *feature) {
    pb e = {0};
    plen(&e, 1, key, strlen(key));
    psub(&e, 2, feature);
    psub(feats, 1, &e);
}
/* wraps a Features body into an Example */
static void pexample(pb *ex, const pb *feats) {
    ex->n = 0;
    psub(ex, 1, feats);
}

static bv_example g_ex;

static void decode_ok(const uint8_t *b, size_t n) {
    bv_status st = bv_example_decode(&g_ex, b, n, "<test>");
    if (st) fail_msg("decode failed: %s", bv_error_msg());
}

static const bv_feature *need(const char *name, bv_feat_kind k, size_t n) {
    const bv_feature *f = bv_example_find(&g_ex, name);
    if (!f) fail_msg("feature '%s' missing", name);
    if (f->kind != k || f->n != n)
        fail_msg("feature '%s': kind %s n %zu, expected %s n %zu", name, bv_feat_kind_name(f->kind), f->n,
                 bv_feat_kind_name(k), n);
    return f;
}

static void test_matches_python(void **state) {
    static const struct {
        const char *hex;
    } py[] = {
        {"0a1c0a1a0a06616374696f6e1210120e0a0c0000c03f000000c0cdcccc3d"},
        {"0a300a2e0a0e73746570732f69735f6669727374121c1a1a0a180100ffffffffffffffffff01ac0280808080808080808001"},
        {"0a140a120a03696d67120b0a090a01780a000a0200ff"},
        {"0a0d0a0b0a05656d70747912021200"},
    };
    uint8_t want[256];
    size_t n, got_n;
    bv_example_builder b = {0};

    float fl[] = {1.5f, -2.0f, 0.1f};
    bv_example_add_floats(&b, "action", 3, fl);
    const uint8_t *got = bv_example_builder_finish(&b, &got_n);
    n = unhex(py[0].hex, want);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, n);

    bv_example_builder_reset(&b);
    int64_t iv[] = {1, 0, -1, 300, INT64_MIN};
    bv_example_add_int64s(&b, "steps/is_first", 5, iv);
    got = bv_example_builder_finish(&b, &got_n);
    n = unhex(py[1].hex, want);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, n);

    bv_example_builder_reset(&b);
    const void *bv[] = {"x", "", "\x00\xff"};
    size_t bl[] = {1, 0, 2};
    bv_example_add_bytes(&b, "img", 3, bv, bl);
    got = bv_example_builder_finish(&b, &got_n);
    n = unhex(py[2].hex, want);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, n);

    bv_example_builder_reset(&b);
    bv_example_add_floats(&b, "empty", 0, NULL);
    got = bv_example_builder_finish(&b, &got_n);
    n = unhex(py[3].hex, want);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, want, n);
    bv_example_builder_free(&b);

    /* and the decoder reads Python's bytes */
    n = unhex(py[1].hex, want);
    decode_ok(want, n);
    const bv_feature *f = need("steps/is_first", BV_FEAT_INT64, 5);
    for (int i = 0; i < 5; i++) assert_true(f->int64s[i] == iv[i]);
    n = unhex(py[2].hex, want);
    decode_ok(want, n);
    f = need("img", BV_FEAT_BYTES, 3);
    assert_int_equal(f->bytes[2].len, 2);
    assert_memory_equal(f->bytes[2].data, "\x00\xff", 2);
    /* Python's empty Example is zero bytes */
    decode_ok(NULL, 0);
    assert_int_equal(g_ex.n_features, 0);
}

static void test_round_trip(void **state) {
    bv_rng r = {11};
    bv_example_builder b = {0};
    float fl[1000];
    for (int i = 0; i < 1000; i++) fl[i] = (float)bv_rng_normal(&r);
    uint32_t nanbits = 0x7fc01234u;
    memcpy(&fl[5], &nanbits, 4);
    fl[6] = -INFINITY;
    fl[7] = -0.0f;
    int64_t iv[] = {INT64_MIN, -1, 0, 1, 127, 128, INT64_MAX};
    uint8_t blob[3000];
    for (size_t i = 0; i < sizeof blob; i++) blob[i] = (uint8_t)bv_rng_u64(&r);
    const void *bv[] = {blob, blob + 1, "", blob + 2000};
    size_t bl[] = {1000, 200, 0, 1000};
    for (int rep = 0; rep < 2; rep++) { /* the second pass reuses builder and example storage */
        bv_example_builder_reset(&b);
        bv_example_add_floats(&b, "steps/action", 1000 - rep * 10, fl);
        bv_example_add_int64s(&b, "steps/is_last", 7, iv);
        bv_example_add_bytes(&b, "steps/observation/image", 4, bv, bl);
        bv_example_add_string(&b, "steps/language_instruction", "put the cup in the sink");
        bv_example_add_floats(&b, "zero_floats", 0, NULL);
        bv_example_add_int64s(&b, "zero_ints", 0, NULL);
        bv_example_add_bytes(&b, "zero_bytes", 0, NULL, NULL);
        bv_example_add_string(&b, "", "empty name");
        size_t n;
        const uint8_t *s = bv_example_builder_finish(&b, &n);
        decode_ok(s, n);
        assert_int_equal(g_ex.n_features, 8);
        assert_string_equal(g_ex.features[0].name, "steps/action"); /* order of appearance */
        const bv_feature *f = need("steps/action", BV_FEAT_FLOAT, 1000 - rep * 10);
        assert_memory_equal(f->floats, fl, 4 * f->n); /* bitwise, NaN payload included */
        f = need("steps/is_last", BV_FEAT_INT64, 7);
        assert_memory_equal(f->int64s, iv, sizeof iv);
        f = need("steps/observation/image", BV_FEAT_BYTES, 4);
        for (int i = 0; i < 4; i++) {
            assert_int_equal(f->bytes[i].len, bl[i]);
            if (bl[i]) assert_memory_equal(f->bytes[i].data, bv[i], bl[i]);
            /* zero copy: views into the serialized buffer */
            if (bl[i]) assert_true(f->bytes[i].data >= s && f->bytes[i].data + bl[i] <= s + n);
        }
        f = need("steps/language_instruction", BV_FEAT_BYTES, 1);
        assert_int_equal(f->bytes[0].len, 23);
        need("zero_floats", BV_FEAT_FLOAT, 0);
        need("zero_ints", BV_FEAT_INT64, 0);
        need("zero_bytes", BV_FEAT_BYTES, 0);
        need("", BV_FEAT_BYTES, 1);
        assert_null(bv_example_find(&g_ex, "steps/actio"));
        assert_null(bv_example_find(&g_ex, "steps/action0"));
        assert_null(bv_example_find(&g_ex, "zzz"));
    }
    bv_example_builder_free(&b);
}

static void test_protobuf_rules(void **state) {
    pb feats = {0}, ex = {0};

    /* unpacked floats and int64s, mixed with packed ones */
    pb fl = {0}, ff = {0};
    pf32(&fl, 1, 1.0f);
    float two[2] = {2.0f, 3.0f};
    plen(&fl, 1, two, 8);
    pf32(&fl, 1, 4.0f);
    psub(&ff, 2, &fl);
    pentry(&feats, "f", &ff);
    pb il = {0}, fi = {0}, packed = {0};
    pt(&il, 1, 0);
    pv(&il, (uint64_t)-5);
    pv(&packed, 7);
    pv(&packed, 1u << 20);
    psub(&il, 1, &packed);
    pt(&il, 1, 0);
    pv(&il, 9);
    psub(&fi, 3, &il);
    pentry(&feats, "i", &fi);

    /* unknown fields of every wire type at every level */
    pb unk = {0};
    pt(&unk, 99, 0);
    pv(&unk, 12345);
    pt(&unk, 98, 1);
    praw(&unk, "12345678", 8);
    plen(&unk, 97, "junk", 4);
    pt(&unk, 96, 5);
    praw(&unk, "1234", 4);
    pb bl = {0}, fb = {0};
    praw(&bl, unk.b, unk.n);
    plen(&bl, 1, "abc", 3);
    praw(&bl, unk.b, unk.n);
    praw(&fb, unk.b, unk.n);
    psub(&fb, 1, &bl);
    praw(&fb, unk.b, unk.n);
    pb e = {0};
    praw(&e, unk.b, unk.n);
    plen(&e, 1, "b", 1);
    praw(&e, unk.b, unk.n);
    psub(&e, 2, &fb);
    psub(&feats, 1, &e);
    praw(&feats, unk.b, unk.n);
    /* a known field with an unexpected wire type is skipped like an unknown one */
    pb wrong = {0}, fw = {0};
    pt(&wrong, 1, 0); /* BytesList.value as a varint */
    pv(&wrong, 3);
    plen(&wrong, 1, "ok", 2);
    psub(&fw, 1, &wrong);
    pentry(&feats, "w", &fw);

    /* the same key twice: the last entry wins */
    pb d1 = {0}, l1 = {0};
    plen(&l1, 1, "first", 5);
    psub(&d1, 1, &l1);
    pentry(&feats, "dup", &d1);
    pb d2 = {0}, l2 = {0};
    plen(&l2, 1, "second", 6);
    psub(&d2, 1, &l2);
    pentry(&feats, "dup", &d2);

    /* a list given twice in one Feature merges; a different kind replaces */
    pb m = {0}, la = {0}, lb = {0};
    pf32(&la, 1, 10.0f);
    pf32(&lb, 1, 11.0f);
    psub(&m, 2, &la);
    psub(&m, 2, &lb);
    pentry(&feats, "merged", &m);
    pb rp = {0}, li = {0};
    psub(&rp, 2, &la);
    pt(&li, 1, 0);
    pv(&li, 42);
    psub(&rp, 3, &li);
    pentry(&feats, "replaced", &rp);

    /* an entry without key, one without value */
    pb nokey = {0}, nk = {0};
    psub(&nk, 2, &fi);
    praw(&nokey, nk.b, nk.n);
    psub(&feats, 1, &nokey);
    pb noval = {0};
    plen(&noval, 1, "novalue", 7);
    psub(&feats, 1, &noval);

    pexample(&ex, &feats);
    /* Example.features given a second time: the maps merge */
    pb feats2 = {0}, s2 = {0}, ls2 = {0};
    plen(&ls2, 1, "z", 1);
    psub(&s2, 1, &ls2);
    pentry(&feats2, "second_map", &s2);
    psub(&ex, 1, &feats2);
    praw(&ex, unk.b, unk.n);

    decode_ok(ex.b, ex.n);
    const bv_feature *f = need("f", BV_FEAT_FLOAT, 4);
    for (int k = 0; k < 4; k++) assert_true(f->floats[k] == (float)(k + 1));
    f = need("i", BV_FEAT_INT64, 4);
    assert_true(f->int64s[0] == -5 && f->int64s[1] == 7 && f->int64s[2] == (1 << 20) && f->int64s[3] == 9);
    f = need("b", BV_FEAT_BYTES, 1);
    assert_memory_equal(f->bytes[0].data, "abc", 3);
    f = need("w", BV_FEAT_BYTES, 1);
    assert_memory_equal(f->bytes[0].data, "ok", 2);
    f = need("dup", BV_FEAT_BYTES, 1);
    assert_int_equal(f->bytes[0].len, 6);
    assert_memory_equal(f->bytes[0].data, "second", 6);
    f = need("merged", BV_FEAT_FLOAT, 2);
    assert_true(f->floats[0] == 10.0f && f->floats[1] == 11.0f);
    f = need("replaced", BV_FEAT_INT64, 1);
    assert_true(f->int64s[0] == 42);
    need("", BV_FEAT_INT64, 4);
    need("novalue", BV_FEAT_NONE, 0);
    need("second_map", BV_FEAT_BYTES, 1);
    assert_int_equal(g_ex.n_features, 10);

    /* storage reuse: a smaller example leaves nothing stale */
    pb small = {0}, sf = {0}, sl = {0};
    pf32(&sl, 1, 5.0f);
    psub(&sf, 2, &sl);
    pentry(&small, "only", &sf);
    pexample(&ex, &small);
    decode_ok(ex.b, ex.n);
    assert_int_equal(g_ex.n_features, 1);
    assert_null(bv_example_find(&g_ex, "f"));
    need("only", BV_FEAT_FLOAT, 1);
}

/* Expects BV_ERR_FORMAT with "<bad>", "at byte <at>" and `frag` in the message, and no features. */
static void expect_bad(const pb *p, size_t at, const char *frag) {
    bv_error_clear();
    bv_status st = bv_example_decode(&g_ex, p->b, p->n, "<bad>");
    const char *msg = bv_error_msg();
    if (getenv("BV_TEST_VERBOSE")) printf("    %s\n", msg);
    if (st != BV_ERR_FORMAT) fail_msg("status %s, expected format error (message: %s)", bv_status_name(st), msg);
    bv_test_expect_in(msg, "<bad>");
    char a[64];
    snprintf(a, sizeof a, "at byte %zu ", at);
    bv_test_expect_in(msg, a);
    bv_test_expect_in(msg, frag);
    assert_int_equal(g_ex.n_features, 0);
}

static void test_malformed(void **state) {
    pb p = {0};
    /* length past the end */
    pt(&p, 1, 2);
    pv(&p, 100);
    praw(&p, "abc", 3);
    expect_bad(&p, 1, "length 100 runs past the end");

    /* varint longer than 10 bytes */
    p.n = 0;
    pt(&p, 9, 0);
    for (int i = 0; i < 11; i++) p.b[p.n++] = 0x80;
    p.b[p.n++] = 0;
    expect_bad(&p, 1, "longer than 10 bytes");

    /* a varint cut by the end */
    p.n = 0;
    pt(&p, 9, 0);
    p.b[p.n++] = 0x80;
    expect_bad(&p, 1, "runs past the end");

    /* field 0, groups, wire type 7, huge tag */
    p.n = 0;
    pt(&p, 0, 2);
    pv(&p, 0);
    expect_bad(&p, 0, "field number 0");
    p.n = 0;
    pt(&p, 5, 3);
    expect_bad(&p, 0, "group");
    p.n = 0;
    pt(&p, 5, 7);
    expect_bad(&p, 0, "wire type");
    p.n = 0;
    pv(&p, (uint64_t)1 << 40);
    expect_bad(&p, 0, "larger than 2^32");

    /* truncated fixed-width unknown field */
    p.n = 0;
    pt(&p, 5, 1);
    praw(&p, "1234", 4);
    expect_bad(&p, 1, "fixed-width value runs past");

    /* nested: packed floats of 5 bytes, a NUL in a name, a bad length inside a BytesList */
    pb feats = {0}, fl = {0}, ff = {0};
    plen(&fl, 1, "12345", 5);
    psub(&ff, 2, &fl);
    pentry(&feats, "a", &ff);
    pexample(&p, &feats);
    /* Example(2) Features-entry(2) key(3) value-tag(2) Feature float_list tag(2): FloatList at 11 */
    expect_bad(&p, 11, "not a multiple of 4");

    feats.n = 0;
    pb e = {0};
    plen(&e, 1, "a\0b", 3);
    psub(&feats, 1, &e);
    pexample(&p, &feats);
    expect_bad(&p, 7, "NUL"); /* the NUL itself */

    feats.n = 0;
    pb bl = {0}, fb = {0};
    pt(&bl, 1, 2);
    pv(&bl, 50);
    psub(&fb, 1, &bl);
    pentry(&feats, "x", &fb);
    pexample(&p, &feats);
    expect_bad(&p, 12, "length 50 runs past the end");

    /* the sub-message claims more than its parent holds, though the whole input is long enough */
    pb q = {0};
    pt(&q, 1, 2);
    pv(&q, 3);
    pt(&q, 1, 2);
    pv(&q, 10);
    praw(&q, "0123456789abcdef", 16);
    expect_bad(&q, 3, "length 10 runs past the end of its enclosing message (1 bytes left)");

    /* a packed int64 list whose last varint is cut by the list end */
    feats.n = 0;
    pb il = {0}, fi = {0};
    uint8_t cut[2] = {0x05, 0x80};
    plen(&il, 1, cut, 2);
    psub(&fi, 3, &il);
    pentry(&feats, "n", &fi);
    pexample(&p, &feats);
    expect_bad(&p, 14, "runs past the end");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_python),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_protobuf_rules),
        cmocka_unit_test(test_malformed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    bv_example_free(&g_ex);
    return rc;
}
