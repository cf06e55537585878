#include "src/ternary_pack.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Tensors with fewer codes than this are packed and unpacked on one thread. */
#define PAR_MIN ((int64_t)1 << 18)

/* sum_k 1 * 3^k, k = 0..4: the TQ5 byte of five zero weights */
#define TQ5_ZERO 121

static const char *const NAMES[BV_TPACK_NFORMATS] = {"HF-BitNet", "I2_S", "TQ5"};
static const uint8_t TQ5_MAGIC[4] = {'B', 'V', 'T', '5'};
static const int POW3[6] = {1, 3, 9, 27, 81, 243};

const char *bv_tpack_name(bv_tpack_format fmt) {
    return (unsigned)fmt < BV_TPACK_NFORMATS ? NAMES[fmt] : "?";
}

/* ---- little-endian fields (header, scale), independent of the host's byte order ---- */

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)p[i] << (8 * i);
    return v;
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}
static void put_f32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(p, u);
}
static float get_f32(const uint8_t *p) {
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static bool scale_ok(float s) { return isfinite(s) && s >= 0.0f; }

/* ---- shapes ---- */

static int64_t tq5_row_bytes(int64_t cols) { return cols / 5 + (cols % 5 != 0); }

bv_status bv_tpack_nbytes(bv_tpack_format fmt, int64_t rows, int64_t cols, size_t *nbytes) {
    *nbytes = 0;
    if ((unsigned)fmt >= BV_TPACK_NFORMATS) return bv_error_set(BV_ERR_ARG, "ternary pack: unknown format %d", (int)fmt);
    const char *name = NAMES[fmt];
    if (rows < 0 || cols < 0)
        return bv_error_set(BV_ERR_SHAPE, "%s: shape (%lld, %lld) has a negative dimension", name, (long long)rows,
                            (long long)cols);
    /* keep every byte count well inside int64_t and size_t */
    if (cols > 0 && rows > ((int64_t)1 << 60) / cols)
        return bv_error_set(BV_ERR_SHAPE, "%s: shape (%lld, %lld) is too large", name, (long long)rows,
                            (long long)cols);
    int64_t numel = rows * cols;
    switch (fmt) {
    case BV_TPACK_HF:
        if (rows % 4 != 0)
            return bv_error_set(BV_ERR_SHAPE,
                                "%s: %lld output rows is not a multiple of 4 (shape (%lld, %lld)): byte (r, c) holds "
                                "rows r, r + OC/4, r + OC/2, r + 3*OC/4, and transformers' unpack_weights always "
                                "returns 4 * (OC/4) rows",
                                name, (long long)rows, (long long)rows, (long long)cols);
        *nbytes = (size_t)(numel / 4);
        return BV_OK;
    case BV_TPACK_I2S:
        if (cols % BV_TPACK_I2S_BLOCK != 0)
            return bv_error_set(BV_ERR_SHAPE,
                                "%s: row length %lld is not a multiple of %d (shape (%lld, %lld)): bitnet.cpp's "
                                "quantize_i2_s packs whole %d-code blocks only and its x86 kernels read C/%d blocks "
                                "per row",
                                name, (long long)cols, BV_TPACK_I2S_BLOCK, (long long)rows, (long long)cols,
                                BV_TPACK_I2S_BLOCK, BV_TPACK_I2S_BLOCK);
        *nbytes = (size_t)(numel / 4) + BV_TPACK_I2S_TRAILER;
        return BV_OK;
    case BV_TPACK_TQ5:
        *nbytes = BV_TPACK_TQ5_HEADER + (size_t)rows * (size_t)tq5_row_bytes(cols);
        return BV_OK;
    }
    return BV_ERR_INTERNAL;
}

/* ---- codes in: validation ---- */

static bv_status check_codes(bv_tpack_format fmt, const int8_t *codes, int64_t rows, int64_t cols) {
    int64_t n = rows * cols;
    uint8_t bad = 0;
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (n >= PAR_MIN)
    for (int64_t i = 0; i < n; i++) bad |= (uint8_t)((uint8_t)(codes[i] + 1) > 2);
    if (!bad) return BV_OK;
    for (int64_t i = 0; i < n; i++)
        if ((uint8_t)(codes[i] + 1) > 2)
            return bv_error_set(BV_ERR_ARG,
                                "%s pack: code %d at index %lld (row %lld, col %lld) of a (%lld, %lld) tensor; ternary "
                                "codes must be -1, 0 or 1",
                                NAMES[fmt], codes[i], (long long)i, (long long)(i / cols), (long long)(i % cols),
                                (long long)rows, (long long)cols);
    return BV_ERR_INTERNAL;
}

/* ---- HF BitNet: uint8 [OC/4, C], slice i of the rows in bits 2i..2i+1 ---- */

static void hf_pack(const int8_t *codes, int64_t rows, int64_t cols, uint8_t *out) {
    int64_t R = rows / 4;
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const int8_t *c0 = codes + r * cols, *c1 = codes + (R + r) * cols;
        const int8_t *c2 = codes + (2 * R + r) * cols, *c3 = codes + (3 * R + r) * cols;
        uint8_t *o = out + r * cols;
#pragma omp simd
        for (int64_t c = 0; c < cols; c++)
            o[c] = (uint8_t)((uint8_t)(c0[c] + 1) | (uint8_t)(c1[c] + 1) << 2 | (uint8_t)(c2[c] + 1) << 4 |
                             (uint8_t)(c3[c] + 1) << 6);
    }
}

/* Nonzero iff some 2-bit field of v is 3. */
static inline uint8_t field3(uint8_t v) { return (uint8_t)(v & (v >> 1) & 0x55); }

static bv_status hf_unpack(const uint8_t *in, int64_t rows, int64_t cols, int8_t *codes) {
    int64_t R = rows / 4;
    uint8_t bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const uint8_t *b = in + r * cols;
        int8_t *o0 = codes + r * cols, *o1 = codes + (R + r) * cols;
        int8_t *o2 = codes + (2 * R + r) * cols, *o3 = codes + (3 * R + r) * cols;
        uint8_t rbad = 0;
#pragma omp simd reduction(| : rbad)
        for (int64_t c = 0; c < cols; c++) {
            uint8_t v = b[c];
            rbad |= field3(v);
            o0[c] = (int8_t)((v & 3) - 1);
            o1[c] = (int8_t)(((v >> 2) & 3) - 1);
            o2[c] = (int8_t)(((v >> 4) & 3) - 1);
            o3[c] = (int8_t)((v >> 6) - 1);
        }
        bad |= rbad;
    }
    if (!bad) return BV_OK;
    for (int64_t k = 0; k < R * cols; k++) {
        uint8_t v = in[k];
        if (!field3(v)) continue;
        int i = 0;
        while (((v >> (2 * i)) & 3) != 3) i++;
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: byte offset %lld has value %u (0x%02x): its 2-bit field %d (bits %d..%d, code row "
                            "%lld, col %lld) is 3, which is no code (fields are w + 1: 0, 1 or 2)",
                            NAMES[BV_TPACK_HF], (long long)k, v, v, i, 2 * i, 2 * i + 1,
                            (long long)(i * R + k / cols), (long long)(k % cols));
    }
    return BV_ERR_INTERNAL;
}

/* ---- I2_S: 128-code blocks in 32 bytes, code j at byte j % 32, shift 6 - 2*(j/32) ---- */

static void i2s_pack(const int8_t *codes, int64_t numel, float scale, uint8_t *out) {
    int64_t nb = numel / BV_TPACK_I2S_BLOCK;
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        const int8_t *s = codes + b * BV_TPACK_I2S_BLOCK;
        uint8_t *o = out + b * 32;
#pragma omp simd
        for (int p = 0; p < 32; p++)
            o[p] = (uint8_t)((uint8_t)(s[p] + 1) << 6 | (uint8_t)(s[32 + p] + 1) << 4 |
                             (uint8_t)(s[64 + p] + 1) << 2 | (uint8_t)(s[96 + p] + 1));
    }
    uint8_t *t = out + numel / 4;
    put_f32(t, scale);
    memset(t + 4, 0, BV_TPACK_I2S_TRAILER - 4);
}

static bv_status i2s_unpack(const uint8_t *in, int64_t numel, int8_t *codes, float *scale) {
    int64_t nb = numel / BV_TPACK_I2S_BLOCK;
    uint8_t bad = 0;
    /* blocks are only 32 bytes: check the fields in one flat pass (one reduction per thread, not
     * one per block), then decode */
#pragma omp parallel for simd schedule(static) reduction(| : bad) if (numel >= PAR_MIN)
    for (int64_t k = 0; k < numel / 4; k++) bad |= field3(in[k]);
#pragma omp parallel for schedule(static) if (numel >= PAR_MIN)
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *s = in + b * 32;
        int8_t *o = codes + b * BV_TPACK_I2S_BLOCK;
#pragma omp simd
        for (int p = 0; p < 32; p++) {
            uint8_t v = s[p];
            o[p] = (int8_t)((v >> 6) - 1);
            o[32 + p] = (int8_t)(((v >> 4) & 3) - 1);
            o[64 + p] = (int8_t)(((v >> 2) & 3) - 1);
            o[96 + p] = (int8_t)((v & 3) - 1);
        }
    }
    if (bad) {
        for (int64_t k = 0; k < numel / 4; k++) {
            uint8_t v = in[k];
            if (!field3(v)) continue;
            int g = 0; /* the lowest-numbered code of the byte first: bits 7..6 */
            while (((v >> (6 - 2 * g)) & 3) != 3) g++;
            int64_t j = (k / 32) * BV_TPACK_I2S_BLOCK + g * 32 + k % 32;
            return bv_error_set(BV_ERR_FORMAT,
                                "%s: byte offset %lld has value %u (0x%02x): its 2-bit field at bits %d..%d (code "
                                "%lld) is 3, which is no code (fields are w + 1: 0, 1 or 2)",
                                NAMES[BV_TPACK_I2S], (long long)k, v, v, 6 - 2 * g, 7 - 2 * g, (long long)j);
        }
        return BV_ERR_INTERNAL;
    }
    float s = get_f32(in + numel / 4);
    if (!scale_ok(s))
        return bv_error_set(BV_ERR_FORMAT, "%s: the scale at byte offset %lld is %g; expected a finite value >= 0",
                            NAMES[BV_TPACK_I2S], (long long)(numel / 4), (double)s);
    if (scale) *scale = s;
    return BV_OK;
}

/* ---- TQ5: header, then rows of ceil(C/5) bytes, byte = sum_k (w_k + 1) 3^k ---- */

static void tq5_pack(const int8_t *codes, int64_t rows, int64_t cols, float scale, uint8_t *out) {
    memcpy(out, TQ5_MAGIC, 4);
    put_u32(out + 4, BV_TPACK_TQ5_VERSION);
    put_u64(out + 8, (uint64_t)rows);
    put_u64(out + 16, (uint64_t)cols);
    put_f32(out + 24, scale);
    put_u32(out + 28, 0);
    int64_t bpr = tq5_row_bytes(cols), full = cols / 5, rem = cols % 5;
    uint8_t *payload = out + BV_TPACK_TQ5_HEADER;
#pragma omp parallel for schedule(static) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *s = codes + r * cols;
        uint8_t *o = payload + r * bpr;
        /* sum (w_k + 1) 3^k = 121 + sum w_k 3^k; a missing (padding) code counts as w = 0 */
        for (int64_t g = 0; g < full; g++, s += 5)
            o[g] = (uint8_t)(TQ5_ZERO + s[0] + 3 * s[1] + 9 * s[2] + 27 * s[3] + 81 * s[4]);
        if (rem) {
            int v = TQ5_ZERO;
            for (int k = 0; k < rem; k++) v += s[k] * POW3[k];
            o[full] = (uint8_t)v;
        }
    }
}

bv_status bv_tpack_tq5_header(const uint8_t *in, size_t in_len, int64_t *rows, int64_t *cols, float *scale) {
    const char *name = NAMES[BV_TPACK_TQ5];
    if (in_len < BV_TPACK_TQ5_HEADER)
        return bv_error_set(BV_ERR_FORMAT, "%s: %zu bytes is shorter than the %d-byte header", name, in_len,
                            BV_TPACK_TQ5_HEADER);
    if (memcmp(in, TQ5_MAGIC, 4) != 0)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: byte offset 0: magic is %02x %02x %02x %02x, expected 42 56 54 35 (\"BVT5\")", name,
                            in[0], in[1], in[2], in[3]);
    uint32_t ver = get_u32(in + 4);
    if (ver != BV_TPACK_TQ5_VERSION)
        return bv_error_set(BV_ERR_FORMAT, "%s: byte offset 4: version %u; this reader knows version %u", name, ver,
                            BV_TPACK_TQ5_VERSION);
    uint64_t r = get_u64(in + 8), c = get_u64(in + 16);
    if (r > ((uint64_t)1 << 60) || c > ((uint64_t)1 << 60) || (c > 0 && r > (((uint64_t)1 << 60) / c)))
        return bv_error_set(BV_ERR_FORMAT, "%s: byte offset 8: shape (%llu, %llu) is too large", name,
                            (unsigned long long)r, (unsigned long long)c);
    float s = get_f32(in + 24);
    if (!scale_ok(s))
        return bv_error_set(BV_ERR_FORMAT, "%s: byte offset 24: scale %g; expected a finite value >= 0", name,
                            (double)s);
    uint32_t res = get_u32(in + 28);
    if (res != 0)
        return bv_error_set(BV_ERR_FORMAT, "%s: byte offset 28: reserved field is %u, expected 0", name, res);
    size_t want = BV_TPACK_TQ5_HEADER + (size_t)r * (size_t)tq5_row_bytes((int64_t)c);
    if (in_len != want)
        return bv_error_set(BV_ERR_FORMAT,
                            "%s: %zu bytes, but the header's shape (%llu, %llu) takes %zu (%d-byte header + %llu "
                            "rows of %lld bytes)",
                            name, in_len, (unsigned long long)r, (unsigned long long)c, want, BV_TPACK_TQ5_HEADER,
                            (unsigned long long)r, (long long)tq5_row_bytes((int64_t)c));
    if (rows) *rows = (int64_t)r;
    if (cols) *cols = (int64_t)c;
    if (scale) *scale = s;
    return BV_OK;
}

/* lut[v][k] = code k of TQ5 byte v (v <= 242), k = 0..4; lut[v][5] = 1 marks the invalid v > 242.
 * 8 bytes per entry so a group is one 8-byte copy (bytes 5..7 land on the next group's codes and are
 * overwritten by it). */
static void tq5_lut(int8_t lut[256][8]) {
    memset(lut, 0, 256 * 8);
    for (int v = 0; v < 256; v++)
        if (v < 243)
            for (int k = 0, x = v; k < 5; k++, x /= 3) lut[v][k] = (int8_t)(x % 3 - 1);
        else
            lut[v][5] = 1;
}

/* A row's last byte holds rem codes in its low base-3 digits and w = 0 (digit 1) above them:
 * v / 3^rem == (3^(5-rem) - 1) / 2. */
static inline bool tq5_tail_ok(uint8_t v, int rem) {
    return v <= 242 && v / POW3[rem] == (POW3[5 - rem] - 1) / 2;
}

/* One row: cols codes from ceil(cols/5) bytes; returns nonzero if a byte is invalid. */
static inline int8_t tq5_unpack_row(const int8_t (*lut)[8], const uint8_t *s, int64_t cols, int8_t *o) {
    int64_t full = cols / 5, g = 0;
    int rem = (int)(cols % 5);
    /* groups whose 8-byte copy stays inside the row: 5g + 8 <= cols */
    int64_t fast = cols >= 8 ? (cols - 8) / 5 + 1 : 0;
    if (fast > full) fast = full;
    int8_t bad = 0;
    for (; g + 4 <= fast; g += 4, o += 20) {
        const int8_t *a = lut[s[g]], *b = lut[s[g + 1]], *c = lut[s[g + 2]], *d = lut[s[g + 3]];
        bad |= a[5] | b[5] | c[5] | d[5];
        memcpy(o, a, 8);
        memcpy(o + 5, b, 8);
        memcpy(o + 10, c, 8);
        memcpy(o + 15, d, 8);
    }
    for (; g < fast; g++, o += 5) {
        bad |= lut[s[g]][5];
        memcpy(o, lut[s[g]], 8);
    }
    for (; g < full; g++, o += 5) {
        bad |= lut[s[g]][5];
        memcpy(o, lut[s[g]], 5);
    }
    if (rem) {
        if (!tq5_tail_ok(s[full], rem)) bad = 1;
        memcpy(o, lut[s[full]], (size_t)rem);
    }
    return bad;
}

static bv_status tq5_unpack(const uint8_t *in, int64_t rows, int64_t cols, int8_t *codes) {
    int8_t lut[256][8];
    tq5_lut(lut);
    int64_t bpr = tq5_row_bytes(cols), full = cols / 5;
    int rem = (int)(cols % 5);
    const uint8_t *payload = in + BV_TPACK_TQ5_HEADER;
    int8_t bad = 0;
#pragma omp parallel for schedule(static) reduction(| : bad) if (rows * cols >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        bad |= tq5_unpack_row((const int8_t(*)[8])lut, payload + r * bpr, cols, codes + r * cols);
    if (!bad) return BV_OK;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *s = payload + r * bpr;
        for (int64_t g = 0; g < bpr; g++) {
            uint8_t v = s[g];
            long long off = (long long)(BV_TPACK_TQ5_HEADER + r * bpr + g);
            if (v > 242)
                return bv_error_set(BV_ERR_FORMAT,
                                    "%s: byte offset %lld has value %u > 242, which five base-3 digits cannot make "
                                    "(row %lld, codes %lld..%lld)",
                                    NAMES[BV_TPACK_TQ5], off, v, (long long)r, (long long)(5 * g),
                                    (long long)BV_MIN(5 * g + 4, cols - 1));
            if (g == full && rem && !tq5_tail_ok(v, rem)) {
                int lo = (POW3[5 - rem] - 1) / 2 * POW3[rem];
                return bv_error_set(BV_ERR_FORMAT,
                                    "%s: byte offset %lld has value %u, the last byte of row %lld holds %d codes and "
                                    "its padding digits must all be 1 (weight 0), i.e. the value must be in %d..%d",
                                    NAMES[BV_TPACK_TQ5], off, v, (long long)r, rem, lo, lo + POW3[rem] - 1);
            }
        }
    }
    return BV_ERR_INTERNAL;
}

/* ---- public entry points ---- */

bv_status bv_tpack_pack(bv_tpack_format fmt, const int8_t *codes, int64_t rows, int64_t cols, float scale,
                        uint8_t *out, size_t out_len) {
    size_t need;
    bv_status st = bv_tpack_nbytes(fmt, rows, cols, &need);
    if (st) return st;
    if (out_len != need)
        return bv_error_set(BV_ERR_ARG, "%s pack: output buffer is %zu bytes; a (%lld, %lld) tensor takes %zu",
                            NAMES[fmt], out_len, (long long)rows, (long long)cols, need);
    if (fmt != BV_TPACK_HF && !scale_ok(scale))
        return bv_error_set(BV_ERR_ARG, "%s pack: scale %g; expected a finite value >= 0 (mean|W|)", NAMES[fmt],
                            (double)scale);
    if ((st = check_codes(fmt, codes, rows, cols))) return st;
    switch (fmt) {
    case BV_TPACK_HF: hf_pack(codes, rows, cols, out); break;
    case BV_TPACK_I2S: i2s_pack(codes, rows * cols, scale, out); break;
    case BV_TPACK_TQ5: tq5_pack(codes, rows, cols, scale, out); break;
    }
    return BV_OK;
}

bv_status bv_tpack_unpack(bv_tpack_format fmt, const uint8_t *in, size_t in_len, int64_t rows, int64_t cols,
                          int8_t *codes, float *scale) {
    size_t need;
    bv_status st = bv_tpack_nbytes(fmt, rows, cols, &need);
    if (st) return st;
    if (fmt == BV_TPACK_TQ5) {
        int64_t hr, hc;
        float s;
        if ((st = bv_tpack_tq5_header(in, in_len, &hr, &hc, &s))) return st;
        if (hr != rows || hc != cols)
            return bv_error_set(BV_ERR_SHAPE, "%s: the header says shape (%lld, %lld); expected (%lld, %lld)",
                                NAMES[fmt], (long long)hr, (long long)hc, (long long)rows, (long long)cols);
        if ((st = tq5_unpack(in, rows, cols, codes))) return st;
        if (scale) *scale = s;
        return BV_OK;
    }
    if (in_len != need)
        return bv_error_set(BV_ERR_FORMAT, "%s: %zu bytes; a (%lld, %lld) tensor takes %zu%s", NAMES[fmt], in_len,
                            (long long)rows, (long long)cols, need,
                            fmt == BV_TPACK_HF ? " (OC/4 * C)" : " (numel/4 codes + 32-byte scale trailer)");
    if (fmt == BV_TPACK_HF) {
        if ((st = hf_unpack(in, rows, cols, codes))) return st;
        if (scale) *scale = NAN;
        return BV_OK;
    }
    return i2s_unpack(in, rows * cols, codes, scale);
}

bv_status bv_tpack_convert(bv_tpack_format from, const uint8_t *in, size_t in_len, bv_tpack_format to,
                           int64_t rows, int64_t cols, float scale, uint8_t *out, size_t out_len) {
    size_t n_from, n_to; /* both shapes checked before allocating; the lengths by unpack / pack */
    bv_status st = bv_tpack_nbytes(from, rows, cols, &n_from);
    if (st || (st = bv_tpack_nbytes(to, rows, cols, &n_to))) return st;
    size_t numel = (size_t)(rows * cols);
    int8_t *codes = malloc(numel ? numel : 1);
    if (!codes)
        return bv_error_set(BV_ERR_NOMEM, "%s -> %s: cannot allocate %zu bytes of codes", bv_tpack_name(from),
                            bv_tpack_name(to), numel);
    float s = scale;
    st = bv_tpack_unpack(from, in, in_len, rows, cols, codes, from == BV_TPACK_HF ? NULL : &s);
    if (!st) st = bv_tpack_pack(to, codes, rows, cols, s, out, out_len);
    free(codes);
    return st;
}
