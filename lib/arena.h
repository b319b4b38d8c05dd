/*
 * arena.h -- 64 MiB heap arenas and the arena map (Go's heapArena and
 * mheap_.arenas): span_of(p) is two dependent loads.
 */
#ifndef GM_ARENA_H
#define GM_ARENA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "params.h"

struct mspan;

typedef uintptr_t arena_idx_t;   /* address >> GM_ARENA_SHIFT */

/* Per-arena metadata, allocated from persistent memory and never freed. */
typedef struct heap_arena {
	/* spans[i] is the span holding page i of this arena, NULL when the
	 * page is free.  Written by the span's allocator (under mheap.lock or
	 * by the page cache's owner), read by any free() without a lock. */
	struct mspan *_Atomic spans[GM_PAGES_PER_ARENA];
	/* Go's zeroedBase: every byte at offset >= zeroed_base has never been
	 * handed out, so it is still zero from the OS.  Under mheap.lock. */
	uintptr_t zeroed_base;
	uintptr_t base;
	struct heap_arena *next;    /* all arenas, in address order of creation */
} heap_arena_t;

/* The arena map: one pointer per possible 64 MiB arena of the address
 * space mmap uses (2^21 entries on x86-64, 16 MiB of .bss touched
 * sparsely).
 * Entries go from NULL to an arena once and never back. */
extern heap_arena_t *_Atomic arena_map[GM_ARENA_L2_ENTRIES];

bool arena_init(void);
/* Map `bytes` (a multiple of GM_CHUNK_SIZE) of new heap, contiguous with
 * the previous growth when the address space allows; register the arenas
 * it reaches into.
 * Returns the base or 0 if the OS refuses.  Caller holds mheap.lock. */
uintptr_t arena_grow(size_t bytes);
/* First arena (address order of creation) for walking; under mheap.lock. */
heap_arena_t *arena_first(void);
/* Go's allocNeedsZero: does [base, base+bytes) need zeroing?  Bumps the
 * arenas' zeroed_base.  *fresh (may be NULL): the bytes of the range that
 * were above zeroed_base, never handed out before (heap growth).  Caller
 * holds mheap.lock. */
bool arena_alloc_needzero(uintptr_t base, size_t bytes, size_t *fresh);
/* Bytes of heap mapped from the OS. */
size_t arena_mapped_bytes(void);

static ALWAYS_INLINE heap_arena_t *arena_of(uintptr_t p)
{
	arena_idx_t i = p >> GM_ARENA_SHIFT;
	if (UNLIKELY(i >= GM_ARENA_L2_ENTRIES))
		return NULL;
	return atomic_load_explicit(&arena_map[i], memory_order_acquire);
}

/* The span owning address p, or NULL if p is not in a live span. */
static ALWAYS_INLINE struct mspan *arena_span_of(uintptr_t p)
{
	heap_arena_t *ha = arena_of(p);
	if (UNLIKELY(ha == NULL))
		return NULL;
	return atomic_load_explicit(
	    &ha->spans[(p >> GM_PAGE_SHIFT) & (GM_PAGES_PER_ARENA - 1)],
	    memory_order_acquire);
}

/* Record s (or NULL) for every page of [base, base + npages pages). */
void arena_set_spans(uintptr_t base, size_t npages, struct mspan *s);

#endif /* GM_ARENA_H */
