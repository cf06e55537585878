/* shared_fixture.h - locating the project's shared, read-only fixtures (../shared/fixtures, e.g.
 * the real RLDS Bridge debug set) from a test. Test-only code. */
#ifndef BV_SHARED_FIXTURE_H
#define BV_SHARED_FIXTURE_H

/* Absolute path of `rel` under the shared fixture directory, looked up in order in $BV_SHARED_DIR,
 * BV_SHARED_DIR (the checkout's ../shared) and the checkout's ../../shared (a git worktree one
 * level deeper). Returns a static buffer, or fails the test naming every place it looked. */
const char *bv_shared_path(const char *rel);

#endif
