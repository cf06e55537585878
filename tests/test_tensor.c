/* Tests of the tensor core (src/tensor.c: descriptors, views, contiguous copies, error messages)
 * and of the arena (src/arena.c: block consolidation on reset, high-water mark, alignment). */
#include <string.h>

#include "tests/util/testutil.h"

/* Fill a contiguous F32 tensor with its flat index. */
static bv_tensor iota_f32(int ndim, const int64_t *shape) {
    bv_tensor t = bv_tensor_make(NULL, BV_DTYPE_F32, ndim, shape);
    int64_t n = bv_tensor_numel(&t);
    float *d = bv_xmalloc((size_t)(n ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) d[i] = (float)i;
    t.data = d;
    return t;
}

static void assert_shape(const bv_tensor *t, int ndim, const int64_t *shape) {
    char b1[96];
    assert_int_equal(t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i])
            fail_msg("shape %s: dim %d is %lld, expected %lld", bv_tensor_shape_str(t, b1, 96), i,
                     (long long)t->shape[i], (long long)shape[i]);
}

static void assert_strides(const bv_tensor *t, const int64_t *strides) {
    for (int i = 0; i < t->ndim; i++)
        if (t->strides[i] != strides[i])
            fail_msg("stride %d is %lld, expected %lld", i, (long long)t->strides[i], (long long)strides[i]);
}

/* The last error message must contain every needle. */
static void assert_msg(const char *n1, const char *n2) {
    const char *m = bv_error_msg();
    if (!strstr(m, n1) || (n2 && !strstr(m, n2)))
        fail_msg("error message \"%s\" lacks \"%s\"%s%s", m, n1, n2 ? " / " : "", n2 ? n2 : "");
}

static void test_make(void **state) {
    int64_t s[3] = {2, 3, 4}, st[3] = {12, 4, 1};
    bv_tensor t = iota_f32(3, s);
    assert_shape(&t, 3, s);
    assert_strides(&t, st);
    assert_int_equal(bv_tensor_numel(&t), 24);
    assert_int_equal(bv_tensor_nbytes(&t), 96);
    assert_true(bv_tensor_is_contiguous(&t));
    char b[64];
    assert_string_equal(bv_tensor_shape_str(&t, b, sizeof b), "[2, 3, 4]");
    int64_t idx[3] = {1, 2, 3};
    assert_true(bv_tensor_get(&t, idx) == 23.0);
    bv_tensor_set(&t, idx, -5.0);
    assert_true(((float *)t.data)[23] == -5.0f);
    /* scalar */
    double v = 7;
    bv_tensor sc = bv_tensor_make(&v, BV_DTYPE_F64, 0, NULL);
    assert_int_equal(bv_tensor_numel(&sc), 1);
    assert_true(bv_tensor_is_contiguous(&sc));
    assert_string_equal(bv_tensor_shape_str(&sc, b, sizeof b), "[]");
    assert_true(bv_tensor_get(&sc, NULL) == 7.0);
    /* size-1 dims do not break contiguity whatever their stride */
    bv_tensor one = t;
    one.ndim = 2, one.shape[0] = 1, one.shape[1] = 4, one.strides[0] = 99, one.strides[1] = 1;
    assert_true(bv_tensor_is_contiguous(&one));
    free(t.data);
}

static void test_reshape(void **state) {
    int64_t s[3] = {2, 3, 4};
    bv_tensor t = iota_f32(3, s), r;
    int64_t a[2] = {4, -1}, ea[2] = {4, 6};
    assert_int_equal(bv_tensor_reshape(&t, 2, a, &r), BV_OK);
    assert_shape(&r, 2, ea);
    assert_ptr_equal(r.data, t.data);
    int64_t b[1] = {-1}, eb[1] = {24};
    assert_int_equal(bv_tensor_reshape(&t, 1, b, &r), BV_OK);
    assert_shape(&r, 1, eb);
    int64_t c[3] = {2, -1, 2}, ec[3] = {2, 6, 2};
    assert_int_equal(bv_tensor_reshape(&t, 3, c, &r), BV_OK);
    assert_shape(&r, 3, ec);
    int64_t i1[3] = {1, 3, 1};
    assert_true(bv_tensor_get(&r, i1) == 1 * 12 + 3 * 2 + 1);
    /* a contiguous slice keeps its offset through reshape */
    bv_tensor sl;
    assert_int_equal(bv_tensor_slice(&t, 0, 1, 2, 1, &sl), BV_OK);
    assert_true(bv_tensor_is_contiguous(&sl));
    int64_t d[2] = {-1, 3}, ed[2] = {4, 3}, i2[2] = {2, 1};
    assert_int_equal(bv_tensor_reshape(&sl, 2, d, &r), BV_OK);
    assert_shape(&r, 2, ed);
    assert_int_equal(r.offset, 12);
    assert_true(bv_tensor_get(&r, i2) == 12 + 7);
    /* empty tensors */
    int64_t z[2] = {0, 3}, zr[2] = {-1, 3}, ez[2] = {0, 3};
    bv_tensor e = bv_tensor_make(t.data, BV_DTYPE_F32, 2, z);
    assert_int_equal(bv_tensor_reshape(&e, 2, zr, &r), BV_OK);
    assert_shape(&r, 2, ez);
    free(t.data);
}

static void test_reshape_errors(void **state) {
    int64_t s[3] = {2, 3, 4};
    bv_tensor t = iota_f32(3, s), r;
    int64_t two[3] = {-1, 2, -1};
    assert_int_equal(bv_tensor_reshape(&t, 3, two, &r), BV_ERR_SHAPE);
    assert_msg("more than one -1", NULL);
    int64_t bad_infer[2] = {5, -1};
    assert_int_equal(bv_tensor_reshape(&t, 2, bad_infer, &r), BV_ERR_SHAPE);
    assert_msg("cannot infer -1 for 24 elements", "[2, 3, 4]");
    int64_t wrong[2] = {5, 5};
    assert_int_equal(bv_tensor_reshape(&t, 2, wrong, &r), BV_ERR_SHAPE);
    assert_msg("[2, 3, 4] has 24 elements", "new shape has 25");
    int64_t neg[2] = {-3, -8};
    assert_int_equal(bv_tensor_reshape(&t, 2, neg, &r), BV_ERR_SHAPE);
    assert_msg("negative dimension -3", NULL);
    int64_t six[6] = {1, 1, 1, 2, 3, 4};
    assert_int_equal(bv_tensor_reshape(&t, 6, six, &r), BV_ERR_SHAPE);
    assert_msg("rank 6", NULL);
    bv_tensor tr;
    assert_int_equal(bv_tensor_transpose(&t, 0, 2, &tr), BV_OK);
    int64_t flat[1] = {24};
    assert_int_equal(bv_tensor_reshape(&tr, 1, flat, &r), BV_ERR_SHAPE);
    assert_msg("[4, 3, 2] is not contiguous", NULL);
    int64_t zero_infer[2] = {0, -1};
    assert_int_equal(bv_tensor_reshape(&t, 2, zero_infer, &r), BV_ERR_SHAPE);
    assert_msg("cannot infer -1", NULL);
    free(t.data);
}

static void test_permute_transpose(void **state) {
    int64_t s[3] = {2, 3, 4};
    bv_tensor t = iota_f32(3, s), p;
    int perm[3] = {2, 0, 1};
    int64_t ep[3] = {4, 2, 3}, sp[3] = {1, 12, 4};
    assert_int_equal(bv_tensor_permute(&t, perm, &p), BV_OK);
    assert_shape(&p, 3, ep);
    assert_strides(&p, sp);
    assert_false(bv_tensor_is_contiguous(&p));
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 4; k++) {
                int64_t a[3] = {i, j, k}, b[3] = {k, i, j};
                assert_true(bv_tensor_get(&t, a) == bv_tensor_get(&p, b));
            }
    int dup[3] = {0, 0, 1}, oob[3] = {0, 1, 3};
    assert_int_equal(bv_tensor_permute(&t, dup, &p), BV_ERR_SHAPE);
    assert_msg("entry 1 (=0) is not a permutation of 0..2", NULL);
    assert_int_equal(bv_tensor_permute(&t, oob, &p), BV_ERR_SHAPE);
    assert_msg("entry 2 (=3)", NULL);
    /* transpose with negative dims; twice is the identity */
    bv_tensor tr, tr2;
    int64_t et[3] = {4, 3, 2}, st[3] = {1, 4, 12};
    assert_int_equal(bv_tensor_transpose(&t, 0, -1, &tr), BV_OK);
    assert_shape(&tr, 3, et);
    assert_strides(&tr, st);
    assert_int_equal(bv_tensor_transpose(&tr, -1, 0, &tr2), BV_OK);
    assert_shape(&tr2, 3, s);
    assert_true(bv_tensor_is_contiguous(&tr2));
    assert_int_equal(bv_tensor_transpose(&t, 0, 3, &tr), BV_ERR_SHAPE);
    assert_msg("dims (0, 3) out of range for rank 3", NULL);
    assert_int_equal(bv_tensor_transpose(&t, -4, 1, &tr), BV_ERR_SHAPE);
    free(t.data);
}

/* Values of a 1-d slice of 0..n-1, compared with Python's range(n)[start:end:step]. */
static void check_slice_1d(int64_t n, int64_t start, int64_t end, int64_t step, int cnt, const int64_t *want) {
    int64_t s[1] = {n};
    bv_tensor t = iota_f32(1, s), r;
    assert_int_equal(bv_tensor_slice(&t, 0, start, end, step, &r), BV_OK);
    if (r.shape[0] != cnt)
        fail_msg("slice [%lld:%lld:%lld] of %lld: %lld elements, expected %d", (long long)start, (long long)end,
                 (long long)step, (long long)n, (long long)r.shape[0], cnt);
    for (int64_t i = 0; i < cnt; i++) assert_true(bv_tensor_get(&r, &i) == (double)want[i]);
    free(t.data);
}

static void test_slice(void **state) {
    int64_t w1[2] = {3, 6}, w2[2] = {2, 6}, w3[3] = {0, 1, 2}, w4[3] = {7, 8, 9}, w5[4] = {1, 3, 5, 7};
    check_slice_1d(10, -7, -1, 3, 2, w1);  /* [-7:-1:3] */
    check_slice_1d(10, 2, 100, 4, 2, w2);  /* end clamped */
    check_slice_1d(10, -100, 3, 1, 3, w3); /* start clamped */
    check_slice_1d(10, -3, 10, 1, 3, w4);
    check_slice_1d(10, 1, 8, 2, 4, w5);
    check_slice_1d(10, 5, 2, 1, 0, NULL);   /* start > end: empty */
    check_slice_1d(10, 0, -20, 1, 0, NULL); /* [0:-20]: empty */
    check_slice_1d(10, 12, 20, 1, 0, NULL); /* past the end: empty */
    /* 2-d: rows -3: and columns 1::2 (ends as large as the dim), then a contiguous copy */
    int64_t s[2] = {4, 6};
    bv_tensor t = iota_f32(2, s), a, b;
    assert_int_equal(bv_tensor_slice(&t, 1, 1, 6, 2, &a), BV_OK);
    assert_int_equal(bv_tensor_slice(&a, 0, -3, 4, 1, &b), BV_OK);
    int64_t eb[2] = {3, 3}, sb[2] = {6, 2};
    assert_shape(&b, 2, eb);
    assert_strides(&b, sb);
    assert_int_equal(b.offset, 7);
    assert_false(bv_tensor_is_contiguous(&b));
    float out[9];
    bv_tensor c = bv_tensor_make2(out, BV_DTYPE_F32, 3, 3);
    bv_tensor_copy_into(&c, &b);
    float want[9] = {7, 9, 11, 13, 15, 17, 19, 21, 23};
    bv_check_close_f32("slice copy", out, want, 9, 1e-300, 0);
    /* errors */
    assert_int_equal(bv_tensor_slice(&t, 1, 0, 6, 0, &a), BV_ERR_SHAPE);
    assert_msg("step 0 must be >= 1", NULL);
    assert_int_equal(bv_tensor_slice(&t, 2, 0, 1, 1, &a), BV_ERR_SHAPE);
    assert_msg("dim 2 out of range for rank 2", NULL);
    assert_int_equal(bv_tensor_slice(&t, -1, 0, 2, 1, &a), BV_OK); /* negative dim */
    assert_int_equal(a.shape[1], 2);
    free(t.data);
}

static void test_broadcast(void **state) {
    int64_t s[2] = {3, 1};
    bv_tensor t = iota_f32(2, s), r;
    int64_t to[3] = {2, 3, 4}, st[3] = {0, 1, 0};
    assert_int_equal(bv_tensor_broadcast_to(&t, 3, to, &r), BV_OK);
    assert_shape(&r, 3, to);
    assert_strides(&r, st);
    for (int64_t i = 0; i < 2; i++)
        for (int64_t j = 0; j < 3; j++)
            for (int64_t k = 0; k < 4; k++) {
                int64_t idx[3] = {i, j, k};
                assert_true(bv_tensor_get(&r, idx) == (double)j);
            }
    /* contiguous copy of a broadcast view */
    float out[24];
    bv_tensor c = bv_tensor_make(out, BV_DTYPE_F32, 3, to);
    bv_tensor_copy_into(&c, &r);
    for (int i = 0; i < 24; i++) assert_true(out[i] == (float)((i / 4) % 3));
    int64_t s3[1] = {3}, badr[1] = {4};
    bv_tensor v = iota_f32(1, s3);
    assert_int_equal(bv_tensor_broadcast_to(&v, 1, badr, &r), BV_ERR_SHAPE);
    assert_msg("dimension 0 of [3] is 3, target is 4", NULL);
    assert_int_equal(bv_tensor_broadcast_to(&t, 1, badr, &r), BV_ERR_SHAPE);
    assert_msg("cannot broadcast [3, 1] to rank 1", NULL);
    int64_t to2[2] = {2, 3}, st2[2] = {0, 1};
    assert_int_equal(bv_tensor_broadcast_to(&v, 2, to2, &r), BV_OK);
    assert_strides(&r, st2);
    /* broadcast_shapes */
    int n;
    int64_t out_s[5];
    int64_t a1[2] = {3, 1}, b1[2] = {1, 4}, e1[2] = {3, 4};
    assert_int_equal(bv_broadcast_shapes(2, a1, 2, b1, &n, out_s), BV_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(out_s, e1, sizeof e1);
    int64_t a2[3] = {5, 2, 3}, b2[1] = {3};
    assert_int_equal(bv_broadcast_shapes(3, a2, 1, b2, &n, out_s), BV_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out_s, a2, sizeof a2);
    int64_t a3[2] = {2, 3}, b3[2] = {2, 4};
    assert_int_equal(bv_broadcast_shapes(2, a3, 2, b3, &n, out_s), BV_ERR_SHAPE);
    assert_msg("sizes 3 and 4 do not match", NULL);
    free(t.data), free(v.data);
}

static void test_contiguous_copies(void **state) {
    bv_arena a;
    bv_arena_init(&a, 1 << 16);
    int64_t s[3] = {3, 4, 5};
    bv_tensor t = iota_f32(3, s);
    /* already contiguous: no copy unless asked */
    bv_tensor c0 = bv_tensor_contiguous(&a, &t, false);
    assert_ptr_equal(c0.data, t.data);
    bv_tensor c1 = bv_tensor_contiguous(&a, &t, true);
    assert_true(c1.data != t.data);
    bv_check_close_f32("always_copy", c1.data, t.data, 60, 1e-300, 0);
    /* strided view: permute then step slice then negative-start slice */
    int perm[3] = {2, 0, 1};
    bv_tensor p, q, v;
    assert_int_equal(bv_tensor_permute(&t, perm, &p), BV_OK);  /* (5, 3, 4) */
    assert_int_equal(bv_tensor_slice(&p, 0, 0, 5, 2, &q), BV_OK); /* (3, 3, 4): k = 0, 2, 4 */
    assert_int_equal(bv_tensor_slice(&q, 2, -3, 4, 1, &v), BV_OK); /* (3, 3, 3): j = 1..3 */
    bv_tensor c = bv_tensor_contiguous(&a, &v, false);
    assert_true(c.data != t.data);
    assert_true(bv_tensor_is_contiguous(&c));
    assert_shape(&c, 3, v.shape);
    const float *cd = c.data;
    for (int64_t k = 0; k < 3; k++)
        for (int64_t i = 0; i < 3; i++)
            for (int64_t j = 0; j < 3; j++) {
                float want = (float)(i * 20 + (j + 1) * 5 + 2 * k); /* t[i, j+1, 2k] */
                assert_true(cd[(k * 3 + i) * 3 + j] == want);
            }
    /* dtype conversion F32 view -> F64 */
    double dd[27];
    bv_tensor d = bv_tensor_make(dd, BV_DTYPE_F64, 3, v.shape);
    bv_tensor_copy_into(&d, &v);
    for (int i = 0; i < 27; i++) assert_true(dd[i] == (double)cd[i]);
    /* rank 0 */
    float x = 3.5f, y = 0;
    bv_tensor xs = bv_tensor_make(&x, BV_DTYPE_F32, 0, NULL), ys = bv_tensor_make(&y, BV_DTYPE_F32, 0, NULL);
    bv_tensor_copy_into(&ys, &xs);
    assert_true(y == 3.5f);
    free(t.data);
    bv_arena_free(&a);
}

/* One "training step": a fixed sequence of allocations (sizes not multiples of 64), writing to each. */
static size_t arena_step(bv_arena *a, int scale) {
    size_t total = 0;
    for (int i = 0; i < 12; i++) {
        size_t n = (size_t)scale * (size_t)(100000 + 37 * i);
        char *p = bv_arena_alloc(a, n);
        assert_int_equal((uintptr_t)p % 64, 0);
        memset(p, 0xab, n);
        total += (n + 63) & ~(size_t)63;
    }
    float *z = bv_arena_calloc(a, 1000 * sizeof(float));
    for (int i = 0; i < 1000; i++) assert_true(z[i] == 0.0f);
    total += 4032;
    return total;
}

static void test_arena_reset_consolidates(void **state) {
    bv_arena a;
    bv_arena_init(&a, 1000); /* smaller than the minimum block: grows during the first step */
    assert_int_equal(a.n_block_mallocs, 1);
    size_t need = arena_step(&a, 1); /* ~1.2 MB: more than one block */
    size_t first = a.n_block_mallocs;
    assert_true(first > 1);
    assert_true(a.head->next != NULL);
    assert_int_equal(bv_arena_high_water(&a), need);
    bv_arena_reset(&a);
    /* one block holding the whole step */
    assert_true(a.head->next == NULL);
    assert_true(bv_arena_capacity(&a) >= need);
    assert_int_equal(a.n_block_mallocs, first + 1);
    assert_int_equal(a.in_use, 0);
    for (int step = 0; step < 3; step++) {
        size_t cap = bv_arena_capacity(&a);
        assert_int_equal(arena_step(&a, 1), need);
        assert_int_equal(a.n_block_mallocs, first + 1); /* no block allocated in a same-size step */
        assert_int_equal(bv_arena_capacity(&a), cap);
        assert_int_equal(bv_arena_high_water(&a), need);
        bv_arena_reset(&a);
        assert_int_equal(a.n_block_mallocs, first + 1);
    }
    /* a smaller step leaves the high-water mark alone; a larger one grows it, once */
    arena_step(&a, 0);
    assert_int_equal(bv_arena_high_water(&a), need);
    bv_arena_reset(&a);
    size_t big = arena_step(&a, 3);
    assert_int_equal(bv_arena_high_water(&a), big);
    size_t grown = a.n_block_mallocs;
    assert_true(grown > first + 1);
    bv_arena_reset(&a);
    assert_true(bv_arena_capacity(&a) >= big);
    size_t after = a.n_block_mallocs;
    arena_step(&a, 3);
    assert_int_equal(a.n_block_mallocs, after);
    bv_arena_free(&a);
}

static void test_arena_high_water(void **state) {
    bv_arena a;
    bv_arena_init(&a, 4096);
    assert_int_equal(bv_arena_high_water(&a), 0);
    for (int i = 0; i < 5; i++) bv_arena_alloc(&a, 100); /* 128 bytes each after alignment */
    assert_int_equal(bv_arena_high_water(&a), 640);
    void *p = bv_arena_alloc(&a, 0), *q = bv_arena_alloc(&a, 0); /* zero-byte allocations are distinct */
    assert_true(p != q);
    assert_int_equal(bv_arena_high_water(&a), 768);
    bv_arena_reset(&a);
    assert_int_equal(bv_arena_high_water(&a), 768);
    bv_arena_alloc(&a, 64);
    assert_int_equal(bv_arena_high_water(&a), 768);
    /* one allocation larger than a block */
    char *big = bv_arena_alloc(&a, 3u << 20);
    big[(3u << 20) - 1] = 1;
    assert_int_equal(bv_arena_high_water(&a), 64 + (3u << 20));
    bv_arena_reset(&a);
    assert_true(bv_arena_capacity(&a) >= 64 + (3u << 20));
    bv_arena_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_reshape),
        cmocka_unit_test(test_reshape_errors),
        cmocka_unit_test(test_permute_transpose),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_broadcast),
        cmocka_unit_test(test_contiguous_copies),
        cmocka_unit_test(test_arena_reset_consolidates),
        cmocka_unit_test(test_arena_high_water),
    };
    return cmocka_run_group_tests_name("tensor", tests, NULL, NULL);
}
