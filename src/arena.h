/* arena.h - bump allocator for per-step activations.
 *
 * Owns: its memory blocks. Everything allocated from an arena lives until bv_arena_reset() or
 * bv_arena_free(); nothing is freed individually.
 * Behaviour: the first (warm-up) step may grow the arena by adding blocks; reset() then merges
 * them into one block of the high-water size, so later steps of the same shape never call malloc.
 * Must not: be shared between threads while allocating (kernels receive buffers, they do not
 * allocate).
 */
#ifndef BV_ARENA_H
#define BV_ARENA_H

#include <stddef.h>

typedef struct bv_arena_block {
    struct bv_arena_block *next;
    size_t cap, used;
    char *data; /* 64-byte aligned */
} bv_arena_block;

typedef struct {
    bv_arena_block *head;   /* current block (allocations go here) */
    size_t in_use;          /* bytes handed out since the last reset (incl. alignment) */
    size_t high_water;      /* max of in_use over the arena's life */
    size_t n_block_mallocs; /* number of block allocations performed (for "no malloc" tests) */
    size_t min_block;       /* size of a new block when growing */
} bv_arena;

void bv_arena_init(bv_arena *a, size_t initial_bytes);
void bv_arena_free(bv_arena *a);
/* 64-byte aligned, uninitialised. Never returns NULL (aborts when the system is out of memory). */
void *bv_arena_alloc(bv_arena *a, size_t bytes);
/* Same, zero-filled. */
void *bv_arena_calloc(bv_arena *a, size_t bytes);
void bv_arena_reset(bv_arena *a);
size_t bv_arena_high_water(const bv_arena *a);
/* A position in the arena, and the release of everything allocated after it (blocks added since
 * are freed): for a forward without a graph, which needs a layer's temporaries only until the
 * layer's output is kept (autograd.h bv_graph_keep). A mark is valid until a reset or a rewind to
 * an earlier mark. */
typedef struct {
    bv_arena_block *block;
    size_t used, in_use;
} bv_arena_mark;
bv_arena_mark bv_arena_get_mark(const bv_arena *a);
void bv_arena_rewind(bv_arena *a, bv_arena_mark m);
size_t bv_arena_capacity(const bv_arena *a);

#endif
