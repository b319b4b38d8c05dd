/*
 * mcache_inline.h -- the malloc and free fast paths (Go's nextFreeFast and
 * an explicit free).  No lock, no atomic read-modify-write.
 *
 * LIFO undo (spans of at most GM_LIFO_MAX_NELEMS objects, mcache_free_few,
 * run out of line by gm_free_few): freeing the object the current span
 * handed out last (idx == freeindex - 1, taken since the last sweep)
 * rewinds freeindex and alloc_cache instead of setting a free bit, so
 * malloc/free pairs of such classes never reach the sweep.
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
	/* alloc_cache holds only free slots of word cache_word that exist
	 * (mspan_load_cache), so its lowest bit is a valid free slot; taking
	 * it (blsr) is all the loop-carried work */
	s->alloc_cache = ac & (ac - 1);
	unsigned bit = (unsigned)__builtin_ctzll(ac);
	c->last_bit = bit;
	unsigned idx = ((unsigned)s->cache_word << 6) + bit;
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



/* GM_BENCH_UNCHECKED_FREE: a measuring build only (bench/checkcost), never
 * one to ship: the owner's fast free drops its allocated and double-free
 * tests, so the cost of those checks (issue 3: under 3%) can be measured
 * against the same source.  A free of a never-allocated slot in such a
 * build corrupts the heap. */
#ifdef GM_BENCH_UNCHECKED_FREE
#define GM_FREE_CHECKS 0
#else
#define GM_FREE_CHECKS 1
#endif

/* Outcome of a fast free. */
enum { FREE_DONE = 0, FREE_SLOW = 1, FREE_FEW = 2 };

/* The owner's free of a slot of s: word is *fw with the slot's bit set.
 * The count first, the free bit last (a release store: a plain mov on
 * x86): once the bit shows, this thread writes s no more, so the scavenger
 * may take a span whose bits say it has no live object (mcache_flush_idle);
 * mcache_free_event rechecks the owner. */
static ALWAYS_INLINE void mcache_free_mark(mspan_t *s, uint64_t *fw, uint64_t word)
{
#if defined(__x86_64__)
	/* The countdown with one `subw` on memory, then the bit's store (a
	 * plain mov: a release store on x86; "memory" keeps the compiler from
	 * moving other accesses across it), and the zero flag of the `subw`
	 * decides: 3 instructions where the compiler made 6 (bench/fastpath). */
	bool zero;
	__asm__ volatile("subw $1, %0\n\tmovq %3, %1"
	                 : "+m"(s->free_left), "=m"(*fw), "=@ccz"(zero)
	                 : "r"(word)
	                 : "memory");
#else
	uint16_t left = (uint16_t)(s->free_left - 1);
	s->free_left = left;
	bool zero = left == 0;
	__atomic_store_n(fw, word, __ATOMIC_RELEASE);
#endif
	if (UNLIKELY(zero))
		mcache_free_event(s);
}

/* The slot index of p in s into *idx; false unless p is an object start
 * (sizeclass_is_objstart: one compare on the product that gives the
 * index).  dm: s->divmagic, or s->free_divmagic on the fast free (0 in
 * spans of at most GM_LIFO_MAX_NELEMS objects: always false there).  The
 * first of the owner's free checks. */
static ALWAYS_INLINE bool mcache_objstart_index(const mspan_t *s, uint32_t dm, const void *p,
                                                uint64_t *idx)
{
	uint64_t prod = (uint64_t)((uintptr_t)p - s->base) * dm;
	if (!sizeclass_is_objstart(dm, prod))
		return false;
	*idx = prod >> 32;
	return true;
}

/* The owner's (c's) free of p in s, a span of at most GM_LIFO_MAX_NELEMS
 * objects: the same three checks as mcache_free_fast (FREE_SLOW if one
 * fails), then LIFO undo or a plain free.  Out of line (gm_free_few), so
 * the common free path stays short, and whole, so the LIFO pair does not
 * pay for the general path's bitmap-word arithmetic. */
static ALWAYS_INLINE int mcache_free_few(mcache_t *c, mspan_t *s, void *p)
{
	mcache_note_alloc_spc(c, s->spanclass); /* before the read of alloc[spc] */
	uint64_t idx; /* < GM_LIFO_MAX_NELEMS: bitmap word 0 */
	if (UNLIKELY(!mcache_objstart_index(s, s->divmagic, p, &idx)))
		return FREE_SLOW;
	/* gm_bit64/gm_setbit64 (bt, bts): no `1 << idx` kept live, so no
	 * callee-saved register is spilled on this path */
	uint64_t fword = s->free_bits[0];
	if (UNLIKELY(gm_bit64(fword, idx)))
		return FREE_SLOW; /* already freed */
	unsigned fi = s->freeindex;
	if (idx + 1 == fi) {
		/* the last object taken from this span: if taken since the last
		 * sweep (no alloc bit) from the current span, undo it */
		if (!gm_bit64(s->bits[0], idx) && c->alloc[s->spanclass] == s) {
			/* LIFO: its bit in alloc_cache (word 0: cache_word is 0
			 * in a span this small) is set again.  freeindex - 1, not
			 * idx: idx comes from the pointer, which comes from the last
			 * malloc's freeindex through the arena lookup; storing it
			 * would chain every malloc+free pair through that whole
			 * computation (8.7 ns a 4 KiB pair), fi - 1 chains only
			 * through the store-to-load forwarding of freeindex. */
			/* a second load, which the compiler may not replace by
			 * idx + 1 (nor keep fi live for) */
			unsigned fi_again = __atomic_load_n(&s->freeindex, __ATOMIC_RELAXED) - 1;
			s->freeindex = (uint16_t)fi_again;
			/* the bit from the last malloc when it is this slot's (a
			 * second load: the compiler may not use idx instead) */
			unsigned lb = __atomic_load_n(&c->last_bit, __ATOMIC_RELAXED);
			if (LIKELY(c->last_bit == idx))
				s->alloc_cache = gm_setbit64(s->alloc_cache, lb);
			else
				s->alloc_cache = gm_setbit64(s->alloc_cache, fi_again);
			s->needzero = 1; /* the slot comes back dirty: calloc must clear it */
			return FREE_DONE;
		}
	} else if (UNLIKELY(idx >= fi && !gm_bit64(s->bits[0], idx))) {
		return FREE_SLOW; /* never allocated */
	}
	mcache_free_mark(s, &s->free_bits[0], gm_setbit64(fword, idx));
	return FREE_DONE;
}

/* Free p if it is a small object of a span this thread owns; otherwise
 * FREE_SLOW (another thread's span, a large block, or a bad pointer), or
 * FREE_FEW with *few = its span when that span has at most
 * GM_LIFO_MAX_NELEMS objects (the caller tail-calls gm_free_few).
 * Written to keep few values live (no callee-saved register is spilled on
 * the common path): the rare cases are out of line and reload what they
 * need from s. */
static ALWAYS_INLINE int mcache_free_fast(mcache_t *c, void *p, mspan_t **few)
{
	/* First guess: the current span of the class this thread allocated
	 * last -- c's (a current span is owned by its cache), and never taken
	 * by the scavenger (alloc_spc) -- found from c alone, so when p is in
	 * it (a free soon after its malloc) the arena map's two loads are off
	 * p's dependency chain (docs/design.md, "The free's first guess").
	 * The empty cache's slots (mcache_empty_span, small_bytes 0) never
	 * match. */
	mspan_t *s = c->alloc[atomic_load_explicit(&c->alloc_spc, memory_order_relaxed)];
	if (UNLIKELY((uintptr_t)p - s->base >= s->small_bytes)) {
		s = arena_span_of((uintptr_t)p);
		if (UNLIKELY(s == NULL ||
		             atomic_load_explicit(&s->owner, memory_order_relaxed) != c))
			return FREE_SLOW;
	}
	/* p must be an object start, allocated (taken since the last sweep,
	 * idx < freeindex, or by its alloc bit) and not freed yet.  Anything
	 * else is reported by the slow path.  In this order each test needs
	 * only what the previous one computed (fewer live registers).  The
	 * object-start test uses free_divmagic, 0 in spans of at most
	 * GM_LIFO_MAX_NELEMS objects: they fail it, and only then is nelems
	 * read (one test less on the common path).  gm_bit64/gm_setbit64: bt
	 * and bts take idx modulo 64 (no `& 63`).  bench/fastpath: 30
	 * instructions when the first guess hits, 37 before these changes. */
	uint64_t idx;
	if (UNLIKELY(!mcache_objstart_index(s, s->free_divmagic, p, &idx))) {
		if (s->nelems <= GM_LIFO_MAX_NELEMS) {
			*few = s;
			return FREE_FEW;
		}
		return FREE_SLOW;
	}
	if (GM_FREE_CHECKS && UNLIKELY((uint16_t)idx >= s->freeindex) &&
	    !gm_bit64(s->bits[idx >> 6], idx))
		return FREE_SLOW;
	uint64_t *fw = &s->free_bits[idx >> 6];
	uint64_t fword = *fw;
	if (GM_FREE_CHECKS && UNLIKELY(gm_bit64(fword, idx)))
		return FREE_SLOW;
	mcache_free_mark(s, fw, gm_setbit64(fword, idx));
	return FREE_DONE;
}

#endif /* GM_MCACHE_INLINE_H */
