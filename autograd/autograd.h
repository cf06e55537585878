/* autograd.h - define-by-run reverse-mode automatic differentiation.
 *
 * Owns: a bv_graph owns an arena (every bv_var, activation value, activation gradient and saved
 * tensor of the current step) and a tape (one entry per recorded op, in execution order).
 * bv_graph_reset() frees all of that at once; the tape's array and the arena's block are kept, so
 * after a warm-up step the step loop does no malloc.
 * Parameters are NOT owned: bv_var_param() wraps a bv_params entry, the value and the gradient
 * point into the store's flat buffers, and backward accumulates (+=) into them. Frozen parameters
 * have requires_grad = false: no weight gradient is computed, but gradients still flow through
 * them into inputs that need them.
 *
 * Dtypes: a differentiable var is F32 (training; fast OpenMP/BLAS kernels) or F64 (gradient
 * checks; the plain double-precision reference kernels). All inputs of one op share the dtype.
 * Index inputs (token ids, position ids, masks) are plain bv_tensors (I64 / U8), not vars.
 *
 * Every op returns a new var with a contiguous value. Gradients are allocated lazily (zeroed, from
 * the arena) the first time a gradient reaches a var. Backward functions accumulate with +=.
 * Must not: call MPI, do I/O, or allocate outside the graph's arena in the step loop.
 *
 * Adding an op (see docs/architecture.md): kernels in src/kernels/<family>.{h,c} (fast f32 +
 * double reference, forward and backward), the op in autograd/ops_<family>.c (forward dispatch,
 * bv_graph_record with a backward function), a gradient check and a PyTorch fixture in tests/.
 */
#ifndef BV_AUTOGRAD_H
#define BV_AUTOGRAD_H

#include <stdbool.h>

#include "src/arena.h"
#include "src/kernels/ternary_gemm.h"
#include "src/params.h"
#include "src/tensor.h"
#include "src/ternary_pack.h"

typedef struct bv_var {
    bv_tensor val;      /* contiguous value (F32 or F64 for differentiable vars) */
    void *grad;         /* same dtype and numel as val; NULL until a gradient reaches this var */
    bool requires_grad; /* leaf that wants a gradient, or result of an op with such an input */
    bool is_param;      /* grad points into a bv_params flat buffer */
    const char *name;   /* parameter name or NULL (borrowed) */
} bv_var;

struct bv_graph;
struct bv_tape_entry;
typedef void (*bv_backward_fn)(struct bv_graph *g, const struct bv_tape_entry *e);

typedef struct bv_tape_entry {
    const char *op;     /* op name, for debugging */
    bv_backward_fn fn;
    bv_var *out;
    bv_var **in;        /* n_in inputs (arena) */
    int n_in;
    void *saved;        /* op-specific saved state (arena) */
} bv_tape_entry;

typedef struct bv_graph {
    bv_arena arena;
    bv_tape_entry *tape;
    int n_tape, cap_tape;
    int no_grad;        /* > 0 inside no_grad regions: ops record nothing */
    void *scratch;      /* temporary buffer shared by all ops (see bv_graph_scratch) */
    size_t scratch_cap;
    size_t scratch_grows; /* number of times the scratch buffer was (re)allocated */
    /* Backward hooks (NULL: none; kept across bv_graph_reset): begin is called once the seed is
     * in place, before the first tape entry runs; entry_done after tape entry i has run (or was
     * passed over: no gradient reached it), i descending. After entry i, every parameter whose
     * first use in the tape is at index >= i has its final gradient: the data-parallel reduction
     * (recipes/dist.h) starts a bucket's all-reduce there, while the rest of backward runs. */
    void (*hook_begin)(void *ctx, const struct bv_graph *g);
    void (*hook_entry_done)(void *ctx, const struct bv_graph *g, int i);
    void *hook_ctx;
} bv_graph;

void bv_graph_init(bv_graph *g, size_t arena_bytes);
void bv_graph_free(bv_graph *g);
/* Forget every var and tape entry of the step (parameter gradients are untouched). */
void bv_graph_reset(bv_graph *g);
/* Inside no_grad: drop a block's temporaries. m = bv_graph_mark(g) before the block; after it,
 * y = bv_graph_keep(g, m, out) copies `out` (contiguous) into the arena right at m and frees
 * everything allocated since m, so a forward without a graph holds one layer's activations at a
 * time, not all of them. Vars allocated after m other than `out` are invalid afterwards. */
bv_arena_mark bv_graph_mark(const bv_graph *g);
bv_var *bv_graph_keep(bv_graph *g, bv_arena_mark m, bv_var *out);
/* no_grad regions nest (teacher forward, evaluation). */
void bv_graph_no_grad_begin(bv_graph *g);
void bv_graph_no_grad_end(bv_graph *g);
/* Backward from a scalar (numel 1) var: seeds d loss = 1 and runs the tape in reverse. */
void bv_graph_backward(bv_graph *g, bv_var *loss);
/* Backward from any var with an explicit seed gradient (same dtype/numel as out->val). */
void bv_graph_backward_seed(bv_graph *g, bv_var *out, const void *seed);

/* ---- vars ---- */
/* A leaf holding a copy of `t` (converted to dtype `dt`, F32 or F64). */
bv_var *bv_var_leaf(bv_graph *g, const bv_tensor *t, bv_dtype dt, bool requires_grad);
/* A leaf that borrows `t`'s data (t must be contiguous F32/F64; no copy). */
bv_var *bv_var_wrap(bv_graph *g, const bv_tensor *t, bool requires_grad);
/* A var for parameter i of the store (value and gradient borrowed from the flat buffers). */
bv_var *bv_var_param(bv_graph *g, const bv_params *p, int i);
/* For op implementations: a new var with an uninitialised contiguous value. */
bv_var *bv_var_new(bv_graph *g, bv_dtype dt, int ndim, const int64_t *shape);
bv_var *bv_var_like(bv_graph *g, const bv_var *x);
/* For op implementations: the var's gradient buffer, allocated zeroed on first use. */
void *bv_var_grad(bv_graph *g, bv_var *v);
static inline bool bv_var_is_f64(const bv_var *v) { return v->val.dtype == BV_DTYPE_F64; }
static inline float *bv_var_f32(const bv_var *v) { return (float *)bv_tensor_ptr(&v->val); }
static inline double *bv_var_f64(const bv_var *v) { return (double *)bv_tensor_ptr(&v->val); }
static inline int64_t bv_var_numel(const bv_var *v) { return bv_tensor_numel(&v->val); }

/* For op implementations: true when the op must be recorded (not in no_grad and some input
 * requires a gradient). */
bool bv_graph_should_record(const bv_graph *g, int n_in, bv_var *const *in);
/* Record an op on the tape (does nothing and returns NULL when should_record is false); marks
 * out->requires_grad. `saved` must be arena memory (or NULL). */
bv_tape_entry *bv_graph_record(bv_graph *g, const char *op, bv_backward_fn fn, bv_var *out, int n_in,
                               bv_var *const *in, void *saved);
/* Arena allocation for saved state. */
void *bv_graph_alloc(bv_graph *g, size_t bytes);
/* Temporary working memory for one kernel call (64-byte aligned, uninitialised). Valid until the
 * next bv_graph_scratch call; never use it for anything that must survive the op. One buffer
 * for the whole graph, grown to the largest request, kept across resets (no malloc after warm-up). */
void *bv_graph_scratch(bv_graph *g, size_t bytes);

/* ---- ops (each returns a new var; shapes in comments) ---- */
/* matmul family (ops_matmul.c) */
/* x (..., C), w (OC, C), b (OC) or NULL -> (..., OC) = x w^T + b */
bv_var *bv_op_linear(bv_graph *g, bv_var *x, bv_var *w, bv_var *b);
/* a (..., M, K) [(..., K, M) if ta], b (..., K, N) [(..., N, K) if tb] -> (..., M, N).
 * Batch dims of a and b must be equal, or b is rank 2 and is shared by every batch. */
bv_var *bv_op_matmul(bv_graph *g, bv_var *a, bv_var *b, bool ta, bool tb);

/* element-wise (ops_elementwise.c); binary ops broadcast with numpy rules */
bv_var *bv_op_add(bv_graph *g, bv_var *a, bv_var *b);
bv_var *bv_op_sub(bv_graph *g, bv_var *a, bv_var *b);
bv_var *bv_op_mul(bv_graph *g, bv_var *a, bv_var *b);
bv_var *bv_op_scale(bv_graph *g, bv_var *x, double s);
bv_var *bv_op_gelu_tanh(bv_graph *g, bv_var *x); /* PyTorch gelu(approximate='tanh') */
bv_var *bv_op_gelu_erf(bv_graph *g, bv_var *x);  /* PyTorch gelu() (exact) */
bv_var *bv_op_relu(bv_graph *g, bv_var *x);
bv_var *bv_op_relu2(bv_graph *g, bv_var *x);     /* relu(x)^2 */
bv_var *bv_op_silu(bv_graph *g, bv_var *x);

/* normalisation (ops_norm.c), over the last dim */
bv_var *bv_op_softmax(bv_graph *g, bv_var *x);
/* x (..., D), w (D), b (D) or NULL */
bv_var *bv_op_layernorm(bv_graph *g, bv_var *x, bv_var *w, bv_var *b, double eps);
/* x (..., D), w (D): x * rsqrt(mean(x^2) + eps) * w (HF Llama/BitNet RMSNorm) */
bv_var *bv_op_rmsnorm(bv_graph *g, bv_var *x, bv_var *w, double eps);

/* attention (ops_attention.c) */
/* x (B, T, H, hd), pos I64 (B, T) or (T): rotate-halves (NeoX) rope, inv_freq = theta^(-2i/hd) */
bv_var *bv_op_rope(bv_graph *g, bv_var *x, const bv_tensor *pos, double theta);
typedef struct {
    bool causal;                 /* query t attends keys s <= t (+ offset S-T) */
    const uint8_t *key_padding;  /* (B, S), 1 = real key, 0 = padding; NULL = all real */
    double scale;                /* 0 -> 1/sqrt(hd) */
} bv_attn_mask;
/* q (B, T, H, hd), k and v (B, S, Hkv, hd) with H % Hkv == 0 (grouped-query) -> (B, T, H, hd).
 * Rows whose keys are all masked give 0. Blockwise: the backward recomputes scores per block of
 * queries from the saved log-sum-exp and never holds a full (T, S) matrix per head at once. */
bv_var *bv_op_sdpa(bv_graph *g, bv_var *q, bv_var *k, bv_var *v, const bv_attn_mask *mask);

/* indexing and shape (ops_tensor.c) */
/* ids I64 (...), table (V, D) -> (..., D); backward scatter-adds into the table. A BF16 table (a
 * frozen one read in place, the runtime's) gives an F32 output and no gradient. */
bv_var *bv_op_embedding(bv_graph *g, const bv_tensor *ids, bv_var *table);
/* img (B, C, H, W) -> (B, (H/p)*(W/p), C*p*p), patches row-major, each patch flattened (c, ky, kx)
 * like a Conv2d weight (OC, C, p, p). Conv2d(kernel=stride=p) = linear(patchify(img), w.view(OC,-1)). */
bv_var *bv_op_patchify(bv_graph *g, bv_var *img, int p);
bv_var *bv_op_concat(bv_graph *g, int n, bv_var *const *xs, int dim);
/* x[..., start:start+len, ...] along dim (contiguous copy); split = several narrows */
bv_var *bv_op_narrow(bv_graph *g, bv_var *x, int dim, int64_t start, int64_t len);
/* idx I64 (n) -> x with dim replaced by n rows idx[i] (repeats allowed; backward scatter-adds) */
bv_var *bv_op_index_select(bv_graph *g, bv_var *x, int dim, const bv_tensor *idx);
/* x (B, T, D), mask U8 (B, T), src (N, D) with N = count of ones: rows where mask is 1 are
 * replaced, in row-major order, by the rows of src (torch masked_scatter on rows). */
bv_var *bv_op_masked_scatter(bv_graph *g, bv_var *x, const bv_tensor *mask, bv_var *src);
bv_var *bv_op_reshape(bv_graph *g, bv_var *x, int ndim, const int64_t *shape); /* -1 allowed */
bv_var *bv_op_permute(bv_graph *g, bv_var *x, const int *perm);                 /* copies */
bv_var *bv_op_transpose(bv_graph *g, bv_var *x, int d0, int d1);                /* copies */
bv_var *bv_op_sum(bv_graph *g, bv_var *x);               /* all elements -> scalar */
bv_var *bv_op_mean(bv_graph *g, bv_var *x);              /* all elements -> scalar */
bv_var *bv_op_sum_dim(bv_graph *g, bv_var *x, int dim);  /* removes dim */
bv_var *bv_op_mean_dim(bv_graph *g, bv_var *x, int dim); /* removes dim */

/* BitLinear, quantization-aware training (ops_bitlinear.c; facts: spec section 2) */
typedef struct {
    int weight_bits; /* 1: ternary absmean (1.58-bit) weights; 32: full precision */
    int act_bits;    /* 8: per-token absmax int8 activations; 32: full precision */
} bv_bitlinear_cfg;
/* Cache of one weight's quantized form. It is recomputed only when `version` differs from the
 * weight's bv_params version, so weights are quantized once per optimizer step, not once per
 * micro-batch. It holds only the forms its uses need, each made on first need at a version: the
 * int8 codes and the fp32 dequantized copy wq when a recorded forward (its backward multiplies by
 * Wq) or the fp32 forward uses them, the 2-bit integer-forward form (tmat) when the integer forward
 * runs. A forward without a graph (no_grad: evaluation, the teacher, the runtime) runs the integer
 * path and holds tmat alone (0.25 bytes per weight instead of 5.25), unless the integer forward is
 * switched off explicitly (bv_bitlinear_set_integer_forward(0), BV_BITLINEAR_INT=0).
 * Owned by the model (one per BitLinear); zero-initialise it, free it with bv_qweight_free.
 * A cache filled from packed codes (bv_qweight_set_packed) has version BV_QWEIGHT_PACKED: the
 * forward uses it as it is and never re-quantizes the fp32 weight var it is given, whatever the
 * params version (bv_params_mark_updated and weight loads do not touch it); the weight var then
 * only supplies the shape (checked; its data may be NULL: an external parameter, src/params.h) and
 * receives the straight-through gradient if it trains.
 * bv_qweight_free returns it to the fp32 masters. */
typedef struct {
    uint64_t version;     /* params version it was computed at (0 = never; BV_QWEIGHT_PACKED) */
    const float *src;     /* weight data it was computed from (NULL when packed) */
    int64_t numel;
    int64_t out_features, in_features; /* the shape (OC, C) it holds */
    int8_t *codes;        /* (OC, C) in {-1, 0, 1}; valid when held & BV_QWEIGHT_CODES */
    float *wq;            /* (OC, C) dequantized: codes / s; valid when held & BV_QWEIGHT_WQ */
    unsigned held;        /* which of codes / wq are valid at `version` (buffers are kept across versions) */
    float scale;          /* s = 1 / max(mean|W|, 1e-5) */
    bv_ternary_mat tmat;  /* 2-bit packed codes for the integer forward (packed = NULL when not held) */
} bv_qweight;
#define BV_QWEIGHT_CODES 1u
#define BV_QWEIGHT_WQ 2u
#define BV_QWEIGHT_PACKED UINT64_MAX /* version of a cache set from packed codes (params versions never reach it) */
void bv_qweight_free(bv_qweight *q);
/* Fill q from a packed ternary weight (OC = out_features, C = in_features) in format fmt
 * (src/ternary_pack.h: HF BitNet offline, I2_S or TQ5; `packed_bytes` must be exactly
 * bv_tpack_nbytes) and its multiplicative scale m = max(mean|W|, 1e-5), as docs/formats.md
 * defines it. `scale` is that m for the HF layout (its separate `weight_scale` tensor; required);
 * for I2_S and TQ5, which store m in the bytes, pass NAN to use the stored one (a given value must
 * equal it). A scale below 1e-5 is clamped to 1e-5 as the quantizer does (an all-zero tensor packs
 * with m = 0). The cache keeps the 2-bit integer-forward form only (0.25 bytes per weight; the
 * codes are never held as fp32); a use that needs wq makes it then, as codes * fl(1/s) with
 * s = fl(1/m): the arithmetic of the weight quantizer, so a layer whose fp32 weight has clamped mean|W| = m and these codes gives a
 * bit-identical forward, fp32 or integer path (zero weights are +0 here, possibly -0 there).
 * The version becomes BV_QWEIGHT_PACKED (see above).
 * Errors (q unchanged): a dimension < 1, more than 2^60 weights, or a shape the format cannot
 * hold (BV_ERR_SHAPE),
 * a wrong byte count or malformed bytes (BV_ERR_FORMAT, from bv_tpack_unpack), a missing,
 * negative, non-finite or disagreeing scale (BV_ERR_ARG), allocation failure (BV_ERR_NOMEM);
 * each message names the format and the shape. */
bv_status bv_qweight_set_packed(bv_qweight *q, int64_t out_features, int64_t in_features, bv_tpack_format fmt,
                                const uint8_t *packed, size_t packed_bytes, float scale);
/* x (..., C), w (OC, C), b (OC) or NULL -> (..., OC) = quant_act(x) @ quant_weight(w)^T + b, with
 * straight-through gradients (dx = dy @ Wq, dW = dy^T @ xq, db = sum dy). cache may be NULL
 * (quantize on every call); version is the weight's bv_params version (ignored when cache is NULL).
 * F64 inputs run the same formulas in double (the reference path); the cache is not used there. */
bv_var *bv_op_bitlinear(bv_graph *g, bv_var *x, bv_var *w, bv_var *b, const bv_bitlinear_cfg *cfg,
                        bv_qweight *cache, uint64_t version);
/* The integer forward: with W1.58A8, an F32 input and a cache, the forward can run as an int8 x
 * ternary GEMM with int32 sums (src/kernels/ternary_gemm.h), scaled afterwards; it equals the fp32
 * fake-quant forward to float rounding and the backward is the same. mode 1: always, 0: never,
 * -1 (default): from BV_BITLINEAR_INT=0|1 if set, else when the AVX-512 VNNI kernel is active (the
 * benchmark `bitvla bench ternary` shows it 3-4x faster than sgemm at 600 tokens; AVX2 is only at
 * par). Returns whether the integer forward is now in use. */
bool bv_bitlinear_set_integer_forward(int mode);
bool bv_bitlinear_integer_forward(void);
/* Whether a forward without a graph (no_grad) runs the integer path: yes unless mode 0 was chosen
 * (bv_bitlinear_set_integer_forward(0) or BV_BITLINEAR_INT=0). Its sums are exact, so the result
 * is the same on every CPU and kernel. */
bool bv_bitlinear_integer_nograd(void);

/* losses (ops_loss.c), each -> scalar */
/* logits (N, V), targets I64 (N): mean over targets != ignore_index of -log softmax(logits)[t]
 * (0 when every target is ignored) */
bv_var *bv_op_cross_entropy(bv_graph *g, bv_var *logits, const bv_tensor *targets, int64_t ignore_index);
bv_var *bv_op_l1_loss(bv_graph *g, bv_var *pred, bv_var *target);  /* mean |pred - target| */
bv_var *bv_op_mse_loss(bv_graph *g, bv_var *pred, bv_var *target); /* mean (pred - target)^2 */

#endif
