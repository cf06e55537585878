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
 * Times are wall seconds on the thread that runs the graph (the ops are called from one thread and
 * parallelise inside their kernels); the accumulators are plain globals, not for several graphs
 * running at once. Owns: the accumulators. Must not: allocate or print.
 */
#ifndef BV_PROFILE_H
#define BV_PROFILE_H

#include <stdbool.h>

#include "src/common.h"

typedef enum { BV_PROF_GEMM = 0, BV_PROF_QUANT, BV_PROF_ATTN, BV_PROF_KINDS } bv_prof_kind;

extern bool bv_prof_on;                       /* the switch (bv_prof_enable) */
extern double bv_prof_seconds[BV_PROF_KINDS]; /* accumulated wall seconds per kind */

/* Turn profiling on or off; the accumulators keep their values. */
void bv_prof_enable(bool on);
/* Zero the accumulators. */
void bv_prof_reset(void);
const char *bv_prof_kind_name(bv_prof_kind k); /* "gemm", "quant", "attention" */

/* t0 = bv_prof_begin(); ...kernel...; bv_prof_end(BV_PROF_GEMM, t0); */
static inline double bv_prof_begin(void) { return bv_prof_on ? bv_time_now() : 0.0; }
static inline void bv_prof_end(bv_prof_kind k, double t0) {
    if (bv_prof_on) bv_prof_seconds[k] += bv_time_now() - t0;
}

#endif
