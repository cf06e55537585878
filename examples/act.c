/* examples/act.c - the shape of a robot integration of the bitvla C API (eval/bitvla.h): load a
 * policy, act on observations, one policy per thread. Built and run by the test suite
 * (tests/cli/infer.sh).
 *
 *   usage: bitvla_example_act BUNDLE_DIR [STEPS]
 *
 * It makes a synthetic observation (a gradient image per camera, a fixed state), then acts STEPS
 * times (default 2) in each of two threads, each with its own policy, and checks that every chunk
 * is finite and that both threads got the same actions for the same observation. Exit status 0
 * when all is well, 1 otherwise (with bitvla_last_error's message). */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/bitvla.h"

#define W 128
#define H 96

typedef struct {
    const char *path;
    int steps;
    float actions[64 * 64];
    int n;
    int ok;
    char err[512];
} job;

static void *run(void *arg) {
    job *j = arg;
    bitvla_policy *p;
    bitvla_status st = bitvla_policy_load(j->path, &p);
    if (st != BITVLA_OK) {
        snprintf(j->err, sizeof j->err, "load: %s: %s", bitvla_status_string(st), bitvla_last_error());
        return NULL;
    }
    static uint8_t full[H * W * 3], wrist[H * W * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            for (int c = 0; c < 3; c++) {
                full[(y * W + x) * 3 + c] = (uint8_t)((x * 2 + c * 40) & 255);
                wrist[(y * W + x) * 3 + c] = (uint8_t)((y * 2 + c * 60) & 255);
            }
    float state[64] = {0};
    int sd = bitvla_policy_state_dim(p);
    for (int i = 0; i < sd && i < 64; i++) state[i] = 0.01f * (float)i;
    bitvla_observation obs = {full, W, H, wrist, W, H, state, sd, "put the red block on the blue plate"};
    j->n = bitvla_policy_chunk(p) * bitvla_policy_action_dim(p);
    for (int s = 0; s < j->steps; s++) {
        if ((st = bitvla_policy_act(p, &obs, j->actions, sizeof j->actions / sizeof j->actions[0])) != BITVLA_OK) {
            snprintf(j->err, sizeof j->err, "act: %s: %s", bitvla_status_string(st), bitvla_last_error());
            bitvla_policy_free(p);
            return NULL;
        }
        for (int i = 0; i < j->n; i++)
            if (!isfinite(j->actions[i])) {
                snprintf(j->err, sizeof j->err, "act: action value %d is %g", i, (double)j->actions[i]);
                bitvla_policy_free(p);
                return NULL;
            }
    }
    /* a wrong call is an error with a message, not a crash */
    obs.state_dim = sd + 1;
    if (bitvla_policy_act(p, &obs, j->actions + 0, 0) == BITVLA_OK ||
        bitvla_policy_act(p, &obs, j->actions, sizeof j->actions / sizeof j->actions[0]) != BITVLA_ERR_ARG) {
        snprintf(j->err, sizeof j->err, "a bad call was accepted");
        bitvla_policy_free(p);
        return NULL;
    }
    obs.state_dim = sd;
    bitvla_policy_act(p, &obs, j->actions, sizeof j->actions / sizeof j->actions[0]);
    bitvla_policy_free(p);
    j->ok = 1;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s BUNDLE_DIR [STEPS]\n", argv[0]);
        return 2;
    }
    static job jobs[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        jobs[i].path = argv[1];
        jobs[i].steps = argc > 2 ? atoi(argv[2]) : 2;
        if (pthread_create(&t[i], NULL, run, &jobs[i])) return 1;
    }
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        if (!jobs[i].ok) {
            fprintf(stderr, "thread %d: %s\n", i, jobs[i].err);
            return 1;
        }
    if (jobs[0].n != jobs[1].n || memcmp(jobs[0].actions, jobs[1].actions, (size_t)jobs[0].n * sizeof(float))) {
        fprintf(stderr, "the two threads' policies gave different actions for the same observation\n");
        return 1;
    }
    printf("bitvla_example_act: 2 threads x %d chunks of %d values; first action:", jobs[0].steps, jobs[0].n);
    for (int i = 0; i < 7 && i < jobs[0].n; i++) printf(" %+.5f", (double)jobs[0].actions[i]);
    printf("\n");
    return 0;
}
