/* augment.h - image preprocessing for the data loader (data/loader.h): crop-and-resize, colour
 * jitter and SigLIP's normalisation, from a decoded RGB u8 frame to the model's float input.
 *
 * The pipeline for one image (docs/data.md, "Loader"), in this order:
 *   1. crop a box and resize it to out x out in one resampling: Pillow's bicubic filter
 *      (a = -0.5, support 2 widened by the downscale factor, i.e. antialiased; taps outside the
 *      image dropped and the rest renormalised) = PIL `Image.resize((out, out), BICUBIC, box)`
 *      on a float ("F" mode) image. Training: a random box of crop_scale of the area with aspect
 *      crop_ratio (OpenVLA-OFT: scale 0.9, ratio 1); evaluation: the same box centred;
 *   2. (training only) colour jitter with TensorFlow's semantics, as OFT's dlimp pipeline applies
 *      it (`dlimp/augmentations.py`, order from openvla-oft `prismatic/vla/datasets/datasets.py`),
 *      on values in [0, 1], each step followed by a clip to [0, 1]:
 *        brightness  x + d,                       d ~ U[-brightness, brightness)
 *        contrast    (x - m_c) * f + m_c,         m_c the channel's mean over the image,
 *                                                 f ~ U[contrast_lo, contrast_hi)
 *        saturation  HSV s <- clip(s * f, 0, 1),  f ~ U[saturation_lo, saturation_hi)
 *        hue         HSV h <- h + d (mod 1),      d ~ U[-hue, hue)
 *      (tf.image.adjust_brightness / adjust_contrast / adjust_saturation / adjust_hue);
 *   3. SigLIP's processor normalisation: mean 0.5, std 0.5, i.e. x * 2 - 1, written channel-major
 *      (3, out, out).
 * Step 1 also clips to [0, 1] (bicubic overshoots at edges; the 8-bit images PIL and TF produce
 * saturate there too).
 *
 * Owns: a bv_aug_scratch owns its buffers (bv_aug_scratch_free); one per thread.
 * Must not: decode files, keep global state, or depend on anything but common.h. Everything here
 * is deterministic: the random draws come from the caller's 64-bit key.
 */
#ifndef BV_DATA_AUGMENT_H
#define BV_DATA_AUGMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "src/common.h"

typedef struct {
    double crop_scale;                   /* area fraction of the crop box (0.9) */
    double crop_ratio;                   /* box aspect w/h in fractions of the image sides (1) */
    double brightness;                   /* max |delta| (0.2) */
    double contrast_lo, contrast_hi;     /* factor range (0.8, 1.2) */
    double saturation_lo, saturation_hi; /* factor range (0.8, 1.2) */
    double hue;                          /* max |delta| in turns (0.05) */
} bv_aug_cfg;

/* OpenVLA-OFT's LIBERO settings (the values above). */
void bv_aug_cfg_default(bv_aug_cfg *c);
/* BV_ERR_ARG naming the field when a value is out of range (scale in (0, 1], ratio > 0,
 * brightness in [0, 1], 0 <= lo <= hi for contrast and saturation, hue in [0, 0.5]). */
bv_status bv_aug_cfg_check(const bv_aug_cfg *c);

/* What is done to one image. */
typedef struct {
    double x0, y0, w, h; /* crop box in fractions of the image width / height */
    bool jitter;         /* apply the colour jitter below */
    float brightness;    /* delta */
    float contrast;      /* factor */
    float saturation;    /* factor */
    float hue;           /* delta, turns */
} bv_aug_params;

/* Training: a random box and jitter drawn from the key (a counter-based generator: the same key
 * gives the same draws on any thread). Box sides sqrt(scale / ratio) and sqrt(scale * ratio) of
 * the image's (clipped to 1), offsets uniform over the positions that keep it inside. */
void bv_aug_draw(const bv_aug_cfg *c, uint64_t key, bv_aug_params *p);
/* Evaluation: the same box centred, no jitter. */
void bv_aug_center(const bv_aug_cfg *c, bv_aug_params *p);

/* A 64-bit key from a tuple of integers (splitmix64 chain). */
uint64_t bv_aug_key(uint64_t a, uint64_t b, uint64_t c, uint64_t d);

typedef struct {
    float *tmp; /* the input channel, both passes and their transposes */
    size_t tmp_cap;
    float *kx, *ky; /* filter taps */
    int *bx, *by;   /* first tap per output */
    size_t kx_cap, ky_cap, bx_cap, by_cap;
} bv_aug_scratch;
void bv_aug_scratch_free(bv_aug_scratch *s);

/* ---- the steps, exposed for tests and inference ---- */

/* rgb (h, w, 3) u8, box in pixels [bx0, bx1) x [by0, by1) (0 <= bx0 < bx1 <= w, same for y)
 * -> out (3, oh, ow) float, value / 255 (not clipped): Pillow's bicubic resize of each channel. */
void bv_aug_resize_bicubic(const uint8_t *rgb, int w, int h, double bx0, double by0, double bx1, double by1, int ow,
                           int oh, float *out, bv_aug_scratch *s);
/* In place on an image of n pixels stored as three planes (3, n) of values in [0, 1]; each ends
 * with a clip to [0, 1]. */
void bv_aug_brightness(float *x, int64_t n, float delta);
void bv_aug_contrast(float *x, int64_t n, float factor);
void bv_aug_saturation(float *x, int64_t n, float factor);
void bv_aug_hue(float *x, int64_t n, float delta);
/* Saturation then hue in one pass (what bv_aug_apply runs): equal to the two calls up to float
 * rounding. */
void bv_aug_saturation_hue(float *x, int64_t n, float factor, float delta);
void bv_aug_clip01(float *x, int64_t n);

/* The whole pipeline: rgb (h, w, 3) u8 -> out (3, size, size) float in [-1, 1]. */
void bv_aug_apply(const uint8_t *rgb, int w, int h, const bv_aug_params *p, int size, float *out, bv_aug_scratch *s);

#endif
