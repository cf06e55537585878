/* synth_env_impl.h - internals of the tabletop env shared by synth_env.c and synth_expert.c:
 * the scene layout, the geometry constants of the gripper and the small quaternion helpers. Not a
 * public interface. */
#ifndef BV_DATA_SYNTH_ENV_IMPL_H
#define BV_DATA_SYNTH_ENV_IMPL_H

#include <math.h>

#include "data/render.h"
#include "data/synth_env.h"

#define SYN_MAX_OBJECTS 6

/* Gripper geometry in the end-effector frame: x = finger axis, z = pointing direction (down at
 * rest), the end-effector point sits between the fingers 1 cm above their tips. */
#define SYN_GRIP_MAX 0.04    /* per-finger opening, metres */
#define SYN_FINGER_TIP 0.01  /* tips this far beyond the EE point (local +z) */
#define SYN_FINGER_BASE 0.04 /* fingers start this far behind it (local -z) */
#define SYN_FINGER_THICK 0.012
#define SYN_FINGER_WIDTH 0.02
#define SYN_PALM_TOP 0.10 /* palm spans local z in [-PALM_TOP, -FINGER_BASE] */
#define SYN_PALM_X 0.14
#define SYN_PALM_Y 0.05
#define SYN_WRIST_LEN 0.22 /* wrist centre (arm IK target) this far behind the EE point */

/* The arm's base and shoulder (world). */
#define SYN_BASE_X 0.0
#define SYN_BASE_Y 0.42
#define SYN_SHOULDER_Z 0.333
#define SYN_UPPER_ARM 0.316
#define SYN_FOREARM 0.384

/* Workspace the end-effector point is kept in. */
#define SYN_WS_XMIN (-0.35)
#define SYN_WS_XMAX 0.35
#define SYN_WS_YMIN (-0.30)
#define SYN_WS_YMAX 0.30
#define SYN_WS_ZMAX 0.40

#define SYN_PLATE_R 0.075
#define SYN_PLATE_TOP 0.012
#define SYN_TRAY_HALF 0.075
#define SYN_TRAY_FLOOR 0.008
#define SYN_TRAY_RIM 0.025
#define SYN_TRAY_RIM_W 0.008

#define SYN_DT 0.05 /* seconds per step (20 Hz) */

typedef struct {
    bv_synth_colour colour;
    bv_synth_shape shape;
    double pos[3]; /* centre of the bounding box */
    double yaw;
    double half[3]; /* half extents: cube (s, s, s)/2, cylinder (r, r, h/2), ball (r, r, r) */
    double vz;      /* falling speed, m/s (0 when resting or held) */
} syn_object;

typedef struct {
    bv_synth_dest kind;
    double pos[2];
    double top; /* height an object rests at */
} syn_dest;

struct bv_synth_env {
    bv_synth_config cfg;
    int task_id;
    bv_synth_task task;
    char instruction[128];
    int n_obj, target;
    syn_object obj[SYN_MAX_OBJECTS];
    syn_dest dest[BV_SYNTH_N_DESTS];
    /* robot */
    double ee[3];
    double quat[4]; /* (w, x, y, z), world from end-effector */
    double grip;    /* per-finger opening */
    int held;       /* object index or -1 */
    double held_off[3], held_yaw;
    int steps;
    /* rendering */
    bv_render_mesh box, cyl, ball, disc;
    float *invz;       /* camera depth keys (S, S) */
    uint8_t *ids;      /* camera pixel ids (S, S) */
    uint8_t *shadowed; /* camera pixel already in shadow (S, S) */
    /* the third-person camera's view of what does not move (wall, table, plate, tray), drawn
     * once per episode and copied under each frame */
    uint8_t *bg_rgb, *bg_ids;
    float *bg_invz;
    int bg_valid;
};

/* ---- quaternions (w, x, y, z) ---- */
static inline void syn_qmul(const double *a, const double *b, double *o) {
    double w = a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3];
    double x = a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2];
    double y = a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1];
    double z = a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0];
    o[0] = w, o[1] = x, o[2] = y, o[3] = z;
}
static inline void syn_qnormalize(double *q) {
    double n = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    for (int k = 0; k < 4; k++) q[k] /= n;
}
/* rotation vector (axis * angle) -> unit quaternion */
static inline void syn_qexp(const double *v, double *q) {
    double th = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    double s = th > 1e-12 ? sin(0.5 * th) / th : 0.5;
    q[0] = cos(0.5 * th), q[1] = v[0] * s, q[2] = v[1] * s, q[3] = v[2] * s;
}
/* unit quaternion -> rotation vector, for the sign of q as given (angle in [0, 2 pi]) */
static inline void syn_qlog(const double *q, double *v) {
    double n = sqrt(q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
    if (n < 1e-12) {
        v[0] = v[1] = v[2] = 0;
        return;
    }
    double th = 2.0 * atan2(n, q[0]);
    for (int k = 0; k < 3; k++) v[k] = q[1 + k] / n * th;
}
/* row-major rotation matrix of a unit quaternion */
static inline void syn_qmat(const double *q, double *R) {
    double w = q[0], x = q[1], y = q[2], z = q[3];
    R[0] = 1 - 2 * (y * y + z * z), R[1] = 2 * (x * y - w * z), R[2] = 2 * (x * z + w * y);
    R[3] = 2 * (x * y + w * z), R[4] = 1 - 2 * (x * x + z * z), R[5] = 2 * (y * z - w * x);
    R[6] = 2 * (x * z - w * y), R[7] = 2 * (y * z + w * x), R[8] = 1 - 2 * (x * x + y * y);
}
/* the end-effector orientation pointing down with heading `yaw`: Rz(yaw) * Rx(pi) */
static inline void syn_qdown(double yaw, double *q) {
    double qz[4] = {cos(0.5 * yaw), 0, 0, sin(0.5 * yaw)}, qx[4] = {0, 1, 0, 0};
    syn_qmul(qz, qx, q);
}
/* heading of the end-effector: angle of its local x axis in the table plane */
static inline double syn_ee_yaw(const bv_synth_env *e) {
    double R[9];
    syn_qmat(e->quat, R);
    return atan2(R[3], R[0]);
}
static inline double syn_wrap(double a) {
    while (a > M_PI) a -= 2 * M_PI;
    while (a < -M_PI) a += 2 * M_PI;
    return a;
}
/* half-width of object o along the finger axis of a gripper with heading yaw */
static inline double syn_half_width(const syn_object *o, double yaw) {
    if (o->shape != BV_SYNTH_CUBE) return o->half[0];
    double d = o->yaw - yaw;
    return o->half[0] * (fabs(cos(d)) + fabs(sin(d)));
}

/* splitmix64 */
static inline uint64_t syn_rng_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double syn_rng_uniform(uint64_t *s) { return (double)(syn_rng_u64(s) >> 11) * 0x1.0p-53; }
static inline double syn_rng_range(uint64_t *s, double lo, double hi) { return lo + (hi - lo) * syn_rng_uniform(s); }
static inline double syn_rng_normal(uint64_t *s) {
    double u = syn_rng_uniform(s), v = syn_rng_uniform(s);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

#endif
