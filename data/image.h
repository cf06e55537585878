/* image.h - JPEG (libjpeg-turbo) and PNG (libpng) decoding from memory to RGB u8, and encoding.
 *
 * Decoding sniffs the format from the first bytes (JPEG: FF D8 FF; PNG: the 8-byte signature) and
 * produces interleaved RGB, 3 bytes per pixel, rows top to bottom (grayscale is expanded, 16-bit
 * PNG reduced, palettes expanded, PNG alpha composited over black). JPEG decoding uses libjpeg's
 * defaults (JDCT_ISLOW, fancy upsampling), the same as PIL and TensorFlow's decode_jpeg, so pixels
 * match them bit for bit with the same library. A truncated JPEG ("Premature end of JPEG file")
 * is an error, as in TensorFlow; other libjpeg warnings are not.
 * Errors (BV_ERR_FORMAT) name the caller's label (e.g. "file.tfrecord episode 3 key K step 5")
 * and say what the bytes are: "not a JPEG or PNG image (starts with 3c 68 74 6d)", or the
 * library's message for a corrupt image. Images larger than BV_IMAGE_MAX_PIXELS are refused
 * before any allocation.
 *
 * Owns: a bv_image owns its pixel buffer (reused across decodes; free with bv_image_free); a
 * bv_image_bytes owns its encoded bytes.
 * Must not: resize, crop or augment (later modules do), or do file I/O.
 */
#ifndef BV_DATA_IMAGE_H
#define BV_DATA_IMAGE_H

#include <stdint.h>

#include "src/common.h"

#define BV_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

typedef enum { BV_IMAGE_UNKNOWN = 0, BV_IMAGE_JPEG = 1, BV_IMAGE_PNG = 2 } bv_image_format;

/* Format from the leading bytes (no validation beyond the magic). */
bv_image_format bv_image_sniff(const uint8_t *data, size_t n);
const char *bv_image_format_name(bv_image_format f); /* "jpeg", "png", "unknown" */

typedef struct {
    uint8_t *rgb; /* h * w * 3 bytes */
    int w, h;
    size_t cap;
} bv_image;

/* Decode a JPEG or PNG into img (its buffer grown as needed). `label` names the input. */
bv_status bv_image_decode(const uint8_t *data, size_t n, bv_image *img, const char *label);
/* Width and height from the header alone (no pixel decoding). */
bv_status bv_image_dims(const uint8_t *data, size_t n, int *w, int *h, const char *label);
void bv_image_free(bv_image *img);

typedef struct {
    uint8_t *data;
    size_t len;
} bv_image_bytes;

/* Encode h x w x 3 RGB as PNG / JPEG (quality 1..100, 4:2:0 chroma, libjpeg defaults otherwise)
 * into out (malloc'd; free with bv_image_bytes_free). */
bv_status bv_image_encode_png(const uint8_t *rgb, int w, int h, bv_image_bytes *out);
bv_status bv_image_encode_jpeg(const uint8_t *rgb, int w, int h, int quality, bv_image_bytes *out);
void bv_image_bytes_free(bv_image_bytes *b);

/* Rotate an h x w x 3 RGB image by 180 degrees in place (LIBERO's cameras are upside down). */
void bv_image_rotate180(uint8_t *rgb, int w, int h);

#endif
