/* dtype.h - element types and the bf16/f16 <-> f32 conversions.
 *
 * Owns: nothing (pure functions).
 * Conversions f32 -> bf16/f16 round to nearest, ties to even (as PyTorch and numpy do); NaN stays
 * NaN (quiet), infinities and signed zeros are preserved, f16 overflow gives +-inf and f16
 * subnormals are produced exactly. bf16/f16 -> f32 is exact.
 */
#ifndef BV_DTYPE_H
#define BV_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    BV_DTYPE_F32 = 0,
    BV_DTYPE_F64,
    BV_DTYPE_BF16,
    BV_DTYPE_F16,
    BV_DTYPE_I8,
    BV_DTYPE_U8,
    BV_DTYPE_I32,
    BV_DTYPE_I64,
    BV_DTYPE_COUNT
} bv_dtype;

size_t bv_dtype_size(bv_dtype dt);
/* Short name as used by safetensors ("F32", "BF16", "I64", ...). */
const char *bv_dtype_name(bv_dtype dt);
/* Parse a safetensors dtype name; returns 0 and sets *out on success, -1 if unknown. */
int bv_dtype_from_name(const char *name, bv_dtype *out);

uint16_t bv_f32_to_bf16(float f);
float bv_bf16_to_f32(uint16_t h);
uint16_t bv_f32_to_f16(float f);
float bv_f16_to_f32(uint16_t h);

/* Convert n elements between any two dtypes (element-wise, via double for floats; integer
 * targets truncate toward zero like a C cast). Used on load/save, not in hot loops. */
void bv_dtype_convert(void *dst, bv_dtype dst_dt, const void *src, bv_dtype src_dt, size_t n);

#endif
