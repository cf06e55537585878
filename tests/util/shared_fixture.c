#include "tests/util/shared_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#ifndef BV_SHARED_DIR
#define BV_SHARED_DIR BV_SOURCE_DIR "/../shared"
#endif

const char *bv_shared_path(const char *rel) {
    static char buf[4096];
    const char *env = getenv("BV_SHARED_DIR");
    const char *dirs[3] = {env, BV_SHARED_DIR, BV_SOURCE_DIR "/../../shared"};
    for (int i = 0; i < 3; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        snprintf(buf, sizeof buf, "%s/%s", dirs[i], rel);
        if (access(buf, R_OK) == 0) return buf;
    }
    fail_msg("shared fixture '%s' not found under $BV_SHARED_DIR (%s), %s or %s", rel, env ? env : "unset",
             BV_SHARED_DIR, BV_SOURCE_DIR "/../../shared");
    return NULL;
}
