/* libFuzzer target for the model configuration parser (models/config.c): parses the input as a
 * config.json with bv_config_parse, strict and lenient. A rejected input must leave a message
 * naming the input; an accepted one must pass bv_config_validate, and its bv_config_to_json text
 * must parse (strictly) back to the same configuration. The derived sizes the model code uses
 * (patches per image, action tokens) must be computable without overflow.
 * Build and run: fuzz/build.sh (not part of the CMake build; CTest's fuzz_smoke runs it briefly). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/config.h"

static void check(const uint8_t *data, size_t size, bool strict) {
    bv_vla_config c;
    if (bv_config_parse((const char *)data, size, "<fuzz>", strict, &c) != BV_OK) {
        if (strncmp(bv_error_msg(), "<fuzz>", 6) != 0) abort();
        return;
    }
    if (bv_config_validate(&c, "<fuzz>") != BV_OK) abort();
    if (bv_config_vision_patches(&c) <= 0 || bv_config_action_tokens(&c) <= 0) abort();
    char *js = bv_config_to_json(&c);
    if (!js) abort();
    bv_vla_config d;
    if (bv_config_parse(js, strlen(js), "<round trip>", true, &d) != BV_OK) abort();
    char *js2 = bv_config_to_json(&d);
    if (!js2 || strcmp(js, js2) != 0) abort();
    free(js);
    free(js2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check(data, size, false);
    check(data, size, true);
    return 0;
}
