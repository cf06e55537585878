/* Tests of the indexing and shape kernels (src/kernels/gather.c) and ops (autograd/ops_tensor.c):
 *  - fast fp32 vs double reference, forward and backward, on odd sizes;
 *  - 1 vs 2 threads on sizes above the kernels' parallel threshold (bit-identical by design);
 *  - finite-difference gradient checks of every op (embedding and index_select with repeats);
 *  - programmer errors (out-of-range ids, mask/src mismatch, bad patch size...) abort with a
 *    message naming the values (checked in a forked child);
 *  - PyTorch parity from tests/fixtures/tensorops.safetensors (tests/gen/gen_tensorops.py),
 *    including Conv2d(kernel=stride=p) == linear(patchify(img), w.view(OC, -1)) + b, the SigLIP
 *    patch embedding. */
#include <omp.h>
#include <string.h>

#include "src/kernels/gather.h"
#include "tests/util/testutil.h"

/* exact comparison that still reports the first/worst mismatch */
#define EXACT 1e-300, 0.0

/* ================= fast vs reference ================= */

static void test_embedding_fast_vs_ref(void **state) {
    bv_rng r = {11};
    int64_t N = 37, V = 13, D = 71; /* N > V: ids repeat */
    int64_t *ids = bv_test_rand_ids(&r, N, V);
    ids[5] = ids[17] = ids[30] = 4;
    float *tab = bv_test_rand_f32(&r, V * D, -1, 1), *out = bv_test_zeros_f32(N * D),
          *dout = bv_test_rand_f32(&r, N * D, -1, 1);
    float *dtab = bv_test_rand_f32(&r, V * D, -1, 1); /* non-zero start: backward must accumulate */
    double *tabd = bv_test_to_f64(tab, V * D), *outd = bv_test_zeros_f64(N * D), *doutd = bv_test_to_f64(dout, N * D),
           *dtabd = bv_test_to_f64(dtab, V * D);
    bv_k_embedding_fwd(out, ids, tab, N, V, D);
    bv_k_embedding_fwd_ref(outd, ids, tabd, N, V, D);
    bv_check_close_f32_f64("embedding fwd", out, outd, N * D, EXACT);
    bv_k_embedding_bwd(dtab, dout, ids, N, V, D);
    bv_k_embedding_bwd_ref(dtabd, doutd, ids, N, V, D);
    bv_check_close_f32_f64("embedding bwd", dtab, dtabd, V * D, 1e-6, 1e-6);
    free(ids), free(tab), free(out), free(dout), free(dtab), free(tabd), free(outd), free(doutd), free(dtabd);
}

static void test_index_select_fast_vs_ref(void **state) {
    bv_rng r = {12};
    int64_t shapes[3][3] = {{5, 9, 67}, {1, 9, 67}, {5, 9, 1}}; /* middle, first and last dim */
    for (int s = 0; s < 3; s++) {
        int64_t outer = shapes[s][0], n = shapes[s][1], inner = shapes[s][2], m = 13;
        int64_t *idx = bv_test_rand_ids(&r, m, n);
        idx[2] = idx[9] = n - 1;
        float *x = bv_test_rand_f32(&r, outer * n * inner, -1, 1), *out = bv_test_zeros_f32(outer * m * inner);
        float *dout = bv_test_rand_f32(&r, outer * m * inner, -1, 1),
              *dx = bv_test_rand_f32(&r, outer * n * inner, -1, 1);
        double *xd = bv_test_to_f64(x, outer * n * inner), *outd = bv_test_zeros_f64(outer * m * inner);
        double *doutd = bv_test_to_f64(dout, outer * m * inner), *dxd = bv_test_to_f64(dx, outer * n * inner);
        bv_k_index_select_fwd(out, x, idx, outer, n, inner, m);
        bv_k_index_select_fwd_ref(outd, xd, idx, outer, n, inner, m);
        bv_check_close_f32_f64("index_select fwd", out, outd, outer * m * inner, EXACT);
        bv_k_index_select_bwd(dx, dout, idx, outer, n, inner, m);
        bv_k_index_select_bwd_ref(dxd, doutd, idx, outer, n, inner, m);
        bv_check_close_f32_f64("index_select bwd", dx, dxd, outer * n * inner, 1e-6, 1e-6);
        free(idx), free(x), free(out), free(dout), free(dx), free(xd), free(outd), free(doutd), free(dxd);
    }
}

static void test_masked_scatter_fast_vs_ref(void **state) {
    bv_rng r = {13};
    int64_t R = 33, D = 37;
    uint8_t mask[33];
    for (int i = 0; i < R; i++) mask[i] = bv_rng_uniform(&r) < 0.4;
    mask[0] = 1, mask[R - 1] = 1, mask[1] = 0;
    int64_t rowmap[33];
    int64_t N = bv_k_masked_scatter_map(rowmap, mask, R);
    int64_t k = 0;
    for (int i = 0; i < R; i++) assert_int_equal(rowmap[i], mask[i] ? k++ : -1);
    assert_int_equal(N, k);
    float *x = bv_test_rand_f32(&r, R * D, -1, 1), *src = bv_test_rand_f32(&r, N * D, -1, 1),
          *out = bv_test_zeros_f32(R * D), *dout = bv_test_rand_f32(&r, R * D, -1, 1);
    double *xd = bv_test_to_f64(x, R * D), *srcd = bv_test_to_f64(src, N * D), *outd = bv_test_zeros_f64(R * D),
           *doutd = bv_test_to_f64(dout, R * D);
    bv_k_masked_scatter_fwd(out, x, src, rowmap, R, D);
    bv_k_masked_scatter_fwd_ref(outd, xd, srcd, rowmap, R, D);
    bv_check_close_f32_f64("masked_scatter fwd", out, outd, R * D, EXACT);
    for (int which = 0; which < 3; which++) { /* both grads, dx only, dsrc only */
        float *dx = bv_test_rand_f32(&r, R * D, -1, 1), *ds = bv_test_rand_f32(&r, N * D, -1, 1);
        double *dxd = bv_test_to_f64(dx, R * D), *dsd = bv_test_to_f64(ds, N * D);
        bv_k_masked_scatter_bwd(which == 2 ? NULL : dx, which == 1 ? NULL : ds, dout, rowmap, R, D);
        bv_k_masked_scatter_bwd_ref(which == 2 ? NULL : dxd, which == 1 ? NULL : dsd, doutd, rowmap, R, D);
        bv_check_close_f32_f64("masked_scatter dx", dx, dxd, R * D, 1e-6, 1e-6);
        bv_check_close_f32_f64("masked_scatter dsrc", ds, dsd, N * D, 1e-6, 1e-6);
        free(dx), free(ds), free(dxd), free(dsd);
    }
    free(x), free(src), free(out), free(dout), free(xd), free(srcd), free(outd), free(doutd);
}

static void test_concat_narrow_fast_vs_ref(void **state) {
    bv_rng r = {14};
    int64_t outer = 7, inner = 13, sizes[3] = {3, 1, 5}, total = 9;
    float *xs[3], *dxs[3];
    double *xsd[3], *dxsd[3];
    for (int i = 0; i < 3; i++) {
        int64_t ni = outer * sizes[i] * inner;
        xs[i] = bv_test_rand_f32(&r, ni, -1, 1), xsd[i] = bv_test_to_f64(xs[i], ni);
        dxs[i] = bv_test_rand_f32(&r, ni, -1, 1), dxsd[i] = bv_test_to_f64(dxs[i], ni);
    }
    float *out = bv_test_zeros_f32(outer * total * inner), *dout = bv_test_rand_f32(&r, outer * total * inner, -1, 1);
    double *outd = bv_test_zeros_f64(outer * total * inner), *doutd = bv_test_to_f64(dout, outer * total * inner);
    bv_k_concat_fwd(out, (const float *const *)xs, sizes, 3, outer, inner);
    bv_k_concat_fwd_ref(outd, (const double *const *)xsd, sizes, 3, outer, inner);
    bv_check_close_f32_f64("concat fwd", out, outd, outer * total * inner, EXACT);
    float *dxs_skip[3] = {dxs[0], NULL, dxs[2]};
    double *dxsd_skip[3] = {dxsd[0], NULL, dxsd[2]};
    bv_k_concat_bwd(dxs_skip, dout, sizes, 3, outer, inner);
    bv_k_concat_bwd_ref(dxsd_skip, doutd, sizes, 3, outer, inner);
    for (int i = 0; i < 3; i++)
        bv_check_close_f32_f64("concat bwd", dxs[i], dxsd[i], outer * sizes[i] * inner, 1e-6, 1e-6);
    /* narrow: out = x[:, 2:7] of the concatenated tensor, backward into a random gradient */
    int64_t start = 2, len = 5;
    float *nout = bv_test_zeros_f32(outer * len * inner), *ndout = bv_test_rand_f32(&r, outer * len * inner, -1, 1);
    double *noutd = bv_test_zeros_f64(outer * len * inner), *ndoutd = bv_test_to_f64(ndout, outer * len * inner);
    bv_k_narrow_fwd(nout, out, outer, total, inner, start, len);
    bv_k_narrow_fwd_ref(noutd, outd, outer, total, inner, start, len);
    bv_check_close_f32_f64("narrow fwd", nout, noutd, outer * len * inner, EXACT);
    bv_k_narrow_bwd(dout, ndout, outer, total, inner, start, len);
    bv_k_narrow_bwd_ref(doutd, ndoutd, outer, total, inner, start, len);
    bv_check_close_f32_f64("narrow bwd", dout, doutd, outer * total * inner, 1e-6, 1e-6);
    for (int i = 0; i < 3; i++) free(xs[i]), free(dxs[i]), free(xsd[i]), free(dxsd[i]);
    free(out), free(dout), free(outd), free(doutd), free(nout), free(ndout), free(noutd), free(ndoutd);
}

static void test_patchify_fast_vs_ref(void **state) {
    bv_rng r = {15};
    int64_t B = 2, C = 3, H = 15, W = 10, p = 5, np = B * (H / p) * (W / p), K = C * p * p;
    int64_t ni = B * C * H * W;
    float *img = bv_test_rand_f32(&r, ni, -1, 1), *out = bv_test_zeros_f32(np * K),
          *dout = bv_test_rand_f32(&r, np * K, -1, 1), *dimg = bv_test_rand_f32(&r, ni, -1, 1);
    double *imgd = bv_test_to_f64(img, ni), *outd = bv_test_zeros_f64(np * K), *doutd = bv_test_to_f64(dout, np * K),
           *dimgd = bv_test_to_f64(dimg, ni);
    bv_k_patchify_fwd(out, img, B, C, H, W, p);
    bv_k_patchify_fwd_ref(outd, imgd, B, C, H, W, p);
    bv_check_close_f32_f64("patchify fwd", out, outd, np * K, EXACT);
    /* spot check of the layout: patch (b=1, py=2, px=1), element (c=2, ky=3, kx=4) */
    int64_t t = (1 * 3 + 2) * 2 + 1, e = (2 * p + 3) * p + 4;
    assert_true(out[t * K + e] == img[((1 * C + 2) * H + 2 * p + 3) * W + 1 * p + 4]);
    bv_k_patchify_bwd(dimg, dout, B, C, H, W, p);
    bv_k_patchify_bwd_ref(dimgd, doutd, B, C, H, W, p);
    bv_check_close_f32_f64("patchify bwd", dimg, dimgd, ni, 1e-6, 1e-6);
    free(img), free(out), free(dout), free(dimg), free(imgd), free(outd), free(doutd), free(dimgd);
}

static bool next_perm(int *a, int n) { /* lexicographic next permutation */
    int i = n - 2;
    while (i >= 0 && a[i] >= a[i + 1]) i--;
    if (i < 0) return false;
    int j = n - 1;
    while (a[j] <= a[i]) j--;
    int t = a[i];
    a[i] = a[j], a[j] = t;
    for (int l = i + 1, h = n - 1; l < h; l++, h--) t = a[l], a[l] = a[h], a[h] = t;
    return true;
}

static void test_permute_fast_vs_ref(void **state) {
    bv_rng r = {16};
    int64_t shapes[5][5] = {{7}, {3, 5}, {2, 3, 5}, {3, 4, 5, 2}, {2, 3, 1, 4, 3}};
    for (int nd = 0; nd <= 5; nd++) {
        const int64_t *shape = nd ? shapes[nd - 1] : NULL;
        int64_t n = 1;
        for (int i = 0; i < nd; i++) n *= shape[i];
        float *x = bv_test_rand_f32(&r, n, -1, 1), *out = bv_test_zeros_f32(n), *dout = bv_test_rand_f32(&r, n, -1, 1);
        double *xd = bv_test_to_f64(x, n), *outd = bv_test_zeros_f64(n), *doutd = bv_test_to_f64(dout, n);
        int perm[5] = {0, 1, 2, 3, 4};
        do { /* every permutation of the rank */
            float *dx = bv_test_rand_f32(&r, n, -1, 1);
            double *dxd = bv_test_to_f64(dx, n);
            bv_k_permute_fwd(out, x, nd, shape, perm);
            bv_k_permute_fwd_ref(outd, xd, nd, shape, perm);
            bv_check_close_f32_f64("permute fwd", out, outd, n, EXACT);
            bv_k_permute_bwd(dx, dout, nd, shape, perm);
            bv_k_permute_bwd_ref(dxd, doutd, nd, shape, perm);
            bv_check_close_f32_f64("permute bwd", dx, dxd, n, 1e-6, 1e-6);
            free(dx), free(dxd);
        } while (next_perm(perm, nd));
        /* the reference against the strided view + contiguous copy of the tensor core */
        if (nd == 4) {
            int p4[4] = {2, 0, 3, 1};
            bv_tensor xt = bv_tensor_make(xd, BV_DTYPE_F64, 4, shape), v, c;
            assert_int_equal(bv_tensor_permute(&xt, p4, &v), BV_OK);
            c = bv_tensor_make(bv_test_zeros_f64(n), BV_DTYPE_F64, 4, v.shape);
            bv_tensor_copy_into(&c, &v);
            bv_k_permute_fwd_ref(outd, xd, 4, shape, p4);
            bv_check_close_f64("permute ref vs strided copy", outd, c.data, n, EXACT);
            free(c.data);
        }
        free(x), free(out), free(dout), free(xd), free(outd), free(doutd);
    }
}

static void test_reshape_bwd_fast_vs_ref(void **state) {
    bv_rng r = {17};
    int64_t n = 1001;
    float *dx = bv_test_rand_f32(&r, n, -1, 1), *dout = bv_test_rand_f32(&r, n, -1, 1);
    double *dxd = bv_test_to_f64(dx, n), *doutd = bv_test_to_f64(dout, n);
    bv_k_reshape_bwd(dx, dout, n);
    bv_k_reshape_bwd_ref(dxd, doutd, n);
    bv_check_close_f32_f64("reshape bwd", dx, dxd, n, 1e-7, 1e-7);
    free(dx), free(dout), free(dxd), free(doutd);
}

/* ================= 1 vs 2 threads ================= */

/* Run every fast kernel on sizes above the parallel threshold; res[k] receives one output buffer
 * per kernel output (forward and backward). */
#define N_OUTS 18
static void run_all_kernels(float **res, int64_t *len) {
    bv_rng r = {21};
    int o = 0;
    { /* embedding: heavy repeats (rows owned by threads) */
        int64_t N = 300, V = 40, D = 200;
        int64_t *ids = bv_test_rand_ids(&r, N, V);
        float *tab = bv_test_rand_f32(&r, V * D, -1, 1), *dout = bv_test_rand_f32(&r, N * D, -1, 1);
        res[o] = bv_test_zeros_f32(N * D), len[o] = N * D;
        bv_k_embedding_fwd(res[o++], ids, tab, N, V, D);
        res[o] = bv_test_zeros_f32(V * D), len[o] = V * D;
        bv_k_embedding_bwd(res[o++], dout, ids, N, V, D);
        free(ids), free(tab), free(dout);
    }
    /* index_select along the middle dim, then along a short last dim (the outer-parallel backward) */
    const int64_t isel[2][4] = {{6, 50, 130, 80}, {40, 30, 5, 100}}; /* outer, n, inner, m */
    for (int c = 0; c < 2; c++) {
        int64_t outer = isel[c][0], n = isel[c][1], inner = isel[c][2], m = isel[c][3];
        int64_t *idx = bv_test_rand_ids(&r, m, n);
        float *x = bv_test_rand_f32(&r, outer * n * inner, -1, 1),
              *dout = bv_test_rand_f32(&r, outer * m * inner, -1, 1);
        res[o] = bv_test_zeros_f32(outer * m * inner), len[o] = outer * m * inner;
        bv_k_index_select_fwd(res[o++], x, idx, outer, n, inner, m);
        res[o] = bv_test_zeros_f32(outer * n * inner), len[o] = outer * n * inner;
        bv_k_index_select_bwd(res[o++], dout, idx, outer, n, inner, m);
        free(idx), free(x), free(dout);
    }
    { /* masked_scatter */
        int64_t R = 400, D = 70, rowmap[400];
        uint8_t mask[400];
        for (int i = 0; i < R; i++) mask[i] = bv_rng_uniform(&r) < 0.5;
        int64_t N = bv_k_masked_scatter_map(rowmap, mask, R);
        float *x = bv_test_rand_f32(&r, R * D, -1, 1), *src = bv_test_rand_f32(&r, N * D, -1, 1),
              *dout = bv_test_rand_f32(&r, R * D, -1, 1);
        res[o] = bv_test_zeros_f32(R * D), len[o] = R * D;
        bv_k_masked_scatter_fwd(res[o++], x, src, rowmap, R, D);
        res[o] = bv_test_zeros_f32(R * D), len[o] = R * D;
        res[o + 1] = bv_test_zeros_f32(N * D), len[o + 1] = N * D;
        bv_k_masked_scatter_bwd(res[o], res[o + 1], dout, rowmap, R, D);
        o += 2;
        free(x), free(src), free(dout);
    }
    { /* concat + narrow */
        int64_t outer = 40, inner = 30, sizes[3] = {10, 3, 20}, total = 33;
        float *xs[3];
        for (int i = 0; i < 3; i++) xs[i] = bv_test_rand_f32(&r, outer * sizes[i] * inner, -1, 1);
        res[o] = bv_test_zeros_f32(outer * total * inner), len[o] = outer * total * inner;
        bv_k_concat_fwd(res[o], (const float *const *)xs, sizes, 3, outer, inner);
        float *cat = res[o++];
        float *dxs[3];
        for (int i = 0; i < 3; i++) {
            dxs[i] = res[o] = bv_test_zeros_f32(outer * sizes[i] * inner);
            len[o++] = outer * sizes[i] * inner;
        }
        bv_k_concat_bwd(dxs, cat, sizes, 3, outer, inner);
        res[o] = bv_test_zeros_f32(outer * 25 * inner), len[o] = outer * 25 * inner;
        bv_k_narrow_fwd(res[o], cat, outer, total, inner, 4, 25);
        bv_k_narrow_bwd(cat, res[o], outer, total, inner, 4, 25);
        o++;
        for (int i = 0; i < 3; i++) free(xs[i]);
    }
    { /* patchify (SigLIP patch size) */
        int64_t B = 3, C = 3, H = 56, W = 42, p = 14, ni = B * C * H * W;
        float *img = bv_test_rand_f32(&r, ni, -1, 1);
        res[o] = bv_test_zeros_f32(ni), len[o] = ni;
        bv_k_patchify_fwd(res[o], img, B, C, H, W, p);
        res[o + 1] = bv_test_zeros_f32(ni), len[o + 1] = ni;
        bv_k_patchify_bwd(res[o + 1], res[o], B, C, H, W, p);
        o += 2;
        free(img);
    }
    { /* permute with a strided inner loop, then its backward */
        int64_t shape[4] = {10, 11, 12, 13}, n = 17160;
        int perm[4] = {2, 0, 3, 1};
        float *x = bv_test_rand_f32(&r, n, -1, 1);
        res[o] = bv_test_zeros_f32(n), len[o] = n;
        bv_k_permute_fwd(res[o], x, 4, shape, perm);
        res[o + 1] = bv_test_rand_f32(&r, n, -1, 1), len[o + 1] = n;
        bv_k_permute_bwd(res[o + 1], res[o], 4, shape, perm);
        o += 2;
        free(x);
    }
    assert_int_equal(o, N_OUTS);
}

static void test_threads_agree(void **state) {
    float *res[2][N_OUTS];
    int64_t len[2][N_OUTS];
    for (int t = 0; t < 2; t++) {
        bv_set_num_threads(t + 1);
        assert_int_equal(omp_get_max_threads(), t + 1);
        run_all_kernels(res[t], len[t]);
    }
    bv_set_num_threads(2);
    for (int k = 0; k < N_OUTS; k++) {
        char what[64];
        snprintf(what, sizeof what, "gather kernel output %d, 1 vs 2 threads", k);
        assert_int_equal(len[0][k], len[1][k]);
        /* disjoint writes and a fixed summation order: identical, not merely close */
        bv_check_close_f32(what, res[1][k], res[0][k], len[0][k], EXACT);
        free(res[0][k]), free(res[1][k]);
    }
}

/* ================= gradient checks ================= */

static bv_var *fn_embedding(bv_graph *g, bv_var **in, void *u) { return bv_op_embedding(g, u, in[0]); }

static void test_embedding_gradcheck(void **state) {
    bv_rng r = {31};
    int64_t ts[2] = {5, 3};
    bv_tensor tab = bv_test_rand_f64(&r, 2, ts, -1, 1);
    int64_t ids[6] = {1, 4, 1, 0, 4, 4}; /* repeats; row 2 and 3 unused */
    bv_tensor idt = bv_tensor_make2(ids, BV_DTYPE_I64, 2, 3);
    bool check[1] = {true};
    bv_check_gradients("embedding", fn_embedding, &idt, 1, &tab, check, NULL);
    /* rank-0 ids: a single row */
    int64_t one = 3;
    bv_tensor id0 = bv_tensor_make(&one, BV_DTYPE_I64, 0, NULL);
    bv_check_gradients("embedding (scalar id)", fn_embedding, &id0, 1, &tab, check, NULL);
    free(tab.data);
}

static bv_var *fn_patchify(bv_graph *g, bv_var **in, void *u) { return bv_op_patchify(g, in[0], *(int *)u); }

/* Conv2d(kernel = stride = p) as linear(patchify(img), w.view(OC, -1), b) */
static bv_var *fn_patch_embed(bv_graph *g, bv_var **in, void *u) {
    int p = *(int *)u;
    int64_t ws[2] = {in[1]->val.shape[0], -1};
    return bv_op_linear(g, bv_op_patchify(g, in[0], p), bv_op_reshape(g, in[1], 2, ws), in[2]);
}

static void test_patchify_gradcheck(void **state) {
    bv_rng r = {32};
    int64_t is[4] = {2, 2, 6, 4}, ws[4] = {3, 2, 2, 2}, bs[1] = {3};
    bv_tensor in[3] = {bv_test_rand_f64(&r, 4, is, -1, 1), bv_test_rand_f64(&r, 4, ws, -1, 1),
                       bv_test_rand_f64(&r, 1, bs, -1, 1)};
    bool check[3] = {true, true, true};
    int p = 2;
    bv_check_gradients("patchify", fn_patchify, &p, 1, in, check, NULL);
    bv_check_gradients("patch embedding (patchify + linear)", fn_patch_embed, &p, 3, in, check, NULL);
    for (int i = 0; i < 3; i++) free(in[i].data);
}

static bv_var *fn_concat(bv_graph *g, bv_var **in, void *u) { return bv_op_concat(g, 3, in, *(int *)u); }
static bv_var *fn_concat_self(bv_graph *g, bv_var **in, void *u) {
    bv_var *xs[3] = {in[0], in[1], in[0]}; /* the same var twice: both slices flow back into it */
    return bv_op_concat(g, 3, xs, 1);
}

static void test_concat_gradcheck(void **state) {
    bv_rng r = {33};
    /* along dim 1 (and -2), then along dim 0 and the last dim */
    int64_t s[3][3][3] = {{{2, 3, 4}, {2, 1, 4}, {2, 2, 4}},
                          {{1, 3, 2}, {3, 3, 2}, {2, 3, 2}},
                          {{2, 3, 1}, {2, 3, 3}, {2, 3, 2}}};
    int dims[4] = {1, 0, -1, -2};
    int which[4] = {0, 1, 2, 0};
    for (int c = 0; c < 4; c++) {
        bv_tensor in[3];
        for (int i = 0; i < 3; i++) in[i] = bv_test_rand_f64(&r, 3, s[which[c]][i], -1, 1);
        bool check[3] = {true, true, true};
        char what[64];
        snprintf(what, sizeof what, "concat dim %d", dims[c]);
        bv_check_gradients(what, fn_concat, &dims[c], 3, in, check, NULL);
        bool check_mid[3] = {false, true, false}; /* constants around a differentiated input */
        bv_check_gradients(what, fn_concat, &dims[c], 3, in, check_mid, NULL);
        for (int i = 0; i < 3; i++) free(in[i].data);
    }
    int64_t a[3] = {2, 3, 4}, b[3] = {2, 1, 4};
    bv_tensor in[2] = {bv_test_rand_f64(&r, 3, a, -1, 1), bv_test_rand_f64(&r, 3, b, -1, 1)};
    bool check[2] = {true, true};
    bv_check_gradients("concat (x, y, x)", fn_concat_self, NULL, 2, in, check, NULL);
    free(in[0].data), free(in[1].data);
}

typedef struct {
    int dim;
    int64_t start, len;
} narrow_args;
static bv_var *fn_narrow(bv_graph *g, bv_var **in, void *u) {
    narrow_args *a = u;
    return bv_op_narrow(g, in[0], a->dim, a->start, a->len);
}
/* split = several narrows, recombined with different weights through a concat */
static bv_var *fn_split(bv_graph *g, bv_var **in, void *u) {
    bv_var *parts[3] = {bv_op_narrow(g, in[0], 1, 0, 2), bv_op_narrow(g, in[0], 1, 2, 1),
                        bv_op_narrow(g, in[0], 1, 3, 2)};
    bv_var *sw[3] = {parts[2], parts[0], parts[1]};
    return bv_op_concat(g, 3, sw, 1);
}

static void test_narrow_gradcheck(void **state) {
    bv_rng r = {34};
    int64_t s[3] = {3, 5, 2};
    bv_tensor x = bv_test_rand_f64(&r, 3, s, -1, 1);
    bool check[1] = {true};
    narrow_args cases[4] = {{1, 1, 3}, {0, 2, 1}, {-1, 0, 1}, {1, -2, 2}};
    for (int c = 0; c < 4; c++) bv_check_gradients("narrow", fn_narrow, &cases[c], 1, &x, check, NULL);
    bv_check_gradients("split + concat", fn_split, NULL, 1, &x, check, NULL);
    free(x.data);
}

typedef struct {
    int dim;
    bv_tensor idx;
} isel_args;
static bv_var *fn_index_select(bv_graph *g, bv_var **in, void *u) {
    isel_args *a = u;
    return bv_op_index_select(g, in[0], a->dim, &a->idx);
}

static void test_index_select_gradcheck(void **state) {
    bv_rng r = {35};
    int64_t s[3] = {3, 4, 2};
    bv_tensor x = bv_test_rand_f64(&r, 3, s, -1, 1);
    int64_t i1[5] = {2, 0, 2, 3, 2}, i0[4] = {1, 1, 0, 1}, i2[3] = {1, 1, 1};
    isel_args cases[4] = {{1, bv_tensor_make1(i1, BV_DTYPE_I64, 5)},
                          {0, bv_tensor_make1(i0, BV_DTYPE_I64, 4)},
                          {-1, bv_tensor_make1(i2, BV_DTYPE_I64, 3)},
                          {1, bv_tensor_make1(i1, BV_DTYPE_I64, 0)}};
    bool check[1] = {true};
    for (int c = 0; c < 3; c++) bv_check_gradients("index_select", fn_index_select, &cases[c], 1, &x, check, NULL);
    /* an empty selection gives an empty output and a zero gradient */
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    bv_var *xv = bv_var_wrap(&g, &x, true);
    bv_var *y = bv_op_index_select(&g, xv, 1, &cases[3].idx);
    assert_int_equal(bv_var_numel(y), 0);
    assert_int_equal(y->val.shape[1], 0);
    bv_graph_free(&g);
    free(x.data);
}

static bv_var *fn_masked_scatter(bv_graph *g, bv_var **in, void *u) {
    return bv_op_masked_scatter(g, in[0], u, in[1]);
}

static void test_masked_scatter_gradcheck(void **state) {
    bv_rng r = {36};
    uint8_t m[8] = {1, 0, 0, 1, 0, 1, 1, 0};
    bv_tensor mask = bv_tensor_make2(m, BV_DTYPE_U8, 2, 4);
    int64_t xs[3] = {2, 4, 3}, ss[2] = {4, 3};
    bv_tensor in[2] = {bv_test_rand_f64(&r, 3, xs, -1, 1), bv_test_rand_f64(&r, 2, ss, -1, 1)};
    bool both[2] = {true, true}, x_only[2] = {true, false}, src_only[2] = {false, true};
    bv_check_gradients("masked_scatter", fn_masked_scatter, &mask, 2, in, both, NULL);
    bv_check_gradients("masked_scatter (x only)", fn_masked_scatter, &mask, 2, in, x_only, NULL);
    bv_check_gradients("masked_scatter (src only)", fn_masked_scatter, &mask, 2, in, src_only, NULL);
    free(in[0].data), free(in[1].data);
}

static bv_var *fn_reshape(bv_graph *g, bv_var **in, void *u) {
    int64_t s[2] = {4, -1};
    return bv_op_reshape(g, in[0], 2, s);
}
static bv_var *fn_permute(bv_graph *g, bv_var **in, void *u) { return bv_op_permute(g, in[0], u); }
static bv_var *fn_transpose(bv_graph *g, bv_var **in, void *u) {
    int *d = u;
    return bv_op_transpose(g, in[0], d[0], d[1]);
}
/* attention head split: (B, T, H*hd) -> (B, T, H, hd) -> (B, H, T, hd), and back; x also used
 * directly so two gradients meet in it */
static bv_var *fn_heads(bv_graph *g, bv_var **in, void *u) {
    bv_var *x = in[0];
    int64_t s4[4] = {2, 3, 2, -1}, s3[3] = {2, 3, -1};
    bv_var *h = bv_op_transpose(g, bv_op_reshape(g, x, 4, s4), 1, 2);
    bv_var *back = bv_op_reshape(g, bv_op_transpose(g, h, 1, 2), 3, s3);
    bv_var *both[2] = {back, bv_op_reshape(g, h, 3, s3)};
    bv_var *xs[2] = {bv_op_concat(g, 2, both, 0), x};
    return bv_op_concat(g, 2, xs, 0);
}

static void test_shape_ops_gradcheck(void **state) {
    bv_rng r = {37};
    int64_t s[3] = {2, 3, 4};
    bv_tensor x = bv_test_rand_f64(&r, 3, s, -1, 1);
    bool check[1] = {true};
    bv_check_gradients("reshape (4, -1)", fn_reshape, NULL, 1, &x, check, NULL);
    int perms[3][3] = {{2, 0, 1}, {1, 2, 0}, {0, 2, 1}};
    for (int i = 0; i < 3; i++) bv_check_gradients("permute", fn_permute, perms[i], 1, &x, check, NULL);
    int tr[3][2] = {{0, -1}, {1, 2}, {-2, 0}};
    for (int i = 0; i < 3; i++) bv_check_gradients("transpose", fn_transpose, tr[i], 1, &x, check, NULL);
    bv_check_gradients("head split / merge", fn_heads, NULL, 1, &x, check, NULL);
    free(x.data);
}

/* reshape shares the value buffer; its gradient is separate and the forward values are right */
static void test_reshape_shares_value(void **state) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    float d[12];
    for (int i = 0; i < 12; i++) d[i] = (float)i;
    bv_tensor t = bv_tensor_make2(d, BV_DTYPE_F32, 3, 4);
    bv_var *x = bv_var_wrap(&g, &t, true);
    int64_t s[3] = {-1, 2, 3};
    bv_var *y = bv_op_reshape(&g, x, 3, s);
    assert_ptr_equal(bv_var_f32(y), bv_var_f32(x));
    assert_int_equal(y->val.ndim, 3);
    assert_int_equal(y->val.shape[0], 2);
    assert_true(y->requires_grad);
    float seed[12];
    for (int i = 0; i < 12; i++) seed[i] = (float)(i + 1) * 0.5f;
    bv_graph_backward_seed(&g, y, seed);
    assert_non_null(x->grad);
    assert_true(x->grad != y->grad);
    bv_check_close_f32("reshape gradient", x->grad, seed, 12, EXACT);
    bv_graph_free(&g);
}

/* A step through every op, forward and backward, as a training loop would run it. */
static void one_step(bv_graph *g, bv_var *table_leaf_src, const bv_tensor *ids, const bv_tensor *img,
                     const bv_tensor *mask) {
    bv_var *table = bv_var_wrap(g, &table_leaf_src->val, true);
    bv_var *im = bv_var_wrap(g, img, true);
    bv_var *e = bv_op_embedding(g, ids, table);            /* (2, 300, 256) */
    bv_var *pt = bv_op_patchify(g, im, 8);                 /* (2, 2, 256) */
    bv_var *parts[2] = {bv_op_narrow(g, e, 1, 0, 100), pt};
    bv_var *x = bv_op_concat(g, 2, parts, 1);              /* (2, 102, 256) */
    int64_t is[2] = {1, 0};
    bv_tensor idx = bv_tensor_make1(is, BV_DTYPE_I64, 2);
    bv_var *src = bv_op_reshape(g, bv_op_index_select(g, pt, 1, &idx), 2, (int64_t[]){-1, 256});
    bv_var *y = bv_op_masked_scatter(g, x, mask, src);     /* 4 rows replaced */
    int64_t hs[4] = {2, 102, 4, 64};
    int perm[4] = {0, 2, 1, 3};
    bv_var *h = bv_op_transpose(g, bv_op_permute(g, bv_op_reshape(g, y, 4, hs), perm), 2, 3);
    bv_graph_backward(g, bv_op_sum(g, h));
}

static void test_step_does_not_grow_arena(void **state) {
    bv_rng r = {41};
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t ts[2] = {500, 256}, ims[4] = {2, 4, 8, 16};
    int64_t *ids = bv_test_rand_ids(&r, 600, 500);
    float *tab = bv_test_rand_f32(&r, 500 * 256, -1, 1), *imd = bv_test_rand_f32(&r, 2 * 4 * 8 * 16, -1, 1);
    uint8_t m[204] = {0};
    m[3] = m[50] = m[102 + 7] = m[102 + 99] = 1;
    bv_tensor tt = bv_tensor_make(tab, BV_DTYPE_F32, 2, ts), it = bv_tensor_make2(ids, BV_DTYPE_I64, 2, 300);
    bv_tensor imt = bv_tensor_make(imd, BV_DTYPE_F32, 4, ims), mt = bv_tensor_make2(m, BV_DTYPE_U8, 2, 102);
    bv_var tv = {.val = tt};
    size_t after_warmup = 0;
    for (int step = 0; step < 4; step++) {
        bv_graph_reset(&g);
        if (step == 2) after_warmup = g.arena.n_block_mallocs;
        one_step(&g, &tv, &it, &imt, &mt);
    }
    assert_true(g.arena.high_water > (1u << 20)); /* the step did outgrow the first block */
    bv_graph_reset(&g);
    assert_int_equal(g.arena.n_block_mallocs, after_warmup);
    bv_graph_free(&g);
    free(ids), free(tab), free(imd);
}

/* ================= programmer errors ================= */

static bv_var *small_var(bv_graph *g, int ndim, const int64_t *shape) {
    bv_var *v = bv_var_new(g, BV_DTYPE_F32, ndim, shape);
    memset(v->val.data, 0, bv_tensor_nbytes(&v->val));
    return v;
}

static void die_embedding_id(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t ts[2] = {5, 2}, ids[3] = {1, 7, 2};
    bv_tensor it = bv_tensor_make1(ids, BV_DTYPE_I64, 3);
    bv_op_embedding(&g, &it, small_var(&g, 2, ts));
}
static void die_embedding_negative(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t ts[2] = {5, 2}, ids[2] = {0, -1};
    bv_tensor it = bv_tensor_make1(ids, BV_DTYPE_I64, 2);
    bv_op_embedding(&g, &it, small_var(&g, 2, ts));
}
static void die_index_select(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t xs[2] = {3, 4}, idx[2] = {0, 4};
    bv_tensor it = bv_tensor_make1(idx, BV_DTYPE_I64, 2);
    bv_op_index_select(&g, small_var(&g, 2, xs), 1, &it);
}
static void die_masked_scatter(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t xs[3] = {1, 4, 2}, ss[2] = {2, 2};
    uint8_t m[4] = {1, 1, 0, 1};
    bv_tensor mt = bv_tensor_make2(m, BV_DTYPE_U8, 1, 4);
    bv_op_masked_scatter(&g, small_var(&g, 3, xs), &mt, small_var(&g, 2, ss));
}
static void die_patchify(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t is[4] = {1, 3, 8, 10};
    bv_op_patchify(&g, small_var(&g, 4, is), 4);
}
static void die_concat(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t a[2] = {2, 3}, b[2] = {3, 4};
    bv_var *xs[2] = {small_var(&g, 2, a), small_var(&g, 2, b)};
    bv_op_concat(&g, 2, xs, 1);
}
static void die_reshape(void) {
    bv_graph g;
    bv_graph_init(&g, 1 << 16);
    int64_t a[2] = {2, 3}, s[2] = {4, -1};
    bv_op_reshape(&g, small_var(&g, 2, a), 2, s);
}

static void test_errors_abort_with_values(void **state) {
    bv_test_expect_abort("embedding id >= V", die_embedding_id, "id 7 at position 1", "V = 5");
    bv_test_expect_abort("embedding id < 0", die_embedding_negative, "id -1", "V = 5");
    bv_test_expect_abort("index_select", die_index_select, "index 4 at position 1", "= 4");
    bv_test_expect_abort("masked_scatter", die_masked_scatter, "3 ones", "2 rows");
    bv_test_expect_abort("patchify", die_patchify, "8 and width 10", "patch size 4");
    bv_test_expect_abort("concat", die_concat, "input 1 has size 3 in dim 0", NULL);
    bv_test_expect_abort("reshape", die_reshape, "cannot infer -1", "[2, 3]");
}

/* ================= PyTorch parity ================= */

#define EXPECT_VAL(what, v, name, atol, rtol) \
    bv_fx_expect(&fx, what, dt, bv_tensor_ptr(&(v)->val), &(v)->val, name, atol, rtol)
#define EXPECT_GRAD(what, v, name, atol, rtol) bv_fx_expect(&fx, what, dt, (v)->grad, &(v)->val, name, atol, rtol)

static void test_pytorch_parity(void **state) {
    bv_fx fx;
    bv_fx_open(&fx, "tensorops.safetensors");
    bv_graph g;
    bv_graph_init(&g, 1 << 20);
    /* copies are exact; gradients that add a few floats (repeated ids) round once per addition */
    const double A = 1e-6, R = 1e-6;
    for (int k = 0; k < 2; k++) {
        bv_dtype dt = k ? BV_DTYPE_F64 : BV_DTYPE_F32;
        { /* torch.nn.functional.embedding with repeated ids */
            bv_graph_reset(&g);
            bv_tensor ids = bv_fx_get(&fx, "embedding.ids", BV_DTYPE_I64);
            bv_var *t = bv_fx_var(&fx, &g, "embedding.table", dt);
            bv_var *y = bv_op_embedding(&g, &ids, t);
            EXPECT_VAL("embedding", y, "embedding.out", A, R);
            bv_fx_backward(&fx, &g, y, "embedding.dout");
            EXPECT_GRAD("embedding dtable", t, "embedding.dtable", A, R);
        }
        { /* SigLIP patch embedding: conv2d(kernel=stride=p).flatten(2).transpose(1, 2) ==
           * linear(patchify(img), w.view(OC, -1), b). The F32 GEMM sums C*p*p = 588 products of
           * N(0,1) values (outputs ~ +-24): float rounding of that order is ~1e-5 absolute. */
            bv_graph_reset(&g);
            bv_tensor pt = bv_fx_get(&fx, "conv.p", BV_DTYPE_I64);
            int p = (int)((int64_t *)pt.data)[0];
            bv_var *img = bv_fx_var(&fx, &g, "conv.img", dt), *w = bv_fx_var(&fx, &g, "conv.w", dt);
            bv_var *b = bv_fx_var(&fx, &g, "conv.b", dt);
            int64_t ws[2] = {w->val.shape[0], -1};
            bv_var *y = bv_op_linear(&g, bv_op_patchify(&g, img, p), bv_op_reshape(&g, w, 2, ws), b);
            EXPECT_VAL("patch embedding (conv2d)", y, "conv.out", 1e-4, 1e-5);
            bv_fx_backward(&fx, &g, y, "conv.dout");
            EXPECT_GRAD("patch embedding dimg", img, "conv.dimg", 1e-5, 1e-5);
            EXPECT_GRAD("patch embedding dw", w, "conv.dw", 1e-5, 1e-5);
            EXPECT_GRAD("patch embedding db", b, "conv.db", 1e-5, 1e-5);
        }
        { /* torch.cat along dim 1 */
            bv_graph_reset(&g);
            bv_var *xs[3] = {bv_fx_var(&fx, &g, "cat.a", dt), bv_fx_var(&fx, &g, "cat.b", dt),
                             bv_fx_var(&fx, &g, "cat.c", dt)};
            bv_var *y = bv_op_concat(&g, 3, xs, 1);
            EXPECT_VAL("cat", y, "cat.out", A, R);
            bv_fx_backward(&fx, &g, y, "cat.dout");
            EXPECT_GRAD("cat da", xs[0], "cat.da", A, R);
            EXPECT_GRAD("cat db", xs[1], "cat.db", A, R);
            EXPECT_GRAD("cat dc", xs[2], "cat.dc", A, R);
        }
        { /* Tensor.narrow */
            bv_graph_reset(&g);
            bv_tensor at = bv_fx_get(&fx, "narrow.args", BV_DTYPE_I64);
            const int64_t *a = at.data;
            bv_var *x = bv_fx_var(&fx, &g, "narrow.x", dt);
            bv_var *y = bv_op_narrow(&g, x, (int)a[0], a[1], a[2]);
            EXPECT_VAL("narrow", y, "narrow.out", A, R);
            bv_fx_backward(&fx, &g, y, "narrow.dout");
            EXPECT_GRAD("narrow dx", x, "narrow.dx", A, R);
        }
        { /* index_select along dim 1 with repeated indices */
            bv_graph_reset(&g);
            bv_tensor idx = bv_fx_get(&fx, "index_select.idx", BV_DTYPE_I64);
            bv_var *x = bv_fx_var(&fx, &g, "index_select.x", dt);
            bv_var *y = bv_op_index_select(&g, x, 1, &idx);
            EXPECT_VAL("index_select", y, "index_select.out", A, R);
            bv_fx_backward(&fx, &g, y, "index_select.dout");
            EXPECT_GRAD("index_select dx", x, "index_select.dx", A, R);
        }
        { /* x.masked_scatter(mask[..., None], src) */
            bv_graph_reset(&g);
            bv_tensor mask = bv_fx_get(&fx, "masked_scatter.mask", BV_DTYPE_U8);
            bv_var *x = bv_fx_var(&fx, &g, "masked_scatter.x", dt), *src = bv_fx_var(&fx, &g, "masked_scatter.src", dt);
            bv_var *y = bv_op_masked_scatter(&g, x, &mask, src);
            EXPECT_VAL("masked_scatter", y, "masked_scatter.out", A, R);
            bv_fx_backward(&fx, &g, y, "masked_scatter.dout");
            EXPECT_GRAD("masked_scatter dx", x, "masked_scatter.dx", A, R);
            EXPECT_GRAD("masked_scatter dsrc", src, "masked_scatter.dsrc", A, R);
        }
        { /* permute */
            bv_graph_reset(&g);
            bv_tensor pt = bv_fx_get(&fx, "permute.perm", BV_DTYPE_I64);
            int perm[BV_MAX_DIMS];
            for (int i = 0; i < pt.shape[0]; i++) perm[i] = (int)((int64_t *)pt.data)[i];
            bv_var *x = bv_fx_var(&fx, &g, "permute.x", dt);
            bv_var *y = bv_op_permute(&g, x, perm);
            EXPECT_VAL("permute", y, "permute.out", A, R);
            bv_fx_backward(&fx, &g, y, "permute.dout");
            EXPECT_GRAD("permute dx", x, "permute.dx", A, R);
        }
    }
    bv_graph_free(&g);
    bv_fx_close(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding_fast_vs_ref),
        cmocka_unit_test(test_index_select_fast_vs_ref),
        cmocka_unit_test(test_masked_scatter_fast_vs_ref),
        cmocka_unit_test(test_concat_narrow_fast_vs_ref),
        cmocka_unit_test(test_patchify_fast_vs_ref),
        cmocka_unit_test(test_permute_fast_vs_ref),
        cmocka_unit_test(test_reshape_bwd_fast_vs_ref),
        cmocka_unit_test(test_threads_agree),
        cmocka_unit_test(test_embedding_gradcheck),
        cmocka_unit_test(test_patchify_gradcheck),
        cmocka_unit_test(test_concat_gradcheck),
        cmocka_unit_test(test_narrow_gradcheck),
        cmocka_unit_test(test_index_select_gradcheck),
        cmocka_unit_test(test_masked_scatter_gradcheck),
        cmocka_unit_test(test_shape_ops_gradcheck),
        cmocka_unit_test(test_reshape_shares_value),
        cmocka_unit_test(test_step_does_not_grow_arena),
        cmocka_unit_test(test_errors_abort_with_values),
        cmocka_unit_test(test_pytorch_parity),
    };
    return cmocka_run_group_tests_name("tensorops", tests, NULL, NULL);
}
