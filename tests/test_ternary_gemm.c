/* Tests of the integer BitLinear forward (kernels/ternary_gemm.h): pack/unpack round trips, every
 * kernel this CPU runs against the plain reference on unpacked codes (exact int32, odd sizes,
 * extreme codes), 1 vs 2 threads (bitwise), the kernel choice (CPU features, BV_TERNARY_KERNEL),
 * the activation quantizer against the spec formula, and the fused dequant against the fake-quant
 * forward computed in double and in fp32. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "src/cpu.h"
#include "src/kernels/bitlinear.h"
#include "src/kernels/ternary_gemm.h"
#include "tests/util/testutil.h"

/* ---- helpers ---- */

static void check_equal_i32(const char *what, const int32_t *got, const int32_t *want, int64_t n) {
    int64_t first = -1, count = 0;
    for (int64_t i = 0; i < n; i++)
        if (got[i] != want[i]) {
            if (first < 0) first = i;
            count++;
        }
    if (first >= 0) {
        print_error("%s: first mismatch at index %lld: got %d want %d; %lld of %lld elements differ\n", what,
                    (long long)first, got[first], want[first], (long long)count, (long long)n);
        fail_msg("%s: int32 results differ", what);
    }
}

static void check_identical_f32(const char *what, const float *got, const float *want, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], 4) != 0) {
            print_error("%s: first difference at index %lld: got %.9g want %.9g (expected bitwise equal)\n", what,
                        (long long)i, got[i], want[i]);
            fail_msg("%s: float results differ", what);
        }
}

static void fill_x(bv_rng *r, int8_t *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (int8_t)((int)(bv_rng_u64(r) % 256) - 128);
}

static void fill_codes(bv_rng *r, int8_t *w, int64_t n) {
    for (int64_t i = 0; i < n; i++) w[i] = (int8_t)((int)(bv_rng_u64(r) % 3) - 1);
}

/* spec section 2 weight quantizer (fp32): s = 1 / max(mean|W|, 1e-5), code = clamp(rint(W s), -1, 1) */
static float quant_weight(int8_t *codes, const float *w, int64_t n) {
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += fabsf(w[i]);
    float s = 1.0f / fmaxf((float)(sum / (double)n), 1e-5f);
    for (int64_t i = 0; i < n; i++) codes[i] = (int8_t)fminf(fmaxf(rintf(w[i] * s), -1.0f), 1.0f);
    return s;
}

static int supported_kernels(bv_ternary_kernel *ks) {
    int n = 0;
    for (int k = 0; k < BV_TERNARY_KERNEL_COUNT; k++)
        if (bv_ternary_kernel_supported((bv_ternary_kernel)k)) ks[n++] = (bv_ternary_kernel)k;
    return n;
}

/* every supported kernel vs the reference on x, codes; also the fused variant bitwise across kernels */
static void check_all_kernels(const char *tag, const int8_t *x, const int8_t *codes, int64_t N, int64_t C,
                              int64_t OC) {
    bv_ternary_mat m;
    assert_int_equal(bv_ternary_mat_pack(&m, codes, OC, C, 3.0f), BV_OK);
    int32_t *want = malloc((size_t)(N * OC + 1) * 4), *got = malloc((size_t)(N * OC + 1) * 4);
    bv_k_ternary_gemm_fwd_ref(want, x, codes, N, C, OC);
    bv_ternary_kernel ks[BV_TERNARY_KERNEL_COUNT];
    int nk = supported_kernels(ks);
    for (int i = 0; i < nk; i++) {
        char what[160];
        snprintf(what, sizeof what, "%s: kernel %s, N=%lld C=%lld OC=%lld", tag, bv_ternary_kernel_name(ks[i]),
                 (long long)N, (long long)C, (long long)OC);
        memset(got, 0x7f, (size_t)(N * OC + 1) * 4);
        bv_k_ternary_gemm_fwd_with(ks[i], got, x, &m, N);
        check_equal_i32(what, got, want, N * OC);
        assert_int_equal(got[N * OC], 0x7f7f7f7f); /* nothing written past the end */
    }
    bv_ternary_mat_free(&m);
    free(want), free(got);
}

/* ---- tests ---- */

static void test_pack_roundtrip(void **state) {
    bv_rng r = {11};
    const int64_t shapes[][2] = {{1, 1}, {1, 17}, {17, 1}, {63, 31}, {64, 16}, {65, 33}, {130, 100}, {640, 2560}};
    for (size_t s = 0; s < BV_ARRAY_LEN(shapes); s++) {
        int64_t OC = shapes[s][0], C = shapes[s][1];
        int8_t *w = malloc(OC * C), *back = malloc(OC * C);
        fill_codes(&r, w, OC * C);
        bv_ternary_mat m;
        assert_int_equal(bv_ternary_mat_pack(&m, w, OC, C, 2.5f), BV_OK);
        assert_int_equal(m.OCp % 64, 0);
        assert_int_equal(m.Cp % 16, 0);
        assert_true(m.OCp >= OC && m.OCp < OC + 64 && m.Cp >= C && m.Cp < C + 16);
        assert_int_equal(bv_ternary_mat_bytes(&m), m.OCp * m.Cp / 4); /* 2 bits per weight */
        assert_true(m.scale == 2.5f);
        bv_ternary_mat_unpack(&m, back);
        assert_memory_equal(back, w, (size_t)(OC * C));
        /* padding holds w = 0, i.e. u = 1 in every 2-bit field beyond the matrix */
        if (OC == 1 && C == 1) {
            assert_int_equal(m.packed[0] & 3, (uint8_t)(w[0] + 1));
            assert_int_equal(m.packed[1], 0x55);
        }
        bv_ternary_mat_free(&m);
        free(w), free(back);
    }
    /* the bit position of one weight, as documented in the header: w[oc=81][c=38]: og 1, b 1, j 1,
     * kb 2, t 1, i 2 -> byte ((1*nkb + 2)*4 + 1)*64 + 4*1 + 2, bits 2..3 */
    {
        int64_t OC = 130, C = 50;
        int8_t *w = calloc(OC * C, 1);
        w[81 * C + 38] = -1;
        bv_ternary_mat m;
        assert_int_equal(bv_ternary_mat_pack(&m, w, OC, C, 1.0f), BV_OK);
        int64_t nkb = m.Cp / 16, at = ((1 * nkb + 2) * 4 + 1) * 64 + 4 + 2;
        assert_int_equal(m.packed[at], 0x55 & ~0x0c);
        for (int64_t i = 0; i < bv_ternary_mat_bytes(&m); i++)
            if (i != at) assert_int_equal(m.packed[i], 0x55);
        bv_ternary_mat_free(&m);
        free(w);
    }
    /* a code outside {-1, 0, 1} is refused with a message naming it and its position */
    {
        int8_t w[6] = {0, 1, -1, 0, 2, 1};
        bv_ternary_mat m;
        assert_int_equal(bv_ternary_mat_pack(&m, w, 2, 3, 1.0f), BV_ERR_ARG);
        assert_non_null(strstr(bv_error_msg(), "code 2 at (1, 1)"));
        assert_null(m.packed);
        bv_ternary_mat_free(&m); /* harmless on the empty matrix */
        /* C beyond 2^18 is refused (the GEMV accumulators are sized for it) */
        assert_int_equal(bv_ternary_mat_pack(&m, w, 0, (1 << 18) + 1, 1.0f), BV_ERR_ARG);
        assert_non_null(strstr(bv_error_msg(), "2^18"));
        assert_int_equal(bv_ternary_mat_pack(&m, w, 0, 1 << 18, 1.0f), BV_OK);
        bv_ternary_mat_free(&m);
    }
}

static void test_kernels_vs_ref_random(void **state) {
    bv_rng r = {12};
    /* N, C, OC: odd and tiny sizes, C around the 16-blocks, the BitNet widths with few rows/columns */
    const int64_t shapes[][3] = {
        {1, 1, 1},      {1, 1, 70},    {3, 1, 5},     {1, 31, 64},    {7, 31, 65},    {7, 33, 17},
        {5, 16, 128},   {13, 47, 129}, {1, 2560, 70}, {7, 2560, 130}, {600, 2560, 70}, {1, 6912, 65},
        {7, 6912, 130}, {61, 6912, 9}, {600, 33, 200}, {9, 100, 700},
    };
    for (size_t s = 0; s < BV_ARRAY_LEN(shapes); s++) {
        int64_t N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        int8_t *x = malloc(N * C), *w = malloc(OC * C);
        fill_x(&r, x, N * C);
        fill_codes(&r, w, OC * C);
        check_all_kernels("random", x, w, N, C, OC);
        free(x), free(w);
    }
}

static void test_kernels_vs_ref_extremes(void **state) {
    /* activations all -128 or all 127 against weights all -1 or all +1: the largest sums in magnitude
     * (and the maddubs pair sums of the AVX2 kernel at their bounds, -512 and 508) */
    const int64_t shapes[][3] = {{1, 1, 1}, {7, 33, 65}, {6, 2560, 64}, {1, 6912, 20}, {13, 6912, 70}};
    const int8_t xv[] = {-128, 127}, wv[] = {-1, 1};
    for (size_t s = 0; s < BV_ARRAY_LEN(shapes); s++) {
        int64_t N = shapes[s][0], C = shapes[s][1], OC = shapes[s][2];
        int8_t *x = malloc(N * C), *w = malloc(OC * C);
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                memset(x, (uint8_t)xv[a], (size_t)(N * C));
                memset(w, (uint8_t)wv[b], (size_t)(OC * C));
                check_all_kernels("extreme", x, w, N, C, OC);
            }
        /* alternating extremes and a sign pattern that mixes within each 4-byte group */
        bv_rng r = {13 + s};
        for (int64_t i = 0; i < N * C; i++) x[i] = (bv_rng_u64(&r) & 1) ? 127 : -128;
        for (int64_t i = 0; i < OC * C; i++) w[i] = (bv_rng_u64(&r) & 1) ? 1 : -1;
        check_all_kernels("extreme mixed", x, w, N, C, OC);
        /* the biggest sum: all -128 against all -1 is +128 C; check the value itself */
        if (s == BV_ARRAY_LEN(shapes) - 1) {
            memset(x, 0x80, (size_t)(N * C));
            memset(w, 0xff, (size_t)(OC * C));
            bv_ternary_mat m;
            assert_int_equal(bv_ternary_mat_pack(&m, w, OC, C, 1.0f), BV_OK);
            int32_t *out = malloc(N * OC * 4);
            bv_k_ternary_gemm_fwd(out, x, &m, N);
            for (int64_t i = 0; i < N * OC; i++) assert_int_equal(out[i], 128 * C);
            free(out);
            bv_ternary_mat_free(&m);
        }
        free(x), free(w);
    }
}

static void test_threads_agree(void **state) {
    bv_rng r = {14};
    int64_t N = 97, C = 2567, OC = 333;
    int8_t *x = malloc(N * C), *w = malloc(OC * C);
    float *sx = malloc(N * 4), *bias = malloc(OC * 4);
    fill_x(&r, x, N * C);
    fill_codes(&r, w, OC * C);
    bv_rng_fill_f32(&r, sx, N, 1.0, 200.0);
    bv_rng_fill_f32(&r, bias, OC, -1, 1);
    bv_ternary_mat m;
    assert_int_equal(bv_ternary_mat_pack(&m, w, OC, C, 1.7f), BV_OK);
    int32_t *o1 = malloc(N * OC * 4), *o2 = malloc(N * OC * 4);
    float *y1 = malloc(N * OC * 4), *y2 = malloc(N * OC * 4);
    bv_ternary_kernel ks[BV_TERNARY_KERNEL_COUNT];
    int nk = supported_kernels(ks), saved = bv_num_threads();
    for (int i = 0; i < nk; i++)
        for (int64_t n = 1; n <= N; n += N - 1) { /* GEMV and GEMM */
            char what[96];
            bv_set_num_threads(1);
            bv_k_ternary_gemm_fwd_with(ks[i], o1, x, &m, n);
            bv_k_ternary_linear_fwd_with(ks[i], y1, x, sx, &m, bias, n);
            bv_set_num_threads(2);
            bv_k_ternary_gemm_fwd_with(ks[i], o2, x, &m, n);
            bv_k_ternary_linear_fwd_with(ks[i], y2, x, sx, &m, bias, n);
            snprintf(what, sizeof what, "%s N=%lld: 1 vs 2 threads (int32)", bv_ternary_kernel_name(ks[i]),
                     (long long)n);
            check_equal_i32(what, o2, o1, n * OC);
            snprintf(what, sizeof what, "%s N=%lld: 1 vs 2 threads (fused)", bv_ternary_kernel_name(ks[i]),
                     (long long)n);
            check_identical_f32(what, y2, y1, n * OC);
        }
    bv_set_num_threads(saved);
    bv_ternary_mat_free(&m);
    free(x), free(w), free(sx), free(bias), free(o1), free(o2), free(y1), free(y2);
}

static void test_dispatch(void **state) {
    const bv_cpu_features *c = bv_cpu();
    bv_ternary_kernel best = c->avx512f && c->avx512bw && c->avx512vnni ? BV_TERNARY_KERNEL_AVX512VNNI
                             : c->avx2 && c->fma                        ? BV_TERNARY_KERNEL_AVX2
                                                                        : BV_TERNARY_KERNEL_REF;
#if !defined(__x86_64__)
    best = BV_TERNARY_KERNEL_REF;
#endif
    print_message("cpu: %s; best ternary kernel: %s\n", bv_cpu_describe(), bv_ternary_kernel_name(best));
    assert_true(bv_ternary_kernel_supported(BV_TERNARY_KERNEL_REF));
    assert_true(bv_ternary_kernel_supported(best));
    const char *saved = getenv("BV_TERNARY_KERNEL");
    char *saved_copy = saved ? bv_xstrdup(saved) : NULL;
    unsetenv("BV_TERNARY_KERNEL");
    assert_int_equal(bv_ternary_kernel_from_env(), best);
    setenv("BV_TERNARY_KERNEL", "", 1);
    assert_int_equal(bv_ternary_kernel_from_env(), best);
    for (int k = 0; k < BV_TERNARY_KERNEL_COUNT; k++) {
        bv_ternary_kernel p;
        assert_int_equal(bv_ternary_kernel_parse(bv_ternary_kernel_name((bv_ternary_kernel)k), &p), BV_OK);
        assert_int_equal(p, k);
        setenv("BV_TERNARY_KERNEL", bv_ternary_kernel_name((bv_ternary_kernel)k), 1);
        bv_ternary_kernel want = bv_ternary_kernel_supported((bv_ternary_kernel)k) ? (bv_ternary_kernel)k : best;
        assert_int_equal(bv_ternary_kernel_from_env(), want); /* unsupported: falls back, with a message */
    }
    setenv("BV_TERNARY_KERNEL", "sse9", 1);
    assert_int_equal(bv_ternary_kernel_from_env(), best);
    bv_ternary_kernel p;
    assert_int_equal(bv_ternary_kernel_parse("sse9", &p), BV_ERR_ARG);
    assert_non_null(strstr(bv_error_msg(), "'sse9'"));
    if (saved_copy) setenv("BV_TERNARY_KERNEL", saved_copy, 1);
    else unsetenv("BV_TERNARY_KERNEL");
    free(saved_copy);
    /* the active kernel is the one the environment of this run asks for (or the best) */
    assert_int_equal(bv_ternary_kernel_active(), bv_ternary_kernel_from_env());
    assert_string_equal(bv_ternary_kernel_active_name(), bv_ternary_kernel_name(bv_ternary_kernel_active()));
}

static void test_act_quant(void **state) {
    bv_rng r = {15};
    int64_t N = 9, C = 301;
    float *x = malloc(N * C * 4), *s = malloc(N * 4);
    int8_t *q = malloc(N * C);
    bv_rng_fill_normal_f32(&r, x, N * C, 2.0);
    /* row 1: max |x| = 127 so s = 1, and exact ties: half to even as torch.round */
    for (int64_t c = 0; c < C; c++) x[C + c] = 0.0f;
    const float ties[] = {127.0f, 2.5f, 3.5f, -2.5f, -3.5f, 0.5f, -0.5f, 1.5f, -127.0f, 126.5f};
    const int8_t tie_codes[] = {127, 2, 4, -2, -4, 0, 0, 2, -127, 126};
    memcpy(x + C, ties, sizeof ties);
    for (int64_t c = 0; c < C; c++) x[2 * C + c] = 0.0f; /* row 2: all zero (s from the 1e-5 floor) */
    x[3 * C + 5] = 1e30f;                                /* row 3: one huge value */
    bv_k_quant_act_fwd(NULL, q, s, x, N, C);
    for (int64_t n = 0; n < N; n++) {
        float m = 0.0f;
        for (int64_t c = 0; c < C; c++) m = fmaxf(m, fabsf(x[n * C + c]));
        float sw = (1.0f / fmaxf(m, 1e-5f)) * 127.0f; /* as torch: reciprocal, then * 127 */
        assert_true(s[n] == sw);
        for (int64_t c = 0; c < C; c++) {
            float v = nearbyintf(x[n * C + c] * sw);
            int8_t want = (int8_t)fminf(fmaxf(v, -128.0f), 127.0f);
            if (q[n * C + c] != want) fail_msg("act quant row %lld col %lld: x %.9g s %.9g: got %d want %d",
                                               (long long)n, (long long)c, x[n * C + c], sw, q[n * C + c], want);
        }
    }
    assert_true(s[1] == 1.0f);
    for (size_t i = 0; i < BV_ARRAY_LEN(tie_codes); i++) assert_int_equal(q[C + i], tie_codes[i]);
    assert_true(s[2] == (1.0f / 1e-5f) * 127.0f);
    for (int64_t c = 0; c < C; c++) assert_int_equal(q[2 * C + c], 0);
    free(x), free(s), free(q);
}

/* y = act_quant(x) @ ternary(W)^T * (1 / (s_x s_w)) + b: the fused kernels against the fake-quant
 * forward (x_codes / s_x) @ (w_codes / s_w)^T + b computed (1) in double: to a few float roundings of
 * the result, (2) in fp32 as the QAT path does: within fp32's dot-product error bound. */
static void test_fused_vs_fake_quant(void **state) {
    bv_rng r = {16};
    const int64_t shapes[][3] = {{1, 2560, 70}, {7, 33, 65}, {37, 6912, 20}, {600, 31, 100}};
    for (size_t si = 0; si < BV_ARRAY_LEN(shapes); si++) {
        int64_t N = shapes[si][0], C = shapes[si][1], OC = shapes[si][2];
        float *x = malloc(N * C * 4), *wf = malloc(OC * C * 4), *b = malloc(OC * 4), *sx = malloc(N * 4);
        int8_t *xq = malloc(N * C), *wq = malloc(OC * C);
        bv_rng_fill_normal_f32(&r, x, N * C, 1.0);
        bv_rng_fill_normal_f32(&r, wf, OC * C, 0.02);
        bv_rng_fill_f32(&r, b, OC, -0.5, 0.5);
        bv_k_quant_act_fwd(NULL, xq, sx, x, N, C);
        float sw = quant_weight(wq, wf, OC * C);
        bv_ternary_mat m;
        assert_int_equal(bv_ternary_mat_pack(&m, wq, OC, C, sw), BV_OK);
        double *yd = malloc(N * OC * 8), *ydot = malloc(N * OC * 8), *yabs = malloc(N * OC * 8);
        float *y32 = malloc(N * OC * 4), *y = malloc(N * OC * 4), *yfirst = malloc(N * OC * 4);
        bv_k_ternary_linear_fwd_ref(yd, xq, sx, wq, sw, b, N, C, OC);
        /* fp32 fake-quant forward, straight loops, and sum |terms| for its error bound */
        float *xdq = malloc(N * C * 4), *wdq = malloc(OC * C * 4);
        for (int64_t n = 0; n < N; n++)
            for (int64_t c = 0; c < C; c++) xdq[n * C + c] = (float)xq[n * C + c] / sx[n];
        for (int64_t i = 0; i < OC * C; i++) wdq[i] = (float)wq[i] / sw;
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) {
                float acc = 0.0f;
                double sabs = 0.0;
                for (int64_t c = 0; c < C; c++) {
                    acc += xdq[n * C + c] * wdq[o * C + c];
                    sabs += fabs((double)xdq[n * C + c] * wdq[o * C + c]);
                }
                y32[n * OC + o] = acc + b[o];
                ydot[n * OC + o] = yd[n * OC + o] - b[o];
                yabs[n * OC + o] = sabs;
            }
        bv_ternary_kernel ks[BV_TERNARY_KERNEL_COUNT];
        int nk = supported_kernels(ks);
        const double u = 1.0 / 16777216.0; /* 2^-24: unit roundoff of fp32 */
        for (int i = 0; i < nk; i++) {
            const char *kn = bv_ternary_kernel_name(ks[i]);
            bv_k_ternary_linear_fwd_with(ks[i], y, xq, sx, &m, si % 2 ? b : NULL, N);
            for (int64_t n = 0; n < N; n++)
                for (int64_t o = 0; o < OC; o++) {
                    int64_t k = n * OC + o;
                    double bias = si % 2 ? b[o] : 0.0, want = ydot[k] + bias;
                    /* (1) the int32 sum is exact; 1/(s_x s_w) costs 3 roundings, the fma 1 */
                    double tol1 = 4 * u * fabs(ydot[k]) + u * fabs(want);
                    if (!(fabs(y[k] - want) <= tol1))
                        fail_msg("fused %s N=%lld C=%lld OC=%lld at (%lld, %lld): got %.9g want %.12g (double "
                                 "fake-quant), tol %.3g", kn, (long long)N, (long long)C, (long long)OC,
                                 (long long)n, (long long)o, y[k], want, tol1);
                    /* (2) fp32 fake-quant: dequantised operands (1 rounding each), products, C - 1 sums */
                    double want32 = (double)y32[k] - b[o] + bias;
                    double tol2 = (C + 3) * u * yabs[k] + 2 * u * (fabs(want32) + fabs(b[o]));
                    if (!(fabs(y[k] - want32) <= tol2))
                        fail_msg("fused %s N=%lld C=%lld OC=%lld at (%lld, %lld): got %.9g, fp32 fake-quant %.9g, "
                                 "tol %.3g", kn, (long long)N, (long long)C, (long long)OC, (long long)n,
                                 (long long)o, y[k], want32, tol2);
                }
            if (i == 0) memcpy(yfirst, y, N * OC * 4);
            else check_identical_f32("fused: every kernel gives the same floats", y, yfirst, N * OC);
        }
        bv_ternary_mat_free(&m);
        free(x), free(wf), free(b), free(sx), free(xq), free(wq), free(yd), free(ydot), free(yabs);
        free(y32), free(y), free(yfirst), free(xdq), free(wdq);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_roundtrip),         cmocka_unit_test(test_kernels_vs_ref_random),
        cmocka_unit_test(test_kernels_vs_ref_extremes), cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_dispatch),               cmocka_unit_test(test_act_quant),
        cmocka_unit_test(test_fused_vs_fake_quant),
    };
    return cmocka_run_group_tests_name("ternary_gemm", tests, NULL, NULL);
}
