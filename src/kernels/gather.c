#include "src/kernels/gather.h"

#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "src/common.h"

/* Work (elements moved) above which the fast kernels go parallel. */
#define PAR_MIN 16384
/* Scatter-adds over rows at least this long use row ownership (see bv_k_index_select_bwd). */
#define ROW_OWNER_MIN 16

/* e.g. "embedding: id 7 at position 2 is out of range [0, V = 5)" */
static void check_indices(const char *op, const char *noun, const int64_t *idx, int64_t m, int64_t n,
                          const char *size_name) {
    for (int64_t i = 0; i < m; i++)
        BV_ASSERT(idx[i] >= 0 && idx[i] < n, "%s: %s %lld at position %lld is out of range [0, %s = %lld)", op, noun,
                  (long long)idx[i], (long long)i, size_name, (long long)n);
}

/* ---- index_select (embedding is index_select of the rows of the table) ---- */

void bv_k_index_select_fwd(float *out, const float *x, const int64_t *idx, int64_t outer, int64_t n, int64_t inner,
                           int64_t m) {
    check_indices("index_select", "index", idx, m, n, "size of the dim");
    int64_t rows = outer * m;
#pragma omp parallel for schedule(static) if (rows * inner > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t o = r / m, i = r % m;
        memcpy(out + r * inner, x + (o * n + idx[i]) * inner, (size_t)inner * sizeof(float));
    }
}

void bv_k_index_select_bwd(float *dx, const float *dout, const int64_t *idx, int64_t outer, int64_t n,
                           int64_t inner, int64_t m) {
    if (inner < ROW_OWNER_MIN) {
        /* short rows (e.g. selecting along the last dim): the outer slices are disjoint */
#pragma omp parallel for schedule(static) if (outer * m * inner > PAR_MIN)
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < m; i++) {
                float *d = dx + (o * n + idx[i]) * inner;
                const float *g = dout + (o * m + i) * inner;
                for (int64_t c = 0; c < inner; c++) d[c] += g[c];
            }
        return;
    }
    /* Row ownership: gradient row r = o*n + idx[i] belongs to thread r % T. Every thread scans all
     * indices in order and adds only the rows it owns, whole rows at a time (contiguous, so
     * streaming). Writes are disjoint, and each row receives its contributions in index order
     * whatever T is, so the result does not depend on the thread count. */
#pragma omp parallel if (outer * m * inner > PAR_MIN)
    {
        int64_t T = 1, tid = 0;
#ifdef _OPENMP
        T = omp_get_num_threads(), tid = omp_get_thread_num();
#endif
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < m; i++) {
                int64_t row = o * n + idx[i];
                if (row % T != tid) continue;
                float *d = dx + row * inner;
                const float *g = dout + (o * m + i) * inner;
                for (int64_t c = 0; c < inner; c++) d[c] += g[c];
            }
    }
}

void bv_k_index_select_fwd_ref(double *out, const double *x, const int64_t *idx, int64_t outer, int64_t n,
                               int64_t inner, int64_t m) {
    check_indices("index_select", "index", idx, m, n, "size of the dim");
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = 0; c < inner; c++) out[(o * m + i) * inner + c] = x[(o * n + idx[i]) * inner + c];
}

void bv_k_index_select_bwd_ref(double *dx, const double *dout, const int64_t *idx, int64_t outer, int64_t n,
                               int64_t inner, int64_t m) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t c = 0; c < inner; c++) dx[(o * n + idx[i]) * inner + c] += dout[(o * m + i) * inner + c];
}

void bv_k_embedding_fwd(float *out, const int64_t *ids, const float *table, int64_t N, int64_t V, int64_t D) {
    check_indices("embedding", "id", ids, N, V, "V");
#pragma omp parallel for schedule(static) if (N * D > PAR_MIN)
    for (int64_t n = 0; n < N; n++) memcpy(out + n * D, table + ids[n] * D, (size_t)D * sizeof(float));
}

void bv_k_embedding_fwd_bf16(float *out, const int64_t *ids, const uint16_t *table, int64_t N, int64_t V, int64_t D) {
    check_indices("embedding", "id", ids, N, V, "V");
#pragma omp parallel for schedule(static) if (N * D > PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        const uint16_t *row = table + ids[n] * D;
        float *o = out + n * D;
        for (int64_t d = 0; d < D; d++) {
            uint32_t u = (uint32_t)row[d] << 16; /* bf16 is the top half of an fp32: exact */
            memcpy(o + d, &u, sizeof u);
        }
    }
}

void bv_k_embedding_bwd(float *dtable, const float *dout, const int64_t *ids, int64_t N, int64_t V, int64_t D) {
    bv_k_index_select_bwd(dtable, dout, ids, 1, V, D, N);
}

void bv_k_embedding_fwd_ref(double *out, const int64_t *ids, const double *table, int64_t N, int64_t V, int64_t D) {
    check_indices("embedding", "id", ids, N, V, "V");
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) out[n * D + d] = table[ids[n] * D + d];
}

void bv_k_embedding_bwd_ref(double *dtable, const double *dout, const int64_t *ids, int64_t N, int64_t V,
                            int64_t D) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t d = 0; d < D; d++) dtable[ids[n] * D + d] += dout[n * D + d];
}

/* ---- masked_scatter ---- */

int64_t bv_k_masked_scatter_map(int64_t *rowmap, const uint8_t *mask, int64_t R) {
    int64_t k = 0;
    for (int64_t r = 0; r < R; r++) rowmap[r] = mask[r] ? k++ : -1;
    return k;
}

void bv_k_masked_scatter_fwd(float *out, const float *x, const float *src, const int64_t *rowmap, int64_t R,
                             int64_t D) {
#pragma omp parallel for schedule(static) if (R * D > PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        const float *s = rowmap[r] >= 0 ? src + rowmap[r] * D : x + r * D;
        memcpy(out + r * D, s, (size_t)D * sizeof(float));
    }
}

void bv_k_masked_scatter_bwd(float *dx, float *dsrc, const float *dout, const int64_t *rowmap, int64_t R,
                             int64_t D) {
#pragma omp parallel for schedule(static) if (R * D > PAR_MIN)
    for (int64_t r = 0; r < R; r++) {
        float *d = rowmap[r] >= 0 ? (dsrc ? dsrc + rowmap[r] * D : NULL) : (dx ? dx + r * D : NULL);
        if (!d) continue;
        const float *g = dout + r * D;
        for (int64_t c = 0; c < D; c++) d[c] += g[c];
    }
}

void bv_k_masked_scatter_fwd_ref(double *out, const double *x, const double *src, const int64_t *rowmap,
                                 int64_t R, int64_t D) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < D; c++) out[r * D + c] = rowmap[r] >= 0 ? src[rowmap[r] * D + c] : x[r * D + c];
}

void bv_k_masked_scatter_bwd_ref(double *dx, double *dsrc, const double *dout, const int64_t *rowmap, int64_t R,
                                 int64_t D) {
    for (int64_t r = 0; r < R; r++)
        for (int64_t c = 0; c < D; c++) {
            if (rowmap[r] >= 0) {
                if (dsrc) dsrc[rowmap[r] * D + c] += dout[r * D + c];
            } else if (dx) {
                dx[r * D + c] += dout[r * D + c];
            }
        }
}

/* ---- concat / narrow ---- */

static int64_t sum_sizes(const int64_t *sizes, int n) {
    int64_t t = 0;
    for (int i = 0; i < n; i++) t += sizes[i];
    return t;
}

void bv_k_concat_fwd(float *out, const float *const *xs, const int64_t *sizes, int n, int64_t outer,
                     int64_t inner) {
    int64_t total = sum_sizes(sizes, n);
#pragma omp parallel for schedule(static) if (outer * total * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            memcpy(out + (o * total + off) * inner, xs[i] + o * sizes[i] * inner,
                   (size_t)(sizes[i] * inner) * sizeof(float));
            off += sizes[i];
        }
    }
}

void bv_k_concat_bwd(float *const *dxs, const float *dout, const int64_t *sizes, int n, int64_t outer,
                     int64_t inner) {
    int64_t total = sum_sizes(sizes, n);
#pragma omp parallel for schedule(static) if (outer * total * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            if (dxs[i]) {
                float *d = dxs[i] + o * sizes[i] * inner;
                const float *g = dout + (o * total + off) * inner;
                for (int64_t j = 0; j < sizes[i] * inner; j++) d[j] += g[j];
            }
            off += sizes[i];
        }
    }
}

void bv_k_concat_fwd_ref(double *out, const double *const *xs, const int64_t *sizes, int n, int64_t outer,
                         int64_t inner) {
    int64_t total = sum_sizes(sizes, n);
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            for (int64_t j = 0; j < sizes[i]; j++)
                for (int64_t c = 0; c < inner; c++)
                    out[(o * total + off + j) * inner + c] = xs[i][(o * sizes[i] + j) * inner + c];
            off += sizes[i];
        }
    }
}

void bv_k_concat_bwd_ref(double *const *dxs, const double *dout, const int64_t *sizes, int n, int64_t outer,
                         int64_t inner) {
    int64_t total = sum_sizes(sizes, n);
    for (int64_t o = 0; o < outer; o++) {
        int64_t off = 0;
        for (int i = 0; i < n; i++) {
            if (dxs[i])
                for (int64_t j = 0; j < sizes[i]; j++)
                    for (int64_t c = 0; c < inner; c++)
                        dxs[i][(o * sizes[i] + j) * inner + c] += dout[(o * total + off + j) * inner + c];
            off += sizes[i];
        }
    }
}

void bv_k_narrow_fwd(float *out, const float *x, int64_t outer, int64_t n, int64_t inner, int64_t start,
                     int64_t len) {
    BV_ASSERT(start >= 0 && len >= 0 && start + len <= n, "narrow: [%lld, %lld) outside a dim of size %lld",
              (long long)start, (long long)(start + len), (long long)n);
#pragma omp parallel for schedule(static) if (outer * len * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++)
        memcpy(out + o * len * inner, x + (o * n + start) * inner, (size_t)(len * inner) * sizeof(float));
}

void bv_k_narrow_bwd(float *dx, const float *dout, int64_t outer, int64_t n, int64_t inner, int64_t start,
                     int64_t len) {
#pragma omp parallel for schedule(static) if (outer * len * inner > PAR_MIN)
    for (int64_t o = 0; o < outer; o++) {
        float *d = dx + (o * n + start) * inner;
        const float *g = dout + o * len * inner;
        for (int64_t j = 0; j < len * inner; j++) d[j] += g[j];
    }
}

void bv_k_narrow_fwd_ref(double *out, const double *x, int64_t outer, int64_t n, int64_t inner, int64_t start,
                         int64_t len) {
    BV_ASSERT(start >= 0 && len >= 0 && start + len <= n, "narrow: [%lld, %lld) outside a dim of size %lld",
              (long long)start, (long long)(start + len), (long long)n);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++)
            for (int64_t c = 0; c < inner; c++)
                out[(o * len + j) * inner + c] = x[(o * n + start + j) * inner + c];
}

void bv_k_narrow_bwd_ref(double *dx, const double *dout, int64_t outer, int64_t n, int64_t inner, int64_t start,
                         int64_t len) {
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < len; j++)
            for (int64_t c = 0; c < inner; c++)
                dx[(o * n + start + j) * inner + c] += dout[(o * len + j) * inner + c];
}

/* ---- patchify ---- */

static void check_patch(int64_t H, int64_t W, int64_t p) {
    BV_ASSERT(p >= 1 && H % p == 0 && W % p == 0, "patchify: image %lldx%lld is not a multiple of patch size %lld",
              (long long)H, (long long)W, (long long)p);
}

void bv_k_patchify_fwd(float *out, const float *img, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) {
    check_patch(H, W, p);
    int64_t nh = H / p, nw = W / p, K = C * p * p, np = B * nh * nw;
#pragma omp parallel for schedule(static) if (np * K > PAR_MIN)
    for (int64_t t = 0; t < np; t++) {
        int64_t b = t / (nh * nw), py = (t / nw) % nh, px = t % nw;
        float *o = out + t * K;
        for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < p; ky++)
                memcpy(o + (c * p + ky) * p, img + ((b * C + c) * H + py * p + ky) * W + px * p,
                       (size_t)p * sizeof(float));
    }
}

void bv_k_patchify_bwd(float *dimg, const float *dout, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) {
    check_patch(H, W, p);
    int64_t nh = H / p, nw = W / p, K = C * p * p, np = B * nh * nw;
    /* each patch covers its own pixels (kernel = stride): tasks write disjoint parts of dimg */
#pragma omp parallel for schedule(static) if (np * K > PAR_MIN)
    for (int64_t t = 0; t < np; t++) {
        int64_t b = t / (nh * nw), py = (t / nw) % nh, px = t % nw;
        const float *g = dout + t * K;
        for (int64_t c = 0; c < C; c++)
            for (int64_t ky = 0; ky < p; ky++) {
                float *d = dimg + ((b * C + c) * H + py * p + ky) * W + px * p;
                const float *s = g + (c * p + ky) * p;
                for (int64_t kx = 0; kx < p; kx++) d[kx] += s[kx];
            }
    }
}

void bv_k_patchify_fwd_ref(double *out, const double *img, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p) {
    check_patch(H, W, p);
    int64_t nh = H / p, nw = W / p, K = C * p * p;
    for (int64_t b = 0; b < B; b++)
        for (int64_t py = 0; py < nh; py++)
            for (int64_t px = 0; px < nw; px++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t ky = 0; ky < p; ky++)
                        for (int64_t kx = 0; kx < p; kx++)
                            out[((b * nh + py) * nw + px) * K + (c * p + ky) * p + kx] =
                                img[((b * C + c) * H + py * p + ky) * W + px * p + kx];
}

void bv_k_patchify_bwd_ref(double *dimg, const double *dout, int64_t B, int64_t C, int64_t H, int64_t W,
                           int64_t p) {
    check_patch(H, W, p);
    int64_t nh = H / p, nw = W / p, K = C * p * p;
    for (int64_t b = 0; b < B; b++)
        for (int64_t py = 0; py < nh; py++)
            for (int64_t px = 0; px < nw; px++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t ky = 0; ky < p; ky++)
                        for (int64_t kx = 0; kx < p; kx++)
                            dimg[((b * C + c) * H + py * p + ky) * W + px * p + kx] +=
                                dout[((b * nh + py) * nw + px) * K + (c * p + ky) * p + kx];
}

/* ---- permute ---- */

/* Permuted shape `os` and, for each dim of the output, the stride of the source dim it reads. */
static int64_t permute_plan(int ndim, const int64_t *shape, const int *perm, int64_t *os, int64_t *st) {
    BV_ASSERT(ndim >= 0 && ndim <= 5, "permute: rank %d outside 0..5", ndim);
    int64_t sstr[5], s = 1;
    int seen[5] = {0};
    for (int i = ndim - 1; i >= 0; i--) {
        sstr[i] = s;
        s *= shape[i];
    }
    for (int i = 0; i < ndim; i++) {
        BV_ASSERT(perm[i] >= 0 && perm[i] < ndim && !seen[perm[i]], "permute: entry %d (=%d) is not a permutation",
                  i, perm[i]);
        seen[perm[i]] = 1;
        os[i] = shape[perm[i]];
        st[i] = sstr[perm[i]];
    }
    return s; /* numel */
}

/* inv = inverse of perm, shape_out = the permuted shape (perm validated by permute_plan). */
static void inverse_perm(int ndim, const int *perm, int64_t *shape_out, const int64_t *shape, int *inv) {
    int64_t st[5];
    permute_plan(ndim, shape, perm, shape_out, st);
    for (int i = 0; i < 5; i++) inv[i] = i;
    for (int i = 0; i < ndim; i++) inv[perm[i]] = i;
}

/* dst (permuted shape) = or += src (shape) read through perm. Rows of the output (all dims but
 * the last) are the parallel unit: disjoint writes. */
static void permute_f32(float *dst, const float *src, int ndim, const int64_t *shape, const int *perm, int acc) {
    int64_t os[5], st[5];
    int64_t numel = permute_plan(ndim, shape, perm, os, st);
    if (numel == 0) return;
    if (ndim == 0) {
        dst[0] = acc ? dst[0] + src[0] : src[0];
        return;
    }
    int64_t L = os[ndim - 1], ls = st[ndim - 1], rows = numel / L;
#pragma omp parallel for schedule(static) if (numel > PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        int64_t off = 0, rem = r;
        for (int k = ndim - 2; k >= 0; k--) {
            off += (rem % os[k]) * st[k];
            rem /= os[k];
        }
        float *d = dst + r * L;
        const float *s = src + off;
        if (ls == 1) {
            if (acc)
                for (int64_t j = 0; j < L; j++) d[j] += s[j];
            else
                memcpy(d, s, (size_t)L * sizeof(float));
        } else {
            if (acc)
                for (int64_t j = 0; j < L; j++) d[j] += s[j * ls];
            else
                for (int64_t j = 0; j < L; j++) d[j] = s[j * ls];
        }
    }
}

void bv_k_permute_fwd(float *out, const float *x, int ndim, const int64_t *shape, const int *perm) {
    permute_f32(out, x, ndim, shape, perm, 0);
}

void bv_k_permute_bwd(float *dx, const float *dout, int ndim, const int64_t *shape, const int *perm) {
    int inv[5];
    int64_t pshape[5] = {0};
    inverse_perm(ndim, perm, pshape, shape, inv);
    permute_f32(dx, dout, ndim, pshape, inv, 1);
}

/* Reference: walk the input in row-major order and place each element at its output index. */
static void permute_f64(double *dst, const double *src, int ndim, const int64_t *shape, const int *perm, int acc) {
    int64_t os[5], st[5];
    int64_t numel = permute_plan(ndim, shape, perm, os, st);
    int64_t ostr[5], s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        ostr[i] = s;
        s *= os[i];
    }
    int inv[5];
    for (int i = 0; i < ndim; i++) inv[perm[i]] = i;
    for (int64_t j = 0; j < numel; j++) {
        /* multi-index of input element j; input dim k is output dim inv[k] */
        int64_t rem = j, o = 0;
        for (int k = ndim - 1; k >= 0; k--) {
            o += (rem % shape[k]) * ostr[inv[k]];
            rem /= shape[k];
        }
        dst[o] = acc ? dst[o] + src[j] : src[j];
    }
}

void bv_k_permute_fwd_ref(double *out, const double *x, int ndim, const int64_t *shape, const int *perm) {
    permute_f64(out, x, ndim, shape, perm, 0);
}

void bv_k_permute_bwd_ref(double *dx, const double *dout, int ndim, const int64_t *shape, const int *perm) {
    int inv[5];
    int64_t pshape[5] = {0};
    inverse_perm(ndim, perm, pshape, shape, inv);
    permute_f64(dx, dout, ndim, pshape, inv, 1);
}

/* ---- reshape ---- */

void bv_k_reshape_bwd(float *dx, const float *dout, int64_t n) {
#pragma omp parallel for schedule(static) if (n > PAR_MIN)
    for (int64_t i = 0; i < n; i++) dx[i] += dout[i];
}

void bv_k_reshape_bwd_ref(double *dx, const double *dout, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] += dout[i];
}
