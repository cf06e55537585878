/* libFuzzer target for the tf.train.Example decoder (data/example.c). Decodes the input and, when
 * it is accepted, checks the invariants a caller relies on: every byte-string view lies inside the
 * input, names are unique and bv_example_find finds each one, and encoding the decoded features
 * with the builder and decoding again gives the same features (names, kinds, values bit for bit).
 * A rejected input must leave no features and a message naming the input.
 * Build and run: fuzz/build.sh (not part of the CMake build). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/example.h"

static bv_example g_a, g_b;
static bv_example_builder g_w;

static void same(const bv_feature *x, const bv_feature *y) {
    if (strcmp(x->name, y->name) || x->kind != y->kind || x->n != y->n) abort();
    if (x->kind == BV_FEAT_FLOAT && x->n && memcmp(x->floats, y->floats, 4 * x->n)) abort();
    if (x->kind == BV_FEAT_INT64 && x->n && memcmp(x->int64s, y->int64s, 8 * x->n)) abort();
    if (x->kind == BV_FEAT_BYTES)
        for (size_t i = 0; i < x->n; i++)
            if (x->bytes[i].len != y->bytes[i].len ||
                (x->bytes[i].len && memcmp(x->bytes[i].data, y->bytes[i].data, x->bytes[i].len)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (bv_example_decode(&g_a, data, size, "<fuzz>") != BV_OK) {
        if (g_a.n_features != 0 || strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
        return 0;
    }
    bv_example_builder_reset(&g_w);
    int n_enc = 0;
    for (int i = 0; i < g_a.n_features; i++) {
        const bv_feature *f = &g_a.features[i];
        if (bv_example_find(&g_a, f->name) != f) abort(); /* unique and findable */
        if (f->kind == BV_FEAT_BYTES) {
            const void **v = malloc((f->n + 1) * sizeof *v);
            size_t *l = malloc((f->n + 1) * sizeof *l);
            for (size_t k = 0; k < f->n; k++) {
                const bv_bytes *b = &f->bytes[k];
                if (b->len && (b->data < data || b->len > size || b->data > data + size - b->len)) abort();
                v[k] = b->data;
                l[k] = b->len;
            }
            bv_example_add_bytes(&g_w, f->name, f->n, v, l);
            free(v);
            free(l);
            n_enc++;
        } else if (f->kind == BV_FEAT_FLOAT) {
            bv_example_add_floats(&g_w, f->name, f->n, f->floats);
            n_enc++;
        } else if (f->kind == BV_FEAT_INT64) {
            bv_example_add_int64s(&g_w, f->name, f->n, f->int64s);
            n_enc++;
        }
    }
    size_t len;
    const uint8_t *enc = bv_example_builder_finish(&g_w, &len);
    if (bv_example_decode(&g_b, enc, len, "<re-encoded>") != BV_OK) abort();
    if (g_b.n_features != n_enc) abort();
    for (int i = 0, j = 0; i < g_a.n_features; i++) {
        if (g_a.features[i].kind == BV_FEAT_NONE) {
            if (bv_example_find(&g_b, g_a.features[i].name)) abort();
            continue;
        }
        same(&g_a.features[i], &g_b.features[j++]);
    }
    return 0;
}
