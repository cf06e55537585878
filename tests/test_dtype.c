/* Tests of the bf16/f16 <-> f32 conversions: every one of the 65536 bit patterns of each half type
 * decodes exactly (checked against an independent decoding with ldexp from the sign, exponent and
 * mantissa fields) and survives f32 -> half -> f32 bit-exactly (NaN stays NaN); f32 -> bf16 and
 * f32 -> f16 round to nearest even exactly like PyTorch on a committed fixture of ties, near-ties,
 * subnormals, overflow and specials (tests/gen/gen_dtype.py). */
#include <math.h>
#include <string.h>

#include "src/safetensors.h"
#include "tests/util/testutil.h"

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Independent decoding: value = (-1)^s * (implicit + m) * 2^(e - bias - mbits). */
static double decode_half(uint16_t h, int ebits, int mbits) {
    int bias = (1 << (ebits - 1)) - 1;
    int s = h >> 15, e = (h >> mbits) & ((1 << ebits) - 1), m = h & ((1 << mbits) - 1);
    double v;
    if (e == (1 << ebits) - 1)
        v = m ? NAN : INFINITY;
    else if (e == 0)
        v = ldexp(m, 1 - bias - mbits); /* subnormal (or zero) */
    else
        v = ldexp((1 << mbits) + m, e - bias - mbits);
    return s ? -v : v;
}

typedef struct {
    const char *name;
    int ebits, mbits;
    float (*to_f32)(uint16_t);
    uint16_t (*from_f32)(float);
} half_kind;

static const half_kind k_bf16 = {"bf16", 8, 7, bv_bf16_to_f32, bv_f32_to_bf16};
static const half_kind k_f16 = {"f16", 5, 10, bv_f16_to_f32, bv_f32_to_f16};

static void check_all_patterns(const half_kind *k) {
    int n_nan = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t h = (uint16_t)i;
        float f = k->to_f32(h);
        double want = decode_half(h, k->ebits, k->mbits);
        if (isnan(want)) {
            n_nan++;
            if (!isnan(f)) fail_msg("%s 0x%04x: decodes to %.9g (0x%08x), expected NaN", k->name, h, f, bits_of(f));
            if (!!signbit(f) != !!(h >> 15)) fail_msg("%s 0x%04x: NaN lost its sign", k->name, h);
            uint16_t back = k->from_f32(f);
            if (!isnan(k->to_f32(back)))
                fail_msg("%s 0x%04x: NaN -> f32 -> %s gives 0x%04x, not a NaN", k->name, h, k->name, back);
            continue;
        }
        /* exact: same value and, for zeros, same sign */
        if ((double)f != want || !!signbit(f) != !!signbit(want))
            fail_msg("%s 0x%04x: decodes to %.17g (0x%08x), expected %.17g", k->name, h, (double)f, bits_of(f), want);
        uint16_t back = k->from_f32(f);
        if (back != h)
            fail_msg("%s 0x%04x: f32 %.9g -> %s gives 0x%04x, expected the original pattern", k->name, h, f,
                     k->name, back);
    }
    /* NaNs: all-ones exponent with a nonzero mantissa, both signs */
    assert_int_equal(n_nan, 2 * ((1 << k->mbits) - 1));
}

static void test_bf16_all_patterns(void **state) { check_all_patterns(&k_bf16); }
static void test_f16_all_patterns(void **state) { check_all_patterns(&k_f16); }

/* A few hand-checked cases, so a broken fixture cannot hide a broken conversion. */
static void test_rounding_by_hand(void **state) {
    float one = 1.0f;
    uint32_t u = bits_of(one);
    float tie_even, tie_odd;
    uint32_t t1 = u | 0x8000u, t2 = (u + 0x10000u) | 0x8000u;
    memcpy(&tie_even, &t1, 4); /* halfway between 0x3f80 (even) and 0x3f81 */
    memcpy(&tie_odd, &t2, 4);  /* halfway between 0x3f81 (odd) and 0x3f82 */
    assert_int_equal(bv_f32_to_bf16(tie_even), 0x3f80);
    assert_int_equal(bv_f32_to_bf16(tie_odd), 0x3f82);
    assert_int_equal(bv_f32_to_f16(65504.0f), 0x7bff);
    assert_int_equal(bv_f32_to_f16(65519.996f), 0x7bff);
    assert_int_equal(bv_f32_to_f16(65520.0f), 0x7c00); /* tie with the odd 0x7bff: to inf */
    assert_int_equal(bv_f32_to_f16(-1e10f), 0xfc00);
    assert_int_equal(bv_f32_to_f16(0x1p-25f), 0x0000);           /* tie with 0: to even 0 */
    assert_int_equal(bv_f32_to_f16(0x1.000002p-25f), 0x0001);    /* just above: smallest subnormal */
    assert_int_equal(bv_f32_to_f16(0x1.8p-24f), 0x0002);         /* 1.5 ulp: tie to even 2 */
    assert_int_equal(bv_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(bv_f32_to_bf16(-0.0f), 0x8000);
    assert_int_equal(bv_f32_to_bf16(INFINITY), 0x7f80);
    assert_int_equal(bv_f32_to_bf16(3.4028235e38f), 0x7f80); /* f32 max rounds past bf16 max */
    float snan;
    uint32_t sn = 0x7f800001u; /* signalling NaN whose payload lies in the dropped bits */
    memcpy(&snan, &sn, 4);
    assert_true(isnan(bv_bf16_to_f32(bv_f32_to_bf16(snan))));
    assert_true(isnan(bv_f16_to_f32(bv_f32_to_f16(snan))));
}

static void check_against_torch(const char *what, const float *x, const uint16_t *want, int64_t n,
                                const half_kind *k) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        uint16_t got = k->from_f32(x[i]);
        bool ok;
        if (isnan(x[i]))
            ok = isnan(k->to_f32(got)) && isnan(k->to_f32(want[i]));
        else
            ok = got == want[i];
        if (!ok) {
            if (first < 0) first = i;
            bad++;
        }
    }
    if (bad)
        fail_msg("%s: %lld of %lld values differ from PyTorch; first at index %lld: f32 %.9g (0x%08x) -> 0x%04x, "
                 "PyTorch 0x%04x",
                 what, (long long)bad, (long long)n, (long long)first, x[first], bits_of(x[first]),
                 k->from_f32(x[first]), want[first]);
}

static void test_round_to_nearest_even_vs_torch(void **state) {
    bv_st_file f;
    if (bv_st_open(&f, bv_fixture_path("dtype.safetensors")) != BV_OK) fail_msg("%s", bv_error_msg());
    int i = bv_st_find(&f, "x");
    assert_true(i >= 0);
    int64_t n = f.entries[i].shape[0];
    assert_true(n > 10000);
    float *x = malloc(n * sizeof *x);
    uint16_t *bf = malloc(n * sizeof *bf), *hf = malloc(n * sizeof *hf);
    assert_int_equal(bv_st_read(&f, "x", BV_DTYPE_F32, 1, &n, 0, x), BV_OK);
    assert_int_equal(bv_st_read(&f, "bf16", BV_DTYPE_BF16, 1, &n, 0, bf), BV_OK);
    assert_int_equal(bv_st_read(&f, "f16", BV_DTYPE_F16, 1, &n, 0, hf), BV_OK);
    /* the fixture really holds the cases it claims: ties of each kind, subnormals, specials */
    int64_t bf_ties = 0, f16_ties = 0, f16_sub = 0, n_nan = 0, n_inf = 0, n_zero = 0, f16_ovf = 0;
    for (int64_t j = 0; j < n; j++) {
        uint32_t u = bits_of(x[j]);
        if ((u & 0xffffu) == 0x8000u) bf_ties++;
        if ((u & 0x1fffu) == 0x1000u && fabsf(x[j]) >= 0x1p-14f && fabsf(x[j]) < 65520.f) f16_ties++;
        if (fabsf(x[j]) < 0x1p-14f && fabsf(x[j]) > 0) f16_sub++;
        if (isnan(x[j])) n_nan++;
        if (isinf(x[j])) n_inf++;
        if (x[j] == 0) n_zero++;
        if (!isinf(x[j]) && (hf[j] & 0x7fffu) == 0x7c00u) f16_ovf++;
    }
    assert_true(bf_ties > 1000 && f16_ties > 1000 && f16_sub > 1000);
    assert_true(n_nan >= 10 && n_inf >= 2 && n_zero >= 2 && f16_ovf > 100);
    check_against_torch("f32 -> bf16", x, bf, n, &k_bf16);
    check_against_torch("f32 -> f16", x, hf, n, &k_f16);
    /* the bulk converter agrees with the scalar one */
    uint16_t *conv = malloc(n * sizeof *conv);
    bv_dtype_convert(conv, BV_DTYPE_BF16, x, BV_DTYPE_F32, (size_t)n);
    for (int64_t j = 0; j < n; j++)
        if (!isnan(x[j]) && conv[j] != bf[j]) fail_msg("convert f32 -> bf16 [%lld]: 0x%04x vs 0x%04x", (long long)j, conv[j], bf[j]);
    bv_dtype_convert(conv, BV_DTYPE_F16, x, BV_DTYPE_F32, (size_t)n);
    for (int64_t j = 0; j < n; j++)
        if (!isnan(x[j]) && conv[j] != hf[j]) fail_msg("convert f32 -> f16 [%lld]: 0x%04x vs 0x%04x", (long long)j, conv[j], hf[j]);
    free(conv);
    free(x), free(bf), free(hf);
    bv_st_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bf16_all_patterns),
        cmocka_unit_test(test_f16_all_patterns),
        cmocka_unit_test(test_rounding_by_hand),
        cmocka_unit_test(test_round_to_nearest_even_vs_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
