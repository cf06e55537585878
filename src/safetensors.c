#include "src/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/atomic_file.h"
#include "src/safetensors_impl.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c reads and writes tensor data in host order, which must be little-endian"
#endif

/* Tensor and key names come from the file and can be very long: cap what a message quotes. */
#define NAMEF "%.200s"

static const char *json_type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "real number";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

/* A short rendering of a JSON scalar for messages: the value for numbers and strings, the type
 * otherwise. */
static const char *json_describe(const json_t *v, char *buf, size_t n) {
    if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%.17g", json_real_value(v));
    else if (json_is_string(v))
        snprintf(buf, n, "the string \"%.60s\"", json_string_value(v));
    else
        snprintf(buf, n, "a JSON %s", json_type_name(v));
    return buf;
}

static void free_contents(bv_st_file *f) {
    for (int i = 0; i < f->n; i++) free(f->entries[i].name);
    free(f->entries);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static char *dup_or_null(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

/* jansson reports a duplicate key without naming it when the key is longer than 20 bytes. The
 * error position is just past the closing quote of the repeated key: recover the raw key text. */
static void duplicate_key_text(const char *hdr, size_t pos, char *out, size_t n) {
    out[0] = 0;
    if (pos < 2 || hdr[pos - 1] != '"') return;
    size_t close = pos - 1, j = close;
    while (j > 0) {
        j--;
        if (hdr[j] != '"') continue;
        size_t bs = 0;
        while (j >= bs + 1 && hdr[j - bs - 1] == '\\') bs++;
        if (bs % 2 == 0) {
            size_t len = close - j - 1;
            if (len >= n) len = n - 1;
            memcpy(out, hdr + j + 1, len);
            out[len] = 0;
            return;
        }
    }
}

/* Reads a non-negative JSON integer; returns 0 on success. */
static int json_get_u64(const json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static bv_status parse_tensor(const char *path, const char *name, const json_t *v, size_t data_size,
                              bv_st_entry *e) {
    char d1[96], d2[96];
    if (!json_is_object(v))
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: tensor '" NAMEF "': entry is a JSON %s, expected an object with dtype, shape and "
                            "data_offsets",
                            path, name, json_type_name(v));
    /* dtype */
    const json_t *jd = json_object_get(v, "dtype");
    if (!jd) return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': missing \"dtype\"", path, name);
    if (!json_is_string(jd))
        return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': \"dtype\" is %s, expected a string such as \"F32\"",
                            path, name, json_describe(jd, d1, sizeof d1));
    if (bv_dtype_from_name(json_string_value(jd), &e->dtype) != 0)
        return bv_error_set(BV_ERR_UNSUPPORTED,
                            "%s: tensor '" NAMEF "': dtype \"%.40s\" is not supported (expected one of F32, F64, "
                            "BF16, F16, I8, U8, I32, I64)",
                            path, name, json_string_value(jd));
    /* shape */
    const json_t *js = json_object_get(v, "shape");
    if (!js) return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': missing \"shape\"", path, name);
    if (!json_is_array(js))
        return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': \"shape\" is %s, expected an array of integers",
                            path, name, json_describe(js, d1, sizeof d1));
    size_t nd = json_array_size(js);
    if (nd > BV_MAX_DIMS)
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: tensor '" NAMEF "': rank %zu, at most %d is supported", path,
                            name, nd, BV_MAX_DIMS);
    e->ndim = (int)nd;
    uint64_t numel = 1;
    bool overflow = false;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (json_get_u64(json_array_get(js, i), &d) != 0)
            return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': shape[%zu] is %s, expected an integer >= 0",
                                path, name, i, json_describe(json_array_get(js, i), d1, sizeof d1));
        e->shape[i] = (int64_t)d;
        if (__builtin_mul_overflow(numel, d, &numel)) overflow = true;
    }
    uint64_t nbytes = 0;
    char sh[160];
    bv_shape_str(e->ndim, e->shape, sh, sizeof sh);
    /* numel must also fit int64_t (bv_tensor counts elements in int64_t) */
    if (overflow || numel > (uint64_t)INT64_MAX || __builtin_mul_overflow(numel, (uint64_t)bv_dtype_size(e->dtype), &nbytes))
        return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': shape %s of %s overflows 64-bit sizes", path,
                            name, sh, bv_dtype_name(e->dtype));
    /* data_offsets */
    const json_t *jo = json_object_get(v, "data_offsets");
    if (!jo) return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': missing \"data_offsets\"", path, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: tensor '" NAMEF "': \"data_offsets\" is %s, expected an array [begin, end] of 2 "
                            "integers",
                            path, name,
                            json_is_array(jo) ? (snprintf(d1, sizeof d1, "an array of %zu", json_array_size(jo)), d1)
                                              : json_describe(jo, d1, sizeof d1));
    for (int k = 0; k < 2; k++) {
        uint64_t *dst = k ? &e->end : &e->begin;
        if (json_get_u64(json_array_get(jo, (size_t)k), dst) != 0)
            return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': data_offsets[%d] is %s, expected an integer >= 0",
                                path, name, k, json_describe(json_array_get(jo, (size_t)k), d2, sizeof d2));
    }
    if (e->end < e->begin)
        return bv_error_set(BV_ERR_FORMAT, "%s: tensor '" NAMEF "': data_offsets [%llu, %llu] end before they begin",
                            path, name, (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end - e->begin != nbytes)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: tensor '" NAMEF "': data_offsets [%llu, %llu] hold %llu bytes, but %s %s needs %llu",
                            path, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                            (unsigned long long)(e->end - e->begin), bv_dtype_name(e->dtype), sh,
                            (unsigned long long)nbytes);
    if (e->end > data_size)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: tensor '" NAMEF "': data_offsets [%llu, %llu] reach past the end of the data section "
                            "(%zu bytes; truncated file?)",
                            path, name, (unsigned long long)e->begin, (unsigned long long)e->end, data_size);
    return BV_OK;
}

static int cmp_entry(const void *pa, const void *pb) {
    const bv_st_entry *a = pa, *b = pb;
    if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end) return a->end < b->end ? -1 : 1;
    return strcmp(a->name, b->name);
}

/* The tensors, sorted by offsets, must tile [0, data_size) exactly: no overlap, no gap, no tail. */
static bv_status check_tiling(const char *path, const bv_st_entry *e, int n, size_t data_size) {
    uint64_t cursor = 0;
    int prev = -1; /* last tensor that ended at `cursor` */
    for (int i = 0; i < n; i++) {
        if (e[i].begin < cursor)
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: tensor '" NAMEF "': data_offsets [%llu, %llu] overlap tensor '" NAMEF
                                "' at [%llu, %llu]",
                                path, e[i].name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                                e[prev].name, (unsigned long long)e[prev].begin, (unsigned long long)e[prev].end);
        if (e[i].begin > cursor) {
            if (prev < 0)
                return bv_error_set(BV_ERR_FORMAT,
                                    "%s: tensor '" NAMEF "': data_offsets [%llu, %llu] leave a gap: the first tensor "
                                    "must begin at 0 (tensors must tile the data section)",
                                    path, e[i].name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: tensor '" NAMEF "': data_offsets [%llu, %llu] leave a gap of %llu bytes after "
                                "tensor '" NAMEF "' which ends at %llu (tensors must tile the data section)",
                                path, e[i].name, (unsigned long long)e[i].begin, (unsigned long long)e[i].end,
                                (unsigned long long)(e[i].begin - cursor), e[prev].name, (unsigned long long)cursor);
        }
        if (e[i].end > cursor || prev < 0) {
            cursor = e[i].end;
            prev = i;
        }
    }
    if (cursor != data_size) {
        if (prev < 0)
            return bv_error_set(BV_ERR_FORMAT, "%s: no tensors, but the data section holds %zu bytes", path, data_size);
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: tensor '" NAMEF "': the last tensor ends at %llu, but the data section holds %zu "
                            "bytes (%llu unused trailing bytes)",
                            path, e[prev].name, (unsigned long long)cursor, data_size,
                            (unsigned long long)(data_size - cursor));
    }
    return BV_OK;
}

static bv_status parse_metadata(bv_st_file *f, const char *path, const json_t *m) {
    char d1[96];
    if (!json_is_object(m))
        return bv_error_set(BV_ERR_FORMAT, "%s: \"__metadata__\" is %s, expected an object of strings", path,
                            json_describe(m, d1, sizeof d1));
    size_t n = json_object_size(m);
    f->meta_keys = calloc(n ? n : 1, sizeof(char *));
    f->meta_vals = calloc(n ? n : 1, sizeof(char *));
    if (!f->meta_keys || !f->meta_vals) return bv_error_set(BV_ERR_NOMEM, "%s: out of memory for metadata", path);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)m, k, v) {
        if (!json_is_string(v))
            return bv_error_set(BV_ERR_FORMAT, "%s: __metadata__ key '" NAMEF "': value is %s, expected a string",
                                path, k, json_describe(v, d1, sizeof d1));
        char *ks = dup_or_null(k), *vs = dup_or_null(json_string_value(v));
        if (!ks || !vs) {
            free(ks);
            free(vs);
            return bv_error_set(BV_ERR_NOMEM, "%s: out of memory for metadata", path);
        }
        f->meta_keys[f->n_meta] = ks;
        f->meta_vals[f->n_meta] = vs;
        f->n_meta++;
    }
    return BV_OK;
}

bv_status bv_st_parse_buffer(bv_st_file *f, const char *label, const uint8_t *buf, size_t len) {
    memset(f, 0, sizeof *f);
    const char *path = label;
    if (len < 8)
        return bv_error_set(BV_ERR_FORMAT, "%s: file is %zu bytes, too short for the 8-byte header length", path, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > BV_ST_MAX_HEADER)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: header length is %llu bytes, more than the %u-byte limit (not a safetensors file?)",
                            path, (unsigned long long)hlen, BV_ST_MAX_HEADER);
    if (hlen > len - 8)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: header length is %llu bytes, but only %zu bytes follow the length field "
                            "(truncated file?)",
                            path, (unsigned long long)hlen, len - 8);
    const char *hdr = (const char *)buf + 8;
    json_error_t jerr;
    json_t *root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_duplicate_key) {
            char key[256];
            duplicate_key_text(hdr, (size_t)jerr.position, key, sizeof key);
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: header JSON: tensor or key '%s' appears twice (line %d, column %d); names must "
                                "be unique",
                                path, key, jerr.line, jerr.column);
        }
        return bv_error_set(BV_ERR_FORMAT, "%s: header is not valid JSON: %s (line %d, column %d)%s", path,
                            jerr.text, jerr.line, jerr.column,
                            memchr(hdr, 0, (size_t)hlen) ? "; it contains NUL bytes (padding must be spaces)" : "");
    }
    bv_status st = BV_OK;
    char d1[96];
    if (!json_is_object(root)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: header is %s, expected a JSON object {name: {dtype, shape, data_offsets}}",
                          path, json_describe(root, d1, sizeof d1));
        goto done;
    }
    f->path = dup_or_null(path);
    size_t ntot = json_object_size(root);
    f->entries = calloc(ntot ? ntot : 1, sizeof *f->entries);
    if (!f->path || !f->entries) {
        st = bv_error_set(BV_ERR_NOMEM, "%s: out of memory for %zu header entries", path, ntot);
        goto done;
    }
    size_t data_size = len - 8 - (size_t)hlen;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if ((st = parse_metadata(f, path, val)) != BV_OK) goto done;
            continue;
        }
        bv_st_entry *e = &f->entries[f->n];
        if ((st = parse_tensor(path, key, val, data_size, e)) != BV_OK) goto done;
        if (!(e->name = dup_or_null(key))) {
            st = bv_error_set(BV_ERR_NOMEM, "%s: out of memory for tensor names", path);
            goto done;
        }
        f->n++;
    }
    qsort(f->entries, (size_t)f->n, sizeof *f->entries, cmp_entry);
    if ((st = check_tiling(path, f->entries, f->n, data_size)) != BV_OK) goto done;
    f->data = buf + 8 + hlen;
    f->data_size = data_size;
done:
    json_decref(root);
    if (st != BV_OK) free_contents(f);
    return st;
}

bv_status bv_st_open(bv_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return bv_error_set(BV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return bv_error_set(BV_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return bv_error_set(BV_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return bv_error_set(BV_ERR_IO, "%s: file of %lld bytes does not fit the address space", path,
                            (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) { /* mmap of length 0 fails; the parser reports a too-short file */
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int err = errno;
            close(fd);
            return bv_error_set(BV_ERR_IO, "%s: cannot mmap %zu bytes: %s", path, size, strerror(err));
        }
    }
    close(fd); /* the mapping keeps the file referenced */
    bv_status st = bv_st_parse_buffer(f, path, map, size);
    if (st != BV_OK) {
        if (map) munmap(map, size);
        return st;
    }
    f->map = map;
    f->map_size = size;
    return BV_OK;
}

void bv_st_close(bv_st_file *f) {
    if (f->map) munmap(f->map, f->map_size);
    free_contents(f);
}

int bv_st_find(const bv_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0) return i;
    return -1;
}

bv_tensor bv_st_view(const bv_st_file *f, int i) {
    BV_ASSERT(i >= 0 && i < f->n, "%s: tensor index %d outside 0..%d", f->path, i, f->n - 1);
    const bv_st_entry *e = &f->entries[i];
    return bv_tensor_make((void *)(f->data + e->begin), e->dtype, e->ndim, e->shape);
}

const char *bv_st_meta(const bv_st_file *f, const char *key) {
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

bv_status bv_st_read(const bv_st_file *f, const char *name, bv_dtype dt, int ndim, const int64_t *shape,
                     int64_t numel, void *dst) {
    BV_ASSERT(dt >= 0 && dt < BV_DTYPE_COUNT, "bad dtype %d", (int)dt);
    BV_ASSERT(ndim <= BV_MAX_DIMS, "rank %d > %d", ndim, BV_MAX_DIMS);
    int i = bv_st_find(f, name);
    if (i < 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: no tensor '" NAMEF "' (the file holds %d tensors)", f->path, name,
                            f->n);
    const bv_st_entry *e = &f->entries[i];
    char want[160], got[160];
    bv_shape_str(e->ndim, e->shape, got, sizeof got);
    int64_t n = 1;
    for (int k = 0; k < e->ndim; k++) n *= e->shape[k]; /* fits: checked at open */
    if (ndim >= 0) {
        bool same = ndim == e->ndim;
        for (int k = 0; same && k < ndim; k++) same = shape[k] == e->shape[k];
        if (!same) {
            bv_shape_str(ndim, shape, want, sizeof want);
            return bv_error_set(BV_ERR_SHAPE, "%s: tensor '" NAMEF "': shape is %s, expected %s", f->path, name, got,
                                want);
        }
    } else if (n != numel) {
        return bv_error_set(BV_ERR_SHAPE, "%s: tensor '" NAMEF "': %lld elements (shape %s), expected %lld", f->path,
                            name, (long long)n, got, (long long)numel);
    }
    const uint8_t *src = f->data + e->begin;
    if (dt == e->dtype) {
        if (n) memcpy(dst, src, (size_t)(e->end - e->begin));
        return BV_OK;
    }
    /* The mapped data may be unaligned for its type: convert through an aligned bounce buffer. */
    _Alignas(16) uint8_t tmp[4096];
    size_t ssz = bv_dtype_size(e->dtype), dsz = bv_dtype_size(dt), chunk = sizeof tmp / ssz;
    for (size_t k = 0; k < (size_t)n; k += chunk) {
        size_t c = BV_MIN(chunk, (size_t)n - k);
        memcpy(tmp, src + k * ssz, c * ssz);
        bv_dtype_convert((uint8_t *)dst + k * dsz, dt, tmp, e->dtype, c);
    }
    return BV_OK;
}

/* ---- writer ---- */

static int cmp_str_ptr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Names must be unique: sort a copy of the pointers and compare neighbours. Returns the
 * duplicated name or NULL. */
static const char *find_duplicate(const char **names, int n) {
    qsort(names, (size_t)n, sizeof *names, cmp_str_ptr);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static bv_status validate_items(const char *path, int n, const bv_st_item *items, int n_meta,
                                const char *const *meta, bool streamed) {
    if (n < 0 || n_meta < 0)
        return bv_error_set(BV_ERR_ARG, "%s: cannot save %d tensors and %d metadata entries", path, n, n_meta);
    for (int i = 0; i < n; i++) {
        const bv_st_item *it = &items[i];
        if (!it->name) return bv_error_set(BV_ERR_ARG, "%s: tensor #%d has no name", path, i);
        if (strcmp(it->name, "__metadata__") == 0)
            return bv_error_set(BV_ERR_ARG, "%s: '__metadata__' is reserved and cannot name a tensor", path);
        if (it->t.dtype < 0 || it->t.dtype >= BV_DTYPE_COUNT)
            return bv_error_set(BV_ERR_ARG, "%s: tensor '" NAMEF "': invalid dtype %d", path, it->name, (int)it->t.dtype);
        if (it->t.ndim < 0 || it->t.ndim > BV_MAX_DIMS)
            return bv_error_set(BV_ERR_ARG, "%s: tensor '" NAMEF "': rank %d outside 0..%d", path, it->name,
                                it->t.ndim, BV_MAX_DIMS);
        for (int k = 0; k < it->t.ndim; k++)
            if (it->t.shape[k] < 0)
                return bv_error_set(BV_ERR_ARG, "%s: tensor '" NAMEF "': shape[%d] is %lld", path, it->name, k,
                                    (long long)it->t.shape[k]);
        if (!streamed && bv_tensor_numel(&it->t) > 0 && !it->t.data)
            return bv_error_set(BV_ERR_ARG, "%s: tensor '" NAMEF "': NULL data", path, it->name);
    }
    for (int i = 0; i < 2 * n_meta; i++)
        if (!meta[i])
            return bv_error_set(BV_ERR_ARG, "%s: metadata %s #%d is NULL", path, i % 2 ? "value" : "key", i / 2);
    const char **names = malloc((size_t)BV_MAX(BV_MAX(n, n_meta), 1) * sizeof *names);
    if (!names) return bv_error_set(BV_ERR_NOMEM, "%s: out of memory", path);
    const char *dup;
    for (int i = 0; i < n; i++) names[i] = items[i].name;
    if ((dup = find_duplicate(names, n))) {
        bv_error_set(BV_ERR_ARG, "%s: tensor '" NAMEF "' given twice", path, dup);
        free(names);
        return BV_ERR_ARG;
    }
    for (int i = 0; i < n_meta; i++) names[i] = meta[2 * i];
    if ((dup = find_duplicate(names, n_meta))) {
        bv_error_set(BV_ERR_ARG, "%s: metadata key '" NAMEF "' given twice", path, dup);
        free(names);
        return BV_ERR_ARG;
    }
    free(names);
    return BV_OK;
}

/* The header JSON (unpadded, malloc'd by jansson) or NULL with the message set. */
static char *build_header(const char *path, int n, const bv_st_item *items, int n_meta, const char *const *meta,
                          bv_status *st) {
    json_t *root = json_object();
    char *s = NULL;
    *st = BV_ERR_NOMEM;
    if (!root) goto oom;
    if (n_meta > 0) {
        json_t *m = json_object();
        if (!m || json_object_set_new(root, "__metadata__", m) != 0) goto oom;
        for (int i = 0; i < n_meta; i++) {
            json_t *v = json_string(meta[2 * i + 1]);
            if (!v || json_object_set_new(m, meta[2 * i], v) != 0) {
                *st = bv_error_set(BV_ERR_ARG, "%s: metadata key '" NAMEF "' or its value is not valid UTF-8", path,
                                   meta[2 * i]);
                goto fail;
            }
        }
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const bv_tensor *t = &items[i].t;
        uint64_t nb = (uint64_t)bv_tensor_nbytes(t);
        json_t *shape = json_array();
        json_t *e = json_pack("{s:s, s:o, s:[I, I]}", "dtype", bv_dtype_name(t->dtype), "shape", shape,
                              "data_offsets", (json_int_t)off, (json_int_t)(off + nb));
        if (!e) goto oom;
        for (int k = 0; k < t->ndim; k++)
            if (json_array_append_new(shape, json_integer(t->shape[k])) != 0) {
                json_decref(e);
                goto oom;
            }
        if (json_object_set_new(root, items[i].name, e) != 0) {
            *st = bv_error_set(BV_ERR_ARG, "%s: tensor name '" NAMEF "' is not valid UTF-8", path, items[i].name);
            goto fail;
        }
        off += nb;
    }
    s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s) goto oom;
    json_decref(root);
    *st = BV_OK;
    return s;
oom:
    *st = bv_error_set(BV_ERR_NOMEM, "%s: out of memory building the header", path);
fail:
    json_decref(root);
    return NULL;
}

static bv_status write_all(FILE *fp, const void *p, size_t n, const char *tmp) {
    if (n && fwrite(p, 1, n, fp) != n)
        return bv_error_set(BV_ERR_IO, "%s: write failed: %s", tmp, strerror(errno));
    return BV_OK;
}

static bv_status write_tensor(FILE *fp, const bv_tensor *t, const char *tmp, const char *name) {
    size_t nb = bv_tensor_nbytes(t);
    if (nb == 0) return BV_OK;
    if (bv_tensor_is_contiguous(t)) return write_all(fp, bv_tensor_ptr(t), nb, tmp);
    void *buf = malloc(nb);
    if (!buf)
        return bv_error_set(BV_ERR_NOMEM, "%s: out of memory for a contiguous copy of tensor '" NAMEF "' (%zu bytes)",
                            tmp, name, nb);
    bv_tensor c = bv_tensor_make(buf, t->dtype, t->ndim, t->shape);
    bv_tensor_copy_into(&c, t);
    bv_status st = write_all(fp, buf, nb, tmp);
    free(buf);
    return st;
}

static bv_status save(const char *path, int n, const bv_st_item *items, int n_meta, const char *const *meta,
                      bv_st_data_fn fn, void *ctx) {
    bv_status st = validate_items(path, n, items, n_meta, meta, fn != NULL);
    if (st != BV_OK) return st;
    char *hdr = build_header(path, n, items, n_meta, meta, &st);
    if (!hdr) return st;
    size_t hlen = strlen(hdr), padded = (hlen + 7) & ~(size_t)7;

    bv_atomic_file f;
    if ((st = bv_atomic_open(&f, path)) != BV_OK) {
        free(hdr);
        return st;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    static const char spaces[8] = "        ";
    if ((st = write_all(f.fp, len8, 8, f.tmp)) != BV_OK || (st = write_all(f.fp, hdr, hlen, f.tmp)) != BV_OK ||
        (st = write_all(f.fp, spaces, padded - hlen, f.tmp)) != BV_OK)
        goto fail;
    if (fn) {
        long start = ftell(f.fp);
        uint64_t want = 0;
        for (int i = 0; i < n; i++) want += (uint64_t)bv_tensor_nbytes(&items[i].t);
        if ((st = fn(ctx, f.fp, f.tmp)) != BV_OK) goto fail;
        long end = ftell(f.fp);
        if (start < 0 || end < 0 || (uint64_t)(end - start) != want) {
            st = bv_error_set(BV_ERR_INTERNAL, "%s: the data writer wrote %ld bytes, the header says %llu", f.tmp,
                              end - start, (unsigned long long)want);
            goto fail;
        }
    } else {
        for (int i = 0; i < n; i++)
            if ((st = write_tensor(f.fp, &items[i].t, f.tmp, items[i].name)) != BV_OK) goto fail;
    }
    free(hdr);
    return bv_atomic_commit(&f);
fail:
    bv_atomic_abort(&f);
    free(hdr);
    return st;
}

bv_status bv_st_save(const char *path, int n, const bv_st_item *items, int n_meta, const char *const *meta) {
    return save(path, n, items, n_meta, meta, NULL, NULL);
}

bv_status bv_st_save_stream(const char *path, int n, const bv_st_item *items, int n_meta, const char *const *meta,
                            bv_st_data_fn fn, void *ctx) {
    BV_ASSERT(fn, "bv_st_save_stream without a data writer");
    return save(path, n, items, n_meta, meta, fn, ctx);
}
