/* serve.h - a policy behind HTTP, speaking the protocol of OpenVLA-OFT's vla-scripts/deploy.py
 * (docs/serving.md): POST /act with a JSON observation whose arrays use the json_numpy encoding,
 * the action chunk back as a JSON list of json_numpy float64 arrays, so robot clients written for
 * OFT's server work unchanged.
 *
 * The mechanism only: it decodes and checks a request (images, state, instruction), calls one
 * act callback, and encodes its actions. It knows nothing of models, bundles or normalisation;
 * `bitvla serve` wires the callback to the policy runtime.
 *
 * One request at a time: libmicrohttpd runs one internal thread that polls every connection, and
 * the act callback runs on it, so the callback is never entered twice at once (a policy instance
 * is not reentrant); other clients' requests wait in their connections until it returns.
 * Bound to 127.0.0.1 unless told otherwise.
 *
 * Owns: the HTTP daemon and its thread, each request's body and decoded arrays (freed when the
 * response has been queued).
 * Must not: abort or stop serving because of anything a client sends: malformed, oversized or
 * unexpected requests get a 4xx with {"error": "..."} naming the field and what was expected.
 */
#ifndef BV_SERVE_H
#define BV_SERVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "src/common.h"

/* One decoded request; every pointer is borrowed and valid during the act callback only. */
typedef struct {
    const uint8_t *full_image; /* (full_h, full_w, 3) uint8 RGB, row-major */
    int full_w, full_h;
    const uint8_t *wrist_image; /* (wrist_h, wrist_w, 3) uint8 RGB; NULL when the request has none */
    int wrist_w, wrist_h;
    const float *state; /* (state_dim,) the robot state as sent (un-normalised) */
    int state_dim;
    const char *instruction; /* UTF-8, NUL-terminated */
} bv_serve_obs;

/* Fill actions (chunk, action_dim), row-major. Return BV_OK, or a status with the bv_error message
 * set: BV_ERR_ARG or BV_ERR_SHAPE mean the observation does not suit the policy (answered 400),
 * anything else a failure of the server (answered 500); the message goes to the client. */
typedef bv_status (*bv_serve_act_fn)(void *ctx, const bv_serve_obs *obs, float *actions);

typedef struct {
    const char *host; /* address to bind: NULL means "127.0.0.1"; "0.0.0.0" or "::" exposes it */
    int port;         /* 0 means an ephemeral port (bv_serve_port tells which) */
    size_t max_body;  /* largest request body accepted in bytes; 0 means 64 MiB */
    int chunk, action_dim; /* the shape of the action chunk the callback fills */
    int state_dim;         /* the state length the policy takes; 0 accepts any length >= 1 */
    bv_serve_act_fn act;
    void *ctx;  /* passed to act */
    FILE *log;  /* one line per request ("POST /act 200 12.3 ms ..."); NULL for silence */
} bv_serve_opts;

#define BV_SERVE_DEFAULT_HOST "127.0.0.1"
#define BV_SERVE_DEFAULT_PORT 8777
#define BV_SERVE_DEFAULT_MAX_BODY ((size_t)64 << 20)

/* Decode and check one request body as the server does (no server, no policy): BV_OK, or the 4xx
 * message the server would answer. With `shape`, the decoded sizes (its pointers are NULL). For
 * tests and fuzz/fuzz_serve.c. */
bv_status bv_serve_check_request(const char *body, size_t len, int state_dim, bv_serve_obs *shape);

typedef struct bv_serve bv_serve;

/* Bind and start serving on a thread of its own. Errors (a port in use, an address that does not
 * resolve, bad options) name the address and the reason. *out is freed by bv_serve_stop. */
bv_status bv_serve_start(bv_serve **out, const bv_serve_opts *o);
/* The port actually bound (the ephemeral one when opts.port was 0). */
int bv_serve_port(const bv_serve *s);
/* Requests answered so far, by class: 2xx, 4xx, 5xx (for tests and the final log line). */
void bv_serve_counts(const bv_serve *s, uint64_t *ok, uint64_t *client_err, uint64_t *server_err);
/* Stop accepting, close every connection, join the thread, free everything. NULL is fine. */
void bv_serve_stop(bv_serve *s);

#endif
