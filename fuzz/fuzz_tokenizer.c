/* libFuzzer target for the tokenizer.json loader (src/tokenizer.c): loads the input with
 * bv_tok_load_mem. A rejected input must leave no tokenizer and a message naming the input. An
 * accepted one must encode a few fixed texts (with and without the post-processor template) to
 * ids that are all tokens and decode back without error, give consistent answers for the BOS and
 * vocabulary-size queries, and do the same after BitVLA's edits (or refuse them with a message).
 * Memory must follow the size of the input, whatever ids it names (-rss_limit_mb catches that).
 * Build and run: fuzz/build.sh (not part of the CMake build; CTest's fuzz_smoke runs it briefly). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "src/tokenizer.h"

static const char *k_texts[] = {
    "hello world", "<|begin_of_text|>a<|eot_id|>b", "  it's 1234\n\n\tcaf\xC3\xA9 \xE4\xB8\xAD \xF0\x9F\xA4\x96",
    "", "<|image_pad|><proprio_pad><action_7>x"};

static void exercise(const bv_tok *t) {
    int32_t vs = bv_tok_vocab_size(t);
    if (vs < 0) abort();
    int32_t bos = bv_tok_bos_id(t);
    if (bos >= vs || bos < -1) abort();
    bv_tok_ids v = {0};
    for (size_t k = 0; k < sizeof k_texts / sizeof k_texts[0]; k++)
        for (unsigned flags = 0; flags <= BV_TOK_ADD_SPECIAL; flags += BV_TOK_ADD_SPECIAL) {
            v.len = 0;
            if (bv_tok_encode(t, k_texts[k], strlen(k_texts[k]), flags, &v) != BV_OK) {
                if (strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
                continue;
            }
            for (size_t i = 0; i < v.len; i++) {
                size_t n;
                if (v.ids[i] < 0 || v.ids[i] >= vs || !bv_tok_token_bytes(t, v.ids[i], &n)) abort();
            }
            char *d = NULL;
            size_t dl = 0;
            if (bv_tok_decode(t, v.ids, v.len, 0, &d, &dl) != BV_OK || !d) abort();
            free(d);
            if (bv_tok_decode(t, v.ids, v.len, BV_TOK_SKIP_SPECIAL, &d, &dl) != BV_OK || !d) abort();
            free(d);
        }
    bv_tok_ids_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    bv_tok *t = NULL;
    if (bv_tok_load_mem(&t, (const char *)data, size, "<fuzz>") != BV_OK) {
        if (t || strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
        return 0;
    }
    exercise(t);
    bool edited = bv_tok_token_id(t, "<|image_pad|>") >= 0; /* then the edits leave it alone */
    if (bv_tok_bitvla_edit(t) == BV_OK) {
        if (!edited && (bv_tok_token_id(t, "<action_255>") < 0 || bv_tok_token_id(t, "<|image_pad|>") < 0)) abort();
        exercise(t);
    } else if (strncmp(bv_error_msg(), "<fuzz>", 6) != 0) {
        abort();
    }
    bv_tok_free(t);
    return 0;
}
