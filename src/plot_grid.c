/* plot_grid.c - grids of captioned images (film strips, contact sheets), drawn with cairo. See plot.h.
 *
 * Layout, pixels: a margin of PAD all round and between cells; the title band; then per row its
 * heading band (when it has a heading), the cells, and the caption band (when one of its cells has
 * a caption); the row labels in a column of LABEL_W left of the cells (when any row has one). The
 * grid is as wide as the widest of the cells, the title and the headings (and min_width); the
 * labels and cells are centred in it. */
#include <math.h>
#include <string.h>

#include "src/plot.h"
#include "src/plot_impl.h"

#define PAD 8
#define TITLE_H 30
#define HEADING_H 22
#define CAPTION_H 18
#define LABEL_W 22

static bool has_label(const bv_plot_grid *g) {
    for (int r = 0; g->row_labels && r < g->rows; r++)
        if (g->row_labels[r]) return true;
    return false;
}
static int heading_h(const bv_plot_grid *g, int r) { return g->row_headings && g->row_headings[r] ? HEADING_H : 0; }
static int caption_h(const bv_plot_grid *g, int r) {
    for (int c = 0; c < g->cols; c++)
        if (g->cells[(size_t)r * g->cols + c].caption) return CAPTION_H;
    return 0;
}

/* The width the title and the headings need, pixels (measured on a scratch canvas). */
static int64_t text_width(const bv_plot_grid *g) {
    cairo_surface_t *surf;
    cairo_t *cr;
    if (bv_plot_canvas_new("measuring text", 1, 1, &surf, &cr)) return 0;
    double w = 0;
    if (g->title) {
        bv_plot_font(cr, 15, true);
        w = bv_plot_text_width(cr, g->title) + 2 * PAD;
    }
    bv_plot_font(cr, 12, true);
    for (int r = 0; g->row_headings && r < g->rows; r++)
        if (g->row_headings[r])
            w = fmax(w, bv_plot_text_width(cr, g->row_headings[r]) + 2 * PAD + (has_label(g) ? LABEL_W : 0));
    cairo_destroy(cr);
    cairo_surface_destroy(surf);
    return (int64_t)ceil(fmin(w, 40000.0));
}

/* The cell size (resolved) and the whole size; checks the grid. */
static bv_status grid_check(const char *what, const bv_plot_grid *g, int *cw, int *ch, int *w, int *h) {
    if (g->rows < 1 || g->cols < 1 || !g->cells)
        return bv_error_set(BV_ERR_ARG, "%s: an image grid of %d x %d cells%s (expected at least 1 x 1)", what, g->rows,
                            g->cols, g->cells ? "" : " and no cells");
    if ((int64_t)g->rows * g->cols > 100000)
        return bv_error_set(BV_ERR_ARG, "%s: %d x %d cells are too many", what, g->rows, g->cols);
    int mw = 0, mh = 0;
    for (int i = 0; i < g->rows * g->cols; i++) {
        const bv_plot_image *im = &g->cells[i];
        if (!im->rgb) continue;
        if (im->w < 1 || im->w > 8192 || im->h < 1 || im->h > 8192)
            return bv_error_set(BV_ERR_ARG, "%s: cell %d (row %d, column %d): an image of %d x %d pixels (expected 1..8192)",
                                what, i, i / g->cols, i % g->cols, im->w, im->h);
        mw = BV_MAX(mw, im->w), mh = BV_MAX(mh, im->h);
    }
    *cw = g->cell_w ? g->cell_w : mw;
    *ch = g->cell_h ? g->cell_h : mh;
    if (*cw < 8 || *cw > 8192 || *ch < 8 || *ch > 8192)
        return bv_error_set(BV_ERR_ARG, "%s: cells of %d x %d pixels (expected 8..8192; no image to size them by?)", what,
                            *cw, *ch);
    int64_t W = 2 * PAD + (has_label(g) ? LABEL_W : 0) + (int64_t)g->cols * *cw + (int64_t)(g->cols - 1) * PAD;
    if (g->min_width < 0 || g->min_width > 32767)
        return bv_error_set(BV_ERR_ARG, "%s: a minimum width of %d pixels (expected 0..32767)", what, g->min_width);
    W = BV_MAX(W, text_width(g));
    W = BV_MAX(W, g->min_width);
    int64_t H = 2 * PAD + (g->title ? TITLE_H : 0) + (int64_t)(g->rows - 1) * PAD;
    for (int r = 0; r < g->rows; r++) H += heading_h(g, r) + *ch + caption_h(g, r);
    if (W > 32767 || H > 32767)
        return bv_error_set(BV_ERR_ARG, "%s: a grid of %lld x %lld pixels (at most 32767 each way)", what, (long long)W,
                            (long long)H);
    *w = (int)W, *h = (int)H;
    return BV_OK;
}

bv_status bv_plot_grid_size(const char *what, const bv_plot_grid *g, int *w, int *h) {
    int cw, ch;
    return grid_check(what, g, &cw, &ch, w, h);
}

/* Top left of cell (r, c) in a grid w pixels wide (checked): the block of labels and cells centred. */
static void cell_xy(const bv_plot_grid *g, int w, int cw, int ch, int r, int c, int *x, int *y) {
    int block = (has_label(g) ? LABEL_W : 0) + g->cols * cw + (g->cols - 1) * PAD;
    *x = (w - block) / 2 + (has_label(g) ? LABEL_W : 0) + c * (cw + PAD);
    int yy = PAD + (g->title ? TITLE_H : 0);
    for (int k = 0; k < r; k++) yy += heading_h(g, k) + ch + caption_h(g, k) + PAD;
    *y = yy + heading_h(g, r);
}

bv_status bv_plot_grid_cell(const char *what, const bv_plot_grid *g, int r, int c, int *x, int *y) {
    int cw, ch, w, h;
    BV_TRY(grid_check(what, g, &cw, &ch, &w, &h));
    if (r < 0 || r >= g->rows || c < 0 || c >= g->cols)
        return bv_error_set(BV_ERR_ARG, "%s: cell (%d, %d) of a %d x %d grid", what, r, c, g->rows, g->cols);
    cell_xy(g, w, cw, ch, r, c, x, y);
    return BV_OK;
}

/* Draw im scaled into the cw x ch box at (x, y), its aspect kept, centred. */
static void draw_image(cairo_t *cr, const bv_plot_image *im, int x, int y, int cw, int ch) {
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, im->w, im->h);
    if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
        cairo_set_source_surface(cr, s, 0, 0); /* puts cr in error: the caller's status check reports it */
        cairo_surface_destroy(s);
        return;
    }
    cairo_surface_flush(s);
    unsigned char *data = cairo_image_surface_get_data(s);
    const int stride = cairo_image_surface_get_stride(s);
    for (int yy = 0; yy < im->h; yy++) {
        uint32_t *row = (uint32_t *)(data + (size_t)yy * stride);
        const uint8_t *p = im->rgb + (size_t)yy * im->w * 3;
        for (int xx = 0; xx < im->w; xx++)
            row[xx] = (uint32_t)p[3 * xx] << 16 | (uint32_t)p[3 * xx + 1] << 8 | p[3 * xx + 2];
    }
    cairo_surface_mark_dirty(s);
    double sc = fmin((double)cw / im->w, (double)ch / im->h);
    double dw = im->w * sc, dh = im->h * sc, ox = x + (cw - dw) / 2, oy = y + (ch - dh) / 2;
    cairo_save(cr);
    cairo_rectangle(cr, ox, oy, dw, dh);
    cairo_clip(cr);
    cairo_translate(cr, ox, oy);
    cairo_scale(cr, sc, sc);
    cairo_set_source_surface(cr, s, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), sc == floor(sc) ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
    cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
    cairo_paint(cr);
    cairo_restore(cr);
    cairo_surface_destroy(s);
}

static bv_status grid_draw(const char *what, const bv_plot_grid *g, cairo_surface_t **surf) {
    int cw, ch, w, h;
    BV_TRY(grid_check(what, g, &cw, &ch, &w, &h));
    cairo_t *cr;
    BV_TRY(bv_plot_canvas_new(what, w, h, surf, &cr));
    if (g->title) {
        bv_plot_rgb(cr, 0x111111);
        bv_plot_font(cr, 15, true);
        bv_plot_text_at(cr, g->title, w / 2.0, PAD + 4, 0.5, 0);
    }
    for (int r = 0; r < g->rows; r++) {
        int x0, y0;
        cell_xy(g, w, cw, ch, r, 0, &x0, &y0);
        if (heading_h(g, r)) { /* from the left of the block, moved left as far as it must to fit */
            bv_plot_rgb(cr, 0x111111);
            bv_plot_font(cr, 12, true);
            double hx = x0 - (has_label(g) ? LABEL_W : 0), hw = bv_plot_text_width(cr, g->row_headings[r]);
            hx = fmax(PAD, fmin(hx, w - PAD - hw));
            bv_plot_text_at(cr, g->row_headings[r], hx, y0 - HEADING_H / 2.0, 0, 0.5);
        }
        if (g->row_labels && g->row_labels[r]) {
            cairo_save(cr);
            cairo_translate(cr, x0 - LABEL_W / 2.0 - PAD / 2.0, y0 + ch / 2.0);
            cairo_rotate(cr, -M_PI / 2);
            bv_plot_rgb(cr, 0x333333);
            bv_plot_font(cr, 11, false);
            bv_plot_text_at(cr, g->row_labels[r], 0, 0, 0.5, 0.5);
            cairo_restore(cr);
        }
        for (int c = 0; c < g->cols; c++) {
            const bv_plot_image *im = &g->cells[(size_t)r * g->cols + c];
            int x = x0 + c * (cw + PAD);
            if (im->rgb) draw_image(cr, im, x, y0, cw, ch);
            if (im->caption) {
                bv_plot_rgb(cr, 0x333333);
                bv_plot_font(cr, 11, false);
                bv_plot_text_at(cr, im->caption, x + cw / 2.0, y0 + ch + CAPTION_H / 2.0, 0.5, 0.5);
            }
        }
    }
    return bv_plot_canvas_finish(what, *surf, cr);
}

bv_status bv_plot_grid_render(const char *what, const bv_plot_grid *g, uint8_t *rgb) {
    cairo_surface_t *surf;
    BV_TRY(grid_draw(what, g, &surf));
    bv_plot_canvas_to_rgb(surf, rgb);
    return BV_OK;
}

bv_status bv_plot_grid_write_png(const char *path, const bv_plot_grid *g) {
    cairo_surface_t *surf;
    BV_TRY(grid_draw(path, g, &surf));
    return bv_plot_canvas_write_png(path, surf);
}
