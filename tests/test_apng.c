/* Tests of src/apng.h, read back by a decoder written here from the APNG specification:
 *  - the chunks: signature, IHDR, acTL (frames, plays), per frame fcTL then IDAT (the first) or
 *    fdAT, IEND; every CRC right; one sequence of numbers over fcTL and fdAT from 0;
 *  - every frame rebuilt from its rectangle (inflated, unfiltered, put at its offset) equals the
 *    frame written, bit for bit; a frame like the one before is a 1 x 1 rectangle, a small change
 *    the smallest rectangle around it; the delays;
 *  - libpng reads the file as a still image, the first frame;
 *  - bad options refused naming the path; an unwritable path; nothing left behind. */
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "src/apng.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("apng"); }
static int teardown(void **state) { return bv_test_dir_remove(); }

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] << 8 | p[1]; }

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len);
    if (fread(p, 1, (size_t)len, f) != (size_t)len) fail_msg("cannot read %s", path);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static int paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/* Inflate a frame's data and undo the filters: (h, w, 3) RGB into out. */
static void decode_rect(const uint8_t *z, size_t zn, int w, int h, uint8_t *out) {
    const size_t stride = 1 + (size_t)w * 3;
    uLongf n = (uLongf)(stride * h);
    uint8_t *raw = malloc(n);
    int zs = uncompress(raw, &n, z, (uLong)zn);
    if (zs != Z_OK || n != stride * h) fail_msg("inflating a %d x %d frame: zlib %d, %lu bytes", w, h, zs, (unsigned long)n);
    for (int y = 0; y < h; y++) {
        const uint8_t *in = raw + y * stride;
        uint8_t *row = out + (size_t)y * w * 3, *up = y ? row - (size_t)w * 3 : NULL;
        if (in[0] > 4) fail_msg("row %d: filter type %d", y, in[0]);
        for (int i = 0; i < w * 3; i++) {
            int a = i >= 3 ? row[i - 3] : 0, b = up ? up[i] : 0, c = i >= 3 && up ? up[i - 3] : 0;
            int pred = in[0] == 0 ? 0 : in[0] == 1 ? a : in[0] == 2 ? b : in[0] == 3 ? (a + b) / 2 : paeth(a, b, c);
            row[i] = (uint8_t)(in[1 + i] + pred);
        }
    }
    free(raw);
}

typedef struct {
    int x, y, w, h, delay_num, delay_den;
} frame_info;

/* Decode the APNG at path: its size, frames (n x (h, w, 3), composed as a player shows them) and
 * each frame's fcTL. Fails the test on any departure from the format. */
static int decode_apng(const char *path, int *W, int *H, uint32_t *plays, uint8_t **frames, frame_info *info, int cap) {
    size_t n;
    uint8_t *p = read_all(path, &n);
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(n > 8);
    assert_memory_equal(p, sig, 8);
    size_t off = 8;
    int n_frames = -1, k = -1;
    uint32_t next_seq = 0;
    uint8_t *canvas = NULL, *rect = NULL;
    bool ended = false;
    while (off < n) {
        assert_true(off + 12 <= n);
        uint32_t len = get32(p + off);
        char type[5] = {0};
        memcpy(type, p + off + 4, 4);
        assert_true(off + 12 + len <= n);
        const uint8_t *d = p + off + 8;
        uLong crc = crc32(crc32(0L, p + off + 4, 4), d, len);
        if (crc != get32(d + len)) fail_msg("chunk %s at %zu: CRC %08lx, stored %08x", type, off, crc, get32(d + len));
        if (off == 8) assert_string_equal(type, "IHDR");
        if (!strcmp(type, "IHDR")) {
            assert_int_equal(len, 13);
            *W = (int)get32(d), *H = (int)get32(d + 4);
            assert_int_equal(d[8], 8);
            assert_int_equal(d[9], 2);
            assert_int_equal(d[12], 0);
            canvas = calloc((size_t)*W * *H, 3);
            rect = malloc((size_t)*W * *H * 3);
        } else if (!strcmp(type, "acTL")) {
            assert_int_equal(len, 8);
            n_frames = (int)get32(d), *plays = get32(d + 4);
            assert_true(n_frames >= 1 && n_frames <= cap);
        } else if (!strcmp(type, "fcTL")) {
            assert_int_equal(len, 26);
            assert_int_equal(get32(d), next_seq++);
            k++;
            assert_true(k < n_frames);
            info[k] = (frame_info){(int)get32(d + 12), (int)get32(d + 16), (int)get32(d + 4), (int)get32(d + 8),
                                   (int)get16(d + 20), (int)get16(d + 22)};
            assert_int_equal(d[24], 0); /* dispose NONE */
            assert_int_equal(d[25], 0); /* blend SOURCE */
            assert_true(info[k].x + info[k].w <= *W && info[k].y + info[k].h <= *H && info[k].w > 0 && info[k].h > 0);
            if (k == 0) assert_true(info[0].x == 0 && info[0].y == 0 && info[0].w == *W && info[0].h == *H);
        } else if (!strcmp(type, "IDAT") || !strcmp(type, "fdAT")) {
            bool idat = type[0] == 'I';
            assert_int_equal(idat, k == 0); /* the first frame is the image; the others fdAT */
            if (!idat) assert_int_equal(get32(d), next_seq++);
            const frame_info *fi = &info[k];
            decode_rect(d + (idat ? 0 : 4), len - (idat ? 0 : 4), fi->w, fi->h, rect);
            for (int y = 0; y < fi->h; y++)
                memcpy(canvas + ((size_t)(fi->y + y) * *W + fi->x) * 3, rect + (size_t)y * fi->w * 3, (size_t)fi->w * 3);
            frames[k] = malloc((size_t)*W * *H * 3);
            memcpy(frames[k], canvas, (size_t)*W * *H * 3);
        } else if (!strcmp(type, "IEND")) {
            assert_int_equal(len, 0);
            ended = true;
        } else {
            fail_msg("unexpected chunk %s", type);
        }
        off += 12 + len;
    }
    assert_true(ended);
    assert_int_equal(k + 1, n_frames);
    free(canvas), free(rect), free(p);
    return n_frames;
}

#define W 37
#define H 23
#define N 4

static void test_roundtrip(void **state) {
    /* frame 0: a gradient with noise; 1: a 5 x 3 patch changed at (30, 4); 2: the same as 1; 3: new */
    uint8_t *f = malloc((size_t)N * W * H * 3);
    bv_rng r = {3};
    for (int i = 0; i < W * H * 3; i++) f[i] = (uint8_t)(i % 200 + (bv_rng_u64(&r) & 15));
    memcpy(f + W * H * 3, f, W * H * 3);
    for (int y = 4; y < 7; y++)
        for (int x = 30; x < 35; x++) f[W * H * 3 + (y * W + x) * 3 + 1] ^= 0x5a;
    memcpy(f + 2 * W * H * 3, f + W * H * 3, W * H * 3);
    for (int i = 0; i < W * H * 3; i++) f[3 * W * H * 3 + i] = (uint8_t)bv_rng_u64(&r);
    const char *path = bv_test_path("clip.png");
    bv_apng_opts o = {.w = W, .h = H, .delay_ms = 80, .last_delay_ms = 500, .loops = 2};
    if (bv_apng_write(path, f, N, &o)) fail_msg("%s", bv_error_msg());

    int w, h;
    uint32_t plays;
    uint8_t *frames[8] = {0};
    frame_info info[8];
    int n = decode_apng(path, &w, &h, &plays, frames, info, 8);
    assert_int_equal(n, N);
    assert_int_equal(w, W);
    assert_int_equal(h, H);
    assert_int_equal(plays, 2);
    for (int k = 0; k < N; k++) {
        const uint8_t *want = f + (size_t)k * W * H * 3;
        for (int i = 0; i < W * H * 3; i++)
            if (frames[k][i] != want[i])
                fail_msg("frame %d: byte %d (pixel %d, %d) is %d, want %d", k, i, i / 3 % W, i / 3 / W, frames[k][i], want[i]);
        assert_int_equal(info[k].delay_num, k == N - 1 ? 500 : 80);
        assert_int_equal(info[k].delay_den, 1000);
    }
    print_message("rectangles: 1: %d,%d %dx%d  2: %dx%d  3: %dx%d\n", info[1].x, info[1].y, info[1].w, info[1].h,
                  info[2].w, info[2].h, info[3].w, info[3].h);
    assert_true(info[1].x == 30 && info[1].y == 4 && info[1].w == 5 && info[1].h == 3);
    assert_true(info[2].w == 1 && info[2].h == 1);
    assert_true(info[3].w == W && info[3].h == H);

    /* a reader without APNG sees the first frame */
    bv_test_image im = bv_test_read_png(path);
    assert_int_equal(im.w, W);
    assert_int_equal(im.h, H);
    assert_memory_equal(im.rgb, f, W * H * 3);
    free(im.rgb);
    for (int k = 0; k < N; k++) free(frames[k]);

    /* one frame is an animation of one frame, looping for ever */
    o = (bv_apng_opts){.w = W, .h = H, .delay_ms = 1};
    if (bv_apng_write(path, f, 1, &o)) fail_msg("%s", bv_error_msg());
    n = decode_apng(path, &w, &h, &plays, frames, info, 8);
    assert_int_equal(n, 1);
    assert_int_equal(plays, 0);
    assert_memory_equal(frames[0], f, W * H * 3);
    free(frames[0]);
    free(f);
    assert_int_equal(bv_test_count_entries(bv_test_dir(), ".tmp."), 0);
}

static void test_errors(void **state) {
    uint8_t px[12] = {0};
    const char *path = bv_test_path("bad.png");
    bv_apng_opts o = {.w = 2, .h = 2, .delay_ms = 100};
    assert_int_equal(bv_apng_write(path, px, 0, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "bad.png: an animation of 0 frames");
    o.w = 0;
    assert_int_equal(bv_apng_write(path, px, 1, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "frames of 0 x 2 pixels");
    o.w = 2, o.delay_ms = 0;
    assert_int_equal(bv_apng_write(path, px, 1, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "frame delays of 0 and 0 ms");
    o.delay_ms = 10, o.loops = -1;
    assert_int_equal(bv_apng_write(path, px, 1, &o), BV_ERR_ARG);
    o.loops = 0;
    assert_int_equal(bv_apng_write("/nonexistent/dir/a.png", px, 1, &o), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "/nonexistent/dir/a.png");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), "bad"), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
