#include "tests/util/testutil.h"

#include <dirent.h>
#include <math.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

uint64_t bv_rng_u64(bv_rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double bv_rng_uniform(bv_rng *r) { return (double)(bv_rng_u64(r) >> 11) / 9007199254740992.0; }

double bv_rng_normal(bv_rng *r) {
    double u1 = bv_rng_uniform(r), u2 = bv_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void bv_rng_fill_f32(bv_rng *r, float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * bv_rng_uniform(r));
}

void bv_rng_fill_f64(bv_rng *r, double *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * bv_rng_uniform(r);
}

void bv_rng_fill_normal_f32(bv_rng *r, float *x, int64_t n, double std) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(std * bv_rng_normal(r));
}

typedef double (*getter)(const void *, int64_t);
static double get_f32(const void *p, int64_t i) { return ((const float *)p)[i]; }
static double get_f64(const void *p, int64_t i) { return ((const double *)p)[i]; }

static void check_close(const char *what, const void *got, getter gg, const void *want, getter gw, int64_t n,
                        double atol, double rtol) {
    int64_t first = -1, worst = -1;
    double worst_ratio = 0;
    for (int64_t i = 0; i < n; i++) {
        double g = gg(got, i), w = gw(want, i);
        double tol = atol + rtol * fabs(w);
        double diff = fabs(g - w);
        double ratio = diff == 0.0 ? 0.0 : diff / tol; /* exact agreement passes even with tol 0 */
        if (!(ratio <= 1.0)) {
            if (first < 0) first = i;
            if (worst < 0 || !(ratio <= worst_ratio)) {
                worst = i;
                worst_ratio = ratio;
            }
        }
    }
    if (first >= 0) {
        double g = gg(got, first), w = gw(want, first);
        double gw2 = gg(got, worst), ww2 = gw(want, worst);
        print_error("%s: first mismatch at index %lld: got %.9g want %.9g (tol %.3g = %.1g + %.1g*|want|); "
                    "worst at index %lld: got %.9g want %.9g (%.3g x tol); %lld elements\n",
                    what, (long long)first, g, w, atol + rtol * fabs(w), atol, rtol, (long long)worst, gw2, ww2,
                    worst_ratio, (long long)n);
        fail_msg("%s: values differ", what);
    }
}

void bv_check_within_dot_bound(const char *what, const float *got, const float *want, const double *bound, int64_t n,
                               int64_t K) {
    int64_t first = -1, worst = -1;
    double worst_ratio = 0;
    for (int64_t i = 0; i < n; i++) {
        double tol = 2.0 * (double)K * 0x1p-24 * bound[i], diff = fabs((double)got[i] - want[i]);
        double ratio = diff == 0.0 ? 0.0 : diff / tol;
        if (!(ratio <= 1.0)) {
            if (first < 0) first = i;
            if (worst < 0 || !(ratio <= worst_ratio)) worst = i, worst_ratio = ratio;
        }
    }
    if (first >= 0) {
        print_error("%s: first mismatch at index %lld: got %.9g want %.9g, more than the %lld-term dot-product "
                    "error bound %.3g; worst at index %lld: got %.9g want %.9g (%.3g x bound); %lld elements\n",
                    what, (long long)first, got[first], want[first], (long long)K,
                    2.0 * (double)K * 0x1p-24 * bound[first], (long long)worst, got[worst], want[worst], worst_ratio,
                    (long long)n);
        fail_msg("%s: values differ beyond the rounding bound", what);
    }
}

void bv_test_linear_bounds(const float *x, const float *w, const float *b, const float *dy, int64_t N, int64_t C,
                           int64_t OC, double *by, double *bdx, double *bdw) {
    for (int64_t i = 0; i < N * OC; i++) by[i] = b ? fabsf(b[i % OC]) : 0.0;
    for (int64_t i = 0; i < N * C; i++) bdx[i] = 0;
    for (int64_t i = 0; i < OC * C; i++) bdw[i] = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t o = 0; o < OC; o++)
            for (int64_t c = 0; c < C; c++) {
                by[i * OC + o] += fabs((double)x[i * C + c] * w[o * C + c]);
                bdx[i * C + c] += fabs((double)dy[i * OC + o] * w[o * C + c]);
                bdw[o * C + c] += fabs((double)dy[i * OC + o] * x[i * C + c]);
            }
}

void bv_check_close_f32(const char *what, const float *got, const float *want, int64_t n, double atol, double rtol) {
    check_close(what, got, get_f32, want, get_f32, n, atol, rtol);
}

void bv_check_close_f32_f64(const char *what, const float *got, const double *want, int64_t n, double atol,
                            double rtol) {
    check_close(what, got, get_f32, want, get_f64, n, atol, rtol);
}

void bv_check_close_f64(const char *what, const double *got, const double *want, int64_t n, double atol,
                        double rtol) {
    check_close(what, got, get_f64, want, get_f64, n, atol, rtol);
}

void bv_check_gradients(const char *what, bv_gradcheck_fn fn, void *user, int n, const bv_tensor *inputs,
                        const bool *check, const bv_gradcheck_opts *opts) {
    bv_gradcheck_result r = bv_gradcheck(fn, user, n, inputs, check, opts);
    char buf[512];
    bv_gradcheck_describe(&r, buf, sizeof buf);
    if (!r.ok || r.n_checked == 0) {
        print_error("gradcheck %s: %s\n", what, r.n_checked ? buf : "no element was checked");
        fail_msg("gradcheck %s failed", what);
    }
}

bv_tensor bv_test_rand_f64(bv_rng *r, int ndim, const int64_t *shape, double lo, double hi) {
    bv_tensor t = bv_tensor_make(NULL, BV_DTYPE_F64, ndim, shape);
    t.data = bv_xmalloc(bv_tensor_nbytes(&t) + 8);
    bv_rng_fill_f64(r, t.data, bv_tensor_numel(&t), lo, hi);
    return t;
}

float *bv_test_rand_f32(bv_rng *r, int64_t n, double lo, double hi) {
    float *x = bv_xmalloc((size_t)(n ? n : 1) * sizeof(float));
    bv_rng_fill_f32(r, x, n, lo, hi);
    return x;
}

float *bv_test_zeros_f32(int64_t n) { return bv_xcalloc((size_t)(n ? n : 1), sizeof(float)); }
double *bv_test_zeros_f64(int64_t n) { return bv_xcalloc((size_t)(n ? n : 1), sizeof(double)); }

float *bv_test_copy_f32(const float *x, int64_t n) {
    float *c = bv_xmalloc((size_t)(n ? n : 1) * sizeof(float));
    memcpy(c, x, (size_t)n * sizeof(float));
    return c;
}

void bv_test_to_f64_into(double *dst, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) dst[i] = x[i];
}

double *bv_test_to_f64(const float *x, int64_t n) {
    double *d = bv_xmalloc((size_t)(n ? n : 1) * sizeof(double));
    bv_test_to_f64_into(d, x, n);
    return d;
}

int64_t *bv_test_rand_ids(bv_rng *r, int64_t n, int64_t hi) {
    int64_t *ids = bv_xmalloc((size_t)(n ? n : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) ids[i] = (int64_t)(bv_rng_uniform(r) * (double)hi);
    return ids;
}

void bv_test_expect_abort(const char *what, void (*fn)(void), const char *n1, const char *n2) {
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        dup2(pfd[1], 2);
        bv_set_num_threads(1);
        fn();
        _exit(0); /* not reached if the assertion fires */
    }
    close(pfd[1]);
    char buf[4096];
    size_t len = 0;
    ssize_t k;
    while (len < sizeof buf - 1 && (k = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0) len += (size_t)k;
    buf[len] = 0;
    close(pfd[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT))
        fail_msg("%s: expected an abort (SIGABRT), child status %d; stderr: %s", what, status, buf);
    if (!strstr(buf, n1) || (n2 && !strstr(buf, n2)))
        fail_msg("%s: message lacks '%s'%s%s: %s", what, n1, n2 ? " / " : "", n2 ? n2 : "", buf);
}

void bv_test_expect_in(const char *msg, const char *want) {
    if (!strstr(msg, want)) fail_msg("message \"%s\" does not mention \"%s\"", msg, want);
}

static char g_test_dir[256];

int bv_test_dir_make(const char *tag) {
    snprintf(g_test_dir, sizeof g_test_dir, "/tmp/bv_test_%s_XXXXXX", tag);
    return mkdtemp(g_test_dir) ? 0 : -1;
}

int bv_test_dir_remove(void) {
    bv_test_rm_tree(g_test_dir);
    return 0;
}

const char *bv_test_dir(void) { return g_test_dir; }

const char *bv_test_path(const char *name) {
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_test_dir, name);
    return buf[k];
}

void bv_test_rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char p[1024];
    while ((de = readdir(d))) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode))
            bv_test_rm_tree(p);
        else
            unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

int bv_test_count_entries(const char *dir, const char *substr) {
    DIR *d = opendir(dir);
    if (!d) fail_msg("cannot read directory %s", dir);
    int c = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && (!substr || strstr(de->d_name, substr))) c++;
    closedir(d);
    return c;
}

void bv_test_write_bytes(const char *path, const void *p, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) fail_msg("cannot create %s", path);
    if (n) assert_int_equal(fwrite(p, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

const char *bv_fixture_path(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", BV_TEST_FIXTURES, name);
    return buf;
}

void bv_fx_open(bv_fx *fx, const char *name) {
    memset(fx, 0, sizeof *fx);
    const char *path = bv_fixture_path(name);
    if (bv_st_open(&fx->f, path) != BV_OK)
        fail_msg("cannot open fixture (regenerate with tests/gen/): %s", bv_error_msg());
}

bv_tensor bv_fx_get(bv_fx *fx, const char *name, bv_dtype dt) {
    int i = bv_st_find(&fx->f, name);
    if (i < 0) fail_msg("fixture %s: no tensor '%s' (regenerate it with its tests/gen/ script)", fx->f.path, name);
    const bv_st_entry *e = &fx->f.entries[i];
    bv_tensor t = bv_tensor_make(NULL, dt, e->ndim, e->shape);
    t.data = bv_xmalloc(bv_tensor_nbytes(&t) + 8);
    if (fx->n_keep == fx->cap_keep) {
        fx->cap_keep = fx->cap_keep ? 2 * fx->cap_keep : 32;
        fx->keep = bv_xrealloc(fx->keep, (size_t)fx->cap_keep * sizeof *fx->keep);
    }
    fx->keep[fx->n_keep++] = t.data;
    if (bv_st_read(&fx->f, name, dt, e->ndim, e->shape, 0, t.data) != BV_OK) fail_msg("%s", bv_error_msg());
    return t;
}

void bv_fx_close(bv_fx *fx) {
    for (int i = 0; i < fx->n_keep; i++) free(fx->keep[i]);
    free(fx->keep);
    bv_st_close(&fx->f);
    memset(fx, 0, sizeof *fx);
}

bv_var *bv_fx_var(bv_fx *fx, bv_graph *g, const char *name, bv_dtype dt) {
    bv_tensor t = bv_fx_get(fx, name, dt);
    return bv_var_wrap(g, &t, true);
}

void bv_fx_expect(bv_fx *fx, const char *what, bv_dtype dt, const void *got, const bv_tensor *got_shape,
                  const char *name, double atol, double rtol) {
    char s1[96], s2[96], w[256];
    bv_tensor want = bv_fx_get(fx, name, BV_DTYPE_F64);
    if (!bv_tensor_same_shape(got_shape, &want))
        fail_msg("%s: shape %s, PyTorch %s", what, bv_tensor_shape_str(got_shape, s1, 96),
                 bv_tensor_shape_str(&want, s2, 96));
    assert_non_null(got);
    snprintf(w, sizeof w, "%s (%s vs PyTorch)", what, bv_dtype_name(dt));
    if (dt == BV_DTYPE_F32)
        bv_check_close_f32_f64(w, got, want.data, bv_tensor_numel(&want), atol, rtol);
    else
        bv_check_close_f64(w, got, want.data, bv_tensor_numel(&want), 1e-12, 1e-12);
}

void bv_fx_backward(bv_fx *fx, bv_graph *g, bv_var *y, const char *dout_name) {
    bv_tensor d = bv_fx_get(fx, dout_name, y->val.dtype);
    assert_int_equal(bv_tensor_numel(&d), bv_var_numel(y));
    bv_graph_backward_seed(g, y, d.data);
}

void bv_fx_check_op(bv_fx *fx, const char *name, int n_in, bv_gradcheck_fn fn, void *user, double tol32) {
    char key[160], what[200];
    BV_ASSERT(n_in <= 8, "bv_fx_check_op: at most 8 inputs");
    for (int dt = 0; dt < 2; dt++) {
        bv_dtype d = dt ? BV_DTYPE_F64 : BV_DTYPE_F32;
        bv_graph g;
        bv_graph_init(&g, 1 << 16);
        bv_var *in[8];
        for (int i = 0; i < n_in; i++) {
            snprintf(key, sizeof key, "%s.in%d", name, i);
            bv_tensor t = bv_fx_get(fx, key, BV_DTYPE_F32);
            in[i] = bv_var_leaf(&g, &t, d, true);
        }
        bv_var *y = fn(&g, in, user);
        snprintf(key, sizeof key, "%s.out", name);
        snprintf(what, sizeof what, "%s forward", name);
        bv_fx_expect(fx, what, d, bv_tensor_ptr(&y->val), &y->val, key, tol32, tol32);
        snprintf(key, sizeof key, "%s.dout", name);
        bv_fx_backward(fx, &g, y, key);
        for (int i = 0; i < n_in; i++) {
            snprintf(key, sizeof key, "%s.grad%d", name, i);
            if (bv_st_find(&fx->f, key) < 0) continue; /* input without a gradient (e.g. a target) */
            if (!in[i]->grad) fail_msg("%s: no gradient reached input %d", name, i);
            snprintf(what, sizeof what, "%s gradient of input %d", name, i);
            bv_fx_expect(fx, what, d, in[i]->grad, &in[i]->val, key, tol32, tol32);
        }
        bv_graph_free(&g);
    }
}

void bv_test_fuzz_seed(const void *p, size_t n) {
    const char *dir = getenv("BV_FUZZ_SEED_DIR");
    if (!dir || !*dir) return;
    uint64_t h = 1469598103934665603ull; /* FNV-1a: one file per distinct text */
    for (size_t i = 0; i < n; i++) h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
    char path[4096];
    snprintf(path, sizeof path, "%s/seed_%016llx.json", dir, (unsigned long long)h);
    bv_test_write_bytes(path, p, n);
}

/* ---- PNG images ---- */

bv_test_image bv_test_read_png(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    uint8_t sig[8];
    if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) fail_msg("%s is not a PNG", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) fail_msg("%s: libpng cannot start", path);
    bv_test_image im = {0};
    png_bytep *rows = NULL;
    if (setjmp(png_jmpbuf(png))) fail_msg("%s: libpng failed to decode it", path);
    png_init_io(png, f);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    im.w = (int)png_get_image_width(png, info);
    im.h = (int)png_get_image_height(png, info);
    png_set_strip_16(png);
    png_set_strip_alpha(png);
    png_set_palette_to_rgb(png);
    png_set_gray_to_rgb(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)im.w * 3)
        fail_msg("%s: %zu bytes per row, not RGB", path, (size_t)png_get_rowbytes(png, info));
    im.rgb = malloc((size_t)im.w * im.h * 3);
    rows = malloc(sizeof *rows * im.h);
    for (int y = 0; y < im.h; y++) rows[y] = im.rgb + (size_t)y * im.w * 3;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    fclose(f);
    return im;
}

uint32_t bv_test_pixel(const bv_test_image *im, int x, int y) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) fail_msg("pixel (%d, %d) outside a %d x %d image", x, y, im->w, im->h);
    const uint8_t *p = im->rgb + ((size_t)y * im->w + x) * 3;
    return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
}
