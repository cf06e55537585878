/* libFuzzer target for the safetensors reader: parses the input as a whole file image with
 * bv_st_parse_buffer() (the code bv_st_open() runs after mmap) and, when it is accepted, touches
 * every entry the way a loader would (find, view, read with and without dtype conversion, shape
 * mismatch) so that a header the validator lets through cannot make later access go out of
 * bounds. Build and run: fuzz/build.sh (not part of the CMake build). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/safetensors.h"
#include "src/safetensors_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bv_st_file f;
    if (bv_st_parse_buffer(&f, "<fuzz>", data, size) != BV_OK) {
        /* a failed parse leaves f zeroed and a message naming the input */
        if (f.entries || f.n || f.path || strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
        return 0;
    }
    /* every accepted entry lies inside the input and the entries tile the data section */
    uint64_t cur = 0;
    for (int i = 0; i < f.n; i++) {
        const bv_st_entry *e = &f.entries[i];
        if (e->begin != cur || e->end < e->begin || e->end > f.data_size) abort();
        cur = e->end;
        if (bv_st_find(&f, e->name) < 0) abort();
        bv_tensor v = bv_st_view(&f, i);
        size_t nb = bv_tensor_nbytes(&v);
        if (nb != e->end - e->begin) abort();
        int64_t numel = bv_tensor_numel(&v);
        /* read as stored, as F64 (widest) and as BF16 (narrowing conversion) */
        void *dst = malloc(numel ? (size_t)numel * 8 : 1);
        if (bv_st_read(&f, e->name, e->dtype, e->ndim, e->shape, 0, dst) != BV_OK) abort();
        if (nb && memcmp(dst, (const uint8_t *)bv_tensor_ptr(&v), nb) != 0) abort();
        if (bv_st_read(&f, e->name, BV_DTYPE_F64, -1, NULL, numel, dst) != BV_OK) abort();
        if (bv_st_read(&f, e->name, BV_DTYPE_BF16, -1, NULL, numel, dst) != BV_OK) abort();
        if (bv_st_read(&f, e->name, BV_DTYPE_F32, -1, NULL, numel + 1, dst) != BV_ERR_SHAPE) abort();
        free(dst);
    }
    if (cur != f.data_size) abort();
    for (int i = 0; i < f.n_meta; i++)
        if (bv_st_meta(&f, f.meta_keys[i]) == NULL) abort();
    bv_st_close(&f);
    return 0;
}
