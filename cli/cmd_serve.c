/* cmd_serve.c - `bitvla serve`: a policy (eval/policy.h) behind OFT's HTTP protocol (eval/serve.h),
 * until SIGINT or SIGTERM. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "eval/policy.h"
#include "eval/serve.h"
#include "src/common.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: bitvla serve BUNDLE_DIR|CHECKPOINT [--host ADDR] [--port 8777] [--max-body-mb 64]\n"
            "                    [--no-center-crop] [--threads N] [--quiet] [--port-file PATH]\n"
            "\n"
            "Serves the policy over HTTP as OpenVLA-OFT's vla-scripts/deploy.py does, so OFT robot clients work\n"
            "unchanged: POST /act with a JSON body (json_numpy arrays) {\"full_image\": uint8 (H, W, 3),\n"
            "\"wrist_image\": uint8 (H, W, 3), \"state\": (8,), \"instruction\": \"...\"} answers the action chunk,\n"
            "a list of chunk arrays of action_dim float64 values in robot units (docs/serving.md). Requests\n"
            "are served one at a time. Stops on SIGINT or SIGTERM.\n"
            "\n"
            "  --host         address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)\n"
            "  --port         TCP port (default 8777; 0: any free port, printed)\n"
            "  --max-body-mb  largest request accepted (default 64; larger ones get 413)\n"
            "  --no-center-crop  feed the whole images (default: the evaluation centre crop)\n"
            "  --threads      OpenMP threads per request (default: OMP_NUM_THREADS or all cores)\n"
            "  --quiet        no line per request on stderr\n"
            "  --port-file    write the bound port there once listening (for scripts)\n");
}

static bv_status act(void *ctx, const bv_serve_obs *o, float *actions) {
    bv_policy_obs po = {.full_image = o->full_image, .full_w = o->full_w, .full_h = o->full_h,
                        .wrist_image = o->wrist_image, .wrist_w = o->wrist_w, .wrist_h = o->wrist_h,
                        .state = o->state, .state_dim = o->state_dim, .instruction = o->instruction};
    return bv_policy_act(ctx, &po, actions, NULL);
}

int bv_cmd_serve(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *path = NULL, *host = NULL, *port_file = NULL;
    int port = BV_SERVE_DEFAULT_PORT, max_mb = 64;
    bool quiet = false;
    bv_policy_opts po;
    bv_policy_opts_default(&po);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else if (!strcmp(a, "--no-center-crop")) {
            po.center_crop = false;
        } else if (!strcmp(a, "--host") || !strcmp(a, "--port") || !strcmp(a, "--max-body-mb") ||
                   !strcmp(a, "--threads") || !strcmp(a, "--port-file")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "bitvla serve: option %s needs a value\n", a);
                return 2;
            }
            const char *v = argv[++i];
            if (!strcmp(a, "--host")) {
                host = v;
            } else if (!strcmp(a, "--port-file")) {
                port_file = v;
            } else if (!strcmp(a, "--port")) {
                if (!bv_cli_int("serve", a, v, 0, 65535, &port)) return 2;
            } else if (!strcmp(a, "--max-body-mb")) {
                if (!bv_cli_int("serve", a, v, 1, 4096, &max_mb)) return 2;
            } else {
                int n;
                if (!bv_cli_int("serve", a, v, 1, bv_max_threads(NULL), &n)) return 2;
                bv_set_num_threads(n);
            }
        } else if (a[0] == '-') {
            fprintf(stderr, "bitvla serve: unknown option '%s' (see bitvla serve --help)\n", a);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "bitvla serve: unexpected argument '%s' (one BUNDLE_DIR or CHECKPOINT)\n", a);
            return 2;
        }
    }
    if (!path) {
        fprintf(stderr, "bitvla serve: give a BUNDLE_DIR or CHECKPOINT (see bitvla serve --help)\n");
        return 2;
    }
    /* SIGINT / SIGTERM are waited for, not delivered: blocked before any thread starts */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    bv_policy *p;
    if (bv_policy_load(&p, path, &po)) {
        fprintf(stderr, "bitvla serve: %s\n", bv_error_msg());
        return 1;
    }
    bv_serve_opts so = {.host = host, .port = port, .max_body = (size_t)max_mb << 20, .chunk = bv_policy_chunk(p),
                        .action_dim = bv_policy_action_dim(p), .state_dim = bv_policy_state_dim(p), .act = act,
                        .ctx = p, .log = quiet ? NULL : stderr};
    bv_serve *s;
    if (bv_serve_start(&s, &so)) {
        fprintf(stderr, "bitvla serve: %s\n", bv_error_msg());
        bv_policy_free(p);
        return 1;
    }
    fprintf(stderr, "bitvla serve: %s (%s) on http://%s:%d/act (POST; one request at a time); Ctrl-C stops\n", path,
            bv_policy_source(p), host ? host : BV_SERVE_DEFAULT_HOST, bv_serve_port(s));
    int rc = 0;
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (!f || fprintf(f, "%d\n", bv_serve_port(s)) < 0 || fclose(f)) {
            fprintf(stderr, "bitvla serve: --port-file %s: cannot write it\n", port_file);
            rc = 1;
        }
    }
    int sig = 0;
    if (!rc) sigwait(&sigs, &sig);
    uint64_t ok, cerr, serr;
    bv_serve_counts(s, &ok, &cerr, &serr);
    bv_serve_stop(s);
    bv_policy_free(p);
    if (!rc)
        fprintf(stderr, "bitvla serve: stopped by signal %d after %llu answered, %llu refused (4xx), %llu failed (5xx)\n",
                sig, (unsigned long long)ok, (unsigned long long)cerr, (unsigned long long)serr);
    return rc;
}
