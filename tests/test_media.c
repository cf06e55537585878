/* Tests of the pictures of a closed-loop evaluation (eval/media.h):
 *  - frame steps: evenly spaced from 0 to the episode's end, both included, none twice;
 *  - a film strip of made-up clips (solid colours): its size, every frame at its row (success
 *    third-person, success wrist, failure third-person, failure wrist) and column, the columns a
 *    shorter clip lacks left white; a strip of a failure alone has two rows;
 *  - the success chart: written, as wide as its groups need; results of other tasks refused;
 *  - everything end to end on the expert (2 tasks x 2 episodes, 64 px, a step limit that makes one
 *    success and one failure per task): the chart, a strip of four rows and an animation per task.
 * About a second. */
#include <stdio.h>
#include <string.h>

#include "eval/media.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("media"); }
static int teardown(void **state) { return bv_test_dir_remove(); }

static void test_frame_steps(void **state) {
    int s[16];
    assert_int_equal(bv_cl_media_frame_steps(123, 6, s), 6);
    const int want[6] = {0, 25, 49, 74, 98, 123};
    for (int i = 0; i < 6; i++) assert_int_equal(s[i], want[i]);
    assert_int_equal(bv_cl_media_frame_steps(3, 6, s), 4); /* 0 1 2 3 */
    for (int i = 0; i < 4; i++) assert_int_equal(s[i], i);
    assert_int_equal(bv_cl_media_frame_steps(0, 6, s), 1);
    assert_int_equal(s[0], 0);
    assert_int_equal(bv_cl_media_frame_steps(300, 1, s), 1);
    assert_int_equal(s[0], 300);
}

/* A clip of n frames of size S: frame f of the third-person camera all colour base + f, of the
 * wrist base + 0x10 + f. */
#define S 16
static uint32_t frame_colour(uint32_t base, int wrist, int f) { return base + (wrist ? 0x10 : 0) + (uint32_t)f; }

static bv_cl_clip make_clip(int episode, bool success, int steps, int n, uint32_t base) {
    bv_cl_clip c = {.ep = {.task = 2, .episode = episode, .success = success, .steps = steps}, .size = S};
    c.n_frames = bv_cl_media_frame_steps(steps, n, c.steps);
    c.image = malloc((size_t)c.n_frames * S * S * 3);
    c.wrist = malloc((size_t)c.n_frames * S * S * 3);
    for (int f = 0; f < c.n_frames; f++)
        for (int w = 0; w < 2; w++) {
            uint32_t col = frame_colour(base, w, f);
            uint8_t *p = (w ? c.wrist : c.image) + (size_t)f * S * S * 3;
            for (int i = 0; i < S * S; i++) p[3 * i] = col >> 16 & 0xff, p[3 * i + 1] = col >> 8 & 0xff, p[3 * i + 2] = col & 0xff;
        }
    return c;
}

static void test_strip(void **state) {
    bv_cl_clip ok = make_clip(3, true, 50, 4, 0x20a000), bad = make_clip(0, false, 2, 4, 0xa02000); /* 4 and 3 frames */
    assert_int_equal(ok.n_frames, 4);
    assert_int_equal(bad.n_frames, 3);
    bv_cl_strip *s = malloc(sizeof *s);
    bv_cl_strip_make(s, "task 2: a title", &ok, &bad, 32);
    assert_int_equal(s->grid.rows, 4);
    assert_int_equal(s->grid.cols, 4);
    bv_test_expect_in(s->grid.row_headings[0], "episode 3: success after 50 steps");
    bv_test_expect_in(s->grid.row_headings[2], "episode 0: failure");
    assert_null(s->grid.row_headings[1]);
    assert_string_equal(s->grid.cells[1 * 4 + 2].caption, "step 33"); /* under the wrist row: the step */
    const char *path = bv_test_path("strip.png");
    if (bv_plot_grid_write_png(path, &s->grid)) fail_msg("%s", bv_error_msg());
    int w, h;
    if (bv_plot_grid_size("strip", &s->grid, &w, &h)) fail_msg("%s", bv_error_msg());
    bv_test_image im = bv_test_read_png(path);
    assert_int_equal(im.w, w);
    assert_int_equal(im.h, h);
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            int x, y;
            if (bv_plot_grid_cell("strip", &s->grid, r, c, &x, &y)) fail_msg("%s", bv_error_msg());
            const bv_cl_clip *clip = r < 2 ? &ok : &bad;
            uint32_t want = c < clip->n_frames ? frame_colour(r < 2 ? 0x20a000 : 0xa02000, r % 2, c) : 0xffffff;
            uint32_t got = bv_test_pixel(&im, x + 16, y + 16);
            if (got != want) fail_msg("row %d column %d at (%d, %d): got %06x, want %06x", r, c, x, y, got, want);
        }
    free(im.rgb);
    /* a failure alone */
    bv_cl_strip_make(s, "t", NULL, &bad, 0);
    assert_int_equal(s->grid.rows, 2);
    assert_int_equal(s->grid.cols, 3);
    bv_test_expect_in(s->grid.row_headings[0], "failure");
    if (bv_plot_grid_write_png(bv_test_path("strip1.png"), &s->grid)) fail_msg("%s", bv_error_msg());
    free(s);
    bv_cl_clip_free(&ok);
    bv_cl_clip_free(&bad);
}

static void test_chart(void **state) {
    bv_cl_summary tasks[3] = {{.task = 0, .successes = 4, .episodes = 5, .rate = 0.8, .lo = 0.38, .hi = 0.96},
                              {.task = 7, .successes = 1, .episodes = 5, .rate = 0.2, .lo = 0.04, .hi = 0.62}};
    bv_cl_result a = {.agent = BV_CL_AGENT_POLICY, .n_tasks = 2, .tasks = tasks,
                      .all = {.task = -1, .successes = 5, .episodes = 10, .rate = 0.5, .lo = 0.24, .hi = 0.76}};
    bv_cl_result b = a;
    b.agent = BV_CL_AGENT_EXPERT;
    const bv_cl_result *res[2] = {&a, &b};
    const char *path = bv_test_path("chart.png");
    if (bv_cl_media_chart(path, res, 2)) fail_msg("%s", bv_error_msg());
    bv_test_image im = bv_test_read_png(path);
    assert_true(im.w >= 640 && im.h >= 320);
    free(im.rgb);
    b.n_tasks = 3;
    assert_int_equal(bv_cl_media_chart(path, res, 2), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "the expert result has 3 tasks, the policy result 2");
}

static void test_write(void **state) {
    const int tasks[] = {0, 1};
    bv_cl_opts o;
    bv_cl_opts_default(&o);
    o.agent = BV_CL_AGENT_EXPERT;
    o.episodes = 2;
    o.tasks = tasks, o.n_tasks = 2;
    o.image_size = 64;
    o.max_steps = 110; /* the expert needs 97 to 123 steps on these: one success, one failure per task */
    o.inner_threads = 1;
    o.progress = false;
    bv_cl_result r;
    if (bv_cl_run(&o, &r)) fail_msg("%s", bv_error_msg());
    for (int t = 0; t < 2; t++) assert_int_equal(r.tasks[t].successes, 1);
    bv_cl_media_opts m;
    bv_cl_media_opts_default(&m);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/media/sub", bv_test_dir()); /* made with its parent */
    m.dir = dir;
    m.anim_frames = 8;
    const bv_cl_result *res[1] = {&r};
    if (bv_cl_media_write(&m, &o, res, 1)) fail_msg("%s", bv_error_msg());
    char path[4200];
    snprintf(path, sizeof path, "%s/success.png", dir);
    bv_test_image im = bv_test_read_png(path);
    free(im.rgb);
    for (int t = 0; t < 2; t++) {
        snprintf(path, sizeof path, "%s/task-%02d-strip.png", dir, t);
        im = bv_test_read_png(path);
        /* four rows of 64 px images (a success and a failure), six columns */
        print_message("%s: %d x %d\n", path, im.w, im.h);
        assert_true(im.h > 4 * 64 && im.w > 6 * 64);
        free(im.rgb);
        snprintf(path, sizeof path, "%s/task-%02d-rollout.png", dir, t);
        im = bv_test_read_png(path); /* its first frame */
        assert_true(im.w > 2 * 64 && im.h > 64);
        free(im.rgb);
    }
    assert_int_equal(bv_test_count_entries(dir, ".png"), 5);
    assert_int_equal(bv_test_count_entries(dir, ".tmp."), 0);
    /* bad options */
    m.strip_frames = 0;
    assert_int_equal(bv_cl_media_write(&m, &o, res, 1), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "0 frames per film strip episode");
    bv_cl_result_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_steps),
        cmocka_unit_test(test_strip),
        cmocka_unit_test(test_chart),
        cmocka_unit_test(test_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
