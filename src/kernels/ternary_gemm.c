#include "src/kernels/ternary_gemm.h"

#include <math.h>
#include <string.h>

#include "src/cpu.h"
#include "src/kernels/ternary_gemm_impl.h"

/* ---- the packed layout (see ternary_gemm.h) ---- */

static inline int64_t tg_byte(int64_t nkb, int64_t oc, int64_t c, int *shift) {
    int64_t og = oc >> 6, b = (oc >> 4) & 3, j = oc & 15, kb = c >> 4, t = (c >> 2) & 3, i = c & 3;
    *shift = (int)(2 * t);
    return ((og * nkb + kb) * 4 + b) * 64 + 4 * j + i;
}

bv_status bv_ternary_mat_pack(bv_ternary_mat *m, const int8_t *codes, int64_t OC, int64_t C, float scale) {
    memset(m, 0, sizeof *m);
    if (OC < 0 || C < 0 || C > ((int64_t)1 << 18))
        return bv_error_set(BV_ERR_ARG, "bv_ternary_mat_pack: shape (%lld, %lld): expected 0 <= C <= 2^18 "
                            "(the int32 accumulators of the GEMV kernel could overflow beyond)", (long long)OC, (long long)C);
    for (int64_t oc = 0; oc < OC; oc++)
        for (int64_t c = 0; c < C; c++) {
            int8_t v = codes[oc * C + c];
            if (v < -1 || v > 1)
                return bv_error_set(BV_ERR_ARG, "bv_ternary_mat_pack: code %d at (%lld, %lld) of a (%lld, %lld) "
                                    "matrix: expected -1, 0 or 1", v, (long long)oc, (long long)c,
                                    (long long)OC, (long long)C);
        }
    m->OC = OC, m->C = C, m->scale = scale;
    m->OCp = (OC + BV_TG_GROUP - 1) / BV_TG_GROUP * BV_TG_GROUP;
    m->Cp = (C + BV_TG_KBLK - 1) / BV_TG_KBLK * BV_TG_KBLK;
    int64_t bytes = m->OCp * m->Cp / 4, nkb = m->Cp / BV_TG_KBLK;
    m->packed = bv_aligned_alloc((size_t)(bytes > 0 ? bytes : 64));
    memset(m->packed, 0x55, (size_t)bytes); /* u = 1 (w = 0) in every field: the padding */
    for (int64_t oc = 0; oc < OC; oc++)
        for (int64_t c = 0; c < C; c++) {
            int sh;
            int64_t at = tg_byte(nkb, oc, c, &sh);
            unsigned u = (unsigned)(codes[oc * C + c] + 1);
            m->packed[at] = (uint8_t)((m->packed[at] & ~(3u << sh)) | (u << sh));
        }
    return BV_OK;
}

void bv_ternary_mat_free(bv_ternary_mat *m) {
    if (m->packed) bv_aligned_free(m->packed);
    memset(m, 0, sizeof *m);
}

void bv_ternary_mat_unpack(const bv_ternary_mat *m, int8_t *codes) {
    int64_t nkb = m->Cp / BV_TG_KBLK;
    for (int64_t oc = 0; oc < m->OC; oc++)
        for (int64_t c = 0; c < m->C; c++) {
            int sh;
            int64_t at = tg_byte(nkb, oc, c, &sh);
            codes[oc * m->C + c] = (int8_t)(((m->packed[at] >> sh) & 3) - 1);
        }
}

int64_t bv_ternary_mat_bytes(const bv_ternary_mat *m) { return m->OCp * m->Cp / 4; }

/* ---- kernel choice ---- */

static const char *const k_names[BV_TERNARY_KERNEL_COUNT] = {"ref", "avx2", "avx512vnni"};

const char *bv_ternary_kernel_name(bv_ternary_kernel k) {
    return k >= 0 && k < BV_TERNARY_KERNEL_COUNT ? k_names[k] : "?";
}

bool bv_ternary_kernel_supported(bv_ternary_kernel k) {
#if defined(__x86_64__)
    const bv_cpu_features *c = bv_cpu();
    switch (k) {
    case BV_TERNARY_KERNEL_REF: return true;
    case BV_TERNARY_KERNEL_AVX2: return c->avx2 && c->fma;
    case BV_TERNARY_KERNEL_AVX512VNNI: return c->avx512f && c->avx512bw && c->avx512vnni;
    default: return false;
    }
#else
    return k == BV_TERNARY_KERNEL_REF;
#endif
}

bv_status bv_ternary_kernel_parse(const char *name, bv_ternary_kernel *out) {
    for (int k = 0; k < BV_TERNARY_KERNEL_COUNT; k++)
        if (name && !strcmp(name, k_names[k])) {
            *out = (bv_ternary_kernel)k;
            return BV_OK;
        }
    return bv_error_set(BV_ERR_ARG, "unknown ternary kernel '%s' (expected ref, avx2 or avx512vnni)",
                        name ? name : "(null)");
}

static bv_ternary_kernel best_supported(void) {
    for (int k = BV_TERNARY_KERNEL_COUNT - 1; k > 0; k--)
        if (bv_ternary_kernel_supported((bv_ternary_kernel)k)) return (bv_ternary_kernel)k;
    return BV_TERNARY_KERNEL_REF;
}

bv_ternary_kernel bv_ternary_kernel_from_env(void) {
    const char *v = getenv("BV_TERNARY_KERNEL");
    bv_ternary_kernel best = best_supported(), k;
    if (!v || !*v) return best;
    if (bv_ternary_kernel_parse(v, &k) != BV_OK) {
        fprintf(stderr, "bitvla: BV_TERNARY_KERNEL='%s' is not a kernel (expected ref, avx2 or avx512vnni); "
                "using %s\n", v, k_names[best]);
        return best;
    }
    if (!bv_ternary_kernel_supported(k)) {
        fprintf(stderr, "bitvla: BV_TERNARY_KERNEL=%s: this CPU lacks the instructions (has: %s); using %s\n", v,
                bv_cpu_describe(), k_names[best]);
        return best;
    }
    return k;
}

static int g_active = -1;

bv_ternary_kernel bv_ternary_kernel_active(void) {
    int k = __atomic_load_n(&g_active, __ATOMIC_ACQUIRE);
    if (k < 0) {
        k = (int)bv_ternary_kernel_from_env();
        __atomic_store_n(&g_active, k, __ATOMIC_RELEASE);
    }
    return (bv_ternary_kernel)k;
}

const char *bv_ternary_kernel_active_name(void) { return k_names[bv_ternary_kernel_active()]; }

/* ---- the portable kernel: scalar loops over the packed matrix ---- */

#define MR_REF 8

static void tile_ref(const bv_tg_args *a, int64_t og, int64_t n0, int nr, const int32_t *rowsum) {
    const bv_ternary_mat *w = a->w;
    const int64_t C = w->C, OC = w->OC, nkb = w->Cp / BV_TG_KBLK;
    const uint8_t *wg = w->packed + og * nkb * BV_TG_BLKBYTES;
    int32_t acc[MR_REF][BV_TG_GROUP];
    memset(acc, 0, sizeof acc);
    for (int64_t kb = 0; kb < nkb; kb++) {
        const uint8_t *blk = wg + kb * BV_TG_BLKBYTES;
        int8_t wc[BV_TG_GROUP][BV_TG_KBLK]; /* codes of 64 channels x 16 inputs, unpacked */
        for (int o = 0; o < BV_TG_GROUP; o++)
            for (int c = 0; c < BV_TG_KBLK; c++)
                wc[o][c] = (int8_t)(((blk[(o >> 4) * 64 + 4 * (o & 15) + (c & 3)] >> (2 * (c >> 2))) & 3) - 1);
        int kmax = (int)BV_MIN(BV_TG_KBLK, C - kb * BV_TG_KBLK);
        for (int r = 0; r < nr; r++) {
            const int8_t *xr = a->x + (n0 + r) * C + kb * BV_TG_KBLK;
            for (int o = 0; o < BV_TG_GROUP; o++) {
                int32_t s = 0;
                for (int c = 0; c < kmax; c++) s += (int32_t)xr[c] * wc[o][c];
                acc[r][o] += s;
            }
        }
    }
    int ocn = (int)BV_MIN(BV_TG_GROUP, OC - og * BV_TG_GROUP);
    for (int r = 0; r < nr; r++) {
        int64_t n = n0 + r, oc0 = og * BV_TG_GROUP;
        if (a->out_i32) {
            for (int o = 0; o < ocn; o++) a->out_i32[n * OC + oc0 + o] = acc[r][o];
        } else {
            float f = bv_tg_row_factor(a, n);
            for (int o = 0; o < ocn; o++)
                a->out_f32[n * OC + oc0 + o] = fmaf((float)acc[r][o], f, a->bias ? a->bias[oc0 + o] : 0.0f);
        }
    }
}

/* ---- the driver: tiles of (rows, 64 output channels), OpenMP over disjoint tiles ---- */

#define ROW_CHUNK 480 /* rows whose x row sums live on the stack at once (a multiple of every mr) */
#define PANEL 48      /* rows per unit of parallel work (a multiple of every mr) */
#define FEW_ROWS 16

static int32_t tg_rowsum(const int8_t *x, int64_t C) {
#if defined(__x86_64__)
    return bv_tg_rowsum_avx2(x, C); /* only SIMD kernels, so only CPUs with AVX2, need it */
#else
    int32_t s = 0;
    for (int64_t c = 0; c < C; c++) s += x[c];
    return s;
#endif
}

static void tg_run(bv_ternary_kernel k, const bv_tg_args *a, int64_t N) {
    const bv_ternary_mat *w = a->w;
    BV_ASSERT(w && (w->packed || w->OC == 0), "ternary gemm: weight matrix not packed");
    BV_ASSERT(k >= 0 && k < BV_TERNARY_KERNEL_COUNT && bv_ternary_kernel_supported(k),
              "ternary gemm: kernel %s not supported by this CPU (%s)", bv_ternary_kernel_name(k),
              bv_cpu_describe());
    if (N <= 0 || w->OC == 0) return;
    bv_tg_tile_fn tile = tile_ref;
    int mr = MR_REF;
#if defined(__x86_64__)
    if (k == BV_TERNARY_KERNEL_AVX2) tile = bv_tg_tile_avx2, mr = BV_TG_MR_AVX2;
    if (k == BV_TERNARY_KERNEL_AVX512VNNI) tile = bv_tg_tile_avx512vnni, mr = BV_TG_MR_AVX512VNNI;
#endif
    const bool need_rowsum = k != BV_TERNARY_KERNEL_REF;
    const int64_t C = w->C, G = w->OCp / BV_TG_GROUP;
    const bool par = N * C * w->OC >= (1 << 18);
    for (int64_t c0 = 0; c0 < N; c0 += ROW_CHUNK) {
        const int64_t nc = BV_MIN(ROW_CHUNK, N - c0), P = (nc + PANEL - 1) / PANEL;
        int32_t rowsum[ROW_CHUNK];
#pragma omp parallel if (par)
        {
            /* few rows (decoding): each thread sums them itself, which saves a barrier per call */
            int32_t own[FEW_ROWS];
            const int32_t *rs = rowsum;
            if (need_rowsum && nc <= FEW_ROWS) {
                for (int64_t r = 0; r < nc; r++) own[r] = tg_rowsum(a->x + (c0 + r) * C, C);
                rs = own;
            } else if (need_rowsum) {
#pragma omp for schedule(static)
                for (int64_t r = 0; r < nc; r++) rowsum[r] = tg_rowsum(a->x + (c0 + r) * C, C);
            }
            /* group-major: a thread's consecutive tiles share the group's weights */
#pragma omp for schedule(static) nowait
            for (int64_t t = 0; t < G * P; t++) {
                int64_t g = t / P, p = t % P, r1 = BV_MIN(nc, (p + 1) * PANEL);
                for (int64_t r = p * PANEL; r < r1; r += mr)
                    tile(a, g, c0 + r, (int)BV_MIN(mr, r1 - r), rs + r);
            }
        }
    }
}

void bv_k_ternary_gemm_fwd_with(bv_ternary_kernel k, int32_t *out, const int8_t *x, const bv_ternary_mat *w,
                                int64_t N) {
    bv_tg_args a = {.x = x, .w = w, .out_i32 = out};
    tg_run(k, &a, N);
}

void bv_k_ternary_linear_fwd_with(bv_ternary_kernel k, float *y, const int8_t *x, const float *s_x,
                                  const bv_ternary_mat *w, const float *bias, int64_t N) {
    bv_tg_args a = {.x = x, .w = w, .out_f32 = y, .s_x = s_x, .bias = bias};
    tg_run(k, &a, N);
}

void bv_k_ternary_gemm_fwd(int32_t *out, const int8_t *x, const bv_ternary_mat *w, int64_t N) {
    bv_k_ternary_gemm_fwd_with(bv_ternary_kernel_active(), out, x, w, N);
}

void bv_k_ternary_linear_fwd(float *y, const int8_t *x, const float *s_x, const bv_ternary_mat *w,
                             const float *bias, int64_t N) {
    bv_k_ternary_linear_fwd_with(bv_ternary_kernel_active(), y, x, s_x, w, bias, N);
}

/* ---- references ---- */

void bv_k_ternary_gemm_fwd_ref(int32_t *out, const int8_t *x, const int8_t *codes, int64_t N, int64_t C,
                               int64_t OC) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            int32_t acc = 0;
            for (int64_t c = 0; c < C; c++) acc += (int32_t)x[n * C + c] * codes[o * C + c];
            out[n * OC + o] = acc;
        }
}

void bv_k_ternary_linear_fwd_ref(double *y, const int8_t *x, const float *s_x, const int8_t *codes, float s_w,
                                 const float *bias, int64_t N, int64_t C, int64_t OC) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double acc = bias ? bias[o] : 0.0;
            for (int64_t c = 0; c < C; c++)
                acc += ((double)x[n * C + c] / s_x[n]) * ((double)codes[o * C + c] / s_w);
            y[n * OC + o] = acc;
        }
}

