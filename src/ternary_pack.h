/* ternary_pack.h - packed storage formats for ternary weight codes, and converters to and from
 * plain int8 codes.
 *
 * A BitLinear weight (OC, C) is stored as ternary codes w in {-1, 0, 1} (int8, row-major) plus one
 * fp32 scale per tensor, multiplicative: weight = w * scale, scale = mean|W| (spec section 2).
 * This module turns such codes into the byte layouts other tools read, and back:
 *
 *   BV_TPACK_HF   HF transformers BitNet "offline" packing (integrations/bitnet.py): uint8 [OC/4, C],
 *                 row r of slice i (i = 0..3) is code row i*OC/4 + r in bits 2i..2i+1, field = w + 1.
 *                 The scale is NOT in the bytes: HF keeps it in a separate `weight_scale` tensor
 *                 (AutoBitLinear: multiplicative, = mean|W|). OC must be a multiple of 4.
 *   BV_TPACK_I2S  bitnet.cpp I2_S, x86 layout (src/ggml-bitnet-mad.cpp quantize_i2_s): blocks of 128
 *                 codes in 32 bytes, code j of a block in byte j % 32 at bit shift 6 - 2*(j / 32),
 *                 field = w + 1; then the fp32 scale and zero padding: numel/4 + 32 bytes in all
 *                 (ggml_nbytes of an I2_S tensor). C must be a multiple of 128 (bitnet.cpp's kernels).
 *   BV_TPACK_TQ5  this project's dense format: a 32-byte header (magic "BVT5", version, rows, cols,
 *                 scale) then each row in ceil(C/5) bytes, 5 codes per byte in base 3
 *                 (byte = sum_k (w_k + 1) * 3^k, k = 0..4, so byte <= 242); a row's last byte is
 *                 padded with w = 0 codes. 1.6 bits per weight. Any shape.
 *
 * docs/formats.md has the bit diagrams, the scale conventions, the tail rules and the sources.
 *
 * Errors: an unknown format is BV_ERR_ARG; a shape a format cannot hold (OC % 4 for HF, C % 128 for
 * I2_S, negative or overflowing sizes) is BV_ERR_SHAPE; codes outside {-1, 0, 1} or a bad scale given
 * to a packer are BV_ERR_ARG; malformed bytes given to an unpacker (wrong length, a 2-bit field of 3,
 * a TQ5 byte > 242 or a bad padding trit, a bad header or scale) are BV_ERR_FORMAT, with a message
 * naming the format, the byte offset and the value. A TQ5 header whose shape differs from the
 * expected one is BV_ERR_SHAPE. On error the output buffer's contents are unspecified.
 *
 * Owns: nothing (callers pass every buffer; bv_tpack_convert allocates and frees one temporary).
 * Must not: quantize floats (that is the BitLinear op's job) or do file I/O.
 * Threads: pack/unpack split large tensors over OpenMP threads; the bytes do not depend on the
 * thread count. Byte order of the scale and header fields is little-endian on every host.
 */
#ifndef BV_TERNARY_PACK_H
#define BV_TERNARY_PACK_H

#include "src/common.h"

typedef enum {
    BV_TPACK_HF = 0,
    BV_TPACK_I2S = 1,
    BV_TPACK_TQ5 = 2,
} bv_tpack_format;
#define BV_TPACK_NFORMATS 3

#define BV_TPACK_I2S_BLOCK 128   /* codes per I2_S block */
#define BV_TPACK_I2S_TRAILER 32  /* fp32 scale + 28 zero bytes after the I2_S codes */
#define BV_TPACK_TQ5_HEADER 32   /* bytes of the TQ5 header */
#define BV_TPACK_TQ5_VERSION 1u

/* Short name of a format for messages ("HF-BitNet", "I2_S", "TQ5"); "?" for an unknown one. */
const char *bv_tpack_name(bv_tpack_format fmt);

/* Bytes that codes of shape (rows, cols) take in format fmt. BV_ERR_SHAPE (with a message) when
 * the format cannot hold that shape. A 1-D tensor of n codes is (1, n). */
bv_status bv_tpack_nbytes(bv_tpack_format fmt, int64_t rows, int64_t cols, size_t *nbytes);

/* codes (rows, cols) int8 in {-1, 0, 1}, scale -> out (out_len == bv_tpack_nbytes bytes).
 * scale: the multiplicative dequant scale (mean|W|), finite and >= 0; stored by I2_S and TQ5,
 * ignored by HF (write it as the separate `weight_scale` tensor). */
bv_status bv_tpack_pack(bv_tpack_format fmt, const int8_t *codes, int64_t rows, int64_t cols, float scale,
                        uint8_t *out, size_t out_len);

/* in (in_len bytes, format fmt, holding codes of shape (rows, cols)) -> codes (rows, cols) int8.
 * *scale (if scale != NULL) gets the stored scale; HF stores none and gets NAN. */
bv_status bv_tpack_unpack(bv_tpack_format fmt, const uint8_t *in, size_t in_len, int64_t rows, int64_t cols,
                          int8_t *codes, float *scale);

/* Re-pack: in (format from) -> out (format to), same codes of shape (rows, cols). The scale carries
 * over; when `from` stores none (HF) `scale` is used instead. Allocates rows*cols bytes of scratch
 * (BV_ERR_NOMEM if that fails). */
bv_status bv_tpack_convert(bv_tpack_format from, const uint8_t *in, size_t in_len, bv_tpack_format to,
                           int64_t rows, int64_t cols, float scale, uint8_t *out, size_t out_len);

/* Read a TQ5 header: shape and scale, validated (magic, version, reserved field, scale, and that
 * in_len matches the shape). Lets a reader size its buffers before bv_tpack_unpack. */
bv_status bv_tpack_tq5_header(const uint8_t *in, size_t in_len, int64_t *rows, int64_t *cols, float *scale);

#endif
