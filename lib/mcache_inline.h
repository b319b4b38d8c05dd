/*
 * mcache_inline.h -- the malloc and free fast paths (Go's nextFreeFast and
 * an explicit free).  No lock, no atomic read-modify-write.
 *
 * LIFO undo: freeing the object the span handed out last (idx ==
 * freeindex - 1, taken since the last sweep, inside the current cache word
 * of a span with no free trigger, i.e. the current span) rewinds freeindex
 * and alloc_cache instead of setting a free bit, so malloc/free pairs and
 * stack-like use never reach the sweep, whatever the size class.
 * (Spans of at most 4 objects only: mcache_free_few.)
 */
#ifndef GM_MCACHE_INLINE_H
#define GM_MCACHE_INLINE_H

#include "arena.h"
#include "mcache.h"
#include "sizeclass.h"

/* Allocate one object of span class spc from the thread's current span,
 * or NULL when that needs the slow path (Go's nextFreeFast); *from is the
 * span it came from.  The one store before the read of alloc[spc] tells
 * the scavenger which current span it must not take. */
static ALWAYS_INLINE void *mcache_alloc_fast_from(mcache_t *c, spanclass_t spc,
                                                  mspan_t **from)
{
	mcache_note_alloc_spc(c, spc);
	mspan_t *s = c->alloc[spc];
	*from = s;
	uint64_t ac = s->alloc_cache;
	if (UNLIKELY(ac == 0))
		return NULL;
	/* alloc_cache holds only slots of freeindex's bitmap word that exist
	 * (mspan_load_cache), so its lowest bit is a valid free slot */
	unsigned bit = (unsigned)__builtin_ctzll(ac);
	unsigned idx = s->freeindex + bit;
	s->alloc_cache = (ac >> bit) >> 1;
	s->freeindex = (uint16_t)(idx + 1);
	void *p = (void *)(s->base + (uintptr_t)idx * s->elemsize);
	if (p == NULL)
		__builtin_unreachable(); /* lets callers drop their NULL test */
	return p;
}

static ALWAYS_INLINE void *mcache_alloc_fast(mcache_t *c, spanclass_t spc)
{
	mspan_t *from;
	return mcache_alloc_fast_from(c, spc, &from);
}



#define GM_LIFO_MAX_NELEMS 4 /* spans of at most 4 objects (>= 2 KiB): see docs/design.md */
/* Outcome of a fast free. */
enum { FREE_DONE = 0, FREE_SLOW = 1 };

/* The owner's free of a slot of s: word is *fw with the slot's bit set.
 * The count first, the free bit last (a release store: a plain mov on
 * x86): once the bit shows, this thread writes s no more, so the scavenger
 * may take a span whose bits say it has no live object (mcache_flush_idle);
 * mcache_free_event rechecks the owner. */
static ALWAYS_INLINE void mcache_free_mark(mspan_t *s, uint64_t *fw, uint64_t word)
{
	unsigned n = ++s->nfree_local;
	__atomic_store_n(fw, word, __ATOMIC_RELEASE);
	if (UNLIKELY(n == s->free_trigger))
		mcache_free_event(s);
}

/* Free p if it is a small object of a span this thread owns; otherwise
 * FREE_SLOW (another thread's span, a large block, or a bad pointer).
 * Written to keep few values live (no callee-saved register is spilled on
 * the common path): the rare cases -- spans of at most 4 objects, the free
 * event -- are out of line and reload what they need from s. */
static ALWAYS_INLINE int mcache_free_fast(mcache_t *c, void *p)
{
	mspan_t *s = arena_span_of((uintptr_t)p);
	if (UNLIKELY(s == NULL ||
	             atomic_load_explicit(&s->owner, memory_order_relaxed) != c))
		return FREE_SLOW;
	/* p must be an object start (sizeclass_is_objstart: one compare on the
	 * product that gives the index), allocated (taken since the last sweep,
	 * idx < freeindex, or by its alloc bit) and not freed yet.  Anything
	 * else is reported by the slow path.  In this order each test needs
	 * only what the previous one computed (fewer live registers: 49
	 * instructions, against 50 testing the free bit first). */
	uint32_t dm = s->divmagic;
	uint64_t prod = (uint64_t)((uintptr_t)p - s->base) * dm;
	if (UNLIKELY(!sizeclass_is_objstart(dm, prod)))
		return FREE_SLOW;
	uint32_t idx = (uint32_t)(prod >> 32);
	if (UNLIKELY((uint16_t)idx >= s->freeindex) &&
	    (s->bits[idx >> 6] & (1ull << (idx & 63))) == 0)
		return FREE_SLOW;
	uint64_t bit = 1ull << (idx & 63);
	uint64_t *fw = &s->free_bits[idx >> 6];
	uint64_t fword = *fw;
	if (UNLIKELY((fword & bit) != 0))
		return FREE_SLOW;
	if (UNLIKELY(s->nelems <= GM_LIFO_MAX_NELEMS)) {
		mcache_free_few(c, s, idx);
		return FREE_DONE;
	}
	mcache_free_mark(s, fw, fword | bit);
	return FREE_DONE;
}

#endif /* GM_MCACHE_INLINE_H */
