/* Tests of src/metrics.h:
 *  - metrics.jsonl's exact text: {"step": N, "kind": K, name: %.17g ...}, null for NaN and
 *    infinities, names escaped as JSON strings;
 *  - doubles read back bit-identical (bv_metrics_read): random bit patterns, subnormals, integers,
 *    -0, the extremes;
 *  - resume at S: the records of steps <= S kept byte for byte, later ones dropped, appending goes
 *    on after them; a record cut off by a kill dropped; a malformed line refused naming file and
 *    line; a missing file starts empty;
 *  - a second open of a run directory without resume is an error that leaves the file alone;
 *  - TensorBoard: an event file per open holding every record, a SessionLog START after a resume;
 *  - reading errors name the file and line; names "step", "kind", empty or twice are refused. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/tfrecord.h"
#include "src/metrics.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("metrics"); }
static int teardown(void **state) { return bv_test_dir_remove(); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s: %s", path, strerror(errno));
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    assert_int_equal(ferror(f), 0);
    fclose(f);
    buf[n] = 0;
    return buf;
}

static void append(const char *path, const char *text) {
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void must(bv_status st) {
    if (st) fail_msg("%s", bv_error_msg());
}

static void test_jsonl_text(void **state) {
    const char *run = bv_test_path("text");
    bv_metrics *m;
    must(bv_metrics_open(&m, run, false, -1));
    bv_metric train[] = {{"loss", 0.1}, {"lr", 3e-4}, {"grad_norm", NAN}, {"samples_per_s", 128}};
    must(bv_metrics_log(m, 1, "train", 4, train));
    bv_metric val[] = {{"val_l1", INFINITY}, {"val_\"q\"\\\n", -INFINITY}, {"neg", -0.0}, {"big", 1e300}};
    must(bv_metrics_log(m, 20, "val", 4, val));
    must(bv_metrics_log(m, 21, "empty", 0, NULL));
    must(bv_metrics_sync(m));
    assert_string_equal(bv_metrics_path(m), bv_test_path("text/metrics.jsonl"));
    bv_metrics_close(m);
    assert_string_equal(slurp(bv_test_path("text/metrics.jsonl")),
                        "{\"step\": 1, \"kind\": \"train\", \"loss\": 0.10000000000000001, \"lr\": "
                        "0.00029999999999999997, \"grad_norm\": null, \"samples_per_s\": 128}\n"
                        "{\"step\": 20, \"kind\": \"val\", \"val_l1\": null, \"val_\\\"q\\\"\\\\\\n\": null, "
                        "\"neg\": -0.0, \"big\": 1.0000000000000001e+300}\n"
                        "{\"step\": 21, \"kind\": \"empty\"}\n");
    /* no TensorBoard file was asked for */
    assert_int_equal(bv_test_count_entries(run, "tfevents"), 0);
}

/* ---- reading back ---- */

typedef struct {
    int n;
    int64_t steps[64];
    char kinds[64][16];
    int counts[64];
    char names[64][4][32];
    double values[64][4];
} collected;

static bv_status collect(void *ctx, const bv_metrics_record *r) {
    collected *c = ctx;
    assert_true(c->n < 64);
    c->steps[c->n] = r->step;
    snprintf(c->kinds[c->n], 16, "%s", r->kind);
    c->counts[c->n] = r->n;
    for (int i = 0; i < r->n && i < 4; i++) {
        snprintf(c->names[c->n][i], 32, "%s", r->values[i].name);
        c->values[c->n][i] = r->values[i].value;
    }
    c->n++;
    return BV_OK;
}

static collected g_c;

static void test_round_trip(void **state) {
    const char *run = bv_test_path("roundtrip");
    bv_metrics *m;
    must(bv_metrics_open(&m, run, false, -1));
    double special[] = {0.0, -0.0, 1.0, -3.0, 5e-324, -2.2250738585072009e-308, 1.7976931348623157e308,
                        12345678901234567.0, 1e17, 0.1, 1.0 / 3.0, 2.5e-8};
    int n_special = (int)BV_ARRAY_LEN(special);
    bv_rng r = {42};
    double want[40][4];
    for (int rec = 0; rec < 40; rec++) {
        bv_metric v[4];
        const char *names[4] = {"a", "b", "c", "d"};
        for (int i = 0; i < 4; i++) {
            double x;
            int k = rec * 4 + i;
            if (k < n_special) {
                x = special[k];
            } else {
                do { /* a random bit pattern, finite */
                    uint64_t bits = bv_rng_u64(&r);
                    memcpy(&x, &bits, 8);
                } while (!isfinite(x));
            }
            v[i] = (bv_metric){names[i], x};
            want[rec][i] = x;
        }
        must(bv_metrics_log(m, rec, "train", 4, v));
    }
    bv_metrics_close(m);
    memset(&g_c, 0, sizeof g_c);
    must(bv_metrics_read(bv_test_path("roundtrip/metrics.jsonl"), collect, &g_c));
    assert_int_equal(g_c.n, 40);
    for (int rec = 0; rec < 40; rec++) {
        assert_int_equal(g_c.steps[rec], rec);
        assert_string_equal(g_c.kinds[rec], "train");
        assert_int_equal(g_c.counts[rec], 4);
        for (int i = 0; i < 4; i++)
            if (memcmp(&g_c.values[rec][i], &want[rec][i], 8))
                fail_msg("record %d value %d: read %.17g, wrote %.17g (not bit-identical)", rec, i,
                         g_c.values[rec][i], want[rec][i]);
    }
}

static void test_null_reads_nan(void **state) {
    const char *run = bv_test_path("nan");
    bv_metrics *m;
    must(bv_metrics_open(&m, run, false, -1));
    bv_metric v[] = {{"loss", NAN}, {"lr", INFINITY}, {"x", 2.0}};
    must(bv_metrics_log(m, 3, "train", 3, v));
    bv_metrics_close(m);
    /* strings and other non-numbers are skipped */
    append(bv_test_path("nan/metrics.jsonl"), "{\"step\": 4, \"kind\": \"val\", \"note\": \"hi\", \"ok\": true, \"y\": 1}\n");
    memset(&g_c, 0, sizeof g_c);
    must(bv_metrics_read(bv_test_path("nan/metrics.jsonl"), collect, &g_c));
    assert_int_equal(g_c.n, 2);
    assert_int_equal(g_c.counts[0], 3);
    assert_true(isnan(g_c.values[0][0]));
    assert_true(isnan(g_c.values[0][1]));
    assert_true(g_c.values[0][2] == 2.0);
    assert_int_equal(g_c.counts[1], 1);
    assert_string_equal(g_c.names[1][0], "y");
}

/* ---- resume ---- */

static void log_steps(bv_metrics *m, int from, int to) {
    for (int s = from; s <= to; s++) {
        bv_metric v[] = {{"loss", 1.0 / s}, {"lr", 1e-3 * s}};
        must(bv_metrics_log(m, s, "train", 2, v));
        if (s % 5 == 0) {
            bv_metric val = {"val_l1", 0.5 / s};
            must(bv_metrics_log(m, s, "val", 1, &val));
        }
    }
}

static void test_resume_truncates(void **state) {
    const char *run = bv_test_path("resume");
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    bv_metrics *m;
    must(bv_metrics_open(&m, run, false, -1));
    log_steps(m, 1, 10);
    bv_metrics_close(m);
    char *orig = strdup(slurp(path));
    /* what a run stopped after step 6 would have written */
    must(bv_metrics_open(&m, bv_test_path("resume_ref"), false, -1));
    log_steps(m, 1, 6);
    bv_metrics_close(m);
    char *upto6 = strdup(slurp(bv_test_path("resume_ref/metrics.jsonl")));
    assert_true(strlen(upto6) < strlen(orig) && !strncmp(orig, upto6, strlen(upto6)));

    must(bv_metrics_open(&m, run, false, 6));
    assert_string_equal(slurp(path), upto6); /* kept byte for byte, val of step 5 included */
    log_steps(m, 7, 10);
    bv_metrics_close(m);
    assert_string_equal(slurp(path), orig);

    /* a record cut off by a kill is dropped */
    append(path, "{\"step\": 11, \"kind\": \"train\", \"lo");
    must(bv_metrics_open(&m, run, false, 100));
    assert_string_equal(slurp(path), orig);
    bv_metrics_close(m);
    assert_int_equal(bv_test_count_entries(run, ".tmp."), 0);

    /* resume at 0 keeps nothing; resuming where nothing was logged starts empty */
    must(bv_metrics_open(&m, run, false, 0));
    assert_string_equal(slurp(path), "");
    bv_metrics_close(m);
    must(bv_metrics_open(&m, bv_test_path("resume_new"), false, 5));
    assert_string_equal(slurp(bv_test_path("resume_new/metrics.jsonl")), "");
    bv_metrics_close(m);
    free(orig);
    free(upto6);
}

static void test_resume_malformed(void **state) {
    const char *run = bv_test_path("resume_bad");
    char path[1024];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run);
    bv_metrics *m;
    must(bv_metrics_open(&m, run, false, -1));
    log_steps(m, 1, 2);
    bv_metrics_close(m);
    append(path, "{\"step\": 3, \"kind\": \"train\", \"loss\": 0.5,}\n{\"step\": 4, \"kind\": \"train\"}\n");
    char *before = strdup(slurp(path));
    m = (bv_metrics *)1;
    assert_int_equal(bv_metrics_open(&m, run, false, 10), BV_ERR_FORMAT);
    assert_null(m);
    bv_test_expect_in(bv_error_msg(), "resuming the metrics after step 10: ");
    bv_test_expect_in(bv_error_msg(), "/resume_bad/metrics.jsonl: line 3: not JSON");
    assert_string_equal(slurp(path), before); /* untouched, no temporary left */
    assert_int_equal(bv_test_count_entries(run, ".tmp."), 0);
    free(before);
}

static void test_second_open_refused(void **state) {
    const char *run = bv_test_path("twice");
    bv_metrics *m;
    must(bv_metrics_open(&m, run, true, -1));
    log_steps(m, 1, 3);
    bv_metrics_close(m);
    char *before = strdup(slurp(bv_test_path("twice/metrics.jsonl")));
    m = (bv_metrics *)1;
    assert_int_equal(bv_metrics_open(&m, run, true, -1), BV_ERR_ARG);
    assert_null(m);
    bv_test_expect_in(bv_error_msg(), "/twice/metrics.jsonl already exists");
    assert_string_equal(slurp(bv_test_path("twice/metrics.jsonl")), before);
    assert_int_equal(bv_test_count_entries(run, "tfevents"), 1); /* no event file for the refused open */
    free(before);
}

/* ---- TensorBoard ---- */

/* The paths of the event files in dir, in name order. */
static int event_files(const char *dir, char names[4][512]) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, "events.out.tfevents.")) {
            assert_true(n < 4);
            snprintf(names[n++], 512, "%s/%s", dir, e->d_name);
        }
    closedir(d);
    for (int i = 0; i < n; i++) /* name order: the order TensorBoard reads them in */
        for (int j = i + 1; j < n; j++)
            if (strcmp(names[j], names[i]) < 0) {
                char t[512];
                memcpy(t, names[i], 512);
                memcpy(names[i], names[j], 512);
                memcpy(names[j], t, 512);
            }
    return n;
}

static void test_tensorboard(void **state) {
    const char *run = bv_test_path("tb");
    bv_metrics *m;
    must(bv_metrics_open(&m, run, true, -1));
    log_steps(m, 1, 7); /* 7 train + 1 val records */
    must(bv_metrics_sync(m));
    bv_metrics_close(m);
    char names[4][512];
    assert_int_equal(event_files(run, names), 1);
    int64_t count;
    must(bv_tfr_count(names[0], &count));
    assert_int_equal(count, 1 + 8);
    /* the record of step 5 "val": one scalar tagged val/val_l1 (bytes of the tag in the event) */
    bv_tfr_reader r;
    must(bv_tfr_open(&r, names[0]));
    bv_tfr_buf b = {0};
    bool eof;
    int found = 0;
    while (!bv_tfr_next(&r, &b, &eof) && !eof)
        for (size_t i = 0; i + 10 <= b.len; i++) found += !memcmp(b.data + i, "val/val_l1", 10);
    assert_int_equal(found, 1);
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);

    /* a resume gets a second file, starting with a SessionLog START at step 5 + 1 */
    must(bv_metrics_open(&m, run, true, 5));
    log_steps(m, 6, 6);
    bv_metrics_close(m);
    assert_int_equal(event_files(run, names), 2);
    must(bv_tfr_count(names[1], &count));
    assert_int_equal(count, 3); /* file_version, session start, step 6 */
    must(bv_tfr_open(&r, names[1]));
    must(bv_tfr_next(&r, &b, &eof));
    must(bv_tfr_next(&r, &b, &eof));
    /* wall_time (9 bytes), step 6 (0x10 0x06), session_log (0x3a, length 2, status START: 0x08 0x01) */
    assert_int_equal(b.len, 9 + 2 + 4);
    const uint8_t tail[] = {0x10, 0x06, 0x3a, 0x02, 0x08, 0x01};
    assert_memory_equal(b.data + 9, tail, sizeof tail);
    bv_tfr_buf_free(&b);
    bv_tfr_close(&r);
}

/* ---- errors ---- */

static void test_read_errors(void **state) {
    assert_int_equal(bv_metrics_read("/nonexistent/run/metrics.jsonl", collect, &g_c), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/run/metrics.jsonl: cannot open: No such file");
    const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"step\": 1, \"kind\": \"train\"}\n\n[1, 2]\n", "line 3: expected a JSON object"},
        {"{\"kind\": \"train\", \"loss\": 1}\n", "line 1: \"step\" must be an integer >= 0"},
        {"{\"step\": 1.5, \"kind\": \"train\"}\n", "line 1: \"step\" must be an integer"},
        {"{\"step\": 2, \"kind\": 3}\n", "line 1: \"kind\" must be a string"},
        {"{\"step\": 2, \"kind\": \"a\", \"x\": 1, \"x\": 2}\n", "line 1: not JSON: duplicate object key"},
        {"{\"step\": 2, \"kind\": \"a\"} {}\n", "line 1: not JSON"},
    };
    for (size_t i = 0; i < BV_ARRAY_LEN(cases); i++) {
        const char *path = bv_test_path("bad.jsonl");
        bv_test_write_bytes(path, cases[i].text, strlen(cases[i].text));
        memset(&g_c, 0, sizeof g_c);
        bv_status st = bv_metrics_read(path, collect, &g_c);
        if (st != BV_ERR_FORMAT) fail_msg("case %zu: status %d, expected a format error", i, st);
        bv_test_expect_in(bv_error_msg(), path);
        bv_test_expect_in(bv_error_msg(), cases[i].msg);
    }
    /* a last line without its newline that parses is a record; one that does not is skipped */
    const char *path = bv_test_path("tail.jsonl");
    const char *text = "{\"step\": 1, \"kind\": \"train\"}\n{\"step\": 2, \"kind\": \"train\"}";
    bv_test_write_bytes(path, text, strlen(text));
    memset(&g_c, 0, sizeof g_c);
    must(bv_metrics_read(path, collect, &g_c));
    assert_int_equal(g_c.n, 2);
    text = "{\"step\": 1, \"kind\": \"train\"}\n{\"step\": 2, \"ki";
    bv_test_write_bytes(path, text, strlen(text));
    memset(&g_c, 0, sizeof g_c);
    must(bv_metrics_read(path, collect, &g_c));
    assert_int_equal(g_c.n, 1);
}

static void test_bad_names(void **state) {
    bv_metrics *m;
    must(bv_metrics_open(&m, bv_test_path("names"), false, -1));
    bv_metric step = {"step", 1}, empty = {"", 1}, twice[] = {{"a", 1}, {"a", 2}};
    assert_int_equal(bv_metrics_log(m, 1, "train", 1, &step), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "is named 'step'");
    assert_int_equal(bv_metrics_log(m, 1, "train", 1, &empty), BV_ERR_ARG);
    assert_int_equal(bv_metrics_log(m, 1, "train", 2, twice), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "metric 'a' twice");
    assert_int_equal(bv_metrics_log(m, 1, "", 0, NULL), BV_ERR_ARG);
    bv_metrics_close(m);
    assert_string_equal(slurp(bv_test_path("names/metrics.jsonl")), ""); /* nothing written */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonl_text),         cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_null_reads_nan),     cmocka_unit_test(test_resume_truncates),
        cmocka_unit_test(test_resume_malformed),   cmocka_unit_test(test_second_open_refused),
        cmocka_unit_test(test_tensorboard),        cmocka_unit_test(test_read_errors),
        cmocka_unit_test(test_bad_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
