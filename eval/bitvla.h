/* bitvla.h - the C API of the bitvla runtime: load an exported BitVLA policy (a bundle written by
 * `bitvla export`, or a training checkpoint) and turn observations into action chunks. This header
 * is all a robot integration includes; it links libbitvla_core (see examples/act.c and
 * docs/runtime.md).
 *
 *   bitvla_policy *p;
 *   if (bitvla_policy_load("bundle/", &p) != BITVLA_OK) { fprintf(stderr, "%s\n", bitvla_last_error()); ... }
 *   bitvla_observation obs = {rgb0, 224, 224, rgb1, 224, 224, state, 8, "put the bowl on the plate"};
 *   float actions[8 * 7];
 *   bitvla_policy_act(p, &obs, actions, 8 * 7);   // 8 future actions x 7 dims, robot units
 *   bitvla_policy_free(p);
 *
 * Threads: a policy serves one act at a time; use one policy per thread for parallel acting (they
 * share nothing). Error messages are per thread. The OpenMP threads one act uses are the
 * process's (OMP_NUM_THREADS).
 */
#ifndef BITVLA_H
#define BITVLA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct bitvla_policy bitvla_policy;

typedef enum {
    BITVLA_OK = 0,
    BITVLA_ERR_IO = 1,          /* a file could not be opened or read */
    BITVLA_ERR_FORMAT = 2,      /* a malformed or corrupt bundle (bad checksum, missing tensor) */
    BITVLA_ERR_ARG = 3,         /* a bad argument: missing image, wrong state size, too small output */
    BITVLA_ERR_SHAPE = 4,       /* data of the wrong shape */
    BITVLA_ERR_NOMEM = 5,       /* not enough memory */
    BITVLA_ERR_UNSUPPORTED = 6,
    BITVLA_ERR_INTERNAL = 7,
} bitvla_status;

typedef struct {
    const uint8_t *full_image; /* third-person camera, RGB, height x width x 3 bytes, row-major */
    int full_width, full_height;
    const uint8_t *wrist_image; /* wrist camera (NULL for a one-camera policy) */
    int wrist_width, wrist_height;
    const float *state; /* the robot state (8 values for LIBERO: eef position, axis-angle, gripper) */
    int state_dim;
    const char *instruction; /* the task, e.g. "pick up the black bowl and place it on the plate" */
} bitvla_observation;

/* Load a bundle directory, a checkpoint directory or a run directory. */
bitvla_status bitvla_policy_load(const char *path, bitvla_policy **out);
/* One action chunk: writes chunk x action_dim floats (n_actions must be at least that). */
bitvla_status bitvla_policy_act(bitvla_policy *p, const bitvla_observation *obs, float *actions, size_t n_actions);
void bitvla_policy_free(bitvla_policy *p);

int bitvla_policy_chunk(const bitvla_policy *p);      /* actions per chunk (8) */
int bitvla_policy_action_dim(const bitvla_policy *p); /* values per action (7) */
int bitvla_policy_state_dim(const bitvla_policy *p);  /* state values an observation gives (8) */
int bitvla_policy_n_images(const bitvla_policy *p);   /* 1 or 2 cameras */

/* "ok", "i/o error", ... */
const char *bitvla_status_string(bitvla_status s);
/* The calling thread's last error message: what failed, naming the file, tensor or field. */
const char *bitvla_last_error(void);

#ifdef __cplusplus
}
#endif

#endif
