#include "data/example.h"

#include <string.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "example.c reads and writes packed floats in host order, which must be little-endian"
#endif

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

struct bv_example_slot {
    size_t name_off; /* into ex->names */
    bv_feat_kind kind;
    size_t off, n; /* into the pool of `kind` */
    int dead;      /* superseded by a later entry with the same key */
};

const char *bv_feat_kind_name(bv_feat_kind k) {
    switch (k) {
    case BV_FEAT_BYTES: return "bytes_list";
    case BV_FEAT_FLOAT: return "float_list";
    case BV_FEAT_INT64: return "int64_list";
    case BV_FEAT_NONE: return "none";
    }
    return "?";
}

/* ---- decoding ---- */

typedef struct {
    const uint8_t *base; /* start of the whole input (offsets in messages are relative to it) */
    const char *label;
} dec_ctx;

static bv_status dec_err(const dec_ctx *c, const uint8_t *at, const char *what, const char *problem) {
    return bv_error_set(BV_ERR_FORMAT, "%s: malformed tf.train.Example at byte %zu (in %s): %s", c->label,
                        (size_t)(at - c->base), what, problem);
}

static bv_status nomem(const dec_ctx *c) {
    return bv_error_set(BV_ERR_NOMEM, "%s: out of memory decoding a tf.train.Example", c->label);
}

/* Reads a varint at *p (< end); advances *p. */
static bv_status rd_varint(const dec_ctx *c, const uint8_t **p, const uint8_t *end, uint64_t *v, const char *what) {
    const uint8_t *q = *p;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (q >= end) return dec_err(c, *p, what, "varint runs past the end of its message");
        uint8_t b = *q++;
        x |= (uint64_t)(b & 0x7f) << (7 * i); /* the 10th byte contributes its lowest bit only */
        if (!(b & 0x80)) {
            *p = q;
            *v = x;
            return BV_OK;
        }
    }
    return dec_err(c, *p, what, "varint longer than 10 bytes");
}

/* Reads a tag; *field, *wt. Rejects field 0, tags >= 2^32, and wire types 3, 4, 6, 7. */
static bv_status rd_tag(const dec_ctx *c, const uint8_t **p, const uint8_t *end, uint32_t *field, int *wt,
                        const char *what) {
    const uint8_t *at = *p;
    uint64_t t;
    bv_status st = rd_varint(c, p, end, &t, what);
    if (st) return st;
    if (t > UINT32_MAX) return dec_err(c, at, what, "field tag larger than 2^32");
    *field = (uint32_t)(t >> 3);
    *wt = (int)(t & 7);
    if (*field == 0) return dec_err(c, at, what, "field number 0");
    if (*wt == WT_SGROUP || *wt == WT_EGROUP) return dec_err(c, at, what, "group wire type (3/4) not supported");
    if (*wt > WT_I32) return dec_err(c, at, what, "invalid wire type 6 or 7");
    return BV_OK;
}

/* Reads a length prefix and returns the sub-range [*sub, *sub_end) which must fit before end. */
static bv_status rd_len(const dec_ctx *c, const uint8_t **p, const uint8_t *end, const uint8_t **sub,
                        const uint8_t **sub_end, const char *what) {
    const uint8_t *at = *p;
    uint64_t n;
    bv_status st = rd_varint(c, p, end, &n, what);
    if (st) return st;
    if (n > (uint64_t)(end - *p)) {
        char m[160];
        snprintf(m, sizeof m, "length %llu runs past the end of its enclosing message (%zu bytes left)",
                 (unsigned long long)n, (size_t)(end - *p));
        return dec_err(c, at, what, m);
    }
    *sub = *p;
    *sub_end = *p + n;
    *p = *sub_end;
    return BV_OK;
}

/* Skips the value of an unknown field of wire type wt. */
static bv_status skip_field(const dec_ctx *c, const uint8_t **p, const uint8_t *end, int wt, const char *what) {
    uint64_t v;
    const uint8_t *s, *e;
    switch (wt) {
    case WT_VARINT: return rd_varint(c, p, end, &v, what);
    case WT_LEN: return rd_len(c, p, end, &s, &e, what);
    case WT_I64:
    case WT_I32: {
        size_t k = wt == WT_I64 ? 8 : 4;
        if ((size_t)(end - *p) < k) return dec_err(c, *p, what, "fixed-width value runs past the end of its message");
        *p += k;
        return BV_OK;
    }
    }
    return dec_err(c, *p, what, "invalid wire type");
}

/* Grow *pool (element size sz) so that it holds at least need elements. */
static int grow(void **pool, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap) return 0;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / sz) return -1;
        nc *= 2;
    }
    void *q = realloc(*pool, nc * sz);
    if (!q) return -1;
    *pool = q;
    *cap = nc;
    return 0;
}

static bv_status parse_bytes_list(bv_example *ex, const dec_ctx *c, const uint8_t *p, const uint8_t *end,
                                  size_t *count) {
    while (p < end) {
        uint32_t f;
        int wt;
        bv_status st = rd_tag(c, &p, end, &f, &wt, "BytesList");
        if (st) return st;
        if (f == 1 && wt == WT_LEN) {
            const uint8_t *s, *e;
            if ((st = rd_len(c, &p, end, &s, &e, "BytesList.value"))) return st;
            if (grow((void **)&ex->bytes, &ex->bytes_cap, ex->bytes_len + 1, sizeof *ex->bytes)) return nomem(c);
            ex->bytes[ex->bytes_len].data = s;
            ex->bytes[ex->bytes_len].len = (size_t)(e - s);
            ex->bytes_len++;
            (*count)++;
        } else if ((st = skip_field(c, &p, end, wt, "BytesList"))) {
            return st;
        }
    }
    return BV_OK;
}

static bv_status parse_float_list(bv_example *ex, const dec_ctx *c, const uint8_t *p, const uint8_t *end,
                                  size_t *count) {
    while (p < end) {
        uint32_t f;
        int wt;
        const uint8_t *at = p;
        bv_status st = rd_tag(c, &p, end, &f, &wt, "FloatList");
        if (st) return st;
        if (f == 1 && wt == WT_LEN) { /* packed */
            const uint8_t *s, *e;
            if ((st = rd_len(c, &p, end, &s, &e, "FloatList.value"))) return st;
            size_t nb = (size_t)(e - s);
            if (nb % 4) return dec_err(c, at, "FloatList.value", "packed float payload not a multiple of 4 bytes");
            if (grow((void **)&ex->floats, &ex->floats_cap, ex->floats_len + nb / 4, sizeof *ex->floats))
                return nomem(c);
            if (nb) memcpy(ex->floats + ex->floats_len, s, nb);
            ex->floats_len += nb / 4;
            *count += nb / 4;
        } else if (f == 1 && wt == WT_I32) { /* unpacked */
            if (end - p < 4) return dec_err(c, p, "FloatList.value", "float runs past the end of its message");
            if (grow((void **)&ex->floats, &ex->floats_cap, ex->floats_len + 1, sizeof *ex->floats)) return nomem(c);
            memcpy(ex->floats + ex->floats_len, p, 4);
            p += 4;
            ex->floats_len++;
            (*count)++;
        } else if ((st = skip_field(c, &p, end, wt, "FloatList"))) {
            return st;
        }
    }
    return BV_OK;
}

static bv_status parse_int64_list(bv_example *ex, const dec_ctx *c, const uint8_t *p, const uint8_t *end,
                                  size_t *count) {
    while (p < end) {
        uint32_t f;
        int wt;
        bv_status st = rd_tag(c, &p, end, &f, &wt, "Int64List");
        if (st) return st;
        if (f == 1 && wt == WT_LEN) { /* packed: at most one value per byte */
            const uint8_t *s, *e;
            if ((st = rd_len(c, &p, end, &s, &e, "Int64List.value"))) return st;
            if (grow((void **)&ex->int64s, &ex->int64s_cap, ex->int64s_len + (size_t)(e - s), sizeof *ex->int64s))
                return nomem(c);
            while (s < e) {
                uint64_t v;
                if ((st = rd_varint(c, &s, e, &v, "Int64List.value (packed)"))) return st;
                ex->int64s[ex->int64s_len++] = (int64_t)v;
                (*count)++;
            }
        } else if (f == 1 && wt == WT_VARINT) {
            uint64_t v;
            if ((st = rd_varint(c, &p, end, &v, "Int64List.value"))) return st;
            if (grow((void **)&ex->int64s, &ex->int64s_cap, ex->int64s_len + 1, sizeof *ex->int64s)) return nomem(c);
            ex->int64s[ex->int64s_len++] = (int64_t)v;
            (*count)++;
        } else if ((st = skip_field(c, &p, end, wt, "Int64List"))) {
            return st;
        }
    }
    return BV_OK;
}

/* Parses one Feature message into slot s (merging into what s already holds). */
static bv_status parse_feature(bv_example *ex, const dec_ctx *c, const uint8_t *p, const uint8_t *end,
                               struct bv_example_slot *s) {
    while (p < end) {
        uint32_t f;
        int wt;
        bv_status st = rd_tag(c, &p, end, &f, &wt, "Feature");
        if (st) return st;
        if (f >= 1 && f <= 3 && wt == WT_LEN) {
            const uint8_t *a, *b;
            if ((st = rd_len(c, &p, end, &a, &b, "Feature"))) return st;
            bv_feat_kind k = (bv_feat_kind)f;
            if (s->kind != k) { /* oneof: a different member replaces the earlier one */
                s->kind = k;
                s->n = 0;
                s->off = k == BV_FEAT_BYTES ? ex->bytes_len : k == BV_FEAT_FLOAT ? ex->floats_len : ex->int64s_len;
            }
            /* a repeated member merges: its values follow the earlier ones in the pool (nothing else
             * is appended to that pool in between) */
            if (k == BV_FEAT_BYTES)
                st = parse_bytes_list(ex, c, a, b, &s->n);
            else if (k == BV_FEAT_FLOAT)
                st = parse_float_list(ex, c, a, b, &s->n);
            else
                st = parse_int64_list(ex, c, a, b, &s->n);
            if (st) return st;
        } else if ((st = skip_field(c, &p, end, wt, "Feature"))) {
            return st;
        }
    }
    return BV_OK;
}

/* Parses one map entry {key = 1, value = 2} of Features.feature and appends a slot. */
static bv_status parse_entry(bv_example *ex, const dec_ctx *c, const uint8_t *p, const uint8_t *end) {
    if (ex->n_slots == ex->cap_slots) {
        size_t cap = (size_t)ex->cap_slots;
        if (cap >= INT32_MAX / 2 || grow((void **)&ex->slots, &cap, cap + 1, sizeof *ex->slots)) return nomem(c);
        ex->cap_slots = (int)cap;
    }
    struct bv_example_slot s = {0};
    const uint8_t *key = (const uint8_t *)"", *key_end = key;
    while (p < end) {
        uint32_t f;
        int wt;
        bv_status st = rd_tag(c, &p, end, &f, &wt, "Features.feature entry");
        if (st) return st;
        if (f == 1 && wt == WT_LEN) {
            if ((st = rd_len(c, &p, end, &key, &key_end, "feature name"))) return st;
            const uint8_t *nul = memchr(key, 0, (size_t)(key_end - key));
            if (nul) return dec_err(c, nul, "feature name", "name contains a NUL byte");
        } else if (f == 2 && wt == WT_LEN) {
            const uint8_t *a, *b;
            if ((st = rd_len(c, &p, end, &a, &b, "Feature"))) return st;
            if ((st = parse_feature(ex, c, a, b, &s))) return st;
        } else if ((st = skip_field(c, &p, end, wt, "Features.feature entry"))) {
            return st;
        }
    }
    size_t kl = (size_t)(key_end - key);
    if (grow((void **)&ex->names, &ex->names_cap, ex->names_len + kl + 1, 1)) return nomem(c);
    memcpy(ex->names + ex->names_len, key, kl);
    ex->names[ex->names_len + kl] = 0;
    s.name_off = ex->names_len;
    ex->names_len += kl + 1;
    ex->slots[ex->n_slots++] = s;
    return BV_OK;
}

/* qsort has no user pointer: the table being sorted, per thread */
static _Thread_local const struct bv_example_slot *g_sort_slots;
static _Thread_local const char *g_sort_names;

static int cmp_slot(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    int r = strcmp(g_sort_names + g_sort_slots[i].name_off, g_sort_names + g_sort_slots[j].name_off);
    return r ? r : (i > j) - (i < j);
}

static void reset(bv_example *ex) {
    ex->n_features = 0;
    ex->n_slots = 0;
    ex->names_len = ex->bytes_len = ex->floats_len = ex->int64s_len = 0;
}

/* Drops superseded slots (last entry of a key wins) and builds features[] and sorted[]. */
static bv_status finish(bv_example *ex, const dec_ctx *c) {
    int n = ex->n_slots;
    if (n > ex->cap_sorted) {
        int *q = realloc(ex->sorted, (size_t)n * sizeof *q);
        if (!q) return nomem(c);
        ex->sorted = q;
        ex->cap_sorted = n;
    }
    if (n > ex->cap_features) {
        bv_feature *q = realloc(ex->features, (size_t)n * sizeof *q);
        if (!q) return nomem(c);
        ex->features = q;
        ex->cap_features = n;
    }
    for (int i = 0; i < n; i++) {
        ex->sorted[i] = i;
        ex->slots[i].dead = 0;
    }
    g_sort_slots = ex->slots;
    g_sort_names = ex->names;
    if (n > 1) qsort(ex->sorted, (size_t)n, sizeof *ex->sorted, cmp_slot);
    for (int k = 0; k + 1 < n; k++)
        if (!strcmp(ex->names + ex->slots[ex->sorted[k]].name_off, ex->names + ex->slots[ex->sorted[k + 1]].name_off))
            ex->slots[ex->sorted[k]].dead = 1; /* same key, earlier entry */
    /* features[] in order of appearance; slot index -> feature index remapped in sorted[] */
    int nf = 0;
    for (int i = 0; i < n; i++) {
        const struct bv_example_slot *s = &ex->slots[i];
        if (s->dead) {
            ex->slots[i].off = (size_t)-1;
            continue;
        }
        bv_feature *f = &ex->features[nf];
        memset(f, 0, sizeof *f);
        f->name = ex->names + s->name_off;
        f->kind = s->kind;
        f->n = s->n;
        /* an empty list may have a pool that was never allocated: leave its pointer NULL */
        if (s->kind == BV_FEAT_BYTES && ex->bytes) f->bytes = ex->bytes + s->off;
        if (s->kind == BV_FEAT_FLOAT && ex->floats) f->floats = ex->floats + s->off;
        if (s->kind == BV_FEAT_INT64 && ex->int64s) f->int64s = ex->int64s + s->off;
        ex->slots[i].dead = -1 - nf; /* remember the feature index */
        nf++;
    }
    int m = 0;
    for (int k = 0; k < n; k++) {
        int d = ex->slots[ex->sorted[k]].dead;
        if (d < 0) ex->sorted[m++] = -1 - d;
    }
    ex->n_features = nf;
    return BV_OK;
}

bv_status bv_example_decode(bv_example *ex, const uint8_t *buf, size_t len, const char *label) {
    reset(ex);
    dec_ctx c = {buf, label};
    if (!buf) buf = (const uint8_t *)"";
    c.base = buf;
    const uint8_t *p = buf, *end = buf + len;
    bv_status st = BV_OK;
    while (p < end && !st) {
        uint32_t f;
        int wt;
        if ((st = rd_tag(&c, &p, end, &f, &wt, "Example"))) break;
        if (f == 1 && wt == WT_LEN) {
            const uint8_t *fp, *fe;
            if ((st = rd_len(&c, &p, end, &fp, &fe, "Example.features"))) break;
            while (fp < fe) { /* Features: repeated map entries (field 1) */
                uint32_t g;
                int gwt;
                if ((st = rd_tag(&c, &fp, fe, &g, &gwt, "Features"))) break;
                if (g == 1 && gwt == WT_LEN) {
                    const uint8_t *ep, *ee;
                    if ((st = rd_len(&c, &fp, fe, &ep, &ee, "Features.feature entry"))) break;
                    if ((st = parse_entry(ex, &c, ep, ee))) break;
                } else if ((st = skip_field(&c, &fp, fe, gwt, "Features"))) {
                    break;
                }
            }
        } else {
            st = skip_field(&c, &p, end, wt, "Example");
        }
    }
    if (!st) st = finish(ex, &c);
    if (st) reset(ex);
    return st;
}

void bv_example_free(bv_example *ex) {
    free(ex->features);
    free(ex->names);
    free(ex->bytes);
    free(ex->floats);
    free(ex->int64s);
    free(ex->slots);
    free(ex->sorted);
    memset(ex, 0, sizeof *ex);
}

const bv_feature *bv_example_find(const bv_example *ex, const char *name) {
    int lo = 0, hi = ex->n_features - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const bv_feature *f = &ex->features[ex->sorted[mid]];
        int r = strcmp(name, f->name);
        if (!r) return f;
        if (r < 0)
            hi = mid - 1;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* ---- encoding ---- */

#define HDR_RESERVE 16 /* room for the Example's tag + length varint before the Features body */

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *reserve(bv_example_builder *b, size_t n) {
    if (!b->buf) {
        b->cap = 256;
        b->buf = bv_xmalloc(b->cap);
        b->len = HDR_RESERVE;
    }
    BV_ASSERT(n <= SIZE_MAX / 2 - b->len, "Example too large (%zu + %zu bytes)", b->len, n);
    if (b->len + n > b->cap) {
        size_t c = b->cap;
        while (c < b->len + n) c *= 2;
        b->buf = bv_xrealloc(b->buf, c);
        b->cap = c;
    }
    uint8_t *p = b->buf + b->len;
    b->len += n;
    return p;
}

void bv_example_builder_reset(bv_example_builder *b) {
    if (b->buf) b->len = HDR_RESERVE;
    b->n_features = 0;
}

void bv_example_builder_free(bv_example_builder *b) {
    free(b->buf);
    memset(b, 0, sizeof *b);
}

/* Writes the map entry header for a feature whose list message body (L) is `list_len` bytes:
 * entry{ key, value: Feature{ <kind> : L } }, and returns where L goes (exactly list_len bytes). */
static uint8_t *begin_entry(bv_example_builder *b, const char *name, int kind, size_t list_len) {
    size_t kl = strlen(name);
    size_t feat_len = 1 + varint_size(list_len) + list_len;
    size_t entry_len = 1 + varint_size(kl) + kl + 1 + varint_size(feat_len) + feat_len;
    size_t total = 1 + varint_size(entry_len) + entry_len;
    uint8_t *p = reserve(b, total), *start = p;
    *p++ = 0x0a; /* Features.feature = 1, LEN */
    p = put_varint(p, entry_len);
    *p++ = 0x0a; /* key = 1, LEN */
    p = put_varint(p, kl);
    memcpy(p, name, kl);
    p += kl;
    *p++ = 0x12; /* value = 2, LEN */
    p = put_varint(p, feat_len);
    *p++ = (uint8_t)(kind << 3 | WT_LEN);
    p = put_varint(p, list_len);
    BV_ASSERT((size_t)(p - start) + list_len == total, "entry size bookkeeping");
    b->n_features++;
    return p;
}

void bv_example_add_bytes(bv_example_builder *b, const char *name, size_t n, const void *const *vals,
                          const size_t *lens) {
    size_t list_len = 0;
    for (size_t i = 0; i < n; i++) list_len += 1 + varint_size(lens[i]) + lens[i];
    uint8_t *p = begin_entry(b, name, BV_FEAT_BYTES, list_len);
    for (size_t i = 0; i < n; i++) {
        *p++ = 0x0a;
        p = put_varint(p, lens[i]);
        if (lens[i]) memcpy(p, vals[i], lens[i]);
        p += lens[i];
    }
}

void bv_example_add_string(bv_example_builder *b, const char *name, const char *s) {
    const void *v = s;
    size_t l = strlen(s);
    bv_example_add_bytes(b, name, 1, &v, &l);
}

void bv_example_add_floats(bv_example_builder *b, const char *name, size_t n, const float *vals) {
    BV_ASSERT(n <= SIZE_MAX / 8, "too many floats (%zu)", n);
    size_t list_len = n ? 1 + varint_size(4 * n) + 4 * n : 0;
    uint8_t *p = begin_entry(b, name, BV_FEAT_FLOAT, list_len);
    if (!n) return;
    *p++ = 0x0a; /* value = 1, packed */
    p = put_varint(p, 4 * n);
    memcpy(p, vals, 4 * n);
}

void bv_example_add_int64s(bv_example_builder *b, const char *name, size_t n, const int64_t *vals) {
    size_t body = 0;
    for (size_t i = 0; i < n; i++) body += varint_size((uint64_t)vals[i]);
    size_t list_len = n ? 1 + varint_size(body) + body : 0;
    uint8_t *p = begin_entry(b, name, BV_FEAT_INT64, list_len);
    if (!n) return;
    *p++ = 0x0a;
    p = put_varint(p, body);
    for (size_t i = 0; i < n; i++) p = put_varint(p, (uint64_t)vals[i]);
}

const uint8_t *bv_example_builder_finish(bv_example_builder *b, size_t *len) {
    if (!b->buf) reserve(b, 0);
    size_t body = b->len - HDR_RESERVE;
    size_t h = 1 + varint_size(body);
    uint8_t *p = b->buf + HDR_RESERVE - h;
    p[0] = 0x0a; /* Example.features = 1, LEN */
    put_varint(p + 1, body);
    *len = h + body;
    return p;
}
