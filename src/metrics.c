/* metrics.c - RUN_DIR/metrics.jsonl and the run's TensorBoard event file. See metrics.h. */
#include "src/metrics.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "src/atomic_file.h"
#include "src/tb_events.h"

struct bv_metrics {
    FILE *fp;         /* metrics.jsonl, opened for appending */
    char *path;
    bv_tb_writer *tb; /* NULL without TensorBoard */
    char *line;       /* the record being formatted: grown as needed, kept across records */
    size_t len, cap;
    char *tags;       /* "<kind>/<name>\0..." of the record's TensorBoard scalars */
    size_t tags_cap;
};

/* ---- formatting a record ---- */

static void line_reserve(bv_metrics *m, size_t extra) {
    if (m->cap - m->len > extra) return;
    size_t cap = m->cap ? m->cap : 256;
    while (cap - m->len <= extra) cap *= 2;
    m->line = bv_xrealloc(m->line, cap);
    m->cap = cap;
}

static void line_printf(bv_metrics *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_printf(bv_metrics *m, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    BV_ASSERT(n >= 0, "vsnprintf failed on '%s'", fmt);
    line_reserve(m, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(m->line + m->len, m->cap - m->len, fmt, ap);
    va_end(ap);
    m->len += (size_t)n;
}

/* A JSON string: quotes, backslashes and control characters escaped; other bytes (UTF-8) as is. */
static void line_string(bv_metrics *m, const char *s) {
    line_printf(m, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            line_printf(m, "\\%c", *p);
        else if (*p == '\n')
            line_printf(m, "\\n");
        else if (*p == '\t')
            line_printf(m, "\\t");
        else if (*p < 0x20)
            line_printf(m, "\\u%04x", *p);
        else
            line_printf(m, "%c", *p);
    }
    line_printf(m, "\"");
}

/* ---- reading ---- */

/* Called for each record with its raw line (newline included when the file has it). */
typedef bv_status (*line_fn)(void *ctx, const bv_metrics_record *rec, const char *line, size_t len);

/* Parse one line into *rec (values into *vals, grown; names borrowed from *json, which the caller
 * releases). BV_ERR_FORMAT with the reason (no file or line: the caller adds them). */
static bv_status parse_line(const char *line, size_t len, json_t **json, bv_metric **vals, int *cap,
                            bv_metrics_record *rec) {
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &err);
    *json = o;
    if (!o) return bv_error_set(BV_ERR_FORMAT, "not JSON: %s (column %d)", err.text, err.column);
    if (!json_is_object(o)) return bv_error_set(BV_ERR_FORMAT, "expected a JSON object {\"step\": N, \"kind\": ...}");
    json_t *step = json_object_get(o, "step"), *kind = json_object_get(o, "kind");
    if (!json_is_integer(step) || json_integer_value(step) < 0)
        return bv_error_set(BV_ERR_FORMAT, "\"step\" must be an integer >= 0");
    if (!json_is_string(kind)) return bv_error_set(BV_ERR_FORMAT, "\"kind\" must be a string");
    rec->step = json_integer_value(step);
    rec->kind = json_string_value(kind);
    rec->n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        if (!strcmp(key, "step") || !strcmp(key, "kind") || !(json_is_number(v) || json_is_null(v))) continue;
        if (rec->n == *cap) {
            *cap = *cap ? 2 * *cap : 16;
            *vals = bv_xrealloc(*vals, (size_t)*cap * sizeof **vals);
        }
        (*vals)[rec->n].name = key;
        (*vals)[rec->n].value = json_is_null(v) ? NAN : json_number_value(v);
        rec->n++;
    }
    rec->values = *vals;
    return BV_OK;
}

/* Read every line of fp (named `path` in messages), calling fn on each record. */
static bv_status each_record(const char *path, FILE *fp, line_fn fn, void *ctx) {
    char *line = NULL;
    size_t line_cap = 0;
    bv_metric *vals = NULL;
    int vals_cap = 0;
    bv_status st = BV_OK;
    for (int64_t lineno = 1;; lineno++) {
        errno = 0;
        ssize_t n = getline(&line, &line_cap, fp);
        if (n < 0) {
            if (ferror(fp)) st = bv_error_set(BV_ERR_IO, "%s: reading line %lld failed: %s", path, (long long)lineno,
                                              strerror(errno ? errno : EIO));
            break;
        }
        size_t len = (size_t)n;
        bool complete = len > 0 && line[len - 1] == '\n';
        size_t body = len;
        while (body > 0 && (line[body - 1] == '\n' || line[body - 1] == '\r' || line[body - 1] == ' ')) body--;
        if (body == 0) continue; /* an empty line */
        json_t *json = NULL;
        bv_metrics_record rec = {.line = lineno};
        st = parse_line(line, body, &json, &vals, &vals_cap, &rec);
        if (st) {
            json_decref(json);
            /* the last line, cut off by a kill in the middle of writing it: not a record */
            if (!complete) { /* getline returns a line without its newline only at the end of the file */
                st = BV_OK;
                break;
            }
            st = bv_error_prefix(st, "%s: line %lld", path, (long long)lineno);
            break;
        }
        st = fn(ctx, &rec, line, len);
        json_decref(json);
        if (st) break;
    }
    free(line);
    free(vals);
    return st;
}

typedef struct {
    bv_metrics_record_fn fn;
    void *ctx;
} read_ctx;

static bv_status read_cb(void *ctx, const bv_metrics_record *rec, const char *line, size_t len) {
    read_ctx *r = ctx;
    return r->fn(r->ctx, rec);
}

bv_status bv_metrics_read(const char *path, bv_metrics_record_fn fn, void *ctx) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return bv_error_set(BV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    read_ctx r = {fn, ctx};
    bv_status st = each_record(path, fp, read_cb, &r);
    if (fclose(fp) != 0 && !st) st = bv_error_set(BV_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    return st;
}

/* ---- resume: keep the records of steps <= S ---- */

typedef struct {
    FILE *out;
    const char *tmp;
    int64_t resume_step;
    int64_t kept, dropped;
} keep_ctx;

static bv_status keep_cb(void *ctx, const bv_metrics_record *rec, const char *line, size_t len) {
    keep_ctx *k = ctx;
    if (rec->step > k->resume_step) {
        k->dropped++;
        return BV_OK;
    }
    k->kept++;
    if (fwrite(line, 1, len, k->out) != len || (line[len - 1] != '\n' && fputc('\n', k->out) == EOF))
        return bv_error_set(BV_ERR_IO, "writing %s failed: %s", k->tmp, strerror(errno));
    return BV_OK;
}

/* Rewrite `path` atomically holding only the records of steps <= resume_step. A missing file is
 * fine (nothing was logged yet). */
static bv_status truncate_after(const char *path, int64_t resume_step) {
    FILE *in = fopen(path, "rb");
    if (!in) {
        if (errno == ENOENT) return BV_OK;
        return bv_error_set(BV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    bv_atomic_file f;
    bv_status st = bv_atomic_open(&f, path);
    if (st) {
        fclose(in);
        return st;
    }
    keep_ctx k = {.out = f.fp, .tmp = f.tmp, .resume_step = resume_step};
    st = each_record(path, in, keep_cb, &k);
    if (fclose(in) != 0 && !st) st = bv_error_set(BV_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (st) {
        bv_atomic_abort(&f);
        return st;
    }
    return bv_atomic_commit(&f);
}

/* ---- the writer ---- */

static void metrics_free(bv_metrics *m) {
    free(m->path);
    free(m->line);
    free(m->tags);
    free(m);
}

bv_status bv_metrics_open(bv_metrics **out, const char *run_dir, bool tensorboard, int64_t resume_step) {
    *out = NULL;
    bv_status st = bv_atomic_dir_make(run_dir);
    if (st) return bv_error_prefix(st, "metrics");
    bv_metrics *m = bv_xcalloc(1, sizeof *m);
    size_t n = strlen(run_dir) + sizeof "/metrics.jsonl";
    m->path = bv_xmalloc(n);
    snprintf(m->path, n, "%s/metrics.jsonl", run_dir);
    if (resume_step < 0) {
        m->fp = fopen(m->path, "wx"); /* C11: fails if it exists */
        if (!m->fp) {
            st = errno == EEXIST
                     ? bv_error_set(BV_ERR_ARG,
                                    "%s already exists: a new run does not write over another run's metrics "
                                    "(resume that run from a checkpoint, or choose a new run directory)",
                                    m->path)
                     : bv_error_set(BV_ERR_IO, "%s: cannot create: %s", m->path, strerror(errno));
            metrics_free(m);
            return st;
        }
    } else {
        st = truncate_after(m->path, resume_step);
        if (st) {
            st = bv_error_prefix(st, "resuming the metrics after step %lld", (long long)resume_step);
            metrics_free(m);
            return st;
        }
        m->fp = fopen(m->path, "a");
        if (!m->fp) {
            st = bv_error_set(BV_ERR_IO, "%s: cannot open for appending: %s", m->path, strerror(errno));
            metrics_free(m);
            return st;
        }
    }
    if (tensorboard) {
        double now = bv_tb_wall_time_now();
        st = bv_tb_open(&m->tb, run_dir, now);
        if (!st && resume_step >= 0) st = bv_tb_write_session_start(m->tb, now, resume_step + 1);
        if (st) {
            fclose(m->fp); /* the error being reported is the one that matters */
            if (resume_step < 0) unlink(m->path); /* the empty file this call created */
            bv_tb_close(m->tb);
            metrics_free(m);
            return st;
        }
    }
    *out = m;
    return BV_OK;
}

const char *bv_metrics_path(const bv_metrics *m) { return m->path; }

/* A record's names: non-empty, neither "step" nor "kind", each once. */
static bv_status check_names(const bv_metrics *m, const char *kind, int n, const bv_metric *values) {
    if (!kind || !kind[0]) return bv_error_set(BV_ERR_ARG, "%s: a record needs a kind (\"train\", \"val\"...)", m->path);
    for (int i = 0; i < n; i++) {
        const char *name = values[i].name;
        if (!name || !name[0] || !strcmp(name, "step") || !strcmp(name, "kind"))
            return bv_error_set(BV_ERR_ARG, "%s: metric %d of a '%s' record is named '%s' (empty, \"step\" and "
                                "\"kind\" are not metric names)", m->path, i, kind, name ? name : "");
        for (int j = 0; j < i; j++)
            if (!strcmp(values[j].name, name))
                return bv_error_set(BV_ERR_ARG, "%s: metric '%s' twice in one '%s' record", m->path, name, kind);
    }
    return BV_OK;
}

/* TensorBoard: the record as one event of scalars "<kind>/<name>". */
static bv_status log_tb(bv_metrics *m, int64_t step, const char *kind, int n, const bv_metric *values) {
    size_t need = 0, kl = strlen(kind);
    for (int i = 0; i < n; i++) need += kl + 1 + strlen(values[i].name) + 1;
    if (m->tags_cap < need) {
        m->tags = bv_xrealloc(m->tags, need);
        m->tags_cap = need;
    }
    const char **tags = bv_xmalloc((size_t)(n ? n : 1) * sizeof *tags);
    float *vals = bv_xmalloc((size_t)(n ? n : 1) * sizeof *vals);
    char *p = m->tags;
    for (int i = 0; i < n; i++) {
        tags[i] = p;
        p += sprintf(p, "%s/%s", kind, values[i].name) + 1;
        vals[i] = (float)values[i].value;
    }
    bv_status st = bv_tb_write_scalars(m->tb, bv_tb_wall_time_now(), step, n, tags, vals);
    free(tags);
    free(vals);
    return st;
}

bv_status bv_metrics_log(bv_metrics *m, int64_t step, const char *kind, int n, const bv_metric *values) {
    BV_ASSERT(m && m->fp, "bv_metrics_log on a closed writer");
    BV_ASSERT(n >= 0 && (n == 0 || values), "n = %d", n);
    BV_TRY(check_names(m, kind, n, values));
    m->len = 0;
    line_printf(m, "{\"step\": %lld, \"kind\": ", (long long)step);
    line_string(m, kind);
    for (int i = 0; i < n; i++) {
        line_printf(m, ", ");
        line_string(m, values[i].name);
        double v = values[i].value;
        if (!isfinite(v))
            line_printf(m, ": null");
        else if (v == 0 && signbit(v))
            line_printf(m, ": -0.0"); /* "-0" would read back as the integer 0 */
        else
            line_printf(m, ": %.17g", v);
    }
    line_printf(m, "}\n");
    if (fwrite(m->line, 1, m->len, m->fp) != m->len || fflush(m->fp) != 0)
        return bv_error_set(BV_ERR_IO, "%s: writing the '%s' record of step %lld failed: %s", m->path, kind,
                            (long long)step, strerror(errno));
    if (m->tb) BV_TRY(log_tb(m, step, kind, n, values));
    return BV_OK;
}

bv_status bv_metrics_sync(bv_metrics *m) {
    if (fflush(m->fp) != 0 || fsync(fileno(m->fp)) != 0)
        return bv_error_set(BV_ERR_IO, "%s: flushing to disk failed: %s", m->path, strerror(errno));
    if (m->tb) BV_TRY(bv_tb_sync(m->tb));
    return BV_OK;
}

void bv_metrics_close(bv_metrics *m) {
    if (!m) return;
    /* Every record was flushed when logged (and its errors reported then); what a close could still
     * report has no caller to go to: call bv_metrics_sync first to know the data is on disk. */
    if (m->fp) (void)fclose(m->fp);
    if (m->tb) (void)bv_tb_close(m->tb);
    metrics_free(m);
}
