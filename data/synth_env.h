/* synth_env.h - the built-in tabletop task: a procedural pick-and-place environment and its
 * scripted expert, for demos (`bitvla synth`) and closed-loop evaluation without a simulator.
 *
 * The scene: a table (top at z = 0, metres, x to the right, y away from the front camera, z up),
 * a plate and a tray (the two destinations), three to five objects of different colours and
 * shapes (cube, cylinder, ball), a parallel gripper on a 7-joint arm. The instruction names one
 * object by colour AND shape and one destination ("pick up the red cube and place it on the
 * plate"); every scene also holds an object of the same colour but another shape and one of the
 * same shape but another colour, so neither the image nor the words alone identify the target
 * (with bv_synth_config.unique_colour, the easier scenes: no other object has the target's colour).
 *
 * Conventions (LIBERO's, see docs/synth.md):
 *  - action float[7]: delta position (3) in units of cfg.pos_scale metres, delta rotation (3) as
 *    a world-frame axis-angle in units of cfg.rot_scale radians, gripper (+1 close, -1 open;
 *    > 0 closes). Each component is clipped to [-1, 1]; NaN counts as 0.
 *  - state float[8]: end-effector position (3), orientation as axis-angle (3; the gripper pointing
 *    down with no yaw is (pi, 0, 0)), gripper finger positions (+q, -q) (2; 0.04 = fully open).
 *  - joint_state float[7]: joint angles of the arm (from an analytic inverse kinematics; a
 *    plausible Panda-like vector, not a simulation).
 *  - images: u8 RGB (S, S, 3), row 0 at the top, upright (what LIBERO's RLDS holds after its 180
 *    degree rotation): the third-person camera in front of the table and the wrist camera on the
 *    hand looking down past the fingers.
 * Everything is deterministic: a seed fixes the scene, and the same actions give the same states,
 * bit for bit.
 *
 * Owns: an env owns its scene, its meshes and its render scratch (bv_synth_env_init / _free).
 * Must not: read or write files; know about RLDS (data/synth.h records episodes).
 */
#ifndef BV_DATA_SYNTH_ENV_H
#define BV_DATA_SYNTH_ENV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/common.h"

#define BV_SYNTH_ACTION_DIM 7
#define BV_SYNTH_STATE_DIM 8
#define BV_SYNTH_JOINT_DIM 7

typedef enum { BV_SYNTH_CUBE, BV_SYNTH_CYLINDER, BV_SYNTH_BALL, BV_SYNTH_N_SHAPES } bv_synth_shape;
typedef enum { BV_SYNTH_RED, BV_SYNTH_GREEN, BV_SYNTH_BLUE, BV_SYNTH_YELLOW, BV_SYNTH_N_COLOURS } bv_synth_colour;
typedef enum { BV_SYNTH_PLATE, BV_SYNTH_TRAY, BV_SYNTH_N_DESTS } bv_synth_dest;
typedef enum { BV_SYNTH_CAM_AGENT, BV_SYNTH_CAM_WRIST } bv_synth_camera;

const char *bv_synth_shape_name(bv_synth_shape s);   /* "cube", "cylinder", "ball" */
const char *bv_synth_colour_name(bv_synth_colour c); /* "red", "green", "blue", "yellow" */
const char *bv_synth_dest_name(bv_synth_dest d);     /* "plate", "tray" */

/* A task: which object (colour and shape) goes where. Task ids 0 .. bv_synth_num_tasks()-1 run
 * through every combination, destinations alternating fastest, then colours, then shapes, so the
 * first few ids already cover both destinations and all colours. */
typedef struct {
    bv_synth_colour colour;
    bv_synth_shape shape;
    bv_synth_dest dest;
} bv_synth_task;
int bv_synth_num_tasks(void);
bv_synth_task bv_synth_task_get(int id);
/* "pick up the red cube and place it on the plate" (or "... in the tray"). */
void bv_synth_task_instruction(bv_synth_task t, char *buf, size_t n);

typedef struct {
    int image_size;   /* square camera images, pixels (default 256, as LIBERO's RLDS) */
    int max_steps;    /* steps before an episode counts as failed (default 300) */
    float pos_scale;  /* metres of end-effector travel per unit of action[0..2] (default 0.01) */
    float rot_scale;  /* radians per unit of action[3..5] (default 0.1) */
    float grip_speed; /* finger travel per step, metres (default 0.01; 0.04 is fully open) */
    /* The easier scenes (default false): every other object has another colour than the target,
     * so the colour word alone names it (no same-colour distractor). */
    bool unique_colour;
} bv_synth_config;
void bv_synth_config_default(bv_synth_config *c);
/* BV_ERR_ARG naming the field when a value is out of range (image_size 16..1024, ...). */
bv_status bv_synth_config_check(const bv_synth_config *c);

typedef struct bv_synth_env bv_synth_env;

/* Create an env (config copied). BV_ERR_ARG for a bad config. */
bv_status bv_synth_env_init(bv_synth_env **env, const bv_synth_config *cfg);
void bv_synth_env_free(bv_synth_env *env);

/* Start an episode: the scene is drawn from `seed`; `task` is a task id, or -1 to draw it from the
 * seed too. BV_ERR_ARG for a task id out of range. */
bv_status bv_synth_env_reset(bv_synth_env *env, uint64_t seed, int task);
/* Advance one step (20 Hz in LIBERO's terms) with a 7-d action (see the conventions above). */
void bv_synth_env_step(bv_synth_env *env, const float action[BV_SYNTH_ACTION_DIM]);

typedef struct {
    uint8_t *image;       /* third-person camera (S, S, 3), caller's buffer, or NULL to skip */
    uint8_t *wrist_image; /* wrist camera (S, S, 3), caller's buffer, or NULL to skip */
    float state[BV_SYNTH_STATE_DIM];
    float joint_state[BV_SYNTH_JOINT_DIM];
    const char *instruction; /* borrowed from the env, valid until the next reset */
} bv_synth_obs;
/* Fill an observation: state, joints, instruction, and renders the images whose buffers are set. */
void bv_synth_env_observe(bv_synth_env *env, bv_synth_obs *obs);
/* Render one camera into rgb (S, S, 3). */
void bv_synth_env_render(bv_synth_env *env, bv_synth_camera cam, uint8_t *rgb);

const char *bv_synth_env_instruction(const bv_synth_env *env);
int bv_synth_env_task_id(const bv_synth_env *env);
int bv_synth_env_num_steps(const bv_synth_env *env); /* steps taken since reset */
const bv_synth_config *bv_synth_env_config(const bv_synth_env *env);
/* The target object rests on the destination named by the instruction, out of the gripper. */
bool bv_synth_env_success(const bv_synth_env *env);
/* success, or max_steps reached */
bool bv_synth_env_done(const bv_synth_env *env);

/* Scene introspection (for tests, docs and the expert): number of objects, and object i's colour,
 * shape, centre (metres) and whether the gripper holds it; the index of the target. */
int bv_synth_env_num_objects(const bv_synth_env *env);
void bv_synth_env_object(const bv_synth_env *env, int i, bv_synth_colour *colour, bv_synth_shape *shape, float pos[3],
                         bool *held);
int bv_synth_env_target(const bv_synth_env *env);
/* The colour (0..1 RGB, unlit) an object of this colour is drawn with. */
void bv_synth_colour_rgb(bv_synth_colour c, float rgb[3]);

/* ---- the scripted expert: approach, descend, grasp, lift, move, place, release ----
 * Reads the true scene (privileged), emits LIBERO-style actions with Gaussian noise of std `noise`
 * (in action units) on the arm dimensions and per-episode randomised speed and heights, so
 * episodes with the same scene still differ. Recovers from a missed grasp or a misplaced object
 * by trying again. Deterministic given its seed. */
typedef struct {
    uint64_t rng;
    float noise;
    int phase, phase_steps, attempts;
    double speed, hover_dz, carry_z, place_off[2], yaw_goal;
    int yaw_set;
} bv_synth_expert;
void bv_synth_expert_init(bv_synth_expert *ex, uint64_t seed, float noise);
void bv_synth_expert_act(bv_synth_expert *ex, const bv_synth_env *env, float action[BV_SYNTH_ACTION_DIM]);
/* The expert's current phase as a word ("approach", "descend", ...), for logs and tests. */
const char *bv_synth_expert_phase(const bv_synth_expert *ex);

#endif
