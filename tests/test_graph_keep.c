/* Tests of arena marks (src/arena.h bv_arena_get_mark / bv_arena_rewind) and bv_graph_keep
 * (autograd/autograd.h): a forward without a graph that keeps one layer's activations at a time
 * gives the same bits as one that keeps them all, and holds less. */
#include <string.h>

#include "models/build.h"
#include "tests/util/testutil.h"

static void test_arena_rewind(void **state) {
    bv_arena a;
    bv_arena_init(&a, 1 << 20);
    char *x = bv_arena_alloc(&a, 1000);
    bv_arena_mark m = bv_arena_get_mark(&a);
    size_t used = a.in_use;
    for (int i = 0; i < 8; i++) bv_arena_alloc(&a, 1 << 20); /* spills into new blocks */
    assert_true(a.head->next != NULL);
    bv_arena_rewind(&a, m);
    assert_ptr_equal(a.head, m.block);
    assert_int_equal(a.in_use, used);
    char *y = bv_arena_alloc(&a, 64);
    assert_ptr_equal(y, x + 1024); /* right after x (1000 rounded up to 64) */
    bv_arena_free(&a);
}

/* The tiny VLA's action forward without a graph, with and without keeping (the layer loops keep
 * only when no_grad is on; the same ops run in a recorded forward of inputs that do not train,
 * which keeps everything): same actions, smaller arena. */
static void test_forward_keep_same_bits(void **state) {
    bv_model m;
    bv_model_spec s = {.config = "tiny", .purpose = BV_MODEL_INFER, .seed = 5};
    if (bv_model_build(&m, &s) != BV_OK) fail_msg("%s", bv_error_msg());
    const bv_vla_config *c = &m.vla.cfg;
    int P = bv_config_vision_patches(c), A = c->action_dim, K = c->num_actions_chunk, S = c->vision.image_size;
    int64_t T = 1 + 2 * P + 1 + 4 + (int64_t)K * A + 1;
    int64_t *ids = calloc((size_t)T, sizeof *ids);
    uint8_t *attn = malloc((size_t)T), *amask = calloc((size_t)T, 1);
    memset(attn, 1, (size_t)T);
    int64_t t = 0;
    ids[t++] = 1;
    for (int i = 0; i < 2 * P; i++) ids[t++] = c->image_token_index;
    ids[t++] = c->proprio_token_index;
    for (int i = 0; i < 4; i++) ids[t++] = 5 + i;
    for (int i = 0; i < K * A; i++) amask[t] = 1, ids[t++] = 3;
    ids[t++] = 2;
    bv_rng r = {9};
    float *pix = bv_test_rand_f32(&r, 2 * 3 * S * S, -1, 1), *prop = bv_test_rand_f32(&r, c->proprio_dim, -1, 1);
    int64_t sid[2] = {1, T}, spix[5] = {1, 2, 3, S, S};
    bv_tensor ti = bv_tensor_make(ids, BV_DTYPE_I64, 2, sid), ta = bv_tensor_make(attn, BV_DTYPE_U8, 2, sid);
    bv_tensor tm = bv_tensor_make(amask, BV_DTYPE_U8, 2, sid), tp = bv_tensor_make(pix, BV_DTYPE_F32, 5, spix);
    bv_tensor tq = bv_tensor_make2(prop, BV_DTYPE_F32, 1, c->proprio_dim);
    bv_vla_batch b = {.input_ids = &ti, .attention_mask = &ta, .pixel_values = &tp, .proprio = &tq, .action_mask = &tm};
    if (bv_vla_batch_check(&m.vla, &b, BV_VLA_MODE_ACTION, "test")) fail_msg("%s", bv_error_msg());
    float out[2][64 * 16];
    size_t hw[2];
    for (int keep = 0; keep < 2; keep++) {
        bv_graph g;
        bv_graph_init(&g, 1 << 20);
        if (keep) bv_graph_no_grad_begin(&g); /* else: recorded mode, but nothing requires grad */
        bv_vla_out y = bv_vla_forward(&g, &m.params, &m.vla, &b, BV_VLA_MODE_ACTION);
        memcpy(out[keep], bv_var_f32(y.actions_pred), (size_t)K * A * sizeof(float));
        hw[keep] = bv_arena_high_water(&g.arena);
        if (keep) bv_graph_no_grad_end(&g);
        bv_graph_free(&g);
    }
    assert_memory_equal(out[0], out[1], (size_t)K * A * sizeof(float));
    if (!(hw[1] < hw[0])) fail_msg("keeping one layer at a time: arena high water %zu, keeping all %zu", hw[1], hw[0]);
    free(ids), free(attn), free(amask), free(pix), free(prop);
    bv_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena_rewind),
        cmocka_unit_test(test_forward_keep_same_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
