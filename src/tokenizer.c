/* tokenizer.c - byte-level BPE on HF tokenizer.json (see tokenizer.h).
 *
 * Layout of the work: text -> split on added tokens (leftmost-longest, non-normalized tokens first,
 * as HF's AddedVocabulary) -> each remaining segment through the pre-tokenizer stages (PCRE2
 * regexes) -> each piece as raw bytes: whole-piece vocab hit when ignore_merges, else BPE on
 * token ids with merge ranks in a hash map (lowest rank first, leftmost on ties: HF's order).
 * The byte-level unicode mapping of GPT-2 is applied only when reading and writing the JSON: the
 * tables hold raw bytes, so the hot path never converts characters. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "src/tokenizer.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>

#include "src/atomic_file.h"

/* ------------------------------------------------------------------------------------------ */
/* small helpers                                                                               */

#define TOK_OOM(name) bv_error_set(BV_ERR_NOMEM, "%s: out of memory", (name))

void bv_tok_ids_free(bv_tok_ids *v) {
    free(v->ids);
    v->ids = NULL;
    v->len = v->cap = 0;
}

static bool ids_reserve(bv_tok_ids *v, size_t extra) {
    if (v->len + extra <= v->cap) return true;
    size_t nc = v->cap ? v->cap : 64;
    while (nc < v->len + extra) nc *= 2;
    int32_t *p = realloc(v->ids, nc * sizeof *p);
    if (!p) return false;
    v->ids = p;
    v->cap = nc;
    return true;
}

static inline bool ids_push(bv_tok_ids *v, int32_t id) {
    if (v->len == v->cap && !ids_reserve(v, 1)) return false;
    v->ids[v->len++] = id;
    return true;
}

/* growable byte buffer */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static bool sb_add(sbuf *b, const void *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *q = realloc(b->p, nc);
        if (!q) return false;
        b->p = q;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return true;
}
static bool sb_str(sbuf *b, const char *s) { return sb_add(b, s, strlen(s)); }

static inline uint64_t rd64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 32;
    return x;
}

static uint64_t hash_bytes(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        h = mix64(h ^ rd64(p)) + 0x632be59bd9b4e019ull;
        p += 8;
        n -= 8;
    }
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t |= (uint64_t)p[i] << (8 * i);
    return mix64(h ^ t ^ 0x8cb92ba72f3d8dd7ull);
}

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                        */

int64_t bv_utf8_invalid_at(const char *text, size_t len) {
    const uint8_t *s = (const uint8_t *)text;
    size_t i = 0;
    while (i < len) {
        /* ASCII fast path, 8 bytes at a time */
        while (i + 8 <= len && (rd64(s + i) & 0x8080808080808080ull) == 0) i += 8;
        if (i >= len) break;
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            n = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            n = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else
            return (int64_t)i;
        if (i + 1 >= len || s[i + 1] < lo || s[i + 1] > hi) return (int64_t)i;
        for (size_t k = 2; k < n; k++)
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80) return (int64_t)i;
        i += n;
    }
    return -1;
}

/* Decode one code point of valid UTF-8 at s[0..), return its length. */
static inline int utf8_dec(const uint8_t *s, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
          (s[3] & 0x3F);
    return 4;
}

static int utf8_enc(uint32_t cp, char *o) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s accept). */
static inline bool cp_is_ws(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
/* Python's str.isspace (Jinja's trim): White_Space plus U+001C..U+001F. */
static inline bool cp_is_pyspace(uint32_t c) { return cp_is_ws(c) || (c >= 0x1C && c <= 0x1F); }

/* Replace ill-formed sequences by U+FFFD, one per maximal subpart (Rust from_utf8_lossy, WHATWG). */
static bool utf8_lossy(const uint8_t *s, size_t len, sbuf *out) {
    size_t i = 0, run = 0;
    while (i < len) {
        int64_t bad = bv_utf8_invalid_at((const char *)s + i, len - i);
        if (bad < 0) break;
        size_t b = i + (size_t)bad;
        if (!sb_add(out, s + run, b - run)) return false;
        /* length of the maximal subpart starting at b */
        uint8_t c = s[b];
        size_t n = 1;
        uint8_t lo = 0x80, hi = 0xBF;
        size_t need = 0;
        if (c >= 0xC2 && c <= 0xDF)
            need = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 3;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 4;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        }
        if (need) {
            if (b + 1 < len && s[b + 1] >= lo && s[b + 1] <= hi) {
                n = 2;
                while (n < need && b + n < len && (s[b + n] & 0xC0) == 0x80) n++;
            }
        }
        if (!sb_add(out, "\xEF\xBF\xBD", 3)) return false;
        i = run = b + n;
    }
    return sb_add(out, s + run, len - run);
}

/* ------------------------------------------------------------------------------------------ */
/* GPT-2 byte <-> unicode mapping                                                              */

static uint32_t g_byte2cp[256];
static int16_t g_cp2byte[324]; /* code points 0..323 -> byte or -1 */

static void bytelevel_init(void) {
    static bool done;
    if (__atomic_load_n(&done, __ATOMIC_ACQUIRE)) return;
    int16_t c2b[324];
    uint32_t b2c[256];
    for (int i = 0; i < 324; i++) c2b[i] = -1;
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        b2c[b] = keep ? (uint32_t)b : (uint32_t)(256 + n++);
        c2b[b2c[b]] = (int16_t)b;
    }
    memcpy(g_byte2cp, b2c, sizeof b2c);
    memcpy(g_cp2byte, c2b, sizeof c2b);
    __atomic_store_n(&done, true, __ATOMIC_RELEASE);
}

/* byte-level string (valid UTF-8) -> raw bytes; false if a char is outside the mapping */
static bool bytelevel_decode(const char *s, size_t n, sbuf *out) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        i += (size_t)utf8_dec(u + i, &cp);
        if (cp >= 324 || g_cp2byte[cp] < 0) return false;
        char b = (char)g_cp2byte[cp];
        if (!sb_add(out, &b, 1)) return false;
    }
    return true;
}

static bool bytelevel_encode(const char *s, size_t n, sbuf *out) {
    for (size_t i = 0; i < n; i++) {
        char tmp[4];
        int k = utf8_enc(g_byte2cp[(uint8_t)s[i]], tmp);
        if (!sb_add(out, tmp, (size_t)k)) return false;
    }
    return true;
}

/* ------------------------------------------------------------------------------------------ */
/* the tokenizer                                                                               */

enum { KIND_NONE = 0, KIND_MODEL = 1, KIND_ADDED = 2 };

typedef struct {
    uint32_t h;  /* high bits of the hash, 0 = empty slot */
    int32_t id;
} vslot;

typedef struct {
    uint64_t key; /* (left << 32) | right; UINT64_MAX = empty */
    uint32_t rank;
    int32_t id;
} mslot;

typedef struct {
    int32_t id;
    char *content;
    size_t len;
    bool special, lstrip, rstrip, single_word, normalized;
} added_tok;

/* a token whose id lies beyond the dense table (an added token far above the vocabulary) */
typedef struct {
    int32_t id; /* -1 = empty slot */
    uint8_t kind;
    uint32_t off, len;
} sslot;

/* byte trie over added-token contents */
typedef struct {
    int32_t child, sibling; /* -1 = none */
    int32_t tok;            /* index into added[] ending here, -1 */
    uint8_t byte;
} tnode;

typedef struct {
    tnode *nodes;
    int n, cap;
    bool first[256]; /* bytes that start some token */
} trie;

enum { ST_REGEX = 1, ST_PREFIX = 2 };
typedef struct {
    int kind;
    pcre2_code *re;
    bool jit;
    bool removed; /* behavior Removed: drop the delimiters */
    bool invert;
} stage;

struct bv_tok {
    char *name;
    /* per id. Ids below dense_max live in dense tables indexed by id ([0, n_dense) allocated);
     * ids at or above it (added tokens only: HF allows any id) in the hash table sp. dense_max is
     * the number of tokens in the file, so memory follows the file's size, not its largest id. */
    int32_t n_ids; /* largest id + 1 */
    int32_t n_dense, dense_cap, dense_max;
    sslot *sp;
    uint32_t sp_mask, sp_n;
    uint8_t *kind;
    uint8_t *raw_model; /* model token whose string is not byte-level: stored and matched as given */
    uint32_t *off, *len; /* bytes (decode form) in blob */
    char *blob;
    size_t blob_len, blob_cap;
    /* model */
    int32_t n_model;
    vslot *vtab;
    uint32_t vmask;
    mslot *mtab;
    uint32_t mmask;
    int32_t *merge_a, *merge_b; /* in rank order, for saving */
    int32_t n_merges;
    int32_t byte_id[256];
    bool ignore_merges;
    int32_t unk_id;
    char *unk_token;
    /* added tokens */
    added_tok *added;
    int n_added;
    trie trie_raw, trie_norm;
    pcre2_code *re_word; /* single_word: is this char alphanumeric */
    /* pre-tokenizer */
    stage *stages;
    int n_stages;
    bool bytelevel;
    /* post-processor template */
    int32_t *tpl_pre, *tpl_post;
    int n_tpl_pre, n_tpl_post;
    bool has_template;
    /* kept for bv_tok_save */
    json_t *j_normalizer, *j_pre, *j_post, *j_decoder, *j_truncation, *j_padding;
};

static bool blob_add(bv_tok *t, const void *s, size_t n, uint32_t *off) {
    if (t->blob_len + n > t->blob_cap) {
        size_t nc = t->blob_cap ? t->blob_cap : 4096;
        while (nc < t->blob_len + n) nc *= 2;
        if (nc > UINT32_MAX) return false;
        char *p = realloc(t->blob, nc);
        if (!p) return false;
        t->blob = p;
        t->blob_cap = nc;
    }
    if (n) memcpy(t->blob + t->blob_len, s, n);
    *off = (uint32_t)t->blob_len;
    t->blob_len += n;
    return true;
}

/* make ids [0, n) dense slots (n <= dense_max); ids it adds are KIND_NONE */
static bool dense_grow(bv_tok *t, int32_t n) {
    if (n <= t->n_dense) return true;
    if (n > t->dense_max) return false; /* callers check first; never allocate past the bound */
    if (n > t->dense_cap) { /* geometric: ids arrive one by one while loading */
        int32_t cap = t->dense_cap ? t->dense_cap : 1024;
        while (cap < n) cap = cap > INT32_MAX / 2 ? n : cap * 2;
        if (cap > t->dense_max) cap = t->dense_max;
        uint8_t *k = realloc(t->kind, (size_t)cap);
        if (!k) return false;
        t->kind = k;
        uint8_t *r = realloc(t->raw_model, (size_t)cap);
        if (!r) return false;
        t->raw_model = r;
        uint32_t *o = realloc(t->off, (size_t)cap * 4);
        if (!o) return false;
        t->off = o;
        uint32_t *l = realloc(t->len, (size_t)cap * 4);
        if (!l) return false;
        t->len = l;
        t->dense_cap = cap;
    }
    for (int32_t i = t->n_dense; i < n; i++) {
        t->kind[i] = KIND_NONE;
        t->raw_model[i] = 0;
        t->off[i] = t->len[i] = 0;
    }
    t->n_dense = n;
    return true;
}

/* dense ids [0, n), counted in the vocabulary size */
static bool ids_grow(bv_tok *t, int32_t n) {
    if (!dense_grow(t, n)) return false;
    if (n > t->n_ids) t->n_ids = n;
    return true;
}

static inline uint32_t sp_hash(int32_t id) { return (uint32_t)id * 2654435761u; }

static const sslot *sparse_find(const bv_tok *t, int32_t id) {
    if (!t->sp) return NULL;
    for (uint32_t i = sp_hash(id) & t->sp_mask;; i = (i + 1) & t->sp_mask) {
        if (t->sp[i].id == id) return &t->sp[i];
        if (t->sp[i].id < 0) return NULL;
    }
}

/* the slot of sparse id (created KIND_NONE if absent); NULL when out of memory */
static sslot *sparse_put(bv_tok *t, int32_t id) {
    const sslot *found = sparse_find(t, id);
    if (found) return &t->sp[found - t->sp];
    if (2 * (t->sp_n + 1) > (t->sp ? t->sp_mask + 1 : 0)) {
        uint32_t cap = t->sp ? 2 * (t->sp_mask + 1) : 64;
        sslot *ns = malloc((size_t)cap * sizeof *ns);
        if (!ns) return NULL;
        for (uint32_t i = 0; i < cap; i++) ns[i].id = -1;
        for (uint32_t i = 0; t->sp && i <= t->sp_mask; i++) {
            if (t->sp[i].id < 0) continue;
            uint32_t j = sp_hash(t->sp[i].id) & (cap - 1);
            while (ns[j].id >= 0) j = (j + 1) & (cap - 1);
            ns[j] = t->sp[i];
        }
        free(t->sp);
        t->sp = ns;
        t->sp_mask = cap - 1;
    }
    uint32_t i = sp_hash(id) & t->sp_mask;
    while (t->sp[i].id >= 0) i = (i + 1) & t->sp_mask;
    t->sp[i] = (sslot){id, KIND_NONE, 0, 0};
    t->sp_n++;
    return &t->sp[i];
}

static void sparse_clear(bv_tok *t) {
    free(t->sp);
    t->sp = NULL;
    t->sp_mask = t->sp_n = 0;
}

/* kind of token id (KIND_NONE if there is none) and, when bytes is not NULL, its decoded bytes
 * (NULL and 0 for no token) */
static inline int id_get(const bv_tok *t, int32_t id, const char **bytes, size_t *n) {
    int kind = KIND_NONE;
    uint32_t off = 0, len = 0;
    if (id >= 0 && id < t->n_dense) {
        kind = t->kind[id], off = t->off[id], len = t->len[id];
    } else if (id >= t->dense_max) {
        const sslot *e = sparse_find(t, id);
        if (e) kind = e->kind, off = e->off, len = e->len;
    }
    if (bytes) {
        *bytes = kind == KIND_NONE ? NULL : t->blob ? t->blob + off : ""; /* no blob yet: empty tokens only */
        *n = kind == KIND_NONE ? 0 : len;
    }
    return kind;
}

/* the kind and byte range of id, creating its slot (dense below dense_max, else sparse); false
 * when out of memory. The pointers are valid until the next slot is created. */
static bool id_slot(bv_tok *t, int32_t id, uint8_t **kind, uint32_t **off, uint32_t **len) {
    if (id < t->dense_max) {
        if (!dense_grow(t, id + 1)) return false;
        *kind = &t->kind[id], *off = &t->off[id], *len = &t->len[id];
        return true;
    }
    sslot *e = sparse_put(t, id);
    if (!e) return false;
    *kind = &e->kind, *off = &e->off, *len = &e->len;
    return true;
}

/* ---- vocab hash (model tokens by bytes) ---- */

static bool vtab_init(bv_tok *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap *= 2;
    t->vtab = calloc(cap, sizeof *t->vtab);
    if (!t->vtab) return false;
    t->vmask = (uint32_t)(cap - 1);
    return true;
}

static inline uint32_t vh(uint64_t h) { return (uint32_t)(h >> 32) | 1u; }

static int32_t vtab_get(const bv_tok *t, const void *s, size_t n) {
    uint64_t h = hash_bytes(s, n);
    uint32_t tag = vh(h), i = (uint32_t)h & t->vmask;
    for (;;) {
        const vslot *e = &t->vtab[i];
        if (!e->h) return -1;
        if (e->h == tag && t->len[e->id] == n && !memcmp(t->blob + t->off[e->id], s, n)) return e->id;
        i = (i + 1) & t->vmask;
    }
}

/* insert id (its bytes already in the blob); returns the id already there on a duplicate */
static int32_t vtab_put(bv_tok *t, int32_t id) {
    const char *s = t->blob + t->off[id];
    size_t n = t->len[id];
    uint64_t h = hash_bytes(s, n);
    uint32_t tag = vh(h), i = (uint32_t)h & t->vmask;
    for (;;) {
        vslot *e = &t->vtab[i];
        if (!e->h) {
            e->h = tag;
            e->id = id;
            return id;
        }
        if (e->h == tag && t->len[e->id] == n && !memcmp(t->blob + t->off[e->id], s, n)) return e->id;
        i = (i + 1) & t->vmask;
    }
}

/* ---- merges hash ---- */

static bool mtab_init(bv_tok *t, size_t n) {
    size_t cap = 16;
    while (cap < 2 * n + 16) cap *= 2;
    t->mtab = malloc(cap * sizeof *t->mtab);
    if (!t->mtab) return false;
    for (size_t i = 0; i < cap; i++) t->mtab[i].key = UINT64_MAX;
    t->mmask = (uint32_t)(cap - 1);
    return true;
}

static inline uint64_t mkey(int32_t a, int32_t b) { return ((uint64_t)(uint32_t)a << 32) | (uint32_t)b; }

static inline const mslot *mtab_get(const bv_tok *t, int32_t a, int32_t b) {
    uint64_t k = mkey(a, b);
    uint32_t i = (uint32_t)mix64(k) & t->mmask;
    for (;;) {
        const mslot *e = &t->mtab[i];
        if (e->key == k) return e;
        if (e->key == UINT64_MAX) return NULL;
        i = (i + 1) & t->mmask;
    }
}

/* false if the pair is already there (HF keeps the first rank) */
static bool mtab_put(bv_tok *t, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t k = mkey(a, b);
    uint32_t i = (uint32_t)mix64(k) & t->mmask;
    for (;;) {
        mslot *e = &t->mtab[i];
        if (e->key == k) return false;
        if (e->key == UINT64_MAX) {
            e->key = k;
            e->rank = rank;
            e->id = id;
            return true;
        }
        i = (i + 1) & t->mmask;
    }
}

/* ---- added-token trie ---- */

static void trie_free(trie *tr) {
    free(tr->nodes);
    memset(tr, 0, sizeof *tr);
}

static bool trie_node(trie *tr, uint8_t byte, int32_t *idx) {
    if (tr->n == tr->cap) {
        int nc = tr->cap ? tr->cap * 2 : 64;
        tnode *p = realloc(tr->nodes, (size_t)nc * sizeof *p);
        if (!p) return false;
        tr->nodes = p;
        tr->cap = nc;
    }
    tr->nodes[tr->n] = (tnode){-1, -1, -1, byte};
    *idx = tr->n++;
    return true;
}

static bool trie_add(trie *tr, const char *s, size_t n, int32_t tok) {
    int32_t cur;
    if (tr->n == 0 && !trie_node(tr, 0, &cur)) return false; /* root = 0 */
    cur = 0;
    tr->first[(uint8_t)s[0]] = true;
    for (size_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)s[i];
        int32_t c = tr->nodes[cur].child, found = -1;
        while (c >= 0) {
            if (tr->nodes[c].byte == b) {
                found = c;
                break;
            }
            c = tr->nodes[c].sibling;
        }
        if (found < 0) {
            if (!trie_node(tr, b, &found)) return false;
            tr->nodes[found].sibling = tr->nodes[cur].child;
            tr->nodes[cur].child = found;
        }
        cur = found;
    }
    if (tr->nodes[cur].tok < 0) tr->nodes[cur].tok = tok; /* first token with this content wins */
    return true;
}

/* longest token starting at s[0..n): returns its index into added[] and *mlen, or -1 */
static int32_t trie_longest(const trie *tr, const uint8_t *s, size_t n, size_t *mlen) {
    int32_t cur = 0, best = -1;
    for (size_t i = 0; i < n; i++) {
        int32_t c = tr->nodes[cur].child;
        while (c >= 0 && tr->nodes[c].byte != s[i]) c = tr->nodes[c].sibling;
        if (c < 0) break;
        cur = c;
        if (tr->nodes[cur].tok >= 0) {
            best = tr->nodes[cur].tok;
            *mlen = i + 1;
        }
    }
    return best;
}

static bool rebuild_tries(bv_tok *t) {
    trie_free(&t->trie_raw);
    trie_free(&t->trie_norm);
    for (int i = 0; i < t->n_added; i++) {
        added_tok *a = &t->added[i];
        if (a->len == 0) continue;
        if (!trie_add(a->normalized ? &t->trie_norm : &t->trie_raw, a->content, a->len, i)) return false;
    }
    return true;
}

/* bytes of an added token as HF decodes it: byte-level chars mapped back if every char maps */
static bool added_set_bytes(bv_tok *t, int32_t id, const char *content, size_t n) {
    uint8_t *kind;
    uint32_t *off, *len;
    if (!id_slot(t, id, &kind, &off, &len)) return false;
    sbuf b = {0};
    bool ok = true;
    if (t->bytelevel && bytelevel_decode(content, n, &b))
        ok = blob_add(t, b.p ? b.p : "", b.len, off), *len = (uint32_t)b.len;
    else
        ok = blob_add(t, content, n, off), *len = (uint32_t)n;
    free(b.p);
    return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* regex stages                                                                                */

static const char *k_gpt2_regex = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char *k_llama3_regex = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                                    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* HF's regexes are Oniguruma's; PCRE2's \s (with UCP) also takes U+180E, which Unicode no longer
 * counts as white space. Rewrite \s to the White_Space set; \S outside classes likewise. */
static bool regex_rewrite(const char *pat, size_t n, sbuf *out) {
    static const char ws_in[] = "\\t-\\r \\x{85}\\p{Z}";
    bool in_class = false;
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\' && i + 1 < n) {
            char d = pat[i + 1];
            bool ok;
            if (d == 's')
                ok = in_class ? sb_str(out, ws_in) : (sb_str(out, "[") && sb_str(out, ws_in) && sb_str(out, "]"));
            else if (d == 'S' && !in_class)
                ok = sb_str(out, "[^") && sb_str(out, ws_in) && sb_str(out, "]");
            else
                ok = sb_add(out, pat + i, 2);
            if (!ok) return false;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = true;
            if (!sb_add(out, pat + i, 1)) return false;
            /* a ']' right after '[' or '[^' is literal */
            if (i + 1 < n && pat[i + 1] == '^') {
                if (!sb_add(out, pat + ++i, 1)) return false;
            }
            if (i + 1 < n && pat[i + 1] == ']') {
                if (!sb_add(out, pat + ++i, 1)) return false;
            }
            continue;
        }
        if (in_class && c == '[' && i + 1 < n && pat[i + 1] == ':') { /* POSIX class [:name:] */
            const char *e = strstr(pat + i + 2, ":]");
            if (e && (size_t)(e - pat) < n) {
                if (!sb_add(out, pat + i, (size_t)(e + 2 - (pat + i)))) return false;
                i = (size_t)(e + 1 - pat);
                continue;
            }
        }
        if (in_class && c == ']') in_class = false;
        if (!sb_add(out, &c, 1)) return false;
    }
    return true;
}

static bv_status stage_compile(const char *name, const char *field, const char *pat, size_t n, bool literal,
                               stage *st) {
    sbuf rw = {0};
    bool ok;
    if (literal) { /* Split with a String pattern: match it literally */
        ok = sb_str(&rw, "\\Q");
        for (size_t i = 0; ok && i < n; i++) {
            if (pat[i] == '\\' && i + 1 < n && pat[i + 1] == 'E')
                ok = sb_str(&rw, "\\E\\\\E\\Q"), i++;
            else
                ok = sb_add(&rw, pat + i, 1);
        }
        ok = ok && sb_str(&rw, "\\E");
    } else
        ok = regex_rewrite(pat, n, &rw);
    if (!ok) {
        free(rw.p);
        return TOK_OOM(name);
    }
    int err;
    PCRE2_SIZE eoff;
    st->re = pcre2_compile((PCRE2_SPTR)rw.p, rw.len, PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &eoff, NULL);
    free(rw.p);
    if (!st->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return bv_error_set(BV_ERR_FORMAT, "%s: %s: regex %.*s does not compile: %s", name, field, (int)BV_MIN(n, 300),
                            pat, (char *)msg);
    }
    st->jit = pcre2_jit_compile(st->re, PCRE2_JIT_COMPLETE) == 0;
    st->kind = ST_REGEX;
    return BV_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* loading                                                                                     */

void bv_tok_free(bv_tok *t) {
    if (!t) return;
    free(t->name);
    free(t->kind);
    free(t->sp);
    free(t->raw_model);
    free(t->off);
    free(t->len);
    free(t->blob);
    free(t->vtab);
    free(t->mtab);
    free(t->merge_a);
    free(t->merge_b);
    free(t->unk_token);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    trie_free(&t->trie_raw);
    trie_free(&t->trie_norm);
    if (t->re_word) pcre2_code_free(t->re_word);
    for (int i = 0; i < t->n_stages; i++)
        if (t->stages[i].re) pcre2_code_free(t->stages[i].re);
    free(t->stages);
    free(t->tpl_pre);
    free(t->tpl_post);
    json_decref(t->j_normalizer);
    json_decref(t->j_pre);
    json_decref(t->j_post);
    json_decref(t->j_decoder);
    json_decref(t->j_truncation);
    json_decref(t->j_padding);
    free(t);
}

static const char *jtype_name(const json_t *j) {
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* optional boolean field (absent or null = def) */
static bv_status jbool(const char *name, const char *where, json_t *o, const char *key, bool def, bool *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return BV_OK;
    }
    if (!json_is_boolean(v))
        return bv_error_set(BV_ERR_FORMAT, "%s: %s.%s: expected a boolean, found %s", name, where, key, jtype_name(v));
    *out = json_is_true(v);
    return BV_OK;
}

static bool jnull_or_empty(json_t *v) { return !v || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0); }

static bv_status add_stage(bv_tok *t, stage st) {
    stage *p = realloc(t->stages, (size_t)(t->n_stages + 1) * sizeof *p);
    if (!p) {
        if (st.re) pcre2_code_free(st.re);
        return TOK_OOM(t->name);
    }
    t->stages = p;
    t->stages[t->n_stages++] = st;
    return BV_OK;
}

static bv_status parse_pretok(bv_tok *t, json_t *j, const char *where) {
    if (!json_is_object(j))
        return bv_error_set(BV_ERR_FORMAT, "%s: %s: expected an object, found %s", t->name, where, jtype_name(j));
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return bv_error_set(BV_ERR_FORMAT, "%s: %s.type: missing or not a string", t->name, where);
    bv_status st;
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(j, "pretokenizers");
        if (!json_is_array(arr))
            return bv_error_set(BV_ERR_FORMAT, "%s: %s.pretokenizers: expected an array", t->name, where);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char w[128];
            snprintf(w, sizeof w, "%s.pretokenizers[%zu]", where, i);
            if ((st = parse_pretok(t, json_array_get(arr, i), w)) != BV_OK) return st;
        }
        return BV_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        bool prefix, use_regex;
        if ((st = jbool(t->name, where, j, "add_prefix_space", true, &prefix)) != BV_OK) return st;
        if ((st = jbool(t->name, where, j, "use_regex", true, &use_regex)) != BV_OK) return st;
        t->bytelevel = true;
        if (prefix && (st = add_stage(t, (stage){.kind = ST_PREFIX})) != BV_OK) return st;
        if (use_regex) {
            stage s = {0};
            if ((st = stage_compile(t->name, where, k_gpt2_regex, strlen(k_gpt2_regex), false, &s)) != BV_OK) return st;
            if ((st = add_stage(t, s)) != BV_OK) return st;
        }
        return BV_OK;
    }
    if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(j, "pattern");
        json_t *rx = json_object_get(pat, "Regex"), *str = json_object_get(pat, "String");
        if (!json_is_string(rx) && !json_is_string(str))
            return bv_error_set(BV_ERR_FORMAT, "%s: %s.pattern: expected {\"Regex\": string} or {\"String\": string}",
                                t->name, where);
        const char *beh = json_string_value(json_object_get(j, "behavior"));
        if (!beh) return bv_error_set(BV_ERR_FORMAT, "%s: %s.behavior: missing or not a string", t->name, where);
        stage s = {0};
        if (!strcmp(beh, "Removed"))
            s.removed = true;
        else if (strcmp(beh, "Isolated"))
            return bv_error_set(BV_ERR_UNSUPPORTED,
                                "%s: %s.behavior: '%s' is not supported (Isolated and Removed are)", t->name, where, beh);
        bool inv;
        if ((st = jbool(t->name, where, j, "invert", false, &inv)) != BV_OK) return st;
        json_t *p = rx ? rx : str;
        if ((st = stage_compile(t->name, where, json_string_value(p), json_string_length(p), !rx, &s)) != BV_OK) return st;
        s.invert = inv;
        return add_stage(t, s);
    }
    return bv_error_set(BV_ERR_UNSUPPORTED,
                        "%s: %s: pre-tokenizer type '%s' is not supported (Split, ByteLevel and Sequence are)", t->name,
                        where, type);
}

static bv_status tpl_push(bv_tok *t, int32_t **arr, int *n, int32_t id) {
    int32_t *p = realloc(*arr, (size_t)(*n + 1) * sizeof *p);
    if (!p) return TOK_OOM(t->name);
    p[(*n)++] = id;
    *arr = p;
    return BV_OK;
}

static bv_status parse_post(bv_tok *t, json_t *j, const char *where) {
    if (!j || json_is_null(j)) return BV_OK;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return bv_error_set(BV_ERR_FORMAT, "%s: %s.type: missing or not a string", t->name, where);
    bv_status st;
    if (!strcmp(type, "ByteLevel")) return BV_OK; /* offsets only */
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(j, "processors");
        if (!json_is_array(arr))
            return bv_error_set(BV_ERR_FORMAT, "%s: %s.processors: expected an array", t->name, where);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char w[128];
            snprintf(w, sizeof w, "%s.processors[%zu]", where, i);
            if ((st = parse_post(t, json_array_get(arr, i), w)) != BV_OK) return st;
        }
        return BV_OK;
    }
    if (!strcmp(type, "TemplateProcessing")) {
        if (t->has_template)
            return bv_error_set(BV_ERR_UNSUPPORTED, "%s: %s: more than one TemplateProcessing", t->name, where);
        json_t *single = json_object_get(j, "single"), *specials = json_object_get(j, "special_tokens");
        if (!json_is_array(single))
            return bv_error_set(BV_ERR_FORMAT, "%s: %s.single: expected an array", t->name, where);
        bool seen_a = false;
        for (size_t i = 0; i < json_array_size(single); i++) {
            json_t *piece = json_array_get(single, i);
            json_t *sp = json_object_get(piece, "SpecialToken"), *seq = json_object_get(piece, "Sequence");
            if (seq) {
                const char *sid = json_string_value(json_object_get(seq, "id"));
                if (!sid || strcmp(sid, "A"))
                    return bv_error_set(BV_ERR_FORMAT, "%s: %s.single[%zu].Sequence.id: expected \"A\"", t->name, where, i);
                seen_a = true;
                continue;
            }
            const char *name = json_string_value(json_object_get(sp, "id"));
            if (!name)
                return bv_error_set(BV_ERR_FORMAT, "%s: %s.single[%zu]: expected a SpecialToken or Sequence", t->name,
                                    where, i);
            json_t *ids = json_object_get(json_object_get(specials, name), "ids");
            if (!json_is_array(ids))
                return bv_error_set(BV_ERR_FORMAT, "%s: %s.special_tokens: no ids for '%s'", t->name, where, name);
            for (size_t k = 0; k < json_array_size(ids); k++) {
                json_t *v = json_array_get(ids, k);
                if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
                    return bv_error_set(BV_ERR_FORMAT, "%s: %s.special_tokens.%s.ids[%zu]: expected a token id", t->name,
                                        where, name, k);
                int32_t id = (int32_t)json_integer_value(v);
                st = seen_a ? tpl_push(t, &t->tpl_post, &t->n_tpl_post, id) : tpl_push(t, &t->tpl_pre, &t->n_tpl_pre, id);
                if (st != BV_OK) return st;
            }
        }
        t->has_template = true;
        return BV_OK;
    }
    return bv_error_set(BV_ERR_UNSUPPORTED,
                        "%s: %s: post-processor type '%s' is not supported (TemplateProcessing, ByteLevel and Sequence are)",
                        t->name, where, type);
}

static bv_status parse_decoder(bv_tok *t, json_t *j) {
    if (!j || json_is_null(j)) return BV_OK;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return bv_error_set(BV_ERR_FORMAT, "%s: decoder.type: missing or not a string", t->name);
    if (strcmp(type, "ByteLevel"))
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: decoder: type '%s' is not supported (ByteLevel is)", t->name, type);
    return BV_OK;
}

/* set token id -> bytes; model tokens also go into the vocab hash */
static bv_status set_model_token(bv_tok *t, int32_t id, const char *s, size_t n, sbuf *tmp) {
    if (!ids_grow(t, id + 1)) return TOK_OOM(t->name); /* id < dense_max: parse_model checked it */
    if (t->kind[id] != KIND_NONE)
        return bv_error_set(BV_ERR_FORMAT, "%s: model.vocab: id %d is used twice", t->name, (int)id);
    t->kind[id] = KIND_MODEL;
    tmp->len = 0;
    if (t->bytelevel && bytelevel_decode(s, n, tmp)) {
        if (!blob_add(t, tmp->p ? tmp->p : "", tmp->len, &t->off[id])) return TOK_OOM(t->name);
        t->len[id] = (uint32_t)tmp->len;
    } else {
        if (!blob_add(t, s, n, &t->off[id])) return TOK_OOM(t->name);
        t->len[id] = (uint32_t)n;
        t->raw_model[id] = 1;
    }
    vtab_put(t, id);
    return BV_OK;
}

/* id of a model token given its string as in the JSON (byte-level form) */
static int32_t model_id_of(bv_tok *t, const char *s, size_t n, sbuf *tmp) {
    tmp->len = 0;
    if (t->bytelevel && bytelevel_decode(s, n, tmp)) {
        int32_t id = vtab_get(t, tmp->p ? tmp->p : "", tmp->len);
        if (id >= 0 && !t->raw_model[id]) return id;
    }
    int32_t id = vtab_get(t, s, n);
    return id >= 0 && t->raw_model[id] ? id : -1;
}

static bv_status add_merge(bv_tok *t, int32_t a, int32_t b, int32_t id) {
    if (t->n_merges % 1024 == 0) {
        int32_t *pa = realloc(t->merge_a, (size_t)(t->n_merges + 1024) * 4);
        if (!pa) return TOK_OOM(t->name);
        t->merge_a = pa;
        int32_t *pb = realloc(t->merge_b, (size_t)(t->n_merges + 1024) * 4);
        if (!pb) return TOK_OOM(t->name);
        t->merge_b = pb;
    }
    if (!mtab_put(t, a, b, (uint32_t)t->n_merges, id)) return BV_OK; /* duplicate merge: first rank wins */
    t->merge_a[t->n_merges] = a;
    t->merge_b[t->n_merges] = b;
    t->n_merges++;
    return BV_OK;
}

static bv_status parse_model(bv_tok *t, json_t *m) {
    if (!json_is_object(m)) return bv_error_set(BV_ERR_FORMAT, "%s: model: missing or not an object", t->name);
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *vocab = json_object_get(m, "vocab"), *merges = json_object_get(m, "merges");
    if (type && strcmp(type, "BPE"))
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: model.type: '%s' is not supported (only byte-level BPE is)", t->name,
                            type);
    if (!type && !merges)
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: model: no type and no merges: not a BPE model (only byte-level BPE is supported)",
                            t->name);
    if (!json_is_object(vocab)) return bv_error_set(BV_ERR_FORMAT, "%s: model.vocab: missing or not an object", t->name);
    if (!json_is_array(merges)) return bv_error_set(BV_ERR_FORMAT, "%s: model.merges: missing or not an array", t->name);
    json_t *v = json_object_get(m, "dropout");
    if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0.0))
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: model.dropout: BPE dropout is not supported (must be null)", t->name);
    if (!jnull_or_empty(json_object_get(m, "continuing_subword_prefix")) ||
        !jnull_or_empty(json_object_get(m, "end_of_word_suffix")))
        return bv_error_set(BV_ERR_UNSUPPORTED,
                            "%s: model: continuing_subword_prefix / end_of_word_suffix are not supported (must be null)",
                            t->name);
    bool bf;
    bv_status st;
    if ((st = jbool(t->name, "model", m, "byte_fallback", false, &bf)) != BV_OK) return st;
    if (bf)
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: model.byte_fallback: byte-fallback BPE is not supported (only byte-level BPE)",
                            t->name);
    if ((st = jbool(t->name, "model", m, "ignore_merges", false, &t->ignore_merges)) != BV_OK) return st;

    size_t nv = json_object_size(vocab);
    if (!vtab_init(t, nv)) return TOK_OOM(t->name);
    sbuf tmp = {0};
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        /* model ids index dense tables: each must be below the number of tokens in the file */
        if (!json_is_integer(val)) {
            free(tmp.p);
            return bv_error_set(BV_ERR_FORMAT, "%s: model.vocab[\"%.80s\"]: expected an integer id in [0, %d], found %s",
                                t->name, key, (int)t->dense_max - 1, jtype_name(val));
        }
        if (json_integer_value(val) < 0 || json_integer_value(val) >= t->dense_max) {
            free(tmp.p);
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: model.vocab[\"%.80s\"]: id %lld is out of range: expected an integer in [0, %d] "
                                "(model ids must be below the number of tokens in the file, %d)",
                                t->name, key, (long long)json_integer_value(val), (int)t->dense_max - 1, (int)t->dense_max);
        }
        int32_t id = (int32_t)json_integer_value(val);
        if ((st = set_model_token(t, id, key, strlen(key), &tmp)) != BV_OK) {
            free(tmp.p);
            return st;
        }
        if (id + 1 > t->n_model) t->n_model = id + 1;
    }
    json_t *unk = json_object_get(m, "unk_token");
    t->unk_id = -1;
    if (json_is_string(unk)) {
        t->unk_token = bv_xstrdup(json_string_value(unk));
        t->unk_id = model_id_of(t, t->unk_token, strlen(t->unk_token), &tmp);
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->byte_id[b] = vtab_get(t, &c, 1);
        if (t->byte_id[b] >= 0 && t->raw_model[t->byte_id[b]]) t->byte_id[b] = -1;
    }

    size_t nm = json_array_size(merges);
    if (!mtab_init(t, nm)) {
        free(tmp.p);
        return TOK_OOM(t->name);
    }
    sbuf cat = {0};
    for (size_t i = 0; i < nm; i++) {
        json_t *e = json_array_get(merges, i);
        const char *a, *b;
        size_t la, lb;
        if (json_is_string(e)) { /* "a b" (tokenizers < 0.20) */
            const char *s = json_string_value(e);
            const char *sp = strchr(s, ' ');
            if (!sp || strchr(sp + 1, ' ')) {
                free(tmp.p);
                free(cat.p);
                return bv_error_set(BV_ERR_FORMAT, "%s: model.merges[%zu]: \"%.80s\" is not two tokens separated by one space",
                                    t->name, i, s);
            }
            a = s, la = (size_t)(sp - s), b = sp + 1, lb = strlen(sp + 1);
        } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0)), la = json_string_length(json_array_get(e, 0));
            b = json_string_value(json_array_get(e, 1)), lb = json_string_length(json_array_get(e, 1));
        } else {
            free(tmp.p);
            free(cat.p);
            return bv_error_set(BV_ERR_FORMAT, "%s: model.merges[%zu]: expected \"a b\" or [\"a\", \"b\"], found %s", t->name,
                                i, jtype_name(e));
        }
        int32_t ia = model_id_of(t, a, la, &tmp), ib = model_id_of(t, b, lb, &tmp);
        cat.len = 0;
        if (!sb_add(&cat, a, la) || !sb_add(&cat, b, lb)) {
            free(tmp.p);
            free(cat.p);
            return TOK_OOM(t->name);
        }
        int32_t ic = model_id_of(t, cat.p, cat.len, &tmp);
        if (ia < 0 || ib < 0 || ic < 0) {
            bv_status e2 = bv_error_set(BV_ERR_FORMAT, "%s: model.merges[%zu]: token \"%.80s\" is not in model.vocab", t->name,
                                        i, ia < 0 ? a : ib < 0 ? b : cat.p);
            free(tmp.p);
            free(cat.p);
            return e2;
        }
        if ((st = add_merge(t, ia, ib, ic)) != BV_OK) {
            free(tmp.p);
            free(cat.p);
            return st;
        }
    }
    free(tmp.p);
    free(cat.p);
    return BV_OK;
}

static bv_status add_added(bv_tok *t, int32_t id, const char *content, size_t len, bool special, bool lstrip,
                           bool rstrip, bool single_word, bool normalized) {
    added_tok *p = realloc(t->added, (size_t)(t->n_added + 1) * sizeof *p);
    if (!p) return TOK_OOM(t->name);
    t->added = p;
    char *c = malloc(len + 1);
    if (!c) return TOK_OOM(t->name);
    memcpy(c, content, len);
    c[len] = 0;
    t->added[t->n_added++] = (added_tok){id, c, len, special, lstrip, rstrip, single_word, normalized};
    /* an added token over a model id keeps the model bytes for the hash but decodes as content */
    uint8_t *kind;
    uint32_t *off, *ln;
    if (!id_slot(t, id, &kind, &off, &ln)) return TOK_OOM(t->name);
    *kind = KIND_ADDED;
    if (id + 1 > t->n_ids) t->n_ids = id + 1;
    if (!added_set_bytes(t, id, content, len)) return TOK_OOM(t->name);
    return BV_OK;
}

static bv_status parse_added(bv_tok *t, json_t *arr) {
    if (!arr || json_is_null(arr)) return BV_OK;
    if (!json_is_array(arr)) return bv_error_set(BV_ERR_FORMAT, "%s: added_tokens: expected an array", t->name);
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        json_t *id = json_object_get(e, "id"), *content = json_object_get(e, "content");
        /* HF takes any u32; ids here are int32 and the vocabulary size (largest id + 1) must fit */
        if (!json_is_integer(id))
            return bv_error_set(BV_ERR_FORMAT, "%s: added_tokens[%zu].id: expected an integer in [0, %d], found %s", t->name,
                                i, INT32_MAX - 1, id ? jtype_name(id) : "nothing");
        if (json_integer_value(id) < 0 || json_integer_value(id) >= INT32_MAX)
            return bv_error_set(BV_ERR_FORMAT, "%s: added_tokens[%zu].id: %lld is out of range: expected an integer in [0, %d]",
                                t->name, i, (long long)json_integer_value(id), INT32_MAX - 1);
        if (!json_is_string(content))
            return bv_error_set(BV_ERR_FORMAT, "%s: added_tokens[%zu].content: expected a string", t->name, i);
        char w[64];
        snprintf(w, sizeof w, "added_tokens[%zu]", i);
        bool special, lstrip, rstrip, single, norm;
        bv_status st;
        if ((st = jbool(t->name, w, e, "special", false, &special)) != BV_OK ||
            (st = jbool(t->name, w, e, "lstrip", false, &lstrip)) != BV_OK ||
            (st = jbool(t->name, w, e, "rstrip", false, &rstrip)) != BV_OK ||
            (st = jbool(t->name, w, e, "single_word", false, &single)) != BV_OK ||
            (st = jbool(t->name, w, e, "normalized", !special, &norm)) != BV_OK)
            return st;
        if ((st = add_added(t, (int32_t)json_integer_value(id), json_string_value(content), json_string_length(content),
                            special, lstrip, rstrip, single, norm)) != BV_OK)
            return st;
    }
    return BV_OK;
}

static bv_status finish_added(bv_tok *t) {
    if (!rebuild_tries(t)) return TOK_OOM(t->name);
    bool need_word = false;
    for (int i = 0; i < t->n_added; i++) need_word |= t->added[i].single_word;
    if (need_word && !t->re_word) {
        int err;
        PCRE2_SIZE eo;
        /* HF tests single_word with Rust regex's Unicode \w */
        t->re_word = pcre2_compile((PCRE2_SPTR) "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]",
                                   PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_ANCHORED, &err, &eo, NULL);
        if (!t->re_word) return bv_error_set(BV_ERR_INTERNAL, "%s: cannot compile the word-character class", t->name);
    }
    return BV_OK;
}

static bv_status load_root(bv_tok *t, json_t *root) {
    if (!json_is_object(root)) return bv_error_set(BV_ERR_FORMAT, "%s: expected a JSON object at the top", t->name);
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        const char *ty = json_string_value(json_object_get(norm, "type"));
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: normalizer: type '%s' is not supported (must be null)", t->name,
                            ty ? ty : "?");
    }
    json_t *model = json_object_get(root, "model");
    if (json_is_object(model)) { /* name the unsupported kind before complaining about anything else */
        const char *ty = json_string_value(json_object_get(model, "type"));
        if (ty && strcmp(ty, "BPE"))
            return bv_error_set(BV_ERR_UNSUPPORTED, "%s: model.type: '%s' is not supported (only byte-level BPE is)",
                                t->name, ty);
    }
    json_t *pre = json_object_get(root, "pre_tokenizer");
    bv_status st;
    if (pre && !json_is_null(pre) && (st = parse_pretok(t, pre, "pre_tokenizer")) != BV_OK) return st;
    if (!t->bytelevel)
        return bv_error_set(BV_ERR_UNSUPPORTED,
                            "%s: pre_tokenizer: no ByteLevel pre-tokenizer: only byte-level BPE tokenizers are supported",
                            t->name);
    /* the dense id tables hold at most as many ids as the file has tokens (Llama-3: 128,256) */
    size_t n_tokens = json_object_size(json_object_get(model, "vocab")) +
                      json_array_size(json_object_get(root, "added_tokens"));
    t->dense_max = n_tokens < (size_t)INT32_MAX ? (int32_t)n_tokens : INT32_MAX;
    if ((st = parse_model(t, model)) != BV_OK) return st;
    if ((st = parse_added(t, json_object_get(root, "added_tokens"))) != BV_OK) return st;
    if ((st = parse_post(t, json_object_get(root, "post_processor"), "post_processor")) != BV_OK) return st;
    if ((st = parse_decoder(t, json_object_get(root, "decoder"))) != BV_OK) return st;
    for (int i = 0; i < t->n_tpl_pre; i++)
        if (id_get(t, t->tpl_pre[i], NULL, NULL) == KIND_NONE)
            return bv_error_set(BV_ERR_FORMAT, "%s: post_processor: template id %d is not a token", t->name, t->tpl_pre[i]);
    for (int i = 0; i < t->n_tpl_post; i++)
        if (id_get(t, t->tpl_post[i], NULL, NULL) == KIND_NONE)
            return bv_error_set(BV_ERR_FORMAT, "%s: post_processor: template id %d is not a token", t->name, t->tpl_post[i]);
    t->j_normalizer = json_incref(norm);
    t->j_pre = json_incref(pre);
    t->j_post = json_incref(json_object_get(root, "post_processor"));
    t->j_decoder = json_incref(json_object_get(root, "decoder"));
    t->j_truncation = json_incref(json_object_get(root, "truncation"));
    t->j_padding = json_incref(json_object_get(root, "padding"));
    return finish_added(t);
}

static bv_tok *tok_new(const char *name) {
    bytelevel_init();
    bv_tok *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->name = strdup(name ? name : "<tokenizer>");
    if (!t->name) {
        free(t);
        return NULL;
    }
    t->unk_id = -1;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    return t;
}

bv_status bv_tok_load_mem(bv_tok **out, const char *json, size_t len, const char *name) {
    *out = NULL;
    bv_tok *t = tok_new(name);
    if (!t) return TOK_OOM(name ? name : "tokenizer");
    json_error_t je;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);
    if (!root) {
        bv_status st = bv_error_set(BV_ERR_FORMAT, "%s: not valid JSON: %s (line %d, column %d, byte %d)", t->name, je.text,
                                    je.line, je.column, je.position);
        bv_tok_free(t);
        return st;
    }
    bv_status st = load_root(t, root);
    json_decref(root);
    if (st != BV_OK) {
        bv_tok_free(t);
        return st;
    }
    *out = t;
    return BV_OK;
}

bv_status bv_tok_load(bv_tok **out, const char *path) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return bv_error_set(BV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    sbuf b = {0};
    char chunk[1 << 16];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (!sb_add(&b, chunk, n)) {
            fclose(f);
            free(b.p);
            return TOK_OOM(path);
        }
    bool err = ferror(f);
    fclose(f);
    if (err) {
        free(b.p);
        return bv_error_set(BV_ERR_IO, "%s: read error", path);
    }
    bv_status st = bv_tok_load_mem(out, b.p ? b.p : "", b.len, path);
    free(b.p);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* queries                                                                                     */

int32_t bv_tok_vocab_size(const bv_tok *t) { return t->n_ids; }

int32_t bv_tok_token_id(const bv_tok *t, const char *token) {
    size_t n = strlen(token);
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->added[i].content, token, n)) return t->added[i].id;
    int32_t id = vtab_get(t, token, n);
    return id >= 0 && t->kind[id] == KIND_MODEL ? id : -1;
}

const char *bv_tok_token_bytes(const bv_tok *t, int32_t id, size_t *len) {
    const char *b;
    size_t n;
    if (id_get(t, id, &b, &n) == KIND_NONE) return NULL;
    *len = n;
    return b;
}

int32_t bv_tok_bos_id(const bv_tok *t) {
    if (t->n_tpl_pre > 0) return t->tpl_pre[0];
    return bv_tok_token_id(t, "<|begin_of_text|>");
}

/* ------------------------------------------------------------------------------------------ */
/* encoding                                                                                    */

/* collects the pre-tokens of the training text (training) */
typedef struct {
    sbuf keys;       /* concatenated word bytes */
    size_t *koff;    /* per word: offset, length */
    size_t *klen;
    int64_t *count;
    size_t n, cap;
    uint32_t *tab; /* hash -> word index + 1 */
    size_t tmask;
} wcount;

typedef struct {
    const bv_tok *t;
    bv_tok_ids *out;
    wcount *words; /* training: collect pre-tokens instead of encoding them */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    /* BPE scratch */
    int32_t *sym;
    uint32_t *rank;
    size_t scap;
    int32_t *prev, *next;
    struct hent {
        uint32_t rank;
        uint32_t pos;
    } * heap;
    size_t hcap;
    sbuf tmp;
} enc_ctx;

static void enc_free(enc_ctx *c) {
    if (c->md) pcre2_match_data_free(c->md);
    if (c->mctx) pcre2_match_context_free(c->mctx);
    if (c->jstack) pcre2_jit_stack_free(c->jstack);
    free(c->sym);
    free(c->rank);
    free(c->prev);
    free(c->next);
    free(c->heap);
    free(c->tmp.p);
}

static bool scratch(enc_ctx *c, size_t n) {
    if (n <= c->scap) return true;
    size_t nc = c->scap ? c->scap : 256;
    while (nc < n) nc *= 2;
    int32_t *s = realloc(c->sym, nc * 4);
    if (!s) return false;
    c->sym = s;
    uint32_t *r = realloc(c->rank, nc * 4);
    if (!r) return false;
    c->rank = r;
    int32_t *p = realloc(c->prev, nc * 4);
    if (!p) return false;
    c->prev = p;
    int32_t *q = realloc(c->next, nc * 4);
    if (!q) return false;
    c->next = q;
    c->scap = nc;
    return true;
}

#define NO_RANK UINT32_MAX

static inline uint32_t pair_rank(const bv_tok *t, int32_t a, int32_t b) {
    const mslot *m = mtab_get(t, a, b);
    return m ? m->rank : NO_RANK;
}

/* heap of (rank, pos), smallest first */
static inline bool hless(struct hent x, struct hent y) { return x.rank < y.rank || (x.rank == y.rank && x.pos < y.pos); }

static bool heap_push(enc_ctx *c, size_t *n, struct hent e) {
    if (*n == c->hcap) {
        size_t nc = c->hcap ? c->hcap * 2 : 256;
        struct hent *h = realloc(c->heap, nc * sizeof *h);
        if (!h) return false;
        c->heap = h;
        c->hcap = nc;
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!hless(e, c->heap[p])) break;
        c->heap[i] = c->heap[p];
        i = p;
    }
    c->heap[i] = e;
    return true;
}

static struct hent heap_pop(enc_ctx *c, size_t *n) {
    struct hent top = c->heap[0], last = c->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1;
        if (l >= *n) break;
        size_t m = (l + 1 < *n && hless(c->heap[l + 1], c->heap[l])) ? l + 1 : l;
        if (!hless(c->heap[m], last)) break;
        c->heap[i] = c->heap[m];
        i = m;
    }
    if (*n > 0) c->heap[i] = last;
    return top;
}

/* BPE on symbols c->sym[0..n): writes the result ids to out */
static bv_status bpe(enc_ctx *c, size_t n) {
    const bv_tok *t = c->t;
    int32_t *sym = c->sym;
    if (n < 64) { /* short words: repeated scans beat a heap */
        uint32_t *r = c->rank;
        for (size_t i = 0; i + 1 < n; i++) r[i] = pair_rank(t, sym[i], sym[i + 1]);
        while (n > 1) {
            uint32_t best = NO_RANK;
            size_t bi = 0;
            for (size_t i = 0; i + 1 < n; i++)
                if (r[i] < best) best = r[i], bi = i;
            if (best == NO_RANK) break;
            sym[bi] = mtab_get(t, sym[bi], sym[bi + 1])->id;
            memmove(sym + bi + 1, sym + bi + 2, (n - bi - 2) * sizeof *sym);
            memmove(r + bi + 1, r + bi + 2, (n - bi - 2) * sizeof *r);
            n--;
            if (bi > 0) r[bi - 1] = pair_rank(t, sym[bi - 1], sym[bi]);
            if (bi + 1 < n) r[bi] = pair_rank(t, sym[bi], sym[bi + 1]);
        }
        if (!ids_reserve(c->out, n)) return TOK_OOM(t->name);
        memcpy(c->out->ids + c->out->len, sym, n * sizeof *sym);
        c->out->len += n;
        return BV_OK;
    }
    /* long words: linked list + heap with lazy deletion (HF's merge_all order) */
    int32_t *prev = c->prev, *next = c->next;
    size_t hn = 0;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = pair_rank(t, sym[i], sym[i + 1]);
        if (r != NO_RANK && !heap_push(c, &hn, (struct hent){r, (uint32_t)i})) return TOK_OOM(t->name);
    }
    while (hn > 0) {
        struct hent e = heap_pop(c, &hn);
        int32_t i = (int32_t)e.pos;
        if (sym[i] < 0 || next[i] < 0) continue;
        int32_t j = next[i];
        const mslot *m = mtab_get(t, sym[i], sym[j]);
        if (!m || m->rank != e.rank) continue; /* stale */
        sym[i] = m->id;
        sym[j] = -1;
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        if (prev[i] >= 0) {
            uint32_t r = pair_rank(t, sym[prev[i]], sym[i]);
            if (r != NO_RANK && !heap_push(c, &hn, (struct hent){r, (uint32_t)prev[i]})) return TOK_OOM(t->name);
        }
        if (next[i] >= 0) {
            uint32_t r = pair_rank(t, sym[i], sym[next[i]]);
            if (r != NO_RANK && !heap_push(c, &hn, (struct hent){r, (uint32_t)i})) return TOK_OOM(t->name);
        }
    }
    for (int32_t i = 0; i >= 0; i = next[i])
        if (!ids_push(c->out, sym[i])) return TOK_OOM(t->name);
    return BV_OK;
}

/* one pre-token (raw bytes) -> ids */
static bv_status encode_piece(enc_ctx *c, const uint8_t *s, size_t n) {
    const bv_tok *t = c->t;
    if (n == 0) return BV_OK;
    if (t->ignore_merges || n == 1) {
        int32_t id = vtab_get(t, s, n);
        if (id >= 0 && !t->raw_model[id]) return ids_push(c->out, id) ? BV_OK : TOK_OOM(t->name);
    }
    if (!scratch(c, n)) return TOK_OOM(t->name);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[s[i]];
        if (id < 0) {
            if (t->unk_id < 0)
                return bv_error_set(BV_ERR_FORMAT, "%s: byte 0x%02x has no token and there is no unk_token", t->name, s[i]);
            if (m > 0 && (size_t)0 == 0) { /* flush what we have, then unk */
                bv_status st = bpe(c, m);
                if (st != BV_OK) return st;
                m = 0;
            }
            if (!ids_push(c->out, t->unk_id)) return TOK_OOM(t->name);
            continue;
        }
        c->sym[m++] = id;
    }
    return m ? bpe(c, m) : BV_OK;
}

static bv_status pretok(enc_ctx *c, int si, const uint8_t *s, size_t n);
static bool wc_add(wcount *w, const uint8_t *s, size_t n);

/* run regex stage si over s[0..n) and hand each piece to stage si+1 */
static bv_status pretok_regex(enc_ctx *c, int si, const uint8_t *s, size_t n) {
    const stage *st = &c->t->stages[si];
    if (!c->md) {
        c->md = pcre2_match_data_create(4, NULL);
        if (!c->md) return TOK_OOM(c->t->name);
    }
    size_t prev = 0, off = 0;
    bv_status r;
    while (off <= n) {
        int rc = st->jit ? pcre2_jit_match(st->re, s, n, off, 0, c->md, c->mctx)
                         : pcre2_match(st->re, s, n, off, PCRE2_NO_UTF_CHECK, c->md, c->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT && !c->jstack) { /* very long pieces: give JIT a bigger stack */
            c->jstack = pcre2_jit_stack_create(1 << 16, 64 << 20, NULL);
            c->mctx = pcre2_match_context_create(NULL);
            if (!c->jstack || !c->mctx) return TOK_OOM(c->t->name);
            pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
            continue;
        }
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return bv_error_set(BV_ERR_INTERNAL, "%s: regex match failed at byte %zu: %s", c->t->name, off, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        /* gap before the match */
        if (ms > prev) {
            if (!(st->removed && st->invert) && (r = pretok(c, si + 1, s + prev, ms - prev)) != BV_OK) return r;
        }
        if (me > ms) {
            if (!(st->removed && !st->invert) && (r = pretok(c, si + 1, s + ms, me - ms)) != BV_OK) return r;
            prev = off = me;
        } else { /* empty match: it splits the gap; step one character */
            prev = ms;
            if (ms >= n) break;
            uint32_t cp;
            off = ms + (size_t)utf8_dec(s + ms, &cp);
        }
    }
    if (prev < n && !(st->removed && st->invert)) return pretok(c, si + 1, s + prev, n - prev);
    return BV_OK;
}

static bv_status pretok(enc_ctx *c, int si, const uint8_t *s, size_t n) {
    if (n == 0) return BV_OK;
    if (si == c->t->n_stages) return c->words ? (wc_add(c->words, s, n) ? BV_OK : TOK_OOM(c->t->name)) : encode_piece(c, s, n);
    const stage *st = &c->t->stages[si];
    if (st->kind == ST_PREFIX) {
        if (s[0] == ' ') return pretok(c, si + 1, s, n);
        uint8_t *buf = malloc(n + 1);
        if (!buf) return TOK_OOM(c->t->name);
        buf[0] = ' ';
        memcpy(buf + 1, s, n);
        bv_status r = pretok(c, si + 1, buf, n + 1);
        free(buf);
        return r;
    }
    return pretok_regex(c, si, s, n);
}

/* is the code point at s+i a word character (Rust regex \w)? for single_word */
static bool word_char_at(const bv_tok *t, const uint8_t *s, size_t n, size_t i, pcre2_match_data *md) {
    if (i >= n) return false;
    return pcre2_match(t->re_word, s, n, i, PCRE2_NO_UTF_CHECK, md, NULL) >= 0;
}

/* Split s[0..n) on the added tokens of trie tr; text between matches goes to `text_fn`
 * (recursing into the normalized trie when tr is the raw one). */
static bv_status split_added(enc_ctx *c, const trie *tr, const uint8_t *s, size_t n, bool raw_pass) {
    const bv_tok *t = c->t;
    size_t i = 0, seg = 0;
    bv_status r;
    while (i < n && tr->n > 0) {
        if (!tr->first[s[i]]) {
            i++;
            continue;
        }
        size_t ml = 0;
        int32_t k = trie_longest(tr, s + i, n - i, &ml);
        if (k < 0) {
            i++;
            continue;
        }
        const added_tok *a = &t->added[k];
        size_t ms = i, me = i + ml;
        if (a->single_word) {
            if (!c->md && !(c->md = pcre2_match_data_create(4, NULL))) return TOK_OOM(t->name);
            bool ok = true;
            if (ms > 0) { /* char before */
                size_t p = ms - 1;
                while (p > 0 && (s[p] & 0xC0) == 0x80) p--;
                ok = !word_char_at(t, s, n, p, c->md);
            }
            if (ok && me < n) ok = !word_char_at(t, s, n, me, c->md);
            if (!ok) {
                i++;
                continue;
            }
        }
        if (a->lstrip) {
            while (ms > seg) {
                size_t p = ms - 1;
                while (p > seg && (s[p] & 0xC0) == 0x80) p--;
                uint32_t cp;
                utf8_dec(s + p, &cp);
                if (!cp_is_ws(cp)) break;
                ms = p;
            }
        }
        if (a->rstrip) {
            while (me < n) {
                uint32_t cp;
                int l = utf8_dec(s + me, &cp);
                if (!cp_is_ws(cp)) break;
                me += (size_t)l;
            }
        }
        if (ms > seg) {
            r = raw_pass ? split_added(c, &t->trie_norm, s + seg, ms - seg, false) : pretok(c, 0, s + seg, ms - seg);
            if (r != BV_OK) return r;
        }
        if (!ids_push(c->out, a->id)) return TOK_OOM(t->name);
        i = seg = me;
    }
    if (seg < n) return raw_pass ? split_added(c, &t->trie_norm, s + seg, n - seg, false) : pretok(c, 0, s + seg, n - seg);
    return BV_OK;
}

bv_status bv_tok_encode(const bv_tok *t, const char *text, size_t len, unsigned flags, bv_tok_ids *out) {
    int64_t bad = bv_utf8_invalid_at(text, len);
    if (bad >= 0)
        return bv_error_set(BV_ERR_ARG, "%s: input is not valid UTF-8 at byte offset %lld (byte 0x%02x)", t->name,
                            (long long)bad, (uint8_t)text[bad]);
    enc_ctx c = {.t = t, .out = out};
    bv_status st = BV_OK;
    if (t->re_word && !(c.md = pcre2_match_data_create(4, NULL))) st = TOK_OOM(t->name);
    if (st == BV_OK && (flags & BV_TOK_ADD_SPECIAL))
        for (int i = 0; i < t->n_tpl_pre && st == BV_OK; i++)
            if (!ids_push(out, t->tpl_pre[i])) st = TOK_OOM(t->name);
    if (st == BV_OK) st = split_added(&c, &t->trie_raw, (const uint8_t *)text, len, true);
    if (st == BV_OK && (flags & BV_TOK_ADD_SPECIAL))
        for (int i = 0; i < t->n_tpl_post && st == BV_OK; i++)
            if (!ids_push(out, t->tpl_post[i])) st = TOK_OOM(t->name);
    enc_free(&c);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* decoding                                                                                    */

static bool id_is_special(const bv_tok *t, int32_t id) {
    if (id_get(t, id, NULL, NULL) != KIND_ADDED) return false;
    for (int i = 0; i < t->n_added; i++)
        if (t->added[i].id == id) return t->added[i].special;
    return false;
}

bv_status bv_tok_decode(const bv_tok *t, const int32_t *ids, size_t n, unsigned flags, char **text, size_t *len) {
    *text = NULL;
    if (len) *len = 0;
    sbuf raw = {0}, out = {0};
    for (size_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        const char *b;
        size_t bn;
        if (id_get(t, id, &b, &bn) == KIND_NONE) {
            free(raw.p);
            return bv_error_set(BV_ERR_ARG, "%s: decode: id %d at position %zu is not a token (vocabulary size %d)", t->name,
                                (int)id, i, (int)t->n_ids);
        }
        if ((flags & BV_TOK_SKIP_SPECIAL) && id_is_special(t, id)) continue;
        if (!sb_add(&raw, b, bn)) {
            free(raw.p);
            return TOK_OOM(t->name);
        }
    }
    bool ok = utf8_lossy((const uint8_t *)(raw.p ? raw.p : ""), raw.len, &out) && (out.p || sb_add(&out, "", 0));
    free(raw.p);
    if (!ok) {
        free(out.p);
        return TOK_OOM(t->name);
    }
    *text = out.p;
    if (len) *len = out.len;
    return BV_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* BitVLA edits                                                                                */

bv_status bv_tok_bitvla_edit(bv_tok *t) {
    if (bv_tok_token_id(t, "<|image_pad|>") >= 0) return BV_OK; /* already edited */
    int32_t eot = bv_tok_token_id(t, "<|eot_id|>");
    if (eot < 0) return bv_error_set(BV_ERR_FORMAT, "%s: BitVLA edits: no <|eot_id|> added token", t->name);
    /* the 258 tokens go after the highest id left, which is <|eot_id|> or a model token */
    if ((eot > t->n_model - 1 ? eot : t->n_model - 1) > INT32_MAX - 259)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: BitVLA edits: <|eot_id|> has id %d: no room after it for the 258 BitVLA tokens (ids "
                            "must stay below %d)",
                            t->name, (int)eot, INT32_MAX);
    /* drop added tokens above <|eot_id|> */
    int k = 0;
    for (int i = 0; i < t->n_added; i++) {
        added_tok *a = &t->added[i];
        if (a->id > eot) {
            uint8_t *kind;
            uint32_t *off, *len;
            if (!id_slot(t, a->id, &kind, &off, &len)) return TOK_OOM(t->name); /* it exists: no allocation */
            *kind = KIND_NONE;
            *len = 0;
            free(a->content);
            continue;
        }
        t->added[k++] = *a;
    }
    t->n_added = k;
    int32_t top = eot;
    for (int32_t id = t->n_dense - 1; id > top; id--)
        if (t->kind[id] != KIND_NONE) {
            top = id;
            break;
        }
    bool sparse_live = false;
    for (uint32_t i = 0; t->sp && i <= t->sp_mask; i++)
        if (t->sp[i].id >= 0 && t->sp[i].kind != KIND_NONE) {
            sparse_live = true;
            if (t->sp[i].id > top) top = t->sp[i].id;
        }
    t->n_ids = top + 1;
    /* the tokens appended below are dense when nothing lives in the sparse table any more
     * (Llama-3: 128010 .. 128267, past the file's 128,256 tokens) */
    if (!sparse_live && top < INT32_MAX - 258) {
        sparse_clear(t);
        if (t->dense_max < top + 1 + 258) t->dense_max = top + 1 + 258;
    }
    /* rename <|reserved_special_token_0|> */
    for (int i = 0; i < t->n_added; i++) {
        added_tok *a = &t->added[i];
        if (!strcmp(a->content, "<|reserved_special_token_0|>")) {
            char *c = bv_xstrdup("<|pad|>");
            free(a->content);
            a->content = c;
            a->len = strlen(c);
            if (!added_set_bytes(t, a->id, c, a->len)) return TOK_OOM(t->name);
        }
    }
    int32_t next = top + 1;
    bv_status st;
    if ((st = add_added(t, next++, "<|image_pad|>", 13, true, false, false, false, false)) != BV_OK) return st;
    if ((st = add_added(t, next++, "<proprio_pad>", 13, true, false, false, false, false)) != BV_OK) return st;
    for (int i = 0; i < 256; i++) {
        char s[32];
        int l = snprintf(s, sizeof s, "<action_%d>", i);
        if ((st = add_added(t, next++, s, (size_t)l, true, false, false, false, false)) != BV_OK) return st;
    }
    return finish_added(t);
}

/* ------------------------------------------------------------------------------------------ */
/* chat template and action prompt                                                             */

static bool render_msg(sbuf *b, const bv_tok_msg *m) {
    const char *r = m->role ? m->role : "";
    size_t rl = strlen(r);
    for (size_t i = 0; i < rl; i++) { /* Jinja capitalize (ASCII): first upper, rest lower */
        char ch = r[i];
        if (i == 0 && ch >= 'a' && ch <= 'z') ch = (char)(ch - 32);
        if (i > 0 && ch >= 'A' && ch <= 'Z') ch = (char)(ch + 32);
        if (!sb_add(b, &ch, 1)) return false;
    }
    if (!sb_str(b, ": ")) return false;
    const uint8_t *s = (const uint8_t *)(m->content ? m->content : "");
    size_t n = strlen((const char *)s), lo = 0, hi = n;
    while (lo < hi) { /* Python str.strip */
        uint32_t cp;
        int l = utf8_dec(s + lo, &cp);
        if (!cp_is_pyspace(cp)) break;
        lo += (size_t)l;
    }
    while (hi > lo) {
        size_t p = hi - 1;
        while (p > lo && (s[p] & 0xC0) == 0x80) p--;
        uint32_t cp;
        utf8_dec(s + p, &cp);
        if (!cp_is_pyspace(cp)) break;
        hi = p;
    }
    return sb_add(b, s + lo, hi - lo) && sb_str(b, "<|eot_id|>");
}

char *bv_tok_chat_render(const bv_tok_msg *msgs, int n, int add_generation_prompt) {
    sbuf b = {0};
    bool ok = sb_str(&b, BV_TOK_SYSTEM_PROMPT);
    for (int i = 0; ok && i < n; i++) ok = render_msg(&b, &msgs[i]);
    if (ok && add_generation_prompt) ok = sb_str(&b, "Assistant: ");
    if (!ok) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static bv_status encode_with_bos(const bv_tok *t, const char *text, size_t len, bv_tok_ids *out) {
    if (t->n_tpl_pre > 0 || t->n_tpl_post > 0) return bv_tok_encode(t, text, len, BV_TOK_ADD_SPECIAL, out);
    int32_t bos = bv_tok_bos_id(t);
    if (bos < 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: no BOS: neither a post-processor template nor a <|begin_of_text|> token",
                            t->name);
    if (!ids_push(out, bos)) return TOK_OOM(t->name);
    return bv_tok_encode(t, text, len, 0, out);
}

bv_status bv_tok_chat_encode(const bv_tok *t, const bv_tok_msg *msgs, int n, int add_generation_prompt,
                             bv_tok_ids *out) {
    for (int i = 0; i < n; i++) {
        const char *c = msgs[i].content ? msgs[i].content : "";
        int64_t bad = bv_utf8_invalid_at(c, strlen(c));
        if (bad >= 0)
            return bv_error_set(BV_ERR_ARG, "%s: message %d content is not valid UTF-8 at byte offset %lld", t->name, i,
                                (long long)bad);
    }
    char *s = bv_tok_chat_render(msgs, n, add_generation_prompt);
    if (!s) return TOK_OOM(t->name);
    bv_status st = encode_with_bos(t, s, strlen(s), out);
    free(s);
    return st;
}

bv_tok_action_cfg bv_tok_action_cfg_default(void) {
    return (bv_tok_action_cfg){.n_images = 2, .image_tokens = 256, .num_actions_chunk = 8, .action_dim = 7, .predict_stop = 1};
}

void bv_tok_action_seq_free(bv_tok_action_seq *s) {
    free(s->ids);
    free(s->labels);
    free(s->action_mask);
    memset(s, 0, sizeof *s);
}

bv_status bv_tok_action_prompt(const bv_tok *t, const char *instruction, const bv_tok_action_cfg *cfg,
                               const int *action_bins, bv_tok_action_seq *out) {
    memset(out, 0, sizeof *out);
    if (cfg->n_images < 0 || cfg->image_tokens < 0 || cfg->num_actions_chunk <= 0 || cfg->action_dim <= 0)
        return bv_error_set(BV_ERR_ARG,
                            "action prompt: n_images %d, image_tokens %d must be >= 0 and num_actions_chunk %d, action_dim "
                            "%d > 0",
                            cfg->n_images, cfg->image_tokens, cfg->num_actions_chunk, cfg->action_dim);
    int64_t n_act = (int64_t)cfg->num_actions_chunk * cfg->action_dim;
    int32_t act0 = bv_tok_token_id(t, "<action_0>"), eos = bv_tok_token_id(t, "<|end_of_text|>");
    if (act0 < 0 || bv_tok_token_id(t, "<|image_pad|>") < 0 || bv_tok_token_id(t, "<proprio_pad>") < 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: action prompt: no <action_0>/<|image_pad|>/<proprio_pad> tokens (apply the "
                            "BitVLA edits first)", t->name);
    if (eos < 0) return bv_error_set(BV_ERR_FORMAT, "%s: action prompt: no <|end_of_text|> token", t->name);
    int64_t bad = bv_utf8_invalid_at(instruction, strlen(instruction));
    if (bad >= 0)
        return bv_error_set(BV_ERR_ARG, "action prompt: instruction is not valid UTF-8 at byte offset %lld", (long long)bad);
    /* user content, with "\n?<image>\n?" already replaced (bitvla_transform.replace_image_tokens) */
    sbuf u = {0}, full = {0};
    bool ok = true;
    for (int i = 0; ok && i < cfg->n_images; i++)
        for (int k = 0; ok && k < cfg->image_tokens; k++) ok = sb_str(&u, "<|image_pad|>");
    ok = ok && sb_str(&u, "<proprio_pad>What action should the robot take to ");
    for (const char *p = instruction; ok && *p; p++) {
        char ch = (*p >= 'A' && *p <= 'Z') ? (char)(*p + 32) : *p;
        ok = sb_add(&u, &ch, 1);
    }
    ok = ok && sb_str(&u, "?");
    bv_tok_msg m = {"user", u.p};
    char *chat = ok ? bv_tok_chat_render(&m, 1, 1) : NULL;
    ok = chat && sb_str(&full, chat);
    free(chat);
    free(u.p);
    for (int64_t i = 0; ok && i < n_act; i++) {
        int bin = action_bins ? action_bins[i] : 0;
        if (bin < 0 || bin > 255) {
            free(full.p);
            return bv_error_set(BV_ERR_ARG, "action prompt: action bin %d at %lld is outside [0, 255]", bin, (long long)i);
        }
        char s[32];
        snprintf(s, sizeof s, "<action_%d>", bin);
        ok = sb_str(&full, s);
    }
    ok = ok && sb_str(&full, "<|end_of_text|>");
    if (!ok) {
        free(full.p);
        return TOK_OOM(t->name);
    }
    bv_tok_ids ids = {0};
    bv_status st = encode_with_bos(t, full.p, full.len, &ids);
    free(full.p);
    if (st != BV_OK) {
        bv_tok_ids_free(&ids);
        return st;
    }
    /* the tail must be the action tokens then <|end_of_text|> (then any template suffix) */
    int64_t L = (int64_t)ids.len, tail = t->n_tpl_post;
    int64_t end = L - tail - 1; /* position of <|end_of_text|> */
    int64_t first = end - n_act;
    BV_ASSERT(first >= 1 && ids.ids[end] == eos, "action prompt layout: len %lld, end %lld", (long long)L, (long long)end);
    out->ids = ids.ids;
    out->len = L;
    out->n_actions = n_act;
    out->labels = malloc((size_t)L * sizeof *out->labels);
    out->action_mask = calloc((size_t)L, 1);
    if (!out->labels || !out->action_mask) {
        bv_tok_action_seq_free(out);
        return TOK_OOM(t->name);
    }
    for (int64_t i = 0; i < L; i++) out->labels[i] = BV_TOK_IGNORE_INDEX;
    for (int64_t i = first; i < end; i++) {
        BV_ASSERT(ids.ids[i] >= act0 && ids.ids[i] < act0 + 256, "action prompt: id %d at %lld is not an action token",
                  ids.ids[i], (long long)i);
        out->labels[i] = ids.ids[i];
        out->action_mask[i] = 1;
    }
    if (cfg->predict_stop) out->labels[end] = eos;
    return BV_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* saving                                                                                      */

static json_t *jstrn(const char *s, size_t n) { return json_stringn(s, n); }

/* the JSON string of token id (byte-level form for model tokens) */
static json_t *model_token_json(const bv_tok *t, int32_t id, sbuf *tmp) {
    if (t->raw_model[id]) return jstrn(t->blob + t->off[id], t->len[id]);
    tmp->len = 0;
    if (!bytelevel_encode(t->blob + t->off[id], t->len[id], tmp)) return NULL;
    return jstrn(tmp->p ? tmp->p : "", tmp->len);
}

static int cmp_added(const void *a, const void *b) {
    const added_tok *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

static json_t *build_json(const bv_tok *t) {
    json_t *root = json_object(), *added = json_array(), *model = json_object(), *vocab = json_object(),
           *merges = json_array();
    sbuf tmp = {0};
    bool ok = root && added && model && vocab && merges;
    added_tok *sorted = ok ? malloc(((size_t)t->n_added + 1) * sizeof *sorted) : NULL;
    ok = ok && sorted;
    if (ok && t->n_added > 0) {
        memcpy(sorted, t->added, (size_t)t->n_added * sizeof *sorted);
        qsort(sorted, (size_t)t->n_added, sizeof *sorted, cmp_added);
    }
    for (int i = 0; ok && i < t->n_added; i++) {
        const added_tok *a = &sorted[i];
        json_t *e = json_pack("{s:i, s:s%, s:b, s:b, s:b, s:b, s:b}", "id", (json_int_t)a->id, "content", a->content,
                              a->len, "single_word", a->single_word, "lstrip", a->lstrip, "rstrip", a->rstrip, "normalized",
                              a->normalized, "special", a->special);
        ok = e && json_array_append_new(added, e) == 0;
    }
    free(sorted);
    /* model vocab in id order; an id taken over by an added token keeps its model entry only if it
     * was a model token originally, which we cannot tell apart once replaced: skip it */
    for (int32_t id = 0; ok && id < t->n_dense; id++) { /* model ids are all dense */
        if (t->kind[id] != KIND_MODEL) continue;
        json_t *s = model_token_json(t, id, &tmp);
        ok = s && json_object_setn_new(vocab, json_string_value(s), json_string_length(s), json_integer(id)) == 0;
        json_decref(s);
    }
    for (int32_t i = 0; ok && i < t->n_merges; i++) {
        json_t *a = model_token_json(t, t->merge_a[i], &tmp), *b = model_token_json(t, t->merge_b[i], &tmp);
        json_t *pair = (a && b) ? json_pack("[oo]", a, b) : NULL;
        if (!pair) {
            json_decref(a);
            json_decref(b);
        }
        ok = pair && json_array_append_new(merges, pair) == 0;
    }
    free(tmp.p);
    if (ok) {
        ok = json_object_set_new(model, "type", json_string("BPE")) == 0 &&
             json_object_set_new(model, "dropout", json_null()) == 0 &&
             json_object_set_new(model, "unk_token", t->unk_token ? json_string(t->unk_token) : json_null()) == 0 &&
             json_object_set_new(model, "continuing_subword_prefix", json_null()) == 0 &&
             json_object_set_new(model, "end_of_word_suffix", json_null()) == 0 &&
             json_object_set_new(model, "fuse_unk", json_false()) == 0 &&
             json_object_set_new(model, "byte_fallback", json_false()) == 0 &&
             json_object_set_new(model, "ignore_merges", json_boolean(t->ignore_merges)) == 0 &&
             json_object_set(model, "vocab", vocab) == 0 && json_object_set(model, "merges", merges) == 0;
        ok = ok && json_object_set_new(root, "version", json_string("1.0")) == 0 &&
             json_object_set(root, "truncation", t->j_truncation ? t->j_truncation : json_null()) == 0 &&
             json_object_set(root, "padding", t->j_padding ? t->j_padding : json_null()) == 0 &&
             json_object_set(root, "added_tokens", added) == 0 &&
             json_object_set(root, "normalizer", t->j_normalizer ? t->j_normalizer : json_null()) == 0 &&
             json_object_set(root, "pre_tokenizer", t->j_pre ? t->j_pre : json_null()) == 0 &&
             json_object_set(root, "post_processor", t->j_post ? t->j_post : json_null()) == 0 &&
             json_object_set(root, "decoder", t->j_decoder ? t->j_decoder : json_null()) == 0 &&
             json_object_set(root, "model", model) == 0;
    }
    json_decref(added);
    json_decref(model);
    json_decref(vocab);
    json_decref(merges);
    if (!ok) {
        json_decref(root);
        return NULL;
    }
    return root;
}

static int dump_cb(const char *buf, size_t size, void *data) { return fwrite(buf, 1, size, data) == size ? 0 : -1; }

bv_status bv_tok_save(const bv_tok *t, const char *path) {
    json_t *root = build_json(t);
    if (!root) return TOK_OOM(path);
    bv_atomic_file f;
    bv_status st = bv_atomic_open(&f, path);
    if (st) {
        json_decref(root);
        return st;
    }
    if (json_dump_callback(root, dump_cb, f.fp, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0 || fputc('\n', f.fp) == EOF) {
        st = bv_error_set(BV_ERR_IO, "%s: writing %s failed: %s", path, f.tmp, strerror(errno));
        bv_atomic_abort(&f);
    } else {
        st = bv_atomic_commit(&f);
    }
    json_decref(root);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* training                                                                                    */

typedef struct {
    int32_t *sym;
    int32_t n;
    int64_t count;
} tword;

typedef struct {
    uint64_t key; /* UINT64_MAX = empty */
    int64_t count;
} pslot;

typedef struct {
    pslot *s;
    size_t mask, used;
} ptab;

static bool ptab_init(ptab *p, size_t n) {
    size_t cap = 1024;
    while (cap < 2 * n) cap *= 2;
    p->s = malloc(cap * sizeof *p->s);
    if (!p->s) return false;
    for (size_t i = 0; i < cap; i++) p->s[i].key = UINT64_MAX;
    p->mask = cap - 1;
    p->used = 0;
    return true;
}

static bool ptab_add(ptab *p, int32_t a, int32_t b, int64_t d) {
    uint64_t k = mkey(a, b);
    size_t i = (size_t)mix64(k) & p->mask;
    for (;;) {
        if (p->s[i].key == k) {
            p->s[i].count += d;
            return true;
        }
        if (p->s[i].key == UINT64_MAX) break;
        i = (i + 1) & p->mask;
    }
    if (2 * (p->used + 1) > p->mask + 1) { /* grow */
        ptab q;
        if (!ptab_init(&q, (p->mask + 1))) return false;
        for (size_t j = 0; j <= p->mask; j++)
            if (p->s[j].key != UINT64_MAX) {
                size_t h = (size_t)mix64(p->s[j].key) & q.mask;
                while (q.s[h].key != UINT64_MAX) h = (h + 1) & q.mask;
                q.s[h] = p->s[j];
                q.used++;
            }
        free(p->s);
        *p = q;
        i = (size_t)mix64(k) & p->mask;
        while (p->s[i].key != UINT64_MAX) i = (i + 1) & p->mask;
    }
    p->s[i].key = k;
    p->s[i].count = d;
    p->used++;
    return true;
}

static bool wc_add(wcount *w, const uint8_t *s, size_t n) {
    if (!w->tab || 2 * (w->n + 1) > w->tmask + 1) {
        size_t cap = w->tab ? 2 * (w->tmask + 1) : 4096;
        uint32_t *nt = calloc(cap, sizeof *nt);
        if (!nt) return false;
        for (size_t i = 0; i < w->n; i++) {
            size_t h = (size_t)hash_bytes(w->keys.p + w->koff[i], w->klen[i]) & (cap - 1);
            while (nt[h]) h = (h + 1) & (cap - 1);
            nt[h] = (uint32_t)(i + 1);
        }
        free(w->tab);
        w->tab = nt;
        w->tmask = cap - 1;
    }
    size_t h = (size_t)hash_bytes(s, n) & w->tmask;
    while (w->tab[h]) {
        size_t i = w->tab[h] - 1;
        if (w->klen[i] == n && !memcmp(w->keys.p + w->koff[i], s, n)) {
            w->count[i]++;
            return true;
        }
        h = (h + 1) & w->tmask;
    }
    if (w->n == w->cap) {
        size_t nc = w->cap ? 2 * w->cap : 1024;
        size_t *a = realloc(w->koff, nc * sizeof *a);
        if (!a) return false;
        w->koff = a;
        size_t *b = realloc(w->klen, nc * sizeof *b);
        if (!b) return false;
        w->klen = b;
        int64_t *c = realloc(w->count, nc * sizeof *c);
        if (!c) return false;
        w->count = c;
        w->cap = nc;
    }
    w->koff[w->n] = w->keys.len;
    w->klen[w->n] = n;
    w->count[w->n] = 1;
    if (!sb_add(&w->keys, s, n)) return false;
    w->tab[h] = (uint32_t)(++w->n);
    return true;
}

static void wc_free(wcount *w) {
    free(w->keys.p);
    free(w->koff);
    free(w->klen);
    free(w->count);
    free(w->tab);
}

/* the pieces of `text` as the tokenizer `t` cuts them (added tokens left out) */
static bv_status collect_words(const bv_tok *t, const char *text, size_t len, wcount *w) {
    bv_tok_ids sink = {0};
    enc_ctx c = {.t = t, .out = &sink, .words = w};
    bv_status st = split_added(&c, &t->trie_raw, (const uint8_t *)text, len, true);
    enc_free(&c);
    bv_tok_ids_free(&sink);
    return st;
}

static const char *k_llama3_specials[10] = {
    "<|begin_of_text|>",           "<|end_of_text|>",           "<|reserved_special_token_0|>",
    "<|reserved_special_token_1|>", "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
    "<|start_header_id|>",         "<|end_header_id|>",         "<|reserved_special_token_4|>",
    "<|eot_id|>"};

bv_status bv_tok_train(bv_tok **out, const char *text, size_t len, const bv_tok_train_opts *o) {
    *out = NULL;
    if (o->vocab_size < 256)
        return bv_error_set(BV_ERR_ARG, "tokenizer train: vocab size %d is below the 256 byte tokens", o->vocab_size);
    int64_t bad = bv_utf8_invalid_at(text, len);
    if (bad >= 0)
        return bv_error_set(BV_ERR_ARG, "tokenizer train: training text is not valid UTF-8 at byte offset %lld",
                            (long long)bad);
    bv_tok *t = tok_new("trained tokenizer");
    if (!t) return TOK_OOM("tokenizer train");
    bv_status st = BV_OK;
    wcount w = {0};
    tword *words = NULL;
    ptab pt = {0};
    sbuf tmp = {0};
    /* the JSON parts that describe the pipeline (Llama-3's, with a BOS template) */
    t->j_pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence",
                         "pretokenizers", "type", "Split", "pattern", "Regex", k_llama3_regex, "behavior", "Isolated",
                         "invert", 0, "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
    t->j_decoder = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1,
                             "use_regex", 1);
    if (!t->j_pre || !t->j_decoder) {
        st = TOK_OOM(t->name);
        goto fail;
    }
    if ((st = parse_pretok(t, t->j_pre, "pre_tokenizer")) != BV_OK) goto fail;
    /* added tokens first (ids fixed after training), so the text is split on them */
    for (int i = 0; i < 10; i++)
        if ((st = add_added(t, 1000000 + i, k_llama3_specials[i], strlen(k_llama3_specials[i]), true, false, false, false,
                            false)) != BV_OK)
            goto fail;
    if ((st = finish_added(t)) != BV_OK) goto fail;
    if ((st = collect_words(t, text, len, &w)) != BV_OK) goto fail;

    /* start over for the model part (those ids were sparse: dense_max was 0) */
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    t->n_added = 0;
    t->n_ids = 0;
    sparse_clear(t);
    t->dense_max = INT32_MAX; /* ids are made one by one, consecutively */
    if (!vtab_init(t, (size_t)o->vocab_size) || !mtab_init(t, (size_t)o->vocab_size) || !ids_grow(t, 256)) {
        st = TOK_OOM(t->name);
        goto fail;
    }
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        t->kind[b] = KIND_MODEL;
        if (!blob_add(t, &c, 1, &t->off[b])) {
            st = TOK_OOM(t->name);
            goto fail;
        }
        t->len[b] = 1;
        vtab_put(t, b);
        t->byte_id[b] = b;
    }
    int32_t nv = 256;
    words = calloc(w.n ? w.n : 1, sizeof *words);
    if (!words || !ptab_init(&pt, 4096)) {
        st = TOK_OOM(t->name);
        goto fail;
    }
    for (size_t i = 0; i < w.n; i++) {
        words[i].n = (int32_t)w.klen[i];
        words[i].count = w.count[i];
        words[i].sym = malloc((size_t)words[i].n * sizeof(int32_t));
        if (!words[i].sym) {
            st = TOK_OOM(t->name);
            goto fail;
        }
        for (int32_t k = 0; k < words[i].n; k++) words[i].sym[k] = (uint8_t)w.keys.p[w.koff[i] + (size_t)k];
        for (int32_t k = 0; k + 1 < words[i].n; k++)
            if (!ptab_add(&pt, words[i].sym[k], words[i].sym[k + 1], words[i].count)) {
                st = TOK_OOM(t->name);
                goto fail;
            }
    }
    int64_t minf = o->min_frequency > 0 ? o->min_frequency : 1;
    while (nv < o->vocab_size) {
        uint64_t bk = UINT64_MAX;
        int64_t bc = 0;
        for (size_t i = 0; i <= pt.mask; i++) {
            const pslot *e = &pt.s[i];
            if (e->key == UINT64_MAX || e->count <= 0) continue;
            if (e->count > bc || (e->count == bc && e->key < bk)) bc = e->count, bk = e->key;
        }
        if (bk == UINT64_MAX || bc < minf) break;
        int32_t a = (int32_t)(bk >> 32), b = (int32_t)(bk & 0xffffffffu);
        tmp.len = 0;
        if (!sb_add(&tmp, t->blob + t->off[a], t->len[a]) || !sb_add(&tmp, t->blob + t->off[b], t->len[b])) {
            st = TOK_OOM(t->name);
            goto fail;
        }
        int32_t nid = vtab_get(t, tmp.p, tmp.len);
        if (nid < 0) {
            nid = nv++;
            if (!ids_grow(t, nv) || !blob_add(t, tmp.p, tmp.len, &t->off[nid])) {
                st = TOK_OOM(t->name);
                goto fail;
            }
            t->kind[nid] = KIND_MODEL;
            t->len[nid] = (uint32_t)tmp.len;
            vtab_put(t, nid);
        }
        if ((st = add_merge(t, a, b, nid)) != BV_OK) goto fail;
        /* apply the merge to every word, keeping pair counts current */
        for (size_t i = 0; i < w.n; i++) {
            tword *wd = &words[i];
            int32_t *s = wd->sym;
            int32_t n = wd->n, k = 0, o2 = 0;
            bool any = false;
            for (int32_t j = 0; j + 1 < n; j++)
                if (s[j] == a && s[j + 1] == b) {
                    any = true;
                    break;
                }
            if (!any) continue;
            int64_t c = wd->count;
            while (k < n) {
                if (k + 1 < n && s[k] == a && s[k + 1] == b) {
                    bool ok = ptab_add(&pt, a, b, -c);
                    if (o2 > 0) ok = ok && ptab_add(&pt, s[o2 - 1], a, -c) && ptab_add(&pt, s[o2 - 1], nid, c);
                    if (k + 2 < n) ok = ok && ptab_add(&pt, b, s[k + 2], -c) && ptab_add(&pt, nid, s[k + 2], c);
                    if (!ok) {
                        st = TOK_OOM(t->name);
                        goto fail;
                    }
                    s[o2++] = nid;
                    k += 2;
                } else
                    s[o2++] = s[k++];
            }
            wd->n = o2;
        }
    }
    t->n_model = nv;
    /* the ten Llama-3 specials right after the model vocabulary, BOS template */
    for (int i = 0; i < 10; i++)
        if ((st = add_added(t, nv + i, k_llama3_specials[i], strlen(k_llama3_specials[i]), true, false, false, false,
                            false)) != BV_OK)
            goto fail;
    t->j_post = json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, "
                          "{s:{s:s, s:i}}], s:{s:{s:s, s:[i], s:[s]}}}",
                          "type", "TemplateProcessing", "single", "SpecialToken", "id", "<|begin_of_text|>", "type_id", 0,
                          "Sequence", "id", "A", "type_id", 0, "pair", "SpecialToken", "id", "<|begin_of_text|>",
                          "type_id", 0, "Sequence", "id", "A", "type_id", 0, "SpecialToken", "id", "<|begin_of_text|>",
                          "type_id", 1, "Sequence", "id", "B", "type_id", 1, "special_tokens", "<|begin_of_text|>", "id",
                          "<|begin_of_text|>", "ids", (json_int_t)nv, "tokens", "<|begin_of_text|>");
    if (!t->j_post) {
        st = TOK_OOM(t->name);
        goto fail;
    }
    if ((st = parse_post(t, t->j_post, "post_processor")) != BV_OK) goto fail;
    if ((st = finish_added(t)) != BV_OK) goto fail;
    if (o->bitvla && (st = bv_tok_bitvla_edit(t)) != BV_OK) goto fail;
    for (size_t i = 0; i < w.n; i++) free(words[i].sym);
    free(words);
    free(pt.s);
    free(tmp.p);
    wc_free(&w);
    *out = t;
    return BV_OK;
fail:
    if (words)
        for (size_t i = 0; i < w.n; i++) free(words[i].sym);
    free(words);
    free(pt.s);
    free(tmp.p);
    wc_free(&w);
    bv_tok_free(t);
    return st;
}
