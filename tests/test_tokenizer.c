/* Tests of the tokenizer on small handmade tokenizer.json files: BPE merge order (short-word and
 * long-word paths against a plain reference BPE), ignore_merges, added tokens (leftmost-longest,
 * lstrip/rstrip, text that contains special-token text), decoding (lossy UTF-8), the post-processor
 * template, BitVLA's edits, the chat template, the action prompt, error messages for bad input and
 * bad files, save/load round trips and tiny-tokenizer training. Parity with the real Llama-3
 * tokenizer is tests/tokenizer/check_llama3.sh. */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/tokenizer.h"
#include "tests/util/testutil.h"

/* ---- building small tokenizer.json texts ---- */

static void sb_printf(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (*len + (size_t)n + 1 > *cap) {
        *cap = (*len + (size_t)n + 1) * 2;
        *buf = realloc(*buf, *cap);
    }
    vsnprintf(*buf + *len, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    *len += (size_t)n;
}

/* GPT-2's byte -> code point map, written out independently of the library */
static unsigned byte_cp(int b) {
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) return (unsigned)b;
    int n = 0;
    for (int x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
    return 256u + (unsigned)n;
}

/* JSON-escaped byte-level form of raw bytes s */
static void bl_json(char **buf, size_t *len, size_t *cap, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned cp = byte_cp(*p);
        if (cp == '"' || cp == '\\')
            sb_printf(buf, len, cap, "\\%c", (char)cp);
        else if (cp < 128)
            sb_printf(buf, len, cap, "%c", (char)cp);
        else
            sb_printf(buf, len, cap, "\\u%04x", cp);
    }
}

/* merges of the handmade model, raw bytes; new token ids 256, 257, ... in this order */
static const char *k_merges[][2] = {
    {"l", "l"},   {"h", "e"},  {"he", "ll"}, {"hell", "o"}, {" ", "w"}, {"o", "r"}, {" w", "or"},
    {"a", "a"},   {"b", "c"},  {"a", "b"},   {"aa", "aa"},  {"c", "a"}, {"ab", "c"}, {"e", "l"},
    {"ll", "ll"}, {"l", "o"},  {"h", "el"},  {"ca", "bc"},
};
#define N_MERGES ((int)(sizeof k_merges / sizeof k_merges[0]))

typedef struct {
    bool ignore_merges;
    const char *extra_vocab;  /* raw token added to the model vocab after the merges, or NULL */
    const char *added_json;   /* added_tokens array body, or NULL */
    const char *post;         /* post_processor JSON, or NULL (null) */
    const char *pre_override; /* pre_tokenizer JSON replacing the default, or NULL */
} spec;

static const char *k_pre_llama3 =
    "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":"
    "\"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|"
    "\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},\"behavior\":\"Isolated\",\"invert\":false},"
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":false}]}";

static char *make_json(const spec *sp) {
    char *b = NULL;
    size_t len = 0, cap = 0;
    sb_printf(&b, &len, &cap, "{\"version\":\"1.0\",\"added_tokens\":[%s],\"normalizer\":null,\"pre_tokenizer\":%s,",
              sp->added_json ? sp->added_json : "", sp->pre_override ? sp->pre_override : k_pre_llama3);
    sb_printf(&b, &len, &cap, "\"post_processor\":%s,\"decoder\":{\"type\":\"ByteLevel\"},", sp->post ? sp->post : "null");
    sb_printf(&b, &len, &cap, "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"ignore_merges\":%s,\"vocab\":{",
              sp->ignore_merges ? "true" : "false");
    for (int i = 0; i < 256; i++) {
        char s[2] = {(char)i, 0};
        sb_printf(&b, &len, &cap, "%s\"", i ? "," : "");
        if (i == 0)
            sb_printf(&b, &len, &cap, "\\u%04x", byte_cp(0));
        else
            bl_json(&b, &len, &cap, s);
        sb_printf(&b, &len, &cap, "\":%d", i);
    }
    for (int m = 0; m < N_MERGES; m++) {
        char cat[64];
        snprintf(cat, sizeof cat, "%s%s", k_merges[m][0], k_merges[m][1]);
        sb_printf(&b, &len, &cap, ",\"");
        bl_json(&b, &len, &cap, cat);
        sb_printf(&b, &len, &cap, "\":%d", 256 + m);
    }
    if (sp->extra_vocab) {
        sb_printf(&b, &len, &cap, ",\"");
        bl_json(&b, &len, &cap, sp->extra_vocab);
        sb_printf(&b, &len, &cap, "\":%d", 256 + N_MERGES);
    }
    sb_printf(&b, &len, &cap, "},\"merges\":[");
    for (int m = 0; m < N_MERGES; m++) {
        /* alternate the two merge formats */
        if (m % 2) {
            sb_printf(&b, &len, &cap, "%s[\"", m ? "," : "");
            bl_json(&b, &len, &cap, k_merges[m][0]);
            sb_printf(&b, &len, &cap, "\",\"");
            bl_json(&b, &len, &cap, k_merges[m][1]);
            sb_printf(&b, &len, &cap, "\"]");
        } else {
            sb_printf(&b, &len, &cap, "%s\"", m ? "," : "");
            bl_json(&b, &len, &cap, k_merges[m][0]);
            sb_printf(&b, &len, &cap, " ");
            bl_json(&b, &len, &cap, k_merges[m][1]);
            sb_printf(&b, &len, &cap, "\"");
        }
    }
    sb_printf(&b, &len, &cap, "]}}");
    return b;
}

static bv_tok *load_spec(const spec *sp) {
    char *j = make_json(sp);
    bv_test_fuzz_seed(j, strlen(j));
    bv_tok *t = NULL;
    bv_status st = bv_tok_load_mem(&t, j, strlen(j), "handmade.json");
    if (st != BV_OK) print_error("load failed: %s\n", bv_error_msg());
    assert_int_equal(st, BV_OK);
    free(j);
    return t;
}

static const char *k_llama_added =
    "{\"id\":300,\"content\":\"<|begin_of_text|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":301,\"content\":\"<|end_of_text|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":302,\"content\":\"<|reserved_special_token_0|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":303,\"content\":\"<|reserved_special_token_1|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":304,\"content\":\"<|reserved_special_token_2|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":305,\"content\":\"<|reserved_special_token_3|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":306,\"content\":\"<|start_header_id|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":307,\"content\":\"<|end_header_id|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":308,\"content\":\"<|reserved_special_token_4|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":309,\"content\":\"<|eot_id|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":310,\"content\":\"<|reserved_special_token_5|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":311,\"content\":\"<|reserved_special_token_6|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":312,\"content\":\"<|a|>\",\"special\":true,\"normalized\":false},"
    "{\"id\":313,\"content\":\"<|a|>b\",\"special\":false,\"normalized\":false},"
    "{\"id\":314,\"content\":\"<mask>\",\"special\":true,\"normalized\":false,\"lstrip\":true},"
    "{\"id\":315,\"content\":\"[R]\",\"special\":false,\"normalized\":true,\"rstrip\":true},"
    "{\"id\":316,\"content\":\"sw\",\"special\":false,\"normalized\":false,\"single_word\":true}";

/* ---- helpers ---- */

static void check_ids(const char *what, const int32_t *got, size_t ng, const int32_t *want, size_t nw) {
    size_t k = 0;
    while (k < ng && k < nw && got[k] == want[k]) k++;
    if (k == ng && k == nw) return;
    print_error("%s: first difference at token %zu: got %d want %d (lengths %zu / %zu)\n  got:", what, k,
                k < ng ? got[k] : -1, k < nw ? want[k] : -1, ng, nw);
    for (size_t i = 0; i < ng && i < 40; i++) print_error(" %d", got[i]);
    print_error("\n  want:");
    for (size_t i = 0; i < nw && i < 40; i++) print_error(" %d", want[i]);
    print_error("\n");
    fail();
}

static bv_tok_ids enc(const bv_tok *t, const char *s, unsigned flags) {
    bv_tok_ids v = {0};
    bv_status st = bv_tok_encode(t, s, strlen(s), flags, &v);
    if (st != BV_OK) print_error("encode(\"%s\"): %s\n", s, bv_error_msg());
    assert_int_equal(st, BV_OK);
    return v;
}

#define EXPECT_IDS(t, s, flags, ...)                                                 \
    do {                                                                             \
        const int32_t want_[] = {__VA_ARGS__};                                       \
        bv_tok_ids v_ = enc(t, s, flags);                                            \
        check_ids(s, v_.ids, v_.len, want_, sizeof want_ / sizeof want_[0]);         \
        bv_tok_ids_free(&v_);                                                        \
    } while (0)

static int32_t mid(const char *a, const char *b) { /* id of the merge result a+b */
    for (int m = 0; m < N_MERGES; m++)
        if (!strcmp(k_merges[m][0], a) && !strcmp(k_merges[m][1], b)) return 256 + m;
    return -1;
}

static void roundtrip(const bv_tok *t, const char *s, size_t n) {
    bv_tok_ids v = {0};
    assert_int_equal(bv_tok_encode(t, s, n, 0, &v), BV_OK);
    char *d;
    size_t dl;
    assert_int_equal(bv_tok_decode(t, v.ids, v.len, 0, &d, &dl), BV_OK);
    if (dl != n || memcmp(d, s, n)) {
        print_error("round trip of \"%.*s\" gave \"%.*s\"\n", (int)n, s, (int)dl, d);
        fail();
    }
    free(d);
    bv_tok_ids_free(&v);
}

/* ---- plain reference BPE: strings, repeated search for the lowest-ranked leftmost pair ---- */

static void ref_bpe(const char *word, int32_t *out, size_t *nout) {
    char parts[512][64];
    int n = 0;
    for (const char *p = word; *p; p++) {
        parts[n][0] = *p;
        parts[n][1] = 0;
        n++;
    }
    for (;;) {
        int best = -1, bi = -1;
        for (int i = 0; i + 1 < n; i++)
            for (int m = 0; m < N_MERGES; m++)
                if (!strcmp(parts[i], k_merges[m][0]) && !strcmp(parts[i + 1], k_merges[m][1]) && (best < 0 || m < best))
                    best = m, bi = i;
        if (best < 0) break;
        size_t la = strlen(parts[bi]), lb = strlen(parts[bi + 1]);
        assert_true(la + lb < sizeof parts[bi]);
        memcpy(parts[bi] + la, parts[bi + 1], lb + 1);
        memmove(parts[bi + 1], parts[bi + 2], (size_t)(n - bi - 2) * sizeof parts[0]);
        n--;
    }
    *nout = 0;
    for (int i = 0; i < n; i++) {
        int32_t id = -1;
        if (strlen(parts[i]) == 1)
            id = (unsigned char)parts[i][0];
        else
            for (int m = 0; m < N_MERGES; m++) {
                char cat[64];
                snprintf(cat, sizeof cat, "%s%s", k_merges[m][0], k_merges[m][1]);
                if (!strcmp(cat, parts[i])) {
                    id = 256 + m;
                    break;
                }
            }
        out[(*nout)++] = id;
    }
}

/* ---- tests ---- */

static void test_bpe_merges(void **state) {
    spec sp = {0};
    bv_tok *t = load_spec(&sp);
    int32_t hello = mid("hell", "o"), wor = mid(" w", "or"), aa = mid("a", "a"), bc = mid("b", "c");
    EXPECT_IDS(t, "hello", 0, hello);
    EXPECT_IDS(t, "hello world", 0, hello, wor, 'l', 'd');
    EXPECT_IDS(t, "aaa", 0, aa, 'a');                     /* equal ranks: leftmost first */
    EXPECT_IDS(t, "aaaa", 0, mid("aa", "aa"));
    EXPECT_IDS(t, "abc", 0, 'a', bc);                     /* (b c) ranks above (a b) */
    EXPECT_IDS(t, "cabc", 0, mid("ca", "bc"));            /* (b c), then (c a), then (ca bc) */
    EXPECT_IDS(t, "cab", 0, 'c', mid("a", "b"));           /* (a b) outranks (c a) */
    EXPECT_IDS(t, "hel", 0, mid("h", "e"), 'l');
    EXPECT_IDS(t, "123 4567", 0, '1', '2', '3', ' ', '4', '5', '6', '7'); /* \p{N}{1,3} splits */
    EXPECT_IDS(t, "", 0, );
    bv_tok_free(t);
}

static void test_bpe_matches_reference(void **state) {
    spec sp = {0};
    bv_tok *t = load_spec(&sp);
    bv_rng r = {42};
    const char alphabet[] = "abclheo";
    char w[400];
    int32_t want[400];
    for (int it = 0; it < 3000; it++) {
        /* lengths on both sides of the short/long switch (64 bytes) */
        int n = 1 + (int)(bv_rng_u64(&r) % (it % 3 == 0 ? 300 : 70));
        for (int i = 0; i < n; i++) w[i] = alphabet[bv_rng_u64(&r) % (sizeof alphabet - 1)];
        w[n] = 0;
        size_t nw;
        ref_bpe(w, want, &nw);
        bv_tok_ids v = enc(t, w, 0);
        check_ids(w, v.ids, v.len, want, nw);
        bv_tok_ids_free(&v);
    }
    bv_tok_free(t);
}

static void test_ignore_merges(void **state) {
    spec sp = {.ignore_merges = false, .extra_vocab = "xyz"};
    bv_tok *t = load_spec(&sp);
    EXPECT_IDS(t, "xyz", 0, 'x', 'y', 'z');
    bv_tok_free(t);
    sp.ignore_merges = true;
    t = load_spec(&sp);
    EXPECT_IDS(t, "xyz", 0, 256 + N_MERGES);
    EXPECT_IDS(t, "xyzz", 0, 'x', 'y', 'z', 'z');
    EXPECT_IDS(t, "hello", 0, mid("hell", "o"));
    bv_tok_free(t);
}

static void test_added_tokens(void **state) {
    spec sp = {.added_json = k_llama_added};
    bv_tok *t = load_spec(&sp);
    EXPECT_IDS(t, "x<|eot_id|>y", 0, 'x', 309, 'y');
    EXPECT_IDS(t, "<|eot_id|><|eot_id|>", 0, 309, 309);
    EXPECT_IDS(t, "<|eot_id", 0, '<', '|', 'e', 'o', 't', '_', 'i', 'd'); /* incomplete: plain text */
    EXPECT_IDS(t, "<|a|>bc", 0, 313, 'c');                              /* leftmost-longest */
    EXPECT_IDS(t, "<|a|>c", 0, 312, 'c');
    EXPECT_IDS(t, "a  <mask> b", 0, 'a', 314, ' ', 'b'); /* lstrip swallows the spaces before */
    EXPECT_IDS(t, "a [R]  b", 0, 'a', ' ', 315, 'b');   /* rstrip swallows the spaces after */
    EXPECT_IDS(t, "sw", 0, 316);                     /* single_word: only away from letters and digits */
    EXPECT_IDS(t, "a sw!", 0, 'a', ' ', 316, '!');
    EXPECT_IDS(t, "swa", 0, 's', 'w', 'a');
    EXPECT_IDS(t, "_sw", 0, '_', 's', 'w');          /* '_' is a word character (Rust's \w) */
    EXPECT_IDS(t, "\xC3\xA9sw", 0, 0xC3, 0xA9, 's', 'w');
    EXPECT_IDS(t, "hello <|begin_of_text|> hello", 0, mid("hell", "o"), ' ', 300, ' ', mid("hell", "o"));
    assert_int_equal(bv_tok_token_id(t, "<|eot_id|>"), 309);
    assert_int_equal(bv_tok_token_id(t, "hello"), mid("hell", "o"));
    assert_int_equal(bv_tok_token_id(t, "nope"), -1);
    assert_int_equal(bv_tok_bos_id(t), 300);
    assert_int_equal(bv_tok_vocab_size(t), 317);
    bv_tok_free(t);
}

static void test_template_and_decode(void **state) {
    spec sp = {.added_json = k_llama_added,
               .post = "{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"},{\"type\":\"TemplateProcessing\","
                       "\"single\":[{\"SpecialToken\":{\"id\":\"<|begin_of_text|>\",\"type_id\":0}},{\"Sequence\":"
                       "{\"id\":\"A\",\"type_id\":0}},{\"SpecialToken\":{\"id\":\"<|eot_id|>\",\"type_id\":0}}],"
                       "\"pair\":[],\"special_tokens\":{\"<|begin_of_text|>\":{\"id\":\"<|begin_of_text|>\",\"ids\":[300],"
                       "\"tokens\":[\"<|begin_of_text|>\"]},\"<|eot_id|>\":{\"id\":\"<|eot_id|>\",\"ids\":[309],"
                       "\"tokens\":[\"<|eot_id|>\"]}}}]}"};
    bv_tok *t = load_spec(&sp);
    EXPECT_IDS(t, "hello", BV_TOK_ADD_SPECIAL, 300, mid("hell", "o"), 309);
    EXPECT_IDS(t, "hello", 0, mid("hell", "o"));
    /* decoding: byte tokens, special tokens kept or skipped, lossy UTF-8 */
    int32_t ids[] = {300, mid("hell", "o"), mid(" w", "or"), 'l', 'd', 309};
    char *s;
    size_t n;
    assert_int_equal(bv_tok_decode(t, ids, 6, 0, &s, &n), BV_OK);
    assert_string_equal(s, "<|begin_of_text|>hello world<|eot_id|>");
    free(s);
    assert_int_equal(bv_tok_decode(t, ids, 6, BV_TOK_SKIP_SPECIAL, &s, &n), BV_OK);
    assert_string_equal(s, "hello world");
    free(s);
    int32_t bad[] = {'a', 0xE4, 0xB8, 'b', 0xFF, 0xC0, 0xAF, 0xED, 0xA0, 0x80, 'c', 0xF0, 0x9F, 0x98};
    assert_int_equal(bv_tok_decode(t, bad, sizeof bad / sizeof bad[0], 0, &s, &n), BV_OK);
    /* one U+FFFD per maximal subpart: E4 B8 | FF | C0 | AF | ED | A0 | 80 | F0 9F 98 */
    assert_string_equal(s, "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
                           "c\xEF\xBF\xBD");
    free(s);
    int32_t nul[] = {'a', 0, 'b'};
    assert_int_equal(bv_tok_decode(t, nul, 3, 0, &s, &n), BV_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "a\0b", 3);
    free(s);
    const char *rt[] = {"hello world", "  spaced\n\n\tout  ", "caf\xC3\xA9 \xE4\xB8\xAD\xE6\x96\x87 \xF0\x9F\xA4\x96",
                        "<|eot_id|>x<|a|>b", "it's THEY'RE 12345678", ""};
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) roundtrip(t, rt[i], strlen(rt[i]));
    roundtrip(t, "a\0b", 3);
    int32_t oob[] = {1, 9999};
    assert_int_equal(bv_tok_decode(t, oob, 2, 0, &s, &n), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "id 9999 at position 1"));
    bv_tok_free(t);
}

static void test_utf8_errors(void **state) {
    spec sp = {0};
    bv_tok *t = load_spec(&sp);
    struct {
        const char *s;
        size_t n;
        long long at;
    } cases[] = {
        {"ab\xFF" "cd", 5, 2},        {"\xC0\xAF", 2, 0},          {"ok\xED\xA0\x80", 5, 2}, /* surrogate */
        {"abc\xE4\xB8", 5, 3},        {"\xF4\x90\x80\x80", 4, 0}, /* > U+10FFFF */
        {"x\x80", 2, 1},              {"\xE0\x80\x80", 3, 0},     /* overlong */
        {"12345678\xC3", 9, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(bv_utf8_invalid_at(cases[i].s, cases[i].n), cases[i].at);
        bv_tok_ids v = {0};
        assert_int_equal(bv_tok_encode(t, cases[i].s, cases[i].n, 0, &v), BV_ERR_ARG);
        char want[64];
        snprintf(want, sizeof want, "byte offset %lld", cases[i].at);
        if (!strstr(bv_error_msg(), want)) {
            print_error("message \"%s\" lacks \"%s\"\n", bv_error_msg(), want);
            fail();
        }
        bv_tok_ids_free(&v);
    }
    const char *ok = "\xF0\x9F\x98\x80 \xE2\x82\xAC \xC3\xA9 \xF4\x8F\xBF\xBF \xEF\xBF\xBF";
    assert_int_equal(bv_utf8_invalid_at(ok, strlen(ok)), -1);
    bv_tok_free(t);
}

static void expect_load_error(const char *json, bv_status want, const char *needle1, const char *needle2) {
    bv_tok *t = NULL;
    bv_test_fuzz_seed(json, strlen(json));
    bv_status st = bv_tok_load_mem(&t, json, strlen(json), "bad.json");
    if (st != want || !strstr(bv_error_msg(), "bad.json") || (needle1 && !strstr(bv_error_msg(), needle1)) ||
        (needle2 && !strstr(bv_error_msg(), needle2))) {
        print_error("load: status %s (want %s), message \"%s\" (want \"%s\", \"%s\")\n", bv_status_name(st),
                    bv_status_name(want), bv_error_msg(), needle1 ? needle1 : "", needle2 ? needle2 : "");
        fail();
    }
    assert_null(t);
}

static char *replace(const char *s, const char *from, const char *to) {
    const char *p = strstr(s, from);
    assert_non_null(p);
    size_t a = (size_t)(p - s), fl = strlen(from), tl = strlen(to), n = strlen(s);
    char *r = malloc(n - fl + tl + 1);
    memcpy(r, s, a);
    memcpy(r + a, to, tl);
    memcpy(r + a + tl, p + fl, n - a - fl + 1);
    return r;
}

static void test_file_errors(void **state) {
    bv_tok *t = NULL;
    assert_int_equal(bv_tok_load(&t, "/nonexistent/dir/tokenizer.json"), BV_ERR_IO);
    assert_non_null(strstr(bv_error_msg(), "/nonexistent/dir/tokenizer.json"));
    expect_load_error("{\"model\": ", BV_ERR_FORMAT, "not valid JSON", "byte");
    expect_load_error("[1, 2]", BV_ERR_FORMAT, "top", NULL);
    expect_load_error("{\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"}}",
                      BV_ERR_UNSUPPORTED, "WordPiece", "model.type");
    expect_load_error("{\"model\":{\"type\":\"Unigram\",\"vocab\":[[\"a\",0.0]]}}", BV_ERR_UNSUPPORTED, "Unigram", NULL);
    expect_load_error("{\"model\":{\"vocab\":{\"a\":0}},\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", BV_ERR_UNSUPPORTED,
                      "not a BPE model", NULL);
    expect_load_error("{\"normalizer\":{\"type\":\"NFC\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
                      BV_ERR_UNSUPPORTED, "normalizer", "NFC");
    expect_load_error("{\"pre_tokenizer\":{\"type\":\"Metaspace\"},\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
                      BV_ERR_UNSUPPORTED, "Metaspace", "pre_tokenizer");
    expect_load_error("{\"pre_tokenizer\":{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s\"},\"behavior\":\"Isolated\"},"
                      "\"model\":{\"type\":\"BPE\",\"vocab\":{},\"merges\":[]}}",
                      BV_ERR_UNSUPPORTED, "ByteLevel", NULL);

    spec sp = {0};
    char *good = make_json(&sp);
    char *j = replace(good, "\"dropout\":null", "\"dropout\":0.1");
    expect_load_error(j, BV_ERR_UNSUPPORTED, "model.dropout", NULL);
    free(j);
    j = replace(good, "\"ignore_merges\":false", "\"ignore_merges\":false,\"byte_fallback\":true");
    expect_load_error(j, BV_ERR_UNSUPPORTED, "byte_fallback", NULL);
    free(j);
    j = replace(good, "\"merges\":[\"l l\"", "\"merges\":[\"l q\"");
    expect_load_error(j, BV_ERR_FORMAT, "model.merges[0]", "\"lq\"");
    free(j);
    j = replace(good, "\"merges\":[\"l l\"", "\"merges\":[\"l l l\"");
    expect_load_error(j, BV_ERR_FORMAT, "model.merges[0]", NULL);
    free(j);
    j = replace(good, "\"merges\":[\"l l\"", "\"merges\":[7");
    expect_load_error(j, BV_ERR_FORMAT, "model.merges[0]", "an integer");
    free(j);
    j = replace(good, "\"a\":97", "\"a\":\"97\"");
    expect_load_error(j, BV_ERR_FORMAT, "model.vocab[\"a\"]", NULL);
    free(j);
    j = replace(good, "\"merges\":[", "\"merges\":{\"x\":[");
    expect_load_error(j, BV_ERR_FORMAT, NULL, NULL);
    free(j);
    j = replace(good, "\"added_tokens\":[]", "\"added_tokens\":[{\"id\":-3,\"content\":\"x\"}]");
    expect_load_error(j, BV_ERR_FORMAT, "added_tokens[0].id", NULL);
    free(j);
    j = replace(good, "\"behavior\":\"Isolated\"", "\"behavior\":\"MergedWithNext\"");
    expect_load_error(j, BV_ERR_UNSUPPORTED, "MergedWithNext", "pre_tokenizer.pretokenizers[0].behavior");
    free(j);
    j = replace(good, "\"Regex\":\"", "\"Regex\":\"(unclosed");
    expect_load_error(j, BV_ERR_FORMAT, "does not compile", "pre_tokenizer.pretokenizers[0]");
    free(j);
    j = replace(good, "\"post_processor\":null", "\"post_processor\":{\"type\":\"BertProcessing\"}");
    expect_load_error(j, BV_ERR_UNSUPPORTED, "BertProcessing", NULL);
    free(j);
    j = replace(good, "\"decoder\":{\"type\":\"ByteLevel\"}", "\"decoder\":{\"type\":\"WordPiece\"}");
    expect_load_error(j, BV_ERR_UNSUPPORTED, "decoder", "WordPiece");
    free(j);
    free(good);

    /* an unreadable-as-JSON file on disk names the file */
    char path[] = "/tmp/bv_tok_bad_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{oops", 5), 5);
    close(fd);
    assert_int_equal(bv_tok_load(&t, path), BV_ERR_FORMAT);
    assert_non_null(strstr(bv_error_msg(), path));
    unlink(path);
}

/* ---- ids far beyond the vocabulary ----
 * HF accepts an added token with any id (it keeps ids in hash maps); a dense table indexed by id
 * once made a 7 KB file with the id 2147483646 take 21 GB. These checks run in a forked child whose
 * address space is limited to what it already maps plus 512 MiB (not under ASan, which reserves
 * terabytes of shadow up front; there the time limit alone guards), so a dense table fails them. */

#if defined(__SANITIZE_ADDRESS__)
#define TOK_UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TOK_UNDER_ASAN 1
#endif
#endif

static int g_child_fail; /* set by CHILD_CHECK in the child */
#define CHILD_CHECK(c)                                                                             \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__, __LINE__, #c, \
                    bv_error_msg());                                                               \
            g_child_fail = 1;                                                                      \
            return;                                                                                \
        }                                                                                          \
    } while (0)

static void run_bounded(const char *what, void (*fn)(void)) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
#ifndef TOK_UNDER_ASAN
        long pages = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        if (f) {
            if (fscanf(f, "%ld", &pages) != 1) pages = 0;
            fclose(f);
        }
        rlim_t lim = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)512 << 20);
        struct rlimit rl = {lim, lim};
        if (pages <= 0 || setrlimit(RLIMIT_AS, &rl) != 0) _exit(3);
#endif
        alarm(60);
        fn();
        _exit(g_child_fail ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("%s: the bounded child failed (status 0x%x%s); see its message above", what, status,
                 WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM ? ", took over 60 s" : "");
}

static void huge_added_id(void) {
    spec sp = {.added_json = "{\"id\":2147483646,\"content\":\"<|far|>\",\"special\":true,\"normalized\":false},"
                             "{\"id\":300,\"content\":\"<|near|>\",\"special\":true,\"normalized\":false}"};
    char *j = make_json(&sp);
    bv_tok *t = NULL;
    bv_status st = bv_tok_load_mem(&t, j, strlen(j), "far.json");
    free(j);
    CHILD_CHECK(st == BV_OK);
    CHILD_CHECK(bv_tok_vocab_size(t) == 2147483647);
    CHILD_CHECK(bv_tok_token_id(t, "<|far|>") == 2147483646);
    size_t n = 0;
    const char *b = bv_tok_token_bytes(t, 2147483646, &n);
    CHILD_CHECK(b && n == 7 && !memcmp(b, "<|far|>", 7));
    CHILD_CHECK(bv_tok_token_bytes(t, 2147483645, &n) == NULL);
    CHILD_CHECK(bv_tok_token_bytes(t, 299, &n) == NULL);
    bv_tok_ids v = {0};
    CHILD_CHECK(bv_tok_encode(t, "ba<|far|><|near|>", 17, 0, &v) == BV_OK);
    CHILD_CHECK(v.len == 4 && v.ids[0] == 'b' && v.ids[1] == 'a' && v.ids[2] == 2147483646 && v.ids[3] == 300);
    char *d = NULL;
    size_t dl = 0;
    CHILD_CHECK(bv_tok_decode(t, v.ids, v.len, 0, &d, &dl) == BV_OK);
    CHILD_CHECK(dl == 17 && !memcmp(d, "ba<|far|><|near|>", 17));
    free(d);
    CHILD_CHECK(bv_tok_decode(t, v.ids, v.len, BV_TOK_SKIP_SPECIAL, &d, &dl) == BV_OK);
    CHILD_CHECK(dl == 2 && !memcmp(d, "ba", 2));
    free(d);
    int32_t hole = 2147483645;
    CHILD_CHECK(bv_tok_decode(t, &hole, 1, 0, &d, &dl) == BV_ERR_ARG);
    CHILD_CHECK(strstr(bv_error_msg(), "2147483645") != NULL);
    bv_tok_ids_free(&v);
    /* saved and loaded again, the far token keeps its id */
    char path[] = "/tmp/bv_tok_far_XXXXXX";
    int fd = mkstemp(path);
    CHILD_CHECK(fd >= 0);
    close(fd);
    CHILD_CHECK(bv_tok_save(t, path) == BV_OK);
    bv_tok *u = NULL;
    st = bv_tok_load(&u, path);
    unlink(path);
    CHILD_CHECK(st == BV_OK);
    CHILD_CHECK(bv_tok_vocab_size(u) == 2147483647 && bv_tok_token_id(u, "<|far|>") == 2147483646);
    bv_tok_free(u);
    bv_tok_free(t);
    /* a far token in a post-processor template; the BitVLA edits drop it (it is above <|eot_id|>) */
    sp.added_json = "{\"id\":2000000000,\"content\":\"<|far|>\",\"special\":true,\"normalized\":false},"
                    "{\"id\":309,\"content\":\"<|eot_id|>\",\"special\":true,\"normalized\":false}";
    sp.post = "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|far|>\",\"type_id\":0}},"
              "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],\"special_tokens\":{\"<|far|>\":{\"id\":\"<|far|>\","
              "\"ids\":[2000000000],\"tokens\":[\"<|far|>\"]}}}";
    j = make_json(&sp);
    st = bv_tok_load_mem(&t, j, strlen(j), "far.json");
    free(j);
    CHILD_CHECK(st == BV_OK);
    CHILD_CHECK(bv_tok_bos_id(t) == 2000000000);
    CHILD_CHECK(bv_tok_vocab_size(t) == 2000000001);
    bv_tok_free(t);
    sp.post = NULL;
    j = make_json(&sp);
    st = bv_tok_load_mem(&t, j, strlen(j), "far.json");
    free(j);
    CHILD_CHECK(st == BV_OK);
    CHILD_CHECK(bv_tok_bitvla_edit(t) == BV_OK);
    CHILD_CHECK(bv_tok_token_id(t, "<|far|>") == -1 && bv_tok_token_bytes(t, 2000000000, &n) == NULL);
    CHILD_CHECK(bv_tok_token_id(t, "<|image_pad|>") == 310 && bv_tok_token_id(t, "<action_255>") == 567);
    CHILD_CHECK(bv_tok_vocab_size(t) == 568);
    bv_tok_free(t);
    /* <|eot_id|> so high that BitVLA's tokens would overflow the ids: refused, not wrapped */
    sp.added_json = "{\"id\":2147483600,\"content\":\"<|eot_id|>\",\"special\":true,\"normalized\":false}";
    j = make_json(&sp);
    st = bv_tok_load_mem(&t, j, strlen(j), "far.json");
    free(j);
    CHILD_CHECK(st == BV_OK);
    CHILD_CHECK(bv_tok_bitvla_edit(t) == BV_ERR_FORMAT);
    CHILD_CHECK(strstr(bv_error_msg(), "far.json") && strstr(bv_error_msg(), "2147483600") &&
                strstr(bv_error_msg(), "no room"));
    CHILD_CHECK(bv_tok_vocab_size(t) == 2147483601 && bv_tok_token_id(t, "<|eot_id|>") == 2147483600);
    bv_tok_free(t);
}

static char *g_far_model_json; /* made by the parent: the child must not run CMocka asserts */

static void huge_model_id(void) {
    bv_tok *t = NULL;
    CHILD_CHECK(bv_tok_load_mem(&t, g_far_model_json, strlen(g_far_model_json), "bad.json") == BV_ERR_FORMAT);
    const char *m = bv_error_msg();
    CHILD_CHECK(strstr(m, "bad.json") && strstr(m, "model.vocab[\"xyz\"]") && strstr(m, "2147483646") &&
                strstr(m, "[0, 274]"));
}

static void test_huge_ids(void **state) {
    run_bounded("added token id 2147483646", huge_added_id);
    /* model.vocab ids are stored densely, so they are bounded by the number of tokens in the file */
    spec sx = {.extra_vocab = "xyz"};
    char *gx = make_json(&sx);
    g_far_model_json = replace(gx, "\"xyz\":274", "\"xyz\":2147483646");
    run_bounded("model.vocab id 2147483646", huge_model_id);
    free(g_far_model_json);
    free(gx);
    /* out of range: the message says which range is accepted */
    spec sp = {0};
    char *good = make_json(&sp);
    char *j = replace(good, "\"added_tokens\":[]", "\"added_tokens\":[{\"id\":2147483647,\"content\":\"x\"}]");
    expect_load_error(j, BV_ERR_FORMAT, "added_tokens[0].id: 2147483647", "[0, 2147483646]");
    free(j);
    j = replace(good, "\"added_tokens\":[]", "\"added_tokens\":[{\"id\":4294967296,\"content\":\"x\"}]");
    expect_load_error(j, BV_ERR_FORMAT, "added_tokens[0].id: 4294967296", "[0, 2147483646]");
    free(j);
    j = replace(good, "\"added_tokens\":[]", "\"added_tokens\":[{\"id\":\"7\",\"content\":\"x\"}]");
    expect_load_error(j, BV_ERR_FORMAT, "added_tokens[0].id", "[0, 2147483646], found a string");
    free(j);
    j = replace(good, "\"a\":97", "\"a\":-1");
    expect_load_error(j, BV_ERR_FORMAT, "model.vocab[\"a\"]: id -1", "[0, 273]");
    free(j);
    free(good);
}

static void test_bitvla_edits(void **state) {
    spec sp = {.added_json = k_llama_added};
    bv_tok *t = load_spec(&sp);
    assert_int_equal(bv_tok_bitvla_edit(t), BV_OK);
    /* added tokens above <|eot_id|> (309) dropped; 302 renamed; new ones from 310 */
    assert_int_equal(bv_tok_token_id(t, "<|pad|>"), 302);
    assert_int_equal(bv_tok_token_id(t, "<|reserved_special_token_0|>"), -1);
    assert_int_equal(bv_tok_token_id(t, "<|reserved_special_token_5|>"), -1);
    assert_int_equal(bv_tok_token_id(t, "<|a|>"), -1);
    assert_int_equal(bv_tok_token_id(t, "<|image_pad|>"), 310);
    assert_int_equal(bv_tok_token_id(t, "<proprio_pad>"), 311);
    assert_int_equal(bv_tok_token_id(t, "<action_0>"), 312);
    assert_int_equal(bv_tok_token_id(t, "<action_255>"), 567);
    assert_int_equal(bv_tok_vocab_size(t), 568);
    EXPECT_IDS(t, "<|pad|><|image_pad|><proprio_pad><action_1><action_10><action_100><|eot_id|>", 0, 302, 310, 311, 313,
               322, 412, 309);
    EXPECT_IDS(t, "<|a|>", 0, '<', '|', 'a', '|', '>');
    size_t n;
    const char *b = bv_tok_token_bytes(t, 302, &n);
    assert_int_equal(n, 7);
    assert_memory_equal(b, "<|pad|>", 7);
    assert_null(bv_tok_token_bytes(t, 568, &n));
    /* a second application changes nothing */
    assert_int_equal(bv_tok_bitvla_edit(t), BV_OK);
    assert_int_equal(bv_tok_vocab_size(t), 568);
    bv_tok_free(t);
    /* needs <|eot_id|> */
    spec sp2 = {0};
    t = load_spec(&sp2);
    assert_int_equal(bv_tok_bitvla_edit(t), BV_ERR_FORMAT);
    assert_non_null(strstr(bv_error_msg(), "<|eot_id|>"));
    bv_tok_free(t);
}

static void test_chat_template(void **state) {
    bv_tok_msg msgs[] = {{"USER", " \t\xE3\x80\x80Hello there!\n"}, {"assistant", "Hi. "}, {"human", "\x1f" "x"}};
    char *s = bv_tok_chat_render(msgs, 3, 1);
    assert_string_equal(s, "System: A chat between a curious human and an artificial intelligence assistant. The assistant "
                           "gives helpful, detailed, and polite answers to the human's questions.<|eot_id|>"
                           "User: Hello there!<|eot_id|>Assistant: Hi.<|eot_id|>Human: x<|eot_id|>Assistant: ");
    free(s);
    s = bv_tok_chat_render(msgs, 1, 0);
    assert_string_equal(s, BV_TOK_SYSTEM_PROMPT "User: Hello there!<|eot_id|>");
    free(s);
    /* encoding: BOS + encode(render), with and without a BOS template in the file */
    spec sp = {.added_json = k_llama_added};
    bv_tok *t = load_spec(&sp);
    bv_tok_ids got = {0};
    assert_int_equal(bv_tok_chat_encode(t, msgs, 2, 1, &got), BV_OK);
    s = bv_tok_chat_render(msgs, 2, 1);
    bv_tok_ids want = {0};
    want.ids = malloc(4);
    want.ids[0] = 300;
    want.len = want.cap = 1;
    assert_int_equal(bv_tok_encode(t, s, strlen(s), 0, &want), BV_OK);
    check_ids("chat", got.ids, got.len, want.ids, want.len);
    assert_int_equal(got.ids[0], 300);
    bv_tok_ids_free(&got);
    bv_tok_ids_free(&want);
    free(s);
    bv_tok_msg badm = {"user", "\xC3("};
    assert_int_equal(bv_tok_chat_encode(t, &badm, 1, 1, &got), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "byte offset 0"));
    bv_tok_ids_free(&got);
    bv_tok_free(t);
}

static void test_action_prompt(void **state) {
    spec sp = {.added_json = k_llama_added};
    bv_tok *t = load_spec(&sp);
    bv_tok_action_seq seq;
    bv_tok_action_cfg cfg = bv_tok_action_cfg_default();
    assert_int_equal(cfg.n_images, 2);
    assert_int_equal(cfg.image_tokens, 256);
    assert_int_equal(cfg.num_actions_chunk * cfg.action_dim, 56);
    assert_int_equal(bv_tok_action_prompt(t, "x", &cfg, NULL, &seq), BV_ERR_FORMAT); /* no BitVLA tokens yet */
    assert_int_equal(bv_tok_bitvla_edit(t), BV_OK);

    cfg.image_tokens = 3;
    cfg.num_actions_chunk = 2;
    cfg.action_dim = 3;
    int bins[6] = {0, 5, 255, 17, 1, 128};
    assert_int_equal(bv_tok_action_prompt(t, "Pick UP the Block", &cfg, bins, &seq), BV_OK);
    /* the same sequence built by hand */
    bv_tok_msg m = {"user", "<|image_pad|><|image_pad|><|image_pad|><|image_pad|><|image_pad|><|image_pad|>"
                            "<proprio_pad>What action should the robot take to pick up the block?"};
    char *chat = bv_tok_chat_render(&m, 1, 1);
    char full[4096];
    snprintf(full, sizeof full, "%s<action_0><action_5><action_255><action_17><action_1><action_128><|end_of_text|>", chat);
    free(chat);
    bv_tok_ids want = {0};
    want.ids = malloc(4);
    want.ids[0] = 300;
    want.len = want.cap = 1;
    assert_int_equal(bv_tok_encode(t, full, strlen(full), 0, &want), BV_OK);
    check_ids("action prompt", seq.ids, (size_t)seq.len, want.ids, want.len);
    bv_tok_ids_free(&want);
    assert_int_equal(seq.n_actions, 6);
    int64_t L = seq.len, n_img = 0, n_mask = 0;
    for (int64_t i = 0; i < L; i++) {
        n_img += seq.ids[i] == 310;
        n_mask += seq.action_mask[i];
        bool is_action = i >= L - 7 && i < L - 1;
        assert_int_equal(seq.action_mask[i], is_action);
        if (is_action)
            assert_int_equal(seq.labels[i], seq.ids[i]);
        else if (i == L - 1)
            assert_int_equal(seq.labels[i], 301); /* <|end_of_text|>: predict_stop */
        else
            assert_int_equal(seq.labels[i], BV_TOK_IGNORE_INDEX);
    }
    assert_int_equal(n_img, 6);
    assert_int_equal(n_mask, 6);
    assert_int_equal(seq.ids[L - 7], 312 + 0);
    assert_int_equal(seq.ids[L - 5], 312 + 255);
    assert_int_equal(seq.ids[L - 1], 301);
    bv_tok_action_seq_free(&seq);

    cfg.predict_stop = 0;
    assert_int_equal(bv_tok_action_prompt(t, "go", &cfg, NULL, &seq), BV_OK);
    assert_int_equal(seq.labels[seq.len - 1], BV_TOK_IGNORE_INDEX);
    assert_int_equal(seq.labels[seq.len - 2], 312);
    bv_tok_action_seq_free(&seq);

    bins[3] = 256;
    assert_int_equal(bv_tok_action_prompt(t, "go", &cfg, bins, &seq), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "256"));
    assert_int_equal(bv_tok_action_prompt(t, "go\xFF", &cfg, NULL, &seq), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "byte offset 2"));
    bv_tok_free(t);
}

static void test_save_load_roundtrip(void **state) {
    spec sp = {.added_json = k_llama_added, .ignore_merges = true, .extra_vocab = "xyz"};
    bv_tok *t = load_spec(&sp);
    assert_int_equal(bv_tok_bitvla_edit(t), BV_OK);
    char path[] = "/tmp/bv_tok_save_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(bv_tok_save(t, path), BV_OK);
    bv_tok *u = NULL;
    assert_int_equal(bv_tok_load(&u, path), BV_OK);
    unlink(path);
    assert_int_equal(bv_tok_vocab_size(u), bv_tok_vocab_size(t));
    const char *texts[] = {"hello world xyz", "<|pad|>a<action_7>bcab<|image_pad|>", "aaaa cabc \xE4\xB8\xAD!",
                           "it's 1234567 \n\n  x"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        bv_tok_ids a = enc(t, texts[i], 0), b = enc(u, texts[i], 0);
        check_ids(texts[i], b.ids, b.len, a.ids, a.len);
        bv_tok_ids_free(&a);
        bv_tok_ids_free(&b);
    }
    bv_tok_free(t);
    bv_tok_free(u);
    /* writing into a missing directory fails with the path and leaves nothing */
    spec sp2 = {0};
    t = load_spec(&sp2);
    assert_int_equal(bv_tok_save(t, "/nonexistent/dir/tok.json"), BV_ERR_IO);
    assert_non_null(strstr(bv_error_msg(), "/nonexistent/dir/tok.json"));
    bv_tok_free(t);
}

static const char k_train_text[] =
    "the robot picks up the red block and puts the red block in the bowl. the robot opens the drawer.\n"
    "The Robot's gripper closes; it's 12345 mm away!\n\tthe the the robot robot <|eot_id|> block block\n"
    "\xE4\xB8\xAD\xE6\x96\x87\xE4\xB8\xAD\xE6\x96\x87 caf\xC3\xA9 caf\xC3\xA9 \xF0\x9F\xA4\x96\xF0\x9F\xA4\x96\n";

static void test_train_roundtrip(void **state) {
    bv_tok_train_opts o = {.vocab_size = 300, .min_frequency = 2, .bitvla = 1};
    bv_tok *t = NULL;
    assert_int_equal(bv_tok_train(&t, k_train_text, strlen(k_train_text), &o), BV_OK);
    /* specials after the model vocabulary, BitVLA tokens after <|eot_id|> */
    int32_t nv = bv_tok_token_id(t, "<|begin_of_text|>");
    assert_true(nv > 256 && nv <= 300);
    assert_int_equal(bv_tok_bos_id(t), nv);
    assert_int_equal(bv_tok_token_id(t, "<|eot_id|>"), nv + 9);
    assert_int_equal(bv_tok_token_id(t, "<|pad|>"), nv + 2);
    assert_int_equal(bv_tok_token_id(t, "<|image_pad|>"), nv + 10);
    assert_int_equal(bv_tok_token_id(t, "<proprio_pad>"), nv + 11);
    assert_int_equal(bv_tok_token_id(t, "<action_0>"), nv + 12);
    assert_int_equal(bv_tok_vocab_size(t), nv + 12 + 256);
    /* it learned something: frequent words are single tokens, the text compresses */
    assert_true(bv_tok_token_id(t, " robot") >= 256);
    bv_tok_ids v = enc(t, k_train_text, 0);
    assert_true(v.len < strlen(k_train_text) / 2);
    for (size_t i = 0; i < v.len; i++)
        if (v.ids[i] == nv + 9) goto found;
    fail_msg("<|eot_id|> in the training text was not kept whole");
found:
    bv_tok_ids_free(&v);
    roundtrip(t, k_train_text, strlen(k_train_text));
    roundtrip(t, "never seen: \xD0\x9F\xD1\x80\xD0\xB8\xD0\xB2\xD0\xB5\xD1\x82 zqx 99", 31);
    /* its template puts BOS first */
    v = enc(t, "robot", BV_TOK_ADD_SPECIAL);
    assert_int_equal(v.ids[0], nv);
    bv_tok_ids_free(&v);
    /* the action prompt works with its ids */
    bv_tok_action_cfg cfg = bv_tok_action_cfg_default();
    cfg.image_tokens = 4;
    bv_tok_action_seq seq;
    assert_int_equal(bv_tok_action_prompt(t, "pick up the red block", &cfg, NULL, &seq), BV_OK);
    assert_int_equal(seq.ids[0], nv);
    assert_int_equal(seq.ids[seq.len - 1], nv + 1);
    assert_int_equal(seq.ids[seq.len - 2], nv + 12);
    bv_tok_action_seq_free(&seq);
    /* deterministic, and survives save + load */
    bv_tok *u = NULL;
    assert_int_equal(bv_tok_train(&u, k_train_text, strlen(k_train_text), &o), BV_OK);
    char path[] = "/tmp/bv_tok_train_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(bv_tok_save(u, path), BV_OK);
    bv_tok_free(u);
    assert_int_equal(bv_tok_load(&u, path), BV_OK);
    unlink(path);
    const char *texts[] = {k_train_text, "the robot's block <|image_pad|><action_3>", "x"};
    for (size_t i = 0; i < 3; i++) {
        bv_tok_ids a = enc(t, texts[i], BV_TOK_ADD_SPECIAL), b = enc(u, texts[i], BV_TOK_ADD_SPECIAL);
        check_ids(texts[i], b.ids, b.len, a.ids, a.len);
        bv_tok_ids_free(&a);
        bv_tok_ids_free(&b);
    }
    bv_tok_free(u);
    bv_tok_free(t);
    /* bad options and bad text */
    o.vocab_size = 100;
    assert_int_equal(bv_tok_train(&t, "abc", 3, &o), BV_ERR_ARG);
    o.vocab_size = 300;
    assert_int_equal(bv_tok_train(&t, "ab\xC3", 3, &o), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "byte offset 2"));
    assert_null(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpe_merges),        cmocka_unit_test(test_bpe_matches_reference),
        cmocka_unit_test(test_ignore_merges),     cmocka_unit_test(test_added_tokens),
        cmocka_unit_test(test_template_and_decode), cmocka_unit_test(test_utf8_errors),
        cmocka_unit_test(test_file_errors),       cmocka_unit_test(test_bitvla_edits),
        cmocka_unit_test(test_chat_template),     cmocka_unit_test(test_action_prompt),
        cmocka_unit_test(test_save_load_roundtrip), cmocka_unit_test(test_train_roundtrip),
        cmocka_unit_test(test_huge_ids),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
