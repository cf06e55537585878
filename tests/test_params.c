/* Tests of the parameter store (src/params.h): the layout finalize fixes (trainable first, then
 * frozen; gradients only for trainable ones), the planned bytes, and the errors for sizes that come
 * from a config: a store larger than the machine is refused with BV_ERR_NOMEM naming the bytes
 * (no abort, nothing allocated, the store still freeable), and a shape whose element count
 * overflows is refused at registration. */
#include <string.h>

#include "src/params.h"
#include "tests/util/testutil.h"

static void test_layout_and_bytes(void **state) {
    bv_params p;
    bv_params_init(&p);
    int64_t s1[2] = {3, 4}, s2[1] = {5}, s3[2] = {2, 2};
    int a = bv_params_add(&p, "a.weight", 2, s1, true);
    int b = bv_params_add(&p, "b.bias", 1, s2, true);
    int c = bv_params_add(&p, "c.weight", 2, s3, true);
    assert_int_equal(bv_params_set_trainable(&p, "b.", false), 1);
    assert_true(bv_params_bytes(&p) == 12 * 8.0 + 5 * 4.0 + 4 * 8.0);
    assert_int_equal(bv_params_finalize(&p), BV_OK);
    assert_int_equal(p.numel_total, 21);
    assert_int_equal(p.numel_trainable, 16);
    assert_int_equal(p.items[a].offset, 0);
    assert_int_equal(p.items[c].offset, 12);
    assert_int_equal(p.items[b].offset, 16); /* frozen ones after the trainable ones */
    assert_null(bv_params_grad(&p, b));
    assert_ptr_equal(bv_params_grad(&p, c), p.grads + 12);
    for (size_t i = 0; i < p.numel_total; i++) assert_true(p.values[i] == 0.0f);
    bv_params_free(&p);
}

/* 2^40 floats (4 TiB) of values and as much again of gradients: more than any test machine has. */
static void test_finalize_too_large(void **state) {
    bv_params p;
    bv_params_init(&p);
    int64_t s[2] = {(int64_t)1 << 20, (int64_t)1 << 20};
    assert_true(bv_params_add(&p, "huge.weight", 2, s, true) >= 0);
    int64_t s2[1] = {7};
    assert_true(bv_params_add(&p, "small.bias", 1, s2, false) >= 0);
    bv_status st = bv_params_finalize(&p);
    assert_int_equal(st, BV_ERR_NOMEM);
    const char *m = bv_error_msg();
    bv_test_expect_in(m, "the parameter store (2 tensors) needs 8796093022236 bytes"); /* 2^40*8 + 7*4 */
    bv_test_expect_in(m, "of physical memory");
    assert_false(p.finalized);
    assert_null(p.values);
    assert_null(p.grads);
    /* still a valid store: frozen, the values alone are still too many */
    bv_params_set_trainable(&p, "", false);
    assert_int_equal(bv_params_finalize(&p), BV_ERR_NOMEM);
    bv_test_expect_in(bv_error_msg(), "needs 4398046511132 bytes");
    bv_params_free(&p); /* ASan: nothing leaked */
}

static void test_numel_overflow(void **state) {
    bv_params p;
    bv_params_init(&p);
    int64_t s[3] = {(int64_t)1 << 29, (int64_t)1 << 30, 4};
    assert_int_equal(bv_params_add(&p, "overflow.weight", 3, s, true), -1);
    bv_test_expect_in(bv_error_msg(), "parameter 'overflow.weight': more than 2^60 elements (dimension 2 is 4)");
    int64_t t[2] = {INT64_MAX, INT64_MAX};
    assert_int_equal(bv_params_add(&p, "wrap.weight", 2, t, true), -1);
    assert_int_equal(p.n, 0);
    bv_params_free(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_and_bytes),
        cmocka_unit_test(test_finalize_too_large),
        cmocka_unit_test(test_numel_overflow),
    };
    return cmocka_run_group_tests_name("params", tests, NULL, NULL);
}
