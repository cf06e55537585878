#include "src/kernels/loss.h"

#include <math.h>

#include "src/common.h"
#include "src/kernels/simd_math.h"

/* below this many elements the kernels run on one thread */
#define PAR_MIN 32768

/* ---- cross-entropy ---- */

/* Count the rows whose target is kept; abort on a target outside [0, V) (programmer error). */
static int64_t check_targets(const int64_t *targets, int64_t N, int64_t V, int64_t ignore_index) {
    int64_t kept = 0;
    for (int64_t n = 0; n < N; n++) {
        int64_t t = targets[n];
        if (t == ignore_index) continue;
        BV_ASSERT(t >= 0 && t < V, "cross_entropy: target %lld of row %lld is outside [0, %lld) and is not the ignore index %lld",
                  (long long)t, (long long)n, (long long)V, (long long)ignore_index);
        kept++;
    }
    return kept;
}

/* rows per dynamic chunk: about 16k logits, at least one row */
static inline int64_t ce_rows_per_chunk(int64_t V) { return V >= 16384 ? 1 : 16384 / V; }

static float row_logsumexp(const float *x, int64_t V) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < V; j++) m = x[j] > m ? x[j] : m;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < V; j++) s += bv_expf_simd(x[j] - m);
    return (float)((double)m + log(s));
}

int64_t bv_k_cross_entropy_fwd(float *loss, float *lse, const float *logits, const int64_t *targets, int64_t N,
                               int64_t V, int64_t ignore_index) {
    int64_t kept = check_targets(targets, N, V, ignore_index);
    int64_t rc = ce_rows_per_chunk(V);
#pragma omp parallel for schedule(dynamic, rc) if (kept * V >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        if (targets[n] == ignore_index) continue;
        lse[n] = row_logsumexp(logits + n * V, V);
    }
    double acc = 0; /* rows in order: independent of the thread count */
    for (int64_t n = 0; n < N; n++) {
        if (targets[n] == ignore_index) continue;
        acc += (double)lse[n] - (double)logits[n * V + targets[n]];
    }
    *loss = kept ? (float)(acc / (double)kept) : 0.0f;
    return kept;
}

void bv_k_cross_entropy_bwd(float *dlogits, const float *logits, const int64_t *targets, const float *lse,
                            float scale, int64_t N, int64_t V, int64_t ignore_index) {
    int64_t rc = ce_rows_per_chunk(V);
#pragma omp parallel for schedule(dynamic, rc) if (N * V >= PAR_MIN)
    for (int64_t n = 0; n < N; n++) {
        int64_t t = targets[n];
        if (t == ignore_index) continue;
        BV_DASSERT(t >= 0 && t < V, "cross_entropy_bwd: target %lld outside [0, %lld)", (long long)t, (long long)V);
        const float *x = logits + n * V;
        float *d = dlogits + n * V;
        const float l = lse[n];
        /* the target column gets scale * (p - 1), computed apart so it is not (scale*p) - scale */
#pragma omp simd
        for (int64_t j = 0; j < t; j++) d[j] += scale * bv_expf_simd(x[j] - l);
#pragma omp simd
        for (int64_t j = t + 1; j < V; j++) d[j] += scale * bv_expf_simd(x[j] - l);
        d[t] += scale * (bv_expf_simd(x[t] - l) - 1.0f);
    }
}

int64_t bv_k_cross_entropy_fwd_ref(double *loss, double *lse, const double *logits, const int64_t *targets,
                                   int64_t N, int64_t V, int64_t ignore_index) {
    int64_t kept = check_targets(targets, N, V, ignore_index);
    double acc = 0;
    for (int64_t n = 0; n < N; n++) {
        if (targets[n] == ignore_index) continue;
        const double *x = logits + n * V;
        double m = -INFINITY, s = 0;
        for (int64_t j = 0; j < V; j++) m = x[j] > m ? x[j] : m;
        for (int64_t j = 0; j < V; j++) s += exp(x[j] - m);
        lse[n] = m + log(s);
        acc += lse[n] - x[targets[n]];
    }
    *loss = kept ? acc / (double)kept : 0.0;
    return kept;
}

void bv_k_cross_entropy_bwd_ref(double *dlogits, const double *logits, const int64_t *targets, const double *lse,
                                double scale, int64_t N, int64_t V, int64_t ignore_index) {
    for (int64_t n = 0; n < N; n++) {
        int64_t t = targets[n];
        if (t == ignore_index) continue;
        for (int64_t j = 0; j < V; j++)
            dlogits[n * V + j] += scale * (exp(logits[n * V + j] - lse[n]) - (j == t ? 1.0 : 0.0));
    }
}

/* ---- L1 and MSE ---- */

/* Fixed chunks (at most MAX_CHUNKS, at least CHUNK_MIN elements each, sizes depending only on n)
 * summed in double, then added in chunk order. */
enum { MAX_CHUNKS = 256, CHUNK_MIN = 4096 };

static int64_t chunk_len(int64_t n) { return BV_MAX((int64_t)CHUNK_MIN, (n + MAX_CHUNKS - 1) / MAX_CHUNKS); }

static double sum_abs_diff(const float *p, const float *t, int64_t n) {
    int64_t ch = chunk_len(n), nch = (n + ch - 1) / ch;
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t c = 0; c < nch; c++) {
        int64_t i1 = BV_MIN(n, (c + 1) * ch);
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = c * ch; i < i1; i++) acc += fabsf(p[i] - t[i]);
        part[c] = acc;
    }
    double acc = 0;
    for (int64_t c = 0; c < nch; c++) acc += part[c];
    return acc;
}

static double sum_sq_diff(const float *p, const float *t, int64_t n) {
    int64_t ch = chunk_len(n), nch = (n + ch - 1) / ch;
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static) if (n >= PAR_MIN)
    for (int64_t c = 0; c < nch; c++) {
        int64_t i1 = BV_MIN(n, (c + 1) * ch);
        double acc = 0;
#pragma omp simd reduction(+ : acc)
        for (int64_t i = c * ch; i < i1; i++) {
            double d = (double)(p[i] - t[i]);
            acc += d * d;
        }
        part[c] = acc;
    }
    double acc = 0;
    for (int64_t c = 0; c < nch; c++) acc += part[c];
    return acc;
}

float bv_k_l1_loss_fwd(const float *pred, const float *target, int64_t n) {
    return (float)(sum_abs_diff(pred, target, n) / (double)n);
}

void bv_k_l1_loss_bwd(float *dpred, float *dtarget, const float *pred, const float *target, float dloss, int64_t n) {
    const float k = (float)((double)dloss / (double)n);
    /* one loop per gradient: a pointer test inside would keep the loop scalar */
    if (dpred) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = pred[i] - target[i];
            dpred[i] += k * (float)((d > 0.0f) - (d < 0.0f));
        }
    }
    if (dtarget) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = pred[i] - target[i];
            dtarget[i] -= k * (float)((d > 0.0f) - (d < 0.0f));
        }
    }
}

double bv_k_l1_loss_fwd_ref(const double *pred, const double *target, int64_t n) {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += fabs(pred[i] - target[i]);
    return acc / (double)n;
}

void bv_k_l1_loss_bwd_ref(double *dpred, double *dtarget, const double *pred, const double *target, double dloss,
                          int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double d = pred[i] - target[i];
        double g = dloss / (double)n * (d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0);
        if (dpred) dpred[i] += g;
        if (dtarget) dtarget[i] -= g;
    }
}

float bv_k_mse_loss_fwd(const float *pred, const float *target, int64_t n) {
    return (float)(sum_sq_diff(pred, target, n) / (double)n);
}

void bv_k_mse_loss_bwd(float *dpred, float *dtarget, const float *pred, const float *target, float dloss,
                       int64_t n) {
    const float k = (float)(2.0 * (double)dloss / (double)n);
    if (dpred) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) dpred[i] += k * (pred[i] - target[i]);
    }
    if (dtarget) {
#pragma omp parallel for simd schedule(static) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) dtarget[i] -= k * (pred[i] - target[i]);
    }
}

double bv_k_mse_loss_fwd_ref(const double *pred, const double *target, int64_t n) {
    double acc = 0;
    for (int64_t i = 0; i < n; i++) acc += (pred[i] - target[i]) * (pred[i] - target[i]);
    return acc / (double)n;
}

void bv_k_mse_loss_bwd_ref(double *dpred, double *dtarget, const double *pred, const double *target, double dloss,
                           int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double g = 2.0 * dloss / (double)n * (pred[i] - target[i]);
        if (dpred) dpred[i] += g;
        if (dtarget) dtarget[i] -= g;
    }
}
