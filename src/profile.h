/* profile.h - where a training step's time goes: wall time accumulated per kind of work (GEMM,
 * BitLinear quantization, attention) by the autograd ops, behind one global switch.
 *
 * What it is for: `bitvla bench train` reports the share of a step spent in each kind. The ops
 * bracket their kernel calls with bv_prof_begin / bv_prof_end; when profiling is off that is one
 * predictable branch on a global and no clock read, so the switch costs nothing measurable.
 * Kinds (what each op counts):
 *   BV_PROF_GEMM   linear and matmul forward and backward, BitLinear's GEMMs (fp32 and the int8 x
 *                  ternary integer forward) and its straight-through backward
 *   BV_PROF_QUANT  BitLinear's weight quantizer (once per optimizer step, when the cache is stale)
 *                  and its per-token activation quantizer
 *   BV_PROF_ATTN   scaled-dot-product attention forward and backward (with the GEMMs of its blocks)
 * Everything else a step does (norms, element-wise ops, embedding, copies, losses, the graph) is
 * the remainder the caller computes from its own step time.
 *
 * Spans (bv_prof_span) are a second, overlapping view for inference (`bitvla bench infer`): the
 * wall time of whole parts of a forward (the vision tower, the LLM's layers; models/vla.c) and of
 * the int8 x ternary GEMMs alone (a part of BV_PROF_GEMM), with the int8 operations (2 N C OC) and
 * the packed weight bytes those GEMMs took, and their distinct shapes (N, C, OC) with call counts,
 * so a benchmark can time the kernel alone at the shapes a forward used.
 * Times are wall seconds on the thread that runs the graph (the ops are called from one thread and
 * parallelise inside their kernels); the accumulators are plain globals, not for several graphs
 * running at once. Owns: the accumulators. Must not: allocate or print.
 */
#ifndef BV_PROFILE_H
#define BV_PROFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "src/common.h"

typedef enum { BV_PROF_GEMM = 0, BV_PROF_QUANT, BV_PROF_ATTN, BV_PROF_KINDS } bv_prof_kind;

extern bool bv_prof_on;                       /* the switch (bv_prof_enable) */
extern double bv_prof_seconds[BV_PROF_KINDS]; /* accumulated wall seconds per kind */

typedef enum { BV_PROF_SPAN_VISION = 0, BV_PROF_SPAN_LLM, BV_PROF_SPAN_TERNARY, BV_PROF_SPANS } bv_prof_span;
extern double bv_prof_span_seconds[BV_PROF_SPANS];
/* the int8 x ternary GEMMs (BitLinear's integer forward): operations 2 N C OC, packed weight bytes */
extern double bv_prof_ternary_ops, bv_prof_ternary_bytes;
#define BV_PROF_MAX_SHAPES 64
typedef struct {
    int64_t N, C, OC;
    int64_t calls;
} bv_prof_shape;
extern bv_prof_shape bv_prof_shapes[BV_PROF_MAX_SHAPES]; /* distinct shapes in order of first call */
extern int bv_prof_n_shapes;                              /* shapes beyond the table are not listed */

/* Turn profiling on or off; the accumulators keep their values. */
void bv_prof_enable(bool on);
/* Zero the accumulators (kinds, spans, ternary counters and shapes). */
void bv_prof_reset(void);
const char *bv_prof_kind_name(bv_prof_kind k); /* "gemm", "quant", "attention" */
const char *bv_prof_span_name(bv_prof_span s); /* "vision", "llm", "ternary gemm" */
/* Count one int8 x ternary GEMM x (N, C) x W (OC, C)^T reading `bytes` packed weight bytes. */
void bv_prof_ternary_count(int64_t N, int64_t C, int64_t OC, double bytes);

/* t0 = bv_prof_begin(); ...kernel...; bv_prof_end(BV_PROF_GEMM, t0); */
static inline double bv_prof_begin(void) { return bv_prof_on ? bv_time_now() : 0.0; }
static inline void bv_prof_end(bv_prof_kind k, double t0) {
    if (bv_prof_on) bv_prof_seconds[k] += bv_time_now() - t0;
}

static inline void bv_prof_span_end(bv_prof_span s, double t0) {
    if (bv_prof_on) bv_prof_span_seconds[s] += bv_time_now() - t0;
}

#endif
