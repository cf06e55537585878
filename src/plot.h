/* plot.h - figures as PNG images, drawn with cairo: training curves, bar charts and sheets of
 * captioned images a person can look at without Python.
 *
 * Line charts (bv_plot_write_png): a figure is a grid of panels; a panel is a line chart with a
 * title, x and y axis labels, "nice" ticks with their numbers and light grid lines, several named
 * series (colours from a fixed palette, bv_plot_color) with a legend, and an optional logarithmic
 * y axis. Points whose x or y is not finite (or whose y is <= 0 on a log axis) are gaps: the line
 * stops there and starts again after; a point with no neighbour is drawn as a dot.
 *
 * Bar charts (bv_plot_bars_write_png): groups along x, in each group one bar per series side by
 * side (series i in bv_plot_color(i), a legend above the plot), each bar with an optional error bar
 * (its two ends given), y ticks and grid lines; group labels under the groups, slanted when they do
 * not fit their group's width.
 *
 * Image grids (bv_plot_grid_*): rows x cols RGB images scaled to one cell size, an optional caption
 * under each, a heading above a row, a label left of a row (written upwards) and a title, the
 * grid as wide as its text needs; written as PNG or rendered into RGB bytes (for the frames of an
 * animation, src/apng.h).
 *
 * White background, antialiased lines and text (cairo, its toy text API with the system's
 * sans-serif font). PNGs are written atomically (src/atomic_file.h): the destination appears whole
 * or not at all.
 *
 * Owns: nothing past a call (the series' arrays and the images are borrowed). Must not: know what
 * is plotted.
 */
#ifndef BV_PLOT_H
#define BV_PLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/common.h"

typedef struct {
    const char *name;     /* legend label; NULL: not in the legend */
    const double *x, *y;  /* n points (borrowed), in the order they are joined */
    int64_t n;
} bv_plot_series;

typedef struct {
    const char *title, *xlabel, *ylabel; /* each may be NULL */
    bool log_y;                          /* base-10 logarithmic y axis */
    int n_series;
    const bv_plot_series *series;        /* series i is drawn in bv_plot_color(i) */
} bv_plot_panel;

typedef struct {
    const char *title;  /* above the panels; NULL: none */
    int n_panels;
    const bv_plot_panel *panels;
    int cols;           /* panels per row, filled row by row (0: one column) */
    int panel_width;    /* pixels of one panel (0: 640) */
    int panel_height;   /* (0: 400) */
} bv_plot_figure;

/* Render `fig` and write it to `path` as a PNG (8-bit RGB), atomically. Errors name the path:
 * BV_ERR_ARG for a figure that cannot be drawn (no panels, a size outside [200, 8000] pixels, a
 * series with n < 0 or no data pointer), BV_ERR_IO for the file, BV_ERR_INTERNAL for cairo. */
bv_status bv_plot_write_png(const char *path, const bv_plot_figure *fig);

/* The colour of series i, 0xRRGGBB: a ten-colour palette (matplotlib's "tab10"), repeating. */
uint32_t bv_plot_color(int i);

/* "Nice" linear ticks for the range [lo, hi]: the multiples inside it of the smallest step of the
 * form 1, 2 or 5 times a power of ten that gives at most max_ticks (>= 2) of them. Writes them to
 * ticks (room for max_ticks), in increasing order, and returns how many: 0 when lo >= hi or either
 * is not finite. */
int bv_plot_ticks(double lo, double hi, int max_ticks, double *ticks);

/* ---- bar charts ---- */

typedef struct {
    const char *name;             /* legend label; NULL: not in the legend */
    const double *value;          /* n_groups bar heights (borrowed); a non-finite one: no bar */
    const double *err_lo, *err_hi; /* n_groups ends of each error bar, in the values' units (not
                                    * offsets); NULL: no error bars; a non-finite end: none there */
} bv_plot_bar_series;

typedef struct {
    const char *title, *xlabel, *ylabel;    /* each may be NULL */
    int n_groups;
    const char *const *group_labels;        /* n_groups labels (each may be NULL); NULL: none */
    int n_series;
    const bv_plot_bar_series *series;       /* side by side in each group, series i in bv_plot_color(i) */
    double y_min, y_max;   /* the y range; both 0: from the data (0, the values and the error bar
                            * ends, padded by 5 %) */
    int width;             /* pixels (0: about 16 px per bar, at least 640 and the title's width) */
    int height;            /* pixels (0: a plot area of 320 px plus the margins the text needs) */
} bv_plot_bars;

/* Render the bar chart and write it to `path` as a PNG, atomically. Errors name the path:
 * BV_ERR_ARG for a chart that cannot be drawn (no groups or series, a series without values, a y
 * range that is given but empty or not finite, a size outside [200, 32767] pixels or too small for
 * its margins), BV_ERR_IO for the file, BV_ERR_INTERNAL for cairo. */
bv_status bv_plot_bars_write_png(const char *path, const bv_plot_bars *b);

/* ---- image grids ---- */

typedef struct {
    const uint8_t *rgb;  /* (h, w, 3) bytes, row 0 at the top (borrowed); NULL: an empty cell */
    int w, h;
    const char *caption; /* one line under the image; NULL: none */
} bv_plot_image;

typedef struct {
    const char *title;               /* above the grid, bold; NULL: none */
    int rows, cols;
    const bv_plot_image *cells;      /* rows x cols, row-major */
    const char *const *row_headings; /* rows entries, each a line above its row or NULL; NULL: none */
    const char *const *row_labels;   /* rows entries, each written upwards left of its row or NULL; NULL: none */
    int cell_w, cell_h; /* each image scaled (aspect kept, centred) into cell_w x cell_h pixels;
                         * 0: the largest image's width / height */
    int min_width;      /* pixels at least (0: as wide as the cells, the title and the headings need;
                         * frames of an animation set the widest frame's, so that all are one size) */
} bv_plot_grid;

/* The grid's size in pixels. BV_ERR_ARG (the message starting with `what`) for a grid that cannot
 * be drawn: rows or cols < 1, no cells, an image with a size outside [1, 8192], a cell size
 * outside [8, 8192], a min_width outside [0, 32767], a whole larger than 32767 pixels. */
bv_status bv_plot_grid_size(const char *what, const bv_plot_grid *g, int *w, int *h);
/* Where cell (r, c)'s cell_w x cell_h box lies in the grid: its top left corner, pixels. */
bv_status bv_plot_grid_cell(const char *what, const bv_plot_grid *g, int r, int c, int *x, int *y);
/* Render the grid into rgb, (h, w, 3) bytes of bv_plot_grid_size. Errors as bv_plot_grid_size, and
 * BV_ERR_INTERNAL for cairo. */
bv_status bv_plot_grid_render(const char *what, const bv_plot_grid *g, uint8_t *rgb);
/* Render the grid and write it to `path` as a PNG, atomically. Errors name the path. */
bv_status bv_plot_grid_write_png(const char *path, const bv_plot_grid *g);

#endif
