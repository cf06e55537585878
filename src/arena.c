#include "src/arena.h"

#include <string.h>

#include "src/common.h"

static bv_arena_block *block_new(size_t cap) {
    bv_arena_block *b = bv_xmalloc(sizeof *b);
    b->next = NULL;
    b->cap = cap;
    b->used = 0;
    b->data = bv_aligned_alloc(cap);
    return b;
}

void bv_arena_init(bv_arena *a, size_t initial_bytes) {
    memset(a, 0, sizeof *a);
    a->min_block = initial_bytes > (1u << 20) ? initial_bytes : (1u << 20);
    a->head = block_new(a->min_block);
    a->n_block_mallocs = 1;
}

void bv_arena_free(bv_arena *a) {
    bv_arena_block *b = a->head;
    while (b) {
        bv_arena_block *n = b->next;
        bv_aligned_free(b->data);
        free(b);
        b = n;
    }
    memset(a, 0, sizeof *a);
}

void *bv_arena_alloc(bv_arena *a, size_t bytes) {
    size_t need = (bytes + 63) & ~(size_t)63;
    if (need == 0) need = 64;
    bv_arena_block *b = a->head;
    if (b->used + need > b->cap) {
        size_t cap = a->min_block;
        while (cap < need) cap *= 2;
        bv_arena_block *nb = block_new(cap);
        nb->next = b;
        a->head = nb;
        a->n_block_mallocs++;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += need;
    a->in_use += need;
    if (a->in_use > a->high_water) a->high_water = a->in_use;
    return p;
}

void *bv_arena_calloc(bv_arena *a, size_t bytes) {
    void *p = bv_arena_alloc(a, bytes);
    memset(p, 0, bytes);
    return p;
}

void bv_arena_reset(bv_arena *a) {
    if (a->head->next) {
        /* several blocks: replace them by one block that holds the high-water mark */
        size_t cap = a->high_water + (a->high_water >> 3) + 4096;
        bv_arena_block *b = a->head;
        while (b) {
            bv_arena_block *n = b->next;
            bv_aligned_free(b->data);
            free(b);
            b = n;
        }
        a->head = block_new(cap);
        a->n_block_mallocs++;
        if (cap > a->min_block) a->min_block = cap;
    }
    a->head->used = 0;
    a->in_use = 0;
}

size_t bv_arena_high_water(const bv_arena *a) { return a->high_water; }

size_t bv_arena_capacity(const bv_arena *a) {
    size_t c = 0;
    for (const bv_arena_block *b = a->head; b; b = b->next) c += b->cap;
    return c;
}

bv_arena_mark bv_arena_get_mark(const bv_arena *a) {
    return (bv_arena_mark){a->head, a->head->used, a->in_use};
}

void bv_arena_rewind(bv_arena *a, bv_arena_mark m) {
    while (a->head != m.block) {
        bv_arena_block *b = a->head;
        BV_ASSERT(b->next, "bv_arena_rewind: the mark's block is not in the arena (a reset since?)");
        a->head = b->next;
        bv_aligned_free(b->data);
        free(b);
    }
    BV_ASSERT(m.used <= a->head->used, "bv_arena_rewind: the mark (%zu) is past the block's use (%zu)", m.used,
              a->head->used);
    a->head->used = m.used;
    a->in_use = m.in_use;
}
