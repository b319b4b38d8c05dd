/*
 * mcentral.h -- one central list per span class (Go's mcentral.go):
 * spans not owned by any thread cache.
 */
#ifndef GM_MCENTRAL_H
#define GM_MCENTRAL_H

#include <stdbool.h>
#include <stddef.h>

#include "lock.h"
#include "mheap.h"

typedef struct span_list {
	mspan_t *head, *tail;
	size_t n;
} span_list_t;

/* Doubly linked span lists (inline: the refill moves a span between two
 * lists on almost every call).  push: at the tail; pop: from the head. */
static inline void span_list_push(span_list_t *l, mspan_t *s)
{
	s->next = NULL;
	s->prev = l->tail;
	if (l->tail)
		l->tail->next = s;
	else
		l->head = s;
	l->tail = s;
	l->n++;
}

static inline void span_list_push_head(span_list_t *l, mspan_t *s)
{
	s->prev = NULL;
	s->next = l->head;
	if (l->head)
		l->head->prev = s;
	else
		l->tail = s;
	l->head = s;
	l->n++;
}

static inline void span_list_remove(span_list_t *l, mspan_t *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		l->head = s->next;
	if (s->next)
		s->next->prev = s->prev;
	else
		l->tail = s->prev;
	s->next = s->prev = NULL;
	l->n--;
}

static inline mspan_t *span_list_pop(span_list_t *l)
{
	mspan_t *s = l->head;
	if (s)
		span_list_remove(l, s);
	return s;
}

typedef struct mcentral {
	gm_mutex_t lock;
	spanclass_t spanclass;
	span_list_t partial;   /* swept, has free slots; under lock */
	span_list_t full;      /* no known free slot (may have remote frees) */
	/* a free by a thread landed in a span of this list's (owner NULL)
	 * since the last reclaim: see mcentral_note_remote */
	_Atomic bool remote_pending;
} GM_ALIGNED(GM_CACHELINE) mcentral_t;

extern mcentral_t mcentral[GM_NUM_SPAN_CLASSES];

void mcentral_init(void);
/* A span with at least one free slot for the cache c, owned by c on return
 * (owner = c, list = CURRENT, swept: cache_word ready).  NULL if
 * the OS refuses memory. */
mspan_t *mcentral_cache_span(struct mcache *c, spanclass_t spc);
/* Take back a span from a cache (thread exit, flush). */
void mcentral_uncache_span(mspan_t *s);
/* Sweep every span in every central full list (reclaim before growth). */
size_t mcentral_reclaim_all(void);

/* Some mcentral has remote_pending set. */
extern _Atomic bool mcentral_remote_pending;

/* A thread freed a block of a span no cache owns (its owner exited or gave
 * it back): its class's lists may now hold a span with no live object,
 * which nothing else would sweep until the heap must grow.  Two flags, each
 * set by a load and a store only when clear (no read-modify-write, and
 * the lines stay shared while set).  A hint: a span handed to a cache
 * meanwhile is swept by that cache, one given back meanwhile was swept
 * when given back. */
static inline void mcentral_note_remote(spanclass_t spc)
{
	mcentral_t *mc = &mcentral[spc];
	if (!atomic_load_explicit(&mc->remote_pending, memory_order_relaxed)) {
		atomic_store_explicit(&mc->remote_pending, true, memory_order_relaxed);
		if (!atomic_load_explicit(&mcentral_remote_pending, memory_order_relaxed))
			atomic_store_explicit(&mcentral_remote_pending, true, memory_order_relaxed);
	}
}

/* Sweep the lists of the classes mcentral_note_remote marked (clearing the
 * marks first) and give their empty spans back to mheap.  No lock held on
 * entry.  Returns the number of spans looked at (the work done). */
size_t mcentral_reclaim_pending(void);

/* Set (once, by a plain store) before the first free by a thread that does
 * not own the span: until then no remote_bits word can be non-zero, so the
 * owner's sweeps skip them (a single-threaded program never reads those
 * cold lines: pareto, bench/RESULTS.md 2026-11-26).  A relaxed hint: a
 * sweep that reads it false while a first remote free is in flight leaves
 * that bit for a later sweep, which is what any sweep does with a remote
 * free that lands after it. */
extern _Atomic bool mspan_remote_seen;

/* Sweep: fold remote_bits into the free map, count, and start the
 * allocation at word 0 again.  Holder only.  Returns the number of free
 * slots.  mspan_sweep_words does any span; mspan_sweep inlines the
 * one-word case (every class from 128 B up: the refills of a
 * workload of such sizes sweep a span every few mallocs). */
size_t mspan_sweep_words(mspan_t *s);
/* A remote free of a slot the free map shows free (cold, reports). */
COLD void mspan_report_double_free(mspan_t *s, size_t idx);
/* Fold remote word w into free-map word f (its value now) when a remote
 * free waits there: the sweep's one atomic RMW.  A remote free of a slot
 * the map shows free -- freed twice (the remote free's own test missed it
 * in a race), or never handed out -- is reported; the slot stays free.
 * Returns the bits taken in (0: none). */
static ALWAYS_INLINE uint64_t mspan_fold_remote(mspan_t *s, size_t w, uint64_t *f)
{
	if (atomic_load_explicit(&s->remote_bits[w], memory_order_relaxed) == 0)
		return 0;
	uint64_t r = atomic_exchange_explicit(&s->remote_bits[w], 0, memory_order_acquire);
	if (UNLIKELY((*f & r) != 0))
		mspan_report_double_free(s, w * 64 + (size_t)gm_ctz64(*f & r));
	*f |= r;
	mspan_free_map(s)[w] = *f;
	return r;
}
/* The end of every sweep: nfree free slots, took the remote bits taken in.
 * Freed slots may be dirty; the owner's own frees set needzero at their
 * first free event (mcache_set_trigger). */
static ALWAYS_INLINE size_t mspan_sweep_done(mspan_t *s, size_t nfree, uint64_t took)
{
	if (took != 0 || mspan_nfree_local(s) != 0)
		s->needzero = 1;
	s->cache_word = 0;
	s->alloc_count = (uint16_t)(s->nelems - nfree);
	mspan_reset_nfree_local(s);
	return nfree;
}
static ALWAYS_INLINE size_t mspan_sweep(mspan_t *s)
{
	if (UNLIKELY(!mspan_one_word(s)))
		return mspan_sweep_words(s);
	uint64_t f = s->bits[0], took = 0;
	if (atomic_load_explicit(&mspan_remote_seen, memory_order_relaxed))
		took = mspan_fold_remote(s, 0, &f);
	return mspan_sweep_done(s, f != 0 ? gm_popcount64(f) : 0, took);
}
/* Free slots in the free map, remote frees not counted. */
size_t mspan_nfree_map(const mspan_t *s);
/* Does any remote free wait in s? (relaxed reads; a hint) */
bool mspan_has_remote(mspan_t *s);
/* Go's nextFreeIndex: the index of the next free slot in cache_word or a
 * later word, taken (its bit cleared, cache_word moved to its word), or
 * nelems when there is none.  Holder only. */
size_t mspan_next_free_index(mspan_t *s);
/* The same from word w (> cache_word: the inline refill of
 * mcache_refill_next_word; mspan_next_free_index is it from cache_word). */
static ALWAYS_INLINE size_t mspan_take_free_from(mspan_t *s, size_t w)
{
	size_t nw = mspan_nwords_used(s);
	for (; w < nw; w++) {
		uint64_t ac = s->bits[w];
		if (ac != 0) {
			s->cache_word = (uint8_t)w;
			s->bits[w] = ac & (ac - 1);
			return w * 64 + (size_t)gm_ctz64(ac);
		}
	}
	s->cache_word = (uint8_t)(nw - 1);
	return s->nelems;
}
/* The same, inline when cache_word holds a slot (as after a sweep or when
 * mcentral hands a span out): take its lowest bit as the malloc fast path
 * does; mspan_next_free_index only when it is empty. */
static ALWAYS_INLINE size_t mspan_take_free_index(mspan_t *s)
{
	size_t w = s->cache_word;
	uint64_t ac = s->bits[w];
	if (UNLIKELY(ac == 0))
		return mspan_next_free_index(s);
	s->bits[w] = ac & (ac - 1);
	return w * 64 + (size_t)gm_ctz64(ac);
}
/* Live-object test used by the heap walker and checks (racy for others). */
bool mspan_obj_live(mspan_t *s, size_t idx);
/* Number of live objects: mspan_obj_live over the whole span, a word at a
 * time (statistics). */
size_t mspan_live_count(mspan_t *s);

void mcentral_fork_prepare(void);
void mcentral_fork_parent(void);
void mcentral_fork_child(void);

#endif /* GM_MCENTRAL_H */
