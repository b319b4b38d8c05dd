/*
 * mcache_inline.h -- the malloc and free fast paths (Go's nextFreeFast and
 * an explicit free).  No lock, no atomic read-modify-write.
 *
 * Both work on the span's free map (mheap.h): malloc takes the lowest set
 * bit of the current span's word cache_word, the owner's free tests and
 * sets the slot's bit.  A slot freed in cache_word is so handed out again
 * by the next malloc of its class (a malloc/free pair reuses one slot).
 *
 * The last block: malloc notes the block it hands out and its bit
 * (c->last_p, c->last_bit), so the free of that block sets the bit in
 * cache_word without computing the block's index.  Through a malloc/free
 * pair the free map word is then the only value carried from one call to
 * the next, and it passes through one `and`, one `or` and two store-to-load
 * forwards per pair instead of also through the index's `tzcnt` and two
 * multiplies (docs/design.md, "The last block's free").
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
	uintptr_t w = s->cache_word;
	uint64_t *wp = &s->bits[w];
	uint64_t ac = *wp;
	if (UNLIKELY(ac == 0))
		return NULL;
	/* the free map has no bit at or above nelems, so its lowest bit is a
	 * slot that exists; taking it (blsr) is all the loop-carried work */
	uint64_t rest = ac & (ac - 1);
	*wp = rest;
	c->last_bit = ac ^ rest; /* the slot's bit, for a free of the block */
	uintptr_t idx = (w << 6) + gm_ctz64(ac); /* 64-bit: no extension */
	void *p = (void *)(s->base + idx * s->elemsize);
	c->last_p = p;
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
 * one to ship: the owner's fast free drops its test of the slot's free-map
 * bit (the allocated and double-free tests in one), so the cost of that
 * check (issue 3: under 3%) can be measured against the same source.  A
 * free of a never-allocated slot in such a build corrupts the heap. */
#ifdef GM_BENCH_UNCHECKED_FREE
#define GM_FREE_CHECKS 0
#else
#define GM_FREE_CHECKS 1
#endif

/* Outcome of a fast free. */
enum { FREE_DONE = 0, FREE_SLOW = 1 };

/* The owner's free of a slot of s: word is free-map word wi with the
 * slot's bit set.  The count first, the free bit last (a release store: a
 * plain mov on x86): once the bit shows, this thread writes s no more, so
 * the scavenger may take a span whose bits say it has no live object
 * (mcache_flush_idle); mcache_free_event rechecks the owner. */
static ALWAYS_INLINE void mcache_free_mark(mspan_t *s, uint64_t wi, uint64_t word)
{
#if defined(__x86_64__)
	/* The countdown with one `subw` on memory, then the bit's store (a
	 * plain mov: a release store on x86; "memory" keeps the compiler from
	 * moving other accesses across it), and the zero flag of the `subw`
	 * decides: 3 instructions where the compiler made 6 (bench/fastpath).
	 * The word's address is formed in the store (s, wi), so the compiler
	 * keeps wi instead of an address it would compute with a `lea`. */
	bool zero;
	__asm__ volatile("subw $1, %0\n\tmovq %4, %c5(%2,%3,8)"
	                 : "+m"(s->free_left), "=@ccz"(zero)
	                 : "r"(s), "r"(wi), "r"(word), "i"(offsetof(mspan_t, bits))
	                 : "memory");
#else
	uint16_t left = (uint16_t)(s->free_left - 1);
	s->free_left = left;
	bool zero = left == 0;
	__atomic_store_n(&s->bits[wi], word, __ATOMIC_RELEASE);
#endif
	if (UNLIKELY(zero))
		mcache_free_event(s);
}

/* Free p if it is a small object of a span this thread owns; otherwise
 * FREE_SLOW (another thread's span, a large block, or a bad pointer).
 * Written to keep few values live (no callee-saved register is spilled):
 * the rare cases are out of line. */
static ALWAYS_INLINE int mcache_free_fast(mcache_t *c, void *p)
{
	/* First guess: the current span of the class this thread allocated
	 * last -- c's (a current span is owned by its cache), and never taken
	 * by the scavenger (alloc_spc) -- found from c alone, so when p is in
	 * it (a free soon after its malloc) the arena map's two loads are off
	 * p's dependency chain (docs/design.md, "The free's first guess").
	 * The empty cache's slots (mcache_empty_span, small_bytes 0) never
	 * match. */
	mspan_t *s = c->alloc[atomic_load_explicit(&c->alloc_spc, memory_order_relaxed)];
	bool in_cur = (uintptr_t)p - s->base < s->small_bytes;
	/* The block the malloc fast path handed out last: in s (the current
	 * span of its class, alloc_spc, as it was then: a refill forgets
	 * last_p), bit last_bit of word cache_word; a set bit there is a
	 * double free.  Tested first and laid out as the fall-through, so a
	 * malloc/free pair's free takes no branch (it took two: to this path
	 * and back to the shared `ret`).  Any other block leaves at the
	 * first compare; LIKELY(!in_cur) below makes a block of another span
	 * (most frees in real programs) fall through the arena lookup into
	 * the indexed free: two taken branches in all, as before, while
	 * another block of s now takes three (it took none) (docs/design.md,
	 * "The pair's free takes no branch"). */
	if (LIKELY(p == c->last_p) && LIKELY(in_cur)) {
		uint64_t cw = s->cache_word;
		unsigned long long fword = s->bits[cw];
		uint64_t bit = c->last_bit;
		if (GM_FREE_CHECKS && UNLIKELY(fword & bit))
			return FREE_SLOW;
		mcache_free_mark(s, cw, fword | bit);
		return FREE_DONE;
	}
	if (LIKELY(!in_cur)) { /* only a layout hint: see above */
		s = arena_span_of((uintptr_t)p);
		if (UNLIKELY(s == NULL ||
		             atomic_load_explicit(&s->owner, memory_order_relaxed) != c))
			return FREE_SLOW;
	}
	/* p must be the start of an object that exists (one compare on the
	 * product that gives the index: sizeclass_objlimit; a large span's
	 * limit is 0) and allocated: its free-map bit clear, i.e. neither
	 * never handed out nor freed already.  Anything else is reported by
	 * the slow path.  gm_testsetbit64: one `bts`, which takes idx modulo 64
	 * (no `and`) and whose carry is the test (bench/checkcost: the
	 * branch is the checks' only instruction after the object-start
	 * compare). */
	uint64_t prod = (uint64_t)((uintptr_t)p - s->base) * s->divmagic;
	if (UNLIKELY((uint32_t)prod >= s->free_objlimit))
		return FREE_SLOW;
	uint64_t idx = prod >> 32;
	uint64_t wi = idx >> 6;
	unsigned long long fword = s->bits[wi];
	bool was_free = gm_testsetbit64(&fword, idx);
	if (GM_FREE_CHECKS && UNLIKELY(was_free))
		return FREE_SLOW;
	mcache_free_mark(s, wi, fword);
	return FREE_DONE;
}

#endif /* GM_MCACHE_INLINE_H */
