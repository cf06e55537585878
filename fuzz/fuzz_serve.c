/* libFuzzer target for the request decoder of `bitvla serve` (eval/serve.c): the bytes of an HTTP
 * body as a client could send them (JSON with json_numpy arrays, the "encoded" wrapper, base64),
 * through bv_serve_check_request with and without a fixed state length. A refused body must leave
 * a message; an accepted one must have images of positive size within the limits and a state of
 * the asked length.
 * Build and run: fuzz/build.sh (not part of the CMake build; CTest's fuzz_smoke runs it briefly). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/serve.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    for (int sd = 0; sd <= 8; sd += 8) {
        bv_serve_obs o;
        if (bv_serve_check_request((const char *)data, size, sd, &o) != BV_OK) {
            if (!bv_error_msg()[0]) abort();
            continue;
        }
        if (o.full_w < 1 || o.full_h < 1 || o.state_dim < 1 || (sd && o.state_dim != sd)) abort();
        if (o.wrist_w < 0 || o.wrist_h < 0) abort();
        if ((int64_t)o.full_w * o.full_h * 3 > (int64_t)size * 3 / 4 + 3) abort(); /* the bytes came from base64 */
    }
    return 0;
}
