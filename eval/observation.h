/* eval/observation.h - an observation from files: the JSON of
 * tests/fixtures/libero_observation/observation.json (OFT's sample LIBERO observation) naming a
 * primary image and a wrist image (PNG or JPEG, paths relative to the JSON's directory), the state
 * and the task:
 *   {"task_description": "pick up the black bowl ...", "state": [8 numbers],
 *    "full_image": "full_image.png", "wrist_image": "wrist_image.png"}
 * ("instruction" is accepted for "task_description"; "wrist_image" may be absent.)
 * Owns: the decoded images, the state and the instruction (bv_obs_file_free).
 * Must not: preprocess (eval/policy.h does: crop, resize, normalise).
 */
#ifndef BV_EVAL_OBSERVATION_H
#define BV_EVAL_OBSERVATION_H

#include "data/image.h"
#include "eval/policy.h"

typedef struct {
    bv_image full, wrist;
    float *state;
    int state_dim;
    char *instruction;
    bv_policy_obs obs; /* views of the above */
} bv_obs_file;

/* Errors name the file and the field (a missing key, a state that is not a list of numbers, an
 * image that cannot be read or decoded). */
bv_status bv_obs_file_load(bv_obs_file *o, const char *path);
void bv_obs_file_free(bv_obs_file *o);

#endif
