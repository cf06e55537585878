/* Tests of src/plot.h:
 *  - ticks: 1-2-5 steps, inside the range, at most the count asked, none for an empty range;
 *  - a two-panel figure (two series with a legend; a log axis) written as PNG and read back with
 *    libpng: the size, a white background, drawn pixels (not blank), pixels of each series' colour;
 *  - a NaN gap leaves a band of columns without the series' colour; a lone point is a dot;
 *  - a panel without data, and values as large as doubles go, still render;
 *  - errors: a bad figure (BV_ERR_ARG), an unwritable path (BV_ERR_IO naming it), nothing left
 *    behind;
 *  - bar charts: bars of each series in its colour, as tall as their values (column profiles read
 *    back), none for a NaN value, error bars only where given; an automatic range with negative
 *    values and slanted long labels; bad charts refused naming what is wrong;
 *  - image grids: the size, every solid-colour image at the place bv_plot_grid_cell gives, a
 *    letterboxed image, empty cells white, the rendered bytes equal to the PNG's; bad grids. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "src/plot.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("plot"); }
static int teardown(void **state) { return bv_test_dir_remove(); }

static void check_ticks(double lo, double hi, int max, const double *want, int n_want) {
    double t[32];
    int n = bv_plot_ticks(lo, hi, max, t);
    if (n != n_want) fail_msg("ticks of [%g, %g] (at most %d): got %d, want %d", lo, hi, max, n, n_want);
    for (int i = 0; i < n; i++)
        if (fabs(t[i] - want[i]) > 1e-12 * fmax(1, fabs(want[i])))
            fail_msg("ticks of [%g, %g]: tick %d is %.17g, want %.17g", lo, hi, i, t[i], want[i]);
}

static void test_ticks(void **state) {
    check_ticks(0, 1, 6, (double[]){0, 0.2, 0.4, 0.6, 0.8, 1}, 6);
    check_ticks(0, 1, 11, (double[]){0, .1, .2, .3, .4, .5, .6, .7, .8, .9, 1}, 11);
    check_ticks(0, 97, 6, (double[]){0, 20, 40, 60, 80}, 5);
    check_ticks(-1.3, 2.7, 5, (double[]){-1, 0, 1, 2}, 4);
    check_ticks(1e-4, 3.2e-4, 4, (double[]){1e-4, 2e-4, 3e-4}, 3);
    check_ticks(1000, 20000, 5, (double[]){5000, 10000, 15000, 20000}, 4);
    double t[8];
    assert_int_equal(bv_plot_ticks(1, 1, 5, t), 0);
    assert_int_equal(bv_plot_ticks(2, 1, 5, t), 0);
    assert_int_equal(bv_plot_ticks(0, NAN, 5, t), 0);
    assert_int_equal(bv_plot_ticks(-1.7e308, 1.7e308, 5, t), 0);
    /* never more than asked, always inside */
    bv_rng r = {7};
    for (int k = 0; k < 2000; k++) {
        double lo = (bv_rng_uniform(&r) - 0.5) * pow(10, 12 * bv_rng_uniform(&r) - 6);
        double hi = lo + pow(10, 12 * bv_rng_uniform(&r) - 6);
        int max = 2 + (int)(bv_rng_uniform(&r) * 10);
        double tt[16];
        int n = bv_plot_ticks(lo, hi, max, tt);
        if (n < 1 || n > max) fail_msg("[%.17g, %.17g] at most %d: %d ticks", lo, hi, max, n);
        double eps = 1e-9 * (hi - lo);
        for (int i = 0; i < n; i++)
            if (tt[i] < lo - eps || tt[i] > hi + eps || (i && tt[i] <= tt[i - 1]))
                fail_msg("[%.17g, %.17g]: tick %d = %.17g outside or out of order", lo, hi, i, tt[i]);
    }
}

/* ---- reading a PNG back ---- */

typedef bv_test_image image;
#define read_png bv_test_read_png

/* Pixels within `tol` of colour c (0xRRGGBB) per channel, in columns [x0, x1). */
static int count_color(const image *im, uint32_t c, int tol, int x0, int x1) {
    int n = 0;
    for (int y = 0; y < im->h; y++)
        for (int x = x0; x < x1; x++) {
            const uint8_t *p = im->rgb + ((size_t)y * im->w + x) * 3;
            n += abs(p[0] - (int)(c >> 16 & 0xff)) <= tol && abs(p[1] - (int)(c >> 8 & 0xff)) <= tol &&
                 abs(p[2] - (int)(c & 0xff)) <= tol;
        }
    return n;
}

static int count_non_white(const image *im) {
    int n = 0;
    for (size_t i = 0; i < (size_t)im->w * im->h; i++) n += im->rgb[3 * i] != 255 || im->rgb[3 * i + 1] != 255 ||
                                                          im->rgb[3 * i + 2] != 255;
    return n;
}

#define N 200

static void test_figure(void **state) {
    double x[N], loss[N], val_x[5], val[5], lr[N];
    for (int i = 0; i < N; i++) {
        x[i] = i * 10;
        loss[i] = 2.0 * exp(-i / 40.0) + 0.05 * sin(i);
        lr[i] = 1e-3 * fmin(1.0, (i + 1) / 20.0);
    }
    for (int i = 0; i < 5; i++) val_x[i] = 400 * (i + 1), val[i] = 1.5 * exp(-i / 2.0);
    loss[50] = NAN; /* a one-point gap */
    bv_plot_series s0[] = {{"train/loss", x, loss, N}, {"val/val_l1", val_x, val, 5}};
    bv_plot_series s1[] = {{"train/lr", x, lr, N}};
    bv_plot_panel panels[] = {
        {"loss", "step", "loss", false, 2, s0},
        {"learning rate", "step", "lr", true, 1, s1},
    };
    bv_plot_figure fig = {"a run", 2, panels, 2, 500, 320};
    const char *path = bv_test_path("fig.png");
    if (bv_plot_write_png(path, &fig)) fail_msg("%s", bv_error_msg());
    image im = read_png(path);
    assert_int_equal(im.w, 2 * 500);
    assert_int_equal(im.h, 320 + 36); /* one row, and the title */
    /* white background: the corners; drawn: more than 2 % of the pixels, less than half */
    assert_int_equal(count_color(&im, 0xffffff, 0, 0, 1), im.h);
    int drawn = count_non_white(&im);
    if (drawn < im.w * im.h / 50 || drawn > im.w * im.h / 2) fail_msg("%d of %d pixels drawn", drawn, im.w * im.h);
    /* each series in its colour, in its panel (the left panel holds series 0 and 1, the right series 0) */
    int c0 = count_color(&im, bv_plot_color(0), 12, 0, 500), c1 = count_color(&im, bv_plot_color(1), 12, 0, 500);
    int c0r = count_color(&im, bv_plot_color(0), 12, 500, 1000), c1r = count_color(&im, bv_plot_color(1), 12, 500, 1000);
    print_message("series pixels: left %d / %d, right %d / %d\n", c0, c1, c0r, c1r);
    assert_true(c0 > 400);
    assert_true(c1 > 100);
    assert_true(c0r > 400);
    assert_int_equal(c1r, 0);
    /* text: dark pixels outside the frames (titles, tick numbers) */
    assert_true(count_color(&im, 0x111111, 40, 0, im.w) > 200);
    free(im.rgb);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);
}

/* Columns [first, last] holding colour c, and the widest run of columns between them without it. */
static int widest_gap(const image *im, uint32_t c, int *first, int *last) {
    *first = -1, *last = -1;
    int gap = 0, run = 0;
    for (int x = 0; x < im->w; x++) {
        if (count_color(im, c, 12, x, x + 1)) {
            if (*first < 0) *first = x;
            *last = x;
            gap = BV_MAX(gap, run);
            run = 0;
        } else if (*first >= 0) {
            run++;
        }
    }
    return gap;
}

static void test_gap_and_dot(void **state) {
    double x[101], y[101], dx[1] = {50}, dy[1] = {0.25};
    for (int i = 0; i <= 100; i++) {
        x[i] = i;
        y[i] = i >= 40 && i <= 60 ? NAN : 0.5 + 0.001 * i;
    }
    /* unnamed: no legend to hold the colour */
    bv_plot_series s[] = {{NULL, x, y, 101}, {NULL, dx, dy, 1}};
    bv_plot_panel p = {"gap", NULL, NULL, false, 2, s};
    bv_plot_figure fig = {NULL, 1, &p, 0, 600, 300};
    const char *path = bv_test_path("gap.png");
    if (bv_plot_write_png(path, &fig)) fail_msg("%s", bv_error_msg());
    image im = read_png(path);
    assert_int_equal(im.w, 600);
    assert_int_equal(im.h, 300);
    int first, last, gap = widest_gap(&im, bv_plot_color(0), &first, &last);
    print_message("series 0 in columns %d..%d, widest gap %d\n", first, last, gap);
    /* the plot area is ~550 px wide: x in (39, 61) is ~20 % of it, minus the round caps */
    assert_true(last - first > 400);
    assert_true(gap > 80);
    /* the lone point is a dot in the middle of the gap */
    int dot = count_color(&im, bv_plot_color(1), 12, 0, im.w);
    assert_true(dot >= 9);
    free(im.rgb);
}

static void test_degenerate(void **state) {
    double x[3] = {0, 1, 2}, huge[3] = {-1.7e308, 0, 1.7e308}, neg[3] = {-1, 0, -2}, c[3] = {5, 5, 5};
    bv_plot_series s0[] = {{"huge", huge, huge, 3}};
    bv_plot_series s1[] = {{"not positive", x, neg, 3}}; /* on a log axis: no data */
    bv_plot_series s2[] = {{"constant", x, c, 3}};
    bv_plot_panel panels[] = {
        {"huge", "x", "y", false, 1, s0},
        {"constant", "x", "y", false, 1, s2},
        {"log of nothing", "x", "y", true, 1, s1},
        {"empty", NULL, NULL, false, 0, NULL},
    };
    bv_plot_figure fig = {"\xff bad utf-8 \xc3", 4, panels, 2, 300, 200};
    const char *path = bv_test_path("degenerate.png");
    if (bv_plot_write_png(path, &fig)) fail_msg("%s", bv_error_msg());
    image im = read_png(path);
    assert_int_equal(im.w, 600);
    assert_int_equal(im.h, 400 + 36);
    assert_true(count_color(&im, bv_plot_color(0), 12, 300, 600) > 100); /* the constant line (the right column: panels fill rows) */
    free(im.rgb);
}

static void test_errors(void **state) {
    bv_plot_panel p = {"p", NULL, NULL, false, 0, NULL};
    bv_plot_figure fig = {NULL, 1, &p, 1, 100, 300};
    const char *path = bv_test_path("bad.png");
    assert_int_equal(bv_plot_write_png(path, &fig), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "100 x 300 pixels");
    fig.panel_width = 0;
    fig.n_panels = 0;
    assert_int_equal(bv_plot_write_png(path, &fig), BV_ERR_ARG);
    double x = 1;
    bv_plot_series s = {"s", &x, NULL, 1};
    bv_plot_panel q = {"q", NULL, NULL, false, 1, &s};
    fig = (bv_plot_figure){NULL, 1, &q, 1, 0, 0};
    assert_int_equal(bv_plot_write_png(path, &fig), BV_ERR_ARG);
    fig.panels = &p;
    assert_int_equal(bv_plot_write_png("/nonexistent/dir/plot.png", &fig), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/dir/plot.png");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), "bad"), 0);
}

/* ---- bar charts ---- */

/* Columns whose rows [y0, y1) hold colour c: runs of adjacent such columns, each with its start,
 * width and its tallest column's count of c. Returns the number of runs (at most cap). */
static int column_runs(const image *im, uint32_t c, int y0, int y1, int *start, int *width, int *height, int cap) {
    int n = 0, in = 0;
    for (int x = 0; x < im->w; x++) {
        int k = 0;
        for (int y = y0; y < y1; y++) k += bv_test_pixel(im, x, y) == c;
        if (k > 0 && !in && n < cap) start[n] = x, width[n] = 0, height[n] = 0, n++;
        if (k > 0 && n) width[n - 1]++, height[n - 1] = BV_MAX(height[n - 1], k);
        in = k > 0;
    }
    return n;
}

static void test_bars(void **state) {
    const double v0[] = {100, 25, NAN}, lo0[] = {90, 20, NAN}, hi0[] = {100, 40, NAN};
    const double v1[] = {50, 0, 75};
    const char *labels[] = {"a", "b", "c"};
    bv_plot_bar_series ser[] = {{"zero", v0, lo0, hi0}, {"one", v1, NULL, NULL}};
    bv_plot_bars b = {.title = "bars", .ylabel = "%", .n_groups = 3, .group_labels = labels, .n_series = 2,
                      .series = ser, .y_min = 0, .y_max = 100, .width = 600, .height = 400};
    const char *path = bv_test_path("bars.png");
    if (bv_plot_bars_write_png(path, &b)) fail_msg("%s", bv_error_msg());
    image im = read_png(path);
    assert_int_equal(im.w, 600);
    assert_int_equal(im.h, 400);
    /* below the legend row (the plot area starts at y = 10 + 26 + 26 = 62) */
    const int y0 = 64, y1 = im.h;
    int st[8], wd[8], ht[8];
    int n0 = column_runs(&im, bv_plot_color(0), y0, y1, st, wd, ht, 8);
    print_message("series 0: %d runs: x %d w %d h %d; x %d w %d h %d\n", n0, st[0], wd[0], ht[0], st[1], wd[1], ht[1]);
    assert_int_equal(n0, 2); /* groups a and b; c is NaN */
    /* 100 vs 25: 4 times as tall (the error bar's line, drawn over it, takes a column's middle) */
    if (fabs((double)ht[0] / ht[1] - 4.0) > 0.15) fail_msg("bar heights %d and %d: not 4 to 1", ht[0], ht[1]);
    int full = ht[0];
    assert_true(full > 250); /* the plot area is ~300 px high */
    int s0_first = st[0], s0_w = wd[0];
    int n1 = column_runs(&im, bv_plot_color(1), y0, y1, st, wd, ht, 8);
    print_message("series 1: %d runs: h %d %d\n", n1, ht[0], ht[1]);
    assert_int_equal(n1, 2); /* 50 and 75; 0 has nothing above the axis */
    if (abs(ht[0] - full / 2) > 3 || abs(ht[1] - 3 * full / 4) > 3)
        fail_msg("series 1 bar heights %d %d, expected %d, %d", ht[0], ht[1], full / 2, 3 * full / 4);
    assert_true(st[0] >= s0_first + s0_w - 1); /* side by side: series 1 right of series 0 in a group */
    assert_true(abs(wd[0] - s0_w) <= 1);       /* bars of one width */
    /* error bars (dark) in series 0's bars, none in series 1's */
    assert_true(count_color(&im, 0x222222, 40, s0_first, s0_first + s0_w) > 20);
    int dark = 0;
    for (int y = y0; y < im.h - 40; y++)
        for (int x = st[0] + 2; x < st[0] + wd[0] - 2; x++) dark += bv_test_pixel(&im, x, y) == 0x222222;
    assert_int_equal(dark, 0);
    free(im.rgb);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);
}

static void test_bars_auto(void **state) {
    /* a range from the data (negative values, error ends beyond them), 30 groups of long labels:
     * slanted, the image wide enough for the bars and high enough for the labels */
    double v[30], lo[30], hi[30];
    char text[30][40];
    const char *labels[30];
    for (int g = 0; g < 30; g++) {
        v[g] = sin(g) * 3, lo[g] = v[g] - 1, hi[g] = v[g] + 1;
        snprintf(text[g], sizeof text[g], "%d: a long group label", g);
        labels[g] = text[g];
    }
    bv_plot_bar_series ser[] = {{"s", v, lo, hi}, {NULL, v, NULL, NULL}, {"t", v, NULL, NULL}};
    bv_plot_bars b = {.xlabel = "group", .n_groups = 30, .group_labels = labels, .n_series = 3, .series = ser};
    const char *path = bv_test_path("bars_auto.png");
    if (bv_plot_bars_write_png(path, &b)) fail_msg("%s", bv_error_msg());
    image im = read_png(path);
    print_message("automatic size %d x %d\n", im.w, im.h);
    assert_true(im.w >= 30 * 3 * 16);
    assert_true(im.h > 320 + 80); /* slanted labels below the plot */
    assert_true(count_color(&im, bv_plot_color(2), 12, 0, im.w) > 500);
    free(im.rgb);
}

static void test_bars_errors(void **state) {
    const double v[] = {1, 2};
    bv_plot_bar_series ser = {"s", v, NULL, NULL};
    const char *path = bv_test_path("bad_bars.png");
    bv_plot_bars b = {.n_groups = 0, .n_series = 1, .series = &ser};
    assert_int_equal(bv_plot_bars_write_png(path, &b), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "at least one group and one series");
    b.n_groups = 2;
    bv_plot_bar_series none = {"s", NULL, NULL, NULL};
    b.series = &none;
    assert_int_equal(bv_plot_bars_write_png(path, &b), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "bar series 0 has no values");
    b.series = &ser;
    b.y_min = 1, b.y_max = 1;
    assert_int_equal(bv_plot_bars_write_png(path, &b), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "the y range [1, 1] is empty");
    b.y_min = 0, b.y_max = NAN;
    assert_int_equal(bv_plot_bars_write_png(path, &b), BV_ERR_ARG);
    b.y_max = 0, b.width = 100;
    assert_int_equal(bv_plot_bars_write_png(path, &b), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "a width of 100 pixels");
    b.width = 0, b.height = 200, b.title = "t", b.xlabel = "x";
    const char *long_labels[] = {"a label long enough to need a lot of room when slanted at 45 degrees under the bars",
                                 "b"};
    b.group_labels = long_labels;
    assert_int_equal(bv_plot_bars_write_png(path, &b), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "leaves no room for the bars");
    b.height = 0;
    assert_int_equal(bv_plot_bars_write_png("/nonexistent/dir/bars.png", &b), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/dir/bars.png");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), "bad_bars"), 0);
}

/* ---- image grids ---- */

static uint8_t *solid(int w, int h, uint32_t c) {
    uint8_t *p = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h; i++) p[3 * i] = c >> 16 & 0xff, p[3 * i + 1] = c >> 8 & 0xff, p[3 * i + 2] = c & 0xff;
    return p;
}

static void test_grid(void **state) {
    /* 2 x 3: solid images of 20 x 20 in cells of 40 x 40 (scaled 2x); one 20 x 10 (letterboxed);
     * one empty; captions, headings, labels, a title */
    const uint32_t colours[6] = {0xff0000, 0x00ff00, 0x0000ff, 0xffff00, 0x00ffff, 0};
    uint8_t *px[6];
    bv_plot_image cells[6];
    for (int i = 0; i < 6; i++) {
        int h = i == 4 ? 10 : 20;
        px[i] = solid(20, h, colours[i]);
        cells[i] = (bv_plot_image){i == 5 ? NULL : px[i], 20, h, i >= 3 ? "caption" : NULL};
    }
    const char *headings[2] = {"first row", NULL}, *labels[2] = {NULL, "second"};
    bv_plot_grid g = {.title = "a grid", .rows = 2, .cols = 3, .cells = cells, .row_headings = headings,
                      .row_labels = labels, .cell_w = 40, .cell_h = 40};
    int w, h;
    if (bv_plot_grid_size("grid", &g, &w, &h)) fail_msg("%s", bv_error_msg());
    const char *path = bv_test_path("grid.png");
    if (bv_plot_grid_write_png(path, &g)) fail_msg("%s", bv_error_msg());
    image im = read_png(path);
    assert_int_equal(im.w, w);
    assert_int_equal(im.h, h);
    /* 8 px margins, 22 px of labels, 3 cells of 40: at least 8 + 22 + 3 * 40 + 2 * 8 + 8 wide (the
     * title may widen it); 8 + title 30 + heading 22 + 40 + 8 + 40 + caption 18 + 8 high */
    assert_true(w >= 174);
    assert_int_equal(h, 174);
    int px0 = -1, py0 = -1;
    for (int r = 0; r < 2; r++)
        for (int c = 0; c < 3; c++) {
            int x, y;
            if (bv_plot_grid_cell("grid", &g, r, c, &x, &y)) fail_msg("%s", bv_error_msg());
            if (c) assert_true(x > px0 + 40);
            if (r) assert_true(y > py0 + 40);
            int i = r * 3 + c;
            uint32_t want = i == 5 ? 0xffffff : colours[i]; /* the empty cell stays white */
            /* the middle and the corners (2 px in) of the cell */
            const int dx[5] = {20, 2, 37, 2, 37}, dy[5] = {20, 2, 2, 37, 37};
            for (int k = 0; k < 5; k++) {
                uint32_t got = bv_test_pixel(&im, x + dx[k], y + dy[k]);
                uint32_t exp = i == 4 && (dy[k] < 10 || dy[k] >= 30) ? 0xffffff : want; /* letterboxed: 40 x 20 */
                if (got != exp)
                    fail_msg("cell (%d, %d) at (%d, %d) + (%d, %d): got %06x, want %06x", r, c, x, y, dx[k], dy[k], got, exp);
            }
            px0 = c ? x : -1000, py0 = c == 2 ? y : py0;
        }
    /* the rendered bytes are the PNG's */
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (bv_plot_grid_render("grid", &g, rgb)) fail_msg("%s", bv_error_msg());
    assert_memory_equal(rgb, im.rgb, (size_t)w * h * 3);
    /* min_width widens it, the cells centred */
    int x0, y0, x1, y1;
    bv_plot_grid_cell("grid", &g, 0, 0, &x0, &y0);
    g.min_width = w + 100;
    int w2, h2;
    if (bv_plot_grid_size("grid", &g, &w2, &h2)) fail_msg("%s", bv_error_msg());
    assert_int_equal(w2, w + 100);
    assert_int_equal(h2, h);
    bv_plot_grid_cell("grid", &g, 0, 0, &x1, &y1);
    assert_int_equal(x1, x0 + 50);
    assert_int_equal(y1, y0);
    free(rgb), free(im.rgb);
    for (int i = 0; i < 6; i++) free(px[i]);
}

static void test_grid_errors(void **state) {
    uint8_t px[12] = {0};
    bv_plot_image cell = {px, 2, 2, NULL};
    bv_plot_grid g = {.rows = 0, .cols = 1, .cells = &cell};
    int w, h, x, y;
    assert_int_equal(bv_plot_grid_size("g", &g, &w, &h), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "g: an image grid of 0 x 1 cells");
    g.rows = 1;
    assert_int_equal(bv_plot_grid_size("g", &g, &w, &h), BV_ERR_ARG); /* cells of 2 x 2 */
    bv_test_expect_in(bv_error_msg(), "cells of 2 x 2 pixels");
    g.cell_w = g.cell_h = 16;
    assert_int_equal(bv_plot_grid_size("g", &g, &w, &h), BV_OK);
    assert_int_equal(bv_plot_grid_cell("g", &g, 1, 0, &x, &y), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "cell (1, 0) of a 1 x 1 grid");
    cell.w = 0;
    assert_int_equal(bv_plot_grid_size("g", &g, &w, &h), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "an image of 0 x 2 pixels");
    cell.w = 2;
    g.min_width = -1;
    assert_int_equal(bv_plot_grid_size("g", &g, &w, &h), BV_ERR_ARG);
    g.min_width = 0;
    assert_int_equal(bv_plot_grid_write_png("/nonexistent/dir/grid.png", &g), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/dir/grid.png");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_figure),
        cmocka_unit_test(test_gap_and_dot),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_bars),
        cmocka_unit_test(test_bars_auto),
        cmocka_unit_test(test_bars_errors),
        cmocka_unit_test(test_grid),
        cmocka_unit_test(test_grid_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
