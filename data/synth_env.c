/* synth_env.c - the built-in tabletop env: scene layout, kinematic physics, state, rendering
 * (see synth_env.h; the expert is in synth_expert.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data/synth_env_impl.h"

/* ---- names and tasks ---- */

static const char *const k_shape_names[BV_SYNTH_N_SHAPES] = {"cube", "cylinder", "ball"};
static const char *const k_colour_names[BV_SYNTH_N_COLOURS] = {"red", "green", "blue", "yellow"};
static const char *const k_dest_names[BV_SYNTH_N_DESTS] = {"plate", "tray"};
static const float k_colour_rgb[BV_SYNTH_N_COLOURS][3] = {
    {0.86f, 0.12f, 0.10f}, {0.12f, 0.62f, 0.20f}, {0.12f, 0.28f, 0.86f}, {0.95f, 0.80f, 0.08f}};

const char *bv_synth_shape_name(bv_synth_shape s) { return (unsigned)s < BV_SYNTH_N_SHAPES ? k_shape_names[s] : "?"; }
const char *bv_synth_colour_name(bv_synth_colour c) {
    return (unsigned)c < BV_SYNTH_N_COLOURS ? k_colour_names[c] : "?";
}
const char *bv_synth_dest_name(bv_synth_dest d) { return (unsigned)d < BV_SYNTH_N_DESTS ? k_dest_names[d] : "?"; }
void bv_synth_colour_rgb(bv_synth_colour c, float rgb[3]) {
    BV_ASSERT((unsigned)c < BV_SYNTH_N_COLOURS, "colour %d", (int)c);
    memcpy(rgb, k_colour_rgb[c], 3 * sizeof(float));
}

int bv_synth_num_tasks(void) { return BV_SYNTH_N_SHAPES * BV_SYNTH_N_COLOURS * BV_SYNTH_N_DESTS; }

bv_synth_task bv_synth_task_get(int id) {
    BV_ASSERT(id >= 0 && id < bv_synth_num_tasks(), "task id %d (have %d)", id, bv_synth_num_tasks());
    bv_synth_task t;
    t.dest = (bv_synth_dest)(id % BV_SYNTH_N_DESTS);
    t.colour = (bv_synth_colour)((id / BV_SYNTH_N_DESTS) % BV_SYNTH_N_COLOURS);
    t.shape = (bv_synth_shape)(id / (BV_SYNTH_N_DESTS * BV_SYNTH_N_COLOURS));
    return t;
}

void bv_synth_task_instruction(bv_synth_task t, char *buf, size_t n) {
    snprintf(buf, n, "pick up the %s %s and place it %s the %s", bv_synth_colour_name(t.colour),
             bv_synth_shape_name(t.shape), t.dest == BV_SYNTH_PLATE ? "on" : "in", bv_synth_dest_name(t.dest));
}

/* ---- config ---- */

void bv_synth_config_default(bv_synth_config *c) {
    c->image_size = 256;
    c->max_steps = 300;
    c->pos_scale = 0.01f;
    c->rot_scale = 0.1f;
    c->grip_speed = 0.01f;
    c->unique_colour = false;
}

bv_status bv_synth_config_check(const bv_synth_config *c) {
    if (c->image_size < 16 || c->image_size > 1024)
        return bv_error_set(BV_ERR_ARG, "synth: image_size %d out of range (expected 16..1024)", c->image_size);
    if (c->max_steps < 1 || c->max_steps > 100000)
        return bv_error_set(BV_ERR_ARG, "synth: max_steps %d out of range (expected 1..100000)", c->max_steps);
    if (!(c->pos_scale > 0 && c->pos_scale <= 0.1f))
        return bv_error_set(BV_ERR_ARG, "synth: pos_scale %g out of range (expected (0, 0.1] metres per step)",
                            (double)c->pos_scale);
    if (!(c->rot_scale > 0 && c->rot_scale <= 1.0f))
        return bv_error_set(BV_ERR_ARG, "synth: rot_scale %g out of range (expected (0, 1] radians per step)",
                            (double)c->rot_scale);
    if (!(c->grip_speed > 0 && c->grip_speed <= (float)SYN_GRIP_MAX))
        return bv_error_set(BV_ERR_ARG, "synth: grip_speed %g out of range (expected (0, %g] metres per step)",
                            (double)c->grip_speed, SYN_GRIP_MAX);
    return BV_OK;
}

/* ---- lifetime ---- */

bv_status bv_synth_env_init(bv_synth_env **out, const bv_synth_config *cfg) {
    *out = NULL;
    bv_status st = bv_synth_config_check(cfg);
    if (st != BV_OK) return st;
    bv_synth_env *e = bv_xcalloc(1, sizeof *e);
    e->cfg = *cfg;
    bv_render_mesh_box(&e->box);
    bv_render_mesh_cylinder(&e->cyl, 20);
    bv_render_mesh_sphere(&e->ball, 8, 14);
    bv_render_mesh_disc(&e->disc, 32);
    int n = cfg->image_size * cfg->image_size;
    e->invz = bv_xmalloc((size_t)n * sizeof(float));
    e->ids = bv_xmalloc((size_t)n);
    e->shadowed = bv_xmalloc((size_t)n);
    e->bg_rgb = bv_xmalloc((size_t)n * 3);
    e->bg_ids = bv_xmalloc((size_t)n);
    e->bg_invz = bv_xmalloc((size_t)n * sizeof(float));
    e->held = -1;
    *out = e;
    return BV_OK;
}

void bv_synth_env_free(bv_synth_env *e) {
    if (!e) return;
    bv_render_mesh_free(&e->box);
    bv_render_mesh_free(&e->cyl);
    bv_render_mesh_free(&e->ball);
    bv_render_mesh_free(&e->disc);
    free(e->invz);
    free(e->ids);
    free(e->shadowed);
    free(e->bg_rgb);
    free(e->bg_ids);
    free(e->bg_invz);
    free(e);
}

/* ---- scene layout ---- */

/* Object footprint radius (bounding circle in the table plane). */
static double obj_radius(const syn_object *o) { return o->shape == BV_SYNTH_CUBE ? o->half[0] * M_SQRT2 : o->half[0]; }

static void make_object(syn_object *o, bv_synth_colour c, bv_synth_shape s, uint64_t *rng) {
    memset(o, 0, sizeof *o);
    o->colour = c;
    o->shape = s;
    switch (s) {
    case BV_SYNTH_CUBE: {
        double h = 0.5 * syn_rng_range(rng, 0.040, 0.048);
        o->half[0] = o->half[1] = o->half[2] = h;
        o->yaw = syn_rng_range(rng, -M_PI / 4, M_PI / 4);
        break;
    }
    case BV_SYNTH_CYLINDER:
        o->half[0] = o->half[1] = syn_rng_range(rng, 0.020, 0.024);
        o->half[2] = 0.5 * syn_rng_range(rng, 0.050, 0.060);
        o->yaw = syn_rng_range(rng, -M_PI, M_PI);
        break;
    default:
        o->half[0] = o->half[1] = o->half[2] = syn_rng_range(rng, 0.022, 0.026);
        o->yaw = syn_rng_range(rng, -M_PI, M_PI);
        break;
    }
}

/* One attempt at placing the destinations and objects; 0 if the rejection sampling ran out. */
static int try_layout(bv_synth_env *e, uint64_t *rng) {
    /* destinations: both always present, apart from each other */
    for (int tries = 0;; tries++) {
        if (tries > 200) return 0;
        for (int d = 0; d < BV_SYNTH_N_DESTS; d++) {
            e->dest[d].kind = (bv_synth_dest)d;
            e->dest[d].pos[0] = syn_rng_range(rng, -0.19, 0.19);
            e->dest[d].pos[1] = syn_rng_range(rng, -0.13, 0.09);
            e->dest[d].top = d == BV_SYNTH_PLATE ? SYN_PLATE_TOP : SYN_TRAY_FLOOR;
        }
        if (hypot(e->dest[0].pos[0] - e->dest[1].pos[0], e->dest[0].pos[1] - e->dest[1].pos[1]) > 0.21) break;
    }
    for (int i = 0; i < e->n_obj; i++) {
        syn_object *o = &e->obj[i];
        int ok = 0;
        for (int tries = 0; tries < 200 && !ok; tries++) {
            o->pos[0] = syn_rng_range(rng, -0.22, 0.22);
            o->pos[1] = syn_rng_range(rng, -0.17, 0.13);
            ok = 1;
            for (int d = 0; d < BV_SYNTH_N_DESTS && ok; d++)
                if (hypot(o->pos[0] - e->dest[d].pos[0], o->pos[1] - e->dest[d].pos[1]) <
                    SYN_TRAY_HALF * M_SQRT2 + obj_radius(o) + 0.01)
                    ok = 0;
            for (int j = 0; j < i && ok; j++)
                if (hypot(o->pos[0] - e->obj[j].pos[0], o->pos[1] - e->obj[j].pos[1]) < 0.09) ok = 0;
        }
        if (!ok) return 0;
        o->pos[2] = o->half[2];
    }
    return 1;
}

bv_status bv_synth_env_reset(bv_synth_env *e, uint64_t seed, int task) {
    if (task < -1 || task >= bv_synth_num_tasks())
        return bv_error_set(BV_ERR_ARG, "synth: task id %d out of range (expected -1 or 0..%d)", task,
                            bv_synth_num_tasks() - 1);
    uint64_t rng = seed ^ 0x5EED5EED5EED5EEDull;
    syn_rng_u64(&rng);
    if (task < 0) task = (int)(syn_rng_u64(&rng) % (uint64_t)bv_synth_num_tasks());
    e->task_id = task;
    e->task = bv_synth_task_get(task);
    bv_synth_task_instruction(e->task, e->instruction, sizeof e->instruction);

    /* the objects: target, same colour other shape, same shape other colour, then 0-2 others;
     * no two share both colour and shape */
    bv_synth_colour cs[SYN_MAX_OBJECTS];
    bv_synth_shape ss[SYN_MAX_OBJECTS];
    int n = 0;
    /* unique_colour: the same draws, every other object's colour moved off the target's */
    const bool uc = e->cfg.unique_colour;
    cs[n] = e->task.colour, ss[n++] = e->task.shape;
    cs[n] = e->task.colour;
    ss[n++] = (bv_synth_shape)((e->task.shape + 1 + syn_rng_u64(&rng) % (BV_SYNTH_N_SHAPES - 1)) % BV_SYNTH_N_SHAPES);
    cs[n] = (bv_synth_colour)((e->task.colour + 1 + syn_rng_u64(&rng) % (BV_SYNTH_N_COLOURS - 1)) % BV_SYNTH_N_COLOURS);
    ss[n++] = e->task.shape;
    if (uc) cs[1] = cs[2]; /* another colour than the target's; its shape differs from cs[2]'s object */
    int extra = (int)(syn_rng_u64(&rng) % 3);
    while (extra > 0) {
        bv_synth_colour c = (bv_synth_colour)(syn_rng_u64(&rng) % BV_SYNTH_N_COLOURS);
        bv_synth_shape s = (bv_synth_shape)(syn_rng_u64(&rng) % BV_SYNTH_N_SHAPES);
        int dup = uc && c == e->task.colour;
        for (int j = 0; j < n; j++) dup |= cs[j] == c && ss[j] == s;
        if (dup) continue;
        cs[n] = c, ss[n++] = s;
        extra--;
    }
    /* shuffle so the target's index says nothing */
    int perm[SYN_MAX_OBJECTS];
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(syn_rng_u64(&rng) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    e->n_obj = n;
    for (int i = 0; i < n; i++) {
        make_object(&e->obj[i], cs[perm[i]], ss[perm[i]], &rng);
        if (perm[i] == 0) e->target = i;
    }
    for (int attempt = 0; !try_layout(e, &rng); attempt++)
        BV_ASSERT(attempt < 1000, "synth: no layout found for seed %llu", (unsigned long long)seed);

    /* the robot: near its home pose, open */
    e->ee[0] = syn_rng_range(&rng, -0.03, 0.03);
    e->ee[1] = 0.10 + syn_rng_range(&rng, -0.03, 0.03);
    e->ee[2] = 0.20 + syn_rng_range(&rng, -0.02, 0.02);
    syn_qdown(syn_rng_range(&rng, -0.15, 0.15), e->quat);
    e->grip = SYN_GRIP_MAX;
    e->held = -1;
    e->steps = 0;
    e->bg_valid = 0;
    return BV_OK;
}

/* ---- physics (kinematic) ---- */

/* Height the bottom of object i rests at, given what lies under its centre. */
static double support_height(const bv_synth_env *e, int i) {
    const syn_object *o = &e->obj[i];
    double s = 0;
    const syn_dest *p = &e->dest[BV_SYNTH_PLATE], *t = &e->dest[BV_SYNTH_TRAY];
    if (hypot(o->pos[0] - p->pos[0], o->pos[1] - p->pos[1]) < SYN_PLATE_R) s = fmax(s, SYN_PLATE_TOP);
    double tx = fabs(o->pos[0] - t->pos[0]), ty = fabs(o->pos[1] - t->pos[1]);
    if (tx < SYN_TRAY_HALF && ty < SYN_TRAY_HALF)
        s = fmax(s, fmax(tx, ty) > SYN_TRAY_HALF - SYN_TRAY_RIM_W ? SYN_TRAY_RIM : SYN_TRAY_FLOOR);
    for (int j = 0; j < e->n_obj; j++) {
        if (j == i || j == e->held) continue;
        const syn_object *q = &e->obj[j];
        if (q->pos[2] + q->half[2] > o->pos[2] - o->half[2] + 1e-9) continue; /* not below */
        if (hypot(o->pos[0] - q->pos[0], o->pos[1] - q->pos[1]) < 0.8 * (obj_radius(o) + obj_radius(q)))
            s = fmax(s, q->pos[2] + q->half[2]);
    }
    return s;
}

static void place_held(bv_synth_env *e) {
    if (e->held < 0) return;
    syn_object *o = &e->obj[e->held];
    double R[9];
    syn_qmat(e->quat, R);
    for (int r = 0; r < 3; r++)
        o->pos[r] =
            e->ee[r] + R[3 * r] * e->held_off[0] + R[3 * r + 1] * e->held_off[1] + R[3 * r + 2] * e->held_off[2];
    o->yaw = syn_wrap(syn_ee_yaw(e) + e->held_yaw);
}

static double clampd(double x, double lo, double hi) { return x < lo ? lo : (x > hi ? hi : x); }

void bv_synth_env_step(bv_synth_env *e, const float action[BV_SYNTH_ACTION_DIM]) {
    double a[BV_SYNTH_ACTION_DIM];
    for (int k = 0; k < BV_SYNTH_ACTION_DIM; k++) a[k] = isnan(action[k]) ? 0.0 : clampd(action[k], -1, 1);
    const bv_synth_config *c = &e->cfg;

    /* arm: world-frame rotation delta, then translation, kept in the workspace */
    double w[3] = {a[3] * c->rot_scale, a[4] * c->rot_scale, a[5] * c->rot_scale}, dq[4], q[4];
    syn_qexp(w, dq);
    syn_qmul(dq, e->quat, q);
    syn_qnormalize(q);
    memcpy(e->quat, q, sizeof q);
    double R[9];
    syn_qmat(e->quat, R);
    e->ee[0] = clampd(e->ee[0] + a[0] * c->pos_scale, SYN_WS_XMIN, SYN_WS_XMAX);
    e->ee[1] = clampd(e->ee[1] + a[1] * c->pos_scale, SYN_WS_YMIN, SYN_WS_YMAX);
    /* the hand (fingertips and palm corners) stays above the table */
    double zmin = -1e9;
    for (int k = 0; k < 10; k++) {
        double v[3] = {(k == 8 ? 1 : -1) * (e->grip + SYN_FINGER_THICK), 0, SYN_FINGER_TIP}; /* k = 8, 9: tips */
        if (k < 8) {                                                                        /* palm corners */
            v[0] = (k & 1 ? 0.5 : -0.5) * SYN_PALM_X;
            v[1] = (k & 2 ? 0.5 : -0.5) * SYN_PALM_Y;
            v[2] = k & 4 ? -SYN_PALM_TOP : -SYN_FINGER_BASE;
        }
        zmin = fmax(zmin, 0.001 - (R[6] * v[0] + R[7] * v[1] + R[8] * v[2]));
    }
    e->ee[2] = clampd(e->ee[2] + a[2] * c->pos_scale, zmin, SYN_WS_ZMAX);
    if (e->held >= 0) { /* a held object is pushed up by what it is lowered onto */
        place_held(e);
        syn_object *o = &e->obj[e->held];
        double lack = support_height(e, e->held) - (o->pos[2] - o->half[2]);
        if (lack > 0) {
            e->ee[2] += lack;
            place_held(e);
        }
    }

    /* gripper */
    double yaw = syn_ee_yaw(e);
    if (a[6] > 0) {
        double g = fmax(0.0, e->grip - c->grip_speed);
        if (e->held >= 0) {
            g = syn_half_width(&e->obj[e->held], yaw);
        } else {
            /* the object most centred between the fingers, if any, is pushed to the middle and,
             * once both fingers touch it, held */
            int best = -1;
            double best_d = 1e9, best_l[3] = {0};
            for (int i = 0; i < e->n_obj; i++) {
                const syn_object *o = &e->obj[i];
                double d[3] = {o->pos[0] - e->ee[0], o->pos[1] - e->ee[1], o->pos[2] - e->ee[2]}, l[3];
                for (int k = 0; k < 3; k++) l[k] = R[k] * d[0] + R[3 + k] * d[1] + R[6 + k] * d[2]; /* R^T d */
                double hw = syn_half_width(o, yaw);
                double lo = fmax(l[2] - o->half[2], -SYN_FINGER_BASE), hi = fmin(l[2] + o->half[2], SYN_FINGER_TIP);
                if (fabs(l[1]) > 0.6 * SYN_FINGER_WIDTH || fabs(l[0]) + hw > e->grip + 0.003 || hi - lo < 0.01)
                    continue;
                if (fabs(l[0]) + fabs(l[1]) < best_d)
                    best = i, best_d = fabs(l[0]) + fabs(l[1]), memcpy(best_l, l, sizeof l);
            }
            if (best >= 0) {
                syn_object *o = &e->obj[best];
                double hw = syn_half_width(o, yaw);
                if (g < fabs(best_l[0]) + hw) { /* a finger touches: push the object inward */
                    double nx = fmax(g - hw, 0.0) * (best_l[0] < 0 ? -1 : 1), dx = nx - best_l[0];
                    for (int r = 0; r < 3; r++) o->pos[r] += R[3 * r] * dx;
                    best_l[0] = nx;
                }
                if (g <= hw) {
                    g = hw;
                    e->held = best;
                    e->held_off[0] = 0, e->held_off[1] = best_l[1], e->held_off[2] = best_l[2];
                    e->held_yaw = syn_wrap(o->yaw - yaw);
                    o->vz = 0;
                    place_held(e);
                }
            }
        }
        e->grip = g;
    } else {
        e->grip = fmin(SYN_GRIP_MAX, e->grip + c->grip_speed);
        if (e->held >= 0 && e->grip > syn_half_width(&e->obj[e->held], yaw) + 0.001) {
            e->obj[e->held].vz = 0;
            e->held = -1;
        }
    }

    /* free objects fall onto what is under them */
    for (int i = 0; i < e->n_obj; i++) {
        if (i == e->held) continue;
        syn_object *o = &e->obj[i];
        double sup = support_height(e, i), bottom = o->pos[2] - o->half[2];
        if (bottom > sup + 1e-9 || o->vz != 0) {
            o->vz -= 9.81 * SYN_DT;
            bottom += o->vz * SYN_DT;
        }
        if (bottom <= sup) {
            bottom = sup;
            o->vz = 0;
        }
        o->pos[2] = bottom + o->half[2];
    }
    e->steps++;
}

/* ---- state ---- */

static void arm_pose(const bv_synth_env *e, double S[3], double E[3], double W[3], double q[7]) {
    double R[9];
    syn_qmat(e->quat, R);
    for (int r = 0; r < 3; r++) W[r] = e->ee[r] - R[3 * r + 2] * SYN_WRIST_LEN;
    S[0] = SYN_BASE_X, S[1] = SYN_BASE_Y, S[2] = SYN_SHOULDER_Z;
    double dx = W[0] - S[0], dy = W[1] - S[1], r = hypot(dx, dy), h = W[2] - S[2];
    const double L1 = SYN_UPPER_ARM, L2 = SYN_FOREARM;
    double d = clampd(hypot(r, h), fabs(L1 - L2) + 1e-3, L1 + L2 - 1e-3);
    double alpha = atan2(r, h);
    double beta = acos(clampd((L1 * L1 + d * d - L2 * L2) / (2 * L1 * d), -1, 1));
    double phi = acos(clampd((L1 * L1 + L2 * L2 - d * d) / (2 * L1 * L2), -1, 1));
    double th1 = alpha - beta;
    double ux = r > 1e-9 ? dx / r : 0, uy = r > 1e-9 ? dy / r : -1;
    E[0] = S[0] + L1 * sin(th1) * ux;
    E[1] = S[1] + L1 * sin(th1) * uy;
    E[2] = S[2] + L1 * cos(th1);
    double q1 = atan2(dx, -dy);
    q[0] = q1;
    q[1] = th1;
    q[2] = 0;
    q[3] = -(M_PI - phi);
    q[4] = 0;
    q[5] = phi - th1;
    q[6] = syn_wrap(syn_ee_yaw(e) - q1 + M_PI / 4);
}

void bv_synth_env_observe(bv_synth_env *e, bv_synth_obs *obs) {
    for (int k = 0; k < 3; k++) obs->state[k] = (float)e->ee[k];
    /* axis-angle on the quaternion hemisphere of the home orientation (pi, 0, 0), so the value
     * is continuous across the workspace instead of flipping sign at angle pi */
    double q[4] = {e->quat[0], e->quat[1], e->quat[2], e->quat[3]}, v[3];
    if (q[1] < 0)
        for (int k = 0; k < 4; k++) q[k] = -q[k];
    syn_qlog(q, v);
    for (int k = 0; k < 3; k++) obs->state[3 + k] = (float)v[k];
    obs->state[6] = (float)e->grip;
    obs->state[7] = (float)-e->grip;
    double S[3], E[3], W[3], j[7];
    arm_pose(e, S, E, W, j);
    for (int k = 0; k < 7; k++) obs->joint_state[k] = (float)j[k];
    obs->instruction = e->instruction;
    if (obs->image) bv_synth_env_render(e, BV_SYNTH_CAM_AGENT, obs->image);
    if (obs->wrist_image) bv_synth_env_render(e, BV_SYNTH_CAM_WRIST, obs->wrist_image);
}

const char *bv_synth_env_instruction(const bv_synth_env *e) { return e->instruction; }
int bv_synth_env_task_id(const bv_synth_env *e) { return e->task_id; }
int bv_synth_env_num_steps(const bv_synth_env *e) { return e->steps; }
const bv_synth_config *bv_synth_env_config(const bv_synth_env *e) { return &e->cfg; }
int bv_synth_env_num_objects(const bv_synth_env *e) { return e->n_obj; }
int bv_synth_env_target(const bv_synth_env *e) { return e->target; }

void bv_synth_env_object(const bv_synth_env *e, int i, bv_synth_colour *colour, bv_synth_shape *shape, float pos[3],
                         bool *held) {
    BV_ASSERT(i >= 0 && i < e->n_obj, "object %d of %d", i, e->n_obj);
    const syn_object *o = &e->obj[i];
    if (colour) *colour = o->colour;
    if (shape) *shape = o->shape;
    if (pos)
        for (int k = 0; k < 3; k++) pos[k] = (float)o->pos[k];
    if (held) *held = e->held == i;
}

bool bv_synth_env_success(const bv_synth_env *e) {
    const syn_object *o = &e->obj[e->target];
    if (e->held == e->target || o->vz != 0) return false;
    const syn_dest *d = &e->dest[e->task.dest];
    if (fabs(o->pos[2] - o->half[2] - d->top) > 1e-6) return false;
    double dx = o->pos[0] - d->pos[0], dy = o->pos[1] - d->pos[1];
    if (d->kind == BV_SYNTH_PLATE) return hypot(dx, dy) < SYN_PLATE_R - 0.015;
    double in = SYN_TRAY_HALF - SYN_TRAY_RIM_W - 0.01;
    return fabs(dx) < in && fabs(dy) < in;
}

bool bv_synth_env_done(const bv_synth_env *e) { return bv_synth_env_success(e) || e->steps >= e->cfg.max_steps; }

/* ---- rendering ---- */

enum { ID_NONE, ID_TABLE, ID_PLATE, ID_TRAY, ID_ARM, ID_GRIPPER, ID_OBJ0 };

/* toward the light: above, a little to the left and front, so shadows fall right and back */
static const float k_light_dir_raw[3] = {-0.45f, -0.30f, 1.0f};
#define SHADOW_FACTOR 0.7f /* colour multiplier in shadow */

static bv_render_light scene_light(void) {
    bv_render_light l;
    float n = sqrtf(k_light_dir_raw[0] * k_light_dir_raw[0] + k_light_dir_raw[1] * k_light_dir_raw[1] +
                    k_light_dir_raw[2] * k_light_dir_raw[2]);
    for (int k = 0; k < 3; k++) l.dir[k] = k_light_dir_raw[k] / n;
    l.ambient = 0.55f;
    l.diffuse = 0.45f;
    return l;
}

/* One draw of the scene: a mesh, where, in which colour, with which pixel id. */
typedef struct {
    const bv_render_mesh *m;
    bv_render_xform xf;
    const float *rgb;
    int id;
} item;

#define MAX_ITEMS 32

typedef struct {
    item it[MAX_ITEMS];
    int n;
} item_list;

static void add(item_list *l, const bv_render_mesh *m, bv_render_xform xf, const float *rgb, int id) {
    BV_ASSERT(l->n < MAX_ITEMS, "scene has more than %d draws", MAX_ITEMS);
    l->it[l->n++] = (item){m, xf, rgb, id};
}

static const float k_wood[3] = {0.72f, 0.56f, 0.40f};
static const float k_plate[3] = {0.95f, 0.95f, 0.93f}, k_plate_in[3] = {0.85f, 0.86f, 0.84f};
static const float k_tray[3] = {0.30f, 0.33f, 0.38f}, k_tray_rim[3] = {0.22f, 0.24f, 0.28f};
static const float k_white[3] = {0.90f, 0.90f, 0.90f}, k_dark[3] = {0.22f, 0.22f, 0.25f};
static const float k_palm[3] = {0.93f, 0.93f, 0.93f}, k_finger[3] = {0.18f, 0.18f, 0.20f};
#define PLATE_DISC_Z (SYN_PLATE_TOP + 4e-4f)

/* The static part: table, plate, tray. */
static void scene_fixed(const bv_synth_env *e, item_list *l) {
    /* the table is wider than both views; behind it only the wall (the background gradient) */
    add(l, &e->box, bv_render_xform_trs((float[3]){0, 0.05f, -0.025f}, 0, 1.6f, 0.9f, 0.05f), k_wood, ID_TABLE);
    const syn_dest *pl = &e->dest[BV_SYNTH_PLATE], *tr = &e->dest[BV_SYNTH_TRAY];
    float px = (float)pl->pos[0], py = (float)pl->pos[1];
    add(l, &e->cyl,
        bv_render_xform_trs((float[3]){px, py, 0.5f * SYN_PLATE_TOP}, 0, 2 * SYN_PLATE_R, 2 * SYN_PLATE_R,
                            SYN_PLATE_TOP),
        k_plate, ID_PLATE);
    add(l, &e->disc,
        bv_render_xform_trs((float[3]){px, py, PLATE_DISC_Z}, 0, 1.4f * SYN_PLATE_R, 1.4f * SYN_PLATE_R, 1), k_plate_in,
        ID_PLATE);
    float tx = (float)tr->pos[0], ty = (float)tr->pos[1], th = SYN_TRAY_HALF, rw = SYN_TRAY_RIM_W;
    add(l, &e->box, bv_render_xform_trs((float[3]){tx, ty, 0.5f * SYN_TRAY_FLOOR}, 0, 2 * th, 2 * th, SYN_TRAY_FLOOR),
        k_tray, ID_TRAY);
    for (int k = 0; k < 4; k++) {
        float sgn = (k & 1) ? 1.f : -1.f;
        float cx = (k & 2) ? tx + sgn * (th - 0.5f * rw) : tx, cy = (k & 2) ? ty : ty + sgn * (th - 0.5f * rw);
        float sx = (k & 2) ? rw : 2 * th, sy = (k & 2) ? 2 * th : rw;
        add(l, &e->box, bv_render_xform_trs((float[3]){cx, cy, 0.5f * SYN_TRAY_RIM}, 0, sx, sy, SYN_TRAY_RIM),
            k_tray_rim, ID_TRAY);
    }
}

static void scene_objects(const bv_synth_env *e, item_list *l) {
    for (int i = 0; i < e->n_obj; i++) {
        const syn_object *o = &e->obj[i];
        float p[3] = {(float)o->pos[0], (float)o->pos[1], (float)o->pos[2]};
        const bv_render_mesh *m = o->shape == BV_SYNTH_CUBE       ? &e->box
                                  : o->shape == BV_SYNTH_CYLINDER ? &e->cyl
                                                                  : &e->ball;
        add(l, m,
            bv_render_xform_trs(p, (float)o->yaw, (float)(2 * o->half[0]), (float)(2 * o->half[1]),
                                (float)(2 * o->half[2])),
            k_colour_rgb[o->colour], ID_OBJ0 + i);
    }
}

/* The gripper: flange, palm, two fingers (local frame: x along the fingers' travel, z pointing). */
static void scene_hand(const bv_synth_env *e, item_list *l) {
    double R[9];
    syn_qmat(e->quat, R);
    const double fz = 0.5 * (SYN_FINGER_TIP - SYN_FINGER_BASE), fx = e->grip + 0.5 * SYN_FINGER_THICK;
    const struct {
        double c[3], size[3];
        const float *rgb;
        const bv_render_mesh *m;
    } parts[4] = {
        {{0, 0, -0.12}, {0.07, 0.07, 0.04}, k_dark, &e->cyl},
        {{0, 0, -0.5 * (SYN_PALM_TOP + SYN_FINGER_BASE)},
         {SYN_PALM_X, SYN_PALM_Y, SYN_PALM_TOP - SYN_FINGER_BASE},
         k_palm,
         &e->box},
        {{fx, 0, fz}, {SYN_FINGER_THICK, SYN_FINGER_WIDTH, SYN_FINGER_TIP + SYN_FINGER_BASE}, k_finger, &e->box},
        {{-fx, 0, fz}, {SYN_FINGER_THICK, SYN_FINGER_WIDTH, SYN_FINGER_TIP + SYN_FINGER_BASE}, k_finger, &e->box},
    };
    for (int k = 0; k < 4; k++) {
        float p[3];
        for (int r = 0; r < 3; r++)
            p[r] = (float)(e->ee[r] + R[3 * r] * parts[k].c[0] + R[3 * r + 1] * parts[k].c[1] +
                           R[3 * r + 2] * parts[k].c[2]);
        add(l, parts[k].m,
            bv_render_xform_rs(p, R, (float)parts[k].size[0], (float)parts[k].size[1], (float)parts[k].size[2]),
            parts[k].rgb, ID_GRIPPER);
    }
}

/* The arm: pedestal, shoulder column, upper arm, forearm, wrist, with dark joints. */
static void scene_arm(const bv_synth_env *e, item_list *l) {
    double R[9], Sd[3], Ed[3], Wd[3], qj[7];
    syn_qmat(e->quat, R);
    arm_pose(e, Sd, Ed, Wd, qj);
    float Sh[3] = {(float)Sd[0], (float)Sd[1], (float)Sd[2]}, El[3] = {(float)Ed[0], (float)Ed[1], (float)Ed[2]};
    float Wr[3] = {(float)Wd[0], (float)Wd[1], (float)Wd[2]}, Fl[3];
    for (int r = 0; r < 3; r++) Fl[r] = (float)(e->ee[r] - R[3 * r + 2] * 0.14);
    add(l, &e->cyl, bv_render_xform_trs((float[3]){SYN_BASE_X, SYN_BASE_Y, 0.03f}, 0, 0.2f, 0.2f, 0.06f), k_dark,
        ID_ARM);
    add(l, &e->cyl,
        bv_render_xform_trs((float[3]){SYN_BASE_X, SYN_BASE_Y, 0.5f * (0.06f + Sh[2])}, 0, 0.12f, 0.12f, Sh[2] - 0.06f),
        k_white, ID_ARM);
    add(l, &e->box, bv_render_xform_segment(Sh, El, 0.085f, 0.085f), k_white, ID_ARM);
    add(l, &e->box, bv_render_xform_segment(El, Wr, 0.075f, 0.075f), k_white, ID_ARM);
    add(l, &e->box, bv_render_xform_segment(Wr, Fl, 0.065f, 0.065f), k_white, ID_ARM);
    const float *joints[3] = {Sh, El, Wr};
    for (int k = 0; k < 3; k++)
        add(l, &e->ball, bv_render_xform_trs(joints[k], 0, 0.11f, 0.11f, 0.11f), k_dark, ID_ARM);
}

/* Can the shadow of a unit primitive drawn with xf fall on the plane z = h within the square of
 * half-size `half` around (cx, cy)? (A cheap bound: the primitive's box swept along the light.) */
static int shadow_reaches(const bv_render_light *light, const bv_render_xform *xf, float h, double cx, double cy,
                          double half) {
    float lo[3], hi[3];
    for (int r = 0; r < 3; r++) { /* box of the transformed unit cube */
        float ext = 0.5f * (fabsf(xf->m[4 * r]) + fabsf(xf->m[4 * r + 1]) + fabsf(xf->m[4 * r + 2]));
        lo[r] = xf->m[4 * r + 3] - ext, hi[r] = xf->m[4 * r + 3] + ext;
    }
    if (hi[2] <= h) return 0;
    float reach = (hi[2] - h) / light->dir[2];
    for (int k = 0; k < 2; k++) {
        float d = -reach * light->dir[k];
        if (d < 0) lo[k] += d;
        else hi[k] += d;
    }
    return hi[0] >= cx - half && lo[0] <= cx + half && hi[1] >= cy - half && lo[1] <= cy + half;
}

static void draw_items(bv_render_target *t, const bv_render_camera *cam, const bv_render_light *light,
                       const item_list *l) {
    for (int k = 0; k < l->n; k++) {
        t->id = (uint8_t)l->it[k].id;
        bv_render_draw(t, cam, light, l->it[k].m, &l->it[k].xf, l->it[k].rgb);
    }
}

static void camera_for(const bv_synth_env *e, bv_synth_camera which, bv_render_camera *cam) {
    const int S = e->cfg.image_size;
    if (which == BV_SYNTH_CAM_AGENT) {
        const float eye[3] = {0.0f, -0.60f, 0.52f}, at[3] = {0.0f, -0.02f, 0.03f}, up[3] = {0, 0, 1};
        bv_render_camera_look_at(cam, eye, at, up, 0.78f, S, S, 0.05f);
        return;
    }
    /* on the hand, on the robot's side of the palm, tilted to look down past the fingers */
    double R[9];
    syn_qmat(e->quat, R);
    const double tilt = 0.35, off[3] = {0.0, -0.06, -0.06};
    const double fl[3] = {0, sin(tilt), cos(tilt)}, ul[3] = {0, -cos(tilt), sin(tilt)};
    float eye[3], fwd[3], up[3];
    for (int r = 0; r < 3; r++) {
        eye[r] = (float)(e->ee[r] + R[3 * r] * off[0] + R[3 * r + 1] * off[1] + R[3 * r + 2] * off[2]);
        fwd[r] = (float)(R[3 * r] * fl[0] + R[3 * r + 1] * fl[1] + R[3 * r + 2] * fl[2]);
        up[r] = (float)(R[3 * r] * ul[0] + R[3 * r + 1] * ul[1] + R[3 * r + 2] * ul[2]);
    }
    bv_render_camera_basis(cam, eye, fwd, up, 1.2f, S, S, 0.01f);
}

void bv_synth_env_render(bv_synth_env *e, bv_synth_camera which, uint8_t *rgb) {
    const int S = e->cfg.image_size;
    const bv_render_light light = scene_light();
    bv_render_camera cam;
    camera_for(e, which, &cam);
    bv_render_target t = {.w = S, .h = S, .rgb = rgb, .invz = e->invz, .ids = e->ids, .shadowed = e->shadowed};
    const float wall_top[3] = {0.80f, 0.82f, 0.85f}, wall_bottom[3] = {0.62f, 0.63f, 0.66f};
    item_list fixed = {.n = 0}, objs = {.n = 0}, hand = {.n = 0}, arm = {.n = 0};
    scene_fixed(e, &fixed);
    scene_objects(e, &objs);
    scene_hand(e, &hand);
    scene_arm(e, &arm);
    const size_t npx = (size_t)S * S;
    if (which == BV_SYNTH_CAM_AGENT) {
        if (!e->bg_valid) {
            bv_render_target bg = {.w = S, .h = S, .rgb = e->bg_rgb, .invz = e->bg_invz, .ids = e->bg_ids};
            bv_render_clear(&bg, wall_top, wall_bottom);
            memset(e->bg_ids, ID_NONE, npx);
            draw_items(&bg, &cam, &light, &fixed);
            e->bg_valid = 1;
        }
        memcpy(rgb, e->bg_rgb, npx * 3);
        memcpy(e->invz, e->bg_invz, npx * sizeof(float));
        memcpy(e->ids, e->bg_ids, npx);
        memset(e->shadowed, 0, npx);
    } else {
        bv_render_clear(&t, wall_top, wall_bottom);
        memset(e->ids, ID_NONE, npx);
    }
    draw_items(&t, &cam, &light, &objs);
    draw_items(&t, &cam, &light, &hand);
    draw_items(&t, &cam, &light, &arm);
    if (which != BV_SYNTH_CAM_AGENT) draw_items(&t, &cam, &light, &fixed);

    /* shadows of the objects and the hand on the flat surfaces: table, plate, tray floor and rims,
     * and (the hand's and a held object's) on the tops of cubes and cylinders */
    const syn_dest *pl = &e->dest[BV_SYNTH_PLATE], *tr = &e->dest[BV_SYNTH_TRAY];
    struct {
        float h;
        int id;
        double cx, cy, half; /* extent of the receiving surface */
    } planes[5 + SYN_MAX_OBJECTS] = {
        {0.0f, ID_TABLE, 0, 0, 10},
        {SYN_PLATE_TOP, ID_PLATE, pl->pos[0], pl->pos[1], SYN_PLATE_R},
        {PLATE_DISC_Z, ID_PLATE, pl->pos[0], pl->pos[1], SYN_PLATE_R},
        {SYN_TRAY_FLOOR, ID_TRAY, tr->pos[0], tr->pos[1], SYN_TRAY_HALF},
        {SYN_TRAY_RIM, ID_TRAY, tr->pos[0], tr->pos[1], SYN_TRAY_HALF},
    };
    int n_planes = 5, first_top = 5;
    for (int i = 0; i < e->n_obj; i++) {
        const syn_object *o = &e->obj[i];
        if (i == e->held || o->shape == BV_SYNTH_BALL) continue;
        planes[n_planes].h = (float)(o->pos[2] + o->half[2]);
        planes[n_planes].id = ID_OBJ0 + i;
        planes[n_planes].cx = o->pos[0], planes[n_planes].cy = o->pos[1];
        planes[n_planes++].half = obj_radius(o);
    }
    for (int p = 0; p < n_planes; p++) {
        /* flat surfaces take the shadows of the objects and the hand; tops of objects only those of
         * the hand and what it holds */
        for (int k = 0; k < objs.n + hand.n; k++) {
            const item *it = k < objs.n ? &objs.it[k] : &hand.it[k - objs.n];
            if (p >= first_top && k < objs.n && k != e->held) continue;
            if (!shadow_reaches(&light, &it->xf, planes[p].h, planes[p].cx, planes[p].cy, planes[p].half)) continue;
            float rect[4] = {(float)(planes[p].cx - planes[p].half), (float)(planes[p].cy - planes[p].half),
                             (float)(planes[p].cx + planes[p].half), (float)(planes[p].cy + planes[p].half)};
            bv_render_shadow_plane(&t, &cam, &light, planes[p].h, p == 0 ? NULL : rect, (uint8_t)planes[p].id,
                                   SHADOW_FACTOR, it->m, &it->xf);
        }
    }
}
