/* serve.c - the HTTP policy server (serve.h; protocol in docs/serving.md).
 *
 * libmicrohttpd calls serve_handler several times per request: once when the headers are in
 * (routing, the Content-Length limit), once per piece of the body (appended to a buffer that never
 * grows past max_body), and once at the end (decode, act, encode). serve_done frees the request.
 */
#include "eval/serve.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

struct bv_serve {
    bv_serve_opts o;
    char host[256];
    struct sockaddr_storage addr;
    struct MHD_Daemon *d;
    int port;
    char mhd_msg[512]; /* libmicrohttpd's last log message (the reason a start failed) */
    uint64_t n_ok, n_client, n_server;
};

/* ---- base64 (RFC 4648, standard alphabet, padded: what Python's b64encode writes) ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* n bytes -> 4 ceil(n / 3) characters at out (not terminated). */
static void b64_encode(const uint8_t *in, size_t n, char *out) {
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64_chars[v >> 18];
        *out++ = b64_chars[(v >> 12) & 63];
        *out++ = b64_chars[(v >> 6) & 63];
        *out++ = b64_chars[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        *out++ = b64_chars[v >> 18];
        *out++ = b64_chars[(v >> 12) & 63];
        *out++ = i + 1 < n ? b64_chars[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
}

static int b64_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* The number of bytes a well-formed padded string of n characters decodes to, or -1 when n is
 * not a multiple of 4 or the padding is misplaced (checked fully by b64_decode). */
static int64_t b64_decoded_len(const char *s, size_t n) {
    if (n % 4 != 0) return -1;
    if (n == 0) return 0;
    size_t pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    return (int64_t)(n / 4 * 3 - pad);
}

/* Strict decoding: every character in the alphabet, '=' only as the final padding. Returns -1 and
 * the offending character's index in *bad, or 0. out holds b64_decoded_len bytes. */
static int b64_decode(const char *s, size_t n, uint8_t *out, size_t *bad) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        bool last = i + 4 == n;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && last && (k == 3 || (k == 2 && s[i + 3] == '='))) {
                v[k] = -2;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0) {
                *bad = i + k;
                return -1;
            }
        }
        if (v[0] < 0 || v[1] < 0) {
            *bad = i;
            return -1;
        }
        out[o++] = (uint8_t)(v[0] << 2 | v[1] >> 4);
        if (v[2] >= 0) out[o++] = (uint8_t)((v[1] & 15) << 4 | v[2] >> 2);
        if (v[3] >= 0) out[o++] = (uint8_t)((v[2] & 3) << 6 | v[3]);
    }
    return 0;
}

/* ---- json_numpy arrays: {"__numpy__": base64 of the raw C-order bytes, "dtype": numpy's
 * dtype_to_descr ("|u1", "<f4", "<f8"), "shape": [d0, d1, ...]} ---- */

#define NP_MAX_DIM 8

typedef struct {
    char kind;       /* 'u', 'i', 'f', ... */
    int itemsize;    /* bytes per element */
    bool big_endian; /* '>' */
    int ndim;
    int64_t shape[NP_MAX_DIM];
    int64_t count;  /* elements */
    uint8_t *data;  /* count * itemsize bytes (malloc'd) */
} np_array;

/* JSON type names for messages */
static const char *json_kind(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "a JSON object";
    case JSON_ARRAY: return "a JSON list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* "(224, 224, 3)" */
static void shape_str(const np_array *a, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < a->ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)a->shape[i]);
    if (k < n) snprintf(buf + k, n - k, a->ndim == 1 ? ",)" : ")");
}

/* Parse a numpy type descriptor: an optional byte order ('<', '>', '|', '='), a kind letter and
 * the item size in bytes. */
static bool np_parse_dtype(const char *s, np_array *a) {
    a->big_endian = false;
    if (*s == '<' || *s == '|' || *s == '=') s++;
    else if (*s == '>') {
        a->big_endian = true;
        s++;
    }
    if (!strchr("biufc", *s) || !*s) return false;
    a->kind = *s++;
    if (*s < '1' || *s > '9' || strlen(s) > 2) return false;
    a->itemsize = atoi(s);
    return a->itemsize >= 1 && a->itemsize <= 16;
}

static bv_status np_decode(const json_t *v, const char *field, np_array *a) {
    memset(a, 0, sizeof *a);
    const json_t *b64 = json_is_object(v) ? json_object_get(v, "__numpy__") : NULL;
    if (!b64)
        return bv_error_set(BV_ERR_FORMAT,
                            "'%s': expected a json_numpy array (an object with \"__numpy__\", \"dtype\" and "
                            "\"shape\"), got %s",
                            field, json_is_object(v) ? "an object without \"__numpy__\"" : json_kind(v));
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape");
    if (!json_is_string(b64)) return bv_error_set(BV_ERR_FORMAT, "'%s': \"__numpy__\" must be a base64 string", field);
    if (!json_is_string(dt))
        return bv_error_set(BV_ERR_FORMAT, "'%s': \"dtype\" must be a string such as \"|u1\" or \"<f4\"", field);
    if (!np_parse_dtype(json_string_value(dt), a))
        return bv_error_set(BV_ERR_FORMAT, "'%s': \"dtype\" '%s' is not a numpy type descriptor such as \"<f4\"",
                            field, json_string_value(dt));
    if (!json_is_array(sh) || json_array_size(sh) > NP_MAX_DIM)
        return bv_error_set(BV_ERR_FORMAT, "'%s': \"shape\" must be a list of at most %d integers", field,
                            NP_MAX_DIM);
    a->ndim = (int)json_array_size(sh);
    a->count = 1;
    for (int i = 0; i < a->ndim; i++) {
        const json_t *d = json_array_get(sh, (size_t)i);
        if (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > INT_MAX)
            return bv_error_set(BV_ERR_FORMAT, "'%s': \"shape\"[%d] must be an integer in [0, %d]", field, i, INT_MAX);
        a->shape[i] = json_integer_value(d);
        if (__builtin_mul_overflow(a->count, a->shape[i], &a->count) || a->count > ((int64_t)1 << 40))
            return bv_error_set(BV_ERR_FORMAT, "'%s': \"shape\" has too many elements", field);
    }
    const char *s = json_string_value(b64);
    size_t n = json_string_length(b64);
    int64_t want = a->count * a->itemsize, got = b64_decoded_len(s, n);
    char shp[128];
    shape_str(a, shp, sizeof shp);
    if (got < 0)
        return bv_error_set(BV_ERR_FORMAT, "'%s': \"__numpy__\" is not padded base64 (%zu characters, not a multiple of 4)",
                            field, n);
    if (got != want)
        return bv_error_set(BV_ERR_SHAPE, "'%s': shape %s of %s needs %lld bytes, but \"__numpy__\" holds %lld", field,
                            shp, json_string_value(dt), (long long)want, (long long)got);
    a->data = malloc(want ? (size_t)want : 1);
    if (!a->data) return bv_error_set(BV_ERR_NOMEM, "'%s': cannot allocate %lld bytes", field, (long long)want);
    size_t bad = 0;
    if (b64_decode(s, n, a->data, &bad) != 0) {
        free(a->data);
        a->data = NULL;
        return bv_error_set(BV_ERR_FORMAT, "'%s': \"__numpy__\" is not base64: character %zu is '%c'", field, bad,
                            s[bad] >= 32 && s[bad] < 127 ? s[bad] : '?');
    }
    return BV_OK;
}

/* An (H, W, 3) uint8 image. */
static bv_status decode_image(const json_t *v, const char *field, np_array *a) {
    BV_TRY(np_decode(v, field, a));
    char shp[128];
    shape_str(a, shp, sizeof shp);
    if (a->kind != 'u' || a->itemsize != 1)
        return bv_error_set(BV_ERR_SHAPE, "'%s': expected dtype uint8 (\"|u1\"), got %c%d", field, a->kind,
                            a->itemsize);
    if (a->ndim != 3 || a->shape[2] != 3 || a->shape[0] < 1 || a->shape[1] < 1)
        return bv_error_set(BV_ERR_SHAPE, "'%s': expected shape (H, W, 3) of an RGB image, got %s", field, shp);
    return BV_OK;
}

static float load_float(const uint8_t *p, int size, bool big) {
    uint8_t b[8];
    for (int k = 0; k < size; k++) b[k] = big ? p[size - 1 - k] : p[k];
    if (size == 4) {
        float f;
        memcpy(&f, b, 4);
        return f;
    }
    double d;
    memcpy(&d, b, 8);
    return (float)d;
}

/* The state: a json_numpy float32/float64 vector, or a plain JSON list of numbers. */
static bv_status decode_state(const json_t *v, int want_dim, float **out, int *dim) {
    *out = NULL;
    int64_t n;
    float *x;
    if (json_is_array(v)) {
        n = (int64_t)json_array_size(v);
        x = malloc((n ? (size_t)n : 1) * sizeof *x);
        if (!x) return bv_error_set(BV_ERR_NOMEM, "'state': cannot allocate %lld floats", (long long)n);
        for (int64_t i = 0; i < n; i++) {
            const json_t *e = json_array_get(v, (size_t)i);
            if (!json_is_number(e)) {
                free(x);
                return bv_error_set(BV_ERR_FORMAT, "'state'[%lld]: expected a number, got %s", (long long)i,
                                    json_kind(e));
            }
            x[i] = (float)json_number_value(e);
        }
    } else {
        np_array a;
        BV_TRY(np_decode(v, "state", &a));
        if (a.kind != 'f' || (a.itemsize != 4 && a.itemsize != 8)) {
            free(a.data);
            return bv_error_set(BV_ERR_SHAPE, "'state': expected dtype float32 or float64 (\"<f4\" or \"<f8\"), got %c%d",
                                a.kind, a.itemsize);
        }
        if (a.ndim != 1) {
            char shp[128];
            shape_str(&a, shp, sizeof shp);
            free(a.data);
            return bv_error_set(BV_ERR_SHAPE, "'state': expected a vector, shape (N,), got %s", shp);
        }
        n = a.count;
        x = malloc((n ? (size_t)n : 1) * sizeof *x);
        if (!x) {
            free(a.data);
            return bv_error_set(BV_ERR_NOMEM, "'state': cannot allocate %lld floats", (long long)n);
        }
        for (int64_t i = 0; i < n; i++) x[i] = load_float(a.data + i * a.itemsize, a.itemsize, a.big_endian);
        free(a.data);
    }
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            free(x);
            return bv_error_set(BV_ERR_FORMAT, "'state'[%lld] is not a finite float32", (long long)i);
        }
    if (n < 1 || n > INT_MAX || (want_dim > 0 && n != want_dim)) {
        free(x);
        if (want_dim > 0)
            return bv_error_set(BV_ERR_SHAPE, "'state': expected %d values, got %lld", want_dim, (long long)n);
        return bv_error_set(BV_ERR_SHAPE, "'state': expected at least one value, got %lld", (long long)n);
    }
    *out = x;
    *dim = (int)n;
    return BV_OK;
}

/* ---- one request: body -> observation -> actions -> response ---- */

typedef struct {
    np_array full, wrist;
    float *state;
    json_t *root, *inner; /* inner: the decoded "encoded" string, when the client double-encoded */
} decoded;

static void decoded_free(decoded *d) {
    free(d->full.data);
    free(d->wrist.data);
    free(d->state);
    json_decref(d->inner);
    json_decref(d->root);
}

/* Parse and check the body into d and obs. *double_encoded tells whether the observation came
 * as {"encoded": "<JSON text>"} (deploy.py then answers with the JSON text as a string). */
static bv_status decode_request(const bv_serve *s, const char *body, size_t len, decoded *d, bv_serve_obs *obs,
                                bool *double_encoded) {
    json_error_t err;
    *double_encoded = false;
    if (len == 0) return bv_error_set(BV_ERR_FORMAT, "empty body: expected a JSON object");
    d->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
    if (!d->root)
        return bv_error_set(BV_ERR_FORMAT, "body is not JSON: line %d, column %d: %s", err.line, err.column, err.text);
    const json_t *ob = d->root;
    if (!json_is_object(ob)) return bv_error_set(BV_ERR_FORMAT, "body: expected a JSON object, got %s", json_kind(ob));
    const json_t *enc = json_object_get(ob, "encoded");
    if (enc) { /* deploy.py: "Support cases where json_numpy is hard to install" */
        if (json_object_size(ob) != 1)
            return bv_error_set(BV_ERR_FORMAT, "'encoded' must be the only key of the body, which has %zu",
                                json_object_size(ob));
        if (!json_is_string(enc))
            return bv_error_set(BV_ERR_FORMAT, "'encoded': expected a string of JSON text, got %s", json_kind(enc));
        d->inner = json_loadb(json_string_value(enc), json_string_length(enc), JSON_REJECT_DUPLICATES, &err);
        if (!d->inner)
            return bv_error_set(BV_ERR_FORMAT, "'encoded' is not JSON: line %d, column %d: %s", err.line, err.column,
                                err.text);
        if (!json_is_object(d->inner))
            return bv_error_set(BV_ERR_FORMAT, "'encoded': expected a JSON object, got %s", json_kind(d->inner));
        ob = d->inner;
        *double_encoded = true;
    }
    memset(obs, 0, sizeof *obs);
    const json_t *v = json_object_get(ob, "full_image");
    if (!v) return bv_error_set(BV_ERR_FORMAT, "missing 'full_image': expected a json_numpy uint8 array (H, W, 3)");
    BV_TRY(decode_image(v, "full_image", &d->full));
    obs->full_image = d->full.data;
    obs->full_h = (int)d->full.shape[0];
    obs->full_w = (int)d->full.shape[1];
    /* deploy.py takes every key containing "wrist" as a wrist image, in the body's order; the
     * policy here takes at most one */
    const char *key, *wrist_key = NULL;
    json_t *val;
    json_object_foreach((json_t *)ob, key, val) {
        if (!strstr(key, "wrist")) continue;
        if (wrist_key)
            return bv_error_set(BV_ERR_SHAPE, "two wrist images ('%s' and '%s'): this policy takes at most one ('wrist_image')",
                                wrist_key, key);
        wrist_key = key;
    }
    if (wrist_key) {
        BV_TRY(decode_image(json_object_get(ob, wrist_key), wrist_key, &d->wrist));
        obs->wrist_image = d->wrist.data;
        obs->wrist_h = (int)d->wrist.shape[0];
        obs->wrist_w = (int)d->wrist.shape[1];
    }
    v = json_object_get(ob, "state");
    if (!v)
        return bv_error_set(BV_ERR_FORMAT, "missing 'state': expected a json_numpy float array or a list of numbers");
    BV_TRY(decode_state(v, s->o.state_dim, &d->state, &obs->state_dim));
    obs->state = d->state;
    v = json_object_get(ob, "instruction");
    if (!v) return bv_error_set(BV_ERR_FORMAT, "missing 'instruction': expected a string");
    if (!json_is_string(v)) return bv_error_set(BV_ERR_FORMAT, "'instruction': expected a string, got %s", json_kind(v));
    obs->instruction = json_string_value(v);
    return BV_OK;
}

bv_status bv_serve_check_request(const char *body, size_t len, int state_dim, bv_serve_obs *shape) {
    bv_serve s;
    memset(&s, 0, sizeof s);
    s.o.state_dim = state_dim;
    decoded d;
    memset(&d, 0, sizeof d);
    bv_serve_obs obs;
    memset(&obs, 0, sizeof obs);
    bool dbl;
    bv_status st = decode_request(&s, body, len, &d, &obs, &dbl);
    if (shape) {
        *shape = obs;
        shape->full_image = shape->wrist_image = NULL, shape->state = NULL, shape->instruction = NULL;
    }
    decoded_free(&d);
    return st;
}

/* The 200 body, as deploy.py writes it: JSONResponse(action) renders the list of `chunk` float64
 * numpy arrays (action_dim,) through json_numpy with separators (",", ":"); a double-encoded
 * request gets JSONResponse(json_numpy.dumps(action)): that list written with json.dumps' default
 * separators (", ", ": "), as one JSON string. */
static char *encode_actions(const float *actions, int chunk, int dim, bool double_encoded, size_t *len) {
    size_t b64len = ((size_t)dim * 8 + 2) / 3 * 4;
    size_t cap = (size_t)chunk * (b64len + 96) + 16, k = 0;
    char *out = bv_xmalloc(cap);
    const char *q = double_encoded ? "\\\"" : "\"", *sep = double_encoded ? ", " : ",",
               *col = double_encoded ? ": " : ":";
    uint8_t *raw = bv_xmalloc((size_t)dim * 8);
    if (double_encoded) out[k++] = '"';
    out[k++] = '[';
    for (int t = 0; t < chunk; t++) {
        for (int j = 0; j < dim; j++) { /* "<f8": little-endian IEEE double */
            double x = actions[(size_t)t * dim + j];
            uint64_t bits;
            memcpy(&bits, &x, 8);
            for (int b = 0; b < 8; b++) raw[(size_t)j * 8 + b] = (uint8_t)(bits >> (8 * b));
        }
        k += (size_t)snprintf(out + k, cap - k, "%s{%s__numpy__%s%s%s", t ? sep : "", q, q, col, q);
        b64_encode(raw, (size_t)dim * 8, out + k);
        k += b64len;
        k += (size_t)snprintf(out + k, cap - k, "%s%s%sdtype%s%s%s<f8%s%s%sshape%s%s[%d]}", q, sep, q, q, col, q, q,
                              sep, q, q, col, dim);
    }
    out[k++] = ']';
    if (double_encoded) out[k++] = '"';
    out[k] = 0;
    BV_ASSERT(k < cap, "action response overran its buffer: %zu >= %zu", k, cap);
    free(raw);
    *len = k;
    return out;
}

/* ---- the libmicrohttpd side ---- */

typedef struct {
    double t0;
    char *body;
    size_t len, cap;
    bool too_big, nomem, responded;
    size_t discarded;             /* bytes read and dropped after the body went over max_body */
    unsigned long long declared;  /* its Content-Length, when that was over max_body */
} serve_req;

static void serve_log(bv_serve *s, const char *method, const char *url, unsigned code, const serve_req *r,
                      const char *msg) {
    if (code < 300) __atomic_fetch_add(&s->n_ok, 1, __ATOMIC_RELAXED);
    else if (code < 500) __atomic_fetch_add(&s->n_client, 1, __ATOMIC_RELAXED);
    else __atomic_fetch_add(&s->n_server, 1, __ATOMIC_RELAXED);
    if (!s->o.log) return;
    fprintf(s->o.log, "%s %.200s %u %.1f ms%s%s\n", method, url, code, 1e3 * (bv_time_now() - r->t0), msg ? ": " : "",
            msg ? msg : "");
    fflush(s->o.log);
}

/* Queue a response that takes ownership of body (malloc'd). */
static enum MHD_Result serve_reply(bv_serve *s, struct MHD_Connection *c, serve_req *r, const char *method,
                                   const char *url, unsigned code, char *body, size_t len, const char *msg) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "POST");
    enum MHD_Result ret = MHD_queue_response(c, code, resp);
    MHD_destroy_response(resp);
    r->responded = ret == MHD_YES;
    serve_log(s, method, url, code, r, msg);
    return ret;
}

/* {"error": msg} with status code */
static enum MHD_Result serve_error(bv_serve *s, struct MHD_Connection *c, serve_req *r, const char *method,
                                   const char *url, unsigned code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *o = json_pack("{s:s}", "error", msg);
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) body = bv_xstrdup("{\"error\":\"(message not valid UTF-8)\"}");
    return serve_reply(s, c, r, method, url, code, body, strlen(body), msg);
}

static enum MHD_Result serve_act(bv_serve *s, struct MHD_Connection *c, serve_req *r, const char *method,
                                 const char *url) {
    decoded d;
    memset(&d, 0, sizeof d);
    bv_serve_obs obs;
    bool double_encoded;
    bv_error_clear();
    bv_status st = decode_request(s, r->body, r->len, &d, &obs, &double_encoded);
    free(r->body); /* the decoded arrays are copies; the text is no longer needed */
    r->body = NULL;
    if (st != BV_OK) {
        decoded_free(&d);
        return serve_error(s, c, r, method, url, st == BV_ERR_NOMEM ? MHD_HTTP_INTERNAL_SERVER_ERROR : MHD_HTTP_BAD_REQUEST,
                           "%s", bv_error_msg());
    }
    size_t n = (size_t)s->o.chunk * (size_t)s->o.action_dim;
    float *actions = bv_xcalloc(n, sizeof *actions);
    bv_error_clear();
    st = s->o.act(s->o.ctx, &obs, actions);
    decoded_free(&d);
    enum MHD_Result ret;
    if (st != BV_OK) {
        unsigned code = st == BV_ERR_ARG || st == BV_ERR_SHAPE ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR;
        const char *m = bv_error_msg();
        ret = serve_error(s, c, r, method, url, code, "%s", *m ? m : bv_status_name(st));
    } else {
        size_t len;
        char *body = encode_actions(actions, s->o.chunk, s->o.action_dim, double_encoded, &len);
        ret = serve_reply(s, c, r, method, url, MHD_HTTP_OK, body, len, NULL);
    }
    free(actions);
    return ret;
}

static enum MHD_Result serve_handler(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                     const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    bv_serve *s = cls;
    serve_req *r = *con_cls;
    if (!r) { /* headers in: route, and refuse what can be refused before reading the body */
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->t0 = bv_time_now();
        *con_cls = r;
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        if (strcmp(url, "/health") == 0 && (strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, "HEAD") == 0)) {
            char *body = bv_xmalloc(128);
            int len = snprintf(body, 128, "{\"status\":\"ok\",\"chunk\":%d,\"action_dim\":%d}", s->o.chunk,
                               s->o.action_dim);
            return serve_reply(s, c, r, method, url, MHD_HTTP_OK, body, (size_t)len, NULL);
        }
        if (strcmp(url, "/act") != 0)
            return serve_error(s, c, r, method, url, MHD_HTTP_NOT_FOUND,
                               "no such path '%.200s': POST an observation to /act (docs/serving.md)", url);
        if (!post)
            return serve_error(s, c, r, method, url, MHD_HTTP_METHOD_NOT_ALLOWED,
                               "/act takes POST with a JSON observation, not %.32s", method);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno == 0 && *end == 0 && n > s->o.max_body) {
                /* Refused now, before the body, when the client waits for a go-ahead (Expect:
                 * 100-continue) or the body is too large to drain; the connection then closes,
                 * and a client still sending may see a reset instead of the 413. Otherwise the
                 * body is read and dropped, and the 413 comes after it, readable by every client. */
                const char *ex = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
                if ((ex && strcasecmp(ex, "100-continue") == 0) || n > 2 * (unsigned long long)s->o.max_body)
                    return serve_error(s, c, r, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                                       "body of %llu bytes is larger than the limit of %zu bytes", n, s->o.max_body);
                r->too_big = true;
                r->declared = n;
                return MHD_YES;
            }
            if (errno == 0 && *end == 0 && n > 0) {
                r->body = malloc((size_t)n + 1);
                if (!r->body)
                    return serve_error(s, c, r, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR,
                                       "cannot allocate %llu bytes for the body", n);
                r->cap = (size_t)n + 1;
            }
        }
        return MHD_YES;
    }
    if (*upload_size > 0) { /* a piece of the body */
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->responded) return MHD_YES;
        if (r->too_big || r->len + n > s->o.max_body) {
            /* chunked or lying about its length: stop keeping it; read on (up to max_body more) so
             * that the client, still sending, can read the 413 */
            if (!r->too_big) {
                free(r->body);
                r->body = NULL;
                r->too_big = true;
            }
            r->discarded += n; /* len + discarded: the bytes read so far */
            return r->len + r->discarded > 2 * s->o.max_body ? MHD_NO : MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = BV_MAX(r->cap * 2, r->len + n + 1);
            cap = BV_MIN(cap, s->o.max_body + 1);
            char *b = realloc(r->body, cap);
            if (!b) { /* answered 500 at the end; the rest is read and dropped */
                free(r->body);
                r->body = NULL;
                r->too_big = r->nomem = true;
                return MHD_YES;
            }
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->responded) return MHD_YES;
    if (r->too_big) {
        if (r->nomem)
            return serve_error(s, c, r, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot allocate the body");
        if (r->declared)
            return serve_error(s, c, r, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                               "body of %llu bytes is larger than the limit of %zu bytes", r->declared, s->o.max_body);
        return serve_error(s, c, r, method, url, MHD_HTTP_CONTENT_TOO_LARGE,
                           "body larger than the limit of %zu bytes", s->o.max_body);
    }
    return serve_act(s, c, r, method, url);
}

static void serve_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    serve_req *r = *con_cls;
    if (!r) return;
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void serve_mhd_log(void *cls, const char *fmt, va_list ap) {
    bv_serve *s = cls;
    vsnprintf(s->mhd_msg, sizeof s->mhd_msg, fmt, ap);
    size_t n = strlen(s->mhd_msg);
    while (n && (s->mhd_msg[n - 1] == '\n' || s->mhd_msg[n - 1] == '.')) s->mhd_msg[--n] = 0;
    if (s->o.log && s->d) { /* after the start: libmicrohttpd's own complaints, e.g. a client's bad HTTP */
        fprintf(s->o.log, "libmicrohttpd: %s\n", s->mhd_msg);
        fflush(s->o.log);
    }
}

bv_status bv_serve_start(bv_serve **out, const bv_serve_opts *o) {
    *out = NULL;
    if (!o->act) return bv_error_set(BV_ERR_ARG, "serve: no act callback");
    if (o->chunk < 1 || o->action_dim < 1 || o->chunk > 4096 || o->action_dim > 4096)
        return bv_error_set(BV_ERR_ARG, "serve: action chunk must be in [1, 4096] x [1, 4096], got %d x %d", o->chunk,
                            o->action_dim);
    if (o->port < 0 || o->port > 65535)
        return bv_error_set(BV_ERR_ARG, "serve: port must be in [0, 65535], got %d", o->port);
    /* a client that hangs up before its answer must not kill the process: libmicrohttpd sends with
     * MSG_NOSIGNAL where the platform has it; elsewhere ignore SIGPIPE process-wide */
    if (MHD_is_feature_supported(MHD_FEATURE_AUTOSUPPRESS_SIGPIPE) != MHD_YES) signal(SIGPIPE, SIG_IGN);
    bv_serve *s = bv_xcalloc(1, sizeof *s);
    s->o = *o;
    snprintf(s->host, sizeof s->host, "%s", o->host ? o->host : BV_SERVE_DEFAULT_HOST);
    s->o.host = s->host;
    if (!s->o.max_body) s->o.max_body = BV_SERVE_DEFAULT_MAX_BODY;
    if (s->o.max_body > SIZE_MAX / 4) {
        free(s);
        return bv_error_set(BV_ERR_ARG, "serve: max_body %zu is too large", o->max_body);
    }

    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int gai = getaddrinfo(s->host, NULL, &hints, &ai);
    if (gai != 0 || !ai) {
        free(s);
        return bv_error_set(BV_ERR_ARG, "serve: host '%s' does not resolve: %s", o->host ? o->host : "",
                            gai_strerror(gai));
    }
    memcpy(&s->addr, ai->ai_addr, ai->ai_addrlen);
    int family = ai->ai_family;
    freeaddrinfo(ai);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (family == AF_INET6) {
        ((struct sockaddr_in6 *)&s->addr)->sin6_port = htons((uint16_t)o->port);
        flags |= MHD_USE_IPv6;
    } else {
        ((struct sockaddr_in *)&s->addr)->sin_port = htons((uint16_t)o->port);
    }
    /* one polling thread, no thread per connection: requests are answered one at a time */
    s->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, serve_handler, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&s->addr, MHD_OPTION_NOTIFY_COMPLETED, serve_done, s,
                            MHD_OPTION_EXTERNAL_LOGGER, serve_mhd_log, s, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)30, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
    if (!s->d) {
        bv_status st = bv_error_set(BV_ERR_IO, "serve: cannot listen on %s port %d: %s", s->host, o->port,
                                    s->mhd_msg[0] ? s->mhd_msg : "libmicrohttpd could not start");
        free(s);
        return st;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : o->port;
    *out = s;
    return BV_OK;
}

int bv_serve_port(const bv_serve *s) { return s->port; }

void bv_serve_counts(const bv_serve *s, uint64_t *ok, uint64_t *client_err, uint64_t *server_err) {
    if (ok) *ok = __atomic_load_n(&s->n_ok, __ATOMIC_RELAXED);
    if (client_err) *client_err = __atomic_load_n(&s->n_client, __ATOMIC_RELAXED);
    if (server_err) *server_err = __atomic_load_n(&s->n_server, __ATOMIC_RELAXED);
}

void bv_serve_stop(bv_serve *s) {
    if (!s) return;
    MHD_stop_daemon(s->d);
    free(s);
}
