/* plot.c - line charts drawn with cairo, written as PNG, and what every drawing of plot.h shares
 * (plot_impl.h). See plot.h. */
#include "src/plot.h"

#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <string.h>

#include "src/atomic_file.h"
#include "src/plot_impl.h"

static const uint32_t k_palette[10] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd,
                                       0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf};

uint32_t bv_plot_color(int i) { return k_palette[((i % 10) + 10) % 10]; }

int bv_plot_ticks(double lo, double hi, int max_ticks, double *ticks) {
    if (!isfinite(lo) || !isfinite(hi) || !(lo < hi) || max_ticks < 2 || !isfinite(hi - lo)) return 0;
    double mag = pow(10.0, floor(log10((hi - lo) / (max_ticks - 1))));
    static const double k_mult[] = {1, 2, 5, 10, 20, 50};
    double step = 0, first = 0;
    int n = 0;
    for (size_t m = 0; m < BV_ARRAY_LEN(k_mult); m++) {
        step = k_mult[m] * mag;
        first = ceil(lo / step - 1e-9);
        n = (int)(floor(hi / step + 1e-9) - first) + 1;
        if (n <= max_ticks) break;
    }
    n = BV_MIN(n, max_ticks);
    for (int i = 0; i < n; i++) {
        double v = (first + i) * step;
        ticks[i] = fabs(v) < 1e-9 * step ? 0.0 : v;
    }
    return n;
}

/* ---- text ---- */

const char *bv_plot_utf8_clean(const char *s, char *buf, size_t cap) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    while (*p && o + 5 < cap) {
        int len = *p < 0x80 ? 1 : (*p >> 5) == 6 ? 2 : (*p >> 4) == 14 ? 3 : (*p >> 3) == 30 ? 4 : 0;
        bool ok = len > 0;
        for (int k = 1; ok && k < len; k++) ok = (p[k] & 0xc0) == 0x80;
        if (!ok) {
            buf[o++] = '?';
            p++;
            continue;
        }
        memcpy(buf + o, p, (size_t)len);
        o += (size_t)len;
        p += len;
    }
    buf[o] = '\0';
    return buf;
}

void bv_plot_font(cairo_t *cr, double size, bool bold) {
    cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL,
                           bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
}

double bv_plot_text_width(cairo_t *cr, const char *s) {
    char buf[512];
    cairo_text_extents_t e;
    cairo_text_extents(cr, bv_plot_utf8_clean(s, buf, sizeof buf), &e);
    return e.x_advance;
}

void bv_plot_text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay) {
    char buf[512];
    bv_plot_utf8_clean(s, buf, sizeof buf);
    cairo_text_extents_t e;
    cairo_font_extents_t f;
    cairo_text_extents(cr, buf, &e);
    cairo_font_extents(cr, &f);
    cairo_move_to(cr, x - ax * e.x_advance, y - ay * (f.ascent + f.descent) + f.ascent);
    cairo_show_text(cr, buf);
}

void bv_plot_rgb(cairo_t *cr, uint32_t c) {
    cairo_set_source_rgb(cr, ((c >> 16) & 0xff) / 255.0, ((c >> 8) & 0xff) / 255.0, (c & 0xff) / 255.0);
}

/* ---- axes ---- */

typedef struct {
    double lo, hi;   /* the axis range (log10 of the values on a log axis) */
    bool log;
    double ticks[16]; /* tick positions, in the axis's units */
    char labels[16][32];
    int n_ticks;
} axis;

/* Fraction of the way from lo to hi, computed on halves so that a range as wide as the doubles
 * allow does not overflow. */
static double axis_frac(const axis *a, double v) {
    return (0.5 * v - 0.5 * a->lo) / (0.5 * a->hi - 0.5 * a->lo);
}

/* Labels for linear ticks: integers as such, otherwise as many significant digits as the step needs. */
static void label_linear(axis *a, double step) {
    double max_abs = 0;
    bool ints = step >= 1;
    for (int i = 0; i < a->n_ticks; i++) {
        max_abs = fmax(max_abs, fabs(a->ticks[i]));
        ints = ints && a->ticks[i] == floor(a->ticks[i]);
    }
    int prec = 1;
    if (max_abs > 0 && step > 0) prec = (int)floor(log10(max_abs)) - (int)floor(log10(step)) + 1;
    prec = BV_MAX(1, BV_MIN(prec, 12));
    for (int i = 0; i < a->n_ticks; i++) {
        double v = a->ticks[i];
        if (ints && max_abs < 1e7)
            snprintf(a->labels[i], sizeof a->labels[i], "%.0f", v);
        else
            snprintf(a->labels[i], sizeof a->labels[i], "%.*g", prec, v);
    }
}

static void axis_ticks(axis *a, int max_ticks) {
    a->n_ticks = 0;
    if (!a->log) {
        a->n_ticks = bv_plot_ticks(a->lo, a->hi, max_ticks, a->ticks);
        label_linear(a, a->n_ticks > 1 ? a->ticks[1] - a->ticks[0] : 1);
        return;
    }
    /* decades, every k-th when there are many */
    double d0 = ceil(a->lo - 1e-9), d1 = floor(a->hi + 1e-9);
    if (d1 - d0 + 1 >= 2) {
        double stride = ceil((d1 - d0 + 1) / max_ticks);
        for (double d = d0; d <= d1 && a->n_ticks < 16; d += stride) {
            a->ticks[a->n_ticks] = d;
            snprintf(a->labels[a->n_ticks], sizeof a->labels[0], "%g", pow(10.0, d));
            a->n_ticks++;
        }
        return;
    }
    /* less than two decades in view: linear ticks in value space, placed logarithmically */
    double v[16];
    int n = bv_plot_ticks(pow(10.0, a->lo), pow(10.0, a->hi), BV_MIN(max_ticks, 16), v);
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v[i] > 0) a->ticks[k++] = v[i];
    a->n_ticks = k;
    label_linear(a, n > 1 ? v[1] - v[0] : 1);
    for (int i = 0; i < k; i++) a->ticks[i] = log10(a->ticks[i]);
}

/* The data range of a panel: x over points with finite x and y, y likewise (log10 of y > 0 on a
 * log axis), y padded by 5 %; a degenerate range widened; [0, 1] without data. */
static bool panel_range(const bv_plot_panel *p, axis *x, axis *y) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int s = 0; s < p->n_series; s++) {
        const bv_plot_series *se = &p->series[s];
        for (int64_t i = 0; i < se->n; i++) {
            double xv = se->x[i], yv = se->y[i];
            if (!isfinite(xv) || !isfinite(yv) || (p->log_y && yv <= 0)) continue;
            if (p->log_y) yv = log10(yv);
            xlo = fmin(xlo, xv), xhi = fmax(xhi, xv), ylo = fmin(ylo, yv), yhi = fmax(yhi, yv);
        }
    }
    bool any = xlo <= xhi;
    if (!any) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
    if (xlo == xhi) {
        double d = fmax(0.5, fabs(xlo) * 0.05);
        xlo -= d, xhi += d;
    }
    if (ylo == yhi) {
        double d = p->log_y ? 0.5 : (ylo == 0 ? 1 : fabs(ylo) * 0.1);
        ylo -= d, yhi += d;
    } else {
        double pad = 0.05 * (0.5 * yhi - 0.5 * ylo) * 2;
        if (isfinite(ylo - pad) && isfinite(yhi + pad)) ylo -= pad, yhi += pad;
    }
    *x = (axis){.lo = xlo, .hi = xhi};
    *y = (axis){.lo = ylo, .hi = yhi, .log = p->log_y};
    return any;
}

/* ---- a panel ---- */

typedef struct {
    double left, right, top, bottom; /* the plot area, pixels */
} box;

static double px_x(const box *b, const axis *a, double v) {
    double t = axis_frac(a, v);
    return b->left + fmax(-1e4, fmin(1e4, t)) * (b->right - b->left);
}
static double px_y(const box *b, const axis *a, double v) {
    double t = axis_frac(a, a->log ? log10(v) : v);
    return b->bottom - fmax(-1e4, fmin(1e4, t)) * (b->bottom - b->top);
}

static bool point_ok(const bv_plot_panel *p, const bv_plot_series *s, int64_t i) {
    return isfinite(s->x[i]) && isfinite(s->y[i]) && !(p->log_y && s->y[i] <= 0);
}

static void draw_series(cairo_t *cr, const bv_plot_panel *p, const box *b, const axis *x, const axis *y) {
    cairo_save(cr);
    cairo_rectangle(cr, b->left, b->top, b->right - b->left, b->bottom - b->top);
    cairo_clip(cr);
    cairo_set_line_width(cr, 2.0);
    cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
    cairo_set_line_cap(cr, CAIRO_LINE_CAP_ROUND);
    for (int s = 0; s < p->n_series; s++) {
        const bv_plot_series *se = &p->series[s];
        bv_plot_rgb(cr, bv_plot_color(s));
        for (int64_t i = 0; i < se->n;) {
            if (!point_ok(p, se, i)) {
                i++;
                continue;
            }
            int64_t j = i; /* the run of drawable points [i, j) */
            while (j < se->n && point_ok(p, se, j)) j++;
            if (j - i == 1) {
                cairo_new_sub_path(cr);
                cairo_arc(cr, px_x(b, x, se->x[i]), px_y(b, y, se->y[i]), 2.5, 0, 2 * M_PI);
                cairo_fill(cr);
            } else {
                cairo_move_to(cr, px_x(b, x, se->x[i]), px_y(b, y, se->y[i]));
                for (int64_t k = i + 1; k < j; k++) cairo_line_to(cr, px_x(b, x, se->x[k]), px_y(b, y, se->y[k]));
                cairo_stroke(cr);
            }
            i = j;
        }
    }
    cairo_restore(cr);
}

/* How much of the lines the rectangle (x0, y0, w, h) would cover: points along every segment
 * (eight per segment), counted when inside. */
static int64_t covered(const bv_plot_panel *p, const box *b, const axis *x, const axis *y, double x0, double y0,
                       double w, double h) {
    int64_t n = 0;
    for (int s = 0; s < p->n_series; s++) {
        const bv_plot_series *se = &p->series[s];
        for (int64_t i = 0; i < se->n; i++) {
            if (!point_ok(p, se, i)) continue;
            double ax = px_x(b, x, se->x[i]), ay = px_y(b, y, se->y[i]);
            bool next = i + 1 < se->n && point_ok(p, se, i + 1);
            double bx = next ? px_x(b, x, se->x[i + 1]) : ax, by = next ? px_y(b, y, se->y[i + 1]) : ay;
            for (int k = 0; k < (next ? 8 : 1); k++) {
                double t = k / 8.0, qx = ax + t * (bx - ax), qy = ay + t * (by - ay);
                n += qx >= x0 && qx <= x0 + w && qy >= y0 && qy <= y0 + h;
            }
        }
    }
    return n;
}

/* The legend of the named series, in the corner of the plot area where it hides the least. */
static void draw_legend(cairo_t *cr, const bv_plot_panel *p, const box *b, const axis *x, const axis *y) {
    int n = 0;
    double w = 0;
    bv_plot_font(cr, 11, false);
    for (int s = 0; s < p->n_series; s++)
        if (p->series[s].name) {
            n++;
            w = fmax(w, bv_plot_text_width(cr, p->series[s].name));
        }
    if (!n) return;
    double row = 17, bw = 10 + 22 + 6 + w + 10, bh = 8 + n * row;
    /* top right, top left, bottom right, bottom left: the first that covers the least */
    const double cx[4] = {b->right - 8 - bw, b->left + 8, b->right - 8 - bw, b->left + 8};
    const double cy[4] = {b->top + 8, b->top + 8, b->bottom - 8 - bh, b->bottom - 8 - bh};
    int best = 0;
    int64_t least = INT64_MAX;
    for (int c = 0; c < 4 && least > 0; c++) {
        int64_t k = covered(p, b, x, y, cx[c], cy[c], bw, bh);
        if (k < least) least = k, best = c;
    }
    double x0 = cx[best], y0 = cy[best];
    cairo_rectangle(cr, x0, y0, bw, bh);
    cairo_set_source_rgba(cr, 1, 1, 1, 0.85);
    cairo_fill_preserve(cr);
    bv_plot_rgb(cr, 0xbbbbbb);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
    int r = 0;
    for (int s = 0; s < p->n_series; s++) {
        if (!p->series[s].name) continue;
        double ry = y0 + 4 + (r + 0.5) * row;
        bv_plot_rgb(cr, bv_plot_color(s));
        cairo_set_line_width(cr, 2.5);
        cairo_move_to(cr, x0 + 10, ry);
        cairo_line_to(cr, x0 + 32, ry);
        cairo_stroke(cr);
        bv_plot_rgb(cr, 0x222222);
        bv_plot_text_at(cr, p->series[s].name, x0 + 38, ry, 0, 0.5);
        r++;
    }
}

/* Draw panel p into the pw x ph rectangle at (ox, oy). */
static void draw_panel(cairo_t *cr, const bv_plot_panel *p, double ox, double oy, double pw, double ph) {
    axis x, y;
    bool any = panel_range(p, &x, &y);
    axis_ticks(&x, BV_MAX(2, (int)(pw / 90)));
    axis_ticks(&y, BV_MAX(2, BV_MIN(8, (int)(ph / 50))));
    /* the left margin fits the widest y tick label */
    bv_plot_font(cr, 11, false);
    double label_w = 0;
    for (int i = 0; i < y.n_ticks; i++) label_w = fmax(label_w, bv_plot_text_width(cr, y.labels[i]));
    box b = {.left = ox + (p->ylabel ? 30 : 12) + label_w + 8, .right = ox + pw - 20, .top = oy + 36,
             .bottom = oy + ph - (p->xlabel ? 48 : 30)};

    /* grid, ticks and their numbers */
    cairo_set_line_width(cr, 1);
    for (int i = 0; i < x.n_ticks; i++) {
        double px = round(b.left + axis_frac(&x, x.ticks[i]) * (b.right - b.left)) + 0.5;
        bv_plot_rgb(cr, 0xe6e6e6);
        cairo_move_to(cr, px, b.top);
        cairo_line_to(cr, px, b.bottom);
        cairo_stroke(cr);
        bv_plot_rgb(cr, 0x333333);
        bv_plot_text_at(cr, x.labels[i], px, b.bottom + 6, 0.5, 0);
    }
    for (int i = 0; i < y.n_ticks; i++) {
        double py = round(b.bottom - axis_frac(&y, y.ticks[i]) * (b.bottom - b.top)) + 0.5;
        bv_plot_rgb(cr, 0xe6e6e6);
        cairo_move_to(cr, b.left, py);
        cairo_line_to(cr, b.right, py);
        cairo_stroke(cr);
        bv_plot_rgb(cr, 0x333333);
        bv_plot_text_at(cr, y.labels[i], b.left - 6, py, 1, 0.5);
    }
    draw_series(cr, p, &b, &x, &y);
    /* the frame */
    bv_plot_rgb(cr, 0x555555);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, round(b.left) + 0.5, round(b.top) + 0.5, round(b.right - b.left), round(b.bottom - b.top));
    cairo_stroke(cr);
    if (!any) {
        bv_plot_rgb(cr, 0x888888);
        bv_plot_font(cr, 13, false);
        bv_plot_text_at(cr, "no data", (b.left + b.right) / 2, (b.top + b.bottom) / 2, 0.5, 0.5);
    }
    draw_legend(cr, p, &b, &x, &y);

    bv_plot_rgb(cr, 0x111111);
    if (p->title) {
        bv_plot_font(cr, 14, true);
        bv_plot_text_at(cr, p->title, (b.left + b.right) / 2, oy + 10, 0.5, 0);
    }
    bv_plot_font(cr, 12, false);
    if (p->xlabel) bv_plot_text_at(cr, p->xlabel, (b.left + b.right) / 2, oy + ph - 8, 0.5, 1);
    if (p->ylabel) {
        cairo_save(cr);
        cairo_translate(cr, ox + 8, (b.top + b.bottom) / 2);
        cairo_rotate(cr, -M_PI / 2);
        bv_plot_text_at(cr, p->ylabel, 0, 0, 0.5, 0);
        cairo_restore(cr);
    }
}

/* ---- the figure ---- */

static bv_status check_figure(const char *path, const bv_plot_figure *f, int *pw, int *ph, int *cols, int *rows,
                              int *title_h) {
    if (f->n_panels < 1 || !f->panels)
        return bv_error_set(BV_ERR_ARG, "%s: a figure needs at least one panel", path);
    *pw = f->panel_width ? f->panel_width : 640;
    *ph = f->panel_height ? f->panel_height : 400;
    if (*pw < 200 || *pw > 8000 || *ph < 200 || *ph > 8000)
        return bv_error_set(BV_ERR_ARG, "%s: panels of %d x %d pixels: each side must be in [200, 8000]", path, *pw,
                            *ph);
    *cols = f->cols > 0 ? BV_MIN(f->cols, f->n_panels) : 1;
    *rows = (f->n_panels + *cols - 1) / *cols;
    *title_h = f->title ? 36 : 0;
    if ((int64_t)*cols * *pw > 32767 || (int64_t)*rows * *ph + *title_h > 32767)
        return bv_error_set(BV_ERR_ARG, "%s: a figure of %d x %d panels of %d x %d pixels is larger than 32767 pixels",
                            path, *cols, *rows, *pw, *ph);
    for (int i = 0; i < f->n_panels; i++) {
        const bv_plot_panel *p = &f->panels[i];
        if (p->n_series < 0 || (p->n_series && !p->series))
            return bv_error_set(BV_ERR_ARG, "%s: panel %d: %d series and no array", path, i, p->n_series);
        for (int s = 0; s < p->n_series; s++)
            if (p->series[s].n < 0 || (p->series[s].n && (!p->series[s].x || !p->series[s].y)))
                return bv_error_set(BV_ERR_ARG, "%s: panel %d series %d: %lld points without data", path, i, s,
                                    (long long)p->series[s].n);
    }
    return BV_OK;
}

/* ---- the canvas (plot_impl.h) ---- */

bv_status bv_plot_canvas_new(const char *what, int w, int h, cairo_surface_t **surf, cairo_t **cr) {
    *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_status_t cs = cairo_surface_status(*surf);
    if (cs != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(*surf);
        *surf = NULL, *cr = NULL;
        return bv_error_set(BV_ERR_INTERNAL, "%s: cairo cannot create a %d x %d image: %s", what, w, h,
                            cairo_status_to_string(cs));
    }
    *cr = cairo_create(*surf);
    cairo_set_source_rgb(*cr, 1, 1, 1);
    cairo_paint(*cr);
    return BV_OK;
}

bv_status bv_plot_canvas_finish(const char *what, cairo_surface_t *surf, cairo_t *cr) {
    cairo_status_t cs = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_flush(surf);
    if (cs == CAIRO_STATUS_SUCCESS) return BV_OK;
    cairo_surface_destroy(surf);
    return bv_error_set(BV_ERR_INTERNAL, "%s: drawing failed: %s", what, cairo_status_to_string(cs));
}

typedef struct {
    FILE *fp;
    int err; /* errno of the first failed write */
} png_sink;

static cairo_status_t png_write(void *closure, const unsigned char *data, unsigned int len) {
    png_sink *s = closure;
    if (fwrite(data, 1, len, s->fp) != len) {
        if (!s->err) s->err = errno ? errno : EIO;
        return CAIRO_STATUS_WRITE_ERROR;
    }
    return CAIRO_STATUS_SUCCESS;
}

bv_status bv_plot_canvas_write_png(const char *path, cairo_surface_t *surf) {
    bv_atomic_file af;
    bv_status st = bv_atomic_open(&af, path);
    if (st) {
        cairo_surface_destroy(surf);
        return st;
    }
    png_sink sink = {af.fp, 0};
    cairo_status_t cs = cairo_surface_write_to_png_stream(surf, png_write, &sink);
    cairo_surface_destroy(surf);
    if (cs != CAIRO_STATUS_SUCCESS) {
        st = sink.err ? bv_error_set(BV_ERR_IO, "%s: writing %s failed: %s", path, af.tmp, strerror(sink.err))
                      : bv_error_set(BV_ERR_INTERNAL, "%s: encoding the PNG failed: %s", path,
                                     cairo_status_to_string(cs));
        bv_atomic_abort(&af);
        return st;
    }
    return bv_atomic_commit(&af);
}

void bv_plot_canvas_to_rgb(cairo_surface_t *surf, uint8_t *rgb) {
    const int w = cairo_image_surface_get_width(surf), h = cairo_image_surface_get_height(surf);
    const int stride = cairo_image_surface_get_stride(surf);
    const unsigned char *data = cairo_image_surface_get_data(surf);
    for (int y = 0; y < h; y++) {
        const uint32_t *row = (const uint32_t *)(data + (size_t)y * stride); /* xRGB, native endian */
        uint8_t *o = rgb + (size_t)y * w * 3;
        for (int x = 0; x < w; x++) {
            o[3 * x] = (uint8_t)(row[x] >> 16), o[3 * x + 1] = (uint8_t)(row[x] >> 8), o[3 * x + 2] = (uint8_t)row[x];
        }
    }
    cairo_surface_destroy(surf);
}

/* ---- line charts ---- */

bv_status bv_plot_write_png(const char *path, const bv_plot_figure *f) {
    int pw = 0, ph = 0, cols = 0, rows = 0, title_h = 0;
    BV_TRY(check_figure(path, f, &pw, &ph, &cols, &rows, &title_h));
    int width = cols * pw, height = rows * ph + title_h;
    cairo_surface_t *surf;
    cairo_t *cr;
    BV_TRY(bv_plot_canvas_new(path, width, height, &surf, &cr));
    if (f->title) {
        bv_plot_rgb(cr, 0x111111);
        bv_plot_font(cr, 16, true);
        bv_plot_text_at(cr, f->title, width / 2.0, 10, 0.5, 0);
    }
    for (int i = 0; i < f->n_panels; i++)
        draw_panel(cr, &f->panels[i], (double)(i % cols) * pw, title_h + (double)(i / cols) * ph, pw, ph);
    BV_TRY(bv_plot_canvas_finish(path, surf, cr));
    return bv_plot_canvas_write_png(path, surf);
}
