/* test_serve.c - the HTTP policy server (eval/serve.h) against real clients: a test act callback
 * whose actions are a function of every input (so a wrong byte anywhere shows), Python's
 * http.client in tests/cli/serve_client.py for the protocol (good requests byte for byte as OFT's
 * deploy.py answers, every bad request's 4xx and message, oversized bodies, broken HTTP, concurrent
 * clients), and a plain socket client here for what must hold after it: the server still answers,
 * the callback was never entered twice at once. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/util/testutil.h"

#include "eval/serve.h"

#define CHUNK 8
#define ADIM 7
#define SDIM 8

static int g_in_flight, g_overlapped, g_calls;

/* actions[t][j] = state[j % n] (t + 1) + mean(full) + 0.01 mean(wrist or -1) + 0.001 strlen(instruction);
 * serve_client.py's `expected` mirrors it */
static bv_status test_act(void *ctx, const bv_serve_obs *o, float *actions) {
    (void)ctx;
    if (__atomic_add_fetch(&g_in_flight, 1, __ATOMIC_SEQ_CST) > 1) __atomic_store_n(&g_overlapped, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&g_calls, 1, __ATOMIC_SEQ_CST);
    bv_status st = BV_OK;
    if (strcmp(o->instruction, "fail") == 0) {
        st = bv_error_set(BV_ERR_INTERNAL, "test policy: failed on purpose");
    } else if (strcmp(o->instruction, "unfit") == 0) {
        st = bv_error_set(BV_ERR_SHAPE, "test policy: this observation does not suit it");
    } else {
        if (strncmp(o->instruction, "slow", 4) == 0) { /* long enough for concurrent clients to overlap */
            struct timespec ts = {0, 20 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        double mf = 0, mw = -1;
        size_t nf = (size_t)o->full_h * o->full_w * 3;
        for (size_t i = 0; i < nf; i++) mf += o->full_image[i];
        mf /= (double)nf;
        if (o->wrist_image) {
            size_t nw = (size_t)o->wrist_h * o->wrist_w * 3;
            mw = 0;
            for (size_t i = 0; i < nw; i++) mw += o->wrist_image[i];
            mw /= (double)nw;
        }
        for (int t = 0; t < CHUNK; t++)
            for (int j = 0; j < ADIM; j++)
                actions[t * ADIM + j] = (float)((double)o->state[j % o->state_dim] * (t + 1) + mf + 0.01 * mw +
                                                0.001 * (double)strlen(o->instruction));
    }
    __atomic_sub_fetch(&g_in_flight, 1, __ATOMIC_SEQ_CST);
    return st;
}

static bv_serve_opts test_opts(FILE *log) {
    bv_serve_opts o = {0};
    o.port = 0;
    o.max_body = 1 << 20;
    o.chunk = CHUNK;
    o.action_dim = ADIM;
    o.state_dim = SDIM;
    o.act = test_act;
    o.log = log;
    return o;
}

/* One HTTP/1.0 exchange on a plain socket; returns the bytes received (malloc'd, NUL-terminated). */
static char *http_raw(int port, const char *req) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t n = strlen(req), off = 0;
    while (off < n) {
        ssize_t w = write(fd, req + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    for (;;) {
        if (len + 1024 > cap) out = realloc(out, cap *= 2);
        ssize_t r = read(fd, out + len, cap - len - 1);
        if (r <= 0) break;
        len += (size_t)r;
    }
    out[len] = 0;
    close(fd);
    return out;
}

static void test_serve_with_clients(void **state) {
    (void)state;
    FILE *log = tmpfile();
    assert_non_null(log);
    bv_serve_opts o = test_opts(log);
    bv_serve *s = NULL;
    bv_status st = bv_serve_start(&s, &o);
    if (st != BV_OK) fail_msg("bv_serve_start: %s", bv_error_msg());
    int port = bv_serve_port(s);
    assert_true(port > 0 && port < 65536);

    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 60 python3 %s/tests/cli/serve_client.py %d", BV_SOURCE_DIR, port);
    int rc = system(cmd);
    if (!WIFEXITED(rc) || WEXITSTATUS(rc) != 0)
        fail_msg("%s: exit status %d (the FAIL lines above say which checks)", cmd, WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);

    /* alive after every bad request, and the callback never ran twice at once */
    char *resp = http_raw(port, "GET /health HTTP/1.0\r\n\r\n");
    if (!strstr(resp, "200 OK") || !strstr(resp, "{\"status\":\"ok\",\"chunk\":8,\"action_dim\":7}"))
        fail_msg("GET /health after the client: %s", resp);
    free(resp);
    assert_int_equal(__atomic_load_n(&g_overlapped, __ATOMIC_SEQ_CST), 0);
    assert_true(__atomic_load_n(&g_calls, __ATOMIC_SEQ_CST) >= 28);
    uint64_t ok, client, server;
    bv_serve_counts(s, &ok, &client, &server);
    printf("served: %llu 2xx, %llu 4xx, %llu 5xx; %d act calls\n", (unsigned long long)ok, (unsigned long long)client,
           (unsigned long long)server, g_calls);
    assert_true(ok >= 28 && client >= 35);
    assert_int_equal(server, 1); /* the callback's deliberate failure only */
    bv_serve_stop(s);

    /* the log: one line per request, status and time, the message of a refusal */
    rewind(log);
    char line[2048];
    int n_ok = 0, n_413 = 0;
    while (fgets(line, sizeof line, log)) {
        if (strncmp(line, "POST /act 200 ", 14) == 0 && strstr(line, " ms")) n_ok++;
        if (strstr(line, "POST /act 413 ") && strstr(line, "larger than the limit of 1048576 bytes")) n_413++;
    }
    fclose(log);
    assert_true(n_ok >= 26); /* 26 good POSTs; the other 2xx are GET /health */
    assert_true(n_413 >= 3);
}

static void test_serve_start_errors(void **state) {
    (void)state;
    bv_serve_opts o = test_opts(NULL);
    bv_serve *s = NULL, *s2 = NULL;
    assert_int_equal(bv_serve_start(&s, &o), BV_OK);
    /* the same port twice: the second start fails, naming the address */
    o.port = bv_serve_port(s);
    assert_int_equal(bv_serve_start(&s2, &o), BV_ERR_IO);
    assert_null(s2);
    char want[64];
    snprintf(want, sizeof want, "cannot listen on 127.0.0.1 port %d", o.port);
    if (!strstr(bv_error_msg(), want)) fail_msg("port in use: %s", bv_error_msg());
    bv_serve_stop(s);

    o.port = 70000;
    assert_int_equal(bv_serve_start(&s2, &o), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "port must be in [0, 65535], got 70000"));
    o.port = 0;
    o.host = "no.such.host.invalid";
    assert_int_equal(bv_serve_start(&s2, &o), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "host 'no.such.host.invalid' does not resolve"));
    o.host = NULL;
    o.chunk = 0;
    assert_int_equal(bv_serve_start(&s2, &o), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "action chunk"));
    bv_serve_stop(NULL);
}

/* bound to 127.0.0.1 by default; "::1" binds IPv6 */
static void test_serve_hosts(void **state) {
    (void)state;
    bv_serve_opts o = test_opts(NULL);
    bv_serve *s = NULL;
    assert_int_equal(bv_serve_start(&s, &o), BV_OK);
    char *resp = http_raw(bv_serve_port(s), "GET /nope HTTP/1.0\r\n\r\n");
    if (!strstr(resp, " 404 ") || !strstr(resp, "{\"error\":\"no such path '/nope'")) fail_msg("GET /nope: %s", resp);
    free(resp);
    bv_serve_stop(s);
    o.host = "::1";
    if (bv_serve_start(&s, &o) == BV_OK) { /* machines without IPv6 loopback skip this */
        assert_true(bv_serve_port(s) > 0);
        bv_serve_stop(s);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_with_clients),
        cmocka_unit_test(test_serve_start_errors),
        cmocka_unit_test(test_serve_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
