/* kernels/gather.h - indexing and shape kernels: embedding lookup, index_select, masked_scatter,
 * concat/narrow block copies, patchify (Conv2d with kernel = stride as a GEMM) and permuted copies.
 *
 * For: the autograd ops of autograd/ops_tensor.c (token embeddings, SigLIP patch embedding,
 * splicing image/proprio features into the token sequence, attention head layouts).
 * Owns: nothing; every buffer comes from the caller.
 * Must not: allocate, or use atomics. Every fast kernel writes disjoint outputs per OpenMP task,
 * and every scatter-add visits the contributions to one output element in a fixed order, so the
 * results are bit-identical for any thread count.
 *
 * Fast versions are fp32 with OpenMP; _ref versions are plain single-threaded double loops (the
 * F64 autograd path and the reference of the tests). Backward kernels accumulate (+=).
 * Index arguments (ids, idx) are validated in the forward kernels with BV_ASSERT (the message
 * names the offending index and the valid range); backward kernels trust them.
 */
#ifndef BV_KERNELS_GATHER_H
#define BV_KERNELS_GATHER_H

#include <stdint.h>

/* ---- embedding ---- */
/* ids (N) in [0, V), table (V, D) -> out (N, D) = table[ids[n]] */
void bv_k_embedding_fwd(float *out, const int64_t *ids, const float *table, int64_t N, int64_t V, int64_t D);
/* dtable (V, D) += sum over n with ids[n] == v of dout[n] (repeats add up) */
/* the same from a bf16 table (V, D), converted exactly to fp32: a frozen table kept in its file's
 * dtype (the runtime's embed_tokens) */
void bv_k_embedding_fwd_bf16(float *out, const int64_t *ids, const uint16_t *table, int64_t N, int64_t V, int64_t D);
void bv_k_embedding_bwd(float *dtable, const float *dout, const int64_t *ids, int64_t N, int64_t V, int64_t D);
void bv_k_embedding_fwd_ref(double *out, const int64_t *ids, const double *table, int64_t N, int64_t V, int64_t D);
void bv_k_embedding_bwd_ref(double *dtable, const double *dout, const int64_t *ids, int64_t N, int64_t V,
                            int64_t D);

/* ---- index_select along the middle dim of a (outer, n, inner) view ---- */
/* x (outer, n, inner), idx (m) in [0, n) -> out (outer, m, inner) = x[:, idx[i], :] */
void bv_k_index_select_fwd(float *out, const float *x, const int64_t *idx, int64_t outer, int64_t n, int64_t inner,
                           int64_t m);
/* dx (outer, n, inner) += scatter of dout (outer, m, inner) at idx (repeats add up) */
void bv_k_index_select_bwd(float *dx, const float *dout, const int64_t *idx, int64_t outer, int64_t n,
                           int64_t inner, int64_t m);
void bv_k_index_select_fwd_ref(double *out, const double *x, const int64_t *idx, int64_t outer, int64_t n,
                               int64_t inner, int64_t m);
void bv_k_index_select_bwd_ref(double *dx, const double *dout, const int64_t *idx, int64_t outer, int64_t n,
                               int64_t inner, int64_t m);

/* ---- masked_scatter on rows ---- */
/* mask (R) (nonzero = selected) -> rowmap (R): for a selected row, the index k of the src row that
 * replaces it (selected rows counted in order); -1 otherwise. Returns the number of selected rows. */
int64_t bv_k_masked_scatter_map(int64_t *rowmap, const uint8_t *mask, int64_t R);
/* x (R, D), src (N, D), rowmap (R) -> out (R, D) = rowmap[r] >= 0 ? src[rowmap[r]] : x[r] */
void bv_k_masked_scatter_fwd(float *out, const float *x, const float *src, const int64_t *rowmap, int64_t R,
                             int64_t D);
/* dx (R, D) += dout on unselected rows; dsrc (N, D) += dout of the row each src row went to.
 * Either gradient may be NULL. */
void bv_k_masked_scatter_bwd(float *dx, float *dsrc, const float *dout, const int64_t *rowmap, int64_t R,
                             int64_t D);
void bv_k_masked_scatter_fwd_ref(double *out, const double *x, const double *src, const int64_t *rowmap,
                                 int64_t R, int64_t D);
void bv_k_masked_scatter_bwd_ref(double *dx, double *dsrc, const double *dout, const int64_t *rowmap, int64_t R,
                                 int64_t D);

/* ---- concat / narrow along the middle dim of a (outer, n, inner) view ---- */
/* xs[i] (outer, sizes[i], inner), i < n -> out (outer, sum sizes, inner) */
void bv_k_concat_fwd(float *out, const float *const *xs, const int64_t *sizes, int n, int64_t outer,
                     int64_t inner);
/* dxs[i] (outer, sizes[i], inner) += the matching slice of dout; NULL entries are skipped */
void bv_k_concat_bwd(float *const *dxs, const float *dout, const int64_t *sizes, int n, int64_t outer,
                     int64_t inner);
void bv_k_concat_fwd_ref(double *out, const double *const *xs, const int64_t *sizes, int n, int64_t outer,
                         int64_t inner);
void bv_k_concat_bwd_ref(double *const *dxs, const double *dout, const int64_t *sizes, int n, int64_t outer,
                         int64_t inner);
/* x (outer, n, inner) -> out (outer, len, inner) = x[:, start:start+len, :] */
void bv_k_narrow_fwd(float *out, const float *x, int64_t outer, int64_t n, int64_t inner, int64_t start,
                     int64_t len);
/* dx[:, start:start+len, :] += dout (outer, len, inner) */
void bv_k_narrow_bwd(float *dx, const float *dout, int64_t outer, int64_t n, int64_t inner, int64_t start,
                     int64_t len);
void bv_k_narrow_fwd_ref(double *out, const double *x, int64_t outer, int64_t n, int64_t inner, int64_t start,
                         int64_t len);
void bv_k_narrow_bwd_ref(double *dx, const double *dout, int64_t outer, int64_t n, int64_t inner, int64_t start,
                         int64_t len);

/* ---- patchify ---- */
/* img (B, C, H, W), H % p == W % p == 0 -> out (B, (H/p)*(W/p), C*p*p):
 * out[b, py*(W/p) + px, (c*p + ky)*p + kx] = img[b, c, py*p + ky, px*p + kx]
 * (patches row-major, each flattened like a Conv2d weight (OC, C, p, p)). */
void bv_k_patchify_fwd(float *out, const float *img, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);
/* dimg (B, C, H, W) += the inverse rearrangement of dout (patches do not overlap) */
void bv_k_patchify_bwd(float *dimg, const float *dout, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);
void bv_k_patchify_fwd_ref(double *out, const double *img, int64_t B, int64_t C, int64_t H, int64_t W, int64_t p);
void bv_k_patchify_bwd_ref(double *dimg, const double *dout, int64_t B, int64_t C, int64_t H, int64_t W,
                           int64_t p);

/* ---- permuted copy ---- */
/* x (shape[0], ..., shape[ndim-1]) contiguous -> out (shape[perm[0]], ..., shape[perm[ndim-1]])
 * = x.permute(perm).contiguous(); ndim <= 5 */
void bv_k_permute_fwd(float *out, const float *x, int ndim, const int64_t *shape, const int *perm);
/* dx (shape) += dout.permute(inverse of perm), dout having the permuted shape */
void bv_k_permute_bwd(float *dx, const float *dout, int ndim, const int64_t *shape, const int *perm);
void bv_k_permute_fwd_ref(double *out, const double *x, int ndim, const int64_t *shape, const int *perm);
void bv_k_permute_bwd_ref(double *dx, const double *dout, int ndim, const int64_t *shape, const int *perm);

/* ---- reshape backward (the forward shares the buffer) ---- */
/* dx (n) += dout (n) */
void bv_k_reshape_bwd(float *dx, const float *dout, int64_t n);
void bv_k_reshape_bwd_ref(double *dx, const double *dout, int64_t n);

#endif
