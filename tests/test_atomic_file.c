/* Tests of src/atomic_file.h:
 *  - files: write-then-rename leaves only the destination; abort leaves nothing;
 *  - bv_atomic_dir_make: nested creation, an existing directory, a file in the way;
 *  - bv_atomic_dir_*: the destination appears only at commit, whole; abort leaves it as it was;
 *    an empty existing directory is replaced, one holding output only with force (the old output
 *    deleted after the new one is in place), one holding anything else never; a non-directory and
 *    a destination that appeared meanwhile are errors naming it; stale temporaries of dead
 *    processes are deleted at open, those of live ones kept; trailing slashes and symbolic links
 *    put the temporary beside the real directory; the tree removal does not follow links. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "src/atomic_file.h"
#include "tests/util/testutil.h"

static int setup(void **state) { return bv_test_dir_make("atomic"); }
static int teardown(void **state) { return bv_test_dir_remove(); }

static bool exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static void put(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    bv_test_write_bytes(p, text, strlen(text));
}

static char *slurp(const char *dir, const char *name) {
    static char buf[256];
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    if (!f) fail_msg("cannot open %s", p);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* Entries of the test directory whose name starts with `prefix` (hidden ones included). */
static int count_prefix(const char *prefix) {
    DIR *d = opendir(bv_test_dir());
    assert_non_null(d);
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += !strncmp(de->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

/* A pid that belongs to no process: a child that has exited and been reaped. */
static long dead_pid(void) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return (long)pid;
}

static bool owned(const char *name) { return !strcmp(name, "done") || !strncmp(name, "part", 4); }

static const bv_atomic_dir_opts k_opts = {.owned = owned, .complete_name = "done", .what = "test output"};

static void test_files(void **state) {
    const char *p = bv_test_path("f.txt");
    assert_int_equal(bv_atomic_write_file(p, "hello", 5), BV_OK);
    assert_string_equal(slurp(bv_test_dir(), "f.txt"), "hello");
    bv_atomic_file f;
    assert_int_equal(bv_atomic_open(&f, p), BV_OK);
    fputs("other", f.fp);
    bv_atomic_abort(&f);
    assert_string_equal(slurp(bv_test_dir(), "f.txt"), "hello");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), NULL), 1); /* no temporary left */
    assert_int_equal(bv_atomic_write_text(p, "{\"a\": 1}"), BV_OK); /* the text and a final newline */
    assert_string_equal(slurp(bv_test_dir(), "f.txt"), "{\"a\": 1}\n");
    assert_int_equal(bv_test_count_entries(bv_test_dir(), NULL), 1);
}

static void test_dir_make(void **state) {
    char p[700];
    snprintf(p, sizeof p, "%s/a/b/c", bv_test_dir());
    assert_int_equal(bv_atomic_dir_make(p), BV_OK);
    assert_true(exists(p));
    assert_int_equal(bv_atomic_dir_make(p), BV_OK); /* already there */
    put(bv_test_dir(), "file", "x");
    snprintf(p, sizeof p, "%s/file/sub", bv_test_dir());
    assert_int_equal(bv_atomic_dir_make(p), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "file exists and is not a directory");
}

static void test_dir_new_and_abort(void **state) {
    char dest[700];
    snprintf(dest, sizeof dest, "%s", bv_test_path("out"));
    bv_atomic_dir d;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_OK);
    assert_false(d.exists);
    char want[800];
    snprintf(want, sizeof want, "%s/.out.tmp.%ld", bv_test_dir(), (long)getpid());
    assert_string_equal(d.tmp, want);
    put(d.tmp, "part1", "1");
    put(d.tmp, "done", "ok");
    assert_false(exists(dest)); /* nothing appears before the commit */
    assert_int_equal(bv_atomic_dir_commit(&d), BV_OK);
    assert_null(d.tmp);
    assert_string_equal(slurp(dest, "part1"), "1");
    assert_string_equal(slurp(dest, "done"), "ok");
    assert_int_equal(count_prefix(".out."), 0);

    /* abort: the destination as it was, the temporary gone */
    bv_atomic_dir_opts o = k_opts;
    o.force = true;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &o), BV_OK);
    assert_true(d.exists);
    put(d.tmp, "part1", "2");
    bv_atomic_dir_abort(&d);
    assert_string_equal(slurp(dest, "part1"), "1");
    assert_int_equal(count_prefix(".out."), 0);
    bv_atomic_dir_abort(&d); /* harmless on a released d */
}

static void test_dir_replace(void **state) {
    char dest[700];
    snprintf(dest, sizeof dest, "%s", bv_test_path("out"));
    /* an empty directory is replaced without force */
    assert_int_equal(mkdir(dest, 0777), 0);
    bv_atomic_dir d;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_OK);
    put(d.tmp, "part1", "1");
    put(d.tmp, "done", "ok");
    assert_int_equal(bv_atomic_dir_commit(&d), BV_OK);
    assert_string_equal(slurp(dest, "part1"), "1");

    /* complete output: refused without force */
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "already holds test output");
    bv_test_expect_in(bv_error_msg(), "--force");
    assert_null(d.tmp);
    assert_int_equal(count_prefix(".out."), 0);

    /* with force: the old output is replaced whole (part9 of the old one is gone) */
    put(dest, "part9", "old");
    bv_atomic_dir_opts o = k_opts;
    o.force = true;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &o), BV_OK);
    put(d.tmp, "part1", "new");
    put(d.tmp, "done", "ok");
    assert_string_equal(slurp(dest, "part1"), "1"); /* the old one until the commit */
    assert_int_equal(bv_atomic_dir_commit(&d), BV_OK);
    assert_string_equal(slurp(dest, "part1"), "new");
    char p[800];
    snprintf(p, sizeof p, "%s/part9", dest);
    assert_false(exists(p));
    assert_int_equal(count_prefix(".out."), 0);

    /* output of a run that did not finish (no "done"): refused, and not called complete */
    snprintf(p, sizeof p, "%s/done", dest);
    assert_int_equal(unlink(p), 0);
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "earlier run that did not finish");
    bv_test_expect_in(bv_error_msg(), "no done");

    /* a foreign file: never replaced, even with force */
    put(dest, "notes.txt", "mine");
    assert_int_equal(bv_atomic_dir_open(&d, dest, &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "'notes.txt'");
    assert_string_equal(slurp(dest, "notes.txt"), "mine");
    assert_int_equal(count_prefix(".out."), 0);

    /* not a directory */
    put(bv_test_dir(), "plain", "x");
    assert_int_equal(bv_atomic_dir_open(&d, bv_test_path("plain"), &o), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "plain: exists and is not a directory");
    /* a missing parent (without make_parents), then with it */
    snprintf(p, sizeof p, "%s/no/such/out", bv_test_dir());
    assert_int_equal(bv_atomic_dir_open(&d, p, &k_opts), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "does not exist");
    o.make_parents = true;
    assert_int_equal(bv_atomic_dir_open(&d, p, &o), BV_OK);
    assert_int_equal(bv_atomic_dir_commit(&d), BV_OK);
    assert_true(exists(p));
}

static void test_dir_appeared_meanwhile(void **state) {
    char dest[700];
    snprintf(dest, sizeof dest, "%s", bv_test_path("out"));
    bv_atomic_dir d;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_OK);
    put(d.tmp, "part1", "mine");
    assert_int_equal(mkdir(dest, 0777), 0);
    put(dest, "part1", "theirs");
    assert_int_equal(bv_atomic_dir_commit(&d), BV_ERR_IO);
    bv_test_expect_in(bv_error_msg(), "appeared while this run was writing");
    assert_string_equal(slurp(dest, "part1"), "theirs");
    assert_int_equal(count_prefix(".out."), 0);
}

static void test_dir_stale(void **state) {
    char dest[700], p[900], dead_tmp[800], dead_old[800], live[800], other[800];
    snprintf(dest, sizeof dest, "%s", bv_test_path("out"));
    long dead = dead_pid();
    snprintf(dead_tmp, sizeof dead_tmp, "%s/.out.tmp.%ld", bv_test_dir(), dead);
    snprintf(dead_old, sizeof dead_old, "%s/.out.old.%ld", bv_test_dir(), dead);
    snprintf(live, sizeof live, "%s/.out.tmp.%ld", bv_test_dir(), (long)getppid());
    snprintf(other, sizeof other, "%s/.outer.tmp.%ld", bv_test_dir(), dead); /* another destination's */
    const char *dirs[4] = {dead_tmp, dead_old, live, other};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(mkdir(dirs[i], 0777), 0);
        snprintf(p, sizeof p, "%s/sub", dirs[i]);
        assert_int_equal(mkdir(p, 0777), 0);
        put(p, "done", "stale");
    }
    /* a symbolic link inside a stale temporary: removed, its target kept */
    put(bv_test_dir(), "target", "keep me");
    snprintf(p, sizeof p, "%s/link", dead_tmp);
    assert_int_equal(symlink(bv_test_path("target"), p), 0);
    bv_atomic_dir d;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_OK);
    assert_false(exists(dead_tmp));
    assert_false(exists(dead_old));
    assert_true(exists(live));  /* its process is alive: perhaps still writing */
    assert_true(exists(other)); /* not this destination's */
    assert_string_equal(slurp(bv_test_dir(), "target"), "keep me");
    assert_false(exists(dest)); /* a stale temporary is never taken for the output */
    bv_atomic_dir_abort(&d);
    assert_true(exists(live));
}

static void test_dir_paths(void **state) {
    /* a trailing slash */
    char dest[700], p[800];
    snprintf(dest, sizeof dest, "%s/", bv_test_path("out"));
    bv_atomic_dir d;
    assert_int_equal(bv_atomic_dir_open(&d, dest, &k_opts), BV_OK);
    snprintf(p, sizeof p, "%s/.out.tmp.%ld", bv_test_dir(), (long)getpid());
    assert_string_equal(d.tmp, p);
    assert_int_equal(bv_atomic_dir_commit(&d), BV_OK);
    assert_true(exists(bv_test_path("out")));
    /* a symbolic link to a directory elsewhere: the temporary goes beside the target, the link stays */
    char real[700];
    snprintf(real, sizeof real, "%s/elsewhere", bv_test_dir());
    assert_int_equal(mkdir(real, 0777), 0);
    snprintf(p, sizeof p, "%s/real", real);
    assert_int_equal(mkdir(p, 0777), 0);
    assert_int_equal(symlink(p, bv_test_path("link")), 0);
    bv_atomic_dir_opts o = k_opts;
    assert_int_equal(bv_atomic_dir_open(&d, bv_test_path("link"), &o), BV_OK);
    assert_non_null(strstr(d.tmp, "/elsewhere/.real.tmp."));
    put(d.tmp, "done", "via link");
    assert_int_equal(bv_atomic_dir_commit(&d), BV_OK);
    struct stat sb;
    assert_int_equal(lstat(bv_test_path("link"), &sb), 0);
    assert_true(S_ISLNK(sb.st_mode));
    assert_string_equal(slurp(bv_test_path("link"), "done"), "via link");
    /* "/" is refused */
    assert_int_equal(bv_atomic_dir_open(&d, "/", &o), BV_ERR_ARG);
    bv_test_expect_in(bv_error_msg(), "cannot be an output directory");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_make, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_new_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_appeared_meanwhile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_stale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_paths, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
