#include "src/kernels/elementwise.h"

#include <math.h>
#include <string.h>

#include "src/common.h"
#include "src/kernels/simd_math.h"

/* Below this many output elements a kernel runs on one thread (thread start-up costs more). */
#define PAR_MIN 32768
/* Forward work item: a span of at most this many elements of one output row. */
#define FWD_CHUNK 16384
/* Backward reduction work item: this many columns of x's gradient, summed over the broadcast rows. */
#define RED_COLS 64

enum { OP_ADD, OP_SUB, OP_MUL };

/* ---- plan ---- */

bv_status bv_k_bcast_plan(bv_bcast *p, int na, const int64_t *shape_a, int nb, const int64_t *shape_b, bool merge) {
    memset(p, 0, sizeof *p);
    if (na < 0 || na > BV_MAX_DIMS || nb < 0 || nb > BV_MAX_DIMS)
        return bv_error_set(BV_ERR_SHAPE, "broadcast: ranks %d and %d (at most %d)", na, nb, BV_MAX_DIMS);
    int nd;
    int64_t shape[BV_MAX_DIMS];
    bv_status st = bv_broadcast_shapes(na, shape_a, nb, shape_b, &nd, shape);
    if (st != BV_OK) return st;
    p->out_ndim = nd;
    memcpy(p->out_shape, shape, (size_t)nd * sizeof *shape);
    /* contiguous strides of a and b on the output's dims; 0 where they are broadcast */
    int64_t sa[BV_MAX_DIMS], sb[BV_MAX_DIMS], ra = 1, rb = 1, n = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int ia = i - (nd - na), ib = i - (nd - nb);
        int64_t da = ia >= 0 ? shape_a[ia] : 1, db = ib >= 0 ? shape_b[ib] : 1;
        sa[i] = da == 1 ? 0 : ra;
        sb[i] = db == 1 ? 0 : rb;
        ra *= da, rb *= db, n *= shape[i];
    }
    p->n = n, p->na = ra, p->nb = rb;
    int k = 0;
    for (int i = 0; i < nd; i++) {
        if (merge && shape[i] == 1) continue;
        /* dim i continues dim k-1 in both operands: one longer dim with i's strides */
        if (merge && k > 0 && p->sa[k - 1] == sa[i] * shape[i] && p->sb[k - 1] == sb[i] * shape[i]) {
            p->shape[k - 1] *= shape[i];
            p->sa[k - 1] = sa[i];
            p->sb[k - 1] = sb[i];
            continue;
        }
        p->shape[k] = shape[i], p->sa[k] = sa[i], p->sb[k] = sb[i];
        k++;
    }
    if (k == 0) { /* scalar result: one dim of size 1 */
        p->shape[0] = 1, p->sa[0] = 0, p->sb[0] = 0;
        k = 1;
    }
    p->ndim = k;
    return BV_OK;
}

/* Offset, with strides s, of the first element of row r (rows = all dims but the last). */
static inline int64_t row_offset(const bv_bcast *p, const int64_t *s, int64_t r) {
    int64_t off = 0;
    for (int d = p->ndim - 2; d >= 0; d--) {
        off += (r % p->shape[d]) * s[d];
        r /= p->shape[d];
    }
    return off;
}

/* ---- fast forward ---- */

#define SIMD_FOR _Pragma("omp simd") for (int64_t j = 0; j < m; j++)
/* o[0..m) = a op b where a and b advance (va, vb true) or stay on their first element */
#define BIN_SPAN(OPX)                                          \
    do {                                                       \
        if (va && vb) {                                        \
            SIMD_FOR o[j] = a[j] OPX b[j];                     \
        } else if (va) {                                       \
            const float s = b[0];                              \
            SIMD_FOR o[j] = a[j] OPX s;                        \
        } else if (vb) {                                       \
            const float s = a[0];                              \
            SIMD_FOR o[j] = s OPX b[j];                        \
        } else {                                               \
            const float v = a[0] OPX b[0];                     \
            SIMD_FOR o[j] = v;                                 \
        }                                                      \
    } while (0)

static inline void binary_span(int op, float *o, const float *a, const float *b, int64_t m, bool va, bool vb) {
    switch (op) {
    case OP_ADD: BIN_SPAN(+); break;
    case OP_SUB: BIN_SPAN(-); break;
    default: BIN_SPAN(*); break;
    }
}

static void binary_fwd(int op, float *out, const float *a, const float *b, const bv_bcast *p) {
    if (p->n == 0) return;
    const int nd = p->ndim;
    const int64_t inner = p->shape[nd - 1], sai = p->sa[nd - 1], sbi = p->sb[nd - 1];
    const int64_t rows = p->n / inner, nch = (inner + FWD_CHUNK - 1) / FWD_CHUNK;
#pragma omp parallel for schedule(static) if (p->n >= PAR_MIN)
    for (int64_t it = 0; it < rows * nch; it++) {
        int64_t r = it / nch, c0 = (it % nch) * FWD_CHUNK, c1 = BV_MIN(inner, c0 + FWD_CHUNK);
        int64_t oa = row_offset(p, p->sa, r) + c0 * sai, ob = row_offset(p, p->sb, r) + c0 * sbi;
        binary_span(op, out + r * inner + c0, a + oa, b + ob, c1 - c0, sai != 0, sbi != 0);
    }
}

void bv_k_add_fwd(float *out, const float *a, const float *b, const bv_bcast *p) { binary_fwd(OP_ADD, out, a, b, p); }
void bv_k_sub_fwd(float *out, const float *a, const float *b, const bv_bcast *p) { binary_fwd(OP_SUB, out, a, b, p); }
void bv_k_mul_fwd(float *out, const float *a, const float *b, const bv_bcast *p) { binary_fwd(OP_MUL, out, a, b, p); }

/* ---- fast backward: gradient of one operand x ----
 * dx (x's layout, strides sx in the plan) += sign * sum over x's broadcast dims of dout * y,
 * where y (strides sy) is the other operand of a product, or NULL for a sum/difference. */

/* Odometer over a subset of the plan's row dims (all but the last), tracking dout and y offsets. */
typedef struct {
    int nd, dims[BV_MAX_DIMS];
    int64_t idx[BV_MAX_DIMS];
    int64_t og, oy; /* current offsets into dout and y */
} odometer;

static void odo_init(odometer *o, const bv_bcast *p, const int64_t *sx, bool want_broadcast) {
    o->nd = 0;
    for (int d = 0; d < p->ndim - 1; d++)
        if ((sx[d] == 0) == want_broadcast) o->dims[o->nd++] = d;
    memset(o->idx, 0, sizeof o->idx);
    o->og = 0, o->oy = 0;
}

static inline int64_t odo_count(const odometer *o, const bv_bcast *p) {
    int64_t c = 1;
    for (int k = 0; k < o->nd; k++) c *= p->shape[o->dims[k]];
    return c;
}

/* Set the odometer to flat position t (over its dims) and return x's offset there. */
static inline int64_t odo_seek(odometer *o, const bv_bcast *p, const int64_t *ostr, const int64_t *sx,
                               const int64_t *sy, int64_t t) {
    int64_t ox = 0;
    o->og = 0, o->oy = 0;
    for (int k = o->nd - 1; k >= 0; k--) {
        int d = o->dims[k];
        int64_t i = t % p->shape[d];
        t /= p->shape[d];
        o->idx[k] = i;
        o->og += i * ostr[d];
        o->oy += i * (sy ? sy[d] : 0);
        ox += i * sx[d];
    }
    return ox;
}

static inline void odo_next(odometer *o, const bv_bcast *p, const int64_t *ostr, const int64_t *sy) {
    for (int k = o->nd - 1; k >= 0; k--) {
        int d = o->dims[k];
        int64_t syd = sy ? sy[d] : 0;
        o->og += ostr[d], o->oy += syd;
        if (++o->idx[k] < p->shape[d]) return;
        o->og -= ostr[d] * p->shape[d], o->oy -= syd * p->shape[d];
        o->idx[k] = 0;
    }
}

static void bcast_grad(float *dx, const int64_t *sx, int64_t nx, const float *dout, const float *y,
                       const int64_t *sy, float sign, const bv_bcast *p) {
    if (!dx || p->n == 0) return;
    const int nd = p->ndim;
    const int64_t inner = p->shape[nd - 1], rows = p->n / inner;
    const int64_t syi = y ? sy[nd - 1] : 0;
    if (nx == p->n) {
        /* x is not broadcast: element-wise, x laid out like the output */
        const int64_t nch = (inner + FWD_CHUNK - 1) / FWD_CHUNK;
#pragma omp parallel for schedule(static) if (p->n >= PAR_MIN)
        for (int64_t it = 0; it < rows * nch; it++) {
            int64_t r = it / nch, c0 = (it % nch) * FWD_CHUNK, m = BV_MIN(inner, c0 + FWD_CHUNK) - c0;
            float *d = dx + r * inner + c0;
            const float *g = dout + r * inner + c0;
            if (!y) {
                SIMD_FOR d[j] += sign * g[j];
            } else {
                const float *yr = y + row_offset(p, sy, r) + c0 * syi;
                if (syi) {
                    SIMD_FOR d[j] += sign * (g[j] * yr[j]);
                } else {
                    const float s = yr[0];
                    SIMD_FOR d[j] += sign * (g[j] * s);
                }
            }
        }
        return;
    }
    /* x is broadcast: each work item owns a disjoint part of dx (a set of kept row indices and, when
     * x has the inner dim, a block of columns) and sums the broadcast rows in a fixed order. */
    int64_t ostr[BV_MAX_DIMS]; /* contiguous strides of the output */
    ostr[nd - 1] = 1;
    for (int d = nd - 2; d >= 0; d--) ostr[d] = ostr[d + 1] * p->shape[d + 1];
    odometer kept0, red0;
    odo_init(&kept0, p, sx, false);
    odo_init(&red0, p, sx, true);
    const int64_t nk = odo_count(&kept0, p), nr = odo_count(&red0, p);
    if (sx[nd - 1] != 0) {
        /* x has the inner dim (stride 1): blocks of columns, accumulated over the broadcast rows */
        const int64_t ncb = (inner + RED_COLS - 1) / RED_COLS;
#pragma omp parallel for schedule(static) if (p->n >= PAR_MIN)
        for (int64_t it = 0; it < nk * ncb; it++) {
            odometer kept = kept0, red = red0;
            int64_t c0 = (it % ncb) * RED_COLS, m = BV_MIN(inner, c0 + RED_COLS) - c0;
            int64_t ox = odo_seek(&kept, p, ostr, sx, sy, it / ncb);
            float acc[RED_COLS];
            SIMD_FOR acc[j] = 0.0f;
            for (int64_t rr = 0; rr < nr; rr++) {
                const float *g = dout + kept.og + red.og + c0;
                if (!y) {
                    SIMD_FOR acc[j] += g[j];
                } else if (syi) {
                    const float *yr = y + kept.oy + red.oy + c0;
                    SIMD_FOR acc[j] += g[j] * yr[j];
                } else {
                    const float s = y[kept.oy + red.oy];
                    SIMD_FOR acc[j] += g[j] * s;
                }
                odo_next(&red, p, ostr, sy);
            }
            float *d = dx + ox + c0;
            SIMD_FOR d[j] += sign * acc[j];
        }
    } else {
        /* x is broadcast along the inner dim: one element of dx per kept row index, a dot product
         * along the inner dim (accumulated in double) for every broadcast row */
#pragma omp parallel for schedule(static) if (p->n >= PAR_MIN)
        for (int64_t k = 0; k < nk; k++) {
            odometer kept = kept0, red = red0;
            const int64_t m = inner;
            int64_t ox = odo_seek(&kept, p, ostr, sx, sy, k);
            double acc = 0.0;
            for (int64_t rr = 0; rr < nr; rr++) {
                const float *g = dout + kept.og + red.og;
                if (!y) {
                    _Pragma("omp simd reduction(+ : acc)") for (int64_t j = 0; j < m; j++) acc += g[j];
                } else if (syi) {
                    const float *yr = y + kept.oy + red.oy;
                    _Pragma("omp simd reduction(+ : acc)") for (int64_t j = 0; j < m; j++) acc += g[j] * yr[j];
                } else {
                    const float s = y[kept.oy + red.oy];
                    _Pragma("omp simd reduction(+ : acc)") for (int64_t j = 0; j < m; j++) acc += g[j] * s;
                }
                odo_next(&red, p, ostr, sy);
            }
            dx[ox] += sign * (float)acc;
        }
    }
}

void bv_k_add_bwd(float *da, float *db, const float *dout, const bv_bcast *p) {
    bcast_grad(da, p->sa, p->na, dout, NULL, NULL, 1.0f, p);
    bcast_grad(db, p->sb, p->nb, dout, NULL, NULL, 1.0f, p);
}

void bv_k_sub_bwd(float *da, float *db, const float *dout, const bv_bcast *p) {
    bcast_grad(da, p->sa, p->na, dout, NULL, NULL, 1.0f, p);
    bcast_grad(db, p->sb, p->nb, dout, NULL, NULL, -1.0f, p);
}

void bv_k_mul_bwd(float *da, float *db, const float *dout, const float *a, const float *b, const bv_bcast *p) {
    /* two passes (not one fused loop) so that da == db (x * x) accumulates correctly */
    bcast_grad(da, p->sa, p->na, dout, b, p->sb, 1.0f, p);
    bcast_grad(db, p->sb, p->nb, dout, a, p->sa, 1.0f, p);
}

/* ---- reference binary ops ---- */

/* Offsets into a and b of flat output element i. */
static void ref_offsets(const bv_bcast *p, int64_t i, int64_t *oa, int64_t *ob) {
    *oa = 0, *ob = 0;
    for (int d = p->ndim - 1; d >= 0; d--) {
        int64_t k = i % p->shape[d];
        i /= p->shape[d];
        *oa += k * p->sa[d];
        *ob += k * p->sb[d];
    }
}

void bv_k_add_fwd_ref(double *out, const double *a, const double *b, const bv_bcast *p) {
    for (int64_t i = 0; i < p->n; i++) {
        int64_t oa, ob;
        ref_offsets(p, i, &oa, &ob);
        out[i] = a[oa] + b[ob];
    }
}

void bv_k_sub_fwd_ref(double *out, const double *a, const double *b, const bv_bcast *p) {
    for (int64_t i = 0; i < p->n; i++) {
        int64_t oa, ob;
        ref_offsets(p, i, &oa, &ob);
        out[i] = a[oa] - b[ob];
    }
}

void bv_k_mul_fwd_ref(double *out, const double *a, const double *b, const bv_bcast *p) {
    for (int64_t i = 0; i < p->n; i++) {
        int64_t oa, ob;
        ref_offsets(p, i, &oa, &ob);
        out[i] = a[oa] * b[ob];
    }
}

void bv_k_add_bwd_ref(double *da, double *db, const double *dout, const bv_bcast *p) {
    for (int64_t i = 0; i < p->n; i++) {
        int64_t oa, ob;
        ref_offsets(p, i, &oa, &ob);
        if (da) da[oa] += dout[i];
        if (db) db[ob] += dout[i];
    }
}

void bv_k_sub_bwd_ref(double *da, double *db, const double *dout, const bv_bcast *p) {
    for (int64_t i = 0; i < p->n; i++) {
        int64_t oa, ob;
        ref_offsets(p, i, &oa, &ob);
        if (da) da[oa] += dout[i];
        if (db) db[ob] -= dout[i];
    }
}

void bv_k_mul_bwd_ref(double *da, double *db, const double *dout, const double *a, const double *b,
                      const bv_bcast *p) {
    for (int64_t i = 0; i < p->n; i++) {
        int64_t oa, ob;
        ref_offsets(p, i, &oa, &ob);
        if (da) da[oa] += dout[i] * b[ob];
        if (db) db[ob] += dout[i] * a[oa];
    }
}

/* ---- unary ops ---- */

/* c ? a : b as a bit blend. A plain float ?: before arithmetic lets GCC move the arithmetic into the
 * branches, and under the default -ftrapping-math it then refuses to if-convert them, so the loop
 * stays scalar; the blend keeps the loop branch-free. */
static inline float select_f32(int c, float a, float b) {
    int32_t m = -(int32_t)(c != 0), ia, ib, ir;
    float r;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    ir = (ia & m) | (ib & ~m);
    memcpy(&r, &ir, sizeof r);
    return r;
}


#define PAR_SIMD_FOR _Pragma("omp parallel for simd schedule(static) if (n >= PAR_MIN)") for (int64_t i = 0; i < n; i++)
#define PAR_FOR _Pragma("omp parallel for schedule(static) if (n >= PAR_MIN)") for (int64_t i = 0; i < n; i++)

static const double GELU_K = 0.79788456080286535588; /* sqrt(2/pi) */
static const double GELU_C = 0.044715;
static const double INV_SQRT2 = 0.70710678118654752440;
static const double INV_SQRT_2PI = 0.39894228040143267794;

void bv_k_scale_fwd(float *out, const float *x, float s, int64_t n) {
    PAR_SIMD_FOR out[i] = s * x[i];
}
void bv_k_scale_bwd(float *dx, const float *dout, float s, int64_t n) {
    PAR_SIMD_FOR dx[i] += s * dout[i];
}
void bv_k_scale_fwd_ref(double *out, const double *x, double s, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = s * x[i];
}
void bv_k_scale_bwd_ref(double *dx, const double *dout, double s, int64_t n) {
    for (int64_t i = 0; i < n; i++) dx[i] += s * dout[i];
}

/* gelu_tanh(x) = x * sigmoid(2u), u = K (x + C x^3); d/dx = s + 2 x s (1 - s) K (1 + 3 C x^2) */
void bv_k_gelu_tanh_fwd(float *out, const float *x, int64_t n) {
    const float K = (float)GELU_K, C = (float)GELU_C;
    PAR_SIMD_FOR {
        float v = x[i];
        float u = K * (v + C * v * v * v);
        out[i] = v / (1.0f + bv_expf_simd(-2.0f * u));
    }
}
void bv_k_gelu_tanh_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    const float K = (float)GELU_K, C = (float)GELU_C;
    PAR_SIMD_FOR {
        float v = x[i], v2 = v * v;
        float e = bv_expf_simd(-2.0f * K * (v + C * v2 * v));
        float s = 1.0f / (1.0f + e);
        float ds = s * (e * s); /* s (1 - s) without cancellation */
        dx[i] += dout[i] * (s + 2.0f * v * ds * K * (1.0f + 3.0f * C * v2));
    }
}
void bv_k_gelu_tanh_fwd_ref(double *out, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        out[i] = 0.5 * v * (1.0 + tanh(GELU_K * (v + GELU_C * v * v * v)));
    }
}
void bv_k_gelu_tanh_bwd_ref(double *dx, const double *dout, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], t = tanh(GELU_K * (v + GELU_C * v * v * v));
        double d = 0.5 * (1.0 + t) + 0.5 * v * (1.0 - t * t) * GELU_K * (1.0 + 3.0 * GELU_C * v * v);
        dx[i] += dout[i] * d;
    }
}

/* gelu_erf(x) = x Phi(x) = 0.5 x erfc(-x / sqrt 2); d/dx = Phi(x) + x phi(x) */
void bv_k_gelu_erf_fwd(float *out, const float *x, int64_t n) {
    const float R = (float)INV_SQRT2;
    PAR_FOR out[i] = 0.5f * x[i] * erfcf(-x[i] * R);
}
void bv_k_gelu_erf_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    const float R = (float)INV_SQRT2, P = (float)INV_SQRT_2PI;
    PAR_FOR {
        float v = x[i];
        float cdf = 0.5f * erfcf(-v * R), pdf = P * bv_expf_simd(-0.5f * v * v);
        dx[i] += dout[i] * (cdf + v * pdf);
    }
}
void bv_k_gelu_erf_fwd_ref(double *out, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = 0.5 * x[i] * (1.0 + erf(x[i] * INV_SQRT2));
}
void bv_k_gelu_erf_bwd_ref(double *dx, const double *dout, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        double cdf = 0.5 * (1.0 + erf(v * INV_SQRT2)), pdf = INV_SQRT_2PI * exp(-0.5 * v * v);
        dx[i] += dout[i] * (cdf + v * pdf);
    }
}

/* relu: NaN propagates (x < 0 is false for NaN); the gradient at 0 is 0 (PyTorch) */
void bv_k_relu_fwd(float *out, const float *x, int64_t n) {
    PAR_SIMD_FOR out[i] = x[i] < 0.0f ? 0.0f : x[i];
}
void bv_k_relu_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    PAR_SIMD_FOR {
        const float g = dout[i]; /* loaded unconditionally, so the select is branch-free */
        dx[i] += x[i] > 0.0f ? g : 0.0f;
    }
}
void bv_k_relu_fwd_ref(double *out, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i] < 0.0 ? 0.0 : x[i];
}
void bv_k_relu_bwd_ref(double *dx, const double *dout, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (x[i] > 0.0) dx[i] += dout[i];
}

/* relu2(x) = relu(x)^2 (NaN propagates); d/dx = 2 relu(x) */
void bv_k_relu2_fwd(float *out, const float *x, int64_t n) {
    PAR_SIMD_FOR {
        const float v = x[i], r = select_f32(v < 0.0f, 0.0f, v);
        out[i] = r * r;
    }
}
void bv_k_relu2_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    PAR_SIMD_FOR {
        const float v = x[i], r = select_f32(v > 0.0f, v, 0.0f);
        dx[i] += dout[i] * (2.0f * r);
    }
}
void bv_k_relu2_fwd_ref(double *out, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double r = x[i] < 0.0 ? 0.0 : x[i];
        out[i] = r * r;
    }
}
void bv_k_relu2_bwd_ref(double *dx, const double *dout, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (x[i] > 0.0) dx[i] += dout[i] * 2.0 * x[i];
}

/* silu(x) = x s, s = sigmoid(x); d/dx = s (1 + x (1 - s)) */
void bv_k_silu_fwd(float *out, const float *x, int64_t n) {
    PAR_SIMD_FOR out[i] = x[i] / (1.0f + bv_expf_simd(-x[i]));
}
void bv_k_silu_bwd(float *dx, const float *dout, const float *x, int64_t n) {
    PAR_SIMD_FOR {
        float v = x[i], e = bv_expf_simd(-v);
        float s = 1.0f / (1.0f + e);
        dx[i] += dout[i] * (s * (1.0f + v * (e * s)));
    }
}
void bv_k_silu_fwd_ref(double *out, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) out[i] = x[i] / (1.0 + exp(-x[i]));
}
void bv_k_silu_bwd_ref(double *dx, const double *dout, const double *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double s = 1.0 / (1.0 + exp(-x[i]));
        dx[i] += dout[i] * s * (1.0 + x[i] * (1.0 - s));
    }
}
