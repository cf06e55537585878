/* apng.h - animated PNG (APNG) files: a short clip a browser plays, without a video library.
 *
 * The file is an ordinary 8-bit RGB PNG whose image is the first frame (what a reader without
 * APNG support shows), plus the animation chunks of the APNG specification (acTL, then per frame
 * an fcTL and, after the first, fdAT): each later frame stores only the rectangle where it differs
 * from the one before (dispose NONE, blend SOURCE), rows filtered with the usual heuristic (the
 * filter of least absolute sum) and deflated by zlib. libpng has no APNG writer in Debian; the
 * format is small enough to write here.
 *
 * Owns: nothing past a call (the frames are borrowed). Must not: know what the frames show.
 */
#ifndef BV_APNG_H
#define BV_APNG_H

#include <stdint.h>

#include "src/common.h"

typedef struct {
    int w, h;          /* every frame's size, pixels (1..16384) */
    int delay_ms;      /* how long each frame shows (1..65535) */
    int last_delay_ms; /* how long the last one shows (0: delay_ms), to hold the end a moment */
    int loops;         /* times the clip plays (0: forever) */
} bv_apng_opts;

/* Write n_frames (>= 1) frames, each (h, w, 3) RGB bytes, row 0 at the top, one after the other
 * in `frames`, to `path` as an APNG, atomically (src/atomic_file.h). Errors name the path:
 * BV_ERR_ARG for bad options, BV_ERR_IO for the file, BV_ERR_INTERNAL for zlib. */
bv_status bv_apng_write(const char *path, const uint8_t *frames, int n_frames, const bv_apng_opts *o);

#endif
