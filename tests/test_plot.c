/* Tests of src/plot.h:
 *  - ticks: 1-2-5 steps, inside the range, at most the count asked, none for an empty range;
 *  - a two-panel figure (two series with a legend; a log axis) written as PNG and read back with
 *    libpng: the size, a white background, drawn pixels (not blank), pixels of each series' colour;
 *  - a NaN gap leaves a band of columns without the series' colour; a lone point is a dot;
 *  - a panel without data, and values as large as doubles go, still render;
 *  - errors: a bad figure (BV_ERR_ARG), an unwritable path (BV_ERR_IO naming it), nothing left
 *    behind. */
#include <math.h>
#include <png.h>
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

typedef struct {
    int w, h;
    uint8_t *rgb; /* h rows of w RGB pixels */
} image;

static image read_png(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    uint8_t sig[8];
    assert_int_equal(fread(sig, 1, 8, f), 8);
    if (png_sig_cmp(sig, 0, 8)) fail_msg("%s is not a PNG", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(png);
    assert_non_null(info);
    image im = {0};
    if (setjmp(png_jmpbuf(png))) fail_msg("%s: libpng failed to decode it", path);
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    im.w = (int)png_get_image_width(png, info);
    im.h = (int)png_get_image_height(png, info);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_palette_to_rgb(png);
    png_set_gray_to_rgb(png);
    png_read_update_info(png, info);
    assert_int_equal(png_get_rowbytes(png, info), (size_t)im.w * 3);
    im.rgb = malloc((size_t)im.w * im.h * 3);
    png_bytep *rows = malloc(sizeof *rows * im.h);
    for (int y = 0; y < im.h; y++) rows[y] = im.rgb + (size_t)y * im.w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    return im;
}

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_figure),
        cmocka_unit_test(test_gap_and_dot),
        cmocka_unit_test(test_degenerate),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
