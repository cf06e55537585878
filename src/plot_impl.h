/* plot_impl.h - what the drawings of src/plot.h share: text (cairo's toy API, cleaned to valid
 * UTF-8), colours, and a canvas that ends as an atomically written PNG or as RGB bytes.
 *
 * A drawing makes a canvas (bv_plot_canvas_new: white, RGB24), draws on its cairo context, checks
 * it (bv_plot_canvas_finish) and hands it on (bv_plot_canvas_write_png / bv_plot_canvas_to_rgb).
 * Must not: be included outside src/plot*.c.
 */
#ifndef BV_PLOT_IMPL_H
#define BV_PLOT_IMPL_H

#include <cairo.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/common.h"

/* `s` with every byte that is not part of valid UTF-8 replaced by '?' (cairo refuses such text and
 * would fail the whole figure), into buf (cut at cap - 5 bytes); NULL is "". Returns buf. */
const char *bv_plot_utf8_clean(const char *s, char *buf, size_t cap);
/* Select the sans-serif face at `size` points, bold or not. */
void bv_plot_font(cairo_t *cr, double size, bool bold);
double bv_plot_text_width(cairo_t *cr, const char *s);
/* Draw s with its box anchored at (x, y): ax 0 left, 0.5 centre, 1 right; ay the same from the top;
 * vertical placement uses the font's ascent and descent, so labels of one row line up. */
void bv_plot_text_at(cairo_t *cr, const char *s, double x, double y, double ax, double ay);
/* The source colour 0xRRGGBB. */
void bv_plot_rgb(cairo_t *cr, uint32_t c);

/* A w x h white canvas and its context. BV_ERR_INTERNAL naming `what` when cairo cannot make it
 * (nothing to free then). */
bv_status bv_plot_canvas_new(const char *what, int w, int h, cairo_surface_t **surf, cairo_t **cr);
/* The drawing is done: destroys cr; BV_ERR_INTERNAL naming `what` (and surf destroyed) when a cairo
 * call failed on it. */
bv_status bv_plot_canvas_finish(const char *what, cairo_surface_t *surf, cairo_t *cr);
/* Encode a finished canvas as PNG (8-bit RGB) into `path`, atomically; destroys surf. Errors name
 * the path: BV_ERR_IO for the file, BV_ERR_INTERNAL for the encoder. */
bv_status bv_plot_canvas_write_png(const char *path, cairo_surface_t *surf);
/* Copy a finished canvas into rgb (h, w, 3) bytes, row 0 at the top; destroys surf. */
void bv_plot_canvas_to_rgb(cairo_surface_t *surf, uint8_t *rgb);

#endif
