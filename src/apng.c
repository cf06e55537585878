/* apng.c - the APNG writer (see apng.h; the format: https://wiki.mozilla.org/APNG_Specification). */
#include "src/apng.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "src/atomic_file.h"

typedef struct {
    FILE *fp;
    int err; /* errno of the first failed write */
} sink;

static void put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8), p[1] = (uint8_t)v; }

static void put(sink *s, const void *p, size_t n) {
    if (!s->err && fwrite(p, 1, n, s->fp) != n) s->err = errno ? errno : EIO;
}

/* length, type, data, CRC-32 of type and data */
static void chunk(sink *s, const char type[4], const uint8_t *data, size_t n) {
    uint8_t head[8];
    put32(head, (uint32_t)n);
    memcpy(head + 4, type, 4);
    put(s, head, 8);
    if (n) put(s, data, n);
    uLong crc = crc32(0L, (const Bytef *)type, 4);
    if (n) crc = crc32(crc, data, (uInt)n);
    uint8_t tail[4];
    put32(tail, (uint32_t)crc);
    put(s, tail, 4);
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* One scanline filtered with filter f (0 none, 1 sub, 2 up, 3 average, 4 Paeth) into c; returns the
 * sum of the absolute values of its bytes read as signed (the usual heuristic's cost). up: the row
 * above, or NULL for the first. */
static long filter_row(int f, const uint8_t *row, const uint8_t *up, size_t n, uint8_t *c) {
    long sum = 0;
    for (size_t i = 0; i < n; i++) {
        int a = i >= 3 ? row[i - 3] : 0, b = up ? up[i] : 0, cc = i >= 3 && up ? up[i - 3] : 0, pred;
        switch (f) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        default: pred = paeth(a, b, cc); break;
        }
        c[i] = (uint8_t)(row[i] - pred);
        sum += c[i] < 128 ? c[i] : 256 - c[i];
    }
    return sum;
}

/* The rectangle (x, y, w, h) of `img` (stride W pixels) as PNG scanlines: per row a filter byte and
 * the filtered bytes, the filter whose output costs least (filter_row). out: h * (1 + 3 w) bytes;
 * cand: 3 w bytes of scratch. */
static void filter_rect(const uint8_t *img, int W, int x, int y, int w, int h, uint8_t *out, uint8_t *cand) {
    const size_t n = (size_t)w * 3;
    for (int r = 0; r < h; r++) {
        const uint8_t *row = img + ((size_t)(y + r) * W + x) * 3, *up = r ? row - (size_t)W * 3 : NULL;
        uint8_t *o = out + (size_t)r * (1 + n);
        long best_sum = filter_row(0, row, up, n, o + 1);
        o[0] = 0;
        for (int f = 1; f < 5 && best_sum > 0; f++) {
            long sum = filter_row(f, row, up, n, cand);
            if (sum < best_sum) {
                best_sum = sum, o[0] = (uint8_t)f;
                memcpy(o + 1, cand, n);
            }
        }
    }
}

/* The smallest rectangle holding every pixel where b differs from a (1 x 1 at the origin when none). */
static void changed_rect(const uint8_t *a, const uint8_t *b, int W, int H, int *x, int *y, int *w, int *h) {
    int x0 = W, x1 = -1, y0 = H, y1 = -1;
    for (int r = 0; r < H; r++) {
        const uint8_t *pa = a + (size_t)r * W * 3, *pb = b + (size_t)r * W * 3;
        if (!memcmp(pa, pb, (size_t)W * 3)) continue;
        y0 = BV_MIN(y0, r), y1 = r;
        int lo = 0, hi = W - 1;
        while (!memcmp(pa + 3 * lo, pb + 3 * lo, 3)) lo++;
        while (!memcmp(pa + 3 * hi, pb + 3 * hi, 3)) hi--;
        x0 = BV_MIN(x0, lo), x1 = BV_MAX(x1, hi);
    }
    if (y1 < 0) {
        *x = *y = 0, *w = *h = 1;
        return;
    }
    *x = x0, *y = y0, *w = x1 - x0 + 1, *h = y1 - y0 + 1;
}

static bv_status check_opts(const char *path, const uint8_t *frames, int n, const bv_apng_opts *o) {
    if (!frames || n < 1) return bv_error_set(BV_ERR_ARG, "%s: an animation of %d frames (expected at least 1)", path, n);
    if (o->w < 1 || o->w > 16384 || o->h < 1 || o->h > 16384)
        return bv_error_set(BV_ERR_ARG, "%s: frames of %d x %d pixels (expected 1..16384)", path, o->w, o->h);
    if (o->delay_ms < 1 || o->delay_ms > 65535 || o->last_delay_ms < 0 || o->last_delay_ms > 65535)
        return bv_error_set(BV_ERR_ARG, "%s: frame delays of %d and %d ms (expected 1..65535)", path, o->delay_ms,
                            o->last_delay_ms);
    if (o->loops < 0) return bv_error_set(BV_ERR_ARG, "%s: %d loops (expected >= 0, 0 for ever)", path, o->loops);
    return BV_OK;
}

bv_status bv_apng_write(const char *path, const uint8_t *frames, int n_frames, const bv_apng_opts *o) {
    BV_TRY(check_opts(path, frames, n_frames, o));
    const int W = o->w, H = o->h;
    const size_t frame_bytes = (size_t)W * H * 3, raw_cap = (size_t)H * (1 + (size_t)W * 3);
    bv_atomic_file af;
    BV_TRY(bv_atomic_open(&af, path));
    sink s = {af.fp, 0};
    uint8_t *raw = bv_xmalloc(raw_cap), *cand = bv_xmalloc((size_t)W * 3);
    uLongf zcap = compressBound((uLong)raw_cap);
    uint8_t *z = bv_xmalloc(4 + (size_t)zcap); /* room for fdAT's sequence number in front */
    bv_status st = BV_OK;

    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    put(&s, sig, 8);
    uint8_t ihdr[13] = {0};
    put32(ihdr, (uint32_t)W), put32(ihdr + 4, (uint32_t)H);
    ihdr[8] = 8, ihdr[9] = 2; /* 8-bit RGB; deflate, adaptive filtering, no interlace */
    chunk(&s, "IHDR", ihdr, 13);
    uint8_t actl[8];
    put32(actl, (uint32_t)n_frames), put32(actl + 4, (uint32_t)o->loops);
    chunk(&s, "acTL", actl, 8);

    uint32_t seq = 0;
    for (int i = 0; i < n_frames && !st && !s.err; i++) {
        const uint8_t *f = frames + (size_t)i * frame_bytes;
        int x = 0, y = 0, w = W, h = H;
        if (i) changed_rect(f - frame_bytes, f, W, H, &x, &y, &w, &h);
        int delay = i == n_frames - 1 && o->last_delay_ms ? o->last_delay_ms : o->delay_ms;
        uint8_t fctl[26] = {0};
        put32(fctl, seq++), put32(fctl + 4, (uint32_t)w), put32(fctl + 8, (uint32_t)h);
        put32(fctl + 12, (uint32_t)x), put32(fctl + 16, (uint32_t)y);
        put16(fctl + 20, (uint32_t)delay), put16(fctl + 22, 1000);
        fctl[24] = 0, fctl[25] = 0; /* dispose NONE, blend SOURCE */
        chunk(&s, "fcTL", fctl, 26);
        filter_rect(f, W, x, y, w, h, raw, cand);
        uLongf zn = zcap;
        int zs = compress2(z + 4, &zn, raw, (uLong)((size_t)h * (1 + (size_t)w * 3)), 6);
        if (zs != Z_OK) {
            st = bv_error_set(BV_ERR_INTERNAL, "%s: zlib cannot compress frame %d: %s", path, i, zError(zs));
            break;
        }
        if (i == 0) {
            chunk(&s, "IDAT", z + 4, zn);
        } else {
            put32(z, seq++);
            chunk(&s, "fdAT", z, zn + 4);
        }
    }
    if (!st) chunk(&s, "IEND", NULL, 0);
    free(raw), free(cand), free(z);
    if (!st && s.err) st = bv_error_set(BV_ERR_IO, "%s: writing %s failed: %s", path, af.tmp, strerror(s.err));
    if (st) {
        bv_atomic_abort(&af);
        return st;
    }
    return bv_atomic_commit(&af);
}
