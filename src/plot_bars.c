/* plot_bars.c - grouped bar charts with error bars, drawn with cairo, written as PNG. See plot.h. */
#include <math.h>
#include <stdio.h>

#include "src/plot.h"
#include "src/plot_impl.h"

#define BAR_PX 16      /* default width per bar, gap included */
#define PLOT_H 320     /* default height of the plot area */
#define LABEL_SLANT 0.7853981633974483 /* 45 degrees */
#define LABEL_MAX_PX 240 /* the band of slanted group labels is at most this high */

typedef struct {
    int width, height;
    double left, right, top, bottom; /* the plot area */
    double lo, hi;                   /* the y range */
    bool slant;                      /* group labels at 45 degrees */
    double ticks[16];
    int n_ticks;
    double legend_y;                 /* the legend's row, centre; < 0: no legend */
} bars_layout;

static bool finite_at(const double *a, int i) { return a && isfinite(a[i]); }

static bv_status check_bars(const char *path, const bv_plot_bars *b) {
    if (b->n_groups < 1 || b->n_series < 1 || !b->series)
        return bv_error_set(BV_ERR_ARG, "%s: a bar chart needs at least one group and one series (got %d groups, %d series)",
                            path, b->n_groups, b->n_series);
    for (int s = 0; s < b->n_series; s++)
        if (!b->series[s].value) return bv_error_set(BV_ERR_ARG, "%s: bar series %d has no values", path, s);
    if ((b->y_min != 0 || b->y_max != 0) && !(isfinite(b->y_min) && isfinite(b->y_max) && b->y_min < b->y_max))
        return bv_error_set(BV_ERR_ARG, "%s: the y range [%g, %g] is empty or not finite", path, b->y_min, b->y_max);
    if (b->width && (b->width < 200 || b->width > 32767))
        return bv_error_set(BV_ERR_ARG, "%s: a width of %d pixels (expected 200..32767)", path, b->width);
    if (b->height && (b->height < 200 || b->height > 32767))
        return bv_error_set(BV_ERR_ARG, "%s: a height of %d pixels (expected 200..32767)", path, b->height);
    return BV_OK;
}

/* The y range: the one given, or 0 and every finite value and error bar end, padded by 5 %. */
static void bars_range(const bv_plot_bars *b, double *lo, double *hi) {
    if (b->y_min != 0 || b->y_max != 0) {
        *lo = b->y_min, *hi = b->y_max;
        return;
    }
    double l = 0, h = 0;
    for (int s = 0; s < b->n_series; s++) {
        const bv_plot_bar_series *se = &b->series[s];
        for (int g = 0; g < b->n_groups; g++) {
            if (finite_at(se->value, g)) l = fmin(l, se->value[g]), h = fmax(h, se->value[g]);
            if (finite_at(se->err_lo, g)) l = fmin(l, se->err_lo[g]), h = fmax(h, se->err_lo[g]);
            if (finite_at(se->err_hi, g)) l = fmin(l, se->err_hi[g]), h = fmax(h, se->err_hi[g]);
        }
    }
    if (!(l < h)) h = 1;
    double pad = 0.05 * (0.5 * h - 0.5 * l) * 2;
    if (l < 0 && isfinite(l - pad)) l -= pad;
    if (h > 0 && isfinite(h + pad)) h += pad;
    *lo = l, *hi = h;
}

static bv_status bars_layout_make(const char *path, const bv_plot_bars *b, cairo_t *cr, bars_layout *L) {
    bars_range(b, &L->lo, &L->hi);
    L->n_ticks = bv_plot_ticks(L->lo, L->hi, 6, L->ticks);
    char buf[64];
    bv_plot_font(cr, 11, false);
    double tick_w = 0;
    for (int i = 0; i < L->n_ticks; i++) {
        snprintf(buf, sizeof buf, "%g", L->ticks[i]);
        tick_w = fmax(tick_w, bv_plot_text_width(cr, buf));
    }
    bool legend = false;
    for (int s = 0; s < b->n_series; s++) legend = legend || b->series[s].name;
    double need = 100.0 + tick_w + (double)b->n_groups * (b->n_series * BAR_PX + 12);
    if (b->title) {
        bv_plot_font(cr, 15, true);
        need = fmax(need, bv_plot_text_width(cr, b->title) + 40);
    }
    L->width = b->width ? b->width : (int)BV_MIN(32767.0, fmax(640.0, need));
    L->left = (b->ylabel ? 30 : 12) + tick_w + 8;
    L->right = L->width - 16;
    if (L->right - L->left < 40)
        return bv_error_set(BV_ERR_ARG, "%s: %d groups of %d bars do not fit %d pixels", path, b->n_groups, b->n_series,
                            L->width);
    double gw = (L->right - L->left) / b->n_groups, label_w = 0;
    bv_plot_font(cr, 11, false);
    for (int g = 0; b->group_labels && g < b->n_groups; g++)
        label_w = fmax(label_w, bv_plot_text_width(cr, b->group_labels[g]));
    L->slant = label_w > gw - 4;
    if (L->slant) { /* the first group's label reaches left of its centre: keep it in the image */
        double reach = fmin(LABEL_MAX_PX, label_w) * cos(LABEL_SLANT) + 4;
        double k = 1.0 / (2 * b->n_groups); /* the left margin at which left + gw / 2 = reach */
        if (L->left + gw / 2 < reach && L->right - reach > 40) {
            L->left = (reach - k * L->right) / (1 - k);
            gw = (L->right - L->left) / b->n_groups;
        }
    }
    double label_h = !b->group_labels ? 0 : L->slant ? fmin(LABEL_MAX_PX, label_w * sin(LABEL_SLANT) + 14) + 8 : 22;
    double top = 10 + (b->title ? 26 : 0);
    L->legend_y = legend ? top + 9 : -1;
    L->top = top + (legend ? 26 : 4);
    double below = 6 + label_h + (b->xlabel ? 24 : 0) + 6;
    L->height = b->height ? b->height : (int)BV_MIN(32767.0, L->top + PLOT_H + below);
    L->bottom = L->height - below;
    if (L->bottom - L->top < 60)
        return bv_error_set(BV_ERR_ARG, "%s: a height of %d pixels leaves no room for the bars under the title and above "
                            "the labels", path, L->height);
    return BV_OK;
}

static double bar_y(const bars_layout *L, double v) {
    double t = (0.5 * v - 0.5 * L->lo) / (0.5 * L->hi - 0.5 * L->lo);
    return L->bottom - fmax(-0.05, fmin(1.05, t)) * (L->bottom - L->top);
}

static void draw_bars(cairo_t *cr, const bv_plot_bars *b, const bars_layout *L) {
    char buf[64];
    /* grid lines and tick numbers */
    cairo_set_line_width(cr, 1);
    bv_plot_font(cr, 11, false);
    for (int i = 0; i < L->n_ticks; i++) {
        double py = round(bar_y(L, L->ticks[i])) + 0.5;
        bv_plot_rgb(cr, 0xe6e6e6);
        cairo_move_to(cr, L->left, py);
        cairo_line_to(cr, L->right, py);
        cairo_stroke(cr);
        bv_plot_rgb(cr, 0x333333);
        snprintf(buf, sizeof buf, "%g", L->ticks[i]);
        bv_plot_text_at(cr, buf, L->left - 6, py, 1, 0.5);
    }
    /* bars, clipped to the plot area; then the error bars over them */
    const double gw = (L->right - L->left) / b->n_groups, bw = 0.8 * gw / b->n_series;
    const double base = bar_y(L, fmin(fmax(0.0, L->lo), L->hi));
    cairo_save(cr);
    cairo_rectangle(cr, L->left, L->top, L->right - L->left, L->bottom - L->top);
    cairo_clip(cr);
    for (int g = 0; g < b->n_groups; g++)
        for (int s = 0; s < b->n_series; s++) {
            const bv_plot_bar_series *se = &b->series[s];
            if (!finite_at(se->value, g)) continue;
            double x0 = L->left + g * gw + 0.1 * gw + s * bw, y = bar_y(L, se->value[g]);
            bv_plot_rgb(cr, bv_plot_color(s));
            cairo_rectangle(cr, x0 + 0.5, fmin(y, base), fmax(1.0, bw - 1.0), fmax(1.0, fabs(base - y)));
            cairo_fill(cr);
        }
    bv_plot_rgb(cr, 0x222222);
    cairo_set_line_width(cr, 1.5);
    for (int g = 0; g < b->n_groups; g++)
        for (int s = 0; s < b->n_series; s++) {
            const bv_plot_bar_series *se = &b->series[s];
            if (!finite_at(se->err_lo, g) || !finite_at(se->err_hi, g)) continue;
            double xc = L->left + g * gw + 0.1 * gw + (s + 0.5) * bw, cap = fmin(4.0, 0.3 * bw);
            double y0 = bar_y(L, se->err_lo[g]), y1 = bar_y(L, se->err_hi[g]);
            cairo_move_to(cr, xc, y0);
            cairo_line_to(cr, xc, y1);
            cairo_move_to(cr, xc - cap, y0);
            cairo_line_to(cr, xc + cap, y0);
            cairo_move_to(cr, xc - cap, y1);
            cairo_line_to(cr, xc + cap, y1);
            cairo_stroke(cr);
        }
    cairo_restore(cr);
    /* the frame */
    bv_plot_rgb(cr, 0x555555);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(L->left) + 0.5, round(L->top) + 0.5, round(L->right - L->left), round(L->bottom - L->top));
    cairo_stroke(cr);
    /* group labels: centred under the group, or slanted with their end under its centre */
    bv_plot_rgb(cr, 0x333333);
    bv_plot_font(cr, 11, false);
    for (int g = 0; b->group_labels && g < b->n_groups; g++) {
        if (!b->group_labels[g]) continue;
        double xc = L->left + (g + 0.5) * gw;
        if (!L->slant) {
            bv_plot_text_at(cr, b->group_labels[g], xc, L->bottom + 6, 0.5, 0);
            continue;
        }
        cairo_save(cr);
        cairo_translate(cr, xc, L->bottom + 8);
        cairo_rotate(cr, -LABEL_SLANT);
        bv_plot_text_at(cr, b->group_labels[g], 0, 0, 1, 0.5);
        cairo_restore(cr);
    }
}

static void draw_legend_row(cairo_t *cr, const bv_plot_bars *b, const bars_layout *L) {
    if (L->legend_y < 0) return;
    bv_plot_font(cr, 11, false);
    double w = 0;
    for (int s = 0; s < b->n_series; s++)
        if (b->series[s].name) w += 14 + 6 + bv_plot_text_width(cr, b->series[s].name) + 18;
    double x = fmax(L->left, (L->left + L->right - w) / 2);
    for (int s = 0; s < b->n_series; s++) {
        if (!b->series[s].name) continue;
        bv_plot_rgb(cr, bv_plot_color(s));
        cairo_rectangle(cr, x, L->legend_y - 6, 14, 12);
        cairo_fill(cr);
        bv_plot_rgb(cr, 0x222222);
        bv_plot_text_at(cr, b->series[s].name, x + 20, L->legend_y, 0, 0.5);
        x += 14 + 6 + bv_plot_text_width(cr, b->series[s].name) + 18;
    }
}

bv_status bv_plot_bars_write_png(const char *path, const bv_plot_bars *b) {
    BV_TRY(check_bars(path, b));
    /* measure text on a scratch canvas, then draw on one of the size the layout asks for */
    cairo_surface_t *surf;
    cairo_t *cr;
    bars_layout L = {0};
    BV_TRY(bv_plot_canvas_new(path, 1, 1, &surf, &cr));
    bv_status st = bars_layout_make(path, b, cr, &L);
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    if (st) return st;
    BV_TRY(bv_plot_canvas_new(path, L.width, L.height, &surf, &cr));
    draw_bars(cr, b, &L);
    draw_legend_row(cr, b, &L);
    bv_plot_rgb(cr, 0x111111);
    if (b->title) {
        bv_plot_font(cr, 15, true);
        bv_plot_text_at(cr, b->title, L.width / 2.0, 10, 0.5, 0);
    }
    bv_plot_font(cr, 12, false);
    if (b->xlabel) bv_plot_text_at(cr, b->xlabel, (L.left + L.right) / 2, L.height - 8, 0.5, 1);
    if (b->ylabel) {
        cairo_save(cr);
        cairo_translate(cr, 8, (L.top + L.bottom) / 2);
        cairo_rotate(cr, -M_PI / 2);
        bv_plot_text_at(cr, b->ylabel, 0, 0, 0.5, 0);
        cairo_restore(cr);
    }
    BV_TRY(bv_plot_canvas_finish(path, surf, cr));
    return bv_plot_canvas_write_png(path, surf);
}
