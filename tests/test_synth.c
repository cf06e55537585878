/* Tests of the built-in tabletop task: the rasterizer (data/render.h), the env and its expert
 * (data/synth_env.h) and the RLDS writer (data/synth.h), end to end through `bitvla synth`.
 *
 *  - rasterizer: coverage of a shared edge exactly once, depth order, near-plane clipping;
 *  - instruction and scene: the target is the only object with the named colour and shape, and
 *    both a same-colour and a same-shape distractor are present, for every task;
 *  - the expert solves (nearly) every scene: success rate over many seeds, printed;
 *  - cameras: the two images differ, the third-person view shows the target's colour, and the
 *    wrist view shows it between the fingers while descending onto it;
 *  - determinism: same options -> identical files, whatever the thread count;
 *  - the written dataset reads back through the RLDS reader with LIBERO's schema, and replaying
 *    its actions in the env from the recorded scene seed reproduces the recorded states bit for
 *    bit, reaches success at the last step, and re-renders the recorded JPEG frames;
 *  - the dataset goes through the real conversion path (`bitvla convert rlds --schema libero`);
 *  - errors: bad options (library and command line) are refused with messages naming them, each
 *    starting with "bitvla synth: "; --shards 0 is automatic; an existing dataset needs --force;
 *  - a run killed while writing leaves no output directory, and the next run removes its temporary.
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/convert.h"
#include "data/example.h"
#include "data/image.h"
#include "data/render.h"
#include "data/rlds.h"
#include "data/shards.h"
#include "data/synth.h"
#include "data/synth_env.h"
#include "data/tfrecord.h"
#include "tests/util/testutil.h"

/* A fresh empty directory under /tmp (static buffer per slot). */
static const char *tmp_dir(int slot) {
    static char buf[4][256];
    snprintf(buf[slot], sizeof buf[slot], "/tmp/bv_test_synth_%d_%d", (int)getpid(), slot);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", buf[slot]);
    if (system(cmd) != 0) fail_msg("cannot clear %s", buf[slot]);
    return buf[slot];
}

static void rm_dir(const char *d) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", d);
    if (system(cmd) != 0) fail_msg("cannot remove %s", d);
}

static uint8_t *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *d = bv_xmalloc((size_t)len + 1);
    if (fread(d, 1, (size_t)len, f) != (size_t)len) fail_msg("cannot read %s", path);
    fclose(f);
    *n = (size_t)len;
    return d;
}

/* ---- rasterizer ---- */

static void test_render_coverage_and_depth(void **state) {
    (void)state;
    const int W = 37, H = 29;
    bv_render_target t;
    bv_render_target_init(&t, W, H);
    uint8_t *ids = bv_xcalloc((size_t)W * H, 1);
    t.ids = ids;
    const float black[3] = {0, 0, 0};
    bv_render_clear(&t, black, black);
    bv_render_camera c;
    const float eye[3] = {0, -2, 0}, at[3] = {0, 0, 0}, up[3] = {0, 0, 1};
    bv_render_camera_look_at(&c, eye, at, up, 1.0f, W, H, 0.01f);
    bv_render_light light = {{0, -1, 0}, 0.5f, 0.5f};
    bv_render_mesh box;
    bv_render_mesh_box(&box);
    assert_int_equal(box.nt, 12);
    /* a unit box facing the camera: its front face (two triangles sharing a diagonal) must cover
     * a connected block once, lit fully (normal toward the light) */
    const float white[3] = {1, 1, 1}, red[3] = {1, 0, 0};
    bv_render_xform xf = bv_render_xform_trs((float[3]){0, 0, 0}, 0, 1, 1, 1);
    t.id = 1;
    bv_render_draw(&t, &c, &light, &box, &xf, white);
    int covered = 0;
    for (int p = 0; p < W * H; p++) covered += ids[p] == 1;
    /* front face at depth 1.5: half-size 0.5 -> 0.5/1.5*f pixels */
    double half = 0.5 / 1.5 * c.f, want = 4 * half * half;
    if (fabs(covered - want) > 4 * 2 * half + 4) fail_msg("box covers %d pixels, expected about %.1f", covered, want);
    size_t centre = (size_t)(H / 2) * W + W / 2;
    assert_int_equal(t.rgb[3 * centre], 255);
    assert_true(fabsf(1.0f / t.invz[centre] - 1.5f) < 1e-4f);
    /* a red box behind it is hidden at the centre; in front of it, it wins */
    bv_render_xform behind = bv_render_xform_trs((float[3]){0, 1.0f, 0}, 0, 0.5f, 0.5f, 0.5f);
    t.id = 2;
    bv_render_draw(&t, &c, &light, &box, &behind, red);
    assert_int_equal(ids[centre], 1);
    bv_render_xform front = bv_render_xform_trs((float[3]){0, -1.0f, 0}, 0, 0.2f, 0.2f, 0.2f);
    bv_render_draw(&t, &c, &light, &box, &front, red);
    assert_int_equal(ids[centre], 2);
    assert_int_equal(t.rgb[3 * centre + 1], 0);
    /* a box around the camera: clipped at the near plane, its inside faces are culled (no crash,
     * nothing drawn over the scene) */
    bv_render_xform around = bv_render_xform_trs(eye, 0.3f, 3, 3, 3);
    t.id = 3;
    bv_render_draw(&t, &c, &light, &box, &around, red);
    for (int p = 0; p < W * H; p++)
        if (ids[p] == 3) fail_msg("pixel %d drawn by a box whose faces all face away", p);
    /* a large quad crossing the near plane is clipped, not wrapped around */
    bv_render_mesh disc;
    bv_render_mesh_disc(&disc, 16);
    bv_render_xform floor = bv_render_xform_trs((float[3]){0, -2, -0.3f}, 0, 20, 20, 1);
    t.id = 4;
    bv_render_draw(&t, &c, &light, &disc, &floor, white);
    int floor_px = 0, floor_top = 0;
    for (int j = 0; j < H; j++)
        for (int i = 0; i < W; i++)
            if (ids[j * W + i] == 4) floor_px++, floor_top += j < H / 2;
    if (floor_px == 0 || floor_top)
        fail_msg("floor below the eye: %d pixels, %d in the upper half", floor_px, floor_top);
    /* unproject inverts project */
    float p[3] = {0.1f, 0.3f, -0.2f}, px, py, d, q[3];
    assert_true(bv_render_project(&c, p, &px, &py, &d));
    bv_render_unproject(&c, (int)px, (int)py, 1.0f / d, q); /* the pixel's centre, at p's depth */
    float err = sqrtf((q[0] - p[0]) * (q[0] - p[0]) + (q[1] - p[1]) * (q[1] - p[1]) + (q[2] - p[2]) * (q[2] - p[2]));
    if (err > 2.0f * d / c.f) fail_msg("unproject: %g m off (pixel size %g m)", (double)err, (double)(d / c.f));
    bv_render_mesh_free(&box);
    bv_render_mesh_free(&disc);
    free(ids);
    bv_render_target_free(&t);
}

/* ---- scene and instruction ---- */

static void test_instruction_and_target(void **state) {
    (void)state;
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = 32;
    bv_synth_env *env;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
    assert_int_equal(bv_synth_num_tasks(), 24);
    int seen_dest[BV_SYNTH_N_DESTS] = {0};
    for (int task = 0; task < bv_synth_num_tasks(); task++) {
        bv_synth_task tk = bv_synth_task_get(task);
        seen_dest[tk.dest]++;
        char want[128];
        bv_synth_task_instruction(tk, want, sizeof want);
        bv_test_expect_in(want, bv_synth_colour_name(tk.colour));
        bv_test_expect_in(want, bv_synth_shape_name(tk.shape));
        bv_test_expect_in(want, bv_synth_dest_name(tk.dest));
        for (uint64_t seed = 0; seed < 8; seed++) {
            assert_int_equal(bv_synth_env_reset(env, seed * 1000 + task, task), BV_OK);
            assert_string_equal(bv_synth_env_instruction(env), want);
            assert_int_equal(bv_synth_env_task_id(env), task);
            int n = bv_synth_env_num_objects(env), tgt = bv_synth_env_target(env);
            assert_true(n >= 3 && n <= 6);
            int both = 0, same_colour = 0, same_shape = 0;
            for (int i = 0; i < n; i++) {
                bv_synth_colour c;
                bv_synth_shape s;
                bool held;
                float pos[3];
                bv_synth_env_object(env, i, &c, &s, pos, &held);
                assert_false(held);
                if (c == tk.colour && s == tk.shape) {
                    both++;
                    assert_int_equal(i, tgt);
                }
                same_colour += c == tk.colour && s != tk.shape;
                same_shape += s == tk.shape && c != tk.colour;
                for (int j = 0; j < i; j++) { /* no two objects share both colour and shape */
                    bv_synth_colour c2;
                    bv_synth_shape s2;
                    bv_synth_env_object(env, j, &c2, &s2, NULL, NULL);
                    if (c2 == c && s2 == s)
                        fail_msg("task %d seed %llu: objects %d and %d are both %s %s", task, (unsigned long long)seed,
                                 i, j, bv_synth_colour_name(c), bv_synth_shape_name(s));
                }
            }
            if (both != 1 || same_colour < 1 || same_shape < 1)
                fail_msg("task %d: %d objects match, %d share only the colour, %d only the shape (want 1, >=1, >=1)",
                         task, both, same_colour, same_shape);
            assert_false(bv_synth_env_success(env));
        }
    }
    assert_int_equal(seen_dest[BV_SYNTH_PLATE], 12);
    assert_int_equal(seen_dest[BV_SYNTH_TRAY], 12);
    /* task drawn from the seed, and an out-of-range task refused */
    assert_int_equal(bv_synth_env_reset(env, 5, -1), BV_OK);
    assert_true(bv_synth_env_task_id(env) >= 0 && bv_synth_env_task_id(env) < 24);
    assert_int_equal(bv_synth_env_reset(env, 5, 24), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "task id 24");
    bv_synth_env_free(env);
}

/* The easier scenes: the target is the only object of its colour, a same-shape distractor stays,
 * no two objects share colour and shape, and the scripted expert still succeeds. */
static void test_unique_colour_scenes(void **state) {
    (void)state;
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = 32;
    cfg.unique_colour = true;
    bv_synth_env *env;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
    int wins = 0, runs = 0;
    for (int task = 0; task < bv_synth_num_tasks(); task++) {
        bv_synth_task tk = bv_synth_task_get(task);
        for (uint64_t seed = 0; seed < 8; seed++) {
            assert_int_equal(bv_synth_env_reset(env, seed * 1000 + task, task), BV_OK);
            int n = bv_synth_env_num_objects(env), tgt = bv_synth_env_target(env), same_shape = 0;
            assert_true(n >= 3 && n <= 6);
            for (int i = 0; i < n; i++) {
                bv_synth_colour c;
                bv_synth_shape s;
                bv_synth_env_object(env, i, &c, &s, NULL, NULL);
                if (c == tk.colour && i != tgt)
                    fail_msg("task %d seed %llu: object %d is %s %s, the target's colour", task,
                             (unsigned long long)seed, i, bv_synth_colour_name(c), bv_synth_shape_name(s));
                same_shape += s == tk.shape && i != tgt;
                for (int j = 0; j < i; j++) {
                    bv_synth_colour c2;
                    bv_synth_shape s2;
                    bv_synth_env_object(env, j, &c2, &s2, NULL, NULL);
                    if (c2 == c && s2 == s) fail_msg("task %d seed %llu: objects %d and %d alike", task, (unsigned long long)seed, i, j);
                }
            }
            assert_true(same_shape >= 1);
            if (seed == 0) { /* one episode per task with the expert */
                bv_synth_expert ex;
                bv_synth_expert_init(&ex, seed + 17, 0.05f);
                float a[BV_SYNTH_ACTION_DIM];
                while (!bv_synth_env_done(env)) {
                    bv_synth_expert_act(&ex, env, a);
                    bv_synth_env_step(env, a);
                }
                wins += bv_synth_env_success(env);
                runs++;
            }
        }
    }
    if (wins < runs - 1) fail_msg("the expert succeeded in %d of %d easier scenes", wins, runs);
    /* the default scenes are unchanged by the option's existence: the same seed, the same layout */
    bv_synth_config d;
    bv_synth_config_default(&d);
    assert_false(d.unique_colour);
    bv_synth_env_free(env);
}

/* ---- the expert ---- */

static void test_expert_success_rate(void **state) {
    (void)state;
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    bv_synth_env *env;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
    const int n = 200;
    int ok = 0, steps = 0, min_t = 1 << 30, max_t = 0;
    for (int i = 0; i < n; i++) {
        bv_synth_episode ep;
        uint64_t seed = bv_synth_episode_seed(12345, i, 0);
        assert_int_equal(bv_synth_episode_record(env, seed, i % bv_synth_num_tasks(), 0.05f, 0, &ep), BV_OK);
        ok += ep.success;
        if (ep.success) {
            steps += ep.T;
            min_t = BV_MIN(min_t, ep.T);
            max_t = BV_MAX(max_t, ep.T);
            /* recorded actions are LIBERO-style: arm dims in [-1, 1], gripper exactly +-1 */
            for (int t = 0; t < ep.T; t++) {
                const float *a = ep.action + 7 * t;
                for (int k = 0; k < 6; k++) assert_true(a[k] >= -1.0f && a[k] <= 1.0f);
                assert_true(a[6] == 1.0f || a[6] == -1.0f);
            }
            assert_true(ep.action[6] == -1.0f);                  /* starts open */
            assert_true(ep.action[7 * (ep.T - 1) + 6] == -1.0f); /* ends releasing */
        }
        bv_synth_episode_free(&ep);
    }
    print_message("expert: %d/%d scenes solved (%.1f%%), %.1f steps on average (%d..%d)\n", ok, n, 100.0 * ok / n,
                  ok ? (double)steps / ok : 0.0, min_t, max_t);
    if (ok < n * 99 / 100) fail_msg("expert solved only %d of %d scenes", ok, n);
    /* the same seed gives the same episode; a different noise seed a different one */
    bv_synth_episode a, b;
    assert_int_equal(bv_synth_episode_record(env, 77, 3, 0.05f, 0, &a), BV_OK);
    assert_int_equal(bv_synth_episode_record(env, 77, 3, 0.05f, 0, &b), BV_OK);
    assert_int_equal(a.T, b.T);
    assert_memory_equal(a.action, b.action, (size_t)a.T * 7 * sizeof(float));
    assert_memory_equal(a.state, b.state, (size_t)a.T * 8 * sizeof(float));
    bv_synth_episode_free(&b);
    assert_int_equal(bv_synth_episode_record(env, 78, 3, 0.05f, 0, &b), BV_OK);
    assert_true(a.T != b.T || memcmp(a.action, b.action, (size_t)a.T * 7 * sizeof(float)) != 0);
    bv_synth_episode_free(&a);
    bv_synth_episode_free(&b);
    bv_synth_env_free(env);
}

/* Actions the env must survive: NaN counts as 0, out-of-range values are clipped. */
static void test_env_action_handling(void **state) {
    (void)state;
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = 32;
    bv_synth_env *e1, *e2;
    assert_int_equal(bv_synth_env_init(&e1, &cfg), BV_OK);
    assert_int_equal(bv_synth_env_init(&e2, &cfg), BV_OK);
    bv_synth_env_reset(e1, 9, 0);
    bv_synth_env_reset(e2, 9, 0);
    const float wild[7] = {NAN, 5.0f, -7.0f, INFINITY, -INFINITY, NAN, NAN};
    const float tame[7] = {0.0f, 1.0f, -1.0f, 1.0f, -1.0f, 0.0f, 0.0f};
    for (int t = 0; t < 20; t++) {
        bv_synth_env_step(e1, wild);
        bv_synth_env_step(e2, tame);
    }
    bv_synth_obs o1 = {0}, o2 = {0};
    bv_synth_env_observe(e1, &o1);
    bv_synth_env_observe(e2, &o2);
    assert_memory_equal(o1.state, o2.state, sizeof o1.state);
    for (int k = 0; k < 8; k++) assert_true(isfinite(o1.state[k]));
    for (int k = 0; k < 7; k++) assert_true(isfinite(o1.joint_state[k]));
    /* the fingertips never go through the table */
    const float down[7] = {0, 0, -1, 0, 0, 0, -1};
    for (int t = 0; t < 100; t++) bv_synth_env_step(e1, down);
    bv_synth_env_observe(e1, &o1);
    assert_true(o1.state[2] >= 0.0f);
    assert_int_equal(bv_synth_env_num_steps(e1), 120);
    bv_synth_env_free(e1);
    bv_synth_env_free(e2);
}

/* ---- cameras ---- */

/* Pixels whose colour reads as `c` (object colours shaded by light and shadow; the table, plate,
 * tray and robot never do). */
static int is_colour(const uint8_t *p, bv_synth_colour c) {
    int r = p[0], g = p[1], b = p[2];
    switch (c) {
    case BV_SYNTH_RED: return r > 60 && r > 3 * g && r > 3 * b;
    case BV_SYNTH_GREEN: return g > 50 && g > 2 * r && g > 2 * b;
    case BV_SYNTH_BLUE: return b > 60 && b > 3 * r && b > 2 * g;
    default: return r > 90 && g > 70 && b * 4 < g && g * 10 > r * 7;
    }
}

static int count_colour(const uint8_t *img, int S, bv_synth_colour c, int j0, int j1, int i0, int i1) {
    int n = 0;
    for (int j = j0; j < j1; j++)
        for (int i = i0; i < i1; i++) n += is_colour(img + 3 * ((size_t)j * S + i), c);
    return n;
}

static void test_cameras(void **state) {
    (void)state;
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    const int S = cfg.image_size;
    assert_int_equal(S, 256);
    bv_synth_env *env;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
    uint8_t *a = bv_xmalloc((size_t)S * S * 3), *w = bv_xmalloc((size_t)S * S * 3);
    int wrist_seen = 0;
    const int n_scenes = 12;
    for (int sc = 0; sc < n_scenes; sc++) {
        int task = sc * 7 % bv_synth_num_tasks();
        bv_synth_task tk = bv_synth_task_get(task);
        assert_int_equal(bv_synth_env_reset(env, 500 + sc, task), BV_OK);
        bv_synth_obs obs = {.image = a, .wrist_image = w};
        bv_synth_env_observe(env, &obs);
        size_t differ = 0;
        for (size_t p = 0; p < (size_t)S * S; p++)
            differ +=
                abs(a[3 * p] - w[3 * p]) + abs(a[3 * p + 1] - w[3 * p + 1]) + abs(a[3 * p + 2] - w[3 * p + 2]) > 30;
        if (differ < (size_t)S * S / 4)
            fail_msg("scene %d: only %zu of %d pixels differ between the cameras", sc, differ, S * S);
        /* every object colour in the scene shows in the third-person view, and no other */
        bool present[BV_SYNTH_N_COLOURS] = {false};
        for (int i = 0; i < bv_synth_env_num_objects(env); i++) {
            bv_synth_colour c;
            bv_synth_env_object(env, i, &c, NULL, NULL, NULL);
            present[c] = true;
            int n = count_colour(a, S, c, 0, S, 0, S);
            if (n < 50)
                fail_msg("scene %d: %s (object %d) has %d pixels in the third-person view", sc, bv_synth_colour_name(c),
                         i, n);
        }
        for (int c = 0; c < BV_SYNTH_N_COLOURS; c++) {
            int n = count_colour(a, S, (bv_synth_colour)c, 0, S, 0, S);
            if (!present[c] && n > 0)
                fail_msg("scene %d: %d pixels read as %s, which no object is", sc, n, bv_synth_colour_name(c));
        }
        /* run the expert until it descends onto the target: the wrist camera then sees the
         * target's colour in the middle of its lower half, between the fingers */
        bv_synth_expert ex;
        bv_synth_expert_init(&ex, 500 + sc, 0.05f);
        for (int t = 0; t < 200; t++) {
            float act[7];
            bv_synth_expert_act(&ex, env, act);
            if (!strcmp(bv_synth_expert_phase(&ex), "descend")) {
                /* count pixels of the target colour in the wrist image's central lower region */
                bv_synth_env_render(env, BV_SYNTH_CAM_WRIST, w);
                int n = count_colour(w, S, tk.colour, S / 3, S, S / 4, 3 * S / 4);
                if (n > 600) wrist_seen++;
                else print_message("scene %d: %d target pixels in the wrist view at the start of the descent\n", sc, n);
                break;
            }
            bv_synth_env_step(env, act);
        }
    }
    if (wrist_seen < n_scenes)
        fail_msg("the wrist camera showed the target in %d of %d descents", wrist_seen, n_scenes);
    free(a);
    free(w);
    bv_synth_env_free(env);
}

/* ---- the dataset ---- */

static bv_synth_opts small_opts(void) {
    bv_synth_opts o;
    bv_synth_opts_default(&o);
    o.episodes = 5;
    o.seed = 42;
    o.image_size = 64;
    o.shards = 2;
    o.quiet = true;
    return o;
}

static void expect_same_file(const char *a, const char *b) {
    size_t na, nb;
    uint8_t *da = read_file(a, &na), *db = read_file(b, &nb);
    if (na != nb || memcmp(da, db, na)) fail_msg("%s and %s differ (%zu and %zu bytes)", a, b, na, nb);
    free(da);
    free(db);
}

static void test_determinism(void **state) {
    (void)state;
    bv_synth_opts o = small_opts();
    const char *d1 = tmp_dir(0), *d2 = tmp_dir(1), *d3 = tmp_dir(2);
    o.threads = 1;
    bv_synth_report r1, r2;
    if (bv_synth_write_rlds(d1, &o, &r1)) fail_msg("%s", bv_error_msg());
    o.threads = 2;
    if (bv_synth_write_rlds(d2, &o, &r2)) fail_msg("%s", bv_error_msg());
    assert_int_equal(r1.episodes, 5);
    assert_int_equal(r1.steps, r2.steps);
    const char *files[] = {"features.json", "dataset_info.json", "bitvla_synth-train.tfrecord-00000-of-00002",
                           "bitvla_synth-train.tfrecord-00001-of-00002"};
    char p1[512], p2[512];
    for (size_t k = 0; k < BV_ARRAY_LEN(files); k++) {
        snprintf(p1, sizeof p1, "%s/%s", d1, files[k]);
        snprintf(p2, sizeof p2, "%s/%s", d2, files[k]);
        expect_same_file(p1, p2);
    }
    /* nothing else left behind (no temporaries) */
    DIR *dir = opendir(d1);
    int n = 0;
    for (struct dirent *de; (de = readdir(dir));) n += de->d_name[0] != '.';
    closedir(dir);
    assert_int_equal(n, 4);
    /* another seed, other episodes */
    o.seed = 43;
    if (bv_synth_write_rlds(d3, &o, NULL)) fail_msg("%s", bv_error_msg());
    size_t na, nb;
    snprintf(p1, sizeof p1, "%s/%s", d1, files[2]);
    snprintf(p2, sizeof p2, "%s/%s", d3, files[2]);
    uint8_t *da = read_file(p1, &na), *db = read_file(p2, &nb);
    assert_true(na != nb || memcmp(da, db, na) != 0);
    free(da);
    free(db);
    rm_dir(d1);
    rm_dir(d2);
    rm_dir(d3);
}

static void test_rlds_roundtrip_and_replay(void **state) {
    (void)state;
    bv_synth_opts o = small_opts();
    o.episodes = 4;
    o.image_size = 128;
    o.jpeg_quality = 95;
    const char *dir = tmp_dir(3);
    bv_synth_report rep;
    if (bv_synth_write_rlds(dir, &o, &rep)) fail_msg("%s", bv_error_msg());

    /* the schema, as the converter will read it */
    bv_rlds_dataset ds;
    if (bv_rlds_open(&ds, dir)) fail_msg("%s", bv_error_msg());
    assert_string_equal(ds.name, "bitvla_synth");
    const bv_rlds_split *sp = bv_rlds_split_find(&ds, "train");
    assert_non_null(sp);
    assert_int_equal(sp->n_shards, 2);
    assert_int_equal(sp->n_episodes, 4);
    if (bv_rlds_split_check(&ds, sp)) fail_msg("%s", bv_error_msg());
    const struct {
        const char *key;
        int kind, ndim;
        int64_t d0;
    } schema[] = {
        {"steps/observation/image", BV_RLDS_IMAGE, 3, 128},
        {"steps/observation/wrist_image", BV_RLDS_IMAGE, 3, 128},
        {"steps/observation/state", BV_RLDS_TENSOR, 1, 8},
        {"steps/observation/joint_state", BV_RLDS_TENSOR, 1, 7},
        {"steps/action", BV_RLDS_TENSOR, 1, 7},
        {"steps/language_instruction", BV_RLDS_TEXT, 0, 0},
        {"steps/reward", BV_RLDS_TENSOR, 0, 0},
        {"steps/discount", BV_RLDS_TENSOR, 0, 0},
        {"steps/is_first", BV_RLDS_TENSOR, 0, 0},
        {"steps/is_last", BV_RLDS_TENSOR, 0, 0},
        {"steps/is_terminal", BV_RLDS_TENSOR, 0, 0},
        {"episode_metadata/file_path", BV_RLDS_TEXT, 0, 0},
    };
    assert_int_equal(ds.n_features, (int)BV_ARRAY_LEN(schema));
    for (size_t k = 0; k < BV_ARRAY_LEN(schema); k++) {
        const bv_rlds_feature *f = bv_rlds_feature_find(&ds, schema[k].key);
        if (!f) fail_msg("features.json lacks %s", schema[k].key);
        assert_int_equal(f->kind, schema[k].kind);
        if (schema[k].kind != BV_RLDS_TEXT) assert_int_equal(f->ndim, schema[k].ndim);
        if (schema[k].ndim) assert_int_equal(f->shape[0], schema[k].d0);
        assert_int_equal(f->per_step, strncmp(schema[k].key, "steps/", 6) == 0);
    }
    assert_string_equal(bv_rlds_feature_find(&ds, "steps/observation/image")->encoding, "jpeg");
    assert_string_equal(bv_rlds_feature_find(&ds, "steps/is_last")->dtype, "bool");

    /* every episode: read back, replay in the env, compare */
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = 128;
    bv_synth_env *env;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
    uint8_t *frame = bv_xmalloc(128 * 128 * 3);
    bv_example ex = {0};
    bv_tfr_buf buf = {0};
    bv_image img = {0};
    int64_t total_steps = 0, episode = 0;
    for (int s = 0; s < sp->n_shards; s++) {
        bv_tfr_reader r;
        if (bv_tfr_open(&r, sp->files[s])) fail_msg("%s", bv_error_msg());
        for (;;) {
            bool eof;
            if (bv_tfr_next(&r, &buf, &eof)) fail_msg("%s", bv_error_msg());
            if (eof) break;
            char label[600];
            snprintf(label, sizeof label, "%s episode %lld", sp->files[s], (long long)episode);
            if (bv_example_decode(&ex, buf.data, buf.len, label)) fail_msg("%s", bv_error_msg());
            const char *keys[] = {"steps/observation/state",
                                  "steps/action",
                                  "steps/observation/image",
                                  "steps/language_instruction",
                                  "steps/reward",
                                  "steps/is_first",
                                  "steps/is_last",
                                  "steps/is_terminal",
                                  "episode_metadata/file_path",
                                  "steps/observation/joint_state",
                                  "steps/observation/wrist_image",
                                  "steps/discount"};
            bv_rlds_value v[12];
            int64_t T;
            if (bv_rlds_get_many(&ds, &ex, 12, keys, v, &T, label)) fail_msg("%s", bv_error_msg());
            float *st = bv_xmalloc((size_t)T * 8 * sizeof(float)), *act = bv_xmalloc((size_t)T * 7 * sizeof(float));
            float *rew = bv_xmalloc((size_t)T * sizeof(float)), *fl = bv_xmalloc((size_t)T * 3 * sizeof(float));
            bv_rlds_value_f32(&v[0], st);
            bv_rlds_value_f32(&v[1], act);
            bv_rlds_value_f32(&v[4], rew);
            bv_rlds_value_f32(&v[5], fl);
            bv_rlds_value_f32(&v[6], fl + T);
            bv_rlds_value_f32(&v[7], fl + 2 * T);
            for (int64_t t = 0; t < T; t++) {
                assert_true(rew[t] == (t == T - 1 ? 1.0f : 0.0f));
                assert_true(fl[t] == (t == 0) && fl[T + t] == (t == T - 1) && fl[2 * T + t] == (t == T - 1));
            }
            bv_bytes fp = bv_rlds_value_bytes(&v[8], 0);
            char path[200];
            assert_true(fp.len < sizeof path);
            memcpy(path, fp.data, fp.len);
            path[fp.len] = 0;
            uint64_t env_seed;
            int task;
            int64_t ep_index;
            if (bv_synth_parse_file_path(path, &env_seed, &task, &ep_index)) fail_msg("%s", bv_error_msg());
            assert_int_equal(ep_index, episode);
            assert_int_equal(task, (int)(episode % bv_synth_num_tasks()));
            /* replay: reset from the recorded scene seed, step the recorded actions */
            assert_int_equal(bv_synth_env_reset(env, env_seed, task), BV_OK);
            bv_bytes instr = bv_rlds_value_bytes(&v[3], T - 1);
            const char *want = bv_synth_env_instruction(env);
            if (instr.len != strlen(want) || memcmp(instr.data, want, instr.len))
                fail_msg("%s: instruction '%.*s', the env says '%s'", label, (int)instr.len, (const char *)instr.data,
                         want);
            for (int64_t t = 0; t < T; t++) {
                bv_synth_obs obs = {.image = (t % 17 == 0) ? frame : NULL};
                bv_synth_env_observe(env, &obs);
                if (memcmp(obs.state, st + 8 * t, sizeof obs.state))
                    fail_msg("%s step %lld: replayed state differs (x %.9g vs %.9g, gripper %.9g vs %.9g)", label,
                             (long long)t, (double)obs.state[0], (double)st[8 * t], (double)obs.state[6],
                             (double)st[8 * t + 6]);
                assert_false(bv_synth_env_success(env));
                if (obs.image) { /* the stored JPEG is this frame */
                    bv_bytes jb = bv_rlds_value_bytes(&v[2], t);
                    if (bv_image_decode(jb.data, jb.len, &img, label)) fail_msg("%s", bv_error_msg());
                    assert_true(img.w == 128 && img.h == 128);
                    double mad = 0;
                    for (size_t p = 0; p < 128 * 128 * 3; p++) mad += abs(img.rgb[p] - frame[p]);
                    mad /= 128 * 128 * 3;
                    if (mad > 4.0)
                        fail_msg("%s step %lld: stored frame differs from the replayed one by %.2f on average", label,
                                 (long long)t, mad);
                }
                bv_synth_env_step(env, act + 7 * t);
            }
            if (!bv_synth_env_success(env)) fail_msg("%s: replaying the recorded actions does not succeed", label);
            total_steps += T;
            episode++;
            free(st);
            free(act);
            free(rew);
            free(fl);
        }
        bv_tfr_close(&r);
    }
    assert_int_equal(episode, 4);
    assert_int_equal(total_steps, rep.steps);
    bv_image_free(&img);
    bv_tfr_buf_free(&buf);
    bv_example_free(&ex);
    free(frame);
    bv_synth_env_free(env);
    bv_rlds_close(&ds);
    rm_dir(dir);
}

/* The dataset converts with the built-in LIBERO schema, as modified_libero_rlds does. */
static void test_convert_with_libero_schema(void **state) {
    (void)state;
    bv_synth_opts o = small_opts();
    o.episodes = 3;
    o.shards = 1;
    const char *src = tmp_dir(0), *dst = tmp_dir(1);
    bv_synth_report rep;
    if (bv_synth_write_rlds(src, &o, &rep)) fail_msg("%s", bv_error_msg());
    bv_schema schema;
    if (bv_schema_load(&schema, "libero")) fail_msg("%s", bv_error_msg());
    bv_convert_opts co = {.out_dir = dst, .images = -1};
    setenv("BV_PROGRESS", "0", 1);
    if (bv_convert_rlds(src, &schema, &co)) fail_msg("%s", bv_error_msg());
    bv_schema_free(&schema);
    char p[512];
    snprintf(p, sizeof p, "%s/shard-00000.h5", dst);
    bv_shard sh;
    if (bv_shard_open(&sh, p)) fail_msg("%s", bv_error_msg());
    assert_int_equal(sh.n_episodes, 3);
    assert_int_equal(sh.n_steps, rep.steps);
    assert_int_equal(sh.action_dim, 7);
    assert_int_equal(sh.proprio_dim, 8);
    assert_int_equal(sh.n_cams, 2);
    assert_true(sh.cams[0].height == 64 && sh.cams[0].width == 64);
    char *instr = NULL;
    if (bv_shard_read_instruction(&sh, 0, &instr)) fail_msg("%s", bv_error_msg());
    char want[128];
    bv_synth_task_instruction(bv_synth_task_get(0), want, sizeof want);
    assert_string_equal(instr, want);
    free(instr);
    /* OFT's gripper transform: -1 (open) -> 1, +1 (close) -> 0; the expert starts open and closes */
    float *a = bv_xmalloc((size_t)sh.n_steps * 7 * sizeof(float));
    if (bv_shard_read_action(&sh, 0, sh.n_steps, a)) fail_msg("%s", bv_error_msg());
    assert_true(a[6] == 1.0f);
    int closed = 0;
    for (int64_t t = 0; t < sh.n_steps; t++) {
        assert_true(a[7 * t + 6] == 0.0f || a[7 * t + 6] == 1.0f);
        closed += a[7 * t + 6] == 0.0f;
    }
    assert_true(closed > 0);
    free(a);

    /* exact round trip synth -> RLDS -> shard: re-record each episode the way bv_synth_write_rlds
     * does and compare every action (dims 0-5 as recorded, the gripper through OFT's LIBERO
     * transform), every proprio row (= the state) and every stored JPEG, byte for byte */
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.image_size = o.image_size;
    bv_synth_env *env = NULL;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_OK);
    const int n_tasks = o.tasks ? o.tasks : bv_synth_num_tasks();
    uint8_t *jb = NULL;
    size_t jcap = 0, jlen = 0;
    for (int64_t i = 0; i < sh.n_episodes; i++) {
        bv_synth_episode ep;
        memset(&ep, 0, sizeof ep);
        for (int att = 0; att < o.max_attempts; att++) {
            bv_synth_episode_free(&ep);
            assert_int_equal(bv_synth_episode_record(env, bv_synth_episode_seed(o.seed, i, att), (int)(i % n_tasks),
                                                     o.noise, o.jpeg_quality, &ep),
                             BV_OK);
            if (ep.success) break;
        }
        int64_t s0 = sh.episode_offsets[i], T = sh.episode_offsets[i + 1] - s0;
        assert_int_equal(T, ep.T);
        float *act = bv_xmalloc((size_t)T * 7 * sizeof(float)), *pro = bv_xmalloc((size_t)T * 8 * sizeof(float));
        if (bv_shard_read_action(&sh, s0, T, act) || bv_shard_read_proprio(&sh, s0, T, pro))
            fail_msg("%s", bv_error_msg());
        for (int64_t t = 0; t < T; t++) {
            for (int d = 0; d < 7; d++) {
                float a0 = ep.action[7 * t + d];
                float want = d < 6 ? a0 : 1.0f - fminf(fmaxf(a0, 0.0f), 1.0f);
                if (act[7 * t + d] != want)
                    fail_msg("episode %lld step %lld action[%d]: shard %.9g, recorded %.9g (want %.9g)", (long long)i,
                             (long long)t, d, act[7 * t + d], a0, want);
            }
            if (memcmp(pro + 8 * t, ep.state + 8 * t, 8 * sizeof(float)))
                fail_msg("episode %lld step %lld: shard proprio differs from the recorded state", (long long)i,
                         (long long)t);
            for (int cam = 0; cam < 2; cam++) {
                const bv_image_bytes *want = cam ? &ep.jpeg_wrist[t] : &ep.jpeg_image[t];
                if (bv_shard_read_jpeg(&sh, cam, s0 + t, &jb, &jcap, &jlen)) fail_msg("%s", bv_error_msg());
                if (jlen != want->len || memcmp(jb, want->data, jlen))
                    fail_msg("episode %lld step %lld camera %d: shard JPEG (%zu bytes) differs from the recorded one "
                             "(%zu bytes)", (long long)i, (long long)t, cam, jlen, want->len);
            }
        }
        free(act);
        free(pro);
        bv_synth_episode_free(&ep);
    }
    free(jb);
    bv_synth_env_free(env);
    bv_shard_close(&sh);
    rm_dir(src);
    rm_dir(dst);
}

static void test_preview(void **state) {
    (void)state;
    bv_synth_opts o = small_opts();
    const char *dir = tmp_dir(0);
    if (bv_synth_write_preview(dir, &o)) fail_msg("%s", bv_error_msg());
    char p[512];
    snprintf(p, sizeof p, "%s/synth_0_start.png", dir);
    size_t n;
    uint8_t *d = read_file(p, &n);
    bv_image img = {0};
    if (bv_image_decode(d, n, &img, p)) fail_msg("%s", bv_error_msg());
    assert_true(img.w == 128 && img.h == 64);
    bv_image_free(&img);
    free(d);
    snprintf(p, sizeof p, "%s/synth_5_end.png", dir);
    assert_int_equal(access(p, R_OK), 0);
    rm_dir(dir);
}

/* ---- errors ---- */

static void test_bad_options(void **state) {
    (void)state;
    bv_synth_opts o = small_opts();
    o.episodes = 0;
    assert_int_equal(bv_synth_opts_check(&o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "episodes 0");
    o = small_opts();
    o.image_size = 8;
    assert_int_equal(bv_synth_opts_check(&o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "image size 8");
    o = small_opts();
    o.shards = 9;
    assert_int_equal(bv_synth_opts_check(&o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "9 shards for 5 episodes");
    o = small_opts();
    o.tasks = 25;
    assert_int_equal(bv_synth_opts_check(&o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "tasks 25");
    o = small_opts();
    o.name = "a/b";
    assert_int_equal(bv_synth_opts_check(&o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "'a/b'");
    o = small_opts();
    o.noise = NAN;
    assert_int_equal(bv_synth_opts_check(&o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "noise");
    bv_synth_config cfg;
    bv_synth_config_default(&cfg);
    cfg.pos_scale = 0;
    bv_synth_env *env = (bv_synth_env *)1;
    assert_int_equal(bv_synth_env_init(&env, &cfg), BV_ERR_ARG);
    assert_null(env);
    bv_test_expect_in(bv_error_msg(), "pos_scale");
    /* an output path that is a file: an error naming it, nothing written */
    o = small_opts();
    const char *f = "/tmp/bv_test_synth_file";
    FILE *fp = fopen(f, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(bv_synth_write_rlds(f, &o, NULL), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), f);
    unlink(f);
    uint64_t es;
    int task;
    int64_t ep;
    assert_int_equal(bv_synth_parse_file_path("synth:env_seed=1,task=99,episode=0", &es, &task, &ep), BV_ERR_FORMAT);
    bv_test_expect_in(bv_error_msg(), "task=99");
    assert_int_equal(bv_synth_parse_file_path("synth:env_seed=18446744073709551615,task=3,episode=7", &es, &task, &ep),
                     BV_OK);
    assert_true(es == UINT64_MAX && task == 3 && ep == 7);
}

/* Run the `bitvla` binary beside this test; returns its exit code and its stderr in err. */
static int run_cli(const char *args, char *err, size_t n) {
    char exe[1024];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len <= 0) fail_msg("cannot find this test's own path");
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    *slash = 0;
    char cmd[2048], errf[128];
    snprintf(errf, sizeof errf, "/tmp/bv_test_synth_cli_%d.err", (int)getpid());
    snprintf(cmd, sizeof cmd, "%s/bitvla synth %s >/dev/null 2>%s", exe, args, errf);
    char bin[1100];
    snprintf(bin, sizeof bin, "%s/bitvla", exe);
    if (access(bin, X_OK) != 0) fail_msg("%s not built (build the 'bitvla' target with the tests)", bin);
    int rc = system(cmd);
    size_t got = 0;
    FILE *f = fopen(errf, "r");
    if (f) {
        got = fread(err, 1, n - 1, f);
        fclose(f);
    }
    err[got] = 0;
    unlink(errf);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_cli_errors(void **state) {
    (void)state;
    char err[4096];
    const char *out = tmp_dir(1);
    char args[512];
    const struct {
        const char *args;
        const char *needle1, *needle2;
    } cases[] = {
        {"--episodes x --out %s", "--episodes", "'x'"},
        {"--episodes 3 --out %s --frobnicate", "unknown option", "--frobnicate"},
        {"--episodes 3", "--out DIR is required", NULL},
        {"--out %s", "--episodes N is required", NULL},
        {"--episodes 3 --out %s --image-size 8", "--image-size", "'8'"},
        {"--episodes 3 --out %s --tasks 99", "--tasks", "[1, 24]"},
        {"--episodes 3 --out %s --noise -1", "--noise", "'-1'"},
        {"--episodes 3 --out %s --seed -5", "--seed", "'-5'"},
        {"--episodes 3 --out %s --shards 5", "5 shards for 3 episodes", NULL},
        {"--episodes 3 --out %s --name", "--name needs a value", NULL},
        {"--episodes 3 --out %s --name ''", "dataset name '' must be 1..100 characters", NULL},
        {"--episodes 3 --out %s --name a/b", "dataset name 'a/b' has '/'", NULL},
        {"--episodes 3 --out %s --shards -1", "--shards", "[0, 99999]"},
    };
    for (size_t k = 0; k < BV_ARRAY_LEN(cases); k++) {
        snprintf(args, sizeof args, cases[k].args, out);
        int rc = run_cli(args, err, sizeof err);
        if (rc != 2) fail_msg("bitvla synth %s: exit %d, expected 2 (stderr: %s)", args, rc, err);
        bv_test_expect_in(err, cases[k].needle1);
        if (cases[k].needle2) bv_test_expect_in(err, cases[k].needle2);
        if (strncmp(err, "bitvla synth: ", 14) || strstr(err, "synth: synth:"))
            fail_msg("bitvla synth %s: the message does not start with one 'bitvla synth: ': %s", args, err);
    }
    /* errors from writing start with "bitvla synth: " too (exit 1) */
    char file[128];
    snprintf(file, sizeof file, "/tmp/bv_test_synth_cli_file_%d", (int)getpid());
    FILE *fp = fopen(file, "w");
    assert_non_null(fp);
    fclose(fp);
    snprintf(args, sizeof args, "--episodes 1 --out %s/x --image-size 32 --quiet", file);
    int rc1 = run_cli(args, err, sizeof err);
    unlink(file);
    if (rc1 != 1) fail_msg("bitvla synth %s: exit %d, expected 1 (stderr: %s)", args, rc1, err);
    if (strncmp(err, "bitvla synth: ", 14)) fail_msg("bitvla synth %s: message without 'bitvla synth: ': %s", args, err);
    bv_test_expect_in(err, "is not a directory");
    struct stat sb;
    assert_true(stat(out, &sb) != 0); /* nothing created by refused runs */
    /* a working run, for the record */
    snprintf(args, sizeof args, "--episodes 2 --out %s --image-size 32 --quiet", out);
    int rc = run_cli(args, err, sizeof err);
    if (rc != 0) fail_msg("bitvla synth %s: exit %d (stderr: %s)", args, rc, err);
    char p[600];
    snprintf(p, sizeof p, "%s/bitvla_synth-train.tfrecord-00000-of-00001", out);
    int64_t n;
    if (bv_tfr_count(p, &n)) fail_msg("%s", bv_error_msg());
    assert_int_equal(n, 2);
    /* the dataset is there: another run needs --force, which replaces it whole; --shards 0 is
     * automatic (one shard per 64 episodes), as the help says */
    snprintf(args, sizeof args, "--episodes 3 --out %s --image-size 32 --quiet --shards 0", out);
    rc = run_cli(args, err, sizeof err);
    if (rc != 1) fail_msg("bitvla synth %s: exit %d, expected 1 (stderr: %s)", args, rc, err);
    bv_test_expect_in(err, "bitvla synth: ");
    bv_test_expect_in(err, "already holds an RLDS dataset");
    bv_test_expect_in(err, "--force");
    assert_int_equal(bv_tfr_count(p, &n), BV_OK); /* untouched */
    assert_int_equal(n, 2);
    snprintf(args, sizeof args, "--episodes 3 --out %s --image-size 32 --quiet --shards 0 --force", out);
    rc = run_cli(args, err, sizeof err);
    if (rc != 0) fail_msg("bitvla synth %s: exit %d (stderr: %s)", args, rc, err);
    if (bv_tfr_count(p, &n)) fail_msg("%s", bv_error_msg());
    assert_int_equal(n, 3);
    rm_dir(out);
}

/* Path of the `bitvla` binary beside this test. */
static void cli_path(char *exe, size_t n) {
    ssize_t len = readlink("/proc/self/exe", exe, n - 1);
    if (len <= 0) fail_msg("cannot find this test's own path");
    exe[len] = 0;
    snprintf(strrchr(exe, '/') + 1, n - (size_t)(strrchr(exe, '/') + 1 - exe), "bitvla");
}

/* A temporary of dir's (".<name>.tmp.<pid>" beside it) that holds a TFRecord being written, or "". */
static void find_tmp(const char *dir, pid_t pid, char *found, size_t n) {
    const char *base = strrchr(dir, '/') + 1;
    char want[300];
    snprintf(want, sizeof want, "%.*s/.%s.tmp.%d", (int)(base - 1 - dir), dir, base, (int)pid);
    found[0] = 0;
    DIR *d = opendir(want);
    if (!d) return;
    for (struct dirent *de; (de = readdir(d));)
        if (strstr(de->d_name, ".tfrecord-")) snprintf(found, n, "%s", want);
    closedir(d);
}

/* A synth run killed while writing leaves no output directory (only its temporary beside it,
 * hidden), and the next run for the same directory deletes that temporary. */
static void test_killed_run(void **state) {
    (void)state;
    const char *out = tmp_dir(2);
    char exe[1024];
    cli_path(exe, sizeof exe);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(exe, exe, "synth", "--episodes", "2000", "--image-size", "32", "--threads", "1", "--quiet", "--out", out,
              (char *)NULL);
        _exit(127);
    }
    char tmp[600] = "";
    for (int i = 0; i < 20000 && !tmp[0]; i++) { /* up to 100 s */
        find_tmp(out, pid, tmp, sizeof tmp);
        if (!tmp[0]) {
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) fail_msg("bitvla synth ended (status %d) before it was killed", status);
            usleep(5000);
        }
    }
    assert_int_equal(kill(pid, SIGKILL), 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    if (!tmp[0]) fail_msg("no temporary directory with a TFRecord appeared beside %s", out);
    struct stat sb;
    assert_true(stat(out, &sb) != 0);  /* no output directory: nothing that looks like a dataset */
    assert_int_equal(stat(tmp, &sb), 0); /* the killed run's temporary, hidden beside it */
    /* the next run cleans it up */
    bv_synth_opts o = small_opts();
    o.episodes = 2;
    o.image_size = 32;
    if (bv_synth_write_rlds(out, &o, NULL)) fail_msg("%s", bv_error_msg());
    assert_true(stat(tmp, &sb) != 0);
    char p[600];
    snprintf(p, sizeof p, "%s/dataset_info.json", out);
    assert_int_equal(access(p, F_OK), 0);
    /* the library refuses an existing dataset without force, naming it */
    assert_int_equal(bv_synth_write_rlds(out, &o, NULL), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), out);
    bv_test_expect_in(bv_error_msg(), "already holds an RLDS dataset");
    rm_dir(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_coverage_and_depth),
        cmocka_unit_test(test_instruction_and_target),
        cmocka_unit_test(test_unique_colour_scenes),
        cmocka_unit_test(test_expert_success_rate),
        cmocka_unit_test(test_env_action_handling),
        cmocka_unit_test(test_cameras),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_rlds_roundtrip_and_replay),
        cmocka_unit_test(test_convert_with_libero_schema),
        cmocka_unit_test(test_preview),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_killed_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
