#include "data/image.h"

#include <setjmp.h>
#include <string.h>
/* jpeglib.h needs stdio.h and size_t first */
#include <stdio.h>
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

bv_image_format bv_image_sniff(const uint8_t *d, size_t n) {
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return BV_IMAGE_JPEG;
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (n >= 8 && !memcmp(d, sig, 8)) return BV_IMAGE_PNG;
    return BV_IMAGE_UNKNOWN;
}

const char *bv_image_format_name(bv_image_format f) {
    return f == BV_IMAGE_JPEG ? "jpeg" : f == BV_IMAGE_PNG ? "png" : "unknown";
}

static bv_status not_an_image(const uint8_t *d, size_t n, const char *label) {
    char hex[40] = "";
    size_t p = 0;
    for (size_t i = 0; i < n && i < 8; i++) p += (size_t)snprintf(hex + p, sizeof hex - p, "%s%02x", i ? " " : "", d[i]);
    if (n == 0) return bv_error_set(BV_ERR_FORMAT, "%s: not a JPEG or PNG image (0 bytes)", label);
    return bv_error_set(BV_ERR_FORMAT, "%s: not a JPEG or PNG image (%zu bytes starting with %s)", label, n, hex);
}

static bv_status check_dims(int64_t w, int64_t h, const char *what, const char *label) {
    if (w <= 0 || h <= 0 || w * h > BV_IMAGE_MAX_PIXELS)
        return bv_error_set(BV_ERR_FORMAT, "%s: %s image of %lld x %lld pixels (expected 1 .. %lld pixels)", label,
                            what, (long long)w, (long long)h, (long long)BV_IMAGE_MAX_PIXELS);
    return BV_OK;
}

static bv_status ensure(bv_image *img, int w, int h, const char *label) {
    size_t need = (size_t)w * (size_t)h * 3;
    if (need > img->cap) {
        uint8_t *p = realloc(img->rgb, need);
        if (!p) return bv_error_set(BV_ERR_NOMEM, "%s: cannot allocate %zu bytes for a %d x %d image", label, need, w, h);
        img->rgb = p;
        img->cap = need;
    }
    img->w = w;
    img->h = h;
    return BV_OK;
}

void bv_image_free(bv_image *img) {
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

void bv_image_bytes_free(bv_image_bytes *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void j_error_exit(j_common_ptr c) {
    jerr *e = (jerr *)c->err;
    (*c->err->format_message)(c, e->msg);
    longjmp(e->jb, 1);
}

/* Warnings: a truncated file is an error (as in TensorFlow); others are ignored. */
static void j_emit(j_common_ptr c, int level) {
    if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) j_error_exit(c);
}

static bv_status jpeg_decode(const uint8_t *d, size_t n, bv_image *img, int *w_only, int *h_only, const char *label) {
    struct jpeg_decompress_struct ci;
    jerr e;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = j_error_exit;
    e.mgr.emit_message = j_emit;
    e.msg[0] = 0;
    /* volatile: read after longjmp */
    volatile bv_status st = BV_OK;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&ci);
        if (st != BV_OK) return st;
        return bv_error_set(BV_ERR_FORMAT, "%s: corrupt JPEG image: %s", label, e.msg);
    }
    jpeg_create_decompress(&ci);
    if (n > (size_t)ULONG_MAX) n = ULONG_MAX;
    jpeg_mem_src(&ci, d, (unsigned long)n);
    jpeg_read_header(&ci, TRUE);
    if (w_only) {
        *w_only = (int)ci.image_width;
        *h_only = (int)ci.image_height;
        jpeg_destroy_decompress(&ci);
        return BV_OK;
    }
    if (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK) {
        jpeg_destroy_decompress(&ci);
        return bv_error_set(BV_ERR_UNSUPPORTED, "%s: CMYK JPEG images are not supported (expected RGB or grayscale)",
                            label);
    }
    ci.out_color_space = JCS_RGB;
    bv_status s2 = check_dims(ci.image_width, ci.image_height, "JPEG", label);
    if (!s2) s2 = ensure(img, (int)ci.image_width, (int)ci.image_height, label);
    if (s2) {
        jpeg_destroy_decompress(&ci);
        return s2;
    }
    jpeg_start_decompress(&ci);
    if (ci.output_components != 3 || (int)ci.output_width != img->w || (int)ci.output_height != img->h) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: JPEG decoder produced %d components of %u x %u (expected RGB %d x %d)",
                          label, ci.output_components, ci.output_width, ci.output_height, img->w, img->h);
        jpeg_destroy_decompress(&ci);
        return st;
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = img->rgb + (size_t)ci.output_scanline * (size_t)img->w * 3;
        if (jpeg_read_scanlines(&ci, &row, 1) != 1) {
            st = bv_error_set(BV_ERR_FORMAT, "%s: JPEG image truncated at row %u of %u", label, ci.output_scanline,
                              ci.output_height);
            jpeg_destroy_decompress(&ci);
            return st;
        }
    }
    jpeg_finish_decompress(&ci);
    jpeg_destroy_decompress(&ci);
    return BV_OK;
}

bv_status bv_image_encode_jpeg(const uint8_t *rgb, int w, int h, int quality, bv_image_bytes *out) {
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0 || quality < 1 || quality > 100)
        return bv_error_set(BV_ERR_ARG, "JPEG encode: bad size %d x %d or quality %d (expected 1..100)", w, h, quality);
    struct jpeg_compress_struct ci;
    jerr e;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = j_error_exit;
    /* b and len live in memory (their addresses go to libjpeg), so they are valid after longjmp */
    unsigned char *b = NULL;
    unsigned long len = 0;
    if (setjmp(e.jb)) {
        jpeg_destroy_compress(&ci);
        free(b);
        return bv_error_set(BV_ERR_INTERNAL, "JPEG encode of %d x %d failed: %s", w, h, e.msg);
    }
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &b, &len);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, quality, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * (size_t)w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    /* jpeg_mem_dest allocated with malloc: hand it over */
    out->data = b;
    out->len = len;
    return BV_OK;
}

/* ---- PNG ---- */

static bv_status png_decode(const uint8_t *d, size_t n, bv_image *img, int *w_only, int *h_only, const char *label) {
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&pi, d, n)) {
        bv_status st = bv_error_set(BV_ERR_FORMAT, "%s: corrupt PNG image: %s", label, pi.message);
        png_image_free(&pi);
        return st;
    }
    if (w_only) {
        *w_only = (int)pi.width;
        *h_only = (int)pi.height;
        png_image_free(&pi);
        return BV_OK;
    }
    bv_status st = check_dims(pi.width, pi.height, "PNG", label);
    if (!st) st = ensure(img, (int)pi.width, (int)pi.height, label);
    if (st) {
        png_image_free(&pi);
        return st;
    }
    pi.format = PNG_FORMAT_RGB;
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&pi, &black, img->rgb, (png_int_32)(pi.width * 3), NULL)) {
        st = bv_error_set(BV_ERR_FORMAT, "%s: corrupt PNG image: %s", label, pi.message);
        png_image_free(&pi);
        return st;
    }
    return BV_OK;
}

bv_status bv_image_encode_png(const uint8_t *rgb, int w, int h, bv_image_bytes *out) {
    memset(out, 0, sizeof *out);
    if (w <= 0 || h <= 0) return bv_error_set(BV_ERR_ARG, "PNG encode: bad size %d x %d", w, h);
    png_image pi;
    memset(&pi, 0, sizeof pi);
    pi.version = PNG_IMAGE_VERSION;
    pi.width = (png_uint_32)w;
    pi.height = (png_uint_32)h;
    pi.format = PNG_FORMAT_RGB;
    png_alloc_size_t len = 0;
    if (!png_image_write_to_memory(&pi, NULL, &len, 0, rgb, w * 3, NULL))
        return bv_error_set(BV_ERR_INTERNAL, "PNG encode of %d x %d failed: %s", w, h, pi.message);
    out->data = malloc(len ? len : 1);
    if (!out->data) return bv_error_set(BV_ERR_NOMEM, "PNG encode: cannot allocate %zu bytes", (size_t)len);
    if (!png_image_write_to_memory(&pi, out->data, &len, 0, rgb, w * 3, NULL)) {
        bv_image_bytes_free(out);
        return bv_error_set(BV_ERR_INTERNAL, "PNG encode of %d x %d failed: %s", w, h, pi.message);
    }
    out->len = len;
    return BV_OK;
}

/* ---- dispatch ---- */

bv_status bv_image_decode(const uint8_t *d, size_t n, bv_image *img, const char *label) {
    switch (bv_image_sniff(d, n)) {
    case BV_IMAGE_JPEG: return jpeg_decode(d, n, img, NULL, NULL, label);
    case BV_IMAGE_PNG: return png_decode(d, n, img, NULL, NULL, label);
    default: return not_an_image(d, n, label);
    }
}

bv_status bv_image_dims(const uint8_t *d, size_t n, int *w, int *h, const char *label) {
    switch (bv_image_sniff(d, n)) {
    case BV_IMAGE_JPEG: return jpeg_decode(d, n, NULL, w, h, label);
    case BV_IMAGE_PNG: return png_decode(d, n, NULL, w, h, label);
    default: return not_an_image(d, n, label);
    }
}

void bv_image_rotate180(uint8_t *rgb, int w, int h) {
    size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0, j = n - 1; i < j; i++, j--)
        for (int c = 0; c < 3; c++) {
            uint8_t t = rgb[3 * i + c];
            rgb[3 * i + c] = rgb[3 * j + c];
            rgb[3 * j + c] = t;
        }
}
