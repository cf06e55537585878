/* synth_expert.c - the scripted expert of the tabletop task (see synth_env.h).
 *
 * A phase machine over the true scene: approach (above the target, heading aligned with a cube's
 * faces), descend, grasp, lift, move (above the destination), place, release. Each phase steers
 * the end-effector toward a goal with a proportional step capped at a per-episode speed, and adds
 * Gaussian noise to the arm dimensions, so the recorded actions look like teleoperation rather
 * than a straight line. A grasp that does not close on the target, or an object released off the
 * destination, sends it back to a back-off phase and then to approach.
 */
#include <math.h>
#include <string.h>

#include "data/synth_env_impl.h"

enum { PH_APPROACH, PH_DESCEND, PH_GRASP, PH_LIFT, PH_MOVE, PH_PLACE, PH_RELEASE, PH_BACKOFF };
static const char *const k_phase_names[] = {"approach", "descend", "grasp",   "lift",
                                            "move",     "place",   "release", "back-off"};

void bv_synth_expert_init(bv_synth_expert *ex, uint64_t seed, float noise) {
    memset(ex, 0, sizeof *ex);
    ex->rng = seed ^ 0xE8E27E8E27E8E27Eull;
    syn_rng_u64(&ex->rng);
    ex->noise = noise;
    ex->phase = PH_APPROACH;
    ex->speed = syn_rng_range(&ex->rng, 0.6, 0.95);
    ex->hover_dz = syn_rng_range(&ex->rng, 0.06, 0.10);
    ex->carry_z = syn_rng_range(&ex->rng, 0.15, 0.20);
    ex->place_off[0] = syn_rng_range(&ex->rng, -0.015, 0.015);
    ex->place_off[1] = syn_rng_range(&ex->rng, -0.015, 0.015);
}

const char *bv_synth_expert_phase(const bv_synth_expert *ex) { return k_phase_names[ex->phase]; }

static void set_phase(bv_synth_expert *ex, int ph) {
    ex->phase = ph;
    ex->phase_steps = 0;
}

/* Heading that lines the fingers up with a cube's faces (nearest to the current heading), or the
 * current heading for round objects. */
static double grasp_yaw(const bv_synth_env *e, const syn_object *o) {
    double cur = syn_ee_yaw(e);
    if (o->shape != BV_SYNTH_CUBE) return cur;
    double d = syn_wrap(o->yaw - cur);
    double k = round(d / (M_PI / 2));
    return syn_wrap(cur + d - k * (M_PI / 2));
}

void bv_synth_expert_act(bv_synth_expert *ex, const bv_synth_env *e, float action[BV_SYNTH_ACTION_DIM]) {
    const syn_object *o = &e->obj[e->target];
    const syn_dest *d = &e->dest[e->task.dest];
    const double top = o->pos[2] + o->half[2], bottom = o->pos[2] - o->half[2];
    const double grasp_z = fmax(o->pos[2], 0.012);
    const bool held = e->held == e->target;
    double goal[3] = {e->ee[0], e->ee[1], e->ee[2]}, grip = 1.0;
    if (!ex->yaw_set) {
        ex->yaw_goal = syn_ee_yaw(e);
        ex->yaw_set = 1;
    }

    /* transitions, evaluated on the current state; a phase may hand over to the next at once */
    for (int guard = 0; guard < 4; guard++) {
        int ph = ex->phase;
        double exy = hypot(o->pos[0] - e->ee[0], o->pos[1] - e->ee[1]);
        double eyaw = fabs(syn_wrap(ex->yaw_goal - syn_ee_yaw(e)));
        switch (ph) {
        case PH_APPROACH:
            ex->yaw_goal = grasp_yaw(e, o);
            if (e->held >= 0) set_phase(ex, PH_BACKOFF); /* holding something else */
            else if (exy < 0.006 && fabs(e->ee[2] - (top + ex->hover_dz)) < 0.015 && eyaw < 0.04)
                set_phase(ex, PH_DESCEND);
            break;
        case PH_DESCEND:
            ex->yaw_goal = grasp_yaw(e, o);
            if (exy > 0.02) set_phase(ex, PH_APPROACH);
            else if (exy < 0.004 && fabs(e->ee[2] - grasp_z) < 0.004 && eyaw < 0.04) set_phase(ex, PH_GRASP);
            break;
        case PH_GRASP:
            if (held && e->grip <= syn_half_width(o, syn_ee_yaw(e)) + 1e-9 && ex->phase_steps >= 3)
                set_phase(ex, PH_LIFT);
            else if (!held && ex->phase_steps > 10) set_phase(ex, PH_BACKOFF);
            break;
        case PH_LIFT:
            if (!held) set_phase(ex, PH_BACKOFF);
            else if (e->ee[2] > ex->carry_z - 0.02) set_phase(ex, PH_MOVE);
            break;
        case PH_MOVE:
            if (!held) set_phase(ex, PH_BACKOFF);
            else if (hypot(d->pos[0] + ex->place_off[0] - o->pos[0], d->pos[1] + ex->place_off[1] - o->pos[1]) < 0.008)
                set_phase(ex, PH_PLACE);
            break;
        case PH_PLACE:
            if (!held) set_phase(ex, PH_BACKOFF);
            else if (fabs(bottom - (d->top + 0.006)) < 0.003) set_phase(ex, PH_RELEASE);
            break;
        case PH_RELEASE:
            /* released and landed but not a success (fell off): try again */
            if (!held && o->vz == 0 && !bv_synth_env_success(e) && ex->phase_steps > 2) set_phase(ex, PH_BACKOFF);
            break;
        case PH_BACKOFF:
            if (e->held < 0 && e->grip >= SYN_GRIP_MAX - 1e-9 && e->ee[2] > 0.13) {
                ex->attempts++;
                set_phase(ex, PH_APPROACH);
            }
            break;
        }
        if (ex->phase == ph) break;
    }

    switch (ex->phase) {
    case PH_APPROACH:
        goal[0] = o->pos[0], goal[1] = o->pos[1], goal[2] = top + ex->hover_dz;
        grip = -1;
        break;
    case PH_DESCEND:
        goal[0] = o->pos[0], goal[1] = o->pos[1], goal[2] = grasp_z;
        grip = -1;
        break;
    case PH_GRASP:
        goal[0] = o->pos[0], goal[1] = o->pos[1], goal[2] = grasp_z;
        grip = 1;
        break;
    case PH_LIFT: goal[2] = ex->carry_z; break;
    case PH_MOVE:
        /* steer the object (not the hand) over the destination */
        goal[0] = e->ee[0] + d->pos[0] + ex->place_off[0] - o->pos[0];
        goal[1] = e->ee[1] + d->pos[1] + ex->place_off[1] - o->pos[1];
        goal[2] = ex->carry_z;
        break;
    case PH_PLACE:
        goal[0] = e->ee[0] + d->pos[0] + ex->place_off[0] - o->pos[0];
        goal[1] = e->ee[1] + d->pos[1] + ex->place_off[1] - o->pos[1];
        goal[2] = e->ee[2] + d->top + 0.006 - bottom;
        break;
    case PH_RELEASE: grip = -1; break;
    case PH_BACKOFF:
        goal[2] = 0.15;
        grip = -1;
        break;
    }
    ex->phase_steps++;

    const bv_synth_config *c = &e->cfg;
    /* translation: proportional step, capped at the episode's speed */
    double step[3], n = 0;
    for (int k = 0; k < 3; k++) {
        step[k] = 0.5 * (goal[k] - e->ee[k]) / c->pos_scale;
        n += step[k] * step[k];
    }
    n = sqrt(n);
    if (n > ex->speed)
        for (int k = 0; k < 3; k++) step[k] *= ex->speed / n;
    /* rotation toward the gripper pointing down at heading yaw_goal (world-frame axis-angle) */
    double qg[4], qinv[4] = {e->quat[0], -e->quat[1], -e->quat[2], -e->quat[3]}, qe[4], w[3];
    syn_qdown(ex->yaw_goal, qg);
    syn_qmul(qg, qinv, qe);
    if (qe[0] < 0)
        for (int k = 0; k < 4; k++) qe[k] = -qe[k];
    syn_qlog(qe, w);
    double rn = 0;
    for (int k = 0; k < 3; k++) {
        w[k] = 0.5 * w[k] / c->rot_scale;
        rn += w[k] * w[k];
    }
    rn = sqrt(rn);
    if (rn > ex->speed)
        for (int k = 0; k < 3; k++) w[k] *= ex->speed / rn;
    for (int k = 0; k < 3; k++) {
        double a = step[k] + ex->noise * syn_rng_normal(&ex->rng);
        double r = w[k] + 0.5 * ex->noise * syn_rng_normal(&ex->rng);
        action[k] = (float)fmax(-1.0, fmin(1.0, a));
        action[3 + k] = (float)fmax(-1.0, fmin(1.0, r));
    }
    action[6] = (float)grip;
}
