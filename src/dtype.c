#include "src/dtype.h"

#include <math.h>
#include <string.h>

#include "src/common.h"

static const struct {
    const char *name;
    size_t size;
} k_dtypes[BV_DTYPE_COUNT] = {
    [BV_DTYPE_F32] = {"F32", 4}, [BV_DTYPE_F64] = {"F64", 8}, [BV_DTYPE_BF16] = {"BF16", 2},
    [BV_DTYPE_F16] = {"F16", 2}, [BV_DTYPE_I8] = {"I8", 1},   [BV_DTYPE_U8] = {"U8", 1},
    [BV_DTYPE_I32] = {"I32", 4}, [BV_DTYPE_I64] = {"I64", 8},
};

size_t bv_dtype_size(bv_dtype dt) {
    BV_ASSERT(dt >= 0 && dt < BV_DTYPE_COUNT, "bad dtype %d", (int)dt);
    return k_dtypes[dt].size;
}

const char *bv_dtype_name(bv_dtype dt) {
    if (dt < 0 || dt >= BV_DTYPE_COUNT) return "?";
    return k_dtypes[dt].name;
}

int bv_dtype_from_name(const char *name, bv_dtype *out) {
    for (int i = 0; i < BV_DTYPE_COUNT; i++)
        if (strcmp(name, k_dtypes[i].name) == 0) {
            *out = (bv_dtype)i;
            return 0;
        }
    return -1;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t bv_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN */
    uint32_t lsb = (u >> 16) & 1u;
    u += 0x7fffu + lsb; /* round to nearest even; overflow to inf is correct behaviour */
    return (uint16_t)(u >> 16);
}

float bv_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t bv_f32_to_f16(float f) {
    uint32_t u = f32_bits(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu)); /* NaN */
    if (a >= 0x47800000u) {
        /* >= 65536: inf (also for +-inf). Values in [65520, 65536) are handled below by rounding. */
        return (uint16_t)(sign | 0x7c00u);
    }
    if (a < 0x38800000u) {
        /* result is subnormal or zero: value = a * 2^24 in units of the smallest subnormal */
        if (a < 0x33000000u) return (uint16_t)sign; /* < 2^-25: rounds to 0 (2^-25 ties to even 0) */
        uint32_t exp = a >> 23;                     /* biased f32 exponent, 102..112 */
        uint32_t mant = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126u - exp; /* mant * 2^(exp-127-23) / 2^-24 = mant >> (126-exp) */
        uint32_t q = mant >> shift;
        uint32_t rem = mant & ((1u << shift) - 1u);
        uint32_t half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (q & 1u))) q++;
        return (uint16_t)(sign | q);
    }
    /* normal: rebias exponent 127 -> 15, round mantissa 23 -> 10 bits */
    uint32_t r = a - 0x38000000u; /* (exp-112)<<23 | mant */
    uint32_t lsb = (r >> 13) & 1u;
    r += 0xfffu + lsb;
    return (uint16_t)(sign | (r >> 13)); /* a carry into the exponent (even to inf) is right */
}

float bv_f16_to_f32(uint16_t h) {
    uint32_t sign = ((uint32_t)h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t mant = h & 0x3ffu;
    if (exp == 0x1fu) return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return bits_f32(sign);
        /* subnormal: mant * 2^-24, exactly representable */
        float v = (float)mant * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

static double load_as_double(const void *src, bv_dtype dt, size_t i) {
    switch (dt) {
    case BV_DTYPE_F32: return ((const float *)src)[i];
    case BV_DTYPE_F64: return ((const double *)src)[i];
    case BV_DTYPE_BF16: return bv_bf16_to_f32(((const uint16_t *)src)[i]);
    case BV_DTYPE_F16: return bv_f16_to_f32(((const uint16_t *)src)[i]);
    case BV_DTYPE_I8: return ((const int8_t *)src)[i];
    case BV_DTYPE_U8: return ((const uint8_t *)src)[i];
    case BV_DTYPE_I32: return ((const int32_t *)src)[i];
    case BV_DTYPE_I64: return (double)((const int64_t *)src)[i];
    default: BV_ASSERT(0, "bad dtype %d", (int)dt);
    }
    return 0;
}

void bv_dtype_convert(void *dst, bv_dtype ddt, const void *src, bv_dtype sdt, size_t n) {
    if (ddt == sdt) {
        memcpy(dst, src, n * bv_dtype_size(ddt));
        return;
    }
    if (ddt == BV_DTYPE_I64 && (sdt == BV_DTYPE_I32 || sdt == BV_DTYPE_U8 || sdt == BV_DTYPE_I8)) {
        for (size_t i = 0; i < n; i++) ((int64_t *)dst)[i] = (int64_t)load_as_double(src, sdt, i);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double v = load_as_double(src, sdt, i);
        switch (ddt) {
        case BV_DTYPE_F32: ((float *)dst)[i] = (float)v; break;
        case BV_DTYPE_F64: ((double *)dst)[i] = v; break;
        /* via float: sdt is a float type here or an integer exactly representable in f32 */
        case BV_DTYPE_BF16: ((uint16_t *)dst)[i] = bv_f32_to_bf16((float)v); break;
        case BV_DTYPE_F16: ((uint16_t *)dst)[i] = bv_f32_to_f16((float)v); break;
        case BV_DTYPE_I8: ((int8_t *)dst)[i] = (int8_t)v; break;
        case BV_DTYPE_U8: ((uint8_t *)dst)[i] = (uint8_t)v; break;
        case BV_DTYPE_I32: ((int32_t *)dst)[i] = (int32_t)v; break;
        case BV_DTYPE_I64: ((int64_t *)dst)[i] = (int64_t)v; break;
        default: BV_ASSERT(0, "bad dtype %d", (int)ddt);
        }
    }
}
