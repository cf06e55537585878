/* crc32c.h - CRC-32C (Castagnoli) and TFRecord's masked CRC: the checksums of every TFRecord-framed
 * file the project reads or writes (RLDS datasets in data/tfrecord.c, TensorBoard event files in
 * src/tb_events.c).
 *
 * CRC-32C uses the reflected polynomial 0x82F63B78; bv_crc32c runs SSE4.2's crc32 instruction where
 * the CPU has it and slicing-by-8 tables elsewhere. TFRecord stores mask(c) = ((c >> 15) | (c << 17))
 * + 0xa282ead8 so that a CRC over data that itself contains CRCs stays informative.
 * Owns: the lookup tables (built once, thread-safe). Must not: know about any file format.
 */
#ifndef BV_CRC32C_H
#define BV_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of n bytes, continuing from `crc` (start with 0). */
uint32_t bv_crc32c(uint32_t crc, const void *data, size_t n);
/* The portable table-driven path (bv_crc32c uses the SSE4.2 instruction where available); tests
 * compare the two. */
uint32_t bv_crc32c_sw(uint32_t crc, const void *data, size_t n);
/* TFRecord's mask of a CRC: ((c >> 15) | (c << 17)) + 0xa282ead8. */
uint32_t bv_crc32c_mask(uint32_t crc);
/* TFRecord's masked CRC-32C of n bytes: bv_crc32c_mask(bv_crc32c(0, data, n)). */
uint32_t bv_crc32c_masked(const void *data, size_t n);

#endif
