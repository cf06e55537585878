/* plot.h - line charts as PNG images: training curves a person can look at without Python.
 *
 * A figure is a grid of panels; a panel is a line chart with a title, x and y axis labels, "nice"
 * ticks with their numbers and light grid lines, several named series (colours from a fixed
 * palette, bv_plot_color) with a legend, and an optional logarithmic y axis. Points whose x or y is
 * not finite (or whose y is <= 0 on a log axis) are gaps: the line stops there and starts again
 * after; a point with no neighbour is drawn as a dot. White background, antialiased lines and text
 * (cairo, its toy text API with the system's sans-serif font). The PNG is written atomically
 * (src/atomic_file.h): the destination appears whole or not at all.
 *
 * Owns: nothing past a call (the series' arrays are borrowed). Must not: know what is plotted.
 */
#ifndef BV_PLOT_H
#define BV_PLOT_H

#include <stdbool.h>
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

#endif
