/* dist.c - data-parallel gradient reduction over MPI (recipes/dist.h). */
#include "recipes/dist.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "src/common.h"

static bool g_active;

bv_status bv_dist_init(int *argc, char ***argv, bv_dist_proc *p) {
    memset(p, 0, sizeof *p);
    p->world = 1;
    p->local_size = 1;
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMIX_RANK") && !getenv("PMI_SIZE")) return BV_OK;
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return bv_error_set(BV_ERR_INTERNAL, "MPI_Init_thread failed (MPI error %d)", rc);
    g_active = true;
    MPI_Comm_rank(MPI_COMM_WORLD, &p->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &p->world);
    MPI_Comm local;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &p->local_rank);
    MPI_Comm_size(local, &p->local_size);
    MPI_Comm_free(&local);
    p->active = true;
    return BV_OK;
}

void bv_dist_finalize(void) {
    if (!g_active) return;
    MPI_Finalize();
    g_active = false;
}

_Noreturn void bv_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    if (g_active) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

void bv_dist_barrier(void) {
    if (g_active) MPI_Barrier(MPI_COMM_WORLD);
}

double bv_dist_tree_sum_double(double *x, int n) {
    if (n <= 0) return 0;
    if (n == 1) return x[0];
    int h = 1;
    while (h * 2 < n) h *= 2;
    return bv_dist_tree_sum_double(x, h) + bv_dist_tree_sum_double(x + h, n - h);
}

double bv_dist_sum_double(double x) {
    if (!g_active) return x;
    int n;
    MPI_Comm_size(MPI_COMM_WORLD, &n);
    double *all = bv_xmalloc((size_t)n * sizeof *all);
    MPI_Allgather(&x, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, MPI_COMM_WORLD);
    double s = bv_dist_tree_sum_double(all, n);
    free(all);
    return s;
}

/* dst = a + dst, element-wise (a the left operand: the tree's order) */
static void add_into(float *restrict dst, const float *restrict a, size_t len) {
#pragma omp parallel for simd schedule(static) if (len >= 65536)
    for (size_t i = 0; i < len; i++) dst[i] = a[i] + dst[i];
}

void bv_dist_tree_sum(float **x, int n, size_t len) {
    if (n <= 1) return;
    int h = 1;
    while (h * 2 < n) h *= 2;
    bv_dist_tree_sum(x, h, len);
    bv_dist_tree_sum(x + h, n - h, len);
    /* x[0] = x[0] + x[h] */
#pragma omp parallel for simd schedule(static) if (len >= 65536)
    for (size_t i = 0; i < len; i++) x[0][i] = x[0][i] + x[h][i];
}

/* ---------------------------------------------------------------- the reduction */

enum { B_IDLE = 0, B_P1, B_SUMMED, B_P2, B_DONE };

struct bv_dist {
    bv_dist_cfg c;
    bv_params *p;
    size_t n;      /* trainable elements */
    int N, r;      /* world, rank */
    int nb;        /* buckets; bucket 0 holds the last elements (their gradients come first) */
    size_t *blo, *bhi;
    size_t *plo;   /* [nb][N + 1] piece bounds */
    int *cnt, *dsp; /* [nb][N] piece sizes and offsets in the bucket (MPI ints) */
    int *rcnt, *rdsp; /* [nb][N] the all-to-all's receive side: my piece from every rank */
    bv_range *owned;
    int n_owned;
    int *owned_of;  /* [nb] index in owned of my piece of bucket b (-1: empty) */
    /* trainable parameters by offset */
    int n_tp;
    size_t *tp_lo, *tp_hi;
    int *bp_lo, *bp_hi; /* [nb] trainable parameters [bp_lo, bp_hi) overlapping bucket b */
    int *first_use;     /* [n_tp] first tape index using it (INT_MAX: unused) */
    int *ready_at;      /* [nb] */
    /* partial sums of the micro-batch tree */
    float **stack;
    int *stack_size;
    int depth, max_depth;
    /* the step's state */
    bool armed;
    int next_start, next_p2;
    int *state, *slot_of;
    MPI_Request *req1, *req2;
    float *rbuf[2];
    int slot_bucket[2];
    size_t rbuf_elems;
    MPI_Comm c1, c2, c3;
    double *chunk; /* [norm chunks] */
    double *losses; /* [A * N] */
    bv_dist_stats st;
};

static double now(void) { return bv_time_now(); }

static int find_tp(const bv_dist *d, size_t off) {
    int lo = 0, hi = d->n_tp - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (d->tp_lo[mid] <= off) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

static size_t *piece(const bv_dist *d, int b) { return d->plo + (size_t)b * (d->N + 1); }

bv_status bv_dist_open(bv_dist **out, bv_params *p, const bv_dist_cfg *c) {
    BV_ASSERT(c->world >= 1 && c->rank >= 0 && c->rank < c->world && c->accumulation >= 1 && c->zero >= 0 &&
                  c->zero <= 1 && c->bucket_bytes > 0,
              "dist: rank %d of %d, A %d, zero %d", c->rank, c->world, c->accumulation, c->zero);
    bv_dist *d = bv_xcalloc(1, sizeof *d);
    d->c = *c;
    d->p = p;
    d->n = p->numel_trainable;
    d->N = c->world;
    d->r = c->rank;
    const size_t C = BV_GRAD_NORM_CHUNK;
    size_t E = (size_t)(c->bucket_bytes / 4.0);
    E = BV_MAX(C, (E + C - 1) / C * C);
    d->nb = d->n ? (int)((d->n + E - 1) / E) : 0;
    int nb = d->nb, N = d->N;
    d->blo = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->blo);
    d->bhi = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->bhi);
    d->plo = bv_xcalloc((size_t)BV_MAX(nb, 1) * (N + 1), sizeof *d->plo);
    d->cnt = bv_xcalloc((size_t)BV_MAX(nb, 1) * N, sizeof *d->cnt);
    d->dsp = bv_xcalloc((size_t)BV_MAX(nb, 1) * N, sizeof *d->dsp);
    d->rcnt = bv_xcalloc((size_t)BV_MAX(nb, 1) * N, sizeof *d->rcnt);
    d->rdsp = bv_xcalloc((size_t)BV_MAX(nb, 1) * N, sizeof *d->rdsp);
    d->owned_of = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->owned_of);
    d->owned = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->owned);
    size_t max_piece = 0;
    for (int b = 0; b < nb; b++) {
        size_t j = (size_t)(nb - 1 - b);
        d->blo[b] = j * E;
        d->bhi[b] = BV_MIN(d->n, (j + 1) * E);
        size_t len = d->bhi[b] - d->blo[b], nc = (len + C - 1) / C;
        size_t *pl = piece(d, b);
        for (int k = 0; k <= N; k++) pl[k] = BV_MIN(d->bhi[b], d->blo[b] + nc * (size_t)k / (size_t)N * C);
        BV_ASSERT(len <= (size_t)INT_MAX, "dist: bucket of %zu elements", len);
        for (int k = 0; k < N; k++) {
            d->cnt[b * N + k] = (int)(pl[k + 1] - pl[k]);
            d->dsp[b * N + k] = (int)(pl[k] - d->blo[b]);
            max_piece = BV_MAX(max_piece, pl[k + 1] - pl[k]);
        }
        size_t mine = pl[d->r + 1] - pl[d->r];
        for (int k = 0; k < N; k++) {
            d->rcnt[b * N + k] = (int)mine;
            d->rdsp[b * N + k] = (int)(mine * (size_t)k);
        }
    }
    /* owned ranges, ascending: buckets from the last to the first */
    if (c->zero) {
        for (int b = nb - 1; b >= 0; b--) {
            size_t *pl = piece(d, b);
            d->owned_of[b] = -1;
            if (pl[d->r + 1] > pl[d->r]) {
                d->owned_of[b] = d->n_owned;
                d->owned[d->n_owned++] = (bv_range){pl[d->r], pl[d->r + 1]};
            }
        }
    } else if (d->n) {
        d->owned[0] = (bv_range){0, d->n};
        d->n_owned = 1;
    }
    /* trainable parameters in offset order, and which overlap each bucket */
    for (int i = 0; i < p->n; i++) d->n_tp += p->items[i].trainable;
    d->tp_lo = bv_xcalloc((size_t)BV_MAX(d->n_tp, 1), sizeof *d->tp_lo);
    d->tp_hi = bv_xcalloc((size_t)BV_MAX(d->n_tp, 1), sizeof *d->tp_hi);
    d->first_use = bv_xcalloc((size_t)BV_MAX(d->n_tp, 1), sizeof *d->first_use);
    for (int i = 0, k = 0; i < p->n; i++)
        if (p->items[i].trainable) {
            d->tp_lo[k] = p->items[i].offset;
            d->tp_hi[k] = p->items[i].offset + (size_t)p->items[i].numel;
            BV_ASSERT(k == 0 || d->tp_lo[k] >= d->tp_hi[k - 1], "dist: trainable parameters out of offset order");
            k++;
        }
    d->bp_lo = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->bp_lo);
    d->bp_hi = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->bp_hi);
    d->ready_at = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->ready_at);
    d->state = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->state);
    d->slot_of = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->slot_of);
    d->req1 = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->req1);
    d->req2 = bv_xcalloc((size_t)BV_MAX(nb, 1), sizeof *d->req2);
    for (int b = 0; b < nb; b++) {
        d->bp_lo[b] = find_tp(d, d->blo[b]);
        d->bp_hi[b] = find_tp(d, d->bhi[b] - 1) + 1;
        d->req1[b] = d->req2[b] = MPI_REQUEST_NULL;
    }
    d->chunk = bv_xcalloc(BV_MAX(bv_grad_norm_chunks(d->n), (size_t)1), sizeof *d->chunk);
    d->losses = bv_xcalloc((size_t)c->accumulation * N, sizeof *d->losses);
    d->st.buckets = nb;
    /* the tree's partial sums: at most floor(log2 A) of them */
    if (c->exact)
        for (int a = c->accumulation; a > 1; a /= 2) d->max_depth++;
    d->stack = bv_xcalloc((size_t)BV_MAX(d->max_depth, 1), sizeof *d->stack);
    d->stack_size = bv_xcalloc((size_t)BV_MAX(d->max_depth, 1), sizeof *d->stack_size);
    d->rbuf_elems = N > 1 ? max_piece * (size_t)N : 0;
    double bytes = bv_dist_buffer_bytes(d);
    bv_status st = bytes > 0 ? bv_mem_check(bytes, "the data-parallel reduction's buffers") : BV_OK;
    for (int s = 0; s < 2 && !st && d->rbuf_elems; s++) {
        d->rbuf[s] = bv_aligned_alloc_try(d->rbuf_elems * sizeof(float));
        if (!d->rbuf[s]) st = bv_error_set(BV_ERR_NOMEM, "the all-reduce's receive buffers: %.0f bytes", bytes);
        d->slot_bucket[s] = -1;
    }
    if (!st && g_active && N > 1) {
        MPI_Comm_dup(MPI_COMM_WORLD, &d->c1);
        MPI_Comm_dup(MPI_COMM_WORLD, &d->c2);
        MPI_Comm_dup(MPI_COMM_WORLD, &d->c3);
    }
    if (!st && N > 1 && !g_active)
        st = bv_error_set(BV_ERR_ARG, "dist: world size %d without MPI (start the ranks with mpirun)", N);
    if (st) {
        bv_dist_free(d);
        return st;
    }
    *out = d;
    return BV_OK;
}

void bv_dist_free(bv_dist *d) {
    if (!d) return;
    /* the duplicated communicators are left to MPI_Finalize (freeing them is collective, and an
     * error path must not wait for the other ranks) */
    for (int s = 0; s < 2; s++) bv_aligned_free(d->rbuf[s]);
    for (int s = 0; s < d->max_depth; s++) bv_aligned_free(d->stack[s]);
    free(d->stack);
    free(d->stack_size);
    free(d->blo), free(d->bhi), free(d->plo), free(d->cnt), free(d->dsp), free(d->rcnt), free(d->rdsp);
    free(d->owned), free(d->owned_of);
    free(d->tp_lo), free(d->tp_hi), free(d->first_use), free(d->bp_lo), free(d->bp_hi), free(d->ready_at);
    free(d->state), free(d->slot_of), free(d->req1), free(d->req2);
    free(d->chunk), free(d->losses);
    free(d);
}

double bv_dist_buffer_bytes(const bv_dist *d) {
    return 2.0 * (double)d->rbuf_elems * 4.0 + (double)d->max_depth * (double)d->n * 4.0;
}

int bv_dist_owned(const bv_dist *d, const bv_range **ranges) {
    *ranges = d->owned;
    return d->n_owned;
}

float bv_dist_seed(const bv_dist *d) { return 1.0f / (float)(d->c.accumulation * d->N); }

const bv_dist_stats *bv_dist_last_stats(const bv_dist *d) { return &d->st; }

/* ---- the phases of one bucket ---- */

static void wait_req(bv_dist *d, MPI_Request *rq) {
    double t = now();
    MPI_Wait(rq, MPI_STATUS_IGNORE);
    double dt = now() - t;
    d->st.wait_s += dt;
    d->st.comm_s += dt;
}

static void start_p2_in_order(bv_dist *d) {
    while (d->next_p2 < d->nb && d->state[d->next_p2] == B_SUMMED) {
        int b = d->next_p2++;
        double t = now();
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, d->p->grads + d->blo[b], d->cnt + b * d->N,
                        d->dsp + b * d->N, MPI_FLOAT, d->c2, &d->req2[b]);
        d->st.comm_s += now() - t;
        d->st.bytes_sent += 4.0 * (double)d->cnt[b * d->N + d->r] * (d->N - 1);
        d->state[b] = B_P2;
    }
}

/* the all-to-all of bucket b arrived: sum the N copies of my piece in rank order */
static void complete_p1(bv_dist *d, int b) {
    int s = d->slot_of[b];
    size_t mine = (size_t)d->rcnt[b * d->N];
    float *ptr[1024], **pp = d->N <= 1024 ? ptr : bv_xmalloc((size_t)d->N * sizeof *pp);
    for (int k = 0; k < d->N; k++) pp[k] = d->rbuf[s] + mine * (size_t)k;
    bv_dist_tree_sum(pp, d->N, mine);
    memcpy(d->p->grads + piece(d, b)[d->r], pp[0], mine * sizeof(float));
    if (pp != ptr) free(pp);
    d->slot_bucket[s] = -1;
    if (d->c.zero) {
        d->state[b] = B_DONE;
    } else {
        d->state[b] = B_SUMMED;
        start_p2_in_order(d);
    }
}

/* fold the micro-batch tree's partial sums into bucket b: g = s + g, from the top of the stack */
static void fold_local(bv_dist *d, size_t lo, size_t hi) {
    for (int s = d->depth - 1; s >= 0; s--) add_into(d->p->grads + lo, d->stack[s] + lo, hi - lo);
}

/* a free receive buffer, or -1 */
static int free_slot(const bv_dist *d) { return d->slot_bucket[0] < 0 ? 0 : d->slot_bucket[1] < 0 ? 1 : -1; }

/* Start bucket b's reduce-scatter in receive buffer s (its gradients are final). */
static void start_bucket(bv_dist *d, int b, int s) {
    fold_local(d, d->blo[b], d->bhi[b]);
    if (d->N == 1) {
        d->state[b] = B_DONE;
        return;
    }
    d->slot_bucket[s] = b;
    d->slot_of[b] = s;
    double t = now();
    MPI_Ialltoallv(d->p->grads + d->blo[b], d->cnt + b * d->N, d->dsp + b * d->N, MPI_FLOAT, d->rbuf[s],
                   d->rcnt + b * d->N, d->rdsp + b * d->N, MPI_FLOAT, d->c1, &d->req1[b]);
    d->st.comm_s += now() - t;
    size_t len = d->bhi[b] - d->blo[b], mine = (size_t)d->cnt[b * d->N + d->r];
    d->st.bytes_sent += 4.0 * (double)(len - mine);
    d->state[b] = B_P1;
}

/* Start the next bucket in order, waiting for a receive buffer when both are busy (after the
 * backward pass: there is nothing else to do). */
static void start_next_blocking(bv_dist *d) {
    int s = d->N == 1 ? 0 : free_slot(d);
    if (s < 0) { /* finish the older bucket */
        int ob = BV_MIN(d->slot_bucket[0], d->slot_bucket[1]);
        wait_req(d, &d->req1[ob]);
        complete_p1(d, ob);
        s = free_slot(d);
    }
    start_bucket(d, d->next_start++, s);
}

/* let MPI move the messages of what is in flight; finish what arrived */
static void poll(bv_dist *d) {
    if (d->N == 1) return;
    double t = now();
    for (int s = 0; s < 2; s++) {
        int b = d->slot_bucket[s], flag = 0;
        if (b < 0) continue;
        MPI_Test(&d->req1[b], &flag, MPI_STATUS_IGNORE);
        if (flag) complete_p1(d, b);
    }
    for (int b = 0; b < d->next_p2; b++)
        if (d->state[b] == B_P2) {
            int flag = 0;
            MPI_Test(&d->req2[b], &flag, MPI_STATUS_IGNORE);
            if (flag) d->state[b] = B_DONE;
            break; /* one test moves every pending operation */
        }
    d->st.comm_s += now() - t;
}

/* After tape entry i (descending): start the buckets whose gradients are final, in order, as long
 * as a receive buffer is free; never block here (the other ranks move the messages only between
 * their own tape entries: a blocking wait in the middle of backward would wait for their GEMMs). */
static void progress(bv_dist *d, int i) {
    poll(d);
    int s;
    while (d->next_start < d->nb && d->ready_at[d->next_start] >= i && (s = d->N == 1 ? 0 : free_slot(d)) >= 0) {
        start_bucket(d, d->next_start, s);
        d->next_start++;
        poll(d);
    }
}

static void hook_begin(void *ctx, const bv_graph *g) {
    bv_dist *d = ctx;
    if (!d->armed) return;
    for (int k = 0; k < d->n_tp; k++) d->first_use[k] = INT_MAX;
    const float *base = d->p->grads;
    for (int i = 0; i < g->n_tape; i++) {
        const bv_tape_entry *e = &g->tape[i];
        for (int j = 0; j < e->n_in; j++) {
            const bv_var *v = e->in[j];
            if (!v || !v->is_param || !v->grad) continue;
            const float *gp = v->grad;
            if (gp < base || gp >= base + d->n) continue;
            int k = find_tp(d, (size_t)(gp - base));
            if (d->first_use[k] > i) d->first_use[k] = i;
        }
    }
    for (int b = 0; b < d->nb; b++) {
        int r = INT_MAX;
        for (int k = d->bp_lo[b]; k < d->bp_hi[b]; k++) r = BV_MIN(r, d->first_use[k]);
        d->ready_at[b] = r == INT_MAX ? g->n_tape : r;
    }
    progress(d, g->n_tape);
}

static void hook_entry_done(void *ctx, const bv_graph *g, int i) {
    bv_dist *d = ctx;
    if (d->armed) progress(d, i);
}

void bv_dist_attach(bv_dist *d, bv_graph *g) {
    g->hook_begin = hook_begin;
    g->hook_entry_done = hook_entry_done;
    g->hook_ctx = d;
}

void bv_dist_micro_begin(bv_dist *d, int a) {
    if (a == 0) {
        memset(&d->st, 0, sizeof d->st);
        d->st.buckets = d->nb;
        d->depth = 0;
        d->next_start = d->next_p2 = 0;
        for (int b = 0; b < d->nb; b++) {
            d->state[b] = B_IDLE;
            d->ready_at[b] = INT_MAX; /* until the last backward's tape says */
        }
    }
    d->armed = a == d->c.accumulation - 1 && d->N > 1;
}

/* exact mode, a micro-batch before the last: its gradient joins the binary counter */
static bv_status push(bv_dist *d) {
    float *g = d->p->grads;
    int size = 1;
    while (d->depth > 0 && d->stack_size[d->depth - 1] == size) {
        add_into(g, d->stack[d->depth - 1], d->n);
        size += d->stack_size[--d->depth];
    }
    BV_ASSERT(d->depth < d->max_depth, "dist: tree depth %d of %d", d->depth, d->max_depth);
    if (!d->stack[d->depth]) {
        d->stack[d->depth] = bv_aligned_alloc_try(BV_MAX(d->n, (size_t)1) * sizeof(float));
        if (!d->stack[d->depth])
            return bv_error_set(BV_ERR_NOMEM, "the micro-batch tree's partial sums: %.0f bytes", 4.0 * (double)d->n);
    }
    memcpy(d->stack[d->depth], g, d->n * sizeof(float));
    d->stack_size[d->depth++] = size;
    memset(g, 0, d->n * sizeof(float));
    return BV_OK;
}

bv_status bv_dist_micro_end(bv_dist *d, int a) {
    if (a < d->c.accumulation - 1) return d->c.exact ? push(d) : BV_OK;
    d->armed = false;
    if (d->N == 1) {
        fold_local(d, 0, d->n);
        d->depth = 0;
        return BV_OK;
    }
    while (d->next_start < d->nb) start_next_blocking(d);
    for (int b = 0; b < d->nb; b++)
        if (d->state[b] == B_P1) {
            wait_req(d, &d->req1[b]);
            complete_p1(d, b);
        }
    for (int b = 0; b < d->nb; b++)
        if (d->state[b] == B_P2) {
            wait_req(d, &d->req2[b]);
            d->state[b] = B_DONE;
        }
    d->depth = 0;
    return BV_OK;
}

double bv_dist_loss(bv_dist *d, const double *micro) {
    int A = d->c.accumulation, K = A * d->N;
    if (d->N > 1) {
        double t = now();
        MPI_Allgather(micro, A, MPI_DOUBLE, d->losses, A, MPI_DOUBLE, d->c3);
        d->st.comm_s += now() - t;
    } else {
        memcpy(d->losses, micro, (size_t)A * sizeof *micro);
    }
    return bv_dist_tree_sum_double(d->losses, K) / K;
}

int64_t bv_dist_first_nonfinite(bv_dist *d, float *value) {
    if (!d->c.zero || d->N == 1) {
        int64_t bad = bv_grad_first_nonfinite(d->p->grads, d->n);
        *value = bad >= 0 ? d->p->grads[bad] : 0;
        return bad;
    }
    int64_t mine = INT64_MAX, all = INT64_MAX;
    for (int i = 0; i < d->n_owned && mine == INT64_MAX; i++) {
        int64_t k = bv_grad_first_nonfinite(d->p->grads + d->owned[i].lo, d->owned[i].hi - d->owned[i].lo);
        if (k >= 0) mine = (int64_t)d->owned[i].lo + k;
    }
    MPI_Allreduce(&mine, &all, 1, MPI_INT64_T, MPI_MIN, d->c3);
    if (all == INT64_MAX) {
        *value = 0;
        return -1;
    }
    /* its owner says what it is */
    int owner = 0;
    for (int b = 0; b < d->nb; b++)
        if ((size_t)all >= d->blo[b] && (size_t)all < d->bhi[b])
            for (int k = 0; k < d->N; k++)
                if ((size_t)all >= piece(d, b)[k] && (size_t)all < piece(d, b)[k + 1]) owner = k;
    float v = d->p->grads[all];
    MPI_Bcast(&v, 1, MPI_FLOAT, owner, d->c3);
    *value = v;
    return all;
}

double bv_dist_grad_norm(bv_dist *d) {
    if (!d->c.zero || d->N == 1) return bv_grad_norm(d->p->grads, d->n);
    size_t nc = bv_grad_norm_chunks(d->n);
    memset(d->chunk, 0, nc * sizeof *d->chunk);
    for (int i = 0; i < d->n_owned; i++) bv_grad_sumsq_chunks(d->p->grads, d->n, d->owned[i].lo, d->owned[i].hi, d->chunk);
    bv_dist_sum_doubles(d, d->chunk, (int)nc);
    return bv_grad_norm_of_chunks(d->chunk, d->n);
}

void bv_dist_clip(bv_dist *d, double norm, double max_norm) {
    for (int i = 0; i < d->n_owned; i++)
        bv_grad_clip(d->p->grads + d->owned[i].lo, d->owned[i].hi - d->owned[i].lo, norm, max_norm);
}

bv_status bv_dist_after_update(bv_dist *d) {
    if (!d->c.zero || d->N == 1) return BV_OK;
    double t0 = now();
    for (int b = 0; b < d->nb; b++) {
        MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, d->p->values + d->blo[b], d->cnt + b * d->N,
                        d->dsp + b * d->N, MPI_FLOAT, d->c2, &d->req2[b]);
        d->st.bytes_sent += 4.0 * (double)d->cnt[b * d->N + d->r] * (d->N - 1);
    }
    double t1 = now();
    MPI_Waitall(d->nb, d->req2, MPI_STATUSES_IGNORE);
    double t2 = now();
    d->st.wait_s += t2 - t1;
    d->st.comm_s += t2 - t0;
    bv_params_mark_updated(d->p);
    return BV_OK;
}

void bv_dist_sum_doubles(bv_dist *d, double *x, int n) {
    if (d->N == 1 || n == 0) return;
    double t = now();
    MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, MPI_SUM, d->c3);
    d->st.comm_s += now() - t;
}

bv_status bv_dist_write_moments(bv_dist *d, const bv_adamw *o, FILE *fp, const char *what) {
    BV_ASSERT(d->c.zero, "bv_dist_write_moments: the moments are not sharded");
    BV_ASSERT((d->r == 0) == (fp != NULL), "bv_dist_write_moments: rank %d %s a file", d->r, fp ? "with" : "without");
    bv_status st = BV_OK;
    size_t cap = 0;
    for (int b = 0; b < d->nb; b++) cap = BV_MAX(cap, d->bhi[b] - d->blo[b]);
    float *buf = d->r == 0 && d->N > 1 ? bv_aligned_alloc_try(BV_MAX(cap, (size_t)1) * sizeof(float)) : NULL;
    if (d->r == 0 && d->N > 1 && !buf)
        st = bv_error_set(BV_ERR_NOMEM, "%s: a bucket of %zu moments to write", what, cap);
    double t = now();
    for (int j = 0; j < 2; j++) {
        const float *src = j ? o->v : o->m;
        for (int b = d->nb - 1; b >= 0; b--) { /* ascending addresses */
            int oi = d->owned_of[b];
            const float *mine = oi >= 0 ? src + o->range_moff[oi] : src;
            size_t len = d->bhi[b] - d->blo[b];
            const float *out = mine;
            if (d->N > 1) { /* every rank takes part even after rank 0 failed to write: no one waits forever */
                MPI_Gatherv(mine, d->cnt[b * d->N + d->r], MPI_FLOAT, buf, d->cnt + b * d->N, d->dsp + b * d->N,
                            MPI_FLOAT, 0, d->c3);
                out = buf;
            }
            if (fp && !st && fwrite(out, sizeof(float), len, fp) != len)
                st = bv_error_set(BV_ERR_IO, "%s: writing the AdamW moments failed (%s)", what, strerror(errno));
        }
    }
    d->st.comm_s += now() - t;
    bv_aligned_free(buf);
    return st;
}

/* ---------------------------------------------------------------- independent work */

int bv_dist_world_size(void) {
    int n = 1;
    if (g_active) MPI_Comm_size(MPI_COMM_WORLD, &n);
    return n;
}

void bv_dist_sum_ints(int *x, int n) {
    if (!g_active || n <= 0) return;
    MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
}

struct bv_dist_tally {
    int n, world;
    bool in_flight;
    int64_t *send, *recv; /* n; world x n */
    MPI_Request req;
};

bv_dist_tally *bv_dist_tally_open(int n) {
    BV_ASSERT(n >= 1, "bv_dist_tally_open: %d counters", n);
    bv_dist_tally *t = bv_xcalloc(1, sizeof *t);
    t->n = n;
    t->world = bv_dist_world_size();
    t->send = bv_xcalloc((size_t)n, sizeof *t->send);
    t->recv = bv_xcalloc((size_t)n * t->world, sizeof *t->recv);
    t->req = MPI_REQUEST_NULL;
    return t;
}

bool bv_dist_tally_poll(bv_dist_tally *t, const int64_t *mine, int64_t *all) {
    if (!g_active) {
        memcpy(all, mine, (size_t)t->n * sizeof *all);
        return true;
    }
    if (!t->in_flight) {
        memcpy(t->send, mine, (size_t)t->n * sizeof *t->send);
        /* on MPI_COMM_WORLD: every rank issues the same collectives in the same order (the
         * evaluation's exchanges, then its sums), so no communicator of its own is needed */
        MPI_Iallgather(t->send, t->n, MPI_INT64_T, t->recv, t->n, MPI_INT64_T, MPI_COMM_WORLD, &t->req);
        t->in_flight = true;
    }
    int done = 0;
    MPI_Test(&t->req, &done, MPI_STATUS_IGNORE);
    if (!done) return false;
    t->in_flight = false;
    memcpy(all, t->recv, (size_t)t->n * t->world * sizeof *all);
    return true;
}

void bv_dist_tally_free(bv_dist_tally *t) {
    if (!t) return;
    BV_ASSERT(!t->in_flight, "bv_dist_tally_free: an exchange is in flight");
    free(t->send);
    free(t->recv);
    free(t);
}
